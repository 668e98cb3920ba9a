"""Equal parameter budgets: the size knob of a method that makes its trainable count (paper convention,
task head excluded) equal a target N.

The paper compares designs at one budget (Table 5: r=8 for one matrix, 4 for two, 2 for four, all 18M on
GPT-3), so a user asking "which matrices under this budget" needs the knob solved, not guessed. Every
method we size has a count affine in its knob (LoRA: r x (d_in + d_out) per matrix; adapters:
bottleneck x (2d + 1) + d per adapter; prefixes: prefix_len x width), so two counts give the line and a
third, at the solution, proves it; a count that is not on the line falls back to bisection over the
knob, which only needs the count to grow with it. Counting is on the meta device (`bench.params`), so
even GPT-3 175B takes about a second per count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from peftbench.errors import UsageError

# the fields that size a method, in the order they are looked for on its config class
KNOBS = ("r", "bottleneck", "prefix_len")
MAX_KNOB = 1 << 20  # no method is sized beyond this: the bisection's ceiling


@dataclass(frozen=True)
class Solved:
    """The knob's value and the exact count it gives."""

    knob: str
    value: int
    count: int


def size_knob(method: str) -> str:
    """The hyperparameter that sizes `method` (r, bottleneck or prefix_len); a UsageError for a method with none
    (ft, bitfit, a composition: nothing or more than one thing to solve)."""
    from peftbench.methods.config import CONFIGS

    fields = {f.name for f in dataclasses.fields(CONFIGS.get(method))}
    for knob in KNOBS:
        if knob in fields:
            return knob
    raise UsageError(f"--budget: {method} has no size knob to solve (methods sized by {', '.join(KNOBS)} can be)")


def solve(count: Callable[[int], int], budget: int, knob: str = "r", what: str = "") -> Solved:
    """The knob value >= 1 whose `count` equals `budget` exactly; else a one-line UsageError naming the nearest counts.

    `count(k)` must not decrease with k (true of every sized method); `what` names the method and model in errors.
    """
    if budget < 1:
        raise UsageError(f"--budget must be a positive parameter count, got {budget}")
    at_one = count(1)
    slope = count(2) - at_one
    if slope <= 0:
        raise UsageError(f"--budget: the count{what} does not grow with {knob} ({at_one:,} at {knob}=1 and 2)")
    guess, rest = divmod(budget - at_one, slope)
    if guess >= 0 and rest == 0 and count(guess + 1) == budget:
        return Solved(knob, guess + 1, budget)
    low, high = bracket(count, budget, knob, max(1, guess + 1))
    counts = {k: count(k) for k in (low, high) if k >= 1}
    exact = [k for k, c in counts.items() if c == budget]
    if exact:
        return Solved(knob, exact[0], budget)
    raise UsageError(unreachable(budget, counts, knob, what))


def bracket(count: Callable[[int], int], budget: int, knob: str, start: int) -> tuple[int, int]:
    """The knob values either side of `budget` (low may be 0: below the smallest size), by bisection from `start`."""
    low, high = 0, start
    while count(high) < budget:
        low, high = high, high * 2
        if high > MAX_KNOB:
            raise UsageError(f"--budget {budget:,} needs {knob} > {MAX_KNOB:,}: too large for this method and model")
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if count(mid) < budget else (low, mid)
    return low, high


def unreachable(budget: int, counts: dict[int, int], knob: str, what: str) -> str:
    """One line: the budget and the counts on either side of it, with their knob values."""
    near = " and ".join(f"{c:,} ({knob}={k})" for k, c in sorted(counts.items()))
    side = "below the smallest count; the nearest is" if len(counts) == 1 else "between two sizes; the nearest counts are"
    return f"--budget {budget:,} is unreachable{what}: {side} {near}"


def solve_params(
    method: str, model: str, budget: int, task: str | None = None, preset: str | None = None, overrides: Sequence[str] = ()
) -> Solved:
    """`peftbench params --budget N`: the knob solved on the meta device with the user's other overrides kept."""
    from peftbench.bench.params import count_params

    knob = size_knob(method)
    if any(o.split("=", 1)[0].split(".")[-1] == knob for o in overrides):
        raise UsageError(f"--budget solves {knob}: do not also --set {knob}")

    def count(value: int) -> int:
        return count_params(method, model, task, preset, [*overrides, f"{knob}={value}"]).counts["method"]

    return solve(count, budget, knob, f" for {method} on {model}")
