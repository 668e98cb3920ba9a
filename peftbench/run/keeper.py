"""The run's record while it runs: created (or continued after an interruption), rewritten at every epoch,
touched by a heartbeat, and ended as finished, failed (with the reason) or interrupted.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path
from typing import Any

import torch

from peftbench.records.schema import SCHEMA_VERSION, check_written, liveness, utc_now
from peftbench.records.store import write_record
from peftbench.run.plan import Plan

HEARTBEAT_S = 30.0


def new_record(plan: Plan) -> dict[str, Any]:
    if plan.previous is not None:
        return continued_record(plan)
    cfg, train = plan.config, plan.config.training
    config = cfg.to_dict()
    key, key_parts = plan.key
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "run",
        "run_id": plan.run_id,
        "status": "running",
        "error": None,
        "created_at": utc_now().isoformat(),
        "finished_at": None,
        **liveness(),
        "seed": train.seed,
        "key": key,
        "key_parts": key_parts,
        "config": config,
        "config_hash": cfg.config_hash(),
        "model_origin": plan.resolved.source.origin,
        "data": {
            "source": plan.resolved.data.describe(plan.resolved.spec),
            "splits": {name: {"examples": len(ex), "sha256": plan.split_hashes[name]} for name, ex in plan.splits.items()},
            "max_train_examples": train.max_train_examples or None,
        },
        "env": None,
        "params": None,
        "main_metric": plan.resolved.spec.main_metric,
        "metrics": {},
        "metrics_last": {},
        "best_epoch": None,
        "epochs": [],
        "measurements": {},
        "hooks": {},
    }


def continued_record(plan: Plan) -> dict[str, Any]:
    """The interrupted run's record, running again; `resumed` says from where (or that it started over)."""
    record = dict(plan.previous or {})
    at = {"at": utc_now().isoformat(), "from_step": plan.resume["step"] if plan.resume else 0}
    if plan.resume is None:
        record["epochs"], record["metrics"], record["metrics_last"], record["best_epoch"] = [], {}, {}, None
        at["note"] = "no checkpoint: started over"
    else:
        record["epochs"] = [e for e in record.get("epochs", []) if e["epoch"] <= plan.resume["epochs_done"]]
    record.update(status="running", error=None, finished_at=None, **liveness())
    record.pop("traceback", None)
    record["resumed"] = [*record.get("resumed", []), at]
    return record


class Heartbeat:
    """Touches the record file's mtime every HEARTBEAT_S while the run lives (also during long evaluations)."""

    def __init__(self, path: Path | None):
        self.path, self.done = path, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="peftbench-heartbeat")

    def _beat(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                self.path.touch(exist_ok=True)  # type: ignore[union-attr]

    def __enter__(self) -> Heartbeat:
        if self.path is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()


class RecordKeeper:
    """Writes the record (main process only), refreshing its heartbeat; remembers a failed write."""

    def __init__(self, path: Path | None, record: dict[str, Any]):
        self.path, self.record = path, record

    def write(self) -> None:
        if self.path is None:
            return
        self.record["heartbeat_at"] = utc_now().isoformat()
        check_written(self.record)
        write_record(self.path, self.record)


def write_final(keeper: RecordKeeper) -> str | None:
    """The last write. If it fails (a full disk), the record is marked `failed` with the OS's reason and written
    once more, compactly; if even that fails, the last good one stays. Returns the reason, or None when written."""
    try:
        keeper.write()
        return None
    except OSError as exc:
        reason = f"could not write the final record: {failure_reason(exc)}"
    keeper.record.update(status="failed", error=reason)
    keeper.record.pop("traceback", None)
    try:
        keeper.write()
    except OSError:
        print(f"peftbench: {reason}; the last good record stays in {keeper.path}", file=sys.stderr)
    return reason


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return f"out of memory ({type(exc).__name__}: {exc})".replace(" ()", "")
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"
