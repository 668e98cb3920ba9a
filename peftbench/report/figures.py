"""Figures as SVG text (matplotlib, no pyplot state): embedded inline in index.html and written beside report.md.

- score vs trainable parameters on a log axis, the Pareto front marked (the paper's Figure 2 idea);
- score per method with every seed shown and the aggregate's spread;
- latency overhead by batch x seq with the A/A noise band;
- step time and peak memory per method (profile records);
- best score so far against trials, per tuning study (report/tuning.py).

A figure whose records are absent is simply not made. SVG output is made deterministic (fixed
hash salt for element ids, no date), so the same records give the same files.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; set before any figure exists
from matplotlib.figure import Figure

from peftbench.report.collect import Group, aggregate
from peftbench.report.scores import SPECS, Column, method_rank, own_spec, scale_of
from peftbench.tasks.metrics import metric_for

MAX_PANELS = 12  # (model, task) figures beyond this are left out (the tables still hold every number)


@dataclass
class Chart:
    name: str  # file stem
    title: str
    svg: str  # the <svg> element, without XML prolog


def to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "peftbench", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def main_column(task: str) -> tuple[str, Column]:
    """The (rule, column) of a task's headline number: GLUE's task column, BLEU (all) for data-to-text."""
    for spec in SPECS:
        for c in spec.columns:
            if c.task == task and c.metric in (None, "bleu"):
                return spec.rule, c
    own = own_spec(task)  # a task no paper table holds: its first column is its main metric
    return own.rule, own.columns[0]


def scored(groups: list[Group]) -> dict[tuple[str, str], list[tuple[Group, list[float], float | None, float | None]]]:
    """Per (model, task): each group with its seed values, aggregate and spread, in the paper's scale."""
    out: dict[tuple[str, str], list[Any]] = {}
    for g in sorted(groups, key=lambda g: (g.model, g.task, method_rank(g.method), g.variant)):
        rule, column = main_column(g.task)
        scale = scale_of(column, g)
        values = [v * scale for v in g.values(column.metric)]
        cell = aggregate(g.values(column.metric), rule, scale)
        if values:
            out.setdefault((g.model, g.task), []).append((g, values, cell.value, cell.spread))
    return out


def label(g: Group) -> str:
    parts = [p for p in (g.variant, "" if g.preset_text == "spec" else g.preset_text) if p]
    return f"{g.method} ({'; '.join(parts)})" if parts else g.method


def pareto(points: list[tuple[float, float]], higher: bool) -> list[int]:
    """Indices of points no other point beats: fewer (or equal) parameters and a better (or equal) score, one strictly."""
    sign = 1 if higher else -1
    front = []
    for i, (p, s) in enumerate(points):
        beaten = any((q <= p and sign * t >= sign * s) and (q < p or sign * t > sign * s) for j, (q, t) in enumerate(points) if j != i)
        if not beaten:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def pareto_chart(model: str, task: str, rows: list[Any]) -> Chart | None:
    pts = [(float(g.params), value) for g, _, value, _ in rows if g.params and value is not None]
    if not pts:
        return None
    named = [g for g, _, value, _ in rows if g.params and value is not None]
    higher = metric_for(named[0].records[0].get("main_metric") or "accuracy").higher_is_better
    front = pareto(pts, higher)
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    ax.scatter([p for p, _ in pts], [s for _, s in pts], color="#888", zorder=2)
    ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "-o", color="#d62728", zorder=3, label="Pareto front")
    for (p, s), g in zip(pts, named, strict=True):
        ax.annotate(label(g), (p, s), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (method, head excluded; log scale)")
    ax.set_ylabel(f"{task} main score (paper scale)")
    ax.set_title(f"{task}, {model}: score vs trainable parameters")
    ax.legend(loc="best", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return Chart(f"pareto-{model}-{task}", f"Score vs trainable parameters: {task}, {model}", to_svg(fig))


def seeds_chart(model: str, task: str, rows: list[Any]) -> Chart:
    fig = Figure(figsize=(6, 0.5 + 0.45 * len(rows) + 1))
    ax = fig.add_subplot()
    for y, (_, values, centre, spread) in enumerate(rows):
        ax.scatter(values, [y] * len(values), color="#1f77b4", alpha=0.6, s=18, zorder=2)
        if centre is not None:
            ax.errorbar([centre], [y], xerr=[[spread or 0], [spread or 0]], fmt="D", color="#d62728", capsize=3, zorder=3)
    ax.set_yticks(range(len(rows)), [f"{label(g)} n={len(v)}" for g, v, _, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{task} main score (paper scale): dots = seeds, diamond = aggregate ± sd")
    ax.set_title(f"{task}, {model}: score per method over seeds")
    ax.grid(True, axis="x", alpha=0.3)
    return Chart(f"seeds-{model}-{task}", f"Score per method with the seed spread: {task}, {model}", to_svg(fig))


def latency_chart(record: dict[str, Any], index: int) -> Chart | None:
    cells = record.get("cells") or []
    methods = [v for v in record.get("variants") or [] if v["role"] == "method"]
    if not cells or not methods:
        return None
    xs = list(range(len(cells)))
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.add_subplot()
    control = [c["variants"]["base A/A"]["ratio"] for c in cells]
    ax.fill_between(
        xs,
        [100 * (r["q1"] - 1) for r in control],
        [100 * (r["q3"] - 1) for r in control],
        color="#bbb",
        alpha=0.5,
        label="A/A noise band (Q1-Q3)",
    )
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
    ax.set_ylabel("overhead vs base (%)")
    ax.set_title(f"Latency overhead, {record.get('model')} ({(record.get('env') or {}).get('device', '-')})")
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, alpha=0.3)
    return Chart(f"latency-{index}", f"Latency overhead by batch x seq: {record.get('model')}", to_svg(fig))


def profile_chart(record: dict[str, Any], index: int) -> Chart | None:
    rows = [r for r in record.get("rows") or [] if "error" not in r]
    if not rows:
        return None
    names = [r["method"] for r in rows]
    fig = Figure(figsize=(7, 0.6 + 0.4 * len(rows) + 1))
    left, right = fig.subplots(1, 2, sharey=True)
    steps = [r["step_time_s"]["median"] for r in rows]
    left.barh(names, steps, color=["#999" if n == "floor" else "#1f77b4" for n in names])
    for ref, style in (("ft", "--"), ("floor", ":")):
        if ref in names:
            left.axvline(steps[names.index(ref)], color="black", linestyle=style, linewidth=0.8, label=ref)
    left.set_xlabel("step time (s, median)")
    left.invert_yaxis()
    left.legend(fontsize=7)
    peaks = [((r.get("memory") or {}).get("peak_bytes") or 0) / 2**20 for r in rows]
    if not any(peaks):  # measured with --no-memory
        right.text(0.5, 0.5, "peak memory not measured\n(--no-memory)", ha="center", va="center", transform=right.transAxes)
    right.barh(names, peaks, color="#ff7f0e")
    if "ft" in names:
        right.axvline(peaks[names.index("ft")], color="black", linestyle="--", linewidth=0.8)
    right.set_xlabel("peak memory (MiB)")
    fig.suptitle(f"Training step per method, {record.get('model')}")
    return Chart(f"cost-{index}", f"Step time and peak memory per method: {record.get('model')}", to_svg(fig))


def charts(
    groups: list[Group],
    latency: list[dict[str, Any]],
    profile: list[dict[str, Any]],
    studies: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> list[Chart]:
    from peftbench.report.tuning import best_so_far_charts  # it draws with this module's Chart and to_svg

    out: list[Chart] = []
    for (model, task), rows in list(scored(groups).items())[:MAX_PANELS]:
        chart = pareto_chart(model, task, rows)
        out += [chart] if chart else []
        out.append(seeds_chart(model, task, rows))
    out += [c for i, r in enumerate(latency) if (c := latency_chart(r, i))]
    out += [c for i, r in enumerate(profile) if (c := profile_chart(r, i))]
    out += best_so_far_charts(list(studies))
    for c in out:
        c.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", c.name)
    return out
