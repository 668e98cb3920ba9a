"""Baselines: blessed runs to check new ones against (`peftbench bless`, `peftbench check`).

A baseline is one JSON file, meant to be committed (`results/baselines/NAME.json`):

    {"kind": "baseline", "schema_version": 1, "name", "created_at", "commit", "dirty", "forced",
     "versions": {...}, "machine": {...}, "selection": {--where filters}, "records": [run record, ...]}

It embeds the selected run records whole (the latest of every key and seed; a few kB each), so a check has every
field a comparison may need and a baseline never loses what a later peftbench learns to compare. Loading migrates
twice: the baseline file through `MIGRATIONS` (its own `schema_version`), then every embedded record through
`record.migrate` (a baseline blessed from schema-1 records, or by an older peftbench, loads as today's).

`bless` refuses when the peftbench source tree or any selected record's run had uncommitted changes (a baseline
should name the code that produced it), unless `--force`, which the baseline then says.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, NamedTuple

from peftbench.errors import UsageError
from peftbench.records.schema import this_host, utc_now
from peftbench.records.store import Store, check_record, write_record
from peftbench.regress.runs import Run, latest, runs_in
from peftbench.specs import read_json

SCHEMA_VERSION = 1
DEFAULT_NAME = "default"
MIGRATIONS: dict[int, Any] = {}  # version -> function(baseline) upgrading it in place to version + 1


class Baseline(NamedTuple):
    path: Path
    data: dict[str, Any]
    runs: list[Run]


def is_baseline(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == "baseline"
    except (OSError, ValueError, AttributeError):
        return False


def load_baseline(path: Path) -> Baseline:
    """A baseline of any schema version up to ours, its records migrated to today's record schema."""
    data = read_json(Path(path), "baseline")
    if not isinstance(data, dict) or data.get("kind") != "baseline" or not isinstance(data.get("records"), list):
        raise UsageError(f"{path}: not a peftbench baseline (make one with `peftbench bless`)")
    version = data.get("schema_version", 1)
    if type(version) is not int:
        raise UsageError(f"{path}: not a peftbench baseline (schema_version {str(version)[:20]!r} is not a number)")
    if version > SCHEMA_VERSION:
        raise UsageError(f"{path}: baseline schema_version {version} is newer than this peftbench reads ({SCHEMA_VERSION})")
    for v, step in sorted(MIGRATIONS.items()):
        if data.get("schema_version", 1) == v:
            step(data)
            data["schema_version"] = v + 1
    runs = []
    for i, record in enumerate(data["records"]):
        record = check_record(record, f"{path}: record {i}")
        runs.append(Run(record, record.get("status", "finished"), f"baseline {path.name}"))
    return Baseline(Path(path), data, runs)


def baseline_target(results: Path, name: str | None, out: str | None) -> Path:
    if name and out:
        raise UsageError("give --name or --out, not both")
    if out:
        return Path(out)
    if name is not None and (not name or "/" in name or name.startswith(".")):
        raise UsageError(f"--name must be a plain file name (written to {results}/baselines/NAME.json), got {name!r}")
    return Store(results).baseline_path(name or DEFAULT_NAME)


def bless(results: Path, where: dict[str, list[str]], target: Path, force: bool = False) -> tuple[Path, list[Run]]:
    """Write the selected runs (latest of every key and seed, finished or failed) as a baseline at `target`."""
    from peftbench.records.env import git_state

    runs = [r for r in latest(runs_in(results, where)) if r.status in ("finished", "failed")]
    if not runs:
        raise UsageError(f"no finished or failed run in {results} matches {where or 'anything'}: nothing to bless")
    git = git_state()
    dirty = [r.record.get("run_id") for r in runs if (r.record.get("env") or {}).get("dirty")]
    if not force and (git.get("dirty") or dirty):
        what = (
            "the peftbench source tree has uncommitted changes"
            if git.get("dirty")
            else f"{len(dirty)} run(s) ran uncommitted code ({dirty[0]}...)"
        )
        raise UsageError(f"refusing to bless: {what}; commit first, or pass --force")
    env = runs[-1].record.get("env") or {}
    baseline = {
        "kind": "baseline",
        "schema_version": SCHEMA_VERSION,
        "name": target.stem,
        "created_at": utc_now().isoformat(),
        "commit": git.get("commit"),
        "dirty": git.get("dirty"),
        "forced": bool(force and (git.get("dirty") or dirty)),
        "versions": {k: env.get(k) for k in ("peftbench", "python", "torch", "transformers", "accelerate")},
        "machine": {
            "host": this_host(),
            "platform": platform.platform(),
            **{k: env.get(k) for k in ("device", "device_name", "threads", "dtype")},
        },
        "selection": where,
        "records": [r.record for r in sorted(runs, key=lambda r: (r.identity, str(r.seed)))],
    }
    write_record(target, baseline)
    return target, runs


def default_baseline(results: Path) -> Path:
    """`check` without `--against`: results/baselines/default.json, else the only baseline there."""
    folder = Store(results).baseline_path(DEFAULT_NAME).parent
    default = folder / f"{DEFAULT_NAME}.json"
    if default.is_file():
        return default
    found = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"no baseline in {folder}: make one with `peftbench bless`, or give --against FILE")
    raise UsageError(f"several baselines in {folder} ({', '.join(p.name for p in found)}): choose one with --against")
