"""Axes in sweeps: one setting taking several values, each value its own cell.

The paper's claims are curves (score against rank, budget, data size) and designs (which matrices),
so a grid must vary a hyperparameter or a training key, not only methods, tasks and seeds. An axis is
written `KEY=V1,V2,...` (`peftbench sweep --vary`, repeatable) or `vary: {KEY: [V1, V2]}` in a sweep
spec; several axes give their product. Every value becomes an ordinary `--set` override of its cell,
so it resolves, validates, gets its own comparability key, skips, resumes and scales like any cell.

- `KEY` is any `--set` key (`r`, `training.max_train_examples`, `max_train_examples`), applied to
  every cell, or `METHOD.KEY` (`lora.r`, `adapter_h.bottleneck`), applied to that method's cells only;
  the other methods' cells are not multiplied.
- Values are separated by `,`, or by `|` when the text has one (`targets=q|v|q,v`): a value that
  itself is a list (`targets`) needs `|` there, or `+` inside a value (`targets=q,v,q+v`): `q+v` is
  the set q and v. In YAML each list item is one value (`lora.targets: [q, v, q+v, q+k+v+o]`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from peftbench.errors import UsageError

SET_KEYS = ("targets",)  # keys whose values are sets of names: `+` joins the names inside one value


@dataclass(frozen=True)
class Axis:
    """One varied setting: its `--set` key (method prefix removed), the method it is limited to, and its values."""

    key: str
    values: tuple[str, ...]
    method: str | None = None

    @property
    def spelt(self) -> str:
        return f"{self.method}.{self.key}" if self.method else self.key

    def overrides(self) -> list[str]:
        """One `--set` pair per value, a set's `+` turned into the `--set` list separator."""
        joined = self.key.rsplit(".", 1)[-1] in SET_KEYS
        return [f"{self.key}={v.replace('+', ',') if joined else v}" for v in self.values]


def method_of(key: str) -> tuple[str | None, str]:
    """`lora.r` -> ('lora', 'r'); `training.lr` or `r` -> (None, key). The longest method name that prefixes the key
    wins (a composed method's name has a `+`, its own keys a dot)."""
    from peftbench.methods.config import CONFIGS

    qualified = [m for m in CONFIGS if key.startswith(m + ".")]
    if not qualified:
        return None, key
    method = max(qualified, key=len)
    return method, key[len(method) + 1 :]


def make_axis(where: str, key: str, values: Iterable[str]) -> Axis:
    values = tuple(v.strip() for v in values if v.strip())
    if not key or not values:
        raise UsageError(f"{where}: an axis needs KEY=V1,V2,..., got {key}={','.join(values)!r}")
    if len(set(values)) != len(values):
        raise UsageError(f"{where}: {key} lists a value twice: {', '.join(values)}")
    method, name = method_of(key)
    return Axis(name, values, method)


def parse_vary(text: str) -> Axis:
    """`--vary lora.r=1,2,4` or `--vary targets=q|v|q,v`."""
    key, sep, rest = text.partition("=")
    if not sep:
        raise UsageError(f"--vary expects KEY=V1,V2,..., got {text!r}")
    return make_axis("--vary", key.strip(), rest.split("|" if "|" in rest else ","))


def axes_from_spec(where: str, value: Any) -> tuple[Axis, ...]:
    """A spec's `vary:` mapping: KEY -> a list of values (or one comma-separated string)."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise UsageError(f"{where}: vary: expected a mapping KEY: [V1, V2, ...], got {value!r}")
    out = []
    for key, values in value.items():
        if isinstance(values, str):
            values = values.split("|" if "|" in values else ",")
        elif not isinstance(values, list) or not all(isinstance(v, (str, int, float)) for v in values):
            raise UsageError(f"{where}: vary.{key}: expected a list of values, got {values!r}")
        out.append(make_axis(f"{where}: vary", str(key), (str(v) for v in values)))
    return tuple(out)


def check_distinct(axes: Iterable[Axis]) -> None:
    """The same key varied twice would make cells that differ in nothing but order: refused."""
    seen: set[str] = set()
    for axis in axes:
        if axis.spelt in seen:
            raise UsageError(f"{axis.spelt} is varied twice; give all its values in one axis")
        seen.add(axis.spelt)


def expand(axes: Iterable[Axis], method: str) -> list[tuple[str, ...]]:
    """The override tuples of one cell of `method`: the product of the axes that apply to it (one empty tuple if none)."""
    applying = [a.overrides() for a in axes if a.method in (None, method)]
    return [tuple(combo) for combo in itertools.product(*applying)]


def axis_label(config: dict[str, Any], axes: Iterable[Axis]) -> str:
    """A record's values on the axes (`r=4 targets=q,v`), read from its resolved config, for tables of a varied sweep."""
    parts = []
    for axis in axes:
        if axis.method not in (None, config.get("method")):
            continue
        section, _, name = axis.key.rpartition(".")
        sections = [section] if section else [s for s, v in config.items() if isinstance(v, dict) and axis.key in v]
        found = next((config[s][name] for s in sections if isinstance(config.get(s), dict) and name in config[s]), None)
        if found is not None:
            shown = ",".join(map(str, found)) if isinstance(found, list) else found
            parts.append(f"{name}={shown}")
    return " ".join(parts)


def with_axis_labels(frame: Any, axes: tuple[Axis, ...]) -> Any:
    """A results frame whose `method` names each run's axis values (`lora r=4`), so a varied sweep's summary keeps its
    values apart instead of pooling r=1 and r=4 into one median."""
    if not axes or frame.empty:
        return frame
    from pathlib import Path

    from peftbench.records.store import read_record

    labels = [axis_label(read_record(Path(p)).get("config") or {}, axes) for p in frame["path"]]
    frame = frame.copy()
    frame["method"] = [f"{m} {label}".strip() for m, label in zip(frame["method"], labels, strict=True)]
    return frame
