"""Score tables laid out like the paper's: GLUE (Table 2), E2E (Table 3), DART (13), WebNLG (14).

Each of our rows (model, method, configuration) comes with the paper's row beside it and, when the
run followed the paper's protocol (paper/protocol.py: same model, whole splits, the paper's
decoding and epochs, a trainable count near the row's), the difference `ours - paper`. A run that
differs is marked (⚠k, the differences listed under the table) and its difference is withheld
unless asked for (`--diff-anyway`): a 64-example, greedy-decoded run 35 BLEU under the paper says
nothing about the method. A tiny model's paper row is its family's paper model, a reference only.

Every cell of ours carries an interval and says which kind (report/uncertainty.py), in the
paper's scale; GLUE cells are medians over seeds, data-to-text cells means, as the paper pools.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from peftbench import paper
from peftbench.paper import Column, ScoreSpec, method_rank
from peftbench.paper.protocol import differences
from peftbench.report.collect import Cell, Group, aggregate
from peftbench.report.model import Table, fmt_count, fmt_num
from peftbench.report.uncertainty import KINDS, Interval, example_interval
from peftbench.tasks.metrics import metric_for


def scale_of(column: Column, group: Group) -> float:
    if column.scale is not None:
        return column.scale
    return metric_for(metric_of(column, group)).paper_scale


def metric_of(column: Column, group: Group) -> str:
    return column.metric or (group.records[0].get("main_metric") or "accuracy")


def cell_of(column: Column, group: Group, rule: str) -> Cell:
    """The pooled value with its interval: over seeds when there are several, over examples for one run."""
    raw = group.values(column.metric)
    cell = aggregate(raw, rule, scale_of(column, group))
    if cell.n == 1:
        interval = example_interval(metric_of(column, group), raw[0], group.eval_examples(), scale_of(column, group))
        cell = Cell(cell.value, cell.spread, cell.n, interval)
    return cell


def fmt_interval(interval: Interval, digits: int) -> str:
    if not interval.known:
        return "[none]"
    return f"[{interval.low:.{digits}f}, {interval.high:.{digits}f}]{interval.kind}"


def fmt_cell(cell: Cell, digits: int) -> str:
    if cell.value is None:
        return "-"
    return f"{cell.value:.{digits}f} {fmt_interval(cell.interval, digits)} n={cell.n}"


def fmt_paper(row: paper.PaperRow, column: Column) -> str:
    value = row.values.get(column.id)
    if value is None:
        return "-"
    spread = row.spread.get(column.id)
    return fmt_num(value, column.digits) + (f" ±{spread:.{column.digits}f}" if spread is not None else "")


@dataclass
class RowGroup:
    """One row of ours (a model, method and configuration over the table's tasks) and its paper pairing."""

    model: str
    method: str
    variant: str
    preset: str
    members: list[Group]
    cells: dict[str, Cell] = field(default_factory=dict)
    prow: paper.PaperRow | None = None
    same: bool = False
    diffs: list[str] = field(default_factory=list)  # protocol differences (same-model pairings only)
    marker: str = ""

    @property
    def by_task(self) -> dict[str, Group]:
        return {g.task: g for g in self.members}

    @property
    def params(self) -> float | None:
        return next((g.params for g in self.members if g.params is not None), None)

    @property
    def label(self) -> str:
        extra = "; ".join(x for x in (self.variant, "" if self.preset == "spec" else self.preset) if x)
        return f"{self.model} {self.method}" + (f" ({extra})" if extra else "")

    @property
    def comparable(self) -> bool:
        return self.same and self.prow is not None and not self.diffs


def row_groups(spec: ScoreSpec, groups: list[Group], columns: list[Column]) -> list[RowGroup]:
    """Our rows of one table, in the paper's order, each paired with the paper's row and checked against its protocol."""
    mine = sorted(
        (g for g in groups if any(c.task == g.task for c in columns)),
        key=lambda g: (g.model, method_rank(g.method), g.variant, g.preset_text),
    )
    keyed: dict[tuple[str, str, str, str], list[Group]] = {}
    for g in mine:
        keyed.setdefault((g.model, g.method, g.variant, g.preset_text), []).append(g)
    rows = []
    for (model, method, variant, preset), members in keyed.items():
        rg = RowGroup(model, method, variant, preset, members)
        rg.cells = {c.id: cell_of(c, rg.by_task[c.task], spec.rule) if c.task in rg.by_task else Cell(None, None, 0) for c in columns}
        if spec.paper_table:
            rg.prow, rg.same = paper.match(spec.paper_table, model, method, rg.params)
        if rg.prow is not None and rg.same:
            found = [d for g in members for d in differences(rg.prow, paper.paper_model_for(model)[0], g.task, g.run_protocol())]
            rg.diffs = list(dict.fromkeys(found))
        rows.append(rg)
    for k, rg in enumerate((r for r in rows if r.diffs), start=1):
        rg.marker = f"⚠{k}"
    return rows


def score_table(spec: ScoreSpec, groups: list[Group], diff_anyway: bool = False) -> tuple[Table, list[dict[str, Any]]]:
    """The paper-layout table of `spec` and the tidy numeric rows behind it (its CSV and scores.csv)."""
    columns = [c for c in spec.columns if any(g.task == c.task for g in groups)]
    rows_of_ours = row_groups(spec, groups, columns)
    avg_header = avg_label(len(columns), len(spec.columns)) if spec.average else None
    header = ["model & method", "row", "# trainable", *(c.header for c in columns), *([avg_header] if avg_header else [])]
    rows, models, tasks, group_ids, kinds, tidy = [], [], [], [], [], []
    for gid, rg in enumerate(rows_of_ours):
        block = table_block(spec, columns, rg, diff_anyway)
        for r, kind in zip(block, ("ours", "paper", "diff"), strict=False):
            rows.append(r)
            kinds.append(kind)
            models.append(rg.model)
            tasks.append(" ".join(sorted(rg.by_task)))
            group_ids.append(gid)
        tidy += tidy_rows(spec, columns, rg, diff_anyway)
    frame = pd.DataFrame(rows, columns=header)
    table = Table(
        spec.name, title_of(spec, rows_of_ours), caption_of(spec), frame, score_notes(spec, rows_of_ours), models, tasks, group_ids, kinds
    )
    table.data = pd.DataFrame(tidy)
    table.bold = best_cells(frame, kinds, columns, rows_of_ours)
    return table, tidy


def title_of(spec: ScoreSpec, rows: list[RowGroup]) -> str:
    """The paper's title, with a warning when no row of ours follows the paper's protocol."""
    if spec.paper_table and not any(r.comparable for r in rows):
        return f"{spec.title}: no row of ours follows the paper's protocol"
    return spec.title


def caption_of(spec: ScoreSpec) -> str:
    source = f" Paper: {paper.source(spec.paper_table)}." if spec.paper_table else " Not a table of the paper."
    return f"Cells: {spec.rule} over seeds [interval]kind n=seeds (kinds under the table).{source}"


def avg_label(shown: int, total: int) -> str:
    """The paper averages all eight GLUE tasks; over fewer, the header says how many."""
    return "Avg" if shown == total else f"Avg ({shown} task{'s' if shown > 1 else ''})"


def table_block(spec: ScoreSpec, columns: list[Column], rg: RowGroup, diff_anyway: bool) -> list[list[str]]:
    """Our row, the paper's row (or a line saying there is none), and the difference when it means something."""
    avg = average([rg.cells[c.id].value for c in columns]) if spec.average else None
    tail = [fmt_num(avg, 1)] if spec.average else []
    ours = [rg.label, f"ours {rg.marker}".strip(), fmt_count(rg.params), *(fmt_cell(rg.cells[c.id], c.digits) for c in columns), *tail]
    if not spec.paper_table:
        return [ours]
    paper_model, _ = paper.paper_model_for(rg.model)
    blank = [""] * (len(columns) + len(tail))
    if rg.prow is None:
        what = f"paper: no {rg.method} row for {paper_model}" + ("" if rg.same else f" (nor for {rg.model}: not in the paper)")
        return [ours, ["", what, "", *blank]]
    label = f"paper {rg.prow.label}" if rg.same else f"reference: {paper_model} {rg.prow.label}"
    pvals = [rg.prow.values.get(c.id) for c in columns]
    theirs = ["", label, rg.prow.params_text, *(fmt_paper(rg.prow, c) for c in columns)]
    theirs += [fmt_num(average(pvals), 1)] if spec.average else []
    if not rg.same:
        return [ours, theirs]
    if rg.diffs and not diff_anyway:
        return [ours, theirs, ["", f"ours - paper: not comparable ({rg.marker})", "", *(["n/c"] * len(blank))]]
    diffs = [diff_text(rg.cells[c.id], p, c.digits) for c, p in zip(columns, pvals, strict=True)]
    pavg = average(pvals)
    diffs += [("-" if avg is None or pavg is None else f"{avg - pavg:+.1f}")] if spec.average else []
    label = "ours - paper" + (f" (not comparable: {rg.marker})" if rg.diffs else "")
    return [ours, theirs, ["", label, "", *diffs]]


def diff_text(cell: Cell, paper_value: float | None, digits: int) -> str:
    if cell.value is None or paper_value is None:
        return "-"
    return f"{cell.value - paper_value:+.{digits}f} {fmt_interval(cell.interval.shifted(paper_value), digits)}"


def average(values: list[float | None]) -> float | None:
    """The paper's Avg: the mean over every column, only when none is missing."""
    if not values or any(v is None for v in values):
        return None
    return statistics.fmean(values)  # type: ignore[arg-type]


def best_cells(frame: pd.DataFrame, kinds: list[str], columns: list[Column], rows: list[RowGroup]) -> set[tuple[int, str]]:
    """The best value of ours per column (by the metric's direction), bolded as the paper bolds its best."""
    ours_at = [i for i, k in enumerate(kinds) if k == "ours"]
    bold: set[tuple[int, str]] = set()
    for c in columns:
        scored = [(rg.cells[c.id].value, i, rg) for i, rg in zip(ours_at, rows, strict=True) if rg.cells[c.id].value is not None]
        if len(scored) < 2:
            continue
        higher = metric_for(metric_of(c, scored[0][2].by_task[c.task])).higher_is_better
        best = (max if higher else min)(v for v, _, _ in scored if v is not None)
        bold |= {(i, c.header) for v, i, _ in scored if v == best}
    return bold


def tidy_rows(spec: ScoreSpec, columns: list[Column], rg: RowGroup, diff_anyway: bool) -> list[dict[str, Any]]:
    """One numeric row per (configuration, column): value, sd, n, interval, the paper's value, the protocol verdict."""
    out = []
    for c in columns:
        g = rg.by_task.get(c.task)
        if g is None:
            continue
        cell, prow = rg.cells[c.id], rg.prow
        pvalue = prow.values.get(c.id) if prow else None
        shown = rg.same and cell.value is not None and pvalue is not None and (rg.comparable or diff_anyway)
        diff = cell.interval.shifted(pvalue) if shown and pvalue is not None else Interval(None, None, "N")
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
                "metric": metric_of(c, g),
                "higher_is_better": metric_for(metric_of(c, g)).higher_is_better,
                "aggregate": spec.rule,
                "n": cell.n,
                "seeds": " ".join(str(s) for s in g.seeds),
                "value": cell.value,
                "sd": cell.spread,
                "low": cell.interval.low,
                "high": cell.interval.high,
                "interval": KINDS[cell.interval.kind],
                "trainable": g.params,
                "paper_model": paper.paper_model_for(g.model)[0] if prow else "",
                "paper_same_model": rg.same if prow else None,
                "paper_label": prow.label if prow else "",
                "paper_value": pvalue,
                "paper_pm": prow.spread.get(c.id) if prow else None,
                "protocol_differences": "; ".join(rg.diffs),
                "comparable": rg.comparable if prow else None,
                "ours_minus_paper": cell.value - pvalue if shown and cell.value is not None and pvalue is not None else None,
                "diff_low": diff.low,
                "diff_high": diff.high,
            }
        )
    return out


def score_notes(spec: ScoreSpec, rows: list[RowGroup]) -> list[str]:
    """Under the table: the pooling rule, the interval kinds that occur, each ⚠ marker's differences."""
    kinds = sorted({rg.cells[c].interval.kind for rg in rows for c in rg.cells if rg.cells[c].value is not None})
    notes = [
        f"{'Median' if spec.rule == 'median' else 'Mean'} over seeds, as the paper pools this table; n = seeds. "
        "Intervals: " + "; ".join(f"{k if k != 'N' else '[none]'} = {KINDS[k]}" for k in kinds) + ".",
        "A configuration's name says what sets it apart from other rows of its method; its full key is in the CSV.",
    ]
    if any(not rg.same for rg in rows if rg.prow is not None):
        notes.append("reference: the paper's model of the same family, shown as a reference only; no difference is computed.")
    notes += [f"{rg.marker} {rg.label} does not follow the paper's protocol: {'; '.join(rg.diffs)}." for rg in rows if rg.diffs]
    if any(rg.diffs for rg in rows):
        notes.append("ours - paper is withheld (n/c) for such rows; `peftbench report --diff-anyway` shows it, still marked.")
    notes += table_specific_notes(spec)
    return notes


def table_specific_notes(spec: ScoreSpec) -> list[str]:
    if spec.name == "glue":
        return [
            "Scores x100: accuracy (MNLI matched: the repository's 87.5 for LoRA is the matched accuracy), Matthews (CoLA), "
            "Pearson (STS-B); best epoch. Avg: the mean of the task cells, without an interval.",
            "Bold: the best of our rows per column.",
        ]
    if spec.name in ("webnlg", "dart"):
        return ["TER: lower is better (ours - paper < 0 is an improvement); BLEU and METEOR: higher is better. Bold: our best per column."]
    if spec.name == "e2e":
        return ["METEOR and ROUGE-L x100, as Table 3 prints them. Bold: our best per column."]
    return []


def score_tables(groups: list[Group], diff_anyway: bool = False) -> tuple[list[Table], pd.DataFrame]:
    """The paper-layout tables with records, and the tidy scores of every group (tasks no paper table has included)."""
    tables, tidy = [], []
    for spec in paper.SPECS:
        table, rows = score_table(spec, groups, diff_anyway)
        if not table.empty:
            tables.append(table)
            tidy += rows
    known = {c.task for spec in paper.SPECS for c in spec.columns}
    for task in sorted({g.task for g in groups} - known):  # a task of ours the paper never ran: a table of its own metrics
        table, rows = score_table(own_spec(task), groups)
        tables.append(table)
        tidy += rows
    return tables, pd.DataFrame(tidy)


def own_spec(task: str) -> ScoreSpec:
    """The table of a task no paper table holds (rotten-tomatoes...): its metrics in the registry's scale, seeds
    pooled by the metric registry's rule for its main metric (label metrics: median, as GLUE; generation: mean)."""
    from peftbench.tasks.base import task_specs

    if task not in task_specs():  # records of a task whose spec is gone: its main metric, mean over seeds
        return ScoreSpec(task, f"{task} (no task spec)", "", "mean", (Column("main", "main", task, None, 2),))
    spec = task_specs().get(task)
    rule = metric_for(spec.main_metric).pooling
    columns = tuple(Column(m, m, task, m, 1) for m in (spec.main_metric, *(m for m in spec.metrics if m != spec.main_metric)))
    return ScoreSpec(task, f"{task}: {spec.description} (not in the paper)", "", rule, columns)
