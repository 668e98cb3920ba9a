"""`latency` and `profile`: the paper's speed and memory measurements, without training a task."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from peftbench.cli.common import EPILOG


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
    latency.add_argument("--model", required=True, help="a model preset (e.g. gpt2-medium, tiny-gpt2) or a local model folder")
    latency.add_argument("--methods", required=True, help="comma-separated method names, e.g. lora,adapter_h,adapter_l")
    latency.add_argument("--batch", help="comma-separated batch sizes, zipped with --seq (default on CUDA: 32,16,1 - the paper's)")
    latency.add_argument("--seq", help="comma-separated sequence lengths, zipped with --batch (default on CUDA: 512,256,128)")
    latency.add_argument("--rounds", type=int, help="timed rounds per cell (default: as many as --budget allows, 10..100)")
    latency.add_argument("--budget", type=float, default=30.0, help="seconds per cell when --rounds is not given (default 30)")
    latency.add_argument("--warmup", type=int, default=3, help="untimed warm-up rounds per cell (default 3)")
    add_shared_measure_options(latency, "latency", cpu_help="; default grid 4x128, 2x64, 1x32, 1x8")
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
    profile.add_argument("--model", required=True, help="a model preset (e.g. roberta-base) or a local model folder")
    profile.add_argument("--methods", required=True, help="comma-separated method names, e.g. ft,lora,bitfit,adapter_h")
    profile.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    profile.add_argument("--seq", type=int, default=128, help="sequence length (default 128)")
    profile.add_argument(
        "--rounds",
        "--steps",
        dest="rounds",
        type=int,
        help="timed rounds, one step of every variant each (default 10; a multiple of the variant count puts each at every "
        "position equally often)",
    )
    profile.add_argument("--warmup", type=int, default=1, help="untimed warm-up rounds (default 1)")
    add_shared_measure_options(profile, "profile")
    profile.add_argument(
        "--no-memory",
        "--in-process",
        dest="no_memory",
        action="store_true",
        help="skip the per-variant peak-memory processes: everything runs in this process, no peak memory is reported "
        "(step times always come from this process)",
    )
    profile.set_defaults(func=cmd_profile)


def add_shared_measure_options(parser: argparse.ArgumentParser, folder: str, cpu_help: str = "") -> None:
    """Options `latency` and `profile` share: device, threads, dtype, method hyperparameters, seed, results."""
    parser.add_argument("--cpu", action="store_true", help=f"run on the CPU even if CUDA is present{cpu_help}")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--dtype", default="fp32", help="fp32 (default), fp16 or bf16")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method hyperparameter for every listed method that has it, or METHOD.KEY=VALUE for one (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    parser.add_argument("--results-dir", help=f"where records go (default: $PEFTBENCH_RESULTS or ./results); written to {folder}/")


def parse_cells(batch: str | None, seq: str | None) -> list[tuple[int, int]] | None:
    """`--batch 32,16,1 --seq 512,256,128` -> [(32, 512), (16, 256), (1, 128)]; a single value pairs with every other."""
    from peftbench.errors import UsageError

    if batch is None and seq is None:
        return None

    def ints(flag: str, text: str | None) -> list[int]:
        try:
            return [int(x) for x in (text or "").split(",") if x.strip()]
        except ValueError:
            raise UsageError(f"{flag} expects comma-separated integers, got {text!r}") from None

    b, s = ints("--batch", batch), ints("--seq", seq)
    if not b or not s:
        raise UsageError("--batch and --seq go together (their lists are zipped into cells)")
    if len(b) == 1:
        b = b * len(s)
    if len(s) == 1:
        s = s * len(b)
    if len(b) != len(s):
        raise UsageError(f"--batch has {len(b)} values and --seq {len(s)}; they are zipped, so give as many of each (or one)")
    return list(zip(b, s, strict=True))


def cmd_latency(args: argparse.Namespace) -> int:
    from peftbench.latency import parse_methods, run_latency
    from peftbench.store import results_dir

    result = run_latency(
        args.model,
        parse_methods(args.methods),
        cells=parse_cells(args.batch, args.seq),
        rounds=args.rounds,
        warmup=args.warmup,
        budget_s=args.budget,
        cpu=args.cpu,
        threads=args.threads,
        dtype=args.dtype,
        overrides=args.overrides,
        seed=args.seed,
        results=results_dir(args.results_dir),
    )
    print(result.text)
    print(f"record: {result.path}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from peftbench.profile import profile_from_args

    result = profile_from_args(args)
    print(result.text)
    print(f"record: {result.path}")
    if result.failed:
        print(f"peftbench: profile failed for {', '.join(result.failed)}", file=sys.stderr)
        return 1
    return 0
