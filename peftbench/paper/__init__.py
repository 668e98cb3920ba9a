"""The LoRA paper as data: its published numbers, its table layouts, its protocols, its parameter rows.

This package is the only place in peftbench that knows the paper's tables, so a correction to a
printed number, a column order or a protocol lands once and every consumer (reports, `params
--paper`, `latency`) follows. It sits below report/, bench/ and cli/ and imports none of them:
only the foundation (`specs`, for the method specs' paper labels) and `models.presets` (which
paper model a tiny preset stands in for).

- `tables`: the one reader of `paper_tables.json`; every row of Tables 2, 3, 13 and 14 in our names.
- `layout`: how each table is laid out (tasks, columns, headers, scale overrides, row order of methods).
- `protocol`: how the paper produced each table (splits, sizes, decoding, epochs), and the differences of a run.
"""

from __future__ import annotations

from peftbench.paper.layout import METHOD_ORDER, REFERENCE_METHOD, SPECS, Column, ScoreSpec, method_rank, spec_of
from peftbench.paper.tables import (
    PAPER_JSON,
    PARAM_ROWS,
    PaperRow,
    match,
    method_of,
    paper_model_for,
    paper_rows,
    raw_tables,
    source,
    table1,
)

__all__ = [
    "METHOD_ORDER",
    "PAPER_JSON",
    "PARAM_ROWS",
    "REFERENCE_METHOD",
    "SPECS",
    "Column",
    "PaperRow",
    "ScoreSpec",
    "match",
    "method_of",
    "method_rank",
    "paper_model_for",
    "paper_rows",
    "raw_tables",
    "source",
    "spec_of",
    "table1",
]
