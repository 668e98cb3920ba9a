"""From the store to comparable groups: which records a report covers and how seeds are pooled.

Run records are grouped by the comparability key (model, task and method come with it): the
seeds of one configuration pool into one cell; records of different keys under one method label
stay separate rows, each labelled with what differs (`variant`), never averaged together.
Aggregation follows the paper: GLUE (Table 2) reports the median over seeds, the data-to-text
tables (3, 13, 14) the mean; both show the standard deviation over seeds and the number of seeds.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftbench.errors import UsageError
from peftbench.paper.protocol import Decoding, RunProtocol
from peftbench.records.query import parse_where as parse_where  # re-exported: the one --where grammar
from peftbench.records.schema import comparable_config, main_metric_name
from peftbench.records.store import STUDIES, Entry, Store
from peftbench.report.uncertainty import NONE, Interval, seed_interval

MEASUREMENT_KEYS = {"method", "model"}  # latency/profile records have a model and methods, no task


def describe_where(where: dict[str, list[str]]) -> str:
    """The filter in words a reader can scan: a long list of values (a sweep's keys) is counted, not spelled out."""
    parts = []
    for k, v in where.items():
        if k == "key" and len(v) > 3:
            parts.append(f"{len(v)} configurations")
        else:
            parts.append(f"{k}={', '.join(v)}")
    return "; ".join(parts) or "(no filter)"


@dataclass
class Group:
    """The finished runs of one configuration (one comparability key), one per seed."""

    model: str
    task: str
    method: str
    key: str
    records: list[dict[str, Any]]
    variant: str = ""  # what sets this group apart from others of the same model/method (empty when nothing does)
    duplicates: int = 0  # runs of an already-counted seed (the newest run of a seed is kept)
    preset_text: str = "spec"  # where the values came from: the spec's own, a named preset, or a tuned one with its trials

    @property
    def seeds(self) -> list[int | None]:
        """The runs' seeds, ascending; a run with no seed recorded (null) last."""
        return sorted((r.get("seed") for r in self.records), key=lambda s: (s is None, s or 0))

    @property
    def preset(self) -> str | None:
        """The named preset the runs used (`repo`, `tuned:<study>`...); None: the spec's own values."""
        return next((p for r in self.records if (p := (r.get("config") or {}).get("preset"))), None)

    @property
    def params(self) -> int | None:
        counts = [(r.get("params") or {}).get("method") for r in self.records]
        return next((c for c in counts if c is not None), None)

    def values(self, metric: str | None) -> list[float]:
        """Raw values of `metric` (None: the task's main metric) over the seeds, missing ones left out."""
        out = []
        for r in self.records:
            metrics = r.get("metrics") or {}
            name = main_metric_name(metrics, r.get("main_metric") or "") if metric is None else metric
            value = (metrics.get(name) or {}).get("value") if name else None
            if value is not None:
                out.append(float(value))
        return out

    def eval_examples(self) -> int | None:
        """Examples the runs were scored on (the first evaluation split, capped by max_eval_examples)."""
        record = self.records[0]
        total = split_size(record, eval_split_of(self.task))
        cap = ((record.get("config") or {}).get("training") or {}).get("max_eval_examples") or 0
        return min(cap, total) if cap and total else (cap or total or None)

    def run_protocol(self) -> RunProtocol:
        """What these runs did, in the terms of the paper's protocols (all seeds of a key share it)."""
        record = self.records[0]
        config = record.get("config") or {}
        training, gen = config.get("training") or {}, config.get("generation") or {}
        split = eval_split_of(self.task)
        decoding = None
        if gen:
            decoding = Decoding(
                int(gen.get("num_beams") or 1),
                float(gen.get("length_penalty") or 1.0),
                int(gen.get("no_repeat_ngram_size") or 0),
                int(gen.get("max_new_tokens") or 0),
            )
        return RunProtocol(
            model=self.model,
            data=str(config.get("data") or ""),
            train_split=str(training.get("train_split") or "train"),
            train_examples=training.get("max_train_examples") or None,
            eval_split=split.removesuffix("_matched"),
            eval_examples=training.get("max_eval_examples") or None,
            eval_total=split_size(record, split),
            epochs=training.get("epochs"),
            max_steps=training.get("max_steps") or None,
            params=self.params,
            decoding=decoding,
        )

    def measurement(self, path: tuple[str, ...]) -> list[float]:
        out = []
        for r in self.records:
            node: Any = r.get("measurements") or {}
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, (int, float)):
                out.append(float(node))
        return out


def eval_split_of(task: str) -> str:
    """The split a task's main score comes from (its spec's first evaluation split)."""
    from peftbench.tasks.base import task_specs  # the spec files, read once per process

    specs = task_specs()
    return specs.get(task).eval_splits[0] if task in specs else "validation"


def split_size(record: dict[str, Any], split: str) -> int | None:
    size = (((record.get("data") or {}).get("splits") or {}).get(split) or {}).get("examples")
    return int(size) if isinstance(size, (int, float)) else None


@dataclass(frozen=True)
class Cell:
    """One aggregated number: `value` (median or mean), `spread` (standard deviation over seeds), `n` seeds,
    and the `interval` that says how far to trust it (see report/uncertainty.py)."""

    value: float | None
    spread: float | None
    n: int
    interval: Interval = NONE


def aggregate(values: list[float], rule: str, scale: float = 1.0) -> Cell:
    if not values:
        return Cell(None, None, 0)
    scaled = [v * scale for v in values]
    centre = statistics.median(scaled) if rule == "median" else statistics.fmean(scaled)
    spread = statistics.stdev(scaled) if len(scaled) > 1 else None
    return Cell(centre, spread, len(scaled), seed_interval(scaled, rule))


@dataclass
class Selection:
    """What a report covers: groups of finished runs, latency and profile records, and what was left out."""

    where: dict[str, list[str]]
    groups: list[Group]
    latency: list[dict[str, Any]] = field(default_factory=list)
    profile: list[dict[str, Any]] = field(default_factory=list)
    unfinished: dict[str, int] = field(default_factory=dict)  # effective status -> count of runs left out
    trials: int = 0  # finished tuning-trial runs: shown through their studies, not as score rows
    studies: list[dict[str, Any]] = field(default_factory=list)  # `<results>/studies/*.json` summaries of the selection

    def study(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.studies if s.get("study") == name), None)

    @property
    def runs(self) -> int:
        return sum(len(g.records) for g in self.groups)


def select(root: Path, where: dict[str, list[str]]) -> Selection:
    """Read the store once; raise `UsageError` (exit 2) naming the filter when nothing matches."""
    store = Store(root)
    entries = list(store.entries("run", **where))  # type: ignore[arg-type]  # field -> accepted values, as `entries` takes them
    finished = [e for e in entries if e.status == "finished" and not tune_tag(e.record)]
    trials = sum(1 for e in entries if e.status == "finished" and tune_tag(e.record))
    unfinished: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.status != "finished" and not tune_tag(e.record):
            unfinished[e.status] += 1
    latency = measurements(store, "latency", where)
    profile = measurements(store, "profile", where)
    studies = study_summaries(store, where)
    if not finished and not latency and not profile and not studies:
        found = f"; {len(entries)} match but none finished" if entries else ""
        raise UsageError(f"report: no records match {describe_where(where)} in {root}{found}")
    groups = label_variants(group(finished))
    for g in groups:
        g.preset_text = describe_preset(g.preset, studies)
    return Selection(where, groups, latency, profile, dict(sorted(unfinished.items())), trials, studies)


def describe_preset(preset: str | None, studies: list[dict[str, Any]]) -> str:
    """`spec` (the method spec's values: the paper's for the paper's models), a named preset, or
    `tuned:<study> (N trials)`: the report says which rows were tuned, and how hard."""
    if not preset:
        return "spec"
    if preset.startswith("tuned:"):
        summary = next((s for s in studies if s.get("study") == preset.removeprefix("tuned:")), None)
        n = summary.get("n_trials") if summary else None
        return f"{preset} ({n} trial{'' if n == 1 else 's'})" if n is not None else f"{preset} (study not in the selection)"
    return preset


def tune_tag(record: dict[str, Any]) -> dict[str, Any] | None:
    """`hooks.tune` of a tuning trial's run (peftbench tune); None for every other run."""
    return (record.get("hooks") or {}).get("tune")


def study_summaries(store: Store, where: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The tuning studies of the filter's methods, tasks and models (their summaries, written by `peftbench tune`)."""
    folder = store.root / STUDIES
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a summary being rewritten, or not one: the study's runs still count
        if all(not where.get(k) or str(summary.get(k)) in where[k] for k in ("method", "task", "model")):
            out.append(summary)
    return out


def measurements(store: Store, kind: str, where: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Latency or profile records of the filter's models and methods, the newest of each key (a repeat replaces)."""
    if set(where) - MEASUREMENT_KEYS:
        return []  # a task (or seed, key...) filter asks for runs; measurements have none
    models, methods = where.get("model"), where.get("method")
    newest: dict[str, dict[str, Any]] = {}
    for e in store.entries(kind):
        r = e.record
        if models and r.get("model") not in models:
            continue
        if methods and not set(methods) & set(r.get("methods") or []):
            continue
        newest[r.get("key") or e.path.stem] = r
    return sorted(newest.values(), key=lambda r: (r.get("model") or "", r.get("key") or ""))


def group(entries: list[Entry]) -> list[Group]:
    """One group per (model, task, method, key); one run per seed, the newest (by creation time)."""
    by_key: dict[tuple[Any, Any, Any, Any], list[dict[str, Any]]] = defaultdict(list)  # schema-checked strings
    for e in entries:
        cfg = e.record.get("config") or {}
        by_key[(cfg.get("model"), cfg.get("task"), cfg.get("method"), e.record.get("key"))].append(e.record)
    groups = []
    for (model, task, method, key), records in sorted(by_key.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        per_seed: dict[Any, dict[str, Any]] = {}
        for r in sorted(records, key=lambda r: (r.get("created_at") or "", r.get("run_id") or "")):
            per_seed[r.get("seed")] = r
        kept = [per_seed[s] for s in sorted(per_seed, key=str)]
        groups.append(Group(model, task, method, key, kept, duplicates=len(records) - len(kept)))
    return groups


# ---------------------------------------------------------------- what differs


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): node}


def short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def render_value(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(str(v) for v in value)
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def differing(configs: list[dict[str, Any]]) -> list[str]:
    """Flattened keys whose values are not the same in every config, in a stable order."""
    keys = sorted({k for c in configs for k in c})
    return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def label_variants(groups: list[Group]) -> list[Group]:
    """Name each group by what sets it apart from the other groups of its model and method.

    First the method's hyperparameters that differ across all of that (model, method)'s groups (so
    one configuration keeps one label over every task); then, within one task, whatever else still
    differs (training settings, data, specs) between groups sharing that label.
    """
    by_method: dict[tuple[str, str], list[Group]] = defaultdict(list)
    for g in groups:
        by_method[(g.model, g.method)].append(g)
    for members in by_method.values():
        hps = [flatten((g.records[0].get("config") or {}).get("hyperparameters") or {}) for g in members]
        keys = differing(hps)
        for g, hp in zip(members, hps, strict=True):
            g.variant = ", ".join(f"{short(k)}={render_value(hp.get(k))}" for k in keys)
        by_task: dict[tuple[str, str], list[Group]] = defaultdict(list)
        for g in members:
            by_task[(g.task, g.variant)].append(g)
        for clash in by_task.values():
            if len(clash) > 1:
                label_within_task(clash)
    return groups


def label_within_task(clash: list[Group]) -> None:
    """Groups of one task and one hyperparameter label that still differ: say by what."""
    configs = [flatten(comparable_config(g.records[0].get("config") or {})) for g in clash]
    keys = [k for k in differing(configs) if not k.startswith("hyperparameters.")]
    parts_of = [g.records[0].get("key_parts") or {} for g in clash]
    for g, cfg, parts in zip(clash, configs, parts_of, strict=True):
        extra = [f"{short(k)}={render_value(cfg.get(k))}" for k in keys]
        if not extra:
            others = [p for p in parts_of if p is not parts]
            for part in ("specs", "data"):
                if any(p.get(part) != parts.get(part) for p in others):
                    extra.append(f"{part} differ")
        extra.append(f"key {g.key[:8]}")
        g.variant = ", ".join(x for x in [g.variant, *extra] if x)
