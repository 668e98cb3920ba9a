"""`peftbench check`: the gate. Which outcomes fail a check, and the check itself, out of the CLI.

Nothing missing passes: a configuration or seed of the baseline with no current run fails (`missing`), unless
`--allow-missing`; so does a filter that selects nothing (exit 2: a mistyped `--where` must never read as "no
regression"). What the baseline does not have is `new` and informs, unless `--strict-new`. Improvements pass but
are listed first and counted; `--fail-on-improved` makes them fail, for a CI that wants every change blessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from peftbench.errors import UsageError
from peftbench.regress.baselines import Baseline
from peftbench.regress.compare import CHANGED, IMPROVED, MISSING, NEW, NEW_FAILURE, NOT_COMPARABLE, REGRESSED, Pair, compare
from peftbench.regress.runs import Run, matches, runs_in


@dataclass(frozen=True)
class Policy:
    """Which outcomes fail the check, from the command's flags."""

    allow_changed: bool = False  # a changed configuration (not comparable) passes
    allow_missing: bool = False  # a baseline configuration or seed without a current run passes
    strict_new: bool = False  # a configuration or seed the baseline lacks fails
    fail_on_improved: bool = False  # an improvement fails (bless it to accept it)

    def failing(self) -> set[str]:
        out = {NEW_FAILURE, REGRESSED, CHANGED, MISSING, NOT_COMPARABLE}
        out -= {NOT_COMPARABLE} if self.allow_changed else set()
        out -= {MISSING} if self.allow_missing else set()
        out |= {NEW} if self.strict_new else set()
        out |= {IMPROVED} if self.fail_on_improved else set()
        return out


@dataclass
class Result:
    """A finished check: every pair, the outcomes that fail, and how many current runs lay outside the baseline."""

    pairs: list[Pair]
    failing: set[str]
    baseline_runs: int
    current_runs: int
    unrelated: int = 0  # current runs of methods, tasks or models the baseline does not have (not judged)
    bad: list[Pair] = field(init=False)

    def __post_init__(self) -> None:
        self.bad = [p for p in self.pairs if p.outcome in self.failing]

    @property
    def passed(self) -> bool:
        return not self.bad

    def outcome_count(self, outcome: str) -> int:
        return sum(p.outcome == outcome for p in self.pairs)


def select(baseline: Baseline, results: Path, where: dict[str, list[str]]) -> tuple[list[Run], list[Run], int]:
    """The baseline's runs and the current runs that `where` selects; an empty side is a usage error (exit 2)."""
    base = [r for r in baseline.runs if matches(r.record, where, r.status)]
    if not base:
        shown = " ".join(f"{k}={','.join(v)}" for k, v in where.items())
        raise UsageError(f"--where {shown} matches no run of the baseline {baseline.path}: nothing to check")
    identities = {r.identity for r in base}
    every = runs_in(results, where)
    current = [r for r in every if r.identity in identities]
    if not current:
        what = f"{' '.join(f'{k}={v}' for k, v in where.items())} " if where else ""
        raise UsageError(f"no run {what}in {results} of any method, task and model in the baseline {baseline.path}: nothing to check")
    return base, current, len(every) - len(current)


def check(baseline: Baseline, results: Path, where: dict[str, list[str]], policy: Policy) -> Result:
    """Pair the baseline with the current runs seed by seed (never across seeds) and apply the policy."""
    base, current, unrelated = select(baseline, results, where)
    pairs = compare(base, current, cross_seed=False)
    return Result(pairs, policy.failing(), len(base), len(current), unrelated)
