"""Sweeps: a grid of runs (methods x tasks x models x seeds), resolved up front, resumable, on one
machine or a Ray cluster.

A grid comes from the command line or from a sweep spec (`sweeps/NAME.yaml`, or any YAML file):

    version: 1
    name: smoke
    description: ...
    methods: [lora, bitfit, adapter_d@0.3m]               # METHOD@PRESET: a method with a named preset
    tasks: [mrpc, e2e]
    models: {mrpc: [tiny-roberta], e2e: [tiny-gpt2]}   # or a list, crossed with every task
    seeds: [0]
    set: [epochs=2]                                      # every cell
    per_method: {lora: [r=4]}                            # cells of one method
    per_task: {e2e: [max_eval_examples=8]}               # cells of one task
    presets: {adapter_d: 0.3m}                           # a method's named preset
    report: {out: reports/smoke}                         # written when the sweep ends
    vary: {lora.r: [1, 2, 4, 8]}                         # axes: every value its own cell (grid/axes.py)

Every cell is resolved before anything trains, so a typo in the 40th cell fails in a second.
A model crossed with a task it cannot serve (an encoder with a generation task) is left out
and said so. A cell whose comparability key and seed already have a finished record is skipped;
an interrupted (or stale) one continues in its own record from its checkpoint; a failed one is
tried again. A failing cell never stops the grid: failures are listed at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from peftbench.errors import RunFailed, RunInterrupted, UsageError
from peftbench.grid.axes import Axis, axes_from_spec, check_distinct, expand, parse_vary, with_axis_labels
from peftbench.records.store import CellClaims
from peftbench.specs import check_keys, check_version, read_yaml, spec_dir, text

SPEC_KEYS_REQUIRED = {"version", "name", "methods", "tasks"}
SPEC_KEYS_OPTIONAL = {"description", "models", "seeds", "set", "per_method", "per_task", "presets", "data_dir", "report", "vary"}


@dataclass(frozen=True)
class Cell:
    """One run of the grid, by name."""

    method: str
    task: str
    model: str | None
    seed: int
    overrides: tuple[str, ...] = ()
    preset: str | None = None
    data_dir: str | None = None

    @property
    def label(self) -> str:
        return f"{self.method}/{self.task}/{self.model or 'default'}/seed {self.seed}"


@dataclass(frozen=True)
class SweepSpec:
    name: str
    methods: tuple[str, ...]
    tasks: tuple[str, ...]
    models: dict[str, tuple[str, ...]] | tuple[str, ...] = ()  # per task, or crossed with every task; () = each task's default
    seeds: tuple[int, ...] = (0,)
    overrides: tuple[str, ...] = ()
    per_method: dict[str, tuple[str, ...]] = field(default_factory=dict)
    per_task: dict[str, tuple[str, ...]] = field(default_factory=dict)
    presets: dict[str, str] = field(default_factory=dict)
    data_dir: str | None = None
    report: dict[str, Any] | None = None
    description: str = ""
    axes: tuple[Axis, ...] = ()  # `vary:` / `--vary`: each value of each axis multiplies the cells it applies to

    def models_for(self, task: str) -> tuple[str | None, ...]:
        if isinstance(self.models, dict):
            return self.models.get(task) or (None,)
        return self.models or (None,)

    def cells(self) -> list[Cell]:
        """The grid in a stable order: task, model, seed, then method (one model loaded for many methods)."""
        out = []
        for task in self.tasks:
            for model, seed, entry in itertools.product(self.models_for(task), self.seeds, self.methods):
                method, _, preset = entry.partition("@")  # `adapter_d@0.3m`: a method with one of its named presets
                sets = (
                    *self.overrides,
                    *self.per_task.get(task, ()),
                    *self.per_method.get(method, ()),
                    *(self.per_method.get(entry, ()) if preset else ()),
                )
                for varied in expand(self.axes, method):
                    out.append(Cell(method, task, model, seed, (*sets, *varied), preset or self.presets.get(method), self.data_dir))
        return out


def strings(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise UsageError(f"{where}: expected a list, got {value!r}")
    return tuple(str(v) for v in value)


def mapping(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a mapping, got {value!r}")
    return value


def parse_spec(path: Path) -> SweepSpec:
    data = read_yaml(path)
    where = str(path)
    check_keys(where, data, SPEC_KEYS_REQUIRED, SPEC_KEYS_OPTIONAL)
    check_version(where, data)
    models = data.get("models") or []
    models = (
        {t: strings(f"{where}: models.{t}", m) for t, m in models.items()}
        if isinstance(models, dict)
        else strings(f"{where}: models", models)
    )
    try:
        seeds = tuple(int(s) for s in strings(f"{where}: seeds", data.get("seeds", [0])))
    except ValueError:
        raise UsageError(f"{where}: seeds must be integers, got {data.get('seeds')!r}") from None
    spec = SweepSpec(
        name=str(data["name"]),
        description=str(data.get("description", "")),
        methods=strings(f"{where}: methods", data["methods"]),
        tasks=strings(f"{where}: tasks", data["tasks"]),
        models=models,
        seeds=seeds,
        overrides=strings(f"{where}: set", data.get("set") or []),
        per_method={k: strings(f"{where}: per_method.{k}", v) for k, v in mapping(f"{where}: per_method", data.get("per_method")).items()},
        per_task={k: strings(f"{where}: per_task.{k}", v) for k, v in mapping(f"{where}: per_task", data.get("per_task")).items()},
        presets={k: str(v) for k, v in mapping(f"{where}: presets", data.get("presets")).items()},
        data_dir=text(where, "data_dir", data.get("data_dir"), optional=True),
        report=report_section(where, data.get("report")),
        axes=axes_from_spec(where, data.get("vary")),
    )
    check_sections(where, spec)
    return spec


def check_sections(where: str, spec: SweepSpec) -> None:
    """Every key of `per_method`, `per_task` and `presets` names a method or task of the grid.

    Why: a key that names nothing (`per_method: {lorra: [r=4]}`) would be ignored, and the grid would run with
    defaults that nobody asked for; all such keys are reported at once, each with a suggestion.
    """
    from peftbench.registry import unknown_name_message

    methods = {m.partition("@")[0] for m in spec.methods}
    grid = {"per_method": methods | set(spec.methods), "per_task": set(spec.tasks), "presets": methods}
    kinds = {"per_method": "method of this sweep", "per_task": "task of this sweep", "presets": "method of this sweep"}
    problems = [
        f"{section}: {unknown_name_message(kinds[section], key, grid[section])}"
        for section, keys in (("per_method", spec.per_method), ("per_task", spec.per_task), ("presets", spec.presets))
        for key in keys
        if key not in grid[section]
    ]
    if problems:
        raise UsageError(f"{where}: " + "; ".join(problems))


def report_section(where: str, value: Any) -> dict[str, str] | None:
    """`report: {out: FOLDER}`, checked before any cell trains (a wrong type must not surface after the sweep)."""
    section = mapping(f"{where}: report", value)
    check_keys(f"{where}: report", section, set(), {"out"})
    return {"out": str(text(f"{where}: report", "out", section["out"]))} if "out" in section else None


def preset_names() -> list[str]:
    return sorted(p.stem for p in spec_dir("sweeps").glob("*.yaml"))


def load_spec(name_or_path: str) -> SweepSpec:
    """A built-in preset by name (`peftbench sweep --preset smoke`) or a sweep spec file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UsageError(f"sweep spec {name_or_path}: no such file")
        return parse_spec(path)
    known = preset_names()
    if name_or_path not in known:
        from peftbench.registry import unknown_name_message

        raise UsageError(unknown_name_message("sweep preset", name_or_path, known))
    return parse_spec(spec_dir("sweeps") / f"{name_or_path}.yaml")


# ---------------------------------------------------------------- planning


@dataclass
class Planned:
    cell: Cell
    resolved: Any  # ResolvedRun
    key: str
    action: str  # run, resume, skip (finished before), wait (another live process runs or claims it)
    resume: Path | None = None
    note: str = ""


def compatible(cell: Cell) -> bool:
    """Can the cell's model serve its task at all (a generation task needs a causal LM)?"""
    from peftbench.models.build import base_config, generates
    from peftbench.models.presets import resolve_model
    from peftbench.tasks.base import task_specs

    if task_specs().get(cell.task).kind != "generation":
        return True
    spec_model = cell.model or task_specs().get(cell.task).default_model
    return generates(base_config(resolve_model(spec_model)))


def plan(cells: list[Cell], store: Any, cache: Any) -> tuple[list[Planned], list[str]]:
    """Resolve every cell (all errors at once, before any work), then decide what each one needs."""
    from peftbench.config.resolve import resolve_run
    from peftbench.records.schema import comparability_key

    resolved, errors, left_out = [], [], []
    for cell in cells:
        try:
            if not compatible(cell):
                left_out.append(f"{cell.task} with {cell.model} (the task generates text; the model cannot)")
                continue
            r = resolve_run(
                cell.method,
                cell.task,
                cell.model,
                preset=cell.preset,
                overrides=[*cell.overrides, f"seed={cell.seed}"],
                data_dir=cell.data_dir,
                results_dir=str(store.root),
            )
            resolved.append((cell, r))
        except UsageError as exc:
            errors.append(f"{cell.label}: {exc}")
    if errors:
        raise UsageError(f"{len(errors)} of {len(cells)} cells are invalid; nothing was run:\n  " + "\n  ".join(errors))
    existing = index_by_key_and_seed(store)
    planned = []
    for cell, r in resolved:
        key = comparability_key(r.config.to_dict(), r.spec_hashes, cache.splits(r)[1])[0]
        planned.append(decide(cell, r, key, existing.get((key, r.seed), []), store))
    return planned, sorted(set(left_out))


def is_trial(record: dict[str, Any]) -> bool:
    """A tuning trial's run (`hooks.tune`): it was chosen for scoring well, so it never counts as a grid's result."""
    return bool((record.get("hooks") or {}).get("tune"))


def index_by_key_and_seed(store: Any) -> dict[tuple[str, int], list[Any]]:
    """The store's run records by key and seed, tuning trials left out: `sweep --fair` trains its final seeds as
    fresh runs, even the seed whose trial won (reusing it biased the reported median upward)."""
    out: dict[tuple[str, int], list[Any]] = {}
    for entry in store.entries("run"):
        if is_trial(entry.record):
            continue
        out.setdefault((entry.record.get("key"), entry.record.get("seed")), []).append(entry)
    return out


def decide(cell: Cell, resolved: Any, key: str, entries: list[Any], store: Any) -> Planned:
    statuses = {e.status for e in entries}
    if "finished" in statuses:
        return Planned(cell, resolved, key, "skip", note="finished before")
    if "running" in statuses:  # a live process runs it: never counted as done, waited for (see `settle`)
        return Planned(cell, resolved, key, "wait", note="running in another process")
    stopped = [e for e in entries if e.status in ("interrupted", "stale")]
    if stopped:
        latest = max(stopped, key=lambda e: e.record.get("created_at") or "")
        has_checkpoint = store.checkpoint_path(latest.record["run_id"]).exists()
        note = "from its checkpoint" if has_checkpoint else "no checkpoint: starts over in the same record"
        return Planned(cell, resolved, key, "resume", latest.path, note)
    return Planned(cell, resolved, key, "run")


# ---------------------------------------------------------------- executing


@dataclass
class Outcome:
    cell: Cell
    status: str  # finished, failed, interrupted, skipped
    run_id: str | None = None
    error: str | None = None
    note: str = ""


_CACHE: Any = None  # one LoadCache per worker process


def run_cell(resolved: Any, root: str, resume: str | None, keep_checkpoints: bool, quiet: bool = False) -> dict[str, Any]:
    """Run one planned cell in this process (a worker, or the sweep's own process); returns a summary."""
    global _CACHE
    from peftbench.records.store import Store
    from peftbench.run import runner

    if _CACHE is None:
        _CACHE = runner.LoadCache()
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        plan_ = runner.prepare(
            resolved,
            Store(Path(root)),
            cache=_CACHE,
            checkpoints=True,
            keep_checkpoint=keep_checkpoints,
            resume=Path(resume) if resume else None,
        )
        record = runner.execute(plan_)
        return {"status": record["status"], "run_id": record["run_id"]}
    except RunFailed as exc:
        return {"status": "failed", "error": str(exc).splitlines()[0]}
    except RunInterrupted:
        return {"status": "interrupted"}


def execute_local(planned: list[Planned], store: Any, jobs: int, keep_checkpoints: bool) -> Iterator[Outcome]:
    todo = [p for p in planned if p.action in ("run", "resume")]
    if jobs <= 1:
        for p in todo:
            got = run_cell(p.resolved, str(store.root), str(p.resume) if p.resume else None, keep_checkpoints)
            yield Outcome(p.cell, got["status"], got.get("run_id"), got.get("error"), p.note)
            if got["status"] == "interrupted":
                raise KeyboardInterrupt
        return
    yield from execute_pool(todo, store, jobs, keep_checkpoints)


def execute_pool(todo: list[Planned], store: Any, jobs: int, keep_checkpoints: bool) -> Iterator[Outcome]:
    """N worker processes, each with its own cache (and its own GPU, when there are GPUs)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    devices = context.Queue()
    for i in range(jobs):
        devices.put(i)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=worker_init, initargs=(devices,)) as pool:
        futures = {
            pool.submit(run_cell, p.resolved, str(store.root), str(p.resume) if p.resume else None, keep_checkpoints, True): p for p in todo
        }
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    p, got = futures[future], future.result()
                    yield Outcome(p.cell, got["status"], got.get("run_id"), got.get("error"), p.note)
        except KeyboardInterrupt:
            for process in list(getattr(pool, "_processes", {}).values()):  # a SIGTERM to the sweep reaches its workers
                if process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def worker_init(devices: Any) -> None:
    """A worker's device (one GPU each when there are several), Ctrl-C handling like the CLI's, and its
    runs tied to the sweep's process (a killed sweep leaves no orphans: the next one resumes them)."""
    from peftbench.run import stop

    stop.install()
    stop.tie_workers_to_parent()
    index = devices.get()
    if "CUDA_VISIBLE_DEVICES" not in os.environ:
        import torch

        if torch.cuda.device_count() > 1:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(index % torch.cuda.device_count())


RAY_PROBE_S = 5.0  # an address that accepts no TCP connection in this time is unreachable (ray.init would hang)


def execute_ray(planned: list[Planned], store: Any, address: str | None) -> Iterator[Outcome]:
    """Each cell a Ray task (a GPU each when the cluster has them); records come back to this machine's store.

    An interrupted cell continues in its own record from its checkpoint, as the local executors do: the record and
    the checkpoint travel to the worker, and the continued record comes back to the same file.
    """
    todo = [p for p in planned if p.action in ("run", "resume")]
    if not todo:
        return  # nothing to run: no cluster to connect to
    ray = connect_ray(address)
    import torch

    remote = ray.remote(num_gpus=1 if torch.cuda.is_available() else 0, num_cpus=1)(ray_cell)
    refs = {remote.remote(p.resolved, resume_payload(p, store)): p for p in todo}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        p = refs[done[0]]
        try:
            got = ray.get(done[0])
        except Exception as exc:  # a worker that died or a task that raised: one line, the grid goes on
            got = {"status": "failed", "error": f"Ray: {one_line(exc)}"}
        store_ray_result(got, p, store)
        yield Outcome(p.cell, got["status"], got.get("run_id"), got.get("error"), p.note)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def connect_ray(address: str | None) -> Any:
    """Ray, initialised: a local instance without an address, else the cluster at `address`.

    Why the probe: `ray.init` waits minutes on an address where nothing listens. A cluster that does not accept a
    TCP connection within RAY_PROBE_S, and any error of `ray.init` (token authentication, versions), is one line
    and exit 2, before any work.
    """
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray: pip install 'peftbench[ray]'") from None
    if ray.is_initialized():
        return ray
    if address and address != "auto":
        probe(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, num_cpus=None if address else os.cpu_count())
    except Exception as exc:
        raise UsageError(f"cannot connect to Ray{f' at {address}' if address else ''}: {one_line(exc)}") from None
    return ray


def probe(address: str) -> None:
    """Fail fast when nothing answers at `address` (`host:port` or `ray://host:port`)."""
    import socket

    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r}: expected HOST:PORT or ray://HOST:PORT (or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_PROBE_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"no Ray cluster reachable at {address} ({reason} within {RAY_PROBE_S:g} s): is `ray start --head` running there?"
        ) from None


def resume_payload(p: Planned, store: Any) -> dict[str, Any] | None:
    """What a worker needs to continue an interrupted cell: its record and checkpoint (bytes), and where they lie."""
    if p.action != "resume" or p.resume is None:
        return None
    record = p.resume.read_bytes()
    run_id = json.loads(record)["run_id"]
    checkpoint = store.checkpoint_path(run_id)
    return {
        "record_at": str(p.resume.relative_to(store.root)),
        "record": record,
        "checkpoint_at": str(checkpoint.relative_to(store.root)),
        "checkpoint": checkpoint.read_bytes() if checkpoint.exists() else None,
    }


def ray_cell(resolved: Any, resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """On a Ray worker: run (or continue) into a private results folder and hand the record back to the driver,
    with the checkpoint when the run did not finish."""
    import tempfile

    from peftbench.records.store import Store

    with tempfile.TemporaryDirectory(prefix="peftbench-ray-") as tmp:
        record_path = None
        if resume is not None:
            for at, data in ((resume["record_at"], resume["record"]), (resume["checkpoint_at"], resume["checkpoint"])):
                if data is not None:
                    (Path(tmp) / at).parent.mkdir(parents=True, exist_ok=True)
                    (Path(tmp) / at).write_bytes(data)
            record_path = str(Path(tmp) / resume["record_at"])
        got = run_cell(resolved, tmp, record_path, False, quiet=True)
        records = [e.record for e in Store(Path(tmp)).entries("run")]
        record = records[0] if records else None
        checkpoint = Store(Path(tmp)).checkpoint_path(record["run_id"]) if record else None
        left = checkpoint.read_bytes() if checkpoint is not None and checkpoint.exists() else None
    return {**got, "record": record, "checkpoint": left}


def store_ray_result(got: dict[str, Any], p: Planned, store: Any) -> None:
    """A worker's record into the driver's store: a continued run back into its own file, a new one claimed."""
    from peftbench.records.store import write_record

    record = got.get("record")
    if not record:
        return
    path = p.resume if p.action == "resume" and p.resume is not None else store.claim("run", record["run_id"])
    write_record(path, record)
    checkpoint = store.checkpoint_path(record["run_id"])
    if got.get("checkpoint") is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(got["checkpoint"])
    else:
        checkpoint.unlink(missing_ok=True)


# ---------------------------------------------------------------- the whole sweep


@dataclass
class SweepResult:
    outcomes: list[Outcome]
    skipped: list[Planned]
    left_out: list[str]
    keys: list[str]
    seconds: float

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def run_sweep(
    spec: SweepSpec,
    store: Any,
    *,
    jobs: int = 1,
    backend: str = "local",
    address: str | None = None,
    keep_checkpoints: bool = False,
    out: Any = None,
    cells: list[Cell] | None = None,
) -> SweepResult:
    from tqdm.auto import tqdm

    from peftbench.run.runner import LoadCache

    global _CACHE
    start = time.perf_counter()
    if jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    if address and backend != "ray":
        raise UsageError("--address is a Ray cluster's address: it needs --backend ray")
    if backend == "ray" and address and address != "auto":
        probe(address)  # seconds, before minutes of planning: an unreachable cluster is one line and exit 2
    cells = spec.cells() if cells is None else cells  # `--fair` passes the grid's cells with their tuned presets
    if not cells:
        raise UsageError("the sweep has no cells (no methods, tasks or seeds)")
    _CACHE = _CACHE or LoadCache()
    store.check_writable()
    planned, left_out = plan(cells, store, _CACHE)

    def execute(todo: list[Planned]) -> Iterator[Outcome]:
        return execute_ray(todo, store, address) if backend == "ray" else execute_local(todo, store, jobs, keep_checkpoints)

    claims = CellClaims(store)
    with claims_kept_fresh(claims):
        planned = [claimed_or_waiting(p, claims) for p in planned]
        skipped = [p for p in planned if p.action == "skip"]
        print(plan_line(spec.name, planned, left_out), file=out, flush=True)
        outcomes: list[Outcome] = []
        waiting = [p for p in planned if p.action == "wait"]
        ours = execute([p for p in planned if p.action in ("run", "resume")])
        runs = itertools.chain(ours, settle(waiting, store, claims, execute, out))
        with tqdm(total=len(planned), initial=len(skipped), desc=f"sweep {spec.name}", unit="run", position=0, mininterval=0.5) as bar:
            for outcome in runs:
                outcomes.append(outcome)
                bar.update(1)
                bar.set_postfix(failed=sum(o.status == "failed" for o in outcomes), refresh=False)
    return SweepResult(outcomes, skipped, left_out, sorted({p.key for p in planned}), time.perf_counter() - start)


def plan_line(name: str, planned: list[Planned], left_out: list[str]) -> str:
    count = {a: sum(p.action == a for p in planned) for a in ("skip", "resume", "run", "wait")}
    waiting = f", {count['wait']} running in another process (waited for)" if count["wait"] else ""
    return (
        f"sweep {name}: {len(planned)} cells, {count['skip']} done before, {count['resume']} to resume, {count['run']} to run"
        + waiting
        + (f"; left out: {'; '.join(left_out)}" if left_out else "")
    )


def claimed_or_waiting(p: Planned, claims: CellClaims) -> Planned:
    """A cell this sweep will run is claimed first; one that another live sweep has claimed is waited for."""
    if p.action in ("run", "resume") and not claims.take(p.key, p.resolved.seed):
        return replace(p, action="wait", note="claimed by another process")
    return p


@contextlib.contextmanager
def claims_kept_fresh(claims: CellClaims) -> Iterator[None]:
    """Touch this sweep's claims while it lives (other sweeps judge them by that), release them all at the end."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(30.0):
            claims.touch()

    thread = threading.Thread(target=beat, daemon=True, name="peftbench-claims")
    thread.start()
    try:
        yield
    finally:
        done.set()
        claims.release_all()


WAIT_POLL_S = 2.0


def settle(waiting: list[Planned], store: Any, claims: CellClaims, execute: Any, out: Any = None) -> Iterator[Outcome]:
    """Cells another process was running: wait until each is finished there (nothing to do) or its owner is
    gone (then claim it and run or resume it here). A cell is never counted done while it is not finished."""
    if waiting:
        labels = ", ".join(p.cell.label for p in waiting[:3]) + (", ..." if len(waiting) > 3 else "")
        print(
            f"waiting for {len(waiting)} cell(s) another process is running ({labels}); Ctrl-C stops, a later sweep picks them up",
            file=out,
            flush=True,
        )
    while waiting:
        time.sleep(WAIT_POLL_S)
        index, still = index_by_key_and_seed(store), []
        for p in waiting:
            again = decide(p.cell, p.resolved, p.key, index.get((p.key, p.resolved.seed), []), store)
            if again.action == "skip":
                yield Outcome(p.cell, "skipped", note="finished by another process")
            elif again.action == "wait" or not claims.take(p.key, p.resolved.seed):
                still.append(p)
            else:
                yield from execute([again])
        waiting = still


def tune_grid(spec: SweepSpec, store: Any, trials: int, budget_steps: int | None, out: Any = None) -> list[Cell]:
    """`sweep --fair`: tune each (method, task, model) of the grid with the same trials and budget, then
    return the grid's cells with the best configuration (`tuned:<study>`) and that budget in each."""
    from peftbench.grid.tune import TuneSpec, tune

    if trials < 1:
        raise UsageError(f"--trials must be >= 1, got {trials}")
    studies: dict[tuple[str, str, str | None, str | None], str] = {}
    cells = []
    for cell in spec.cells():
        if not compatible(cell):
            cells.append(cell)  # left out by the plan, and said so
            continue
        at = (cell.method, cell.task, cell.model, cell.preset)
        if at not in studies:
            tuned = TuneSpec(
                cell.method, cell.task, cell.model, trials, budget_steps, overrides=cell.overrides, preset=cell.preset,
                data_dir=cell.data_dir,
            )
            done = tune(tuned, store, out)
            studies[at] = done.study
            print(
                f"fair: {cell.method}/{cell.task}/{cell.model or 'default'} -> {done.preset} {done.summary['best_params']}",
                file=out,
                flush=True,
            )
        budget = (f"max_steps={budget_steps}",) if budget_steps else ()
        cells.append(replace(cell, preset=f"tuned:{studies[at]}", overrides=(*cell.overrides, *budget)))
    return cells


def grid_from_flags(args: Any) -> SweepSpec:
    """`--methods a,b --tasks c --models x,y --seeds 0,1 --set k=v --preset P` (a method preset for every method)."""
    if args.spec:
        spec = load_spec(args.spec)
        spec = replace(spec, data_dir=args.data_dir or spec.data_dir)  # the command line's folder wins over the spec's
        spec = replace(spec, overrides=(*spec.overrides, *args.overrides), seeds=seeds(args.seeds) if args.seeds else spec.seeds)
        return with_vary(spec, getattr(args, "vary", None))
    if not (args.methods and args.tasks):
        raise UsageError("sweep needs --methods and --tasks (or a preset: peftbench sweep smoke, or a spec file)")
    methods = strings("--methods", args.methods)
    presets = dict.fromkeys(methods, args.method_preset) if args.method_preset else {}
    grid = SweepSpec(
        name="grid",
        methods=methods,
        tasks=strings("--tasks", args.tasks),
        models=strings("--models", args.models) if args.models else (),
        seeds=seeds(args.seeds) if args.seeds else (0,),
        overrides=tuple(args.overrides),
        presets=presets,
        data_dir=args.data_dir,
    )
    return with_vary(grid, getattr(args, "vary", None))


def with_vary(spec: SweepSpec, vary: list[str] | None) -> SweepSpec:
    """`--vary KEY=V1,V2` axes added to the spec's own (a key the spec varies too is refused)."""
    axes = (*spec.axes, *(parse_vary(v) for v in vary or ()))
    check_distinct(axes)
    return replace(spec, axes=axes)


def seeds(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"--seeds expects comma-separated integers, got {text!r}") from None
    if not values:
        raise UsageError("--seeds needs at least one seed")
    return values


def summary_table(result: SweepResult, store: Any, axes: tuple[Axis, ...] = ()) -> str:
    """Until a report is asked for: the main metric per method and task (median over seeds, seed count)."""
    from peftbench.results import load

    frame = load(store.root, key=result.keys, status="finished")
    trials = {e.record.get("run_id") for e in store.entries("run") if is_trial(e.record)}
    frame = frame[~frame["run_id"].isin(trials)]
    if frame.empty:
        return "no finished runs"
    frame = with_axis_labels(frame, axes)
    frame["where"] = frame["task"] + " / " + frame["model"] + " (" + frame["main_metric"] + ")"
    grouped = frame.groupby(["method", "where"])["main_value"].agg(["median", "count"])
    cells = grouped.apply(lambda r: f"{r['median']:.4f} (n={int(r['count'])})", axis=1).unstack("where")
    return cells.fillna("-").to_string()
