"""The LoRA paper's published numbers, read once from the shipped `peftbench/paper/paper_tables.json`.

This is the one reader of that file for reports: every row of Tables 2 (GLUE), 3 (E2E), 13 (DART)
and 14 (WebNLG) becomes a `PaperRow` in *our* vocabulary (method names from the method specs'
`paper_labels`, task and metric column ids the report's tables use), so matching a row of ours to
the paper is a dictionary lookup, not string juggling spread over the report. Values stay in the
paper's printed scale (GLUE x100; Table 3's METEOR and ROUGE-L x100; Tables 13-14 as 0-1).

Tiny models have no counterpart in the paper; their preset's `reference` (models.yaml) names the
paper model whose rows are shown beside them *as a reference only*, clearly labelled as a different
model, never diffed.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from peftbench.specs import PACKAGE_DIR, method_specs

PAPER_JSON = PACKAGE_DIR / "paper" / "paper_tables.json"

GLUE_COLUMNS = {
    "MNLI": "mnli",
    "SST-2": "sst2",
    "MRPC": "mrpc",
    "CoLA": "cola",
    "QNLI": "qnli",
    "QQP": "qqp",
    "RTE": "rte",
    "STS-B": "stsb",
}
E2E_COLUMNS = {"BLEU": "bleu", "NIST": "nist", "MET": "meteor", "ROUGE-L": "rouge_l", "CIDEr": "cider"}
SPLIT_SUFFIX = {"U": "_unseen", "S": "_seen", "A": ""}  # WebNLG's unseen / seen / all categories -> our metric names
DTT_METRICS = {"BLEU": "bleu", "MET": "meteor", "TER": "ter"}


@dataclass(frozen=True)
class PaperRow:
    """One row of a paper table, in our names: `values[column]` is the printed value, `spread[column]` its ±."""

    table: str  # "table2", "table3", "table13" (DART), "table14" (WebNLG): the task specs' `paper_table`
    model: str  # our preset name of the paper's model
    method: str | None  # our method name (None: a label no method spec claims)
    label: str  # the paper's label with its mark, e.g. "AdptH†", "FT*"
    params: float | None  # trainable parameters (paper convention: task head excluded)
    params_text: str  # as printed, e.g. "0.35M"
    values: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)
    houlsby_setup: bool = False  # the † rows of Table 2 (start from the pre-trained model, seq len 128)

    @property
    def tasks(self) -> list[str]:
        """The tasks this row has numbers for (GLUE columns are tasks; the other tables are one task each)."""
        return [c for c in self.values if c in GLUE_COLUMNS.values()] if self.table == "table2" else [TABLE_TASK[self.table]]


TABLE_TASK = {"table3": "e2e", "table13": "dart", "table14": "webnlg"}


@functools.lru_cache(maxsize=1)
def raw_tables() -> dict[str, Any]:
    return json.loads(PAPER_JSON.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def label_map() -> dict[str, str]:
    """The paper's method labels -> our method names, from the method specs (one source of truth)."""
    return {label: name for name, spec in method_specs().items() for label in spec.paper_labels}


def parse_params(text: str | float | None) -> float | None:
    """'0.35M' -> 350000.0; a bare number is in millions (the JSON's `trainable_params_M`)."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text) * 1e6
    m = re.fullmatch(r"\s*([\d.]+)\s*([MKB]?)\s*", str(text))
    if not m:
        return None
    return float(m.group(1)) * {"": 1e6, "M": 1e6, "K": 1e3, "B": 1e9}[m.group(2)]


def _row(table: str, raw: dict[str, Any], columns: dict[str, str]) -> PaperRow:
    mark = raw.get("mark") or ("*" if raw.get("prior_work") and table == "table3" else "")
    params = raw.get("trainable_params_M", raw.get("trainable_params"))
    values = {ours: raw[theirs] for theirs, ours in columns.items() if raw.get(theirs) is not None}
    spread = {ours: raw[f"{theirs}_pm"] for theirs, ours in columns.items() if raw.get(f"{theirs}_pm") is not None}
    printed = raw.get("trainable_params_printed") or (f"{params}M" if isinstance(params, float) else str(params))
    return PaperRow(
        table=table,
        model=raw["model"],
        method=label_map().get(raw["method"]),
        label=f"{raw['method']}{mark}",
        params=parse_params(params),
        params_text=printed,
        values=values,
        spread=spread,
        houlsby_setup=bool(raw.get("houlsby_setup")),
    )


@functools.lru_cache(maxsize=1)
def paper_rows() -> tuple[PaperRow, ...]:
    """Every row of Tables 2, 3, 13 and 14, in the paper's order."""
    t = raw_tables()
    split_columns = {f"{m}_{s}": f"{ours}{suffix}" for m, ours in DTT_METRICS.items() for s, suffix in SPLIT_SUFFIX.items()}
    rows = [_row("table2", r, GLUE_COLUMNS) for r in t["table2"]["rows"]]
    rows += [_row("table3", r, E2E_COLUMNS) for r in t["table3"]["rows"]]
    rows += [_row("table13", r, DTT_METRICS) for r in t["dart"]["rows"]]
    rows += [_row("table14", r, split_columns) for r in t["webnlg"]["rows"]]
    return tuple(rows)


def paper_model_for(model: str) -> tuple[str, bool]:
    """The paper model to show beside `model`, and whether it is the same model (False: a reference only)."""
    from peftbench.models.presets import model_presets

    presets = model_presets()
    reference = presets.get(model).reference if model in presets else None
    return (reference, False) if reference else (model, True)


def match(table: str, model: str, method: str, params: float | None) -> tuple[PaperRow | None, bool]:
    """The paper row for our (model, method) in `table`, and whether it is the same model.

    Several rows can share a model and method (Adapter sizes, LoRA and LoRA†): on the same model the
    one whose trainable-parameter count is closest to ours (on a log scale) wins, ties going to the
    † row (our runs start from the pre-trained model, the † setup); for a reference model, whose
    counts cannot be compared with a tiny model's, the paper's first row of that method.
    """
    paper_model, same = paper_model_for(model)
    candidates = [r for r in paper_rows() if r.table == table and r.model == paper_model and r.method == method]
    if not candidates:
        return None, same
    if not same or params is None or params <= 0:
        return candidates[0], same

    import math

    def distance(row: PaperRow) -> tuple[float, int]:
        gap = abs(math.log(row.params / params)) if row.params else math.inf
        return (round(gap, 6), 0 if row.houlsby_setup else 1)

    return min(candidates, key=distance), same


def table1() -> dict[str, Any]:
    """Table 1 (latency of GPT-2 medium on a Quadro RTX8000) as printed: settings and rows."""
    return raw_tables()["table1"]


def source(table: str) -> str:
    key = {"table13": "dart", "table14": "webnlg"}.get(table, table)
    return raw_tables()[key]["source"]
