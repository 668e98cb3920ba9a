"""Verdicts on one measured quantity of two sets of runs: regressed, improved, within tolerance, or not judged.

Every rule here compares a difference with a noise level that was *measured* or declared for that quantity,
never with a fixed percentage alone:

- Quality metrics (accuracy, BLEU, ...): by their direction. One run per side: the difference against the metric
  registry's absolute `tolerance` (raw units). Several seeds on both sides: the difference of the means against
  `max(tolerance, SEED_K x the standard error of that difference)`, with the standard error from the seeds' spread
  (Welch: sqrt(s_a^2/n_a + s_b^2/n_b)), so noisy configurations need a larger change to count.
- Speed (training seconds per step) and memory (peak RSS, CUDA peak allocated): ratios new/old, judged against a
  measured spread, as `peftbench latency` judges against its A/A control: the change counts when the two sides'
  spreads do not overlap *and* the ratio lies outside [1/(1+b), 1+b], b = SPREAD_K x the larger relative spread
  (spread width / median). With two or more runs per side (seeds or repeats) the spread is the range of the runs'
  values, which includes run-to-run drift (other processes on the machine), and a change there decides the outcome.
  With one run per side the spread is the interquartile range of the run's steady-state step times: it cannot see
  that the machine was busier during the other run (on a shared 2-core machine two identical runs differed 6x in
  median step time), so the verdict is shown as indicative and never fails a check. Memory has no within-run spread:
  one run per side is shown, not judged. Runs from different machines (device, device name, threads, host) are
  never judged on speed or memory.
- Exact quantities (parameter counts, checkpoint bytes, the analytic memory breakdown): any change counts.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from peftbench.tasks.metrics import metric_for

SEED_K = 3.0  # a quality change must exceed this many standard errors of the difference of the seed means
SPREAD_K = 1.0  # a ratio must lie outside 1 +/- this many relative spreads (IQR/median, or range/median across runs)
REGRESSED, IMPROVED, WITHIN, CHANGED, UNJUDGED = "regressed", "improved", "within tolerance", "changed", "not judged"
SLOWER_HINT = "higher, beyond this run's own spread (indicative: one run per side)"
FASTER_HINT = "lower, beyond this run's own spread (indicative: one run per side)"


@dataclass(frozen=True)
class Verdict:
    """One quantity of one pair: the two sides' values, the change, the bound it was judged against, and why."""

    quantity: str  # e.g. "accuracy", "speed: train seconds/step", "params.method"
    kind: str  # quality, speed, memory, exact
    a: float | None
    b: float | None
    change: str  # "-0.4833 (abs)", "x1.31", "4096 -> 4352"
    verdict: str  # regressed, improved, within tolerance, changed (exact), not judged
    rule: str  # the bound and where it comes from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def bad(self) -> bool:
        return self.verdict in (REGRESSED, CHANGED)


def quality(name: str, a: list[float | None], b: list[float | None], higher_is_better: bool | None = None) -> Verdict:
    """A quality metric of two sides (one value per seed); see the module docstring for the rule."""
    metric = metric_for(name)
    hib = metric.higher_is_better if higher_is_better is None else higher_is_better
    va, vb = [x for x in a if x is not None], [x for x in b if x is not None]
    if not va or not vb:
        if va and not vb:  # the score became undefined (NaN: e.g. a constant prediction under Pearson)
            return Verdict(name, "quality", _mean(va), None, "became undefined", REGRESSED, "a score that existed is now NaN")
        return Verdict(name, "quality", _mean(va), _mean(vb), "-", UNJUDGED if not va and not vb else IMPROVED, "undefined on one side")
    ma, mb = statistics.fmean(va), statistics.fmean(vb)
    bound, rule = metric.tolerance, f"registry tolerance {metric.tolerance:g}"
    if len(va) >= 2 and len(vb) >= 2:
        se = math.sqrt(statistics.variance(va) / len(va) + statistics.variance(vb) / len(vb))
        if SEED_K * se > bound:
            bound, rule = SEED_K * se, f"{SEED_K:g} x seed standard error {se:.4g} ({len(va)} vs {len(vb)} seeds)"
        else:
            rule += f" (> {SEED_K:g} x seed standard error {se:.4g})"
    diff = mb - ma
    good = diff if hib else -diff
    verdict = WITHIN if abs(diff) <= bound else IMPROVED if good > 0 else REGRESSED
    return Verdict(name, "quality", ma, mb, f"{diff:+.4g}", verdict, f"tolerance {bound:.4g}: {rule}")


@dataclass(frozen=True)
class Spread:
    """A measured value with its noise: `center` (median), and the interval [low, high] that holds the noise."""

    center: float
    low: float
    high: float
    source: str  # "IQR of N step times", "range of N runs"

    @property
    def relative(self) -> float:
        return (self.high - self.low) / self.center if self.center else math.inf


def spread_of_runs(values: list[float]) -> Spread | None:
    """Repeated runs' values: median and range (None with fewer than 2 runs: no spread measured)."""
    if len(values) < 2:
        return None
    return Spread(statistics.median(values), min(values), max(values), f"range of {len(values)} runs")


def spread_of_steps(summary: dict[str, Any] | None) -> Spread | None:
    """One run's steady-state step times (`train_throughput.step_seconds`): median and interquartile range."""
    if not summary or not summary.get("n") or summary.get("median") is None:
        return None
    return Spread(summary["median"], summary["q1"], summary["q3"], f"IQR of {summary['n']} step times")


def ratio(quantity: str, kind: str, a: Spread | None, b: Spread | None, a_value: float | None, b_value: float | None) -> Verdict:
    """Lower is better (seconds, bytes): slower/larger when new/old is above 1 beyond the noise, faster/smaller below.

    The band is symmetric in log space: outside [1 / (1 + band), 1 + band]. Judged against a within-run spread only
    (one run per side) the verdict is indicative: a run's step times cannot show that the machine was busier during
    the other run, so it is reported (SLOWER_HINT, FASTER_HINT) but never decides an outcome.
    """
    if a_value is None or b_value is None or not a_value:
        return Verdict(quantity, kind, a_value, b_value, "-", UNJUDGED, "missing on one side")
    r = b_value / a_value
    change = f"x{r:.3f}"
    if a is None or b is None:
        return Verdict(quantity, kind, a_value, b_value, change, UNJUDGED, "no measured spread (one run per side): shown, not judged")
    band = SPREAD_K * max(a.relative, b.relative)
    rule = f"spreads must not overlap and the ratio must lie outside [{1 / (1 + band):.3f}, {1 + band:.3f}] ({a.source} vs {b.source})"
    within_run = "runs" not in a.source or "runs" not in b.source
    if b.low > a.high and r > 1 + band:
        return Verdict(quantity, kind, a_value, b_value, change, SLOWER_HINT if within_run else REGRESSED, rule)
    if b.high < a.low and r < 1 / (1 + band):
        return Verdict(quantity, kind, a_value, b_value, change, FASTER_HINT if within_run else IMPROVED, rule)
    return Verdict(quantity, kind, a_value, b_value, change, WITHIN, rule)


def exact(quantity: str, a: Any, b: Any) -> Verdict:
    """Counts and sizes that the configuration decides: any difference is a change to explain (and re-bless)."""
    if a is None or b is None:
        return Verdict(quantity, "exact", a, b, "-", UNJUDGED, "missing on one side")
    same = a == b
    change = "=" if same else f"{b - a:+,}" if isinstance(a, int) and isinstance(b, int) else "differs"
    return Verdict(quantity, "exact", a, b, change, WITHIN if same else CHANGED, "must be equal")


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None
