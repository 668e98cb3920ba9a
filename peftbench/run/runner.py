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

import contextlib
import copy
import math
import os
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from peftbench.bench import measure
from peftbench.config.resolve import ResolvedRun
from peftbench.errors import RunFailed, RunInterrupted, UsageError
from peftbench.methods import METHODS, Adapted
from peftbench.models.build import build_model, load_tokenizer, seed_new_weights
from peftbench.records.env import environment
from peftbench.records.schema import SCHEMA_VERSION, comparability_key, id_part, liveness, update_scores, utc_now, with_directions
from peftbench.records.store import Store, read_record, write_record
from peftbench.run import checkpoint
from peftbench.run.stop import STOP, polling_for_stop, tied_to_parent
from peftbench.tasks.base import content_hash, load_splits
from peftbench.tasks.pipeline import Pipeline, make_pipeline

HEARTBEAT_S = 30.0


class NonFiniteLoss(ArithmeticError):
    """The training loss became NaN or infinite: continuing would only produce garbage."""


@dataclass
class TrainState:
    """What a callback sees: the step just done and the objects it may act on."""

    step: int
    epoch: int
    total_steps: int
    adapted: Adapted
    optimizer: Any
    scheduler: Any
    accelerator: Accelerator
    record: dict[str, Any]  # callbacks report under record["hooks"][<their name>]
    loss: float | None = None


class Callback:
    """Override what you need; both are called on every process."""

    def on_step_end(self, state: TrainState) -> None:
        """After each optimizer step (and scheduler step)."""

    def on_epoch_end(self, state: TrainState, entry: dict[str, Any]) -> None:
        """After each epoch's evaluation; `entry` is the epoch's record entry."""


@dataclass
class Plan:
    """A resolved run with its model, tokenizer and data loaded, and its record file claimed."""

    resolved: ResolvedRun
    splits: dict[str, list[Any]]
    model: Any
    tokenizer: Any
    run_id: str
    record_path: Path | None  # None on processes other than the main one: they never write
    split_hashes: dict[str, str] = field(default_factory=dict)
    key: tuple[str, dict[str, Any]] = ("", {})  # the comparability key and its parts, computed once
    checkpoint_path: Path | None = None  # where checkpoints go (None: no checkpoints)
    keep_checkpoint: bool = False  # keep the last checkpoint after the run finishes
    resume: dict[str, Any] | None = None  # a loaded checkpoint to continue from
    previous: dict[str, Any] | None = None  # the interrupted run's record, continued in place

    @property
    def config(self) -> Any:
        return self.resolved.config


class LoadCache:
    """What a process reuses across the runs of a grid: tokenizers, data splits with their hashes, and a
    pristine copy of the last base model (each run gets its own deep copy, since methods change the model)."""

    def __init__(self) -> None:
        self._tokenizers: dict[Any, Any] = {}
        self._splits: dict[Any, tuple[dict[str, list[Any]], dict[str, str]]] = {}
        self._model: tuple[Any, Any] | None = None

    def tokenizer(self, r: ResolvedRun) -> Any:
        key = (r.source.name, str(r.source.local_dir), r.hf_config.model_type)
        if key not in self._tokenizers:
            self._tokenizers[key] = load_tokenizer(r.source, r.hf_config.model_type)
        return self._tokenizers[key]

    def splits(self, r: ResolvedRun) -> tuple[dict[str, list[Any]], dict[str, str]]:
        train_split = r.config.training.train_split
        key = (r.spec.name, r.data.kind, str(r.data.path), train_split)
        if key not in self._splits:
            splits = load_splits(r.spec, r.data, train_split)
            if train_split not in splits:
                raise UsageError(f"train_split={train_split}: {r.spec.name} from {r.data.kind} has splits {', '.join(splits)}")
            self._splits[key] = (splits, {name: content_hash(examples) for name, examples in splits.items()})
        return self._splits[key]

    def model(self, r: ResolvedRun) -> Any:
        """A fresh copy of the base model for this run: a tiny preset's weights and a pretrained one's new head
        drawn from the run's seed (a copy reused across seeds gets its head drawn again: `seed_new_weights`)."""
        key = (r.source.name, str(r.source.local_dir), r.hf_config.to_json_string(), r.seed if r.source.is_tiny else None)
        if self._model is None or self._model[0] != key:
            self._model = None  # free the previous one first
            self._model = (key, build_model(r.source, r.spec.kind, config=r.hf_config, seed=r.seed))
        model = copy.deepcopy(self._model[1])
        seed_new_weights(model, r.seed)
        return model


def prepare(
    resolved: ResolvedRun,
    store: Store,
    canonical: bool = False,
    *,
    cache: LoadCache | None = None,
    checkpoints: bool = False,
    keep_checkpoint: bool = False,
    resume: Path | None = None,
) -> Plan:
    """Check where records go, load model, tokenizer and data, and claim the record file.

    `resume`: the record of an interrupted run of the same experiment; with its checkpoint, the run
    continues in that record from where it stopped (without one, it starts over in it).
    """
    state = PartialState(cpu=not torch.cuda.is_available())  # the first init decides: CPU processes use gloo
    main, processes = state.is_main_process, launched_processes(state)
    if main:
        store.check_writable()  # before minutes of model loading
    set_seed(resolved.seed)  # before anything is built: no draw of a run comes from the unseeded generator
    cache = cache or LoadCache()
    tokenizer = cache.tokenizer(resolved)
    model = cache.model(resolved)
    splits, hashes = cache.splits(resolved)
    key = comparability_key(resolved.config.to_dict(), resolved.spec_hashes, hashes, processes)
    previous = saved = None
    if resume is not None:
        previous = read_record(resume)
        run_id, path = previous["run_id"], resume if main else None
        saved = checkpoint.load(store.checkpoint_path(run_id))
    else:
        run_id, path = claim_record(store, resolved, key[0], canonical, main)
    ckpt = store.checkpoint_path(run_id) if checkpoints and main else None
    return Plan(resolved, splits, model, tokenizer, run_id, path, hashes, key, ckpt, keep_checkpoint, saved, previous)


def launched_processes(state: PartialState) -> int:
    """The number of training processes; a launch that asked for several CPU processes and started one is refused.

    `accelerate launch --cpu --num_processes N` starts a single process (accelerate's multi-CPU launch
    goes through mpirun) and only leaves the rendezvous port behind: training on as one process would
    quietly halve the batch the user asked for.
    """
    asked_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    if state.num_processes == 1 and asked_cpu and os.environ.get("MASTER_PORT"):
        raise UsageError(
            "`accelerate launch --cpu --num_processes N` started one process, not N (accelerate launches several CPU "
            "processes only through mpirun); use `accelerate launch --multi_gpu --num_processes N -m peftbench run ...` "
            "(CPU processes with gloo where no GPU is present) or `torchrun --nproc_per_node N -m peftbench run ...`"
        )
    return state.num_processes


def run_id_for(resolved: ResolvedRun, key: str) -> str:
    cfg = resolved.config
    parts = (id_part(cfg.method), id_part(cfg.task), id_part(cfg.model))
    return f"{utc_now():%Y%m%dT%H%M%SZ}-{'-'.join(parts)}-{key[:8]}-{secrets.token_hex(3)}"


def claim_record(store: Store, resolved: ResolvedRun, key: str, canonical: bool, main: bool) -> tuple[str, Path | None]:
    while True:
        run_id = run_id_for(resolved, key)
        try:
            return run_id, (store.claim("run", run_id, canonical) if main else None)
        except FileExistsError:
            continue


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
        write_record(self.path, self.record)


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


@dataclass
class Loop:
    """The pieces of one training loop, set up once."""

    accelerator: Accelerator
    adapted: Adapted
    pipeline: Pipeline
    loader: Any
    optimizer: Any
    scheduler: Any
    total_steps: int
    epochs: int
    callbacks: list[Callback]
    generator: torch.Generator  # the loader's shuffling generator (its state at an epoch's start is checkpointed)


def setup(plan: Plan, record: dict[str, Any], callbacks: Sequence[Callback], times: dict[str, float]) -> Loop:
    cfg, train = plan.config, plan.config.training
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    record["env"] = environment(accelerator.device, processes=accelerator.num_processes)
    # again, right before the first draw that training depends on: method initialisation, then dropout (the model's
    # random weights come from their own seeded stream), whatever loading drew or a cache saved before
    set_seed(train.seed)
    with measure.Phase(times, "setup"):
        adapted = METHODS.get(cfg.method).apply(plan.model, cfg.hyperparameters)
        pipeline = make_pipeline(plan.resolved.spec, plan.tokenizer, train, cfg.generation)
        pipeline.accelerator = accelerator
        features = pipeline.encode(plan.splits[train.train_split][: train.max_train_examples or None])
    record["params"] = {**adapted.param_counts(), "formula": adapted.formula_count()}
    generator = torch.Generator().manual_seed(train.seed)
    loader = DataLoader(features, batch_size=train.batch_size, shuffle=True, collate_fn=pipeline.collate, generator=generator)
    optimizer = torch.optim.AdamW(adapted.trainable_parameters().values(), lr=train.lr, weight_decay=train.weight_decay)
    prepared_model, prepared_optimizer, loader = accelerator.prepare(adapted.model, optimizer, loader)
    adapted.forward_module = prepared_model
    total_steps = train.max_steps or train.epochs * len(loader)  # len() after prepare: this process's shard
    warmup = train.warmup_steps or int(train.warmup_ratio * total_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)  # stepped once per optimizer step
    epochs = math.ceil(total_steps / len(loader))
    record["measurements"]["schedule"] = {"total_steps": total_steps, "warmup_steps": warmup, "epochs": epochs}
    hooks = [*adapted.callbacks(), *callbacks]
    return Loop(accelerator, adapted, pipeline, loader, prepared_optimizer, scheduler, total_steps, epochs, hooks, generator)


@dataclass
class Position:
    """Where the loop is: what a checkpoint must restore to continue exactly."""

    epoch: int = 1
    batches_done: int = 0  # in this epoch
    losses: list[float] = field(default_factory=list)  # this epoch's, so far
    epoch_generator: Any = None  # the loader generator's state when this epoch began


def save_checkpoint(plan: Plan, loop: Loop, state: TrainState, pos: Position, epochs_done: int) -> None:
    if plan.checkpoint_path is None:
        return
    checkpoint.save(
        plan.checkpoint_path,
        {
            "step": state.step,
            "epoch": pos.epoch,
            "epochs_done": epochs_done,
            "batches_done": pos.batches_done,
            "losses": pos.losses,
            "epoch_generator": pos.epoch_generator,
            "adapter_state": loop.adapted.adapter_state_dict(),
            "optimizer": loop.optimizer.state_dict(),
            "scheduler": loop.scheduler.state_dict(),
            "rng": checkpoint.rng_states(),
        },
    )


def restore(plan: Plan, loop: Loop, state: TrainState) -> Position:
    """Continue from the plan's checkpoint: the trained tensors, optimizer, scheduler, generators and position."""
    saved = plan.resume
    if saved is None:
        return Position()
    loop.adapted.load_adapter_state_dict(saved["adapter_state"])
    loop.optimizer.load_state_dict(saved["optimizer"])
    loop.scheduler.load_state_dict(saved["scheduler"])
    state.step = saved["step"]
    if saved["batches_done"] == 0:  # saved at an epoch's end: the next epoch starts afresh
        checkpoint.restore_rng_states(saved["rng"])
        return Position(epoch=saved["epochs_done"] + 1)
    pos = Position(saved["epoch"], saved["batches_done"], list(saved["losses"]), saved["epoch_generator"])
    checkpoint.restore_rng_states(saved["rng"])
    return pos


def epoch_batches(loop: Loop, pos: Position) -> Any:
    """This epoch's batches in their shuffled order, the ones a resumed run already did skipped."""
    if pos.epoch_generator is None:
        pos.epoch_generator = loop.generator.get_state()
        return iter(loop.loader)
    rng = checkpoint.rng_states()
    loop.generator.set_state(pos.epoch_generator)
    batches = iter(loop.loader)
    for _ in range(pos.batches_done):
        next(batches)
    checkpoint.restore_rng_states(rng)  # skipping ran no model: dropout continues where it stopped
    return batches


def train_and_evaluate(plan: Plan, keeper: RecordKeeper, callbacks: Sequence[Callback]) -> None:
    record = keeper.record
    times: dict[str, float] = {}
    loop = setup(plan, record, callbacks, times)
    device, adapted = loop.accelerator.device, loop.adapted
    timer = measure.StepTimer(reference=measure.ReferenceStep(device))
    peaks: dict[str, dict[str, int]] = {}
    eval_counter = measure.ForwardCounter(device)
    state = TrainState(0, 0, loop.total_steps, adapted, loop.optimizer, loop.scheduler, loop.accelerator, record)
    pos = restore(plan, loop, state)
    cfg = plan.config
    progress = tqdm(
        total=loop.total_steps,
        initial=state.step,
        desc=f"{cfg.method}/{cfg.task}/{cfg.model}",
        unit="step",
        mininterval=1.0,
        disable=not loop.accelerator.is_main_process,
        leave=False,
    )
    with polling_for_stop(), progress:  # the bar is closed on every way out, before the closing line
        while pos.epoch <= loop.epochs and state.step < loop.total_steps:
            state.epoch = pos.epoch
            adapted.model.train()
            try:
                with measure.Phase(times, "train", device, peaks):
                    for batch in epoch_batches(loop, pos):
                        start = time.perf_counter()
                        loss = training_step(loop, batch, plan.config.training.grad_clip)
                        measure.synchronize(device)
                        timer.add(time.perf_counter() - start, int(batch["attention_mask"].sum()), len(batch["input_ids"]))
                        state.step += 1
                        pos.batches_done += 1
                        if not math.isfinite(loss):
                            raise NonFiniteLoss(f"training loss is {loss} at step {state.step} (epoch {pos.epoch})")
                        pos.losses.append(loss)
                        state.loss = loss
                        for hook in loop.callbacks:
                            hook.on_step_end(state)
                        progress.update(1)
                        progress.set_postfix(loss=f"{loss:.4f}", refresh=False)
                        if STOP.requested:
                            raise KeyboardInterrupt
                        if state.step >= loop.total_steps:
                            break
            except KeyboardInterrupt:
                save_checkpoint(plan, loop, state, pos, pos.epoch - 1)
                raise
            entry = {"epoch": pos.epoch, "step": state.step, "train_loss": sum(pos.losses) / max(len(pos.losses), 1), "metrics": {}}
            if loop.pipeline.evaluate_every_epoch or state.step >= loop.total_steps:
                entry["metrics"] = evaluate(loop, plan.splits, times, peaks, eval_counter)
            record["epochs"].append(entry)
            update_scores(record)
            record["measurements"].update(run_measurements(adapted, timer, times, device, peaks, eval_counter))
            for hook in loop.callbacks:
                hook.on_epoch_end(state, entry)
            pos = Position(epoch=pos.epoch + 1)
            save_checkpoint(plan, loop, state, pos, pos.epoch - 1)
            keeper.write()
            if STOP.requested:
                raise KeyboardInterrupt
    if plan.checkpoint_path is not None and not plan.keep_checkpoint:
        plan.checkpoint_path.unlink(missing_ok=True)


def training_step(loop: Loop, batch: dict[str, torch.Tensor], grad_clip: float) -> float:
    labels = batch.pop("labels")
    logits = loop.adapted(**batch).logits
    loss = loop.pipeline.loss(logits, labels)
    loop.accelerator.backward(loss)
    if grad_clip:
        loop.accelerator.clip_grad_norm_(list(loop.adapted.trainable_parameters().values()), grad_clip)
    loop.optimizer.step()
    loop.scheduler.step()
    loop.optimizer.zero_grad(set_to_none=True)
    return float(loop.accelerator.reduce(loss.detach(), reduction="mean"))  # the global batch's loss on every process


def evaluate(
    loop: Loop,
    splits: dict[str, list[Any]],
    times: dict[str, float],
    peaks: dict[str, dict[str, int]],
    counter: measure.ForwardCounter,
) -> dict[str, dict[str, Any]]:
    adapted, device = loop.adapted, loop.accelerator.device
    adapted.model.eval()
    with measure.Phase(times, "eval", device, peaks), counter.attach(adapted.model):
        scores = loop.pipeline.evaluate(adapted, splits, device)
    return with_directions(scores)


def run_measurements(
    adapted: Adapted,
    timer: measure.StepTimer,
    times: dict[str, float],
    device: torch.device,
    peaks: dict[str, dict[str, int]],
    eval_counter: measure.ForwardCounter,
) -> dict[str, Any]:
    trainable = adapted.trainable_parameters()
    return {
        "train_throughput": timer.summary(),
        "eval_throughput": eval_counter.summary(),
        "wall_time_s": dict(times),
        # the highest of the train and eval phases' peaks (each phase resets the high-water mark at its start)
        "peak_rss_bytes": max((p.get("peak_rss_bytes", 0) for p in peaks.values()), default=0) or measure.peak_rss_bytes(),
        **{k: max(p.get(k, 0) for p in peaks.values()) for k in measure.cuda_peaks(device)},
        "peak_memory_by_phase": peaks,
        "memory_breakdown_bytes": measure.memory_breakdown(adapted.model, trainable),
        "checkpoint_bytes": measure.checkpoint_bytes(trainable),
    }
