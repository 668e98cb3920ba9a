"""The run records a comparison works on: one typed view of a record (`Run`), selected with the one `--where`
grammar (`records.query`: repeatable `k=v1,v2`, commit prefixes, dotted paths, short names, numbers).

It sits below `compare` and `baselines`, which both select runs, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftbench.errors import UsageError
from peftbench.records.query import matches as matches
from peftbench.records.query import parse_where as parse_where  # re-exported: compare, check, bless, history
from peftbench.records.schema import effective_status
from peftbench.records.store import Entry, Store, read_record


@dataclass(frozen=True)
class Run:
    """One record with the status it effectively has (stale included) and where it came from."""

    record: dict[str, Any]
    status: str
    origin: str

    @property
    def config(self) -> dict[str, Any]:
        return self.record.get("config") or {}

    @property
    def identity(self) -> tuple[str, str, str]:
        c = self.config
        return (str(c.get("method", "-")), str(c.get("task", "-")), str(c.get("model", "-")))

    @property
    def key(self) -> str:
        return str(self.record.get("key"))

    @property
    def seed(self) -> Any:
        return self.record.get("seed")

    @property
    def finished(self) -> bool:
        return self.status == "finished"


def runs_in(root: Path, where: dict[str, list[str]] | None = None) -> list[Run]:
    """The run records under a results directory matching `where` (oldest first). Left out: `running` ones (not
    finished yet) and tuning trials (`hooks.tune`: chosen for scoring well, they are never a result to gate on)."""
    entries = list(Store(root).entries("run")) + loose_entries(Path(root))
    return [
        Run(e.record, e.status, str(e.path))
        for e in entries
        if e.status != "running" and not (e.record.get("hooks") or {}).get("tune") and matches(e.record, where or {}, e.status)
    ]


def loose_entries(folder: Path) -> list[Entry]:
    """Run records lying directly in a folder (records copied together by hand, test fixtures), oldest first."""
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = read_record(path)
        except UsageError:
            continue  # a baseline or another file: not a record
        if record.get("kind") == "run":
            out.append(Entry(path, record, effective_status(record)))
    return out


def latest(runs: Iterable[Run]) -> list[Run]:
    """The latest record of every (key, seed): a re-run replaces what it re-ran."""
    best: dict[tuple[str, Any], Run] = {}
    for run in runs:
        slot = (run.key, run.seed)
        if slot not in best or str(run.record.get("created_at") or "") >= str(best[slot].record.get("created_at") or ""):
            best[slot] = run
    return list(best.values())
