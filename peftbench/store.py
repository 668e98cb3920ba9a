"""Run records: one self-describing JSON file per run, written atomically.

A record is rewritten at every state change (running -> finished / failed / interrupted), each
time through a temporary file and `os.replace`, so a crash or Ctrl-C never leaves half a file
and never loses the epochs already done. Scratch runs go to `<results>/scratch/`, runs asked
for with `--record` to `<results>/runs/`; records from many machines merge by copying files.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from peftbench.errors import UsageError

SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "failed", "interrupted")


def results_dir(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("PEFTBENCH_RESULTS") or "results")


def record_path(root: Path, run_id: str, canonical: bool) -> Path:
    return root / ("runs" if canonical else "scratch") / f"{run_id}.json"


def write_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a readable run record ({exc})") from None
    if not isinstance(record, dict) or "schema_version" not in record:
        raise UsageError(f"{path}: not a peftbench run record (no schema_version)")
    if record["schema_version"] > SCHEMA_VERSION:
        raise UsageError(f"{path}: schema_version {record['schema_version']} is newer than this peftbench reads ({SCHEMA_VERSION})")
    return record


def all_record_paths(root: Path) -> list[Path]:
    return sorted(p for sub in ("runs", "scratch") for p in (root / sub).glob("*.json"))


def find_record(ref: str, root: Path) -> Path:
    """A run by path, by id, or by a prefix of an id that matches exactly one run."""
    path = Path(ref)
    if path.suffix == ".json" and path.is_file():
        return path
    matches = [p for p in all_record_paths(root) if p.stem.startswith(ref)]
    exact = [p for p in matches if p.stem == ref]
    if exact:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"no run {ref!r} in {root} (give a run id, a unique prefix of one, or a path to a record)")
    listing = "\n  ".join(p.stem for p in matches[:10])
    raise UsageError(f"run {ref!r} is ambiguous in {root}; it matches:\n  {listing}")
