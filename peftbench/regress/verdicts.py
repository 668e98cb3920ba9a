"""Verdicts on one measured quantity of two sets of runs paired by seed: regressed, improved, changed, within
tolerance, or not judged.

Every rule pairs the baseline's seed with the current run's same seed; none compares means against a band that
the seeds' spread widens (that let a 3-seed gate pass every quality bug that moved per-seed scores by up to 0.33,
because random-init seeds differ by more than that). More seeds only add chances to see a change:

- Exact mode (same versions, machine fingerprint and configuration, and runs that record themselves as
  deterministic): a rerun computes the same numbers, so any score that differs beyond float rounding, up or down,
  is `changed`, seed by seed.
- Otherwise, quality metrics by seed: a seed whose score moved beyond the metric registry's `tolerance` (raw units,
  `peftbench.tasks.metrics`) in the worse direction regressed, in the better one improved. With 3 or more seeds a
  one-sided paired t-test over the seeds' changes also counts (p < PAIRED_ALPHA, mean shift beyond PAIRED_FLOOR x
  the tolerance): it finds a shift that every seed shows though each stays inside the tolerance. Any regressed seed
  makes the metric regressed.
- Speed: each run's `relative_step` (its step time over a fixed reference step timed beside it in the same
  process: `peftbench.bench.measure.ReferenceStep`), so load on the machine cancels out; the median over seeds of
  current/baseline must stay inside [1/(1+SPEED_TOLERANCE), 1+SPEED_TOLERANCE] unless most seeds' quartiles
  overlap (`relative_speed`). Runs with fewer than SPEED_MIN_STEPS steady steps, and records without the figure
  (older peftbench), are shown, not judged: raw step times differ 6x between unchanged runs on a busy machine.
- Memory (peak RSS on CPU, peak allocated on CUDA): the median over seeds of current/baseline beyond
  MEMORY_TOLERANCE and MEMORY_FLOOR_BYTES.
- Exact quantities (parameter counts, checkpoint bytes, the analytic memory breakdown): any change is `changed`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from peftbench.tasks.metrics import metric_for

PAIRED_ALPHA = 0.01  # one-sided paired t-test over seeds: the chance that unchanged code with random changes fails
PAIRED_MIN_SEEDS = 3  # fewer seeds: each seed against the tolerance only
PAIRED_FLOOR = 0.1  # x the tolerance: a smaller mean shift is float noise between machines (5e-5 Pearson), never a verdict
FLOAT_REL, FLOAT_ABS = 1e-9, 1e-12  # exact mode: what float rounding may move a stored score by
SPEED_TOLERANCE = 0.3  # relative step time: unchanged runs under load moved <= 8% on the 2-core machine; 2x code is x1.6+
SPEED_MIN_STEPS = 8  # steady steps (each with its reference) a run needs before its speed is judged
MEMORY_TOLERANCE, MEMORY_FLOOR_BYTES = 0.10, 32 * 2**20  # peak RSS of unchanged reruns moved <= 1%
REGRESSED, IMPROVED, WITHIN, CHANGED, UNJUDGED = "regressed", "improved", "within tolerance", "changed", "not judged"


@dataclass(frozen=True)
class SeedChange:
    """One seed's values on both sides and what that seed alone says."""

    seed: Any
    a: float | None
    b: float | None
    verdict: str

    @property
    def change(self) -> str:
        return f"{self.b - self.a:+.4g}" if self.a is not None and self.b is not None else "-"


@dataclass(frozen=True)
class Verdict:
    """One quantity of one pair: the two sides' values (means over seeds), the change, the verdict and its rule."""

    quantity: str  # e.g. "accuracy", "speed: relative step time", "params.method"
    kind: str  # quality, speed, memory, exact
    a: float | None
    b: float | None
    change: str  # "-0.4833 (abs)", "x1.31", "4096 -> 4352"
    verdict: str  # regressed, improved, within tolerance, changed, not judged
    rule: str  # the bound and where it comes from
    seeds: tuple[SeedChange, ...] = field(default=())  # per seed, for quality metrics

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seeds"] = [{**asdict(s), "change": s.change} for s in self.seeds]
        return out

    @property
    def bad(self) -> bool:
        return self.verdict in (REGRESSED, CHANGED)

    @property
    def moved(self) -> list[SeedChange]:
        """The seeds that decided a verdict other than within tolerance."""
        return [s for s in self.seeds if s.verdict not in (WITHIN, UNJUDGED)]


def same_float(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=FLOAT_REL, abs_tol=FLOAT_ABS)


def exact_quality(name: str, seeds: list[Any], a: list[float | None], b: list[float | None]) -> Verdict:
    """Exact mode: every seed must reproduce its score; any difference either way is `changed`."""
    per_seed = []
    for seed, va, vb in zip(seeds, a, b, strict=True):
        same = (va is None and vb is None) or (va is not None and vb is not None and same_float(va, vb))
        per_seed.append(SeedChange(seed, va, vb, WITHIN if same else CHANGED))
    moved = [s for s in per_seed if s.verdict == CHANGED]
    verdict = CHANGED if moved else WITHIN
    change = ", ".join(f"seed {s.seed} {s.change}" for s in moved) or "="
    rule = "exact mode (same versions, machine and configuration; deterministic runs): any change beyond float rounding"
    return Verdict(name, "quality", _mean(a), _mean(b), change, verdict, rule, tuple(per_seed))


def paired_quality(
    name: str, seeds: list[Any], a: list[float | None], b: list[float | None], higher_is_better: bool | None = None
) -> Verdict:
    """Not exact: each seed against the registry's tolerance, plus a paired test over 3+ seeds (module docstring)."""
    metric = metric_for(name)
    hib = metric.higher_is_better if higher_is_better is None else higher_is_better
    tol = metric.tolerance
    per_seed = [SeedChange(s, va, vb, _seed_verdict(va, vb, tol, hib)) for s, va, vb in zip(seeds, a, b, strict=True)]
    gains = [(s.b - s.a) * (1 if hib else -1) for s in per_seed if s.a is not None and s.b is not None]
    test, test_rule = paired_test(gains, tol)
    verdicts = {s.verdict for s in per_seed} | ({test} if test else set())
    verdict = REGRESSED if REGRESSED in verdicts else IMPROVED if IMPROVED in verdicts else WITHIN
    if all(s.verdict == UNJUDGED for s in per_seed):
        verdict = UNJUDGED
    ma, mb = _mean(a), _mean(b)
    change = f"{mb - ma:+.4g}" if ma is not None and mb is not None else "-"
    rule = f"each of {len(per_seed)} seed(s): |change| <= registry tolerance {tol:g}" + (f"; {test_rule}" if test_rule else "")
    return Verdict(name, "quality", ma, mb, change, verdict, rule, tuple(per_seed))


def _seed_verdict(a: float | None, b: float | None, tol: float, hib: bool) -> str:
    if a is None or b is None:
        return REGRESSED if a is not None else UNJUDGED  # a score that existed became undefined (NaN)
    gain = (b - a) if hib else (a - b)
    return WITHIN if abs(gain) <= tol else IMPROVED if gain > 0 else REGRESSED


def paired_test(gains: list[float], tolerance: float) -> tuple[str | None, str]:
    """A one-sided paired t-test of the seeds' gains against zero: REGRESSED, IMPROVED or None (no evidence).

    A mean shift below PAIRED_FLOOR x the tolerance never counts, however consistent: two machines' summation orders
    move scores by ~5e-5 Pearson, sometimes the same way in every seed (measured: benchmarks/seed_sensitivity.py)."""
    if len(gains) < PAIRED_MIN_SEEDS:
        return None, ""
    mean = statistics.fmean(gains)
    sd = statistics.stdev(gains)
    if abs(mean) <= PAIRED_FLOOR * tolerance:
        return None, f"paired t-test over {len(gains)} seeds: mean change {mean:+.2g}, below {PAIRED_FLOOR:g} x tolerance"
    if sd == 0:
        p = 0.0
    else:
        from scipy import stats

        p = float(stats.t.sf(abs(mean) / (sd / math.sqrt(len(gains))), len(gains) - 1))
    rule = f"paired t-test over {len(gains)} seeds: mean change {mean:+.4g}, one-sided p {p:.3g} (fails below {PAIRED_ALPHA:g})"
    if p >= PAIRED_ALPHA:
        return None, rule
    return (IMPROVED if mean > 0 else REGRESSED), rule


def median_ratio(quantity: str, kind: str, a: list[float], b: list[float], tolerance: float, floor: float = 0.0) -> Verdict:
    """Lower is better (seconds, bytes): the median over seeds of current/baseline outside [1/(1+t), 1+t].

    `floor`: an absolute change below it is within tolerance whatever the ratio (a few MiB on a small process)."""
    if not a or not b or len(a) != len(b) or not all(a):
        return Verdict(quantity, kind, _mean(a), _mean(b), "-", UNJUDGED, "missing on one side")
    ratios = [vb / va for va, vb in zip(a, b, strict=True)]
    r = statistics.median(ratios)
    change = f"x{r:.3f}"
    rule = f"median over {len(ratios)} seed(s) of current/baseline outside [{1 / (1 + tolerance):.3f}, {1 + tolerance:.3f}]"
    big = abs(statistics.median(b) - statistics.median(a)) > floor
    if r > 1 + tolerance and big:
        return Verdict(quantity, kind, _mean(a), _mean(b), change, REGRESSED, rule)
    if r < 1 / (1 + tolerance) and big:
        return Verdict(quantity, kind, _mean(a), _mean(b), change, IMPROVED, rule)
    return Verdict(quantity, kind, _mean(a), _mean(b), change, WITHIN, rule + (f", and beyond {floor / 2**20:.0f} MiB" if floor else ""))


def relative_speed(quantity: str, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> Verdict:
    """Speed from each run's `relative_step` summary (step time over the reference step beside it), seed by seed.

    A change counts when the median over seeds of current/baseline lies beyond SPEED_TOLERANCE *and* most seeds'
    interquartile ranges do not overlap. Why both: with several intra-op threads on CPU cores that other processes
    also use, threads spin while waiting for each other, and the step and the reference suffer unequally; the
    quartiles then spread, and a verdict becomes cautious (not judged as slower) rather than a false alarm.
    """
    medians_a, medians_b = [x.get("median") for x in a], [x.get("median") for x in b]
    steps = min(int(x.get("n") or 0) for x in a + b)
    if steps < SPEED_MIN_STEPS:
        return unjudged(quantity, "speed", medians_a, medians_b, f"only {steps} steady step(s) in a run: needs {SPEED_MIN_STEPS}")
    if None in medians_a or None in medians_b:
        return unjudged(quantity, "speed", medians_a, medians_b, "a run has no median relative step time")
    ratios = [float(mb) / float(ma) for ma, mb in zip(medians_a, medians_b, strict=True)]  # type: ignore[arg-type]
    r = statistics.median(ratios)
    slower = sum(y["q1"] > x["q3"] for x, y in zip(a, b, strict=True))
    faster = sum(y["q3"] < x["q1"] for x, y in zip(a, b, strict=True))
    rule = (
        f"median over {len(ratios)} seed(s) of current/baseline outside [{1 / (1 + SPEED_TOLERANCE):.3f}, {1 + SPEED_TOLERANCE:.3f}], "
        f"and quartiles apart in most seeds ({max(slower, faster)} of {len(ratios)})"
    )
    verdict = WITHIN
    if r > 1 + SPEED_TOLERANCE and 2 * slower > len(ratios):
        verdict = REGRESSED
    elif r < 1 / (1 + SPEED_TOLERANCE) and 2 * faster > len(ratios):
        verdict = IMPROVED
    return Verdict(quantity, "speed", _mean(medians_a), _mean(medians_b), f"x{r:.3f}", verdict, rule)


def unjudged(quantity: str, kind: str, a: Sequence[float | None], b: Sequence[float | None], why: str) -> Verdict:
    """Shown for the reader (the ratio of the means), never deciding an outcome."""
    ma, mb = _mean(a), _mean(b)
    change = f"x{mb / ma:.3f}" if ma and mb is not None else "-"
    return Verdict(quantity, kind, ma, mb, change, UNJUDGED, why)


def exact(quantity: str, a: Any, b: Any) -> Verdict:
    """Counts and sizes that the configuration decides: any difference is a change to explain (and re-bless)."""
    if a is None or b is None:
        return Verdict(quantity, "exact", a, b, "-", UNJUDGED, "missing on one side")
    same = a == b
    change = "=" if same else f"{b - a:+,}" if isinstance(a, int) and isinstance(b, int) else "differs"
    return Verdict(quantity, "exact", a, b, change, WITHIN if same else CHANGED, "must be equal")


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None
