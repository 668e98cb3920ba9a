"""A run's plan: the resolved run with its model, tokenizer and data loaded and its record file claimed.

`prepare` checks the results directory, seeds once, and loads what the run needs (`LoadCache` keeps a
sweep's loaded models and data for the next cell); nothing here trains.
"""

from __future__ import annotations

import copy
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import set_seed

from peftbench.config.resolve import ResolvedRun
from peftbench.errors import UsageError
from peftbench.models.build import build_model, load_tokenizer, seed_new_weights
from peftbench.records.schema import comparability_key, id_part, utc_now
from peftbench.records.store import Store, read_record
from peftbench.run import checkpoint
from peftbench.run.kept import keeping
from peftbench.tasks.base import content_hash, load_splits


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
    adapters_path: Path | None = None  # where a finished run keeps its trained tensors (None: not kept; run/kept.py)

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
    kept = store.adapters_path(run_id) if main and path is not None and keeping() else None
    return Plan(resolved, splits, model, tokenizer, run_id, path, hashes, key, ckpt, keep_checkpoint, saved, previous, kept)


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
