"""`peftbench compare A B`: pair two sets of runs and give each pair one outcome.

Runs pair by comparability key and seed. When both sides hold several seeds of a key, the seeds are aggregated into
one pair (means, judged against the seeds' spread: `peftbench/regress/verdicts.py`); otherwise equal seeds pair, and a lone
run on each side pairs whatever its seed (the note says so). Of several records of one key and seed, the latest
counts; `running` records are left out (not finished yet). Keys found on one side only pair by (method, task, model)
and are reported as *not comparable*, with what differs: the configuration (seed and preset label left out, as in
the key), a spec's content, or the data. Outcomes, worst first:

  new failure       finished before, failed (or interrupted, or stale) now
  regressed         a quality metric, speed or memory worse beyond its noise, or an exact count or size changed
  not comparable    same method, task and model, different configuration, specs or data
  improved          better beyond the noise
  fixed             failed before, finished now
  still failing     failed on both sides
  within tolerance  every judged quantity within its noise
  missing           on one side only
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftbench.errors import UsageError
from peftbench.records.schema import comparable_config, effective_status, main_metric_name, processes_of
from peftbench.records.store import Entry, Store, read_record
from peftbench.regress import verdicts as V

NEW_FAILURE, REGRESSED, NOT_COMPARABLE, IMPROVED = "new failure", "regressed", "not comparable", "improved"
FIXED, STILL_FAILING, WITHIN, MISSING = "fixed", "still failing", "within tolerance", "missing"
OUTCOMES = (NEW_FAILURE, REGRESSED, NOT_COMPARABLE, IMPROVED, FIXED, STILL_FAILING, WITHIN, MISSING)
FAILED = ("failed", "interrupted", "stale")  # a run that did not finish; `running` ones are not judged at all


@dataclass(frozen=True)
class Run:
    """One record with the status it effectively has (stale included) and where it came from."""

    record: dict[str, Any]
    status: str
    origin: str

    @property
    def config(self) -> dict[str, Any]:
        return self.record.get("config") or {}

    @property
    def identity(self) -> tuple[str, str, str]:
        c = self.config
        return (str(c.get("method", "-")), str(c.get("task", "-")), str(c.get("model", "-")))

    @property
    def key(self) -> str:
        return str(self.record.get("key"))

    @property
    def seed(self) -> Any:
        return self.record.get("seed")

    @property
    def finished(self) -> bool:
        return self.status == "finished"


@dataclass
class Pair:
    """The outcome of one key (or one key and seed) across the two sides, with the verdicts behind it."""

    outcome: str
    identity: tuple[str, str, str]
    a: list[Run]
    b: list[Run]
    verdicts: list[V.Verdict] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def seeds(self) -> str:
        sa, sb = sorted({str(r.seed) for r in self.a}), sorted({str(r.seed) for r in self.b})
        return ",".join(sa or sb) if sa == sb or not sa or not sb else f"{','.join(sa)} vs {','.join(sb)}"

    def to_dict(self) -> dict[str, Any]:
        method, task, model = self.identity
        return {
            "outcome": self.outcome,
            "method": method,
            "task": task,
            "model": model,
            "seeds": self.seeds,
            "a": [_brief(r) for r in self.a],
            "b": [_brief(r) for r in self.b],
            "verdicts": [v.to_dict() for v in self.verdicts],
            "differences": self.differences,
            "note": self.note,
        }


def _brief(run: Run) -> dict[str, Any]:
    env = run.record.get("env") or {}
    return {
        "run_id": run.record.get("run_id"),
        "status": run.status,
        "key": run.key,
        "seed": run.seed,
        "commit": env.get("commit"),
        "origin": run.origin,
        "error": run.record.get("error"),
    }


# ---------------------------------------------------------------- selecting runs


def parse_where(items: Iterable[str]) -> dict[str, list[str]]:
    """`--where k=v` (repeatable; `k=v1,v2` matches either) -> {k: [v, ...]}."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--where expects KEY=VALUE (e.g. method=lora, seed=0, commit=abc123, training.lr=0.002), got {item!r}")
        out.setdefault(name.strip(), []).extend(v.strip() for v in value.split(","))
    return out


def field_of(record: dict[str, Any], name: str) -> Any:
    """A filterable field: `commit`, a dotted path (`config.training.lr`, `training.lr`), a top-level or config field,
    or a short hyperparameter or training name (`lr`, `r`)."""
    if name in ("commit", "dirty", "host", "device"):
        return (record.get("env") or {}).get(name) if name != "host" else record.get("host")
    config = record.get("config") or {}
    for root in (config, record) if name in ("method", "task", "model", "data", "preset") else (record, config):
        value: Any = root
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return value
    for section in ("training", "hyperparameters", "generation"):
        if name in (config.get(section) or {}):
            return config[section][name]
    return None


def matches(record: dict[str, Any], status: str, where: dict[str, list[str]]) -> bool:
    for name, wanted in where.items():
        value = status if name == "status" else field_of(record, name)
        if name == "commit":
            if not any(value and str(value).startswith(w) for w in wanted):
                return False
        elif str(value) not in wanted and not _numeric_match(value, wanted):
            return False
    return True


def _numeric_match(value: Any, wanted: list[str]) -> bool:
    try:
        return any(float(value) == float(w) for w in wanted)
    except (TypeError, ValueError):
        return False


def runs_in(root: Path, where: dict[str, list[str]] | None = None) -> list[Run]:
    """The run records under a results directory matching `where` (oldest first); `running` ones are left out."""
    entries = list(Store(root).entries("run")) + loose_entries(Path(root))
    return [Run(e.record, e.status, str(e.path)) for e in entries if e.status != "running" and matches(e.record, e.status, where or {})]


def loose_entries(folder: Path) -> list[Entry]:
    """Run records lying directly in a folder (records copied together by hand, test fixtures), oldest first."""
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = read_record(path)
        except UsageError:
            continue  # a baseline or another file: not a record
        if record.get("kind") == "run":
            out.append(Entry(path, record, effective_status(record)))
    return out


def load_side(spec: str, results: Path, where: dict[str, list[str]]) -> list[Run]:
    """One side of `compare`: a results directory, a baseline or record file, `commit:SHA` (records of that commit
    in the results directory) or `KEY=VALUE[,KEY=VALUE...]` filters on the results directory."""
    path = Path(spec)
    if path.is_dir():
        return runs_in(path, where)
    if path.is_file():
        from peftbench.regress.baselines import is_baseline, load_baseline

        if is_baseline(path):
            return [r for r in load_baseline(path).runs if matches(r.record, r.status, where)]
        record = read_record(path)
        return [Run(record, record.get("status", "finished"), str(path))]
    if spec.startswith("commit:"):
        return runs_in(results, {**where, "commit": [spec.removeprefix("commit:")]})
    if "=" in spec:
        extra = parse_where(spec.split(";") if ";" in spec else _split_filters(spec))
        return runs_in(results, {**where, **extra})
    raise UsageError(
        f"{spec!r} is not a directory, a record or baseline file, commit:SHA or KEY=VALUE filters "
        f"(e.g. commit:abc123, seed=0, training.lr=0.002)"
    )


def _split_filters(spec: str) -> list[str]:
    """`method=lora,task=mrpc` -> two filters; `seed=0,1` -> one filter with two values."""
    out: list[str] = []
    for piece in spec.split(","):
        if "=" in piece or not out:
            out.append(piece)
        else:
            out[-1] += "," + piece
    return out


def latest(runs: Iterable[Run]) -> list[Run]:
    """The latest record of every (key, seed): a re-run replaces what it re-ran."""
    best: dict[tuple[str, Any], Run] = {}
    for run in runs:
        slot = (run.key, run.seed)
        if slot not in best or str(run.record.get("created_at") or "") >= str(best[slot].record.get("created_at") or ""):
            best[slot] = run
    return list(best.values())


# ---------------------------------------------------------------- pairing


def compare(a: list[Run], b: list[Run]) -> list[Pair]:
    """Every run of both sides in exactly one pair (see the module docstring)."""
    a, b = latest(a), latest(b)
    by_key_a, by_key_b = _group(a, lambda r: r.key), _group(b, lambda r: r.key)
    pairs: list[Pair] = []
    for key in [k for k in by_key_a if k in by_key_b]:
        pairs += pair_key(by_key_a[key], by_key_b[key])
    only_a = [r for k, rs in by_key_a.items() if k not in by_key_b for r in rs]
    only_b = [r for k, rs in by_key_b.items() if k not in by_key_a for r in rs]
    pairs += pair_changed(only_a, only_b, a)
    return sorted(pairs, key=lambda p: (OUTCOMES.index(p.outcome), p.identity, p.seeds))


def _group(runs: Iterable[Run], by: Any) -> dict[Any, list[Run]]:
    out: dict[Any, list[Run]] = defaultdict(list)
    for run in runs:
        out[by(run)].append(run)
    return dict(out)


def pair_key(a: list[Run], b: list[Run]) -> list[Pair]:
    """Runs of one key: aggregated when both sides hold several seeds, else seed by seed."""
    if len(a) >= 2 and len(b) >= 2:
        return [judge(a, b)]
    seeds_a, seeds_b = _group(a, lambda r: r.seed), _group(b, lambda r: r.seed)
    pairs = [judge(seeds_a[s], seeds_b[s]) for s in seeds_a if s in seeds_b]
    left_a = [r for s, rs in seeds_a.items() if s not in seeds_b for r in rs]
    left_b = [r for s, rs in seeds_b.items() if s not in seeds_a for r in rs]
    if len(left_a) == 1 and len(left_b) == 1:
        pair = judge(left_a, left_b)
        pair.note = f"different seeds ({left_a[0].seed} vs {left_b[0].seed}): judged as samples of one configuration"
        return [*pairs, pair]
    return pairs + [missing(r, "a") for r in left_a] + [missing(r, "b") for r in left_b]


def missing(run: Run, side: str) -> Pair:
    return Pair(MISSING, run.identity, [run] if side == "a" else [], [run] if side == "b" else [], note=f"only in {side.upper()}")


def pair_changed(only_a: list[Run], only_b: list[Run], all_a: list[Run]) -> list[Pair]:
    """Keys on one side only, paired by method, task and model as not comparable.

    A new-side run pairs with an old-side run of its method, task and model whose key found no partner (the closest
    configuration, same seed first), else with any old-side run of them (a configuration that appeared beside ones
    that still match is a change too); with none, it is missing on the old side. An old-side key left without a
    partner is missing on the new side (that configuration was not run).
    """
    pairs: list[Pair] = []
    free_a, every_a = _group(only_a, lambda r: r.identity), _group(all_a, lambda r: r.identity)
    used: set[int] = set()
    for run_b in only_b:
        candidates = free_a.get(run_b.identity) or every_a.get(run_b.identity) or []
        if not candidates:
            pairs.append(missing(run_b, "b"))
            continue
        run_a = min(candidates, key=lambda r: (r.seed != run_b.seed, len(differences(r.record, run_b.record))))
        used.add(id(run_a))
        pairs.append(not_comparable(run_a, run_b))
    return pairs + [missing(r, "a") for r in only_a if id(r) not in used]


def not_comparable(a: Run, b: Run) -> Pair:
    """What differs, and the metrics side by side (judged, for the reader; the outcome stays `not comparable`)."""
    pair = Pair(NOT_COMPARABLE, b.identity, [a], [b], differences=differences(a.record, b.record))
    if a.finished and b.finished:
        pair.verdicts = quality_verdicts([a], [b])
    elif a.finished != b.finished:
        pair.note = f"status {a.status} -> {b.status}" + (f": {b.record.get('error')}" if b.record.get("error") else "")
    return pair


# ---------------------------------------------------------------- judging one pair


def judge(a: list[Run], b: list[Run]) -> Pair:
    """One key's runs on both sides -> one outcome from statuses first, then the verdicts."""
    ident = (a or b)[0].identity
    ok_a, ok_b = [r for r in a if r.finished], [r for r in b if r.finished]
    failed_a, failed_b = len(a) - len(ok_a), len(b) - len(ok_b)
    pair = Pair(WITHIN, ident, a, b)
    if failed_b and not failed_a:
        pair.outcome = NEW_FAILURE
        pair.note = "; ".join(f"seed {r.seed} {r.status}: {r.record.get('error') or '-'}" for r in b if not r.finished)
        return pair
    if not ok_a or not ok_b:
        pair.outcome = FIXED if ok_b else STILL_FAILING
        return pair
    pair.verdicts = quality_verdicts(ok_a, ok_b) + speed_memory_verdicts(ok_a, ok_b) + exact_verdicts(ok_a[-1], ok_b[-1])
    if any(v.bad for v in pair.verdicts):
        pair.outcome = REGRESSED
    elif any(v.verdict == V.IMPROVED for v in pair.verdicts):
        pair.outcome = IMPROVED
    if failed_a:
        pair.outcome, pair.note = FIXED, f"{failed_a} failed seed(s) before, none now"
    return pair


def quality_verdicts(a: list[Run], b: list[Run]) -> list[V.Verdict]:
    """Every best-epoch metric present on both sides, the task's main metric first."""
    names = [n for n in _metric_names(a) if n in _metric_names(b)]
    main = main_metric_name({n: None for n in names}, a[0].record.get("main_metric") or "")
    names = sorted(names, key=lambda n: n != main)
    out = []
    for name in names:
        hib = (a[0].record["metrics"][name] or {}).get("higher_is_better")
        out.append(V.quality(name, [_metric(r, name) for r in a], [_metric(r, name) for r in b], hib))
    return out


def _metric_names(runs: list[Run]) -> list[str]:
    return list((runs[0].record.get("metrics") or {}).keys())


def _metric(run: Run, name: str) -> float | None:
    return ((run.record.get("metrics") or {}).get(name) or {}).get("value")


def machine(run: Run) -> tuple[Any, ...]:
    """What decides speed and memory besides the configuration: the device, its name, threads, and the CPU's host."""
    env = run.record.get("env") or {}
    host = run.record.get("host") if env.get("device") == "cpu" else None
    return (env.get("device"), env.get("device_name"), env.get("threads"), host)


def speed_memory_verdicts(a: list[Run], b: list[Run]) -> list[V.Verdict]:
    machines = {machine(r) for r in a + b}
    (sa, va), (sb, vb) = _speed(a), _speed(b)
    speed = V.ratio("speed: train seconds/step", "speed", sa, sb, va, vb)
    mem_name = "max_memory_allocated" if (a[0].record.get("env") or {}).get("device") == "cuda" else "peak_rss_bytes"
    (ma, xa), (mb, xb) = _runs_spread(a, mem_name), _runs_spread(b, mem_name)
    memory = V.ratio(f"memory: {mem_name}", "memory", ma, mb, xa, xb)
    if len(machines) > 1:
        why = "different machines (device, name, threads, host): " + " vs ".join(str(m) for m in sorted(machines, key=str))
        return [V.Verdict(v.quantity, v.kind, v.a, v.b, v.change, V.UNJUDGED, why) for v in (speed, memory)]
    return [speed, memory]


def _speed(runs: list[Run]) -> tuple[V.Spread | None, float | None]:
    """Seconds per step of one side: from the runs' spread when there are several, else from the run's own steps."""
    per_run = [(r.record.get("measurements") or {}).get("train_throughput") or {} for r in runs]
    values = [t["seconds_per_step"] for t in per_run if t.get("seconds_per_step")]
    if len(values) >= 2:
        spread = V.spread_of_runs(values)
        return spread, spread.center if spread else None
    steps = V.spread_of_steps(per_run[0].get("step_seconds")) if per_run else None
    return steps, (steps.center if steps else values[0] if values else None)


def _runs_spread(runs: list[Run], name: str) -> tuple[V.Spread | None, float | None]:
    values = [float(v) for r in runs if (v := (r.record.get("measurements") or {}).get(name))]
    if not values:
        return None, None
    spread = V.spread_of_runs(values)
    return spread, spread.center if spread else values[0]


def exact_verdicts(a: Run, b: Run) -> list[V.Verdict]:
    """Parameter counts, checkpoint bytes and the analytic memory breakdown: decided by the configuration alone."""
    pa, pb = a.record.get("params") or {}, b.record.get("params") or {}
    ma, mb = a.record.get("measurements") or {}, b.record.get("measurements") or {}
    out = [V.exact(f"params.{k}", pa.get(k), pb.get(k)) for k in ("method", "head", "trainable", "total")]
    out.append(V.exact("checkpoint_bytes", ma.get("checkpoint_bytes"), mb.get("checkpoint_bytes")))
    ba, bb = ma.get("memory_breakdown_bytes") or {}, mb.get("memory_breakdown_bytes") or {}
    out += [V.exact(f"memory_breakdown.{k}", ba.get(k), bb.get(k)) for k in ("weights", "gradients", "optimizer_state")]
    return [v for v in out if v.verdict != V.UNJUDGED]


# ---------------------------------------------------------------- what differs between two configurations


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What makes two runs' keys differ: config values (seed and preset label left out), spec contents, data splits."""
    out = [
        f"config {k}: {_show(va)} -> {_show(vb)}"
        for k, va, vb in _diff(_flat(comparable_config(a.get("config") or {})), _flat(comparable_config(b.get("config") or {})))
    ]
    pa, pb = a.get("key_parts") or {}, b.get("key_parts") or {}
    sa, sb = pa.get("specs"), pb.get("specs")
    if sa != sb:
        if sa is None or sb is None:
            out.append(f"spec contents not recorded on the {'A' if sa is None else 'B'} side (a schema-1 record)")
        else:
            out += [f"{name} spec content changed" for name in sorted(set(sa) | set(sb)) if sa.get(name) != sb.get(name)]
    da, db = pa.get("data") or {}, pb.get("data") or {}
    out += [f"data split {s} changed" for s in sorted(set(da) | set(db)) if da.get(s) != db.get(s)]
    if processes_of(a) != processes_of(b):
        out.append(f"processes: {processes_of(a)} -> {processes_of(b)} (batch_size is per process)")
    if not out and pa.get("config") != pb.get("config"):
        out.append("configuration hash differs (the configurations' layout changed)")
    return out or ["keys differ but no part could be told apart"]


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    missing_value = object()
    rows = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, missing_value), b.get(k, missing_value)
        if va != vb:
            rows.append((k, "(absent)" if va is missing_value else va, "(absent)" if vb is missing_value else vb))
    return rows


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) and value != "(absent)" else str(value)
