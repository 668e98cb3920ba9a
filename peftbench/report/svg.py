"""A figure as SVG text: the `Chart` every figure module returns and the one deterministic writer.

Kept apart from figures.py and tuning.py so both draw with it and neither imports the other
(the two used to import each other). Text stays text (`svg.fonttype: none`): the files are a
fraction of the size of glyph paths, search and copy work, and the same records give the same
bytes (fixed hash salt, no date).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display; set before any figure exists
from matplotlib.figure import Figure


@dataclass
class Chart:
    name: str  # file stem
    title: str
    svg: str  # the <svg> element, without XML prolog
    model: str = ""  # the HTML filters hide a chart of another model or task
    task: str = ""
    section: str = "main"  # where the page shows it (report/model.py SECTIONS)
    axis: str = ""  # a cost front's x axis ("params", "memory", "time", "checkpoint"): the page's select shows one


def to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "peftbench", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]
