"""Reproduce the LoRA paper's Table 1: single-forward latency of adapters vs LoRA on GPT-2 medium.

    python benchmarks/latency_table.py                       # GPT-2 medium, the paper's cells on CUDA
    python benchmarks/latency_table.py --paper-sizes         # adapter bottlenecks chosen per cell to match |Theta|
    python benchmarks/latency_table.py --model tiny-gpt2     # anywhere, in a few minutes (CPU grid without CUDA)

Everything is measured in one process per cell group, in interleaved rotated rounds, with an A/A
control; the overheads are paired per-round ratios (see `peftbench.bench.latency`). The paper's own
percentages are printed beside ours where the cell and model match. The paper does not say which
adapter bottleneck gave |Theta| = 0.5M (32x512) and 11M (16x256, 1x128); `--paper-sizes` picks,
per cell and per method with a `bottleneck` hyperparameter, the bottleneck whose parameter count
(counted on the meta device) is closest to that cell's |Theta|. Without it, the specs' defaults.

Speed expectations (what a reader should see, not asserted in tests): merged LoRA within noise of
the base; adapters distinguishable and slower, more so as batch x seq shrinks (the paper: +2-3% at
32x512, +20-30% at 1x128).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import sys
from pathlib import Path

from peftbench.bench.common import pick_device
from peftbench.bench.latency import PAPER_GRID, format_latency, run_latency, summary_table
from peftbench.bench.options import LatencyOptions
from peftbench.bench.params import count_params
from peftbench.cli.measure import add_latency_arguments
from peftbench.config.schema import field_types
from peftbench.errors import UsageError
from peftbench.methods import METHODS

PAPER_THETA = {(32, 512): 0.5e6, (16, 256): 11e6, (1, 128): 11e6}  # Table 1 header, |Theta| per cell


def closest_bottleneck(method: str, model: str, target: float) -> int | None:
    """The bottleneck whose method-parameter count is nearest `target` (None if the method has no bottleneck)."""
    if "bottleneck" not in field_types(METHODS.get(method).config_cls):
        return None

    @functools.cache
    def count(r: int) -> float:
        try:
            return count_params(method, model, overrides=[f"bottleneck={r}"]).counts["method"]
        except UsageError:  # beyond what the method allows (e.g. bottleneck > d_model)
            return math.inf

    lo, hi = 1, 1 << 16  # counts grow with r: bisect for the first r at or above the target
    while lo < hi:
        mid = (lo + hi) // 2
        if count(mid) < target:
            lo = mid + 1
        else:
            hi = mid
    return min({max(1, lo - 1), lo}, key=lambda r: abs(count(r) - target))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_latency_arguments(parser, model="gpt2-medium", methods="adapter_l,adapter_h,lora")  # `peftbench latency`'s options
    parser.add_argument("--paper-sizes", action="store_true", help="adapter bottleneck per cell matching Table 1's |Theta|")
    parser.add_argument("--json", type=Path, help="also write every record to this file")
    args = parser.parse_args(argv)
    options = LatencyOptions.from_args(args)

    cells = options.cells
    if cells is None:
        cells = PAPER_GRID if pick_device(options.cpu).type == "cuda" else None

    groups: list[LatencyOptions] = []
    if args.paper_sizes:
        for cell in cells or PAPER_GRID:
            theta = PAPER_THETA.get(cell)
            sizes = [(m, closest_bottleneck(m, options.model, theta)) for m in options.methods] if theta else []
            sets = tuple(f"{m}.bottleneck={r}" for m, r in sizes if r is not None)
            counts = [
                f"{m} bottleneck {r} ({count_params(m, options.model, overrides=[f'bottleneck={r}']).counts['method']:,} params)"
                for m, r in sizes
                if r is not None
            ]
            target = f"{theta / 1e6:g}M" if theta else "not in the paper"
            print(f"cell {cell[0]}x{cell[1]}: |Theta| {target}; " + (", ".join(counts) or "spec defaults"))
            groups.append(dataclasses.replace(options, cells=(cell,), overrides=options.overrides + sets))
    else:
        groups.append(dataclasses.replace(options, cells=cells))

    records = []
    for group in groups:
        result = run_latency(group)
        print(format_latency(result.record), flush=True)
        print(f"record: {result.path}")
        records.append(result.record)
    print("\n# Table 1, measured side by side (median ms, overhead vs the base in the same rounds; * = distinguishable)")
    print("\n".join(summary_table(records)))
    if options.model == "gpt2-medium":
        print("\npaper (GPT-2 medium, Quadro RTX8000, mean of 100 trials): 32x512 / 16x256 / 1x128")
        print("  Fine-Tune/LoRA 1449.4 / 338.0 / 19.8 ms; AdapterL +2.2% / +5.0% / +20.7%; AdapterH +3.0% / +8.4% / +30.3%")
    if args.json:
        args.json.write_text(json.dumps(records, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
