"""Our LoRA vs Hugging Face peft's LoRA: training step time and peak memory, and inference latency, side by side.

    python benchmarks/vs_peft.py                        # RoBERTa-base and GPT-2-medium shapes (random init, no download)
    python benchmarks/vs_peft.py --threads 2            # as on a 2-core machine
    python benchmarks/vs_peft.py --quick                # tiny shapes, few rounds: a smoke test (numbers mean nothing)

Needs the `[compare]` extra (peft). --cpu, --threads, --dtype, --set and --seed are `peftbench profile`'s;
per model, the settings become a `ProfileOptions` (training) and a `LatencyOptions` (inference). Per model shape:

- training: three variants on copies of one random-init model (the real shape): the floor (the
  frozen model, gradients w.r.t. the input embeddings only: no LoRA step can be cheaper), our LoRA
  and peft's LoRA (same r, alpha, targets; each with its own AdamW). After warm-up, every round runs
  one training step of each, the order rotated per round (`common.rotated_rounds`, the protocol of
  `peftbench profile`); printed: the median step time, and the paired per-round ratios ours/peft,
  ours/floor and peft/floor with their quartiles. Peak memory: a fresh process per variant
  (`profile.run_isolated`, this script as the worker), peak RSS on CPU or max_memory_allocated on CUDA.
- inference: the base, an A/A copy of it, ours unmerged and merged, peft's unmerged and merged
  (`merge_and_unload`), all holding the same LoRA values (checked: the largest output difference
  is printed), timed in rotated rounds (`latency.time_cell`); printed: each one's paired overhead
  vs the base with the A/A noise floor, and ours/peft for each merge state.

GPT-2: peft adapts the whole fused `c_attn`; ours only its q and v slices. peft runs here at rank 2r
with alpha 2 alpha on `c_attn`, holding our q and v updates (zero on the k rows): the same function,
so outputs can be checked, and the configuration whose cost matches what a peft user would need
to express ours. Timing on a loaded machine is meaningless: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from peftbench.bench import common, measure  # noqa: E402
from peftbench.bench.common import parse_dtype, pick_device, resolve_hyperparameters  # noqa: E402
from peftbench.bench.latency import analyse, time_cell  # noqa: E402
from peftbench.bench.options import PROFILE_ROUNDS, LatencyOptions, ProfileOptions  # noqa: E402
from peftbench.bench.profile import Job, method_variant, run_isolated, worker_main  # noqa: E402
from peftbench.bench.variants import FLOOR, TrainVariant, Variant, Workload, build_variant, build_variants, loss_for, workload  # noqa: E402
from peftbench.cli.measure import add_shared_measure_options  # noqa: E402
from peftbench.methods.config import LoraConfig  # noqa: E402
from peftbench.methods.lora import lora_layers, lora_sites  # noqa: E402
from peftbench.models.arch import arch_for  # noqa: E402

OURS, PEFT = "lora", "peft lora"
WORKER_FLAG = "--memory-worker"


# ---------------------------------------------------------------- peft's LoRA, configured like ours


def peft_lora(model: nn.Module, hp: LoraConfig, kind: str) -> nn.Module:
    """peft's LoRA on the modules ours adapts; a fused map (GPT-2's c_attn) whole, at the rank that can hold our slices."""
    import peft

    arch = arch_for(model)
    sites = lora_sites(arch, hp)
    fused = any(k > 1 for parts in sites.values() for _, _, k in parts.values())
    slices = max(len(parts) for parts in sites.values())
    ranks = {hp.rank(t) for parts in sites.values() for t, _, _ in parts.values()}
    if len(ranks) != 1:
        raise ValueError(f"peft's comparison here needs one rank for all targets, got {sorted(ranks)}")
    r = ranks.pop() * (slices if fused else 1)
    config = peft.LoraConfig(
        r=r,
        lora_alpha=hp.alpha * (slices if fused else 1),  # alpha / r as ours
        lora_dropout=hp.lora_dropout,
        target_modules=sorted(sites),
        fan_in_fan_out=arch.conv1d_weights,
        task_type="CAUSAL_LM" if kind == "generation" else "SEQ_CLS",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.get_peft_model(model, config)


@torch.no_grad()
def copy_lora_into_peft(ours: nn.Module, theirs: nn.Module) -> None:
    """Give peft's layers our A and B; fused maps: A stacked over the slices, B block-diagonal over the slices' rows."""
    inner = theirs.base_model.model
    for path, layer in lora_layers(ours):
        target = inner.get_submodule(path)
        a, b = target.lora_A["default"].weight, target.lora_B["default"].weight
        b.zero_()
        row = 0
        for name, (lo, hi) in layer.slices.items():
            rank = layer.lora_A[name].shape[0]
            a[row : row + rank] = layer.lora_A[name]
            b[lo:hi, row : row + rank] = layer.lora_B[name]
            row += rank


def peft_variant(model: nn.Module, hp: LoraConfig, work: Workload, device: torch.device, dtype: torch.dtype) -> TrainVariant:
    """peft's LoRA on `model` (consumed), with its own AdamW and one training step, like `profile.build_variant`."""
    theirs = peft_lora(model, hp, work.kind).to(device=device, dtype=dtype)
    trainable = {n: p for n, p in theirs.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-4)
    batch, labels, seen = work.batch, work.labels, {}

    def step() -> None:
        out = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss_for(work.kind, out.logits, batch, labels).backward()
        if not seen:
            seen["gradient_bytes"] = measure.gradient_bytes(trainable.values())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    lora = sum(p.numel() for n, p in trainable.items() if "lora_" in n)
    total = sum(p.numel() for p in theirs.parameters())
    params = {
        "method": lora,
        "head": sum(p.numel() for p in trainable.values()) - lora,
        "trainable": sum(p.numel() for p in trainable.values()),
    }
    theirs.train()
    return TrainVariant(PEFT, theirs, step, {**params, "total": total, "base_total": total - lora}, trainable, optimizer, seen)


def variant_for(job: Job, work: Workload, device: torch.device, dtype: torch.dtype) -> TrainVariant:
    """The memory worker's `VariantBuilder`: peft's LoRA for `PEFT`, the registered method (or the floor) otherwise."""
    if job.method != PEFT:
        return method_variant(job, work, device, dtype)
    hp = resolve_hyperparameters([OURS], job.model, list(job.overrides))[OURS]
    return peft_variant(work.base, hp, work, device, dtype)


# ---------------------------------------------------------------- training: paired step times, then peak memory per process


def training(o: ProfileOptions) -> dict[str, Any]:
    model, device, dtype = o.model, pick_device(o.cpu), parse_dtype(o.dtype)
    hp = resolve_hyperparameters([OURS], model, list(o.overrides))[OURS]
    work = workload(model, o.batch, o.seq, device, dtype, o.seed)
    variants = {
        OURS: build_variant(copy.deepcopy(work.base), OURS, hp, work, device, dtype),
        PEFT: peft_variant(copy.deepcopy(work.base), hp, work, device, dtype),
        FLOOR: build_variant(work.base, None, None, work, device, dtype),
    }
    timing = common.rotated_rounds({n: v.step for n, v in variants.items()}, device, rounds=o.rounds, warmup=o.warmup, desc=model)
    times = timing["times_s"]
    result: dict[str, Any] = {"times": times, "params": {n: v.params for n, v in variants.items()}}
    result["ratios"] = {
        "ours / peft": common.paired_ratios(times, PEFT)[OURS],
        "ours / floor": common.paired_ratios(times, FLOOR)[OURS],
        "peft / floor": common.paired_ratios(times, FLOOR)[PEFT],
    }
    variants.clear()
    del work
    if o.memory:
        shared = {"model": model, "batch": o.batch, "seq": o.seq, "seed": o.seed, "cpu": o.cpu, "threads": o.threads, "dtype": o.dtype}
        worker = (str(Path(__file__).resolve()), WORKER_FLAG)
        result["memory"] = {
            name: run_isolated(Job(method=None if name == FLOOR else name, overrides=o.overrides, **shared), worker)
            for name in (OURS, PEFT, FLOOR)
        }
    return result


# ---------------------------------------------------------------- inference: merged and unmerged latency


def inference(o: LatencyOptions) -> dict[str, Any]:
    (batch, seq), model, device, dtype = o.cells[0], o.model, pick_device(o.cpu), parse_dtype(o.dtype)
    hp = resolve_hyperparameters([OURS], model, list(o.overrides))[OURS]
    work = workload(model, batch, seq, device, dtype, o.seed)
    variants = build_variants(work.base, [OURS], {OURS: hp}, device, dtype)  # base, A/A, ours, ours merged
    ours, ours_merged = variants[2], variants[3]
    with torch.no_grad():  # non-zero B, the same in both merge states and in peft
        for layer in (m for _, m in lora_layers(ours.model)):
            for b in layer.lora_B.values():
                b.normal_(0.0, 0.02)
        ours_merged.adapted.unmerge()
        ours_merged.adapted.load_adapter_state_dict(ours.adapted.adapter_state_dict())
        ours_merged.adapted.merge()
    theirs = peft_lora(copy.deepcopy(work.base), hp, work.kind).to(device=device, dtype=dtype).eval()
    copy_lora_into_peft(ours.model, theirs)  # the heads are equal already: both copies of one base, untrained
    merged = copy.deepcopy(theirs).merge_and_unload().eval()
    variants += [Variant(PEFT, "method", theirs), Variant(f"{PEFT} merged", "method", merged)]
    inputs = work.batch
    with torch.no_grad():
        out = {v.name: v(inputs).logits.float() for v in variants}
    gaps = {
        "unmerged": float((out[OURS] - out[PEFT]).abs().max()),
        "merged": float((out[f"{OURS} merged"] - out[f"{PEFT} merged"]).abs().max()),
    }
    timing = time_cell(variants, inputs, device, rounds=o.rounds, warmup=o.warmup, budget_s=0.0, desc=f"{model} latency")
    times = timing["times_s"]
    return {
        "analysis": analyse(timing),
        "gaps": gaps,
        "ours_vs_peft": {
            "unmerged": common.paired_ratios(times, PEFT)[OURS],
            "merged": common.paired_ratios(times, f"{PEFT} merged")[f"{OURS} merged"],
        },
    }


# ---------------------------------------------------------------- output


def paired(ratios: list[float]) -> str:
    s = measure.summarize(ratios)
    return f"{s['median']:.3f}x (Q1-Q3 {s['q1']:.3f}-{s['q3']:.3f}, {s['n']} rounds)"


def peak_mib(entry: dict[str, Any]) -> str:
    if "error" in entry:
        return f"failed: {entry['error'][-200:]}"
    return f"{entry['memory']['peak_bytes'] / 2**20:,.0f} MiB (added by the steps {entry['memory']['added_by_steps_bytes'] / 2**20:,.0f})"


def print_training(model: str, result: dict[str, Any]) -> None:
    print(f"\n## {model}: one training step (forward, loss, backward, AdamW step)")
    for name, ts in result["times"].items():
        p = result["params"][name]
        print(f"  {name:>9}: median {measure.summarize(ts)['median']:.4f} s; trainable {p['trainable']:,} (LoRA {p['method']:,})")
    for what, ratios in result["ratios"].items():
        print(f"  {what:>12}: {paired(ratios)}")
    for name, entry in (result.get("memory") or {}).items():
        print(f"  peak memory {name:>9}: {peak_mib(entry)}")
    if "memory" in result and all("error" not in e for e in result["memory"].values()):
        mem = {n: e["memory"]["peak_bytes"] for n, e in result["memory"].items()}
        ratios = {"ours / peft": mem[OURS] / mem[PEFT], "ours / floor": mem[OURS] / mem[FLOOR], "peft / floor": mem[PEFT] / mem[FLOOR]}
        print("  peak memory " + ", ".join(f"{k} {v:.3f}x" for k, v in ratios.items()))


def print_inference(o: LatencyOptions, result: dict[str, Any]) -> None:
    (batch, seq), model = o.cells[0], o.model
    print(f"\n## {model}: inference latency, batch {batch} x {seq}, no grad, eval mode")
    print(f"  largest |output difference| ours vs peft: unmerged {result['gaps']['unmerged']:.2e}, merged {result['gaps']['merged']:.2e}")
    for name, entry in result["analysis"].items():
        t = entry["time_ms"]
        ratio = "reference" if "ratio" not in entry else f"{paired(entry['ratios'])} vs base, {entry['verdict']}"
        print(f"  {name:>16}: median {t['median']:.2f} ms; {ratio}")
    for state, ratios in result["ours_vs_peft"].items():
        print(f"  ours / peft ({state}): {paired(ratios)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="roberta-base,gpt2-medium", help="model presets (random init of the real shape)")
    parser.add_argument("--batch", type=int, default=ProfileOptions.batch)
    parser.add_argument("--seq", type=int, default=ProfileOptions.seq)
    parser.add_argument("--rounds", type=int, default=PROFILE_ROUNDS, help="timed training rounds")
    parser.add_argument("--warmup", type=int, default=ProfileOptions.warmup)
    parser.add_argument("--latency-batch", type=int, default=4)
    parser.add_argument("--latency-seq", type=int, default=128)
    parser.add_argument("--latency-rounds", type=int, default=20)
    add_shared_measure_options(parser, None)  # --cpu, --threads, --dtype, --set (our LoRA's; peft gets the same), --seed
    parser.add_argument("--no-memory", action="store_true", help="skip the fresh-process peak memory")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few rounds: checks the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.batch, args.seq, args.rounds, args.latency_batch, args.latency_seq, args.latency_rounds = (
            "tiny-roberta,tiny-gpt2", 2, 16, 3, 2, 16, 5
        )  # fmt: skip
    return args


def options_for(model: str, args: argparse.Namespace) -> tuple[ProfileOptions, LatencyOptions]:
    """One model's training options (`profile`'s) and inference options (`latency`'s, one cell), both for our LoRA."""
    shared = {
        "model": model,
        "methods": (OURS,),
        "warmup": args.warmup,
        "overrides": tuple(args.overrides),
        "cpu": args.cpu,
        "threads": args.threads,
        "dtype": args.dtype,
        "seed": args.seed,
    }
    train = ProfileOptions(**shared, batch=args.batch, seq=args.seq, rounds=args.rounds, memory=not args.no_memory)
    latency = LatencyOptions(**shared, cells=((args.latency_batch, args.latency_seq),), rounds=args.latency_rounds)
    return train, latency


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [WORKER_FLAG]:
        return worker_main(argv[1:], variant_for)
    try:
        import peft
    except ImportError:
        print("peft is not installed: pip install -e '.[compare]'", file=sys.stderr)
        return 2
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = pick_device(args.cpu)
    lora = args.overrides or "spec defaults"
    print(f"peft {peft.__version__}, torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, {args.dtype}; LoRA {lora}")
    if args.quick:
        print("--quick: tiny shapes and few rounds; the numbers only show that the script runs")
    for model in args.models.split(","):
        train, latency = options_for(model, args)
        print_training(model, training(train))
        print_inference(latency, inference(latency))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
