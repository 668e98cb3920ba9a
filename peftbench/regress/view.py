"""The terminal table and the JSON of a comparison (`compare` and `check` share them).

One row per pair: outcome, method, task, model, seeds, then what decided the outcome (the verdicts that were not
within tolerance, the differences of a not-comparable pair with its metrics beside the other side's, a failure's
error); further details go on indented lines under the row. `--json` carries every verdict with its rule.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from peftbench.regress import verdicts as V
from peftbench.regress.compare import MISSING, NEW_FAILURE, NOT_COMPARABLE, OUTCOMES, Pair
from peftbench.tables import render_table

HEADER = ("outcome", "method", "task", "model", "seeds", "details")


def details(pair: Pair, verbose: bool = False) -> list[str]:
    """What a reader needs to see for this pair's outcome, most important first."""
    if pair.outcome == NEW_FAILURE:
        return [pair.note or "failed"]
    if pair.outcome == MISSING:
        return [pair.note]
    lines = list(pair.differences) if pair.outcome == NOT_COMPARABLE else []
    shown = [v for v in pair.verdicts if verbose or v.verdict not in (V.WITHIN, V.UNJUDGED)]
    if pair.outcome == NOT_COMPARABLE:
        shown = [v for v in pair.verdicts if v.kind == "quality"]
    if not shown and pair.verdicts:
        shown = pair.verdicts[:1]  # within tolerance: the main metric, so the row says what was compared
    lines += [verdict_line(v, pair.outcome == NOT_COMPARABLE) for v in shown]
    if pair.note:
        lines.append(pair.note)
    return lines or ["-"]


def verdict_line(v: V.Verdict, bare: bool = False) -> str:
    """`accuracy 0.9833 -> 0.5000 (-0.4833): regressed, |change| <= 0.005: registry tolerance 0.005`."""
    head = f"{v.quantity} {_num(v.a)} -> {_num(v.b)} ({v.change})"
    if bare:  # a not-comparable pair: what the change would be called, for the reader; it decides nothing
        return head if v.verdict in (V.WITHIN, V.UNJUDGED) else f"{head}: {v.verdict} if it were comparable"
    return f"{head}: {v.verdict}, {v.rule}"


def _num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def table(pairs: list[Pair], labels: tuple[str, str], verbose: bool = False) -> str:
    """The whole comparison as text: the two sides, one row per pair, a summary line."""
    rows = []
    for p in pairs:
        lines = details(p, verbose)
        rows.append(((p.outcome, *p.identity, p.seeds), lines))
    out = [f"A: {labels[0]}", f"B: {labels[1]}", ""]
    if not rows:
        return "\n".join([*out, "no runs on either side"])
    out.append(render_table([[*cells, "\n".join(lines)] for cells, lines in rows], HEADER))  # details: one line each
    out += ["", summary(pairs)]
    return "\n".join(out)


def summary(pairs: list[Pair]) -> str:
    counts = Counter(p.outcome for p in pairs)
    return "summary: " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o])


def to_json(pairs: list[Pair], labels: tuple[str, str], **extra: Any) -> dict[str, Any]:
    counts = Counter(p.outcome for p in pairs)
    return {"a": labels[0], "b": labels[1], **extra, "counts": {o: counts[o] for o in OUTCOMES}, "pairs": [p.to_dict() for p in pairs]}
