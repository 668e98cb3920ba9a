"""Write a report: index.html, report.md, tables.tex, csv/*.csv and figures/*.svg from one `Report`.

Every format renders the same `Table`s (report/markdown.py and report/latex.py escape every
string, captions included; the HTML goes through jinja2's autoescape; the CSVs hold the numbers),
so no format is hand-built by string concatenation. Nothing written holds a time or an absolute
path, and everything is sorted, so the same records give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from peftbench.report.latex import escape as tex_escape
from peftbench.report.markdown import escape as md_escape
from peftbench.report.model import SECTIONS, Table
from peftbench.report.svg import Chart

FORMATS = ("html", "md", "tex", "csv")
AXIS_NAMES = {"params": "trainable parameters", "memory": "peak memory", "time": "step time", "checkpoint": "checkpoint size"}


@dataclass
class Section:
    key: str
    title: str
    tables: list[Table]
    charts: list[Chart]


@dataclass
class Report:
    title: str
    filter: str  # what the report covers, in words (a sweep's name and configuration count, or the filter)
    summary: list[str]  # what was read, what was left out, the aggregation rules
    tables: list[Table]
    charts: list[Chart] = field(default_factory=list)
    figure_notes: list[str] = field(default_factory=list)  # figures not drawn, named

    @property
    def models(self) -> list[str]:
        return sorted({m for t in self.tables for m in t.row_model if m} | {c.model for c in self.charts if c.model})

    @property
    def tasks(self) -> list[str]:
        found = {x for t in self.tables for s in t.row_task for x in s.split() if x}
        return sorted(found | {c.task for c in self.charts if c.task})

    @property
    def axes(self) -> list[tuple[str, str]]:
        """The cost-front axes present, for the page's select: (key, name)."""
        present = {c.axis for c in self.charts if c.axis}
        return [(k, name) for k, name in AXIS_NAMES.items() if k in present]

    @property
    def sections(self) -> list[Section]:
        """The page in reading order; a section with neither tables nor figures is left out."""
        out = []
        for key, title in SECTIONS.items():
            tables, charts = [t for t in self.tables if t.section == key], [c for c in self.charts if c.section == key]
            if tables or charts:
                out.append(Section(key, title, tables, charts))
        return out


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("peftbench.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = md_escape
    env.filters["tex"] = tex_escape
    return env


def write(report: Report, out: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write the chosen formats under `out`; stale CSVs and figures of an earlier report there are replaced."""
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    written: list[Path] = []
    if "csv" in formats:
        written += write_csvs(report, out / "csv")
    if {"html", "md"} & set(formats):
        written += write_figures(report, out / "figures")
    for fmt, name, template in (
        ("html", "index.html", "index.html.j2"),
        ("md", "report.md", "report.md.j2"),
        ("tex", "tables.tex", "tables.tex.j2"),
    ):
        if fmt in formats:
            path = out / name
            path.write_text(env.get_template(template).render(report=report), encoding="utf-8")
            written.append(path)
    return written


def clear(folder: Path, suffix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"*{suffix}"):
        old.unlink()


def write_csvs(report: Report, folder: Path) -> list[Path]:
    clear(folder, ".csv")
    paths = []
    for t in report.tables:
        path = folder / f"{t.name}.csv"
        path.write_text(t.to_csv(), encoding="utf-8")
        paths.append(path)
    return paths


def write_figures(report: Report, folder: Path) -> list[Path]:
    clear(folder, ".svg")
    paths = []
    for c in report.charts:
        path = folder / f"{c.name}.svg"
        path.write_text(c.svg, encoding="utf-8")
        paths.append(path)
    return paths
