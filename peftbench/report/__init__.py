"""`peftbench report`: tables like the paper's, our numbers beside the paper's, figures; HTML, Markdown, LaTeX, CSV.

    from peftbench.report import make_report
    result = make_report("results", {"task": ["mrpc"]}, Path("reports/mrpc"), ("html", "md", "tex", "csv"))

Layers: `collect` (records -> groups of seeds by comparability key, variant labels), `paper` (the
paper's published rows in our names), `scores` and `costs` (the tables, one `model.Table` each),
`figures` (SVG), `render` (the files, through jinja2 templates in `templates/`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from peftbench.errors import UsageError
from peftbench.report import costs, scores
from peftbench.report.collect import Selection, describe_where, parse_where, select
from peftbench.report.model import Table
from peftbench.report.render import FORMATS, Report, write

__all__ = ["FORMATS", "ReportResult", "build", "make_report", "parse_formats", "parse_where"]


@dataclass
class ReportResult:
    report: Report
    selection: Selection
    written: list[Path]


def parse_formats(text: str | None) -> tuple[str, ...]:
    if not text:
        return FORMATS
    chosen = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise UsageError(f"--format: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    return chosen


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(sel: Selection) -> list[str]:
    groups = sel.groups
    lines = [
        f"{plural(sel.runs, 'finished run')} in {plural(len(groups), 'configuration')} (comparability keys) over "
        f"{plural(len({g.model for g in groups}), 'model')}, {plural(len({g.task for g in groups}), 'task')} and "
        f"{plural(len({g.method for g in groups}), 'method')}; {len(sel.latency)} latency and {len(sel.profile)} profile "
        f"record{'' if len(sel.latency) + len(sel.profile) == 1 else 's'}.",
        "Seeds of one configuration are pooled as the paper does: GLUE median over seeds, E2E / WebNLG / DART mean; "
        "± = standard deviation over seeds; n = seeds in the cell. Scores in each paper table's scale.",
        "Paper values: the same model's row with the difference ours - paper; a tiny model gets the paper row of the model "
        "of its family (roberta-base, deberta-v2-xxlarge, gpt2-medium) as a reference only, no difference.",
    ]
    if sel.trials or sel.studies:
        lines.append(
            f"{plural(len(sel.studies), 'tuning study')} ({plural(sel.trials, 'finished trial run')} in the selection): trials are "
            "shown in the tuning table, not as score rows; a row's preset column says `spec` (the method spec's values, untuned: "
            "the paper's presets on the paper's models) or `tuned:<study> (N trials)`."
        )
    if sel.unfinished:
        left = ", ".join(f"{n} {status}" for status, n in sel.unfinished.items())
        lines.append(f"Left out (not finished): {left}.")
    dups = sum(g.duplicates for g in groups)
    if dups:
        lines.append(f"{dups} runs repeat a seed of their configuration: the newest run of each seed is used.")
    return lines


def build(sel: Selection) -> Report:
    """Every table and figure the records allow; a table or figure without records is left out."""
    from peftbench.report import tuning
    from peftbench.report.figures import charts

    tables: list[Table] = []
    score, tidy = scores.score_tables(sel.groups)
    tables += score
    tables += [costs.latency_table(r, i) for i, r in enumerate(sel.latency)]
    if sel.latency:
        tables.append(costs.paper_latency_table())
    tables += [costs.profile_table(r, i) for i, r in enumerate(sel.profile)]
    if sel.groups:
        tables.append(costs.run_cost_table(sel.groups))
    if sel.studies:
        tables.append(tuning.studies_table(sel.studies))
    tables.append(costs.scores_table(tidy))
    tables.append(costs.todo_table(sel.groups, sel.where))
    tables = [t for t in tables if not t.empty]
    title = "peftbench report"
    return Report(title, describe_where(sel.where), summary(sel), tables, charts(sel.groups, sel.latency, sel.profile, sel.studies))


def make_report(results: str | Path, where: dict[str, list[str]], out: Path, formats: tuple[str, ...] = FORMATS) -> ReportResult:
    """Select, build, write. Raises `UsageError` (exit 2) before writing anything when no record matches."""
    sel = select(Path(results), where)
    report = build(sel)
    return ReportResult(report, sel, write(report, out, formats))
