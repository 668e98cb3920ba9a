"""LaTeX tables that compile and fit a page: every string escaped (captions too), booktabs rules,
the width held to the text width, long tables across pages.

Captions and cells carry record strings (device names, model folders, `_` in method names), so
nothing reaches the .tex unescaped; the few non-ASCII signs the report prints (±, ↑, ↓, ×, †)
become their LaTeX commands, and any other character a record brings becomes `?` rather than an
error in the reader's document. Width: a table's natural width is estimated from its longest
cells; one that would pass the text width is scaled to it (`\\resizebox`) when it fits one page,
and a long one (`longtable`, which cannot be scaled) gets wrapping `p` columns sized from its
content. The preamble needs booktabs, longtable, array and graphicx, all in texlive-latex-base/-recommended.
"""

from __future__ import annotations

import re

TEXT_WIDTH_PT = 345.0  # the article class's text width: the page the estimate is made for
CHAR_PT = {"scriptsize": 3.7, "tiny": 2.9}  # a generous average glyph width at each size
TABCOLSEP_PT = 3.0
LONG_ROWS = 30  # more rows than this do not fit one page at \scriptsize: longtable
SCALE_LIMIT = 1.4  # a short table up to this much wider than the page is scaled; wider ones wrap (scaled further, unreadable)

SIGNS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_\allowbreak{}",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "/": r"/\allowbreak{}",
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "×": r"$\times$",
    "†": r"\dag{}",
    "‡": r"\ddag{}",
    "⚠": r"\textbf{!}",
    "−": "-",
    "–": "--",
    "—": "---",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "·": r"$\cdot$",
}


def escape(text: object) -> str:
    """`text` as LaTeX source that prints the same characters (unknown non-ASCII ones as `?`)."""
    out = []
    for ch in str(text):
        if ch in SIGNS:
            out.append(SIGNS[ch])
        elif ch in "\n\r\t":
            out.append(" ")
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def widths(header: list[str], rows: list[list[tuple[str, bool]]], size: str) -> tuple[list[float], list[float]]:
    """Per column: natural width (longest cell on one line; a header may wrap, so only its longest word counts)
    and minimum width (longest unbreakable token), in pt."""
    natural, minimum = [], []
    for j, h in enumerate(header):
        cells = [row[j][0] for row in rows]
        word = max((len(t) for t in h.split()), default=1)
        tokens = [tok for t in cells for tok in re.split(r"[\s_/,=+|-]", t)]
        natural.append(max([word, *(len(t) for t in cells)]) * CHAR_PT[size] + 2 * TABCOLSEP_PT)
        minimum.append(max([word, *(len(t) for t in tokens)]) * CHAR_PT[size] + 2 * TABCOLSEP_PT)
    return natural, minimum


def wrapped_columns(natural: list[float], minimum: list[float]) -> str:
    """`p` columns summing to the text width: each gets its longest word, the rest shared by natural width."""
    avail = TEXT_WIDTH_PT * 0.97
    spare = max(0.0, avail - sum(minimum))
    extra = [n - m for n, m in zip(natural, minimum, strict=True)]
    total_extra = sum(extra) or 1.0
    spec = []
    for m, e in zip(minimum, extra, strict=True):
        width = m + spare * e / total_extra - 2 * TABCOLSEP_PT
        spec.append(rf">{{\raggedright\arraybackslash}}p{{{width / TEXT_WIDTH_PT:.3f}\linewidth}}")
    return "".join(spec)


def body(header: list[str], rows: list[list[tuple[str, bool]]], groups: list[int]) -> list[str]:
    lines = [" & ".join(escape(h) for h in header) + r" \\", r"\midrule"]
    for i, row in enumerate(rows):
        if i and groups and groups[i] != groups[i - 1]:
            lines.append(r"\addlinespace[2pt]")
        lines.append(" & ".join(rf"\textbf{{{escape(t)}}}" if b and t.strip() else escape(t) for t, b in row) + r" \\")
    return lines


def column_spec(header: list[str], rows: list[list[tuple[str, bool]]]) -> tuple[str, str, bool]:
    """(font size, column spec, scale to the width?): natural `l` columns when they fit, a mild overshoot of a short
    table scaled down (still readable), anything wider wrapped in `p` columns sized from the content (whose rows
    grow to several lines, so the caller sets them as a longtable that may run over pages)."""
    size = "scriptsize"
    natural, minimum = widths(header, rows, size)
    if sum(natural) <= TEXT_WIDTH_PT:
        return size, "l" * len(header), False
    if len(rows) <= LONG_ROWS and sum(natural) <= SCALE_LIMIT * TEXT_WIDTH_PT:
        return size, "l" * len(header), True
    if sum(minimum) > TEXT_WIDTH_PT * 0.97:
        size = "tiny"
        natural, minimum = widths(header, rows, size)
    return size, wrapped_columns(natural, minimum), False


def table(
    name: str,
    title: str,
    caption: str,
    header: list[str],
    rows: list[list[tuple[str, bool]]],
    notes: list[str],
    groups: list[int] = (),  # type: ignore[assignment]
) -> str:
    """One table: a float when it fits a page, a longtable across pages when it is long or wraps; notes under it, left-aligned."""
    size, cols, scale = column_spec(header, rows)
    wrapped = cols.startswith(">")
    text = r"\par ".join(escape(x) for x in [caption, *notes] if x)
    lines = body(header, list(rows), list(groups))
    below = rf"{{\raggedright\sloppy {text}\par}}"
    if len(rows) > LONG_ROWS or wrapped:
        head = [rf"\caption{{{escape(title)}}}\label{{tab:{name}}}\\", r"\toprule", *lines[:2], r"\endhead", r"\bottomrule", r"\endfoot"]
        long = [rf"\begin{{longtable}}{{{cols}}}", *head, *lines[2:], r"\end{longtable}"]
        return "\n".join([rf"\begin{{{size}}}\setlength{{\tabcolsep}}{{{TABCOLSEP_PT:g}pt}}", *long, below, rf"\end{{{size}}}"])
    tabular = [rf"\begin{{tabular}}{{{cols}}}", r"\toprule", *lines, r"\bottomrule", r"\end{tabular}"]
    if scale:
        tabular = [r"\resizebox{\linewidth}{!}{%", *tabular, "}"]
    return "\n".join(
        [
            r"\begin{table}[htbp]",
            r"\centering",
            rf"\caption{{{escape(title)}}}\label{{tab:{name}}}",
            rf"\{size}\setlength{{\tabcolsep}}{{{TABCOLSEP_PT:g}pt}}",
            *tabular,
            r"\par\smallskip",
            below,
            r"\end{table}",
        ]
    )
