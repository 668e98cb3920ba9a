"""The run record: one typed schema for every kind of result peftbench writes, and its rules.

A record is a JSON object (one file per run or measurement), so records from many machines merge
by copying files. This module is the one place that says what a record holds (`RunRecord` and
`MeasurementRecord` below, a comment per field), how old records are brought up to date
(`migrate`), how runs are grouped for comparison (`comparability_key`), how a run is scored
(`with_directions`, `best_epoch`, `update_scores`) and whether a `running` record is alive
(`effective_status`). The runner, the store, `show`, `runs`, reports and checks all read it.
"""

from __future__ import annotations

import math
import os
import re
import socket
from datetime import datetime, timezone
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypedDict, Union, get_args, get_origin, get_type_hints, is_typeddict

from peftbench.errors import UsageError
from peftbench.specs import stable_hash as stable_hash  # re-exported: records hash configurations with it
from peftbench.tasks.metrics import metric_for

SCHEMA_VERSION = 2
KINDS = ("run", "latency", "profile")
STALE = "stale"  # never stored: a `running` record whose process is gone (see `effective_status`)
STALE_AFTER_S = 2 * 3600  # another host's `running` record with no heartbeat for this long is stale
SILENT_AFTER_S = 600  # this host's: its heartbeat comes every 30 s, so 10 silent minutes mean it is gone (pid reused)


Scalar = int | float | str | bool | None


class MetricValue(TypedDict):
    value: float | None  # raw, as computed (BLEU 0-100, accuracy 0-1); null for NaN (e.g. Pearson of a constant)
    higher_is_better: bool  # from the metric registry, stored so a record reads alone


class EpochEntry(TypedDict):
    epoch: int
    step: int  # optimizer steps done at the end of this epoch
    train_loss: float  # mean training loss over the epoch's steps
    metrics: dict[str, MetricValue]  # empty where the pipeline evaluates only at the end (generation)


class RunConfig(TypedDict, total=False):
    """The resolved configuration as `ResolvedRun.config.to_dict()` writes it."""

    method: str
    task: str
    model: str
    data: str | None  # where the data came from: hub, package, sample, or a folder
    preset: str | None  # the preset's label (its values are in the sections)
    hyperparameters: dict[str, Any]  # the method's section
    training: dict[str, Scalar]  # lr, batch_size, epochs, max_steps, seed, ...
    generation: dict[str, Scalar] | None  # decoding settings (generation tasks)


class KeptAdapters(TypedDict, total=False):
    """The trained tensors a finished run kept (`run/kept.py`), so analyses of the update never retrain."""

    file: str  # relative to the results folder: adapters/<run_id>.safetensors
    bytes: int
    tensors: int


class Measurements(TypedDict, total=False):
    """What `runner.run_measurements` writes (see README, Measurements); read by runs, reports and checks."""

    schedule: dict[str, int]
    train_throughput: Throughput
    eval_throughput: dict[str, Scalar]
    wall_time_s: dict[str, float]  # seconds per phase: setup, train, eval
    peak_rss_bytes: int
    peak_memory_by_phase: dict[str, dict[str, int]]
    memory_breakdown_bytes: dict[str, int]
    checkpoint_bytes: int
    adapters: KeptAdapters  # absent: not kept (--no-keep-adapters, a run that did not finish, or the whole model trained)


class Params(TypedDict, total=False):
    method: int  # the paper's convention: the method's own parameters, task head excluded
    head: int
    trainable: int
    total: int
    base_total: int
    formula: int | None  # the paper's formula for the method, where it has one


class Throughput(TypedDict, total=False):
    steps_measured: int
    warmup_steps_excluded: int
    tokens_per_s: float
    samples_per_s: float
    seconds_per_step: float
    step_seconds: dict[str, float]  # n, median, q1, q3, iqr
    reference_seconds: dict[str, float]  # the fixed reference step timed after training steps (bench.measure.ReferenceStep)
    relative_step: dict[str, float]  # each step's time over the reference's beside it: the load-proof speed figure


class Env(TypedDict, total=False):
    """Where a record was made (`env.environment`): versions, device, threads, dtype, git state, processes."""

    peftbench: str
    python: str
    torch: str
    transformers: str
    accelerate: str
    platform: str
    device: str
    device_name: str | None
    threads: int
    cpu: str | None  # the CPU's model name: part of the machine fingerprint of exact mode (`peftbench check`)
    cpu_capability: str  # the kernel set torch picked (e.g. AVX2, AVX512): different sets round differently
    dtype: str
    commit: str | None
    dirty: bool | None
    processes: int
    deterministic: bool  # a rerun with the same versions, machine and configuration computes the same numbers
    determinism: str  # why (or why not)


class Resumed(TypedDict, total=False):
    at: str  # when the run was continued
    from_step: int  # the checkpoint's step (0: started over)
    note: str


class RunRecord(TypedDict, total=False):
    """`kind: run`: one `peftbench run` (train + evaluate + measure). Required on read: REQUIRED["run"]."""

    schema_version: int  # SCHEMA_VERSION when written; older records are migrated on read
    kind: Literal["run"]
    run_id: str  # <UTC time>-<method>-<task>-<model>-<key[:8]>-<random>: unique, also for identical runs started together
    status: str  # running, finished, failed or interrupted (stale is derived, never stored)
    error: str | None  # the reason when failed or interrupted
    traceback: str  # the Python traceback of a failed run
    resumed: list[Resumed]  # each time an interrupted run was continued in this record
    created_at: str  # ISO 8601, UTC
    finished_at: str | None
    host: str | None  # where it ran (liveness and provenance)
    pid: int | None  # the process that wrote it (a running record whose pid is gone on this host is stale)
    heartbeat_at: str | None  # last time the run showed life; the file's mtime is touched in between
    seed: int | None  # the training seed: NOT part of the key, so the seeds of one configuration group together
    key: str  # comparability key (see `comparability_key`): equal keys = the same experiment
    key_parts: dict[str, Any]  # what the key hashes, part by part, so a comparison can say which part differs
    config: RunConfig  # the whole resolved configuration (method, task, model, data, preset, sections)
    config_hash: str  # sha256 of `config` including seed and preset label (identity, not comparability)
    model_origin: str  # hub id, local path, or "random init from config"
    data: dict[str, Any] | None  # source, per-split example counts and content hashes, max_train_examples
    env: Env | None  # versions, device, threads, dtype, peftbench version, git commit + dirty
    params: Params | None  # method (paper convention), head, trainable, total, base_total, formula
    main_metric: str  # the task's headline metric (its base name; MNLI's lives under suffixes)
    metrics: dict[str, MetricValue]  # the best epoch's scores (the paper's GLUE convention); final for generation
    metrics_last: dict[str, MetricValue]  # the last epoch's scores
    best_epoch: int | None
    epochs: list[EpochEntry]
    measurements: Measurements  # throughput, wall times, peak memory (by phase), memory breakdown, checkpoint bytes
    hooks: dict[str, Any]  # what step/epoch callbacks report (e.g. ReLoRA restarts); empty for most methods


class MeasurementRecord(TypedDict, total=False):
    """`kind: latency` or `kind: profile`: a measurement without training a task."""

    schema_version: int
    kind: Literal["latency", "profile"]
    run_id: str  # <UTC time>-<kind>-<model>-<key[:8]>-<random>
    status: str  # finished (measurements are written once, complete)
    created_at: str
    host: str | None
    pid: int | None
    heartbeat_at: str | None
    seed: int | None  # seed of the random weights and inputs
    key: str  # hash of the settings that decide the numbers (model, methods, hyperparameters, grid, dtype, device)
    key_parts: dict[str, Any]
    model: str
    model_origin: str
    model_class: str
    methods: list[str]
    env: Env
    settings: dict[str, Any]
    protocol: dict[str, Any]  # how the numbers were taken, in words, stored with them


class LatencyRecord(MeasurementRecord, total=False):
    """`kind: latency` (`peftbench latency`, peftbench/bench/latency.py): forward-pass times of methods vs the base."""

    note: str
    variants: list[dict[str, Any]]  # base, A/A control and each method: role, params, hyperparameters, merged
    output_max_abs_diff_vs_base: dict[str, float]
    cells: list[dict[str, Any]]  # per (batch, seq): rounds, orders, per-variant times, paired ratios and verdicts


class ProfileRecord(MeasurementRecord, total=False):
    """`kind: profile` (`peftbench profile`, peftbench/bench/profile.py): paired step times and peak memory."""

    hyperparameters: dict[str, dict[str, Any]]
    timing: dict[str, Any]  # rounds, warm-up, orders, errors
    forward: dict[str, Any]  # the forward pass alone, for scale
    rows: list[dict[str, Any]]  # per variant: step times, paired ratios, memory, parameters


SCHEMAS: dict[str, type] = {"run": RunRecord, "latency": LatencyRecord, "profile": ProfileRecord}
REQUIRED = {kind: ("kind", "run_id", "status") for kind in KINDS}  # readers take every other field with .get
STATUSES = ("running", "finished", "failed", "interrupted")
# Fields a nested object must hold when present (a run's config names what ran: every grouping keys on these).
REQUIRED_FIELDS: dict[type, tuple[str, ...]] = {RunConfig: ("method", "task", "model")}


# A record, checkpoint, study or baseline id is one plain file-name component: no separator, no `..`, no
# glob or control character, not hidden. Ids are read from records that may come from another machine,
# and the store builds paths from them, so an id is checked wherever one is read or used.
ID_PATTERN = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,199}")


def valid_id(text: Any) -> bool:
    return isinstance(text, str) and ID_PATTERN.fullmatch(text) is not None and ".." not in text


def check_id(text: Any) -> str:
    if not valid_id(text):
        raise UsageError(f"{str(text)[:80]!r} is not a valid id (letters, digits, '_', '+', '-' and single dots only)")
    return text


def id_part(text: str) -> str:
    """A free-form name (a model folder, a hub id) as a piece of an id: every other character becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_+-]", "_", text)[:60] or "_"


def schema_problem(record: Any, *, strict: bool = False) -> str | None:
    """What makes `record` (migrated) not a record of the typed schema, or None: the first wrong field, named.

    Every reader relies on this: a record that passes has the declared type in every field it holds (and
    the fields REQUIRED for its kind), so no command meets a list where a mapping belongs. Readers accept
    fields the schema does not declare (a newer peftbench may add some); writers are `strict`: every field
    they write is declared here (`check_written`).
    """
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    kind = record.get("kind")
    if not isinstance(kind, str) or kind not in SCHEMAS:
        return f"unknown kind {str(kind)[:40]!r}"
    missing = [name for name in REQUIRED[kind] if name not in record]
    if missing:
        return f"missing {', '.join(missing)}"
    if not valid_id(record["run_id"]):
        return f"run_id {str(record['run_id'])[:60]!r} is not a valid id"
    if not isinstance(record.get("status"), str) or record["status"] not in STATUSES:
        return f"unknown status {str(record.get('status'))[:40]!r}"
    return type_problem(record, SCHEMAS[kind], "", strict)


def check_written(record: dict[str, Any]) -> None:
    """A record about to be written follows its schema, every field declared: a failure is a peftbench bug."""
    problem = schema_problem(record, strict=True)
    if problem:
        raise ValueError(f"peftbench bug: a {record.get('kind')} record breaks its schema ({problem}); see peftbench/records/schema.py")


def type_problem(value: Any, hint: Any, where: str, strict: bool = False) -> str | None:
    """Whether `value` is of type `hint` (TypedDicts, dict/list/tuple, unions, Literal, Any and scalars)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return None
    if origin in (Union, UnionType):
        options = [a for a in args if a is not type(None)] if value is not None else list(args)
        if len(options) == 1:  # `X | None` holding a value: X's own problem, named where it is
            return type_problem(value, options[0], where, strict)
        ok = any(type_problem(value, a, where, strict) is None for a in options)
        return None if ok else f"{where or 'record'}: {_shape(value)} is not {_name(hint)}"
    if origin is Literal:
        return None if value in args else f"{where}: {str(value)[:40]!r} is not one of {args}"
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return f"{where or 'record'}: {_shape(value)} is not an object"
        missing = [name for name in REQUIRED_FIELDS.get(hint, ()) if name not in value]
        if missing:
            return f"{where or 'record'}: missing {', '.join(missing)}"
        fields = get_type_hints(hint)
        undeclared = [name for name in value if name not in fields] if strict else []
        if undeclared:
            return f"{where or 'record'}: undeclared field {undeclared[0]!r}"
        problems = (type_problem(v, fields[name], f"{where}.{name}".lstrip("."), strict) for name, v in value.items() if name in fields)
        return next((p for p in problems if p), None)
    if origin is dict:
        if not isinstance(value, dict):
            return f"{where}: {_shape(value)} is not an object"
        return next((p for k, v in value.items() for p in [type_problem(v, args[1], f"{where}.{k}", strict)] if p), None)
    if origin is list:
        if not isinstance(value, list):
            return f"{where}: {_shape(value)} is not a list"
        return next((p for i, v in enumerate(value) for p in [type_problem(v, args[0], f"{where}[{i}]", strict)] if p), None)
    if hint is type(None):
        return None if value is None else f"{where}: {_shape(value)} is not null"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return None if ok else f"{where}: {_shape(value)} is not {_name(hint)}"


def _shape(value: Any) -> str:
    return f"{type(value).__name__} {str(value)[:30]!r}" if not isinstance(value, (dict, list)) else type(value).__name__


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved configuration without what does not change the experiment: the seed and the preset's label
    (the preset's values stay, inside the sections)."""
    out = {k: v for k, v in config.items() if k != "preset"}
    out["training"] = {k: v for k, v in config.get("training", {}).items() if k != "seed"}
    return out


def comparability_key(
    config: dict[str, Any], spec_hashes: dict[str, str | None] | None, data_hashes: dict[str, str], processes: int = 1
) -> tuple[str, dict[str, Any]]:
    """Runs with equal keys are the same experiment and may be grouped over seeds or paired across commits.

    Parts: the configuration without seed and preset label; the content hash of the method and task specs
    (their parsed content, so comments and layout do not count, nor the file-format `version`); the
    content hash of every data split; the number of training processes when it is not 1 (`batch_size` is
    per process, so 2 processes of 8 train with batches of 16). A one-process run has no such part, so
    its key is the one records kept before processes were counted: those records are one-process runs.
    """
    parts: dict[str, Any] = {"config": stable_hash(comparable_config(config)), "specs": spec_hashes}
    parts["data"] = dict(sorted(data_hashes.items()))
    if processes != 1:
        parts["processes"] = processes
    return stable_hash(parts)[:16], parts


def processes_of(record: dict[str, Any]) -> int:
    """How many processes trained a run (records without the part, older ones, are one-process runs)."""
    parts = record.get("key_parts")
    value = parts.get("processes", 1) if isinstance(parts, dict) else 1
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def this_host() -> str:
    return socket.gethostname()


def liveness() -> dict[str, Any]:
    return {"host": this_host(), "pid": os.getpid(), "heartbeat_at": utc_now().isoformat()}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id lives on this host (0 and negative ids name groups, never one process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return not zombie(pid)


def zombie(pid: int) -> bool:
    """A process that has ended but not been reaped (its parent, or a container's init, never waits)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def effective_status(record: dict[str, Any], heartbeat: datetime | None = None, now: datetime | None = None) -> str:
    """The stored status, except that a `running` record whose process is gone reads `stale`.

    A live run touches its file every 30 s (`runner.Heartbeat`), so silence decides: no sign of life for
    SILENT_AFTER_S on this host, or STALE_AFTER_S from another (clocks differ), is stale, even where the pid
    lives, since a pid is reused by other processes after a restart. On this host a dead pid is stale at once.
    `heartbeat` is the latest sign of life the caller knows (the file's mtime, touched while the run lives).
    """
    status = record.get("status", "running")
    if status != "running":
        return status
    here = record.get("host") == this_host()
    if here and isinstance(record.get("pid"), int) and not pid_alive(record["pid"]):
        return STALE
    beats = [t for t in (parse_time(record.get("heartbeat_at")), heartbeat) if t is not None]
    if not beats:
        return STALE
    bound = SILENT_AFTER_S if here else STALE_AFTER_S
    return STALE if ((now or utc_now()) - max(beats)).total_seconds() > bound else "running"


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def measurement_header(kind: str, source: Any, model_class: str, methods: list[str]) -> dict[str, Any]:
    """The fields every measurement record (latency, profile) starts with; `store.save_measurement` completes it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "status": "finished",
        "created_at": utc_now().isoformat(),
        "model": source.name,
        "model_origin": str(source.local_dir) if source.local_dir else "random weights of the real shape (no download)",
        "model_class": model_class,
        "methods": methods,
    }


def measurement_key(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What decides a latency or profile measurement: model, methods with their hyperparameters, the grid or
    batch settings, dtype, device and threads (never the time it ran or the rounds' raw times)."""
    env = record.get("env") or {}
    settings = {k: record.get(k) for k in ("kind", "model", "model_class", "methods", "hyperparameters", "settings")}
    settings["cells"] = [(c.get("batch"), c.get("seq")) for c in record.get("cells") or []]
    settings["machine"] = {k: env.get(k) for k in ("device", "device_name", "dtype", "threads")}
    return comparability_key(settings, None, {})


# ---------------------------------------------------------------- scoring


def with_directions(scores: dict[str, float]) -> dict[str, MetricValue]:
    """Each score with its direction from the metric registry; NaN is stored as null."""
    return {
        name: {"value": None if math.isnan(value) else value, "higher_is_better": metric_for(name).higher_is_better}
        for name, value in scores.items()
    }


def main_metric_name(metrics: dict[str, Any], main: str) -> str | None:
    """The score that stands for the task's main metric: itself, or its first suffixed variant (MNLI matched)."""
    return next((k for k in metrics if k == main or k.startswith(main + "_")), None)


def best_epoch(scored: list[dict[str, Any]], main: str) -> dict[str, Any]:
    """The epoch with the best main metric; a missing (NaN) score never wins."""
    key = main_metric_name(scored[-1]["metrics"], main)
    if key is None:
        return scored[-1]
    sign = 1 if scored[-1]["metrics"][key]["higher_is_better"] else -1

    def score(epoch: dict[str, Any]) -> float:
        value = epoch["metrics"][key]["value"]
        return float("-inf") if value is None else sign * value

    return max(scored, key=score)


def update_scores(record: dict[str, Any]) -> None:
    """GLUE reports the best epoch's dev metrics (as the paper does) beside the last epoch's."""
    scored = [e for e in record["epochs"] if e["metrics"]]
    if not scored:
        return
    best = best_epoch(scored, record["main_metric"])
    record["metrics"], record["best_epoch"] = best["metrics"], best["epoch"]
    record["metrics_last"] = scored[-1]["metrics"]


def main_value(record: dict[str, Any]) -> float | None:
    """The main metric's value of a run record (None before it is scored)."""
    metrics = record.get("metrics") or {}
    name = main_metric_name(metrics, record.get("main_metric") or "")
    return metrics[name]["value"] if name else None


def metric_value(record: dict[str, Any], name: str, epoch: dict[str, Any] | None = None) -> float | None:
    """The value of metric `name` in a run record (its best epoch's scores), or in one `epoch` entry; None when absent
    or not a number (NaN is stored as null). The one place every reader takes a score from."""
    entry = ((epoch if epoch is not None else record).get("metrics") or {}).get(name) or {}
    value = entry.get("value") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def metric_values(record: dict[str, Any]) -> dict[str, float | None]:
    """Every metric of a run record's best epoch: name -> value."""
    return {name: metric_value(record, name) for name in record.get("metrics") or {}}


def higher_is_better(record: dict[str, Any], name: str) -> bool | None:
    """The direction stored with metric `name` (from the metric registry when the run was scored)."""
    entry = (record.get("metrics") or {}).get(name) or {}
    return entry.get("higher_is_better") if isinstance(entry, dict) else None


# ---------------------------------------------------------------- migrations


def migrate(record: dict[str, Any]) -> dict[str, Any]:
    """Bring a record of any older schema version up to SCHEMA_VERSION (in place; returns it)."""
    for version, step in sorted(MIGRATIONS.items()):
        if record.get("schema_version", 1) == version:
            step(record)
            record["schema_version"] = version + 1
    return record


def _v1_to_v2(record: dict[str, Any]) -> None:
    """Version 1 (before 2026-12-02): run records had no kind, key, seed field or liveness; measurement records no run id."""
    record.setdefault("kind", "run" if "config" in record else "latency")
    record.setdefault("host", None)
    record.setdefault("pid", None)
    record.setdefault("heartbeat_at", record.get("finished_at") or record.get("created_at"))
    record.setdefault("hooks", {})
    if record["kind"] == "run":
        config = record.get("config") or {}
        record.setdefault("seed", (config.get("training") or {}).get("seed"))
        data = {name: s.get("sha256") for name, s in ((record.get("data") or {}).get("splits") or {}).items()}
        # spec contents were not recorded in version 1: the key says so (None), so it never equals a new one by accident
        key, parts = comparability_key(config, None, data)
        record.setdefault("key", key)
        record.setdefault("key_parts", parts)
    else:
        record.setdefault("status", "finished")
        record.setdefault("seed", (record.get("settings") or {}).get("seed"))
        key, parts = measurement_key(record)
        record.setdefault("key", key)
        record.setdefault("key_parts", parts)


MIGRATIONS = {1: _v1_to_v2}
