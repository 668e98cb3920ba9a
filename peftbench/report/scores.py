"""Score tables laid out like the paper's: GLUE (Table 2), E2E (Table 3), DART (13), WebNLG (14).

Each of our rows (model, method, configuration) comes with the paper's row beside it: the same
model's row and the difference `ours - paper`, or, for a tiny model, the paper's row for the model
of the same family as a *reference* (labelled as another model, no difference: a random 2-layer
model's score says nothing about the paper's). A missing paper row is said so. Every cell shows
the number of seeds; GLUE cells are medians over seeds, data-to-text cells means, both with the
standard deviation over seeds (±), in the paper's scale.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import pandas as pd

from peftbench.report import paper
from peftbench.report.collect import Cell, Group, aggregate
from peftbench.report.model import Table, fmt_count, fmt_num, fmt_signed
from peftbench.tasks.metrics import metric_for

# the paper's row order of methods; methods it never ran (relora, ...) follow alphabetically
METHOD_ORDER = ("ft", "ft_top2", "bitfit", "prefix_embed", "prefix_layer", "adapter_h", "adapter_l", "adapter_p", "adapter_d", "lora")


@dataclass(frozen=True)
class Column:
    id: str  # the column id the paper reader uses (a GLUE task, or a metric name)
    header: str
    task: str
    metric: str | None  # None: the task's main metric (GLUE)
    digits: int
    scale: float | None = None  # None: the metric registry's paper_scale


@dataclass(frozen=True)
class ScoreSpec:
    name: str
    title: str
    paper_table: str
    rule: str  # "median" (GLUE) or "mean" (data-to-text), as the paper aggregates seeds
    columns: tuple[Column, ...]
    average: bool = False


GLUE_HEADERS = {
    "mnli": "MNLI",
    "sst2": "SST-2",
    "mrpc": "MRPC",
    "cola": "CoLA",
    "qnli": "QNLI",
    "qqp": "QQP",
    "rte": "RTE",
    "stsb": "STS-B",
}
SPLITS = (("_unseen", "U"), ("_seen", "S"), ("", "A"))

SPECS = (
    ScoreSpec(
        "glue",
        "GLUE dev (the paper's Table 2)",
        "table2",
        "median",
        tuple(Column(t, h, t, None, 1) for t, h in GLUE_HEADERS.items()),
        average=True,
    ),
    ScoreSpec(
        "e2e",
        "E2E NLG Challenge test (the paper's Table 3)",
        "table3",
        "mean",
        (
            Column("bleu", "BLEU", "e2e", "bleu", 1),
            Column("nist", "NIST", "e2e", "nist", 2),
            # Table 3 prints METEOR and ROUGE-L x100 (46.2, 71.0), unlike Tables 13-14 (0.39): this table's own scale
            Column("meteor", "MET", "e2e", "meteor", 1, scale=100.0),
            Column("rouge_l", "ROUGE-L", "e2e", "rouge_l", 1, scale=100.0),
            Column("cider", "CIDEr", "e2e", "cider", 2),
        ),
    ),
    ScoreSpec(
        "webnlg",
        "WebNLG test, unseen (U) / seen (S) / all (A) categories (the paper's Table 14)",
        "table14",
        "mean",
        tuple(
            Column(f"{m}{suffix}", f"{h} {s}", "webnlg", f"{m}{suffix}", d)
            for m, h, d in (("bleu", "BLEU", 1), ("meteor", "MET", 2), ("ter", "TER", 2))
            for suffix, s in SPLITS
        ),
    ),
    ScoreSpec(
        "dart",
        "DART test (the paper's Table 13)",
        "table13",
        "mean",
        (Column("bleu", "BLEU", "dart", "bleu", 1), Column("meteor", "MET", "dart", "meteor", 2), Column("ter", "TER", "dart", "ter", 2)),
    ),
)


def method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)


def scale_of(column: Column, group: Group) -> float:
    if column.scale is not None:
        return column.scale
    name = column.metric or (group.records[0].get("main_metric") or "accuracy")
    return metric_for(name).paper_scale


def cell_of(column: Column, group: Group, rule: str) -> Cell:
    return aggregate(group.values(column.metric), rule, scale_of(column, group))


def fmt_cell(cell: Cell, digits: int) -> str:
    if cell.value is None:
        return "-"
    spread = f" ±{cell.spread:.{digits}f}" if cell.spread is not None else ""
    return f"{cell.value:.{digits}f}{spread} (n={cell.n})"


def fmt_paper(row: paper.PaperRow, column: Column) -> str:
    value = row.values.get(column.id)
    if value is None:
        return "-"
    spread = row.spread.get(column.id)
    return fmt_num(value, column.digits) + (f" ±{spread:.{column.digits}f}" if spread is not None else "")


def score_table(spec: ScoreSpec, groups: list[Group]) -> tuple[Table, list[dict[str, Any]]]:
    """The paper-layout table of `spec` and the tidy numeric rows behind it (for scores.csv)."""
    mine = [g for g in groups if any(c.task == g.task for c in spec.columns)]
    columns = [c for c in spec.columns if any(g.task == c.task for g in mine)]
    keys: dict[tuple[str, str, str, str], list[Group]] = {}
    for g in sorted(mine, key=lambda g: (g.model, method_rank(g.method), g.variant, g.preset_text)):
        keys.setdefault((g.model, g.method, g.variant, g.preset_text), []).append(g)
    avg_header = avg_label(len(columns), len(spec.columns)) if spec.average else None
    header = [
        "model",
        "method",
        "config",
        "preset",
        "source",
        "# trainable",
        *(c.header for c in columns),
        *([avg_header] if avg_header else []),
    ]
    rows: list[list[str]] = []
    models: list[str] = []
    tasks: list[str] = []
    group_ids: list[int] = []
    kinds: list[str] = []
    tidy: list[dict[str, Any]] = []
    for gid, ((model, method, variant, preset), members) in enumerate(keys.items()):
        by_task = {g.task: g for g in members}
        params = next((g.params for g in members if g.params is not None), None)
        cells = {c.id: cell_of(c, by_task[c.task], spec.rule) if c.task in by_task else Cell(None, None, 0) for c in columns}
        prow, same = paper.match(spec.paper_table, model, method, params) if spec.paper_table else (None, False)
        block = table_block(spec, columns, (model, method, variant, preset), params, cells, prow, same)
        task_list = " ".join(sorted(by_task))
        for r, kind in zip(block, ("ours", "paper", "diff"), strict=False):
            kinds.append(kind)
            rows.append(r)
            models.append(model)
            tasks.append(task_list)
            group_ids.append(gid)
        tidy += tidy_rows(spec, columns, by_task, cells, prow, same)
    frame = pd.DataFrame(rows, columns=header)
    notes = score_notes(spec)
    source = f" Paper: {paper.source(spec.paper_table)}." if spec.paper_table else " The paper has no such table."
    caption = f"Cells: {spec.rule} over seeds ± standard deviation (n = seeds).{source}"
    return Table(spec.name, spec.title, caption, frame, notes, models, tasks, group_ids, kinds), tidy


def avg_label(shown: int, total: int) -> str:
    """The paper averages all eight GLUE tasks; over fewer, the header says how many."""
    return "Avg" if shown == total else f"Avg ({shown} task{'s' if shown > 1 else ''})"


def table_block(
    spec: ScoreSpec,
    columns: list[Column],
    key: tuple[str, str, str, str],
    params: float | None,
    cells: dict[str, Cell],
    prow: paper.PaperRow | None,
    same: bool,
) -> list[list[str]]:
    """Our row, the paper's row (or a line saying there is none), and the difference when the models are the same."""
    model, method = key[:2]
    avg = average([cells[c.id].value for c in columns]) if spec.average else None
    ours = [*key, "ours", fmt_count(params), *(fmt_cell(cells[c.id], c.digits) for c in columns)]
    ours += [fmt_num(avg, 1)] if spec.average else []
    if not spec.paper_table:
        return [ours]
    paper_model, _ = paper.paper_model_for(model)
    if prow is None:
        what = f"paper: no {method} row for {paper_model}" + ("" if same else f" (nor for {model}: not in the paper)")
        return [ours, [*key, what, "", *([""] * len(columns)), *([""] if spec.average else [])]]
    label = f"paper: {prow.label}" if same else f"paper, {paper_model} (other model, reference only): {prow.label}"
    pvals = [prow.values.get(c.id) for c in columns]
    theirs = [*key, label, prow.params_text, *(fmt_paper(prow, c) for c in columns)]
    theirs += [fmt_num(average(pvals), 1)] if spec.average else []
    if not same:
        return [ours, theirs]
    diffs = [None if cells[c.id].value is None or p is None else cells[c.id].value - p for c, p in zip(columns, pvals, strict=True)]
    diff = [*key, "ours - paper", "", *(fmt_signed(d, c.digits) for d, c in zip(diffs, columns, strict=True))]
    diff += [fmt_signed(None if avg is None or average(pvals) is None else avg - average(pvals), 1)] if spec.average else []
    return [ours, theirs, diff]


def average(values: list[float | None]) -> float | None:
    """The paper's Avg: the mean over every column, only when none is missing."""
    if not values or any(v is None for v in values):
        return None
    return statistics.fmean(values)  # type: ignore[arg-type]


def tidy_rows(
    spec: ScoreSpec, columns: list[Column], by_task: dict[str, Group], cells: dict[str, Cell], prow: paper.PaperRow | None, same: bool
) -> list[dict[str, Any]]:
    out = []
    for c in columns:
        g = by_task.get(c.task)
        if g is None:
            continue
        cell, pvalue = cells[c.id], prow.values.get(c.id) if prow else None
        out.append(
            {
                "table": spec.name,
                "model": g.model,
                "task": g.task,
                "method": g.method,
                "config": g.variant,
                "preset": g.preset_text,
                "key": g.key,
                "column": c.header,
                "metric": c.metric or (g.records[0].get("main_metric") or ""),
                "higher_is_better": metric_for(c.metric or g.records[0].get("main_metric") or "accuracy").higher_is_better,
                "aggregate": spec.rule,
                "n": cell.n,
                "seeds": " ".join(str(s) for s in g.seeds),
                "value": cell.value,
                "sd": cell.spread,
                "trainable": g.params,
                "paper_model": paper.paper_model_for(g.model)[0] if prow else "",
                "paper_same_model": same if prow else None,
                "paper_label": prow.label if prow else "",
                "paper_value": pvalue,
                "ours_minus_paper": cell.value - pvalue if same and cell.value is not None and pvalue is not None else None,
            }
        )
    return out


def score_notes(spec: ScoreSpec) -> list[str]:
    notes = [
        f"{'Median' if spec.rule == 'median' else 'Mean'} over seeds as the paper reports this table; ± = standard deviation "
        "over seeds (none for one seed); n = seeds. Paper ± values are as printed.",
        "Rows of one method with different configurations (different comparability keys) are separate; `config` names what differs.",
        "A tiny model's paper row is the paper's model of the same family, shown for reference only: no difference is computed.",
    ]
    if spec.name == "glue":
        notes.append("Scores x100: accuracy (MNLI matched, SST-2, MRPC, QNLI, QQP, RTE), Matthews (CoLA), Pearson (STS-B); best epoch.")
    if spec.name in ("webnlg", "dart"):
        notes.append("TER: lower is better (ours - paper < 0 is an improvement); BLEU and METEOR: higher is better.")
    if spec.name == "e2e":
        notes.append("METEOR and ROUGE-L x100, as Table 3 prints them.")
    return notes


def score_tables(groups: list[Group]) -> tuple[list[Table], pd.DataFrame]:
    """The paper-layout tables with records, and the tidy scores of every group (tasks no paper table has included)."""
    tables, tidy = [], []
    for spec in SPECS:
        table, rows = score_table(spec, groups)
        if not table.empty:
            tables.append(table)
            tidy += rows
    known = {c.task for spec in SPECS for c in spec.columns}
    for task in sorted({g.task for g in groups} - known):  # a task of ours the paper never ran: a table of its own metrics
        table, rows = score_table(own_spec(task), groups)
        tables.append(table)
        tidy += rows
    return tables, pd.DataFrame(tidy)


def own_spec(task: str) -> ScoreSpec:
    """The table of a task no paper table holds (rotten-tomatoes...): its metrics in the registry's scale, seeds
    pooled by the paper's rule for the task's kind (classification and regression: median, as GLUE; generation: mean)."""
    from peftbench.tasks.base import task_specs

    if task not in task_specs():  # records of a task whose spec is gone: its main metric, mean over seeds
        return ScoreSpec(task, f"{task} (no task spec)", "", "mean", (Column("main", "main", task, None, 2),))
    spec = task_specs().get(task)
    rule = "mean" if spec.kind == "generation" else "median"
    columns = tuple(Column(m, m, task, m, 1) for m in (spec.main_metric, *(m for m in spec.metrics if m != spec.main_metric)))
    return ScoreSpec(task, f"{task}: {spec.description} (not in the paper)", "", rule, columns)
