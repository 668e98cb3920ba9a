"""An interval on every number: over seeds when there are several, over examples when there is one.

- n >= 5 seeds: a 95% percentile bootstrap of the pooling statistic (the paper's median or mean),
  2,000 resamples with a fixed generator, so the same records give the same interval.
- 2 <= n < 5 seeds: a bootstrap of so few values is not a 95% interval, so the range (min-max) is
  shown and called so.
- n = 1 seed: the spread over the evaluation examples. Accuracy is a mean of per-example 0/1
  correctness, so its standard error is sqrt(p(1-p)/N) from the score and the example count the
  record holds (the per-example predictions themselves are not stored); a correlation (Pearson,
  Spearman) gets a Fisher-z interval over its N pairs. Other metrics of one run (F1, Matthews,
  corpus BLEU...) need the predictions, which records do not keep: the cell says "no interval".

Each interval carries a one-letter code the tables print and a sentence the notes print, so
every cell says which kind it is.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_MIN_SEEDS = 5
RESAMPLES = 2000
Z95 = 1.959963984540054

KINDS = {
    "B": "95% bootstrap interval of the pooled value over seeds (percentile, 2,000 resamples)",
    "R": "range (min-max) over seeds: fewer than 5 seeds, too few for a 95% bootstrap",
    "E": "95% interval from the per-example standard error of one run (accuracy: sqrt(p(1-p)/N) over N eval examples)",
    "F": "95% Fisher-z interval of one run's correlation over its N eval examples",
    "N": "no interval: one run, and its per-example spread needs the predictions, which records do not keep",
}


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None
    kind: str  # a key of KINDS

    @property
    def known(self) -> bool:
        return self.low is not None and self.high is not None

    def shifted(self, by: float) -> Interval:
        """The interval of `value - by` (ours - paper: the paper's printed value is taken as exact)."""
        if not self.known:
            return self
        return Interval(self.low - by, self.high - by, self.kind)  # type: ignore[operator]


NONE = Interval(None, None, "N")


def pool(values: list[float], rule: str) -> float:
    return statistics.median(values) if rule == "median" else statistics.fmean(values)


def seed_interval(values: list[float], rule: str) -> Interval:
    """Several seeds: a bootstrap interval of the pooled value from 5 seeds on, the range below."""
    if len(values) < 2:
        return NONE
    if len(values) < BOOTSTRAP_MIN_SEEDS:
        return Interval(min(values), max(values), "R")
    data = np.asarray(values, dtype=float)
    picks = np.random.default_rng(0).integers(0, len(data), size=(RESAMPLES, len(data)))
    stat = np.median(data[picks], axis=1) if rule == "median" else data[picks].mean(axis=1)
    low, high = np.percentile(stat, [2.5, 97.5])
    return Interval(float(low), float(high), "B")


def example_interval(metric: str, raw: float, examples: int | None, scale: float) -> Interval:
    """One run: the spread over its `examples` evaluation examples, where the score alone allows it."""
    if not examples or examples < 2:
        return NONE
    base = metric.split("_")[0]
    if base == "accuracy" and 0.0 <= raw <= 1.0:
        half = Z95 * math.sqrt(raw * (1 - raw) / examples)
        return Interval(max(0.0, raw - half) * scale, min(1.0, raw + half) * scale, "E")
    if base in ("pearson", "spearman") and examples > 3 and -1.0 < raw < 1.0:
        z, se = math.atanh(raw), 1 / math.sqrt(examples - 3)
        return Interval(math.tanh(z - Z95 * se) * scale, math.tanh(z + Z95 * se) * scale, "F")
    return NONE
