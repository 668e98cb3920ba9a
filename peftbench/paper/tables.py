"""The LoRA paper's published numbers, read once from `paper_tables.json` beside this module.

The one reader of that file: every row of Tables 2 (GLUE), 3 (E2E), 13 (DART) and 14 (WebNLG)
becomes a `PaperRow` in *our* vocabulary (method names from the method specs' `paper_labels`,
the column ids of `layout.SPECS`), so matching a run to the paper is a lookup, not string juggling
spread over the consumers. Values stay in the paper's printed scale (GLUE x100; Table 3's METEOR
and ROUGE-L x100; Tables 13-14 as 0-1).

Tiny models have no counterpart in the paper; their preset's `reference` (models.yaml) names the
paper model whose rows are shown beside them *as a reference only*, never diffed.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftbench.paper.layout import SPECS, ScoreSpec, table_tasks
from peftbench.specs import method_specs

PAPER_DIR = Path(__file__).resolve().parent
PAPER_JSON = PAPER_DIR / "paper_tables.json"
PARAM_ROWS = PAPER_DIR / "param_rows.yaml"  # the parameter rows `peftbench params --paper` counts


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
    prior_work: bool = False  # the * rows: numbers of other papers, under their own protocols

    @property
    def tasks(self) -> list[str]:
        """The tasks this row has numbers for (GLUE columns are tasks; the other tables are one task each)."""
        tasks = table_tasks(self.table)
        return [t for t in tasks if t in self.values] if self.table == "table2" else tasks


@functools.lru_cache(maxsize=1)
def raw_tables() -> dict[str, Any]:
    return json.loads(PAPER_JSON.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def label_map() -> dict[str, str]:
    """The paper's method labels -> our method names, from the method specs (one source of truth)."""
    return {label: name for name, spec in method_specs().items() for label in spec.paper_labels}


def method_of(label: str) -> str | None:
    """Our method name for a paper label (`AdapterL`, `FT`...); None for a label no spec claims."""
    return label_map().get(label)


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


def _row(spec: ScoreSpec, raw: dict[str, Any]) -> PaperRow:
    table = spec.paper_table
    mark = raw.get("mark") or ("*" if raw.get("prior_work") and table == "table3" else "")
    params = raw.get("trainable_params_M", raw.get("trainable_params"))
    columns = spec.paper_columns
    values = {ours: raw[theirs] for theirs, ours in columns.items() if raw.get(theirs) is not None}
    spread = {ours: raw[f"{theirs}_pm"] for theirs, ours in columns.items() if raw.get(f"{theirs}_pm") is not None}
    printed = raw.get("trainable_params_printed") or (f"{params}M" if isinstance(params, float) else str(params))
    return PaperRow(
        table=table,
        model=raw["model"],
        method=method_of(raw["method"]),
        label=f"{raw['method']}{mark}",
        params=parse_params(params),
        params_text=printed,
        values=values,
        spread=spread,
        houlsby_setup=bool(raw.get("houlsby_setup")),
        prior_work=bool(raw.get("prior_work")) or "*" in mark,
    )


@functools.lru_cache(maxsize=1)
def paper_rows() -> tuple[PaperRow, ...]:
    """Every row of Tables 2, 3, 13 and 14, in the paper's order."""
    t = raw_tables()
    in_order = sorted(SPECS, key=lambda s: int(s.paper_table.removeprefix("table")))
    return tuple(_row(spec, r) for spec in in_order for r in t[spec.json_key]["rows"])


def paper_model_for(model: str) -> tuple[str, bool]:
    """The paper model to show beside `model`, and whether it is the same model (False: a reference only)."""
    from peftbench.models.presets import model_presets  # reads models.yaml: only when a report asks

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

    def distance(row: PaperRow) -> tuple[float, int]:
        gap = abs(math.log(row.params / params)) if row.params else math.inf
        return (round(gap, 6), 0 if row.houlsby_setup else 1)

    return min(candidates, key=distance), same


def table1() -> dict[str, Any]:
    """Table 1 (latency of GPT-2 medium on a Quadro RTX8000) as printed: settings and rows."""
    return raw_tables()["table1"]


def source(table: str) -> str:
    """The citation line of one paper table."""
    key = next((s.json_key for s in SPECS if s.paper_table == table), table)
    return raw_tables()[key]["source"]


def hyperparams() -> dict[str, Any]:
    """Appendix D as printed (Tables 9-11): the protocols behind the score tables."""
    return raw_tables()["hyperparams"]
