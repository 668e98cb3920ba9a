"""`peftbench compare A B`: pair two sets of runs and give each pair one outcome.

Runs pair by comparability key, then seed by seed: a key's seeds found on both sides make one pair, judged seed
by seed (`peftbench/regress/verdicts.py`), never by means against a spread. A seed of A with no run in B is
`missing`; a seed or a key of B with no run in A is `new`. For `compare` only (not `check`), a lone run of a key
on each side pairs whatever its seed (the note says so). Of several records of one key and seed, the latest
counts; `running` records are left out (not finished yet). Keys found on one side only pair by (method, task,
model) and are reported as *not comparable*, with what differs: the configuration (seed and preset label left out,
as in the key), a spec's content, or the data; a new key beside old keys that all found their partner is `new`.

A pair is judged in exact mode when every run in it records itself as deterministic and all share the versions
and machine fingerprint (`fingerprint`): then a rerun reproduces every score, and any difference is `changed`.

Outcomes, worst first (improvements come right after the failures, so a reader sees them):

  new failure       finished before, failed (or interrupted, or stale) now
  regressed         a quality metric, speed or memory worse beyond its tolerance
  changed           exact mode: a score differs at all; or an exact count or size differs
  missing           a configuration or seed of A with no finished-or-failed run in B
  not comparable    same method, task and model, different configuration, specs or data
  improved          better beyond the tolerance
  new               a configuration or seed of B that A does not have
  fixed             failed before, finished now
  still failing     failed on both sides
  within tolerance  every judged quantity within its tolerance
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from peftbench.records.schema import comparable_config, main_metric_name, processes_of
from peftbench.regress import verdicts as V
from peftbench.regress.runs import Run, latest

NEW_FAILURE, REGRESSED, CHANGED, MISSING = "new failure", "regressed", "changed", "missing"
NOT_COMPARABLE, IMPROVED, NEW = "not comparable", "improved", "new"
FIXED, STILL_FAILING, WITHIN = "fixed", "still failing", "within tolerance"
OUTCOMES = (NEW_FAILURE, REGRESSED, CHANGED, MISSING, NOT_COMPARABLE, IMPROVED, NEW, FIXED, STILL_FAILING, WITHIN)
FAILED = ("failed", "interrupted", "stale")  # a run that did not finish; `running` ones are not judged at all
VERSIONS = ("peftbench", "python", "torch", "transformers", "accelerate")
MACHINE = ("device", "device_name", "cpu", "cpu_capability", "threads", "processes", "dtype")


@dataclass
class Pair:
    """The outcome of one key (its seeds on both sides) or of one unpaired run, with the verdicts behind it."""

    outcome: str
    identity: tuple[str, str, str]
    a: list[Run]
    b: list[Run]
    verdicts: list[V.Verdict] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    note: str = ""
    exact: bool = False  # judged in exact mode
    mode: str = ""  # why exact mode applies or not

    @property
    def seeds(self) -> str:
        sa, sb = sorted({str(r.seed) for r in self.a}), sorted({str(r.seed) for r in self.b})
        return ",".join(sa or sb) if sa == sb or not sa or not sb else f"{','.join(sa)} vs {','.join(sb)}"

    @property
    def key(self) -> str:
        return (self.b or self.a)[0].key

    def to_dict(self) -> dict[str, Any]:
        method, task, model = self.identity
        return {
            "outcome": self.outcome,
            "method": method,
            "task": task,
            "model": model,
            "key": self.key,
            "seeds": self.seeds,
            "exact_mode": self.exact,
            "mode": self.mode,
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


# ---------------------------------------------------------------- pairing


def compare(a: list[Run], b: list[Run], cross_seed: bool = True) -> list[Pair]:
    """Every run of both sides in exactly one pair (see the module docstring). `cross_seed`: a lone run of a key on
    each side pairs whatever its seed (`compare`); `check` pairs by seed only, so a baseline seed is never missed."""
    a, b = latest(a), latest(b)
    by_key_a, by_key_b = _group(a, lambda r: r.key), _group(b, lambda r: r.key)
    pairs: list[Pair] = []
    for key in [k for k in by_key_a if k in by_key_b]:
        pairs += pair_key(by_key_a[key], by_key_b[key], cross_seed)
    only_a = [r for k, rs in by_key_a.items() if k not in by_key_b for r in rs]
    only_b = [r for k, rs in by_key_b.items() if k not in by_key_a for r in rs]
    pairs += pair_changed(only_a, only_b)
    return sorted(pairs, key=lambda p: (OUTCOMES.index(p.outcome), p.identity, p.seeds))


def _group(runs: Iterable[Run], by: Callable[[Run], Any]) -> dict[Any, list[Run]]:
    out: dict[Any, list[Run]] = defaultdict(list)
    for run in runs:
        out[by(run)].append(run)
    return dict(out)


def pair_key(a: list[Run], b: list[Run], cross_seed: bool = True) -> list[Pair]:
    """Runs of one key: the seeds on both sides make one pair, judged seed by seed; the others are missing or new."""
    seeds_a, seeds_b = _group(a, lambda r: r.seed), _group(b, lambda r: r.seed)
    common = [s for s in seeds_a if s in seeds_b]
    pairs = [judge([seeds_a[s][0] for s in common], [seeds_b[s][0] for s in common])] if common else []
    left_a = [r for s, rs in seeds_a.items() if s not in seeds_b for r in rs]
    left_b = [r for s, rs in seeds_b.items() if s not in seeds_a for r in rs]
    if cross_seed and not common and len(left_a) == 1 and len(left_b) == 1:
        pair = judge(left_a, left_b)
        pair.note = f"different seeds ({left_a[0].seed} vs {left_b[0].seed}): judged as samples of one configuration"
        return [pair]
    return pairs + [missing(r) for r in left_a] + [new(r) for r in left_b]


def missing(run: Run) -> Pair:
    return Pair(MISSING, run.identity, [run], [], note=f"seed {run.seed} only in A: no current run")


def new(run: Run, why: str = "") -> Pair:
    return Pair(NEW, run.identity, [], [run], note=why or f"seed {run.seed} only in B")


def pair_changed(only_a: list[Run], only_b: list[Run]) -> list[Pair]:
    """Keys on one side only, paired by method, task and model.

    A B run pairs, as not comparable, with an A run of its method, task and model whose key found no partner (same
    seed first, then the closest configuration); each A run serves once. A B run left over is `new` (a
    configuration beside ones that still match, or a new method); an A run left over is `missing`.
    """
    pairs: list[Pair] = []
    free = _group(only_a, lambda r: r.identity)
    for run_b in only_b:
        candidates = free.get(run_b.identity) or []
        if not candidates:
            pairs.append(new(run_b, f"seed {run_b.seed}: a configuration A does not have"))
            continue
        run_a = min(candidates, key=lambda r: (r.seed != run_b.seed, len(differences(r.record, run_b.record))))
        candidates.remove(run_a)
        pairs.append(not_comparable(run_a, run_b))
    return pairs + [missing(r) for rs in free.values() for r in rs]


def not_comparable(a: Run, b: Run) -> Pair:
    """What differs, and the metrics side by side (judged, for the reader; the outcome stays `not comparable`)."""
    pair = Pair(NOT_COMPARABLE, b.identity, [a], [b], differences=differences(a.record, b.record))
    if a.finished and b.finished:
        pair.verdicts = quality_verdicts([a], [b], exact=False)
    elif a.finished != b.finished:
        pair.note = f"status {a.status} -> {b.status}" + (f": {b.record.get('error')}" if b.record.get("error") else "")
    return pair


# ---------------------------------------------------------------- judging one pair


def judge(a: list[Run], b: list[Run]) -> Pair:
    """One key's runs on both sides, aligned by seed -> one outcome from statuses first, then the verdicts."""
    pair = Pair(WITHIN, (a or b)[0].identity, a, b)
    broke = [rb for ra, rb in zip(a, b, strict=True) if ra.finished and not rb.finished]
    if broke:
        pair.outcome = NEW_FAILURE
        pair.note = "; ".join(f"seed {r.seed} {r.status}: {r.record.get('error') or '-'}" for r in broke)
        return pair
    ok = [(ra, rb) for ra, rb in zip(a, b, strict=True) if ra.finished and rb.finished]
    if not ok:
        pair.outcome = FIXED if any(r.finished for r in b) else STILL_FAILING
        return pair
    ok_a, ok_b = [ra for ra, _ in ok], [rb for _, rb in ok]
    pair.exact, pair.mode = exact_mode(ok_a + ok_b)
    pair.verdicts = quality_verdicts(ok_a, ok_b, pair.exact) + speed_memory_verdicts(ok_a, ok_b) + exact_verdicts(ok_a[-1], ok_b[-1])
    pair.outcome = outcome_of(pair.verdicts)
    fixed = sum(not ra.finished and rb.finished for ra, rb in zip(a, b, strict=True))
    if fixed and pair.outcome == WITHIN:
        pair.outcome, pair.note = FIXED, f"{fixed} failed seed(s) before, none now"
    return pair


def outcome_of(verdicts: list[V.Verdict]) -> str:
    found = {v.verdict for v in verdicts}
    for verdict, outcome in ((V.REGRESSED, REGRESSED), (V.CHANGED, CHANGED), (V.IMPROVED, IMPROVED)):
        if verdict in found:
            return outcome
    return WITHIN


def fingerprint(run: Run) -> tuple[Any, ...] | None:
    """Versions and machine of a run that records itself deterministic; None when it does not (or is older)."""
    env = run.record.get("env") or {}
    if env.get("deterministic") is not True:
        return None
    return tuple(env.get(k) for k in VERSIONS) + tuple(env.get(k) for k in MACHINE)


def exact_mode(runs: list[Run]) -> tuple[bool, str]:
    """Whether these runs (one key) must reproduce each other exactly, and why (or why not)."""
    prints = [fingerprint(r) for r in runs]
    if any(p is None for p in prints):
        run = runs[prints.index(None)]
        env = run.record.get("env") or {}
        why = env.get("determinism") or "the record does not say whether the run was deterministic (older peftbench)"
        return False, f"tolerance mode: seed {run.seed} not deterministic ({why})"
    if len(set(prints)) > 1:
        names, first = VERSIONS + MACHINE, prints[0] or ()
        other = next(p for p in prints if p != first) or ()
        diff = [f"{n} {x} vs {y}" for n, x, y in zip(names, first, other, strict=True) if x != y]
        return False, "tolerance mode: versions or machine differ (" + ", ".join(diff) + ")"
    return True, "exact mode: same versions, machine and configuration, deterministic runs"


def quality_verdicts(a: list[Run], b: list[Run], exact: bool) -> list[V.Verdict]:
    """Every best-epoch metric present on both sides, the task's main metric first, seed by seed."""
    names = [n for n in _metric_names(a) if n in _metric_names(b)]
    main = main_metric_name({n: None for n in names}, a[0].record.get("main_metric") or "")
    names = sorted(names, key=lambda n: n != main)
    seeds = [r.seed for r in b]
    out = []
    for name in names:
        va, vb = [_metric(r, name) for r in a], [_metric(r, name) for r in b]
        if exact:
            out.append(V.exact_quality(name, seeds, va, vb))
        else:
            hib = (a[0].record["metrics"][name] or {}).get("higher_is_better")
            out.append(V.paired_quality(name, seeds, va, vb, hib))
    return out


def _metric_names(runs: list[Run]) -> list[str]:
    return list((runs[0].record.get("metrics") or {}).keys())


def _metric(run: Run, name: str) -> float | None:
    return ((run.record.get("metrics") or {}).get(name) or {}).get("value")


def machine(run: Run) -> tuple[Any, ...]:
    """What decides speed and memory besides the configuration: device, its name, CPU, threads (the host when the
    record does not name its CPU model)."""
    env = run.record.get("env") or {}
    host = run.record.get("host") if env.get("device") == "cpu" and not env.get("cpu") else None
    return (env.get("device"), env.get("device_name"), env.get("cpu"), env.get("threads"), host)


def speed_memory_verdicts(a: list[Run], b: list[Run]) -> list[V.Verdict]:
    """Relative step time and peak memory, seed by seed, on one machine only."""
    mem_name = "max_memory_allocated" if (a[0].record.get("env") or {}).get("device") == "cuda" else "peak_rss_bytes"
    rel_a, rel_b = [_relative_step(r) for r in a], [_relative_step(r) for r in b]
    mem_a, mem_b = [_measurement(r, mem_name) for r in a], [_measurement(r, mem_name) for r in b]
    machines = {machine(r) for r in a + b}
    if len(machines) > 1:
        why = "different machines (device, name, CPU, threads): " + " vs ".join(str(m) for m in sorted(machines, key=str))
        raw_a, raw_b = [_seconds_per_step(r) for r in a], [_seconds_per_step(r) for r in b]
        speed = V.unjudged("speed: seconds/step", "speed", raw_a, raw_b, why)
        return [speed, V.unjudged(f"memory: {mem_name}", "memory", mem_a, mem_b, why)]
    if None in rel_a or None in rel_b:
        why = "no relative step time in a record (older peftbench): raw step times are not judged, load moves them 6x"
        speed = V.unjudged("speed: seconds/step", "speed", [_seconds_per_step(r) for r in a], [_seconds_per_step(r) for r in b], why)
    else:
        speed = V.relative_speed("speed: step time / reference step", cast("list[dict]", rel_a), cast("list[dict]", rel_b))
    if None in mem_a or None in mem_b:
        memory = V.unjudged(f"memory: {mem_name}", "memory", mem_a, mem_b, "missing on one side")
    else:
        present_a, present_b = cast("list[float]", mem_a), cast("list[float]", mem_b)  # no None: checked above
        memory = V.median_ratio(f"memory: {mem_name}", "memory", present_a, present_b, V.MEMORY_TOLERANCE, V.MEMORY_FLOOR_BYTES)
    return [speed, memory]


def _relative_step(run: Run) -> dict[str, Any] | None:
    throughput = (run.record.get("measurements") or {}).get("train_throughput") or {}
    summary = throughput.get("relative_step") or {}
    return summary if summary.get("median") else None


def _seconds_per_step(run: Run) -> float | None:
    throughput = (run.record.get("measurements") or {}).get("train_throughput") or {}
    return (throughput.get("step_seconds") or {}).get("median") or throughput.get("seconds_per_step")


def _measurement(run: Run, name: str) -> float | None:
    value = (run.record.get("measurements") or {}).get(name)
    return float(value) if value else None


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
