"""The one table model every output format renders, and the number formats the tables share.

A `Table` is a pandas DataFrame of display text (what every format shows, so Markdown, LaTeX and
HTML never disagree) plus, per row, the model and task it concerns (the HTML filters) and the
row group it belongs to (ours / paper / difference rows sort together). `data` holds the same
content as numbers (value, sd, n, interval...) for the CSV, where display text such as
`75.0 [70.0, 80.0]R n=3` would lose them. `section` places the table in the page: the summary
first, then costs, then every score, then the paper rows not run yet.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

from peftbench.report.latex import table as latex_table
from peftbench.report.markdown import table as markdown_table

SECTIONS = {
    "main": "Summary: scores beside the paper's",
    "cost": "Cost: time, memory, size",
    "scores": "All scores and tuning",
    "todo": "Paper rows not run yet",
}


@dataclass
class Table:
    name: str  # file stem of its CSV and the HTML anchor
    title: str
    caption: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    row_model: list[str] = field(default_factory=list)
    row_task: list[str] = field(default_factory=list)  # space-separated tasks of the row ('' for task-free rows)
    row_group: list[int] = field(default_factory=list)
    row_kind: list[str] = field(default_factory=list)  # "ours", "paper", "diff" in score tables (the HTML styles them)
    data: pd.DataFrame | None = None  # the numbers behind the display text, for the CSV
    bold: set[tuple[int, str]] = field(default_factory=set)  # (row, column) of the best value per column, as the paper bolds
    section: str = "main"  # a key of SECTIONS

    def __post_init__(self) -> None:
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)  # a file stem and an anchor, whatever a record's task is called
        n = len(self.frame)
        self.row_model = self.row_model or [""] * n
        self.row_task = self.row_task or [""] * n
        self.row_group = self.row_group or list(range(n))
        self.row_kind = self.row_kind or [""] * n

    @property
    def empty(self) -> bool:
        return self.frame.empty

    def cells(self) -> list[list[tuple[str, bool]]]:
        """Each row's cells as (text, bold)."""
        columns = list(self.frame.columns)
        return [
            [(str(v), (i, c) in self.bold) for v, c in zip(row, columns, strict=True)]
            for i, row in enumerate(self.frame.itertuples(index=False))
        ]

    def tbodies(self) -> list[list[tuple[str, str, str, list[tuple[str, bool]]]]]:
        """Rows grouped for the HTML (one <tbody> per group, so sorting keeps a group's rows together)."""
        groups: dict[int, list[tuple[str, str, str, list[tuple[str, bool]]]]] = {}
        for i, cells in enumerate(self.cells()):
            groups.setdefault(self.row_group[i], []).append((self.row_model[i], self.row_task[i], self.row_kind[i], cells))
        return list(groups.values())

    def to_markdown(self) -> str:
        return markdown_table([str(c) for c in self.frame.columns], self.cells())

    def to_text(self) -> str:
        return self.frame.to_markdown(index=False, tablefmt="simple", disable_numparse=True)

    def to_latex(self) -> str:
        return latex_table(
            self.name, self.title, self.caption, [str(c) for c in self.frame.columns], self.cells(), self.notes, self.row_group
        )

    def to_csv(self) -> str:
        return (self.data if self.data is not None else self.frame).to_csv(index=False, lineterminator="\n", float_format="%.6g")


def fmt_num(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def fmt_signed(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:+.{digits}f}"


def fmt_count(n: float | None) -> str:
    """Trainable parameters the paper's way (0.35M), with K for the tiny models' counts."""
    if n is None:
        return "-"
    if n >= 1e5:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return f"{int(n)}"


def fmt_mib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f}"


def fmt_pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100 * (ratio - 1):+.1f}%"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"
