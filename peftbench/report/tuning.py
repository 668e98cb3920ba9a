"""The tuning part of a report: what each method's search cost and found, and how fast it got there.

Read from the study summaries `peftbench tune` writes (`<results>/studies/<study>.json`), which hold
every trial (finished, pruned, failed) with its value; the trials' run records stay out of the score
tables (each trial is its own configuration) and the rows run with `--preset tuned:<study>` say so
in their `preset` column. Equal effort is visible: the trial count of every study sits beside its best.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from peftbench.paper import method_rank
from peftbench.report.model import Table, fmt_num
from peftbench.report.svg import Chart, to_svg


def trial_states(summary: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in summary.get("trials") or []:
        counts[t.get("state", "?")] = counts.get(t.get("state", "?"), 0) + 1
    return counts


def best_so_far(summary: dict[str, Any]) -> list[tuple[int, float]]:
    """(trial number, best finished value up to and including it), from the first finished trial on."""
    better = max if summary.get("direction", "maximize") == "maximize" else min
    out: list[tuple[int, float]] = []
    best: float | None = None
    for t in sorted(summary.get("trials") or [], key=lambda t: t.get("number", 0)):
        if t.get("state") == "COMPLETE" and t.get("value") is not None:
            best = t["value"] if best is None else better(best, t["value"])
        if best is not None:
            out.append((t["number"], best))
    return out


def ordered(studies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(studies, key=lambda s: (str(s.get("model")), str(s.get("task")), method_rank(str(s.get("method"))), str(s.get("study"))))


def studies_table(studies: list[dict[str, Any]]) -> Table:
    """One row per study: its budget (trials by outcome) and its best configuration."""
    header = ["model", "task", "method", "study", "metric", "trials", "finished", "pruned", "failed", "best", "best trial", "best values"]
    rows, models, tasks = [], [], []
    for s in ordered(studies):
        states = trial_states(s)
        params = s.get("best_params") or {}
        rows.append(
            [
                str(s.get("model")),
                str(s.get("task")),
                str(s.get("method")),
                str(s.get("study")),
                f"{s.get('metric')} ({'max' if s.get('direction', 'maximize') == 'maximize' else 'min'})",
                str(s.get("n_trials", "-")),
                str(states.get("COMPLETE", 0)),
                str(states.get("PRUNED", 0)),
                str(states.get("FAIL", 0)),
                fmt_num(s.get("best_value"), 4),
                "-" if s.get("best_trial") is None else str(s["best_trial"]),
                ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items())) or "-",
            ]
        )
        models.append(str(s.get("model")))
        tasks.append(str(s.get("task")))
    caption = (
        "Hyperparameter search per method (peftbench tune): the same number of trials and the same budget per trial make "
        "the comparison fair; rows run with `--preset tuned:<study>` say so in the score tables' preset column."
    )
    return Table("tuning", "Tuning studies", caption, pd.DataFrame(rows, columns=header), [], models, tasks, section="scores")


def best_so_far_charts(studies: list[dict[str, Any]]) -> list[Chart]:
    """Per (model, task): best score found so far against the number of trials, one line per study."""
    panels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in ordered(studies):
        if best_so_far(s):
            panels.setdefault((str(s.get("model")), str(s.get("task"))), []).append(s)
    charts = []
    for (model, task), members in panels.items():
        fig = Figure(figsize=(6, 3.6))
        ax = fig.add_subplot()
        for s in members:
            points = best_so_far(s)
            ax.step(
                [n + 1 for n, _ in points],
                [v for _, v in points],
                where="post",
                marker="o",
                ms=3,
                label=f"{s.get('method')} ({s.get('study')})",
            )
        ax.set_xlabel("trials run")
        ax.set_ylabel(f"best {members[0].get('metric')} so far")
        ax.set_title(f"{task}, {model}: best-so-far against trials")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        title = f"Best score so far against trials: {task}, {model}"
        charts.append(Chart(f"tuning-{model}-{task}", title, to_svg(fig), model, task, "scores"))
    return charts
