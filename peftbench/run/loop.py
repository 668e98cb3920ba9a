"""The training loop: optimizer and schedule, epochs of steps, evaluation, checkpoints and measurements.

Every `Callback` (the method's own, via `Adapted.callbacks()`, then the caller's) sees `on_step_end` after
each optimizer step and `on_epoch_end` after each epoch's evaluation. The loop never names a method.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from peftbench.bench import measure
from peftbench.methods import METHODS, Adapted
from peftbench.records.env import environment
from peftbench.records.schema import MetricValue, update_scores, with_directions
from peftbench.run import checkpoint
from peftbench.run.hooks import Callback, TrainState
from peftbench.run.keeper import RecordKeeper
from peftbench.run.kept import keep
from peftbench.run.plan import Plan
from peftbench.run.stop import STOP, polling_for_stop
from peftbench.tasks.kinds import make_pipeline
from peftbench.tasks.pipeline import Pipeline


class NonFiniteLoss(ArithmeticError):
    """The training loss became NaN or infinite: continuing would only produce garbage."""


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
    dataset: Any = features  # a list is a map-style dataset (torch's stubs ask for a Dataset)
    loader: DataLoader[Any] = DataLoader(
        dataset, batch_size=train.batch_size, shuffle=True, collate_fn=pipeline.collate, generator=generator
    )
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


@dataclass
class Meters:
    """What a run measures as it goes: step times, each phase's wall time and memory peaks, the eval forwards."""

    device: torch.device
    times: dict[str, float]
    peaks: dict[str, dict[str, int]] = field(default_factory=dict)
    timer: measure.StepTimer = field(init=False)
    eval_counter: measure.ForwardCounter = field(init=False)

    def __post_init__(self) -> None:
        # each step is timed beside a fixed reference step: `relative_step`, the speed figure load cannot fake
        self.timer = measure.StepTimer(reference=measure.ReferenceStep(self.device))
        self.eval_counter = measure.ForwardCounter(self.device)


def train_and_evaluate(plan: Plan, keeper: RecordKeeper, callbacks: Sequence[Callback]) -> None:
    times: dict[str, float] = {}
    loop = setup(plan, keeper.record, callbacks, times)
    meters = Meters(loop.accelerator.device, times)
    state = TrainState(0, 0, loop.total_steps, loop.adapted, loop.optimizer, loop.scheduler, loop.accelerator, keeper.record)
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
            loop.adapted.model.train()
            train_epoch(plan, loop, state, pos, meters, progress)
            pos = end_epoch(plan, loop, state, pos, keeper, meters)
            if STOP.requested:
                raise KeyboardInterrupt
    if plan.adapters_path is not None:
        keep(plan.adapters_path, loop.adapted, keeper.record)
    if plan.checkpoint_path is not None and not plan.keep_checkpoint:
        plan.checkpoint_path.unlink(missing_ok=True)


def train_epoch(plan: Plan, loop: Loop, state: TrainState, pos: Position, meters: Meters, progress: Any) -> None:
    """One epoch's steps (those left of it after a resume), up to the step budget; an interrupt saves a checkpoint first."""
    device = meters.device
    try:
        with measure.Phase(meters.times, "train", device, meters.peaks):
            for batch in epoch_batches(loop, pos):
                start = time.perf_counter()
                loss = training_step(loop, batch, plan.config.training.grad_clip)
                measure.synchronize(device)
                meters.timer.add(time.perf_counter() - start, int(batch["attention_mask"].sum()), len(batch["input_ids"]))
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


def end_epoch(plan: Plan, loop: Loop, state: TrainState, pos: Position, keeper: RecordKeeper, meters: Meters) -> Position:
    """Score the epoch (every epoch, or the last for generation), record it with the measurements so far, checkpoint,
    and write the record: a run stopped later loses nothing of this epoch. Returns the next epoch's position."""
    record = keeper.record
    entry = {"epoch": pos.epoch, "step": state.step, "train_loss": sum(pos.losses) / max(len(pos.losses), 1), "metrics": {}}
    if loop.pipeline.evaluate_every_epoch or state.step >= loop.total_steps:
        entry["metrics"] = evaluate(loop, plan.splits, meters.times, meters.peaks, meters.eval_counter)
    record["epochs"].append(entry)
    update_scores(record)
    record["measurements"].update(
        run_measurements(loop.adapted, meters.timer, meters.times, meters.device, meters.peaks, meters.eval_counter)
    )
    for hook in loop.callbacks:
        hook.on_epoch_end(state, entry)
    pos = Position(epoch=pos.epoch + 1)
    save_checkpoint(plan, loop, state, pos, pos.epoch - 1)
    keeper.write()
    return pos


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
) -> dict[str, MetricValue]:
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
