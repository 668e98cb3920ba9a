"""`peftbench params`: exact trainable-parameter counts and checkpoint sizes, with no weights.

Models are built on the meta device (shapes only), so a 1.5B or 175B model counts instantly and
nothing is downloaded. `--paper` recounts every row of Tables 2, 3, 4 and 15 whose configuration
is defined, beside the paper's printed count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from peftbench.config.resolve import resolve_sections
from peftbench.methods import METHODS
from peftbench.models.build import build_model
from peftbench.paper import PARAM_ROWS
from peftbench.specs import check_keys, check_version, read_yaml
from peftbench.tables import indent, render_table


@dataclass(frozen=True)
class ParamCount:
    method: str
    model: str
    kind: str
    hyperparameters: Any
    counts: dict[str, int]  # method, head, trainable, total, base_total
    formula: int | None

    @property
    def percent_of_base(self) -> float:
        return 100.0 * self.counts["method"] / self.counts["base_total"]

    def checkpoint_bytes(self, bytes_per_value: int, with_head: bool = False) -> int:
        return self.counts["trainable" if with_head else "method"] * bytes_per_value


def count_params(method: str, model: str, task: str | None = None, preset: str | None = None, overrides: list[str] = ()) -> ParamCount:  # type: ignore[assignment]
    resolved = resolve_sections(method, task, model, preset=preset, overrides=list(overrides))
    hp = resolved.sections["hyperparameters"]
    meta_model = build_model(resolved.source, resolved.kind, meta=True, config=resolved.hf_config)
    adapted = METHODS.get(method).apply(meta_model, hp)
    return ParamCount(method, resolved.model, resolved.kind, hp, adapted.param_counts(), adapted.formula_count())


def describe(count: ParamCount) -> str:
    c = count.counts
    what = "language model (its LM head is part of the base model)" if count.kind == "generation" else f"sequence {count.kind} model"
    rows = [
        ("method parameters (paper convention: task head excluded)", f"{c['method']:,}"),
        ("task head", f"{c['head']:,}"),
        ("all trainable", f"{c['trainable']:,}"),
        ("total after adaptation", f"{c['total']:,}"),
        ("base model total", f"{c['base_total']:,}"),
        ("method / base model", f"{count.percent_of_base:.4f} %"),
        ("checkpoint, method only (fp32 / fp16)", f"{count.checkpoint_bytes(4):,} / {count.checkpoint_bytes(2):,} bytes"),
        ("checkpoint, with head (fp32 / fp16)", f"{count.checkpoint_bytes(4, True):,} / {count.checkpoint_bytes(2, True):,} bytes"),
    ]
    if count.formula is not None:
        verdict = "equal" if count.formula == c["method"] else f"differs by {c['method'] - count.formula:+,}"
        rows.append(("paper formula (Section 5.1)", f"{count.formula:,} ({verdict})"))
    else:
        rows.append(("paper formula (Section 5.1)", "none given for this method"))
    return f"{count.method} on {count.model} ({what}; counted on the meta device, no weights)\n" + indent(render_table(rows))


@lru_cache(maxsize=1)
def paper_rows() -> list[dict[str, Any]]:
    data = read_yaml(PARAM_ROWS)
    check_keys(str(PARAM_ROWS), data, {"version", "rows"}, set())
    check_version(str(PARAM_ROWS), data)
    for i, row in enumerate(data["rows"]):
        check_keys(f"{PARAM_ROWS}: rows[{i}]", row, {"table", "label", "method", "model", "printed"}, {"set", "note"})
    return data["rows"]


def printed_millions(printed: str) -> float:
    return float(str(printed).rstrip("M"))


def agreement(count: int, printed: str) -> str:
    """How a measured count relates to a printed one such as '0.35M': equal when rounded, truncated, or not."""
    decimals = len(str(printed).rstrip("M").partition(".")[2])
    value, target = count / 1e6, printed_millions(printed)
    if round(value, decimals) == target:
        return "matches (rounded)"
    if math.floor(value * 10**decimals) / 10**decimals == target:
        return "matches (truncated)"
    return f"MISMATCH ({(value - target) / target:+.1%})"


def paper_table() -> list[dict[str, Any]]:
    """Every defined row of Tables 2, 3, 4 and 15, recounted."""
    out = []
    for row in paper_rows():
        overrides = [f"{k}={v}" for k, v in (row.get("set") or {}).items()]
        count = count_params(row["method"], row["model"], overrides=overrides)
        out.append(
            {
                **row,
                "ours": count.counts["method"],
                "formula": count.formula,
                "agreement": agreement(count.counts["method"], row["printed"]),
            }
        )
    return out


def format_paper_table(rows: list[dict[str, Any]]) -> str:
    """The recount beside the printed counts; a row's note is a numbered footnote under the table."""
    header = ("table", "row", "method", "printed", "ours", "formula", "agreement")
    notes: dict[str, int] = {}  # the same note on several rows: one footnote
    cells = []
    for r in rows:
        mark = f" [{notes.setdefault(r['note'], len(notes) + 1)}]" if r.get("note") else ""
        formula = "-" if r["formula"] is None else f"{r['formula']:,}"
        cells.append((r["table"], r["label"], r["method"], str(r["printed"]), f"{r['ours']:,}", formula, r["agreement"] + mark))
    footnotes = [f"[{n}] {note}" for note, n in notes.items()]
    return "\n".join([render_table(cells, header), *([""] if footnotes else []), *footnotes])
