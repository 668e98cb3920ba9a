"""`peftbench latency`: the paper's Table 1 protocol, with a paired design and an A/A control.

One forward pass (no grad, eval mode) of every *variant* of one model, all in this one process:
the base model, an A/A control (a second, identical copy of the base), every method applied to
its own copy of the base (same weights, so outputs start equal), and for every mergeable method
a merged copy too. After warm-up, each (batch, seq) cell is timed in rounds; a round runs every
variant once, in an order rotated by one from round to round, so slow drift (thermal, other
processes, allocator state) falls on all variants alike and each variant sits at each position
equally often.

Statistics per cell, per variant: median and interquartile range (IQR) of the times; the
overhead vs the base is the median of the *paired* ratios t_variant / t_base of the same round,
with the ratios' IQR as its spread. The A/A control's ratios show what "no difference" looks
like on this machine (the noise floor).

Labelling rule (`common.verdict`): with [a1, a3] the A/A ratios' quartiles and [v1, v3] the variant's,
the variant is "distinguishable (slower)" when v1 > max(a3, 1), "distinguishable (faster)" when
v3 < min(a1, 1), and "within noise" otherwise; that is, its middle half of paired ratios lies
entirely outside both the control's middle half and 1.0. It is a statement about per-call
differences that stand out of round-to-round noise, not a significance test of the median.
With fewer than 5 rounds no verdict is given.

Rounds: `--rounds N` runs exactly N; without it, as many as fit a time budget per cell (estimated
from the last warm-up round), at least 10 and at most 100 (the paper's 100 trials). Without CUDA
(or with `--cpu`) the default grid is a small one this machine can run, not the paper's.

The paper does not say which adapter sizes (bottleneck r) gave |Theta| = 0.5M / 11M in Table 1;
we use each method's spec defaults (or `--set`) and print the resulting parameter counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from peftbench import paper
from peftbench.bench import common, measure
from peftbench.bench.common import FEW_ROUNDS, check_methods, parse_dtype, pick_device, random_batch, shaped_model
from peftbench.bench.options import LatencyOptions
from peftbench.bench.variants import BASE, CONTROL, Variant, build_variants, output_gaps
from peftbench.config.resolve import resolve_measurement
from peftbench.errors import UsageError
from peftbench.records.env import environment
from peftbench.records.schema import measurement_header
from peftbench.records.store import save_measurement
from peftbench.tables import render_table

PAPER_GRID: tuple[tuple[int, int], ...] = ((32, 512), (16, 256), (1, 128))  # Table 1's cells
CPU_GRID: tuple[tuple[int, int], ...] = ((4, 128), (2, 64), (1, 32), (1, 8))
DEFAULT_ROUNDS = 100  # the paper averages 100 trials
MIN_ROUNDS = 10  # the time budget never cuts below this many rounds
NOISY_IQR = 0.10  # an A/A ratio IQR wider than this is worth a hint
ADAPTER_SIZE_NOTE = (
    "The paper's Table 1 does not state the adapter bottleneck behind |Theta| = 0.5M / 11M; "
    "adapter sizes here are the method specs' defaults (or --set), counted above."
)


# ---------------------------------------------------------------- the protocol


@torch.no_grad()
def time_cell(
    variants: list[Variant],
    inputs: dict[str, torch.Tensor],
    device: torch.device,
    *,
    rounds: int | None,
    warmup: int,
    budget_s: float,
    desc: str = "",
) -> dict[str, Any]:
    """Warm-up, then rounds of every variant once in rotated order. Returns times and orders per round."""

    def budgeted(last_round: float) -> int:  # as many as the budget allows, within [MIN_ROUNDS, DEFAULT_ROUNDS]
        return MIN_ROUNDS if last_round <= 0 else max(MIN_ROUNDS, min(DEFAULT_ROUNDS, int(budget_s / last_round)))

    calls = {v.name: (lambda v=v: v(inputs)) for v in variants}
    timing = common.rotated_rounds(calls, device, rounds=budgeted if rounds is None else rounds, warmup=warmup, desc=desc)
    return {k: timing[k] for k in ("rounds", "warmup", "times_s", "orders")}


def analyse(timing: dict[str, Any]) -> dict[str, Any]:
    """Per variant: time summary (ms); paired ratios to the base in the same round, their summary and verdict."""
    times = timing["times_s"]
    out: dict[str, Any] = {}
    ratios = common.paired_ratios(times, BASE)
    control = measure.summarize(ratios[CONTROL])
    for name, ts in times.items():
        entry: dict[str, Any] = {"time_ms": measure.summarize(1e3 * t for t in ts), "times_ms": [1e3 * t for t in ts]}
        if name != BASE:
            summary = measure.summarize(ratios[name])
            entry["ratio"] = summary
            entry["ratios"] = ratios[name]
            entry["overhead_pct"] = 100.0 * (summary["median"] - 1.0)
            entry["verdict"] = "noise floor (A/A control)" if name == CONTROL else common.verdict(summary, control)
        else:
            entry["verdict"] = "reference"
        out[name] = entry
    return out


@dataclass
class LatencyResult:
    record: dict[str, Any]
    path: Path | None = None
    text: str = ""
    variants: list[dict[str, Any]] = field(default_factory=list)


def check_options(o: LatencyOptions) -> None:
    """The option values that are user mistakes, as one line each, before anything is built."""
    if o.threads is not None and o.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {o.threads}")
    if o.rounds is not None and o.rounds < 1:
        raise UsageError(f"--rounds must be >= 1, got {o.rounds}")
    if o.warmup < 0:
        raise UsageError(f"--warmup must be >= 0, got {o.warmup}")
    for batch, seq in o.cells or ():
        if batch < 1 or seq < 1:
            raise UsageError(f"batch and seq must be >= 1, got {batch}x{seq}")


def grid_of(o: LatencyOptions, device: torch.device) -> tuple[list[tuple[int, int]], str]:
    """The (batch, seq) cells to time and how they were chosen: the command line's, else the paper's on CUDA, else the CPU grid."""
    if o.cells is not None:
        return list(o.cells), "given on the command line"
    if device.type == "cuda":
        return list(PAPER_GRID), "the paper's Table 1 cells"
    return list(CPU_GRID), "the CPU grid (no CUDA device, or --cpu); give --batch/--seq for others"


def protocol(o: LatencyOptions, grid_note: str) -> dict[str, Any]:
    """How the numbers were taken, stored with them."""
    rounds = o.rounds if o.rounds is not None else f"budget {o.budget_s:g} s per cell, {MIN_ROUNDS}..{DEFAULT_ROUNDS} rounds"
    return {
        "what": "single forward pass, torch.no_grad, eval mode, no key/value cache; synchronised on CUDA",
        "warmup_rounds": o.warmup,
        "rounds": rounds,
        "order": "every round runs each variant once; the order rotates by one position per round",
        "overhead": "median over rounds of t_variant / t_base measured in the same round",
        "verdict_rule": "distinguishable (slower) if the variant's ratio Q1 > max(A/A ratio Q3, 1); "
        "distinguishable (faster) if its ratio Q3 < min(A/A ratio Q1, 1); otherwise within noise "
        f"(no verdict below {FEW_ROUNDS} rounds); Q1/Q3 = quartiles of the per-round paired ratios",
        "grid": grid_note,
    }


def run_latency(options: LatencyOptions) -> LatencyResult:
    """The whole protocol; writes `<results>/latency/<time>-<model>.json` when `options.results` is given."""
    o = options
    methods = check_methods(o.methods)
    check_options(o)
    if o.threads is not None:
        torch.set_num_threads(o.threads)
    torch_dtype, device = parse_dtype(o.dtype), pick_device(o.cpu)
    cells, grid_note = grid_of(o, device)
    measured = resolve_measurement(methods, o.model, list(o.overrides), command="peftbench latency and profile")
    for _, seq in cells:
        measured.check_seq(seq)
    vocab = measured.dims.vocab_size
    variants = build_variants(
        shaped_model(measured.source, measured.kind, measured.num_labels, o.seed), methods, measured.hyperparameters, device, torch_dtype
    )
    record: dict[str, Any] = {
        **measurement_header("latency", measured.source, measured.kind, methods),
        "seed": o.seed,
        "protocol": protocol(o, grid_note),
        "note": ADAPTER_SIZE_NOTE,
        "env": environment(device, torch_dtype),
        "variants": [v.describe() for v in variants],
        "output_max_abs_diff_vs_base": output_gaps(variants, random_batch(vocab, 1, min(seq for _, seq in cells), device, o.seed)),
        "cells": [],
    }
    for batch, seq in cells:
        inputs = random_batch(vocab, batch, seq, device, o.seed)
        timing = time_cell(variants, inputs, device, rounds=o.rounds, warmup=o.warmup, budget_s=o.budget_s, desc=f"{batch}x{seq}")
        record["cells"].append(
            {"batch": batch, "seq": seq, "rounds": timing["rounds"], "orders": timing["orders"], "variants": analyse(timing)}
        )
    path = save_measurement(record, o.results) if o.results is not None else None
    return LatencyResult(record, path, format_latency(record), record["variants"])


# ---------------------------------------------------------------- output


def paper_overheads(model: str) -> dict[tuple[str, int, int], float]:
    """The paper's Table 1 % increases keyed by (method, batch, seq), for GPT-2 medium only."""
    if model != "gpt2-medium":
        return {}
    table = paper.table1()
    out = {}
    for row in table["rows"]:
        name = paper.method_of(row["method"])
        for setting, pct in zip(table["settings"], row.get("pct_increase") or (), strict=False):
            if name and pct is not None:
                out[(name, setting["batch_size"], setting["seq_len"])] = pct
    return out


def pct(ratio: float) -> str:
    return f"{100 * (ratio - 1):+.1f}%"


def variant_lines(record: dict[str, Any]) -> list[str]:
    """What each variant is: the base, the A/A control, or a method with its size and hyperparameters."""
    lines = ["variants:"]
    for v in record["variants"]:
        if v["role"] == "base":
            lines.append(f"  {v['name']}: the model as is")
        elif v["role"] == "control":
            lines.append(f"  {v['name']}: a second identical copy of the base (A/A control: its ratios are the noise floor)")
        else:
            hp = ", ".join(f"{k}={x}" for k, x in v["hyperparameters"].items()) or "no hyperparameters"
            state = "merged into the base weights, " if v["merged"] else "unmerged, " if v["capabilities"]["mergeable"] else ""
            lines.append(f"  {v['name']}: {v['params']['method']:,} method params ({state}{hp})")
    gaps = {k: x for k, x in record["output_max_abs_diff_vs_base"].items() if not x <= 1e-4}
    if gaps:
        lines.append("  outputs differ from the base at the start: " + ", ".join(f"{k} {x:.2g}" for k, x in gaps.items()))
    return lines


def cell_lines(record: dict[str, Any], cell: dict[str, Any], paper: dict[tuple[str, int, int], float]) -> list[str]:
    """One cell's table: each variant's median and spread, its paired overhead against the base, and the paper's where it has one."""
    with_paper = any(k[1:] == (cell["batch"], cell["seq"]) for k in paper)
    header = ["variant", "median ms", "IQR ms", "overhead vs base", "paired-ratio IQR", "verdict"] + (["paper"] if with_paper else [])
    rows = []
    for v in record["variants"]:
        e = cell["variants"][v["name"]]
        t, r = e["time_ms"], e.get("ratio")
        ratio_cells = ["-", "-"] if r is None else [pct(r["median"]), f"[{pct(r['q1'])}, {pct(r['q3'])}]"]
        row = [v["name"], f"{t['median']:.3f}", f"{t['iqr']:.3f}", *ratio_cells, e["verdict"]]
        if with_paper:
            key = (v["method"], cell["batch"], cell["seq"])
            row.append(f"{paper[key]:+.1f}%" if key in paper and not v["merged"] else "")
        rows.append(row)
    return ["", f"batch {cell['batch']} x seq {cell['seq']}: {cell['rounds']} rounds", *render_table(rows, header, "md").splitlines()]


def noise_hint(record: dict[str, Any]) -> list[str]:
    """On a shared CPU, a hint when the A/A control spreads widely."""
    wide = [c for c in record["cells"] if c["variants"][CONTROL]["ratio"]["iqr"] > NOISY_IQR]
    if not wide or record["env"]["device"] != "cpu":
        return []
    worst = max(c["variants"][CONTROL]["ratio"]["iqr"] for c in wide)
    return [
        "",
        f"hint: the A/A control's paired ratios spread widely (IQR up to {100 * worst:.0f} points) in {len(wide)} cell(s); "
        "on a shared CPU, --threads 1 (no thread synchronisation across preemptions) and more --rounds narrow it.",
    ]


def format_latency(record: dict[str, Any]) -> str:
    env, protocol = record["env"], record["protocol"]
    paper = paper_overheads(record["model"])
    lines = [
        f"latency: {record['model']} ({record['model_origin']}), {record['model_class']} model, "
        f"{env['device']} {env['device_name']}, {env['threads']} threads, {env['dtype']}",
        f"protocol: {protocol['what']}; {protocol['order']}; warm-up {protocol['warmup_rounds']} rounds",
        f"grid: {protocol['grid']}",
        "",
        *variant_lines(record),
    ]
    for cell in record["cells"]:
        lines += cell_lines(record, cell, paper)
    lines += noise_hint(record)
    lines += ["", "summary (the paper's Table 1 layout: median ms, overhead vs base; * = distinguishable):"]
    lines += summary_table([record])
    lines += ["", "verdict rule: " + protocol["verdict_rule"], "note: " + record["note"]]
    return "\n".join(lines)


def summary_table(records: list[dict[str, Any]]) -> list[str]:
    """Variants as rows, every (batch x seq) cell of every record as a column, like the paper's Table 1."""
    cells = [(rec, cell) for rec in records for cell in rec["cells"]]
    names = list(dict.fromkeys(v["name"] for rec in records for v in rec["variants"]))
    header = ["variant"] + [f"{c['batch']}x{c['seq']}" for _, c in cells]
    rows = []
    for name in names:
        row = [name]
        for _, cell in cells:
            e = cell["variants"].get(name)
            if e is None:
                row.append("")
            elif name == BASE:
                row.append(f"{e['time_ms']['median']:.2f}")
            else:
                star = "*" if e["verdict"].startswith("distinguishable") else ""
                row.append(f"{e['time_ms']['median']:.2f} ({pct(e['ratio']['median'])}){star}")
        rows.append(row)
    return render_table(rows, header, "md").splitlines()
