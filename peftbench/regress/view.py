"""The terminal table and the JSON of a comparison (`compare` and `check` share them).

One row per pair: outcome, method, task, model, seeds, then what decided the outcome (the verdicts that were not
within tolerance, each seed that moved with its old and new value, the differences of a not-comparable pair with its
metrics beside the other side's, a failure's error); further details go on indented lines under the row. `--json`
carries every verdict with its rule and every seed's values.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from peftbench.regress import verdicts as V
from peftbench.regress.compare import IMPROVED, MISSING, NEW, NEW_FAILURE, NOT_COMPARABLE, OUTCOMES, Pair
from peftbench.regress.gate import Result
from peftbench.tables import render_table

HEADER = ("outcome", "method", "task", "model", "seeds", "details")
SEEDS_SHOWN = 5  # per verdict; the JSON has them all


def details(pair: Pair, verbose: bool = False) -> list[str]:
    """What a reader needs to see for this pair's outcome, most important first."""
    if pair.outcome in (NEW_FAILURE, MISSING, NEW):
        return [pair.note or pair.outcome]
    lines = list(pair.differences) if pair.outcome == NOT_COMPARABLE else []
    shown = [v for v in pair.verdicts if verbose or v.verdict not in (V.WITHIN, V.UNJUDGED)]
    if pair.outcome == NOT_COMPARABLE:
        shown = [v for v in pair.verdicts if v.kind == "quality"]
    if not shown and pair.verdicts:
        shown = pair.verdicts[:1]  # within tolerance: the main metric, so the row says what was compared
    for v in shown:
        lines += verdict_lines(v, pair.outcome == NOT_COMPARABLE)
    if pair.note:
        lines.append(pair.note)
    if verbose and pair.mode:
        lines.append(pair.mode)
    return lines or ["-"]


def verdict_lines(v: V.Verdict, bare: bool = False) -> list[str]:
    """`pearson seed 1: 0.4058 -> 0.3958 (-0.01): changed, <rule>`, one line per seed that moved (else the means)."""
    if bare:  # a not-comparable pair: what the change would be called, for the reader; it decides nothing
        head = f"{v.quantity} {_num(v.a)} -> {_num(v.b)} ({v.change})"
        return [head if v.verdict in (V.WITHIN, V.UNJUDGED) else f"{head}: {v.verdict} if it were comparable"]
    moved = v.moved
    if not moved:
        return [f"{v.quantity} {_num(v.a)} -> {_num(v.b)} ({v.change}): {v.verdict}, {v.rule}"]
    lines = [f"{v.quantity} seed {s.seed}: {_num(s.a)} -> {_num(s.b)} ({s.change}): {s.verdict}" for s in moved[:SEEDS_SHOWN]]
    if len(moved) > SEEDS_SHOWN:
        lines.append(f"... and {len(moved) - SEEDS_SHOWN} more seed(s) (--json lists all)")
    return [*lines, f"  {v.verdict}: {v.rule}"]


def _num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def table(pairs: list[Pair], labels: tuple[str, str], verbose: bool = False) -> str:
    """The whole comparison as text: the two sides, one row per pair, a summary line."""
    rows = [((p.outcome, *p.identity, p.seeds), details(p, verbose)) for p in pairs]
    out = [f"A: {labels[0]}", f"B: {labels[1]}", ""]
    if not rows:
        return "\n".join([*out, "no runs on either side"])
    out.append(render_table([[*cells, "\n".join(lines)] for cells, lines in rows], HEADER))
    out += ["", summary(pairs)]
    return "\n".join(out)


def summary(pairs: list[Pair]) -> str:
    counts = Counter(p.outcome for p in pairs)
    exact = sum(p.exact for p in pairs)
    judged = sum(bool(p.mode) for p in pairs)
    modes = f" ({exact} of {judged} judged pairs in exact mode)" if judged else ""
    return "summary: " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o]) + modes


def check_lines(result: Result) -> list[str]:
    """The closing lines of `check`: improvements named, what was not judged, and the verdict."""
    lines = []
    improved = result.outcome_count(IMPROVED)
    if improved and IMPROVED not in result.failing:
        lines.append(f"{improved} pair(s) improved beyond tolerance: passed, but bless them or pass --fail-on-improved to make CI strict")
    if result.unrelated:
        lines.append(f"{result.unrelated} run(s) of methods, tasks or models the baseline does not have: not judged")
    bad = len(result.bad)
    lines.append(
        f"check {'passed' if result.passed else 'FAILED'}: {bad} of {len(result.pairs)} pairs {' / '.join(sorted(result.failing))}"
    )
    return lines


def to_json(pairs: list[Pair], labels: tuple[str, str], **extra: Any) -> dict[str, Any]:
    counts = Counter(p.outcome for p in pairs)
    return {"a": labels[0], "b": labels[1], **extra, "counts": {o: counts[o] for o in OUTCOMES}, "pairs": [p.to_dict() for p in pairs]}
