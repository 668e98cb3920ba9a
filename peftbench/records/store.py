"""Where records live, how they are written, and how to find them again.

The `Store` owns every path under the results directory:
`runs/` (canonical runs, `--record`), `scratch/` (everyday runs), `latency/`, `profile/` and
`baselines/`. A record is rewritten at every state change, each time through a temporary file,
`fsync` and `os.replace`, so a crash, Ctrl-C or a full disk never leaves half a file and never
loses the epochs already written. New record files are created exclusively (`O_EXCL`), so two
runs can never share one. Reading goes through `migrate`, so records of older schema versions load.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from peftbench.errors import UsageError, terminal_safe
from peftbench.records import query
from peftbench.records.schema import (
    SCHEMA_VERSION,
    check_id,
    check_written,
    effective_status,
    id_part,
    liveness,
    measurement_key,
    migrate,
    schema_problem,
    utc_now,
    valid_id,
)
from peftbench.specs import read_json

FOLDERS = {"run": ("runs", "scratch"), "latency": ("latency",), "profile": ("profile",)}
BASELINES = "baselines"
CHECKPOINTS = "checkpoints"
ADAPTERS = "adapters"  # a finished run's trained tensors, safetensors (peftbench/run/kept.py)
KEEP_ADAPTERS_ENV = "PEFTBENCH_KEEP_ADAPTERS"  # "0": runs keep no tensors (--no-keep-adapters; inherited by workers)
CHECKPOINT_SUFFIX = ".safetensors"  # tensors + JSON, never a pickle (peftbench/run/checkpoint.py)
CLAIMS = "claims"  # one file per sweep cell being run: two sweeps never train the same cell
STUDIES = "studies"  # tuning studies: Optuna SQLite storage and a JSON summary per study


def results_dir(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("PEFTBENCH_RESULTS") or "results")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Replace `path` with `record` as indented JSON, atomically (`write_bytes`)."""
    write_bytes(path, (json.dumps(record, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8"))


def write_bytes(path: Path, payload: bytes) -> None:
    """Replace `path` with `payload` atomically: a crash mid-write keeps the previous file. Written with ordinary
    file calls, so a full disk is the OS's own `OSError`; the file gets the permissions the umask gives (not
    mkstemp's 0600, which would hide records, checkpoints and adapters from the folder's group)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict[str, Any]:
    """A record of any schema version up to ours, migrated to ours and checked against the typed schema."""
    if path.is_file() and path.stat().st_size == 0:
        raise UsageError(f"{path}: an empty record file (a run killed before its first write)")
    record = check_record(read_json(path, "record"), str(path))
    record.setdefault("run_id", path.stem)
    if not valid_id(record["run_id"]):
        raise UsageError(f"{path}: not a valid record: run_id {str(record['run_id'])[:60]!r} is not a valid id")
    return record


def check_record(record: Any, where: str) -> dict[str, Any]:
    """A parsed record (a file's, or one inside a baseline), migrated and checked against the typed schema.

    Records come from anywhere (copied between machines), so one that does not conform is refused here, in
    one place, with the first wrong field named: no reader meets a list where a mapping belongs.
    """
    if not isinstance(record, dict) or type(record.get("schema_version", 1)) is not int:
        raise UsageError(f"{where}: not a peftbench record (no schema_version)")
    if record.get("schema_version", 1) > SCHEMA_VERSION:
        raise UsageError(f"{where}: schema_version {record['schema_version']} is newer than this peftbench reads ({SCHEMA_VERSION})")
    try:
        record = migrate(record)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise UsageError(f"{where}: not a valid record ({type(exc).__name__} while migrating it)") from None
    problem = schema_problem({"run_id": "-", **record})
    if problem:
        raise UsageError(f"{where}: not a valid record: {problem}")
    return record


def check_writable(folder: Path, what: str) -> None:
    """Write a 4 KiB probe into `folder` (or, while it does not exist, the nearest folder above it that does, so
    a command that then refuses leaves nothing behind), or fail with one line (exit 2) saying why: a command that
    writes (a run, a report, a baseline) learns of a read-only or full disk before its work, not after."""
    existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), Path("/"))
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", str(existing))
        probe = tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check.", delete=True)  # noqa: SIM115
        try:
            probe.write(b"x" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
        finally:
            probe.close()
    except OSError as exc:
        reason = "no space left" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise UsageError(f"{what} {folder} is not writable: {reason}") from None


@dataclass(frozen=True)
class Entry:
    """One record found in the store, with the status it effectively has now (stale included)."""

    path: Path
    record: dict[str, Any]
    status: str


@dataclass(frozen=True)
class Corrupt:
    """A file in a record folder that is no valid record (empty, truncated, foreign, malformed): `runs` lists it."""

    path: Path
    reason: str
    status: str = "corrupt"


TEMP_MAX_AGE_S = 3600  # a temporary file older than this was left by a killed writer (see `Store.clean_temp`)
CLAIM_GRACE_S = 300  # a record file stays empty from its claim to its first write, a moment; longer, a kill came between


class Store:
    """The results directory: paths for new records, and an index over the ones there."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else results_dir()

    # -- writing

    def check_writable(self) -> None:
        """Fail before any work (exit 2, one line) if records could not be written here."""
        for path in (self.root, *(self.root / f for folders in FOLDERS.values() for f in folders)):
            if path.exists() and not path.is_dir():
                raise UsageError(f"results directory: {path} exists and is not a directory")
        check_writable(self.root, "results directory")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"results directory {self.root} is not writable: {exc.strerror or exc}") from None
        self.clean_temp()

    def clean_temp(self, older_than_s: float = TEMP_MAX_AGE_S) -> list[Path]:
        """Remove the temporary files that a kill in the middle of a write left (`.<name>.<random>.tmp`).

        A live writer holds its temp file for the moment between writing and renaming it; one this old
        belongs to a process that died there. Returns what was removed.
        """
        names = {f for folders in FOLDERS.values() for f in folders} | {CHECKPOINTS, CLAIMS, BASELINES, ADAPTERS}
        folders = [self.root / name for name in sorted(names)]
        removed = []
        for folder in folders:
            for path in folder.glob(".*.tmp") if folder.is_dir() else []:
                with contextlib.suppress(OSError):
                    if time.time() - path.lstat().st_mtime > older_than_s:
                        path.unlink()
                        removed.append(path)
        return removed

    def inside(self, folder: str, name: str, suffix: str) -> Path:
        """`<root>/<folder>/<name><suffix>`, for a name that is one plain path component and stays inside the root.

        Names come from records, which may come from anywhere: a `run_id` of `../../victim/model` must never
        name a file outside the results folder (checked on the resolved path, so symlinks count too).
        """
        check_id(name)
        path = self.root / folder / f"{name}{suffix}"
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise UsageError(f"{path}: leads outside the results folder {root}")
        return path

    def claim(self, kind: str, run_id: str, canonical: bool = False) -> Path:
        """Create the (empty) file of a new record exclusively: two runs never share a file."""
        folder = FOLDERS[kind][0 if canonical or kind != "run" else 1]
        path = self.inside(folder, run_id, ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        os.close(fd)
        return path

    def checkpoint_path(self, run_id: str) -> Path:
        return self.inside(CHECKPOINTS, run_id, CHECKPOINT_SUFFIX)

    def adapters_path(self, run_id: str) -> Path:
        return self.inside(ADAPTERS, run_id, CHECKPOINT_SUFFIX)

    def study_path(self, name: str, suffix: str = ".json") -> Path:
        """A tuning study's file: `<study>.db` (its Optuna SQLite storage) or `<study>.json` (its summary)."""
        return self.inside(STUDIES, name, suffix)

    def baseline_path(self, name: str) -> Path:
        return self.inside(BASELINES, name, ".json")

    # -- reading

    def paths(self, kind: str | None = None) -> list[Path]:
        kinds = [kind] if kind else list(FOLDERS)
        return sorted(p for k in kinds for folder in FOLDERS[k] for p in (self.root / folder).glob("*.json"))

    def entries(self, kind: str | None = None, warn: bool = True, **where: Any) -> Iterator[Entry]:
        """Records of `kind` (all kinds by default) matching every `where` filter, oldest first.

        Filters are keyword fields as `records.query` reads them (`method`, `task`, `seed`, `training.lr`, `commit`...);
        a list or tuple value matches any of its items; `status` matches the effective status (`stale` included).
        A file that cannot be read is reported on stderr with its path and skipped.
        """
        wanted = query.as_where(where)
        for found in self.scan(kind):
            if isinstance(found, Corrupt):
                if warn:
                    print(f"peftbench: skipping {terminal_safe(found.reason)}", file=sys.stderr)
            elif query.matches(found.record, wanted, found.status):
                yield found

    def scan(self, kind: str | None = None) -> Iterator[Entry | Corrupt]:
        """Every file of the record folders: a valid record as an Entry, anything else as Corrupt (with why)."""
        for path in self.paths(kind):
            try:
                stat = path.stat()
                if stat.st_size == 0 and time.time() - stat.st_mtime < CLAIM_GRACE_S:
                    continue  # claimed a moment ago, first write still to come
                record = read_record(path)
            except FileNotFoundError:
                continue  # removed while we looked
            except (UsageError, OSError) as exc:
                yield Corrupt(path, str(exc))
                continue
            mtime = datetime.fromtimestamp(stat.st_mtime, timezone.utc)
            yield Entry(path, record, effective_status(record, heartbeat=mtime))

    def records(self, kind: str | None = None, **where: Any) -> list[dict[str, Any]]:
        return [e.record for e in self.entries(kind, **where)]

    def find(self, ref: str) -> Path:
        """A record by path, by id, or by a prefix of an id that matches exactly one record."""
        path = Path(ref)
        if path.suffix == ".json" and path.is_file():
            return path
        matches = [p for p in self.paths() if p.stem.startswith(ref)]
        exact = [p for p in matches if p.stem == ref]
        if exact:
            return exact[0]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UsageError(f"no record {ref!r} in {self.root} (give a run id, a unique prefix of one, or a path to a record)")
        listing = "\n  ".join(p.stem for p in matches[:10])
        raise UsageError(f"run {ref!r} is ambiguous in {self.root}; it matches:\n  {listing}")


class CellClaims:
    """Atomic claims on sweep cells: `claims/<key>-<seed>.json` created exclusively, holding the owner's host,
    pid and heartbeat; `touch` keeps them fresh while the owner lives and `release` removes them.

    Two sweeps that plan the same cell both try to claim it; one wins, the other waits for the cell. A claim
    whose owner is gone (dead pid, or silent past the record rules' bound) is taken over.
    """

    def __init__(self, store: Store):
        self.store = store
        self.held: dict[tuple[str, int], Path] = {}

    def path(self, key: str, seed: int) -> Path:
        return self.store.inside(CLAIMS, f"{key}-{seed}", ".json")

    def take(self, key: str, seed: int) -> bool:
        """Claim a cell; False when a live owner holds it. Checking and taking happen under one lock on
        `claims/.lock`, so two takers of a stale claim cannot both win."""
        path = self.path(key, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / ".lock", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            if path.exists() and self.owner_lives(path):
                return False
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(liveness()), encoding="utf-8")
            os.replace(tmp, path)
        self.held[(key, seed)] = path
        return True

    def owner_lives(self, path: Path) -> bool:
        try:
            owner = json.loads(path.read_text(encoding="utf-8"))
            mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        except (OSError, ValueError, RecursionError):
            return False
        if not isinstance(owner, dict):
            return False
        return effective_status({**owner, "status": "running"}, heartbeat=mtime) == "running"

    def touch(self) -> None:
        for path in self.held.values():
            with contextlib.suppress(OSError):
                path.touch()

    def release(self, key: str, seed: int) -> None:
        path = self.held.pop((key, seed), None)
        if path is not None:
            path.unlink(missing_ok=True)

    def release_all(self) -> None:
        for key, seed in list(self.held):
            self.release(key, seed)


def save_measurement(record: dict[str, Any], root: Path) -> Path:
    """Complete a latency or profile record (id, key, liveness) and write it under its kind's folder."""
    record.update(liveness())
    record["seed"] = (record.get("settings") or {}).get("seed", record.get("seed"))
    record["key"], record["key_parts"] = measurement_key(record)
    store = Store(root)
    while True:
        record["run_id"] = (
            f"{utc_now():%Y%m%dT%H%M%SZ}-{record['kind']}-{id_part(record['model'])}-{record['key'][:8]}-{os.urandom(3).hex()}"
        )
        try:
            path = store.claim(record["kind"], record["run_id"])
        except FileExistsError:
            continue
        check_written(record)
        write_record(path, record)
        return path


