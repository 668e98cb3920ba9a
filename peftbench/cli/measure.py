"""`latency` and `profile`: the paper's speed and memory measurements, without training a task."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from peftbench.bench.options import PROFILE_ROUNDS, LatencyOptions, MeasureOptions, ProfileOptions
from peftbench.cli.common import EPILOG, add_results_dir, add_set


def add_parser(sub: Any) -> None:
    """Registers `latency` and `profile`."""
    latency = sub.add_parser(
        "latency",
        help="single-forward latency of methods vs the base model (the paper's Table 1 protocol)",
        description="Single forward pass (no grad, eval mode, warm-up; synchronised on CUDA) of the base model, an A/A control "
        "(an identical copy), each method on its own copy and merged copies of mergeable methods, all in one process, timed in "
        "rounds with the order rotated every round. Overhead = median of the per-round ratios to the base, labelled "
        "'distinguishable' when the middle half of its ratios lies outside the A/A control's and 1.0, else 'within noise'. "
        "Random weights of the real shape: no download.",
        epilog=EPILOG,
    )
    add_latency_arguments(latency)
    latency.set_defaults(func=cmd_latency)

    profile = sub.add_parser(
        "profile",
        help="one training step per method: time, peak memory, optimizer state, vs ft and the floor",
        description="One training step per method: step time, its paired ratios to ft and to the floor (the frozen model "
        "with gradients only w.r.t. the input embeddings), peak memory, the AdamW state actually allocated and the trainable "
        "parameters. Step times come from one process in which the floor and every method (each on its own copy of the same "
        "random-init model, with its own AdamW) run one step per round, in an order rotated every round; ratios are medians "
        "of the per-round ratios, shown with their quartiles. Peak memory comes from a fresh process per variant. "
        "Random weights of the real shape: no download.",
        epilog=EPILOG,
    )
    add_profile_arguments(profile)
    profile.set_defaults(func=cmd_profile)


def add_latency_arguments(parser: argparse.ArgumentParser, *, model: str | None = None, methods: str | None = None) -> None:
    """`peftbench latency`'s options, on any parser (benchmarks/latency_table.py adds its own); `LatencyOptions.from_args`
    reads them. `model`, `methods`: defaults, which make those options optional."""
    d = LatencyOptions
    add_model_and_methods(parser, model, methods, "gpt2-medium, tiny-gpt2", "lora,adapter_h,adapter_l")
    parser.add_argument("--batch", help="comma-separated batch sizes, zipped with --seq (default on CUDA: 32,16,1 - the paper's)")
    parser.add_argument("--seq", help="comma-separated sequence lengths, zipped with --batch (default on CUDA: 512,256,128)")
    parser.add_argument("--rounds", type=int, help="timed rounds per cell (default: as many as --budget allows, 10..100)")
    parser.add_argument(
        "--budget", type=float, default=d.budget_s, help=f"seconds per cell when --rounds is not given (default {d.budget_s:g})"
    )
    parser.add_argument("--warmup", type=int, default=d.warmup, help=f"untimed warm-up rounds per cell (default {d.warmup})")
    add_shared_measure_options(parser, "latency", cpu_help="; default grid 4x128, 2x64, 1x32, 1x8")


def add_profile_arguments(parser: argparse.ArgumentParser, *, model: str | None = None, methods: str | None = None) -> None:
    """`peftbench profile`'s options, on any parser (benchmarks/lora_vs_ft.py adds its own); `ProfileOptions.from_args`
    reads them. `model`, `methods`: defaults, which make those options optional."""
    d = ProfileOptions
    add_model_and_methods(parser, model, methods, "roberta-base", "ft,lora,bitfit,adapter_h")
    parser.add_argument("--batch", type=int, default=d.batch, help=f"batch size (default {d.batch})")
    parser.add_argument("--seq", type=int, default=d.seq, help=f"sequence length (default {d.seq})")
    parser.add_argument(
        "--rounds",
        "--steps",
        dest="rounds",
        type=int,
        help=f"timed rounds, one step of every variant each (default {PROFILE_ROUNDS}; a multiple of the variant count puts each "
        "at every position equally often)",
    )
    parser.add_argument("--warmup", type=int, default=d.warmup, help=f"untimed warm-up rounds (default {d.warmup})")
    add_shared_measure_options(parser, "profile")
    parser.add_argument(
        "--no-memory",
        "--in-process",
        dest="no_memory",
        action="store_true",
        help="skip the per-variant peak-memory processes: everything runs in this process, no peak memory is reported "
        "(step times always come from this process)",
    )


def add_model_and_methods(parser: argparse.ArgumentParser, model: str | None, methods: str | None, models_eg: str, methods_eg: str) -> None:
    model_help = f"a model preset (e.g. {models_eg}) or a local model folder"
    parser.add_argument("--model", required=model is None, default=model, help=model_help + (f" (default {model})" if model else ""))
    methods_help = f"comma-separated method names, e.g. {methods_eg}" + (f" (default {methods})" if methods else "")
    parser.add_argument("--methods", required=methods is None, default=methods, help=methods_help)


def add_shared_measure_options(parser: argparse.ArgumentParser, folder: str | None, cpu_help: str = "") -> None:
    """Options `latency` and `profile` share: device, threads, dtype, method hyperparameters, seed, results (`folder`: the
    records' folder under the results directory; None: a caller that writes no record, benchmarks/vs_peft.py)."""
    d = MeasureOptions
    parser.add_argument("--cpu", action="store_true", help=f"run on the CPU even if CUDA is present{cpu_help}")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--dtype", default=d.dtype, help="fp32 (default), fp16 or bf16")
    add_set(
        parser,
        "a method hyperparameter, spelt as for `peftbench run` (r=8, hyperparameters.r=8), for every listed method that "
        "has it; METHOD.KEY=VALUE for one method's",
    )
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the random weights and inputs")
    if folder is not None:
        add_results_dir(parser, f"where records go, under {folder}/")


def cmd_latency(args: argparse.Namespace) -> int:
    from peftbench.bench.latency import run_latency

    result = run_latency(LatencyOptions.from_args(args))
    print(result.text)
    print(f"record: {result.path}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from peftbench.bench.profile import run_profile

    result = run_profile(ProfileOptions.from_args(args))
    print(result.text)
    print(f"record: {result.path}")
    if result.failed:
        print(f"peftbench: profile failed for {', '.join(result.failed)}", file=sys.stderr)
        return 1
    return 0
