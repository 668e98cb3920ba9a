"""`peftbench report`: tables like the paper's, our numbers beside the paper's, figures; HTML, Markdown, LaTeX, CSV.

    from peftbench.report import make_report
    result = make_report("results", {"task": ["mrpc"]}, Path("reports/mrpc"), ("html", "md", "tex", "csv"))

Layers: `collect` (records -> groups of seeds by comparability key, variant labels), `uncertainty`
(an interval for every cell), `scores` and `costs` (the tables, one `model.Table` each, beside the
paper's numbers and protocols from peftbench.paper), `figures` and `tuning` (SVG through `svg`),
`render` with `markdown` and `latex` (the files). The page reads top-down as a reviewer asks:
the summary (main tables and the cost front), then costs, then every score, then the paper rows
not run yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from peftbench.errors import UsageError
from peftbench.paper import REFERENCE_METHOD
from peftbench.report import costs, scores, tuning
from peftbench.report.collect import Selection, describe_where, parse_where, select
from peftbench.report.figures import charts
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
        f"{plural(sel.runs, 'finished run')} in {plural(len(groups), 'configuration')} over "
        f"{plural(len({g.model for g in groups}), 'model')}, {plural(len({g.task for g in groups}), 'task')} and "
        f"{plural(len({g.method for g in groups}), 'method')}; {len(sel.latency)} latency and {len(sel.profile)} profile "
        f"record{'' if len(sel.latency) + len(sel.profile) == 1 else 's'}.",
        "Seeds of one configuration are pooled as the paper does (GLUE: median, E2E / WebNLG / DART: mean), and every "
        "cell carries an interval that says its kind: a 95% bootstrap over 5+ seeds, the min-max range over 2-4, or for "
        "one run the spread over its evaluation examples where the score allows it.",
        "Paper values sit beside the same model's rows; ours - paper is shown only for runs that follow the paper's "
        "protocol (splits, sizes, decoding, epochs, trainable count), otherwise the row is marked ⚠ with its differences. "
        "A tiny model gets its family's paper row as a reference only.",
        f"Ratios name what they divide and which way is better (↓ lower, ↑ higher), always against {REFERENCE_METHOD}; "
        "trainable counts are the paper's (task head excluded).",
    ]
    lines += tuning_lines(sel)
    if sel.unfinished:
        left = ", ".join(f"{n} {status}" for status, n in sel.unfinished.items())
        lines.append(f"Left out (not finished): {left}.")
    dups = sum(g.duplicates for g in groups)
    if dups:
        lines.append(f"{dups} runs repeat a seed of their configuration: the newest run of each seed is used.")
    return lines


def tuning_lines(sel: Selection) -> list[str]:
    if not (sel.trials or sel.studies):
        return []
    return [
        f"{plural(len(sel.studies), 'tuning study')} ({plural(sel.trials, 'finished trial run')} in the selection): trials are "
        "shown in the tuning table, not as score rows; a row's name says `tuned:<study> (N trials)` where it was tuned."
    ]


def build(sel: Selection, diff_anyway: bool = False, label: str | None = None, figures: bool = True) -> Report:
    """Every table and figure the records allow, in reading order; a table or figure without records is left out.
    `figures=False` skips drawing (a tex- or csv-only report has no place for them, and drawing is the slow part)."""
    score, tidy = scores.score_tables(sel.groups, diff_anyway)
    tables: list[Table] = [*score]
    if sel.groups:
        tables.append(costs.run_cost_table(sel.groups))
    tables += [costs.profile_table(r, i) for i, r in enumerate(sel.profile)]
    tables += [costs.latency_table(r, i) for i, r in enumerate(sel.latency)]
    if sel.latency:
        tables.append(costs.paper_latency_table())
    tables.append(costs.scores_table(tidy))
    if sel.studies:
        tables.append(tuning.studies_table(sel.studies))
    tables.append(costs.todo_table(sel.groups, sel.where))
    tables = [t for t in tables if not t.empty]
    drawn, figure_notes = charts(sel.groups, sel.latency, sel.profile) if figures else ([], [])
    drawn += tuning.best_so_far_charts(list(sel.studies)) if figures else []
    header = label or describe_where(sel.where)
    return Report("peftbench report", header, summary(sel), tables, drawn, figure_notes)


def make_report(
    results: str | Path,
    where: dict[str, list[str]],
    out: Path,
    formats: tuple[str, ...] = FORMATS,
    diff_anyway: bool = False,
    label: str | None = None,
) -> ReportResult:
    """Select, build, write. Raises `UsageError` (exit 2) before writing anything when no record matches.

    `label` replaces the filter in the page header (a sweep passes its name and configuration count,
    not its list of keys); `diff_anyway` shows ours - paper for runs off the paper's protocol, still marked.
    """
    sel = select(Path(results), where)
    report = build(sel, diff_anyway, label, figures=bool({"html", "md"} & set(formats)))
    return ReportResult(report, sel, write(report, out, formats))
