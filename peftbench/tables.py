"""Tables: one table model rendered as aligned text (the terminal), GitHub Markdown or CSV.

Foundation, beside errors/registry/specs: every part prints tables (runs, params, latency, profile,
compare, history), so the renderer sits below them all and imports nothing of peftbench but errors.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from peftbench.errors import terminal_safe

TABLE_FORMATS = ("text", "md", "csv")


def render_table(rows: Sequence[Sequence[Any] | Mapping[str, Any]], headers: Sequence[str] = (), fmt: str = "text") -> str:
    """One table model, three renderings: `text` (aligned columns for the terminal), `md` (a GitHub
    Markdown table) or `csv`.

    `rows` are sequences of cells, or mappings whose keys are the headers when `headers` is empty.
    Cells are shown as given, never reparsed as numbers (callers format them): `str()` of each, `-`
    for None (empty in CSV). A cell may hold several lines: the text table continues it on the next lines in its
    column, Markdown joins them with `<br>`, CSV quotes them. No headers: no header line.
    """
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"table format {fmt!r}; expected one of {', '.join(TABLE_FORMATS)}")
    if rows and isinstance(rows[0], Mapping):
        headers = list(headers or dict.fromkeys(h for row in rows for h in row))
        rows = [[row.get(h) for h in headers] for row in rows]  # type: ignore[union-attr]
    missing = "" if fmt == "csv" else "-"
    cells = [[missing if c is None else terminal_safe(c) for c in row] for row in rows]
    headers = [str(h) for h in headers]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows([headers, *cells] if headers else cells)
        return out.getvalue().rstrip("\n")
    from tabulate import tabulate

    if fmt == "md":
        cells = [[markdown_safe(c) for c in row] for row in cells]
        return tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)
    text = tabulate(cells, headers=headers, tablefmt="plain", disable_numparse=True)
    return "\n".join(line.rstrip() for line in text.splitlines())


def markdown_safe(cell: str) -> str:
    """A cell for a Markdown table: record strings may hold HTML (`<img onerror=...>`) or pipes, shown as text."""
    escaped = cell.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "&#96;").replace("|", "\\|")
    return escaped.replace("\n", "<br>")


def indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())
