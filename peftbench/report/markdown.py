"""Markdown that shows record strings as text, whatever they hold.

Record strings (model folder names, presets, hyperparameter values) reach report.md; Markdown
viewers other than GitHub (VS Code, mkdocs, Jupyter) render raw HTML, and a `|` ends a table cell.
Every string is therefore escaped for both: HTML's `<`, `>`, `&` become entities, and Markdown's
own syntax characters get a backslash, so the text renders as itself and cannot open a tag,
a link or a new cell.
"""

from __future__ import annotations

ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "\\": "\\\\",
    "`": "\\`",
    "*": "\\*",
    "|": "\\|",
    "[": "\\[",
    "]": "\\]",
    "#": "\\#",
    "\n": " ",
    "\r": " ",
}
TABLE = str.maketrans(ESCAPES)


def escape(text: object) -> str:
    """`text` as Markdown that renders as the same characters, on one line."""
    return str(text).translate(TABLE)


def cell(text: str, bold: bool = False) -> str:
    shown = escape(text)
    return f"**{shown}**" if bold and shown.strip() else shown


def table(header: list[str], rows: list[list[tuple[str, bool]]]) -> str:
    """A GitHub-flavoured pipe table; every cell escaped, bold cells wrapped in `**`."""
    lines = ["| " + " | ".join(escape(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(text, bold) for text, bold in row) + " |" for row in rows]
    return "\n".join(lines)
