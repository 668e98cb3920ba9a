"""Fair comparisons: tune every method with the same search effort before comparing them.

`peftbench tune` runs an Optuna study for one (method, task, model) over the search space the
method's spec declares (`search:` in methods/*.yaml). The fairness rule: every method gets the same
number of trials, the same sampler and pruner settings, and the same training budget per trial
(`--budget-steps S` sets max_steps=S for every trial; the rest of the configuration is whatever the
layers resolve to, plus `--set`). The score is the task's main metric (or `--metric`), the mean over
`--seeds K` seeds (0..K-1).

- Sampler: TPE, seeded (`SAMPLER_SEED` + the number of trials already in the study, so a resumed
  study draws new points instead of replaying its first ones), `TPE_STARTUP` random trials first.
- Pruner: the median rule (`--pruner median`, default) or successive halving (`--pruner halving`) on
  each epoch's evaluation, reported through a runner callback; a pruned trial's run record ends
  `failed` with `TrialPruned` and its tag says `pruned`, the Optuna trial is PRUNED. Only the first
  seed's run reports (Optuna steps must not repeat).
- Every trial is an ordinary run record, tagged `record["hooks"]["tune"] = {"study", "trial", ...}`:
  `hooks` is outside the comparability key, and trials with different parameters differ in config,
  so they never look like the same cell to a sweep.
- The study lives in Optuna's storage (`<results>/studies/<study>.db`, or any RDB URL with
  `--storage`). `--trials N` is the study's total: COMPLETE and PRUNED trials count; running again
  runs only the missing ones. A trial left RUNNING by a dead process of this host is marked FAIL first.
- `<results>/studies/<study>.json` summarises the study (best params, best value, n_trials,
  direction, every trial): the `tuned:<study>` preset reads it, and so can a report.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftbench.errors import RunFailed, RunInterrupted, UsageError
from peftbench.records.schema import pid_alive
from peftbench.specs import read_json

SAMPLER_SEED = 0
TPE_STARTUP = 5  # random trials before TPE models the space (Optuna's default is 10: too many for small budgets)
MEDIAN_STARTUP = 3  # finished trials before the median rule may prune
PRUNERS = ("median", "halving", "none")


@dataclass(frozen=True)
class TuneSpec:
    """One study's settings. Everything here but `trials` must stay the same across resumptions."""

    method: str
    task: str
    model: str | None
    trials: int
    budget_steps: int | None = None
    metric: str | None = None  # default: the task's main metric
    seeds: int = 1
    overrides: tuple[str, ...] = ()
    preset: str | None = None  # a named method preset under the searched values
    data_dir: str | None = None
    pruner: str = "median"
    study: str | None = None  # default: method-task-model-<settings hash>
    storage: str | None = None  # default: sqlite under <results>/studies/

    def fixed_overrides(self) -> list[str]:
        """The `--set` values every trial shares; the budget comes last, so it wins."""
        return [*self.overrides, *([f"max_steps={self.budget_steps}"] if self.budget_steps else [])]

    def settings(self, space: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "method": self.method,
            "task": self.task,
            "model": self.model,
            "preset": self.preset,
            "overrides": self.fixed_overrides(),
            "metric": self.metric,
            "seeds": self.seeds,
            "data_dir": self.data_dir,
            "pruner": self.pruner,
            "space": space,
        }


@dataclass
class Outcome:
    """What `tune` did: the study's summary and how many trials this invocation ran."""

    study: str
    summary: dict[str, Any]
    ran: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def preset(self) -> str:
        return f"tuned:{self.study}"


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError:
        raise UsageError("tune needs Optuna: pip install 'peftbench[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def space_of(method: str) -> list[dict[str, Any]]:
    from dataclasses import asdict

    from peftbench.specs import method_specs

    spec = method_specs().get(method)
    if spec is None:
        raise UsageError(f"method {method!r} has no spec file in methods/")
    if not spec.search:
        raise UsageError(f"method {method} declares no search space (search: in {spec.source})")
    return [{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(p).items()} for p in spec.search]


def suggest(trial: Any, space: list[dict[str, Any]]) -> dict[str, Any]:
    """Sample one point of a method's space; names are `--set` names."""
    values = {}
    for p in space:
        if p["type"] == "categorical":
            values[p["name"]] = trial.suggest_categorical(p["name"], p["choices"])
        elif p["type"] == "int":
            values[p["name"]] = trial.suggest_int(p["name"], int(p["low"]), int(p["high"]), log=p["log"])
        else:
            values[p["name"]] = trial.suggest_float(p["name"], p["low"], p["high"], log=p["log"])
    return values


def as_overrides(params: dict[str, Any]) -> list[str]:
    return [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()]


def default_study_name(spec: TuneSpec, settings: dict[str, Any]) -> str:
    """`lora-sst2-tiny-roberta-1a2b3c`: readable, and different settings never share a study."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:6]
    model = Path(spec.model).name if spec.model else "default"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{spec.method}-{spec.task}-{model}-{digest}")


def check_study_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UsageError(f"--study {name!r}: use letters, digits, '_', '.' and '-' only")
    return name


# ---------------------------------------------------------------- the runner side


class TrialCallback:
    """Tags the run record with its study and trial, reports each epoch's score, prunes when told."""

    def __init__(self, trial: Any, study: str, metric: str, report: bool, trials: int = 0):
        self.trial, self.study, self.metric, self.report, self.trials = trial, study, metric, report, trials

    def tag(self, record: dict[str, Any]) -> dict[str, Any]:
        """`hooks.tune`: outside the comparability key; `trials` is the study's total asked for when this trial ran."""
        tag = {"study": self.study, "trial": self.trial.number, "trials": self.trials, "params": dict(self.trial.params)}
        return record["hooks"].setdefault("tune", tag)

    def on_step_end(self, state: Any) -> None:
        self.tag(state.record)

    def on_epoch_end(self, state: Any, entry: dict[str, Any]) -> None:
        from peftbench.records.schema import main_metric_name

        self.tag(state.record)
        name = main_metric_name(entry.get("metrics") or {}, self.metric)
        value = entry["metrics"][name]["value"] if name else None
        if not self.report or value is None or not math.isfinite(value):
            return
        self.trial.report(value, entry["epoch"])
        if self.trial.should_prune():
            import optuna

            self.tag(state.record).update(pruned=True, pruned_at_epoch=entry["epoch"])
            raise optuna.TrialPruned(f"pruned at epoch {entry['epoch']} ({name} {value:.4g})")


def metric_value(record: dict[str, Any], metric: str) -> float | None:
    from peftbench.records.schema import main_metric_name

    metrics = record.get("metrics") or {}
    name = main_metric_name(metrics, metric)
    value = metrics[name]["value"] if name else None
    return value if value is not None and math.isfinite(value) else None


# ---------------------------------------------------------------- the study


def open_study(spec: TuneSpec, store: Any, name: str, direction: str) -> Any:
    optuna = optuna_module()
    if spec.storage:
        storage = spec.storage
    else:
        path = store.study_path(name, ".db")
        path.parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{path.resolve()}"
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True)
    except Exception as exc:  # a bad URL or an unreachable database: a usage error, before any work
        raise UsageError(f"--storage: cannot open the study {name!r}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    pruner = {
        "median": optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP, n_warmup_steps=0),
        "halving": optuna.pruners.SuccessiveHalvingPruner(),
        "none": optuna.pruners.NopPruner(),
    }[spec.pruner]
    sampler = optuna.samplers.TPESampler(seed=SAMPLER_SEED + len(study.trials), n_startup_trials=TPE_STARTUP)
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)


def claim_settings(study: Any, settings: dict[str, Any], name: str) -> None:
    """A study keeps its settings: resuming it with another budget or space would mix incomparable trials."""
    before = study.user_attrs.get("settings")
    if before is None:
        study.set_user_attr("settings", settings)
    elif json.loads(json.dumps(before)) != json.loads(json.dumps(settings, default=str)):
        changed = sorted(k for k in settings if before.get(k) != json.loads(json.dumps(settings[k], default=str)))
        raise UsageError(f"study {name} was run with other settings ({', '.join(changed)} differ); use another --study name")


def fail_orphans(study: Any) -> int:
    """Trials left RUNNING by a process of this host that is gone (an interruption, a kill): FAIL, to be re-run."""
    from optuna.trial import TrialState

    host, n = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs
        pid = owner.get("pid")
        if owner.get("host") == host and not (isinstance(pid, int) and pid != os.getpid() and pid_alive(pid)):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            n += 1
    return n


def counted(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def tune(spec: TuneSpec, store: Any, out: Any = None) -> Outcome:
    """Run the missing trials of the study, write its summary, return it."""
    from peftbench.config.resolve import resolve_run
    from peftbench.tasks.base import task_specs
    from peftbench.tasks.metrics import metric_for

    if spec.trials < 1:
        raise UsageError(f"--trials must be >= 1, got {spec.trials}")
    if spec.seeds < 1 or (spec.budget_steps is not None and spec.budget_steps < 1):
        raise UsageError("--seeds and --budget-steps must be >= 1")
    if spec.pruner not in PRUNERS:
        raise UsageError(f"--pruner must be one of {', '.join(PRUNERS)}")
    space = space_of(spec.method)
    metric = spec.metric or task_specs().get(spec.task).main_metric
    direction = "maximize" if metric_for(metric).higher_is_better else "minimize"
    fixed = spec.fixed_overrides()
    base = resolve_run(
        spec.method, spec.task, spec.model, preset=spec.preset, overrides=fixed, data_dir=spec.data_dir, results_dir=str(store.root)
    )
    # (a typo fails above, before a study exists)
    settings = spec.settings(space) | {"model": base.config.model, "metric": metric}
    name = check_study_name(spec.study) if spec.study else default_study_name(spec, settings)
    store.check_writable()
    study = open_study(spec, store, name, direction)
    claim_settings(study, settings, name)
    orphans = fail_orphans(study)
    done = counted(study)
    print(
        f"tune {name}: {spec.method}/{spec.task}/{base.config.model}, {metric} ({direction}), {done} of {spec.trials} trials done"
        + (f", {orphans} interrupted trial(s) marked failed" if orphans else "")
        + f"; budget per trial: {budget_text(base.config.training)}",
        file=out,
        flush=True,
    )
    outcome = Outcome(name, {})
    ctx = TrialContext(spec, store, name, metric, base.config.model, out)
    while counted(study) < spec.trials:
        if len(outcome.failed) >= spec.trials:
            break  # every attempt fails: stop rather than loop (the failures are listed)
        ran = run_trial(study, space, ctx, outcome)
        outcome.ran += ran
    outcome.summary = write_summary(study, spec, store, name, metric, direction, settings)
    return outcome


@dataclass
class TrialContext:
    spec: TuneSpec
    store: Any
    study: str
    metric: str
    model: str
    out: Any = None
    cache: Any = None


def run_trial(study: Any, space: list[dict[str, Any]], ctx: TrialContext, outcome: Outcome) -> int:
    """Ask, run the trial's seeds, tell. Returns 1 (a trial ran, whatever its end)."""
    import optuna
    from optuna.trial import TrialState

    trial = study.ask()
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    params = suggest(trial, space)
    try:
        values = trial_values(trial, params, ctx)
    except UsageError as exc:  # a sampled point the model cannot take (a prefix too long): the space is wrong for it
        study.tell(trial, state=TrialState.FAIL)
        outcome.failed.append(f"trial {trial.number} {params}: {exc}")
        print(f"  trial {trial.number}: invalid point {params}: {exc}", file=ctx.out, flush=True)
        return 1
    except RunFailed as exc:
        if isinstance(exc.__cause__, optuna.TrialPruned):
            study.tell(trial, state=TrialState.PRUNED)
            print(f"  trial {trial.number}: {fmt(params)} pruned ({exc.__cause__})", file=ctx.out, flush=True)
            return 1
        study.tell(trial, state=TrialState.FAIL)
        outcome.failed.append(f"trial {trial.number} {params}: {str(exc).splitlines()[0]}")
        print(f"  trial {trial.number}: {fmt(params)} failed: {str(exc).splitlines()[0]}", file=ctx.out, flush=True)
        return 1
    except (RunInterrupted, KeyboardInterrupt):
        study.tell(trial, state=TrialState.FAIL)  # re-run next time: an interruption is not a result
        raise
    if any(v is None for v in values):
        study.tell(trial, state=TrialState.FAIL)
        outcome.failed.append(f"trial {trial.number} {params}: no finite {ctx.metric}")
        return 1
    value = sum(values) / len(values)
    study.tell(trial, value)
    print(f"  trial {trial.number}: {fmt(params)} -> {ctx.metric} {value:.4f}", file=ctx.out, flush=True)
    return 1


def trial_values(trial: Any, params: dict[str, Any], ctx: TrialContext) -> list[float | None]:
    """Run one trial's seeds (each an ordinary run record, tagged by `TrialCallback`); their scores, in seed order."""
    from peftbench.config.resolve import resolve_run
    from peftbench.run import runner

    ctx.cache = ctx.cache or runner.LoadCache()
    values, run_ids = [], []
    for seed in range(ctx.spec.seeds):
        resolved = resolve_run(
            ctx.spec.method,
            ctx.spec.task,
            ctx.spec.model,
            preset=ctx.spec.preset,
            overrides=[*ctx.spec.fixed_overrides(), *as_overrides(params), f"seed={seed}"],
            data_dir=ctx.spec.data_dir,
            results_dir=str(ctx.store.root),
        )
        callback = TrialCallback(trial, ctx.study, ctx.metric, report=seed == 0, trials=ctx.spec.trials)
        record = runner.run(resolved, store=ctx.store, callbacks=[callback], cache=ctx.cache)
        run_ids.append(record["run_id"])
        trial.set_user_attr("run_ids", run_ids)
        values.append(metric_value(record, ctx.metric))
    return values


def budget_text(train: Any) -> str:
    steps = f"{train.max_steps} steps" if train.max_steps else f"{train.epochs} epochs"
    return f"{steps} of batch {train.batch_size}"


def fmt(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


# ---------------------------------------------------------------- the summary and the preset


def write_summary(
    study: Any, spec: TuneSpec, store: Any, name: str, metric: str, direction: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """`<results>/studies/<study>.json`: what the `tuned:` preset and a best-so-far figure need."""
    from optuna.trial import TrialState

    from peftbench.records.store import write_record

    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best = (max if direction == "maximize" else min)(finished, key=lambda t: t.value) if finished else None
    summary = {
        "study": name,
        "method": spec.method,
        "task": spec.task,
        "model": settings["model"],
        "preset": spec.preset,
        "metric": metric,
        "direction": direction,
        "n_trials": counted(study),
        "best_trial": best.number if best else None,
        "best_value": best.value if best else None,
        "best_params": dict(best.params) if best else None,
        "best_sections": sections_of(spec.method, best.params) if best else None,
        "settings": settings,
        "storage": spec.storage.split("://")[0] + "://..." if spec.storage else str(store.study_path(name, ".db")),
        "trials": [
            {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params, "run_ids": t.user_attrs.get("run_ids", [])}
            for t in study.trials
        ],
    }
    path = store.study_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_record(path, summary)
    return summary


def sections_of(method: str, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Short names -> config sections, as `--set` would place them (so the preset applies exactly these)."""
    from peftbench.config.schema import GenerationConfig, TrainConfig, field_types, parse_set
    from peftbench.methods.config import CONFIGS

    classes = {"hyperparameters": CONFIGS.get(method), "training": TrainConfig, "generation": GenerationConfig}
    placed = parse_set([f"{k}=x" for k in params], {s: set(field_types(c)) for s, c in classes.items()})
    return {s: {k: params[k] for k in names} for s, names in placed.items() if names}


def read_summary(name: str, results_dir: str | None) -> dict[str, Any]:
    from peftbench.records.store import Store

    path = Store(results_dir and Path(results_dir)).study_path(name)
    if not path.is_file():
        raise UsageError(f"preset tuned:{name}: no study summary at {path} (run peftbench tune first, or pass --results-dir)")
    summary = read_json(path, "study summary")
    if not isinstance(summary, dict):
        raise UsageError(f"{path}: not a study summary")
    return summary


def tuned_presets(method_spec: Any, name: str, model: str, task: str | None, results_dir: str | None) -> list[Any]:
    """The `tuned:<study>` preset: the study's base preset (if any), then its best values."""
    from peftbench.config.schema import named_presets
    from peftbench.specs import Preset

    summary = read_summary(name, results_dir)
    if summary.get("method") != method_spec.name:
        raise UsageError(f"preset tuned:{name} tuned {summary.get('method')}, not {method_spec.name}")
    if (summary.get("model"), summary.get("task")) != (model, task):
        raise UsageError(f"preset tuned:{name} was tuned for {summary.get('model')} on {summary.get('task')}, not {model} on {task}")
    if not summary.get("best_sections"):
        raise UsageError(f"preset tuned:{name}: the study has no finished trial yet")
    base = named_presets(method_spec, summary["preset"], model, task) if summary.get("preset") else []
    sections = summary["best_sections"]
    return [*base, Preset(name=f"tuned:{name}", models=(model,), tasks=(task,) if task else (), **sections)]
