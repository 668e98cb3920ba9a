"""`peftbench history`: one metric of one method and task across commits (or dates), with the seed spread.

Finished runs are grouped by the commit that produced them (a run without a commit, or on a dirty tree, is its own
point, labelled by date) and ordered by their first run's time. Each point shows the seeds' mean, standard deviation,
minimum and maximum; a change of configuration (comparability key) starts a new series, since its numbers answer
another question. The metric is a score (`accuracy`, `bleu`; default the task's main metric) or any flat column of
`peftbench.results` (`train_tokens_per_s`, `peak_rss_bytes`, `checkpoint_bytes`, `params_method`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from peftbench.errors import UsageError
from peftbench.records.schema import main_metric_name
from peftbench.records.store import Entry, Store
from peftbench.tables import render_table


@dataclass(frozen=True)
class Point:
    """One commit (or one dirty/unknown-commit day) of one configuration."""

    label: str  # commit[:10], with "+dirty", or the date
    when: str  # the first run's created_at
    key: str
    model: str
    values: list[float]

    @property
    def stats(self) -> dict[str, float]:
        v = self.values
        return {"n": len(v), "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "min": min(v), "max": max(v)}


def value_of(entry: Entry, metric: str) -> float | None:
    from peftbench.results import row

    flat = row(entry)
    value = flat.get(f"metric.{metric}", flat.get(metric))
    return float(value) if isinstance(value, (int, float)) else None


def collect(results: Path, method: str, task: str, model: str | None, metric: str | None, by: str = "commit") -> tuple[str, list[Point]]:
    """The metric's name and its points, oldest first."""
    entries = [e for e in Store(results).entries("run", method=method, task=task, model=model) if e.status == "finished"]
    if not entries:
        raise UsageError(f"no finished run of {method} on {task}{f' with {model}' if model else ''} in {results}")
    if metric is None:
        metric = main_metric_name(entries[-1].record.get("metrics") or {}, entries[-1].record.get("main_metric") or "")
    groups: dict[tuple[str, str, str], list[tuple[str, float]]] = {}
    for e in entries:
        value = value_of(e, metric or "")
        if value is None:
            continue
        env, when = e.record.get("env") or {}, str(e.record.get("created_at") or "")
        commit = env.get("commit")
        label = when[:10] if by == "date" or not commit else commit[:10] + ("+dirty" if env.get("dirty") else "")
        model_name = (e.record.get("config") or {}).get("model", "-")
        groups.setdefault((str(e.record.get("key")), model_name, label), []).append((when, value))
    if not groups:
        raise UsageError(f"no run of {method} on {task} has a value for {metric!r} (a score name, or a column such as train_tokens_per_s)")
    points = [
        Point(label, min(w for w, _ in vals), key, model_name, [v for _, v in vals]) for (key, model_name, label), vals in groups.items()
    ]
    return str(metric), sorted(points, key=lambda p: p.when)


def table(metric: str, points: list[Point]) -> str:
    header = ("when", "commit/date", "model", "key", "seeds", "mean", "std", "min", "max")
    rows = [
        (p.when[:19], p.label, p.model, p.key[:8], str(p.stats["n"]), *(f"{p.stats[s]:.4g}" for s in ("mean", "std", "min", "max")))
        for p in points
    ]
    return f"{metric} over time (one line per commit and configuration; std/min/max across seeds)\n" + render_table(rows, header)


def figure(metric: str, points: list[Point], out: Path, title: str) -> Path:
    """Mean per point with the seeds' min-max as error bars and every seed as a dot; one series per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(p.label for p in points))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(labels) + 3), 4))
    for key in dict.fromkeys(p.key for p in points):
        series = [p for p in points if p.key == key]
        xs = [labels.index(p.label) for p in series]
        means = [p.stats["mean"] for p in series]
        errs = [
            [m - p.stats["min"] for m, p in zip(means, series, strict=True)],
            [p.stats["max"] - m for m, p in zip(means, series, strict=True)],
        ]
        ax.errorbar(xs, means, yerr=errs, marker="o", capsize=4, label=f"{series[0].model} key {key[:8]}")
        for x, p in zip(xs, series, strict=True):
            ax.scatter([x] * len(p.values), p.values, s=10, alpha=0.5, color="gray")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
