"""Speed and memory tables: latency (the paper's Table 1), training cost (profile and run records), and the to-do list.

Latency comes from `peftbench latency` records: every variant's median time per (batch x seq)
cell with its paired overhead vs the base, the A/A control's quartiles as the noise floor, and
the record's own verdict (`*` distinguishable, otherwise within noise). The paper's Table 1 (GPT-2
medium on a Quadro RTX8000) is printed beside it as a reference: other hardware, so no difference.
Training cost comes from `peftbench profile` records (paired step-time ratios vs `ft` and the
floor, peak memory of a fresh process per method) and from run records (steady-state throughput
and peak memory per configuration, vs `ft` on the same model and task when there is one).
"""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

from peftbench.report import paper
from peftbench.report.collect import Group
from peftbench.report.model import Table, fmt_count, fmt_mib, fmt_pct, fmt_ratio
from peftbench.report.scores import method_rank


def latency_table(record: dict[str, Any], index: int) -> Table:
    cells = record.get("cells") or []
    env = record.get("env") or {}
    header = ["model", "variant", "method params", *(f"{c['batch']}x{c['seq']}" for c in cells)]
    rows = []
    for v in record.get("variants") or []:
        params = (v.get("params") or {}).get("method")
        row = [record.get("model", "-"), v["name"], fmt_count(params) if params is not None else "-"]
        for c in cells:
            e = (c.get("variants") or {}).get(v["name"])
            row.append(latency_cell(v, e))
        rows.append(row)
    device = f"{env.get('device', '-')} {env.get('device_name') or ''}".strip()
    title = f"Inference latency, {record.get('model')} on {device} ({env.get('threads', '-')} threads, {env.get('dtype', '-')})"
    caption = (
        "Median ms of a single forward pass per batch x seq cell and the overhead vs the base (median of per-round "
        "paired ratios). The A/A row is the noise floor: an identical copy's overhead [its ratios' Q1, Q3]."
    )
    notes = [
        "* = distinguishable: the variant's middle half of paired ratios lies outside both the A/A control's and 1.0; "
        "unmarked = within noise.",
        f"Record {record.get('run_id')}, key {str(record.get('key'))[:8]}, "
        f"{min((c.get('rounds') or 0 for c in cells), default=0)}+ rounds per cell.",
    ]
    frame = pd.DataFrame(rows, columns=header)
    return Table(f"latency-{index}", title, caption, frame, notes, [record.get("model", "")] * len(rows))


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
    return Table("latency-paper", "Paper: inference latency (Table 1)", caption, frame, [t.get("notes", "")])


def profile_table(record: dict[str, Any], index: int) -> Table:
    s, env = record.get("settings") or {}, record.get("env") or {}
    header = ["model", "method", "step s", "vs ft (Q1-Q3)", "vs floor (Q1-Q3)", "peak MiB", "peak vs ft", "optimizer MiB", "trainable"]
    rows = []
    for r in record.get("rows") or []:
        if "error" in r:
            rows.append([record.get("model", "-"), r["method"], "failed", *([""] * (len(header) - 3))])
            continue
        m, q = r.get("memory") or {}, r.get("ratios") or {}
        rows.append(
            [
                record.get("model", "-"),
                r["method"],
                f"{r['step_time_s']['median']:.4g}",
                paired(r, "vs_ft"),
                paired(r, "vs_floor"),
                "failed" if "error" in m else fmt_mib(m.get("peak_bytes")),
                fmt_ratio(q.get("peak_memory_vs_ft")),
                f"{r.get('optimizer_state_bytes', 0) / 2**20:.1f}",
                fmt_count((r.get("params") or {}).get("trainable")),
            ]
        )
    device = f"{env.get('device', '-')} {env.get('device_name') or ''}".strip()
    title = f"Training step cost, {record.get('model')}, batch {s.get('batch')} x seq {s.get('seq')} on {device}"
    caption = (
        "One training step per method, paired in rotated rounds in one process; ratios are medians of per-round "
        "ratios (quartiles in brackets); peak memory from a fresh process per method."
    )
    notes = [
        "floor = the frozen model with gradients w.r.t. the input embeddings only: no method training its first layer can be faster.",
        f"Record {record.get('run_id')}, key {str(record.get('key'))[:8]}; {(record.get('timing') or {}).get('rounds', '-')} rounds.",
    ]
    frame = pd.DataFrame(rows, columns=header)
    return Table(f"cost-profile-{index}", title, caption, frame, notes, [record.get("model", "")] * len(rows))


def paired(row: dict[str, Any], key: str) -> str:
    p = (row.get("paired") or {}).get(key)
    if p is None:
        return "-"
    if row["method"] == key.removeprefix("vs_"):
        return "ref"
    return f"{p['median']:.2f}x ({p['q1']:.2f}-{p['q3']:.2f})"


def median_of(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run_cost_table(groups: list[Group]) -> Table:
    """Throughput and peak memory of each configuration's runs (medians over seeds), vs `ft` on the same model and task."""
    stats = {}
    for g in groups:
        stats[id(g)] = {
            "tps": median_of(g.measurement(("train_throughput", "tokens_per_s"))),
            "sps": median_of(g.measurement(("train_throughput", "seconds_per_step"))),
            "peak": median_of(g.measurement(("peak_rss_bytes",))),
        }
    ft = {(g.model, g.task): stats[id(g)] for g in groups if g.method == "ft"}
    header = ["model", "task", "method", "config", "n", "s/step", "train tokens/s", "vs ft", "peak MiB", "peak vs ft", "trainable"]
    rows, models, tasks = [], [], []
    for g in sorted(groups, key=lambda g: (g.model, g.task, method_rank(g.method), g.variant)):
        s, base = stats[id(g)], ft.get((g.model, g.task))
        rows.append(
            [
                g.model,
                g.task,
                g.method,
                g.variant,
                str(len(g.records)),
                "-" if s["sps"] is None else f"{s['sps']:.3g}",
                "-" if s["tps"] is None else f"{s['tps']:,.0f}",
                ratio(s["tps"], base and base["tps"]),
                fmt_mib(s["peak"]),
                ratio(s["peak"], base and base["peak"]),
                fmt_count(g.params),
            ]
        )
        models.append(g.model)
        tasks.append(g.task)
    caption = (
        "Training cost recorded by the runs themselves: steady-state seconds per step and tokens/s, and the process's peak "
        "memory (RSS on CPU), medians over seeds; vs ft = ratio to ft on the same model and task."
    )
    notes = ["Runs of different machines or loads are not paired: for a side-by-side comparison use `peftbench profile`."]
    return Table("cost-runs", "Training cost in runs", caption, pd.DataFrame(rows, columns=header), notes, models, tasks)


def ratio(value: float | None, reference: float | None) -> str:
    return "-" if value is None or not reference else f"{value / reference:.2f}x"


def todo_table(groups: list[Group], where: dict[str, list[str]]) -> Table:
    """Every paper row (within the filter) some task of which we have not run on the paper's own model: the to-do list."""
    done = {(g.model, g.method, g.task) for g in groups}
    tables = {"table2": "Table 2 (GLUE)", "table3": "Table 3 (E2E)", "table13": "Table 13 (DART)", "table14": "Table 14 (WebNLG)"}
    rows, models, tasks = [], [], []
    for r in paper.paper_rows():
        if r.method is None or not allowed(where, model=r.model, method=r.method):
            continue
        missing = [t for t in r.tasks if (r.model, r.method, t) not in done and allowed(where, task=t)]
        if not missing:
            continue
        rows.append([tables[r.table], r.model, r.method, r.label, r.params_text, " ".join(missing)])
        models.append(r.model)
        tasks.append(" ".join(missing))
    header = ["paper table", "model", "method", "paper label", "# trainable", "not run"]
    caption = "Paper rows without a finished run of ours on the same model (within the filter): what is left to reproduce."
    notes = ["A run on a tiny model does not tick off the paper's row; only the paper's model does."]
    return Table("todo", "Missing: paper rows not run yet", caption, pd.DataFrame(rows, columns=header), notes, models, tasks)


def allowed(where: dict[str, list[str]], **fields: str) -> bool:
    return all(not where.get(k) or v in where[k] for k, v in fields.items())


def scores_table(tidy: pd.DataFrame) -> Table:
    """All scores, one row per (configuration, column): the long form, sortable and filterable; its CSV keeps the numbers."""
    if tidy.empty:
        return Table("scores", "All scores", "", pd.DataFrame())
    shown = pd.DataFrame(
        {
            "model": tidy["model"],
            "task": tidy["task"],
            "method": tidy["method"],
            "config": tidy["config"],
            "metric": tidy["column"],
            "aggregate": tidy["aggregate"],
            "n": tidy["n"].astype(str),
            "value": tidy["value"].map(lambda v: "-" if pd.isna(v) else f"{v:.4g}"),
            "sd": tidy["sd"].map(lambda v: "-" if pd.isna(v) else f"{v:.3g}"),
            "paper": [
                p if pd.isna(v) else f"{v:g} ({p}{'' if s else ', reference'})"
                for p, v, s in zip(tidy["paper_label"], tidy["paper_value"], tidy["paper_same_model"], strict=True)
            ],
            "ours - paper": tidy["ours_minus_paper"].map(lambda v: "-" if pd.isna(v) else f"{v:+.3g}"),
            "key": tidy["key"].str[:8],
        }
    )
    caption = "Every aggregated score in the paper's scale, with the paper's value where one exists (reference = another model)."
    return Table("scores", "All scores", caption, shown, [], list(tidy["model"]), list(tidy["task"]), data=tidy)
