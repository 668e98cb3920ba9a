"""One run: resolve, load, adapt, train, evaluate, measure, record.

`prepare` does everything that can fail because of the user's input (names, `--set`, data,
downloads) before a record exists: such errors exit 2 and leave nothing behind. `execute`
then trains with the record on disk from the first step, rewritten at every epoch, and ends
it as finished, failed (with the error) or interrupted.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from peftbench import measure
from peftbench.config import RunConfig, resolve_run_config
from peftbench.env import environment
from peftbench.methods import METHODS, Adapted
from peftbench.models import ModelSource, base_config, build_model, load_tokenizer, resolve_model
from peftbench.store import SCHEMA_VERSION, record_path, write_record
from peftbench.tasks.base import DataSource, TaskSpec, content_hash, data_source, load_splits, task_specs
from peftbench.tasks.metrics import METRIC_DIRECTIONS
from peftbench.tasks.pipeline import Pipeline, make_pipeline


class StopRequest:
    """Set by the CLI's SIGINT/SIGTERM handler; the training loop polls it after every step."""

    requested = False
    polling = False


STOP = StopRequest()


@contextlib.contextmanager
def polling_for_stop() -> Iterator[None]:
    STOP.polling = True
    try:
        yield
    finally:
        STOP.polling = False


class RunInterrupted(Exception):
    """Ctrl-C (or SIGTERM) during a run; its record says `interrupted`."""


class RunFailed(Exception):
    """A run that started and failed; its record says `failed` with the error."""

    exit_code = 1


@dataclass
class Plan:
    """Everything a run needs, checked and loaded, before any record is written."""

    config: RunConfig
    spec: TaskSpec
    source: ModelSource
    data: DataSource
    splits: dict[str, list[Any]]
    model: Any
    tokenizer: Any
    record_path: Path
    run_id: str


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def run_id_for(config: RunConfig, when: datetime) -> str:
    model = config.model.replace("/", "_")
    return f"{when:%Y%m%dT%H%M%SZ}-{config.method}-{config.task}-{model}-{config.config_hash()[:8]}"


def prepare(
    method: str,
    task: str,
    model: str | None,
    *,
    preset: str | None,
    overrides: list[str],
    data_dir: str | None,
    results: Path,
    canonical: bool,
) -> Plan:
    spec = task_specs().get(task)
    source = resolve_model(model or spec.default_model)
    data = data_source(spec, data_dir, source.is_tiny)
    config = resolve_run_config(method, task, model or spec.default_model, preset=preset, overrides=overrides, data=data.kind)
    train = config.training
    set_seed(train.seed)
    model_type = base_config(source).model_type
    tokenizer = load_tokenizer(source, model_type)
    model = build_model(source, spec.kind, spec.num_labels, seed=train.seed, cls_dropout=train.cls_dropout)
    splits = load_splits(spec, data)
    run_id = run_id_for(config, utc_now())
    return Plan(config, spec, source, data, splits, model, tokenizer, record_path(results, run_id, canonical), run_id)


def new_record(plan: Plan) -> dict[str, Any]:
    train = plan.config.training
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": plan.run_id,
        "status": "running",
        "error": None,
        "created_at": utc_now().isoformat(),
        "finished_at": None,
        "config": plan.config.to_dict(),
        "config_hash": plan.config.config_hash(),
        "model_origin": plan.source.origin,
        "data": {
            "source": plan.data.describe(plan.spec),
            "splits": {name: {"examples": len(ex), "sha256": content_hash(ex)} for name, ex in plan.splits.items()},
            "max_train_examples": train.max_train_examples or None,
        },
        "env": None,
        "params": None,
        "main_metric": plan.spec.main_metric,
        "metrics": {},
        "metrics_last": {},
        "best_epoch": None,
        "epochs": [],
        "measurements": {},
    }


def metric_direction(name: str) -> bool:
    """higher_is_better of a metric or of a suffixed variant of one (`ter_unseen`, `accuracy_matched`)."""
    bases = [m for m in METRIC_DIRECTIONS if name == m or name.startswith(m + "_")]
    if not bases:
        raise KeyError(f"no direction known for metric {name!r}")
    return METRIC_DIRECTIONS[max(bases, key=len)]


def with_directions(scores: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each score with its direction; NaN (e.g. Pearson of a constant prediction) is stored as null."""
    return {
        name: {"value": None if math.isnan(value) else value, "higher_is_better": metric_direction(name)} for name, value in scores.items()
    }


def best_epoch(scored: list[dict[str, Any]], main: str) -> dict[str, Any]:
    """The epoch with the best main metric (its first split for MNLI); a missing (NaN) score never wins."""
    key = next((k for k in scored[-1]["metrics"] if k == main or k.startswith(main + "_")), None)
    if key is None:
        return scored[-1]
    sign = 1 if scored[-1]["metrics"][key]["higher_is_better"] else -1

    def score(epoch: dict[str, Any]) -> float:
        value = epoch["metrics"][key]["value"]
        return float("-inf") if value is None else sign * value

    return max(scored, key=score)


def execute(plan: Plan, on_update: Any = None) -> dict[str, Any]:
    """Train and evaluate with the record kept current on disk; returns the final record."""
    record = new_record(plan)
    write_record(plan.record_path, record)
    try:
        train_and_evaluate(plan, record, on_update)
        record["status"] = "finished"
    except KeyboardInterrupt:
        record["status"] = "interrupted"
        record["error"] = "interrupted by the user (SIGINT/SIGTERM)"
        raise RunInterrupted(plan.record_path) from None
    except Exception as exc:
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
        raise RunFailed(f"run failed: {type(exc).__name__}: {exc}\nrecord: {plan.record_path}") from exc
    finally:
        record["finished_at"] = utc_now().isoformat()
        write_record(plan.record_path, record)
    return record


def train_and_evaluate(plan: Plan, record: dict[str, Any], on_update: Any) -> None:
    cfg = plan.config
    train = cfg.training
    times: dict[str, float] = {}
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    device = accelerator.device
    set_seed(train.seed)
    record["env"] = environment(device)

    with measure.Phase(times, "setup"):
        model = plan.model
        adapted = METHODS.get(cfg.method).apply(model, cfg.hyperparameters)
        pipeline = make_pipeline(plan.spec, plan.tokenizer, train, cfg.generation)
        examples = plan.splits["train"][: train.max_train_examples or None]
        features = pipeline.encode(examples)
    record["params"] = {**adapted.param_counts(), "formula": adapted.formula_count()}

    generator = torch.Generator().manual_seed(train.seed)
    loader = DataLoader(features, batch_size=train.batch_size, shuffle=True, collate_fn=pipeline.collate, generator=generator)
    total_steps = train.max_steps or train.epochs * len(loader)
    epochs = math.ceil(total_steps / len(loader))
    trainable = adapted.trainable_parameters()
    optimizer = torch.optim.AdamW(trainable.values(), lr=train.lr, weight_decay=train.weight_decay)
    warmup = train.warmup_steps or int(train.warmup_ratio * total_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    record["measurements"]["schedule"] = {"total_steps": total_steps, "warmup_steps": warmup, "epochs": epochs}

    timer = measure.StepTimer()
    peaks: dict[str, dict[str, int]] = {}
    eval_counter = measure.ForwardCounter(device)
    step = 0
    progress = tqdm(total=total_steps, desc=f"{cfg.method}/{cfg.task}/{cfg.model}", unit="step", mininterval=1.0)
    with polling_for_stop():
        for epoch in range(1, epochs + 1):
            model.train()
            losses = []
            with measure.Phase(times, "train", device, peaks):
                for batch in loader:
                    start = time.perf_counter()
                    loss = training_step(adapted, pipeline, batch, optimizer, scheduler, accelerator, train.grad_clip)
                    measure.synchronize(device)
                    timer.add(time.perf_counter() - start, int(batch["attention_mask"].sum()), len(batch["input_ids"]))
                    losses.append(loss)
                    step += 1
                    progress.update(1)
                    progress.set_postfix(loss=f"{loss:.4f}", refresh=False)
                    if STOP.requested:
                        raise KeyboardInterrupt
                    if step >= total_steps:
                        break
            entry = {"epoch": epoch, "step": step, "train_loss": sum(losses) / max(len(losses), 1), "metrics": {}}
            if pipeline.evaluate_every_epoch or step >= total_steps:
                entry["metrics"] = evaluate(adapted, pipeline, plan.splits, device, times, peaks, eval_counter)
            record["epochs"].append(entry)
            if STOP.requested:
                raise KeyboardInterrupt
            update_scores(record, plan.spec.main_metric)
            record["measurements"].update(run_measurements(adapted, timer, times, device, peaks, eval_counter))
            write_record(plan.record_path, record)
            if on_update:
                on_update(entry)
            if step >= total_steps:
                break
    progress.close()


def training_step(
    adapted: Adapted,
    pipeline: Pipeline,
    batch: dict[str, torch.Tensor],
    optimizer: Any,
    scheduler: Any,
    accelerator: Accelerator,
    grad_clip: float,
) -> float:
    labels = batch.pop("labels")
    logits = adapted(**batch).logits
    loss = pipeline.loss(logits, labels)
    accelerator.backward(loss)
    if grad_clip:
        accelerator.clip_grad_norm_(list(adapted.trainable_parameters().values()), grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def evaluate(
    adapted: Adapted,
    pipeline: Pipeline,
    splits: dict[str, list[Any]],
    device: torch.device,
    times: dict[str, float],
    peaks: dict[str, dict[str, int]],
    counter: measure.ForwardCounter,
) -> dict[str, dict[str, Any]]:
    adapted.model.eval()
    with measure.Phase(times, "eval", device, peaks), counter.attach(adapted.model):
        scores = pipeline.evaluate(adapted, splits, device)
    return with_directions(scores)


def update_scores(record: dict[str, Any], main: str) -> None:
    """GLUE reports the best epoch's dev metrics (as the paper does) beside the last epoch's."""
    scored = [e for e in record["epochs"] if e["metrics"]]
    if not scored:
        return
    best = best_epoch(scored, main)
    record["metrics"], record["best_epoch"] = best["metrics"], best["epoch"]
    record["metrics_last"] = scored[-1]["metrics"]


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
        "peak_rss_bytes": measure.peak_rss_bytes(),
        **{k: max(p.get(k, 0) for p in peaks.values()) for k in measure.cuda_peaks(device)},
        "peak_memory_by_phase": peaks,
        "memory_breakdown_bytes": measure.memory_breakdown(adapted.model, trainable),
        "checkpoint_bytes": measure.checkpoint_bytes(adapted.adapter_state_dict()),
    }
