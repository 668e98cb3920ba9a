"""Figures as SVG text (matplotlib, no pyplot state): embedded inline in index.html and written beside report.md.

- cost fronts: the main score against trainable parameters, peak memory, step time and checkpoint
  size, the Pareto front marked (the paper's Figure 2 idea, and the axes peft's comparison app offers);
  the page shows one axis at a time (a select), every file is written;
- score per method with every seed shown and the interval the table states;
- latency overhead by batch x seq with the A/A noise band;
- step time and peak memory per method (profile records).

A figure whose records are absent is not made; beyond `MAX_PAIRS` (model, task) pairs the rest
are named in a note, never dropped silently. Labels are placed so they do not overlap (a point
whose label finds no free place gets a number, keyed under the axes), and log axes label only
ticks that have room.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from peftbench import paper
from peftbench.paper import REFERENCE_METHOD, Column, method_rank
from peftbench.report.collect import Group, aggregate
from peftbench.report.costs import run_stats
from peftbench.report.model import fmt_count
from peftbench.report.scores import cell_of, metric_of, own_spec, scale_of
from peftbench.report.svg import Chart, to_svg
from peftbench.tasks.metrics import metric_for

MAX_PAIRS = 24  # (model, task) pairs drawn; the rest are named in a note
FONT = 7.0  # label size in points


@dataclass
class Point:
    group: Group
    seeds: list[float]  # every seed's value, in the paper's scale
    value: float | None  # the pooled value
    low: float | None  # the table's interval
    high: float | None


@dataclass(frozen=True)
class Axis:
    key: str
    label: str
    log: bool


AXES = (
    Axis("params", "trainable parameters (method, head excluded)", True),
    Axis("memory", "peak memory (MiB, median over seeds)", False),
    Axis("time", "seconds per training step (median over seeds)", False),
    Axis("checkpoint", "adapter checkpoint (MiB)", True),
)


def main_column(task: str) -> tuple[str, Column]:
    """The (rule, column) of a task's headline number: GLUE's task column, BLEU (all) for data-to-text."""
    for spec in paper.SPECS:
        for c in spec.columns:
            if c.task == task and c.metric in (None, "bleu"):
                return spec.rule, c
    own = own_spec(task)  # a task no paper table holds: its first column is its main metric
    return own.rule, own.columns[0]


def scored(groups: list[Group]) -> dict[tuple[str, str], list[Point]]:
    """Per (model, task): each configuration with its seed values, pooled value and interval, in the paper's scale."""
    out: dict[tuple[str, str], list[Point]] = {}
    for g in sorted(groups, key=lambda g: (g.model, g.task, method_rank(g.method), g.variant)):
        rule, column = main_column(g.task)
        scale = scale_of(column, g)
        values = [v * scale for v in g.values(column.metric)]
        if values:
            cell = cell_of(column, g, rule) if len(values) == 1 else aggregate(g.values(column.metric), rule, scale)
            out.setdefault((g.model, g.task), []).append(Point(g, values, cell.value, cell.interval.low, cell.interval.high))
    return out


def y_label(task: str, group: Group) -> str:
    _, column = main_column(task)
    scale = scale_of(column, group)
    return f"{task} {metric_of(column, group)}" + (f" (x{scale:g})" if scale != 1 else "")


def label(g: Group) -> str:
    parts = [p for p in (g.variant, "" if g.preset_text == "spec" else g.preset_text) if p]
    return f"{g.method} ({'; '.join(parts)})" if parts else g.method


def pareto(points: list[tuple[float, float]], higher: bool) -> list[int]:
    """Indices of points no other point beats: a lower (or equal) cost and a better (or equal) score, one strictly."""
    sign = 1 if higher else -1
    front = []
    for i, (p, s) in enumerate(points):
        beaten = any((q <= p and sign * t >= sign * s) and (q < p or sign * t > sign * s) for j, (q, t) in enumerate(points) if j != i)
        if not beaten:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


OFFSETS = ((5, 3), (5, -9), (-5, 3), (-5, -9), (5, 11), (5, -17), (-5, 11), (-5, -17))


def place_labels(fig: Figure, ax: Axes, xy: list[tuple[float, float]], texts: list[str]) -> list[str]:
    """Annotate each point where its label overlaps no other label or point; the rest get a number.

    Returns the key lines ("1 = lora (r=4)") for the numbered points, to print under the axes.
    """
    px = fig.dpi / 72.0
    marks = [ax.transData.transform(p) for p in xy]
    taken = [(x - 4 * px, y - 4 * px, x + 4 * px, y + 4 * px) for x, y in marks]
    keys: list[str] = []
    for (x, y), text, point in zip(marks, texts, xy, strict=True):
        width, height = len(text) * FONT * 0.56 * px, FONT * 1.2 * px
        for dx, dy in OFFSETS:
            left = x + dx * px if dx > 0 else x + dx * px - width
            box = (left, y + dy * px, left + width, y + dy * px + height)
            if not any(overlaps(box, t) for t in taken):
                taken.append(box)
                ha = "left" if dx > 0 else "right"
                ax.annotate(text, point, textcoords="offset points", xytext=(dx, dy), fontsize=FONT, ha=ha, va="bottom")
                break
        else:
            keys.append(f"{len(keys) + 1} = {text}")
            ax.annotate(str(len(keys)), point, textcoords="offset points", xytext=(3, 3), fontsize=FONT, color="#444")
    return keys


def log_ticks(ax: Axes, values: list[float], fmt: Any) -> None:
    """Log x ticks that never collide: 1-2-5 within a decade, decades only over a wide range, labels compact."""
    span = math.log10(max(values) / min(values)) if min(values) > 0 else 0.0
    subs = (1.0, 2.0, 5.0) if span < 1 else (1.0, 3.0) if span < 2.5 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def axis_value(point: Point, axis: Axis) -> float | None:
    g = point.group
    if axis.key == "params":
        return float(g.params) if g.params else None
    stats = run_stats(g)
    raw = {"memory": stats["peak_bytes"], "time": stats["seconds_per_step"], "checkpoint": stats["checkpoint_bytes"]}[axis.key]
    if raw is None or raw <= 0:
        return None
    return raw / 2**20 if axis.key in ("memory", "checkpoint") else raw


def front_chart(model: str, task: str, points: list[Point], axis: Axis) -> Chart | None:
    """The main score against one cost, with the Pareto front (cheaper and at least as good) drawn."""
    kept = [(x, v, p) for p in points if (x := axis_value(p, axis)) is not None and (v := p.value) is not None]
    if not kept:
        return None
    xy = [(x, v) for x, v, _ in kept]
    higher = metric_for(kept[0][2].group.records[0].get("main_metric") or "accuracy").higher_is_better
    front = pareto(xy, higher)
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    ax.scatter([x for x, _ in xy], [y for _, y in xy], color="#888", zorder=2, label="configuration")
    ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "-o", color="#d62728", zorder=3, label="Pareto front")
    if axis.log:
        ax.set_xscale("log")
        log_ticks(ax, [x for x, _ in xy], fmt_count if axis.key == "params" else lambda v: f"{v:g}")
    ax.margins(x=0.15, y=0.15)
    fig.canvas.draw()
    keys = place_labels(fig, ax, xy, [label(p.group) for _, _, p in kept])
    ax.set_xlabel(axis.label + ("; log scale" if axis.log else "") + ("\n" + "; ".join(keys) if keys else ""), fontsize=8)
    ax.set_ylabel(y_label(task, kept[0][2].group), fontsize=8)
    ax.set_title(f"{task}, {model}: score vs {axis.key}", fontsize=9)
    ax.legend(loc="best", fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    title = f"Cost front, score vs {axis.label.split(' (')[0]}: {task}, {model}"
    return Chart(f"front-{axis.key}-{model}-{task}", title, to_svg(fig), model, task, "main", axis.key)


def seeds_chart(model: str, task: str, points: list[Point]) -> Chart:
    """Every seed as a dot, the pooled value as a bar, and the interval the table prints (never past the data)."""
    fig = Figure(figsize=(6.4, 0.9 + 0.42 * len(points) + 0.6))
    ax = fig.add_subplot()
    for y, p in enumerate(points):
        if p.low is not None and p.high is not None:
            ax.plot([p.low, p.high], [y, y], color="#d62728", linewidth=1.5, zorder=2)
        ax.scatter(p.seeds, [y] * len(p.seeds), color="#1f77b4", alpha=0.7, s=30, zorder=3, edgecolors="white")
        if p.value is not None:
            ax.scatter([p.value], [y], marker="|", s=260, color="#d62728", linewidths=2, zorder=4)
    ax.set_yticks(range(len(points)), [f"{label(p.group)} n={len(p.seeds)}" for p in points], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"{y_label(task, points[0].group)}: dots = seeds, bar = pooled value, line = the table's interval", fontsize=8)
    ax.set_title(f"{task}, {model}: score per configuration over seeds", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    return Chart(
        f"seeds-{model}-{task}", f"Score per configuration with the seed spread: {task}, {model}", to_svg(fig), model, task, "scores"
    )


def latency_chart(record: dict[str, Any], index: int) -> Chart | None:
    cells = record.get("cells") or []
    methods = [v for v in record.get("variants") or [] if v["role"] == "method"]
    if not cells or not methods:
        return None
    xs = list(range(len(cells)))
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.add_subplot()
    control = [c["variants"]["base A/A"]["ratio"] for c in cells]
    low, high = [100 * (r["q1"] - 1) for r in control], [100 * (r["q3"] - 1) for r in control]
    ax.fill_between(xs, low, high, color="#bbb", alpha=0.5, label="A/A noise band (Q1-Q3)")
    for v in methods:
        ratios = [c["variants"][v["name"]]["ratio"] for c in cells]
        mid = [100 * (r["median"] - 1) for r in ratios]
        err = [
            [m - 100 * (r["q1"] - 1) for m, r in zip(mid, ratios, strict=True)],
            [100 * (r["q3"] - 1) - m for m, r in zip(mid, ratios, strict=True)],
        ]
        ax.errorbar(xs, mid, yerr=err, marker="o", capsize=3, label=v["name"])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(xs, [f"{c['batch']}x{c['seq']}" for c in cells])
    ax.set_xlabel("batch x sequence length")
    ax.set_ylabel("latency overhead vs base (%), lower is better")
    ax.set_title(f"Latency overhead, {record.get('model')} ({(record.get('env') or {}).get('device', '-')})")
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, alpha=0.3)
    return Chart(
        f"latency-{index}", f"Latency overhead by batch x seq: {record.get('model')}", to_svg(fig), record.get("model", ""), "", "cost"
    )


def profile_chart(record: dict[str, Any], index: int) -> Chart | None:
    rows = [r for r in record.get("rows") or [] if "error" not in r]
    if not rows:
        return None
    names = [r["method"] for r in rows]
    fig = Figure(figsize=(7, 0.6 + 0.4 * len(rows) + 1))
    left, right = fig.subplots(1, 2, sharey=True)
    steps = [r["step_time_s"]["median"] for r in rows]
    left.barh(names, steps, color=["#999" if n == "floor" else "#1f77b4" for n in names])
    for ref, style in ((REFERENCE_METHOD, "--"), ("floor", ":")):
        if ref in names:
            left.axvline(steps[names.index(ref)], color="black", linestyle=style, linewidth=0.8, label=ref)
    left.set_xlabel("step time (s, median), lower is better")
    left.invert_yaxis()
    left.legend(fontsize=7)
    peaks = [((r.get("memory") or {}).get("peak_bytes") or 0) / 2**20 for r in rows]
    if not any(peaks):  # measured with --no-memory
        right.text(0.5, 0.5, "peak memory not measured\n(--no-memory)", ha="center", va="center", transform=right.transAxes)
    right.barh(names, peaks, color="#ff7f0e")
    if REFERENCE_METHOD in names:
        right.axvline(peaks[names.index(REFERENCE_METHOD)], color="black", linestyle="--", linewidth=0.8)
    right.set_xlabel("peak memory (MiB), lower is better")
    fig.suptitle(f"Training step per method, {record.get('model')}")
    return Chart(
        f"cost-{index}", f"Step time and peak memory per method: {record.get('model')}", to_svg(fig), record.get("model", ""), "", "cost"
    )


def charts(groups: list[Group], latency: list[dict[str, Any]], profile: list[dict[str, Any]]) -> tuple[list[Chart], list[str]]:
    """Every figure the records allow, and a note naming the (model, task) pairs beyond MAX_PAIRS that were not drawn."""
    out: list[Chart] = []
    pairs = list(scored(groups).items())
    for (model, task), points in pairs[:MAX_PAIRS]:
        out += [c for axis in AXES if (c := front_chart(model, task, points, axis))]
        out.append(seeds_chart(model, task, points))
    out += [c for i, r in enumerate(latency) if (c := latency_chart(r, i))]
    out += [c for i, r in enumerate(profile) if (c := profile_chart(r, i))]
    for c in out:
        c.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", c.name)
    left = [f"{task} on {model}" for (model, task), _ in pairs[MAX_PAIRS:]]
    notes = (
        [f"Figures are drawn for the first {MAX_PAIRS} (model, task) pairs; not drawn (the tables hold their numbers): {', '.join(left)}."]
        if left
        else []
    )
    return out, notes
