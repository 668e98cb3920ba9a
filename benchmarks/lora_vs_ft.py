"""LoRA vs full fine-tuning, one training step side by side: time, peak memory, optimizer state.

    python benchmarks/lora_vs_ft.py                         # RoBERTa-base shape, batch 8 x 128
    python benchmarks/lora_vs_ft.py --model gpt2-medium --batch 4 --seq 256
    python benchmarks/lora_vs_ft.py --methods ft,lora,bitfit,adapter_h

Runs `peftbench profile` (each method and the floor in their own fresh process) and prints the
ratios the paper's Section 4.2 argues about, measured in this one run, with the expectations a
healthy stack meets. The floor is the frozen model's forward + backward through the activations
(no parameter gradients): a LoRA step cannot be cheaper, and should be only a few percent dearer.

Expectations (checked and printed, exit 1 when `--strict` and one fails):
- LoRA step time <= 1.10 x the floor (the design's reference: 2.9 s vs 2.9 s on 2 cores, fp32)
- LoRA step time < ft step time (reference: 2.9 s vs 4.7 s)
- LoRA optimizer state < 1% of ft's (r=8 on W_q, W_v of RoBERTa-base: ~0.24%, plus the head)
- LoRA peak memory < ft's

Paper, for scale (GPT-3 175B, not reproducible here): training VRAM 1.2 TB -> 350 GB; 25% faster
training (43.1 vs 32.5 tokens/s per V100). Those gains grow with the model: on a small model the
frozen weights dominate neither memory nor time the way they do at 175B.
"""

from __future__ import annotations

import argparse
import sys

from peftbench.latency import parse_methods
from peftbench.profile import FLOOR, run_profile
from peftbench.store import results_dir


def expectations(rows: dict[str, dict]) -> list[tuple[str, bool, str]]:
    ft, lora, floor = rows.get("ft"), rows.get("lora"), rows.get(FLOOR)
    checks = []
    if lora and floor:
        r = lora["step_s"] / floor["step_s"]
        checks.append(("LoRA step <= 1.10 x floor", r <= 1.10, f"{r:.3f}x"))
    if lora and ft:
        r = lora["step_s"] / ft["step_s"]
        checks.append(("LoRA step < ft step", r < 1.0, f"{r:.3f}x"))
        r = lora["optimizer_state_bytes"] / ft["optimizer_state_bytes"]
        checks.append(("LoRA optimizer state < 1% of ft", r < 0.01, f"{100 * r:.3f}%"))
        r = lora["memory"]["peak_bytes"] / ft["memory"]["peak_bytes"]
        checks.append(("LoRA peak memory < ft", r < 1.0, f"{r:.3f}x"))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="roberta-base")
    parser.add_argument("--methods", default="ft,lora")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--results-dir", help="where the record goes (default: $PEFTBENCH_RESULTS or ./results)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when an expectation fails")
    args = parser.parse_args(argv)

    methods = parse_methods(args.methods)
    result = run_profile(
        args.model,
        methods,
        batch=args.batch,
        seq=args.seq,
        steps=args.steps,
        warmup=args.warmup,
        overrides=args.overrides,
        cpu=args.cpu,
        threads=args.threads,
        dtype=args.dtype,
        results=results_dir(args.results_dir),
    )
    print(result.text)
    print(f"record: {result.path}")
    rows = {r["method"]: r for r in result.record["rows"] if "error" not in r}
    floor = rows.get(FLOOR)
    if floor:
        print(f"\nforward alone {floor['forward_s']:.3f} s; floor (forward + activation backward) {floor['step_s']:.3f} s")
    for name in methods:
        if name in rows and floor:
            r = rows[name]
            print(
                f"{name}: step {r['step_s']:.3f} s = floor + {r['step_s'] - floor['step_s']:+.3f} s ({r['step_s'] / floor['step_s']:.3f}x)"
            )
    print("\nexpectations (noisy on a shared machine; rerun before believing a failure):")
    checks = expectations(rows)
    for what, ok, value in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}: {value}")
    if result.failed:
        return 1
    return 1 if args.strict and not all(ok for _, ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
