"""One run: load, adapt, train, evaluate, measure, record. `run(resolved)` is the programmatic API.

`resolve.resolve_run` decides everything that can fail because of the user's input before a record
exists (exit 2, nothing left behind); `prepare` then checks the results directory, seeds once, and
loads the model, tokenizer and data; `execute` trains with the record on disk from the first step,
rewritten at every epoch (and touched every few seconds as a heartbeat), and ends it as finished,
failed (with the reason) or interrupted. A sweep or a search calls `run` with its own callbacks.

Training loop hooks: every `Callback` (the method's own, via `Adapted.callbacks()`, then the
caller's) sees `on_step_end` after each optimizer step and `on_epoch_end` after each epoch's
evaluation, with the adapted model, optimizer and scheduler. The runner never names a method.

Several processes (`accelerate launch`, `torchrun`): the method is applied before `prepare`, the
prepared (DDP-wrapped) module is what trains, `batch_size` is per process, evaluation gathers
predictions with `gather_for_metrics`, and only the main process writes the record.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peftbench.config.resolve import ResolvedRun
from peftbench.errors import RunFailed, RunInterrupted
from peftbench.records.schema import utc_now
from peftbench.records.store import Store
from peftbench.run.hooks import Callback, TrainState
from peftbench.run.keeper import Heartbeat, RecordKeeper, failure_reason, new_record, write_final
from peftbench.run.loop import NonFiniteLoss, train_and_evaluate, training_step
from peftbench.run.plan import LoadCache, Plan, prepare
from peftbench.run.stop import polling_for_stop, tied_to_parent

__all__ = ["Callback", "LoadCache", "NonFiniteLoss", "Plan", "TrainState", "execute", "prepare", "run", "training_step"]


def run(
    resolved: ResolvedRun,
    *,
    store: Store | None = None,
    canonical: bool = False,
    callbacks: Sequence[Callback] = (),
    cache: LoadCache | None = None,
    checkpoints: bool = False,
    resume: Path | None = None,
) -> dict[str, Any]:
    """Prepare and execute one run; returns its final record (raises RunFailed / RunInterrupted)."""
    plan = prepare(resolved, store or Store(), canonical, cache=cache, checkpoints=checkpoints, resume=resume)
    return execute(plan, callbacks)


def execute(plan: Plan, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train and evaluate with the record kept current on disk; returns the final record."""
    record = new_record(plan)
    keeper = RecordKeeper(plan.record_path, record)
    try:
        keeper.write()
        with Heartbeat(plan.record_path), tied_to_parent():
            train_and_evaluate(plan, keeper, callbacks)
        record["status"] = "finished"
    except KeyboardInterrupt:
        record["status"] = "interrupted"
        record["error"] = "interrupted by the user (SIGINT/SIGTERM)"
        raise RunInterrupted(plan.record_path) from None
    except Exception as exc:
        record["status"] = "failed"
        record["error"] = failure_reason(exc)
        record["traceback"] = traceback.format_exc()
        raise RunFailed(f"run failed: {record['error']}\nrecord: {plan.record_path}") from exc
    finally:
        record["finished_at"] = utc_now().isoformat()
        with polling_for_stop():  # a signal now only sets the flag: the final write completes
            unwritten = write_final(keeper)
    if unwritten:  # a run whose record does not say `finished` never exits 0
        raise RunFailed(f"run failed: {unwritten}\nrecord: {plan.record_path}")
    return record
