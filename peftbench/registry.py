"""Name -> object tables with explicit registration.

Every user-facing name (a method, a task, a model preset) goes through a `Registry`, so a typo
gets the same answer everywhere: `unknown method 'lorra'; did you mean 'lora'?`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from peftbench.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """A table of `kind` objects keyed by name; registering a name twice is a bug, not an override."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`, for classes."""
        return lambda item: self.add(name, item)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UsageError(unknown_name_message(self.kind, name, self._items)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())


def unknown_name_message(kind: str, name: str, known: object) -> str:
    """`unknown method 'lorra'; did you mean 'lora'?` plus the full list when the list is short."""
    names = sorted(known)  # type: ignore[call-overload]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    message = f"unknown {kind} {name!r}"
    if close:
        message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if len(names) <= 12:
        message += f" (known: {', '.join(names)})"
    return message
