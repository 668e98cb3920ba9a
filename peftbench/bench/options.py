"""What one `peftbench latency` or `peftbench profile` measurement is asked to do: one frozen options object per command.

The CLI builds them from its arguments (`from_args`); a benchmark script builds them directly, or
from the same arguments (`peftbench.cli.measure.add_latency_arguments` / `add_profile_arguments`)
plus its own. `run_latency` and `run_profile` take nothing else. Stdlib only: the CLI imports this
module while it builds its parser.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftbench.errors import UsageError

PROFILE_ROUNDS = 10  # `ProfileOptions.rounds` None: this many


@dataclass(frozen=True)
class MeasureOptions:
    """What both commands take."""

    model: str  # a model preset or a local model folder
    methods: tuple[str, ...]  # checked when the measurement starts (`common.check_methods`)
    rounds: int | None = None  # timed rounds; None: the command's default
    warmup: int = 0  # untimed warm-up rounds
    overrides: tuple[str, ...] = ()  # `--set` pairs, routed to the methods (`common.split_overrides`)
    cpu: bool = False  # the CPU even where CUDA is present
    threads: int | None = None  # torch CPU threads; None: torch's default
    dtype: str = "fp32"  # fp32, fp16 or bf16
    seed: int = 0  # of the random weights and inputs
    results: Path | None = None  # the results folder the record goes to; None: no record written


@dataclass(frozen=True)
class LatencyOptions(MeasureOptions):
    """`peftbench latency`: single-forward latency in (batch, seq) cells."""

    cells: tuple[tuple[int, int], ...] | None = None  # (batch, seq) pairs; None: the device's default grid
    warmup: int = 3
    budget_s: float = 30.0  # seconds per cell when `rounds` is None (then 10..100 rounds)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LatencyOptions:
        return cls(**shared_from_args(args), cells=parse_cells(args.batch, args.seq), warmup=args.warmup, budget_s=args.budget)


@dataclass(frozen=True)
class ProfileOptions(MeasureOptions):
    """`peftbench profile`: one training step per method, side by side with `ft` and the floor."""

    batch: int = 8
    seq: int = 128
    warmup: int = 1
    memory: bool = True  # peak memory from a fresh process per variant

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ProfileOptions:
        return cls(**shared_from_args(args), batch=args.batch, seq=args.seq, warmup=args.warmup, memory=not args.no_memory)


def shared_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The `MeasureOptions` fields from the arguments both commands share (their `--results-dir` resolved)."""
    from peftbench.records.store import results_dir

    return {
        "model": args.model,
        "methods": split_methods(args.methods),
        "rounds": args.rounds,
        "overrides": tuple(args.overrides),
        "cpu": args.cpu,
        "threads": args.threads,
        "dtype": args.dtype,
        "seed": args.seed,
        "results": results_dir(args.results_dir),
    }


def split_methods(text: str) -> tuple[str, ...]:
    """`lora, ft` -> ('lora', 'ft'); the names are checked when the measurement starts."""
    return tuple(m.strip() for m in text.split(",") if m.strip())


def parse_cells(batch: str | None, seq: str | None) -> tuple[tuple[int, int], ...] | None:
    """`--batch 32,16,1 --seq 512,256,128` -> ((32, 512), (16, 256), (1, 128)); a single value pairs with every other."""
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
    return tuple(zip(b, s, strict=True))
