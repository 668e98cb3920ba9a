"""Speed and memory tables: latency (the paper's Table 1), training cost (profile and run records), and the to-do list.

Latency comes from `peftbench latency` records: every variant's median time per (batch x seq)
cell with its paired overhead vs the base, the A/A control's quartiles as the noise floor, and
the record's own verdict (`*` distinguishable, otherwise within noise). The paper's Table 1 (GPT-2
medium on a Quadro RTX8000) is printed beside it as a reference: other hardware, so no difference.
Training cost comes from `peftbench profile` records (paired step-time ratios vs the reference
method and the floor, peak memory of a fresh process per method) and from run records
(steady-state throughput and peak memory per configuration).

One name, one meaning: every ratio column names the quantity it divides and which way is better
(`step time vs ft ↓`, `tokens/s vs ft ↑`), and every trainable count is the paper's (task head
excluded), with the head in a note.
"""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

from peftbench import paper
from peftbench.paper import REFERENCE_METHOD as FT
from peftbench.paper import method_rank
from peftbench.paper.layout import TABLE_NAMES
from peftbench.report.collect import Group
from peftbench.report.model import Table, fmt_count, fmt_mib, fmt_pct, fmt_ratio

TRAINABLE = "# trainable"
TRAINABLE_NOTE = "# trainable: the paper's convention, the method's own parameters without the task head (the head trains too)."


def latency_table(record: dict[str, Any], index: int) -> Table:
    cells = record.get("cells") or []
    env = record.get("env") or {}
    header = ["model", "variant", TRAINABLE, *(f"{c['batch']}x{c['seq']}" for c in cells)]
    rows, data = [], []
    for v in record.get("variants") or []:
        params = (v.get("params") or {}).get("method")
        row = [record.get("model", "-"), v["name"], fmt_count(params) if params is not None else "-"]
        for c in cells:
            e = (c.get("variants") or {}).get(v["name"])
            row.append(latency_cell(v, e))
            data.append(latency_data(record, v, c, e))
        rows.append(row)
    device = f"{env.get('device', '-')} {env.get('device_name') or ''}".strip()
    title = f"Inference latency, {record.get('model')} on {device} ({env.get('threads', '-')} threads, {env.get('dtype', '-')})"
    caption = (
        "Median ms of a single forward pass per batch x seq cell and the overhead vs the base ↓ (median of per-round "
        "paired ratios). The A/A row is the noise floor: an identical copy's overhead [its ratios' Q1, Q3]."
    )
    notes = [
        "* = distinguishable: the variant's middle half of paired ratios lies outside both the A/A control's and 1.0; "
        "unmarked = within noise.",
        f"Record {record.get('run_id')}, key {str(record.get('key'))[:8]}, "
        f"{min((c.get('rounds') or 0 for c in cells), default=0)}+ rounds per cell.",
    ]
    frame = pd.DataFrame(rows, columns=header)
    table = Table(f"latency-{index}", title, caption, frame, notes, [record.get("model", "")] * len(rows), section="cost")
    table.data = pd.DataFrame(data)
    return table


def latency_data(record: dict[str, Any], variant: dict[str, Any], cell: dict[str, Any], entry: dict[str, Any] | None) -> dict[str, Any]:
    ratio = (entry or {}).get("ratio") or {}
    return {
        "model": record.get("model"),
        "variant": variant["name"],
        "role": variant.get("role"),
        "batch": cell.get("batch"),
        "seq": cell.get("seq"),
        "time_ms_median": ((entry or {}).get("time_ms") or {}).get("median"),
        "time_vs_base": ratio.get("median"),
        "time_vs_base_q1": ratio.get("q1"),
        "time_vs_base_q3": ratio.get("q3"),
        "verdict": (entry or {}).get("verdict"),
    }


def latency_cell(variant: dict[str, Any], entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    ms = f"{entry['time_ms']['median']:.3g} ms"
    if variant["role"] == "base":
        return ms
    r = entry["ratio"]
    if variant["role"] == "control":
        return f"{ms}, {fmt_pct(r['median'])} [{fmt_pct(r['q1'])}, {fmt_pct(r['q3'])}]"
    star = " *" if str(entry.get("verdict", "")).startswith("distinguishable") else ""
    return f"{ms}, {fmt_pct(r['median'])}{star}"


def paper_latency_table() -> Table:
    t = paper.table1()
    header = ["method", *(f"{s['batch_size']}x{s['seq_len']} (adapters {s['adapter_params']})" for s in t["settings"])]
    rows = []
    for r in t["rows"]:
        cells = []
        for ms, pm, pct in zip(r["latency_ms"], r["pm"], r.get("pct_increase") or [None] * 3, strict=True):
            cells.append(f"{ms:.1f} ±{pm:.1f} ms" + (f", +{pct:.1f}%" if pct is not None else ""))
        rows.append([r["method"], *cells])
    caption = f"The paper's Table 1 (reference: GPT-2 medium, NVIDIA Quadro RTX8000, 100 trials). {t['source']}."
    frame = pd.DataFrame(rows, columns=header)
    # no model attribute: a reference for every latency table, never hidden by the model filter
    return Table("latency-paper", "Paper: inference latency (Table 1)", caption, frame, [t.get("notes", "")], section="cost")


PROFILE_HEADER = [
    "model",
    "method",
    "step s",
    f"step time vs {FT} ↓ (Q1-Q3)",
    "step time vs floor ↓ (Q1-Q3)",
    "peak MiB",
    f"peak memory vs {FT} ↓",
    "optimizer MiB",
    TRAINABLE,
]


def method_params(params: dict[str, Any]) -> float | None:
    """The paper's count: the method's parameters without the head (older records: trainable minus head)."""
    if params.get("method") is not None:
        return params["method"]
    if params.get("trainable") is not None:
        return params["trainable"] - (params.get("head") or 0)
    return None


def profile_row(record: dict[str, Any], r: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    m, q = r.get("memory") or {}, r.get("ratios") or {}
    params = r.get("params") or {}
    paired_ft, paired_floor = (r.get("paired") or {}).get(f"vs_{FT}") or {}, (r.get("paired") or {}).get("vs_floor") or {}
    shown = [
        record.get("model", "-"),
        r["method"],
        f"{r['step_time_s']['median']:.4g}",
        paired(r, f"vs_{FT}"),
        paired(r, "vs_floor"),
        "failed" if "error" in m else fmt_mib(m.get("peak_bytes")),
        fmt_ratio(q.get(f"peak_memory_vs_{FT}")),
        f"{r.get('optimizer_state_bytes', 0) / 2**20:.1f}",
        fmt_count(method_params(params)),
    ]
    data = {
        "model": record.get("model"),
        "method": r["method"],
        "step_s": r["step_time_s"]["median"],
        f"step_time_vs_{FT}": paired_ft.get("median"),
        f"step_time_vs_{FT}_q1": paired_ft.get("q1"),
        f"step_time_vs_{FT}_q3": paired_ft.get("q3"),
        "step_time_vs_floor": paired_floor.get("median"),
        "peak_bytes": m.get("peak_bytes"),
        f"peak_memory_vs_{FT}": q.get(f"peak_memory_vs_{FT}"),
        "optimizer_state_bytes": r.get("optimizer_state_bytes"),
        "trainable_method": method_params(params),
        "trainable_head": params.get("head"),
    }
    return shown, data


def profile_table(record: dict[str, Any], index: int) -> Table:
    s, env = record.get("settings") or {}, record.get("env") or {}
    rows, data = [], []
    for r in record.get("rows") or []:
        if "error" in r:
            rows.append([record.get("model", "-"), r["method"], "failed", *([""] * (len(PROFILE_HEADER) - 3))])
            data.append({"model": record.get("model"), "method": r["method"], "error": str(r["error"])})
            continue
        shown, numbers = profile_row(record, r)
        rows.append(shown)
        data.append(numbers)
    device = f"{env.get('device', '-')} {env.get('device_name') or ''}".strip()
    title = f"Training step cost, {record.get('model')}, batch {s.get('batch')} x seq {s.get('seq')} on {device}"
    caption = (
        "One training step per method, paired in rotated rounds in one process; ratios are medians of per-round "
        f"ratios (quartiles in brackets), ↓ = lower is better (below 1 is faster or smaller than {FT}); peak memory from a "
        "fresh process per method."
    )
    heads = {(r.get("params") or {}).get("head") for r in record.get("rows") or [] if "error" not in r} - {None}
    notes = [
        "floor = the frozen model with gradients w.r.t. the input embeddings only: no method training its first layer can be faster.",
        TRAINABLE_NOTE + (f" Head here: {', '.join(fmt_count(h) for h in sorted(h for h in heads if h is not None))}." if heads else ""),
        f"Record {record.get('run_id')}, key {str(record.get('key'))[:8]}; {(record.get('timing') or {}).get('rounds', '-')} rounds.",
    ]
    frame = pd.DataFrame(rows, columns=PROFILE_HEADER)
    table = Table(f"cost-profile-{index}", title, caption, frame, notes, [record.get("model", "")] * len(rows), section="cost")
    table.data = pd.DataFrame(data)
    return table


def paired(row: dict[str, Any], key: str) -> str:
    p = (row.get("paired") or {}).get(key)
    if p is None:
        return "-"
    if row["method"] == key.removeprefix("vs_"):
        return "ref"
    return f"{p['median']:.2f}x ({p['q1']:.2f}-{p['q3']:.2f})"


def median_of(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run_stats(g: Group) -> dict[str, float | None]:
    """A configuration's cost in its own runs, medians over seeds: the axes of the cost fronts, too."""
    return {
        "tokens_per_s": median_of(g.measurement(("train_throughput", "tokens_per_s"))),
        "seconds_per_step": median_of(g.measurement(("train_throughput", "seconds_per_step"))),
        "peak_bytes": median_of(g.measurement(("peak_rss_bytes",))),
        "checkpoint_bytes": median_of(g.measurement(("checkpoint_bytes",))),
    }


RUN_HEADER = [
    "model",
    "task",
    "method",
    "config",
    "n",
    "s/step",
    "tokens/s",
    f"tokens/s vs {FT} ↑",
    "peak MiB",
    f"peak memory vs {FT} ↓",
    "checkpoint MiB",
    TRAINABLE,
]


def run_cost_table(groups: list[Group]) -> Table:
    """Throughput and peak memory of each configuration's runs (medians over seeds), vs the reference on the same model and task."""
    stats = {id(g): run_stats(g) for g in groups}
    ft = {(g.model, g.task): stats[id(g)] for g in groups if g.method == FT}
    rows, models, tasks, data = [], [], [], []
    for g in sorted(groups, key=lambda g: (g.model, g.task, method_rank(g.method), g.variant)):
        s, base = stats[id(g)], ft.get((g.model, g.task)) or {}
        tps_ratio, peak_ratio = ratio(s["tokens_per_s"], base.get("tokens_per_s")), ratio(s["peak_bytes"], base.get("peak_bytes"))
        rows.append(
            [
                g.model,
                g.task,
                g.method,
                g.variant,
                str(len(g.records)),
                "-" if s["seconds_per_step"] is None else f"{s['seconds_per_step']:.3g}",
                "-" if s["tokens_per_s"] is None else f"{s['tokens_per_s']:,.0f}",
                fmt_ratio(tps_ratio),
                fmt_mib(s["peak_bytes"]),
                fmt_ratio(peak_ratio),
                "-" if s["checkpoint_bytes"] is None else f"{s['checkpoint_bytes'] / 2**20:.2f}",
                fmt_count(g.params),
            ]
        )
        data.append({"model": g.model, "task": g.task, "method": g.method, "config": g.variant, "key": g.key, "n": len(g.records), **s,
                     f"tokens_per_s_vs_{FT}": tps_ratio, f"peak_memory_vs_{FT}": peak_ratio, "trainable_method": g.params})  # fmt: skip
        models.append(g.model)
        tasks.append(g.task)
    caption = (
        "Training cost recorded by the runs themselves: steady-state seconds per step and tokens/s, the process's peak "
        f"memory (RSS on CPU) and the adapter checkpoint, medians over seeds; ratios to {FT} on the same model and task "
        "(↑: higher is better, above 1 is faster than ft; ↓: lower is better)."
    )
    notes = ["Runs of different machines or loads are not paired: for a side-by-side comparison use `peftbench profile`.", TRAINABLE_NOTE]
    table = Table(
        "cost-runs", "Training cost in runs", caption, pd.DataFrame(rows, columns=RUN_HEADER), notes, models, tasks, section="cost"
    )
    table.data = pd.DataFrame(data)
    return table


def ratio(value: float | None, reference: float | None) -> float | None:
    return None if value is None or not reference else value / reference


def todo_table(groups: list[Group], where: dict[str, list[str]]) -> Table:
    """The paper rows of the models this report's runs stand for that no run of ours covers yet: the to-do list."""
    done = {(g.model, g.method, g.task) for g in groups}
    used = {paper.paper_model_for(g.model)[0] for g in groups}
    rows, models, tasks = [], [], []
    for r in paper.paper_rows():
        if r.method is None or r.model not in used or not allowed(where, model=r.model, method=r.method):
            continue
        missing = [t for t in r.tasks if (r.model, r.method, t) not in done and allowed(where, task=t)]
        if not missing:
            continue
        rows.append([TABLE_NAMES[r.table], r.model, r.method, r.label, r.params_text, " ".join(missing)])
        models.append(r.model)
        tasks.append(" ".join(missing))
    header = ["paper table", "model", "method", "paper label", TRAINABLE, "not run"]
    caption = "Paper rows of the models this report's runs use (or stand in for) without a finished run of ours on that model."
    notes = ["A run on a tiny model does not tick off the paper's row; only the paper's model does."]
    frame = pd.DataFrame(rows, columns=header)
    return Table("todo", "Paper rows not run yet", caption, frame, notes, models, tasks, section="todo")


def allowed(where: dict[str, list[str]], **fields: str) -> bool:
    return all(not where.get(k) or v in where[k] for k, v in fields.items())


def scores_table(tidy: pd.DataFrame) -> Table:
    """All scores, one row per (configuration, column): the long form, sortable and filterable; its CSV keeps the numbers."""
    if tidy.empty:
        return Table("scores", "All scores", "", pd.DataFrame(), section="scores")
    shown = pd.DataFrame(
        {
            "model": tidy["model"],
            "task": tidy["task"],
            "method": tidy["method"],
            "config": tidy["config"],
            "metric": tidy["column"],
            "n": tidy["n"].astype(str),
            "value": tidy["value"].map(lambda v: "-" if pd.isna(v) else f"{v:.4g}"),
            "interval": [interval_text(lo, hi) for lo, hi in zip(tidy["low"], tidy["high"], strict=True)],
            "paper": [
                p if pd.isna(v) else f"{v:.4g} ({p}{'' if s else ', reference'})"
                for p, v, s in zip(tidy["paper_label"], tidy["paper_value"], tidy["paper_same_model"], strict=True)
            ],
            "ours - paper": [
                diff_cell(v, c, s) for v, c, s in zip(tidy["ours_minus_paper"], tidy["comparable"], tidy["paper_same_model"], strict=True)
            ],
        }
    )
    caption = (
        "Every pooled score in the paper's scale with its interval (kinds as in the tables above), and the paper's value where one exists."
    )
    return Table("scores", "All scores", caption, shown, [], list(tidy["model"]), list(tidy["task"]), data=tidy, section="scores")


def interval_text(low: Any, high: Any) -> str:
    return "none" if pd.isna(low) or pd.isna(high) else f"[{low:.4g}, {high:.4g}]"


def diff_cell(value: Any, comparable: Any, same: Any) -> str:
    if not pd.isna(value):
        return f"{value:+.3g}"
    if same is True and comparable is False:
        return "not comparable"
    return "-"
