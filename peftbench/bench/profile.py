"""`peftbench profile`: one training step per method, side by side, against `ft` and the floor.

For every method: the wall time of a training step (forward, loss, backward, AdamW step,
zero_grad), its ratio to `ft`'s step and to the floor's, the step's peak memory, the optimizer
state actually allocated (AdamW's tensors after the steps, measured), and the trainable parameters.

The *floor* is the same frozen model with gradients taken only with respect to the input
embeddings (`inputs_embeds.requires_grad_()`): a forward pass plus the backward pass through
every layer's activations, with no parameter gradient and no optimizer. A method that trains
anything in the first layer needs at least that backward, so no such method can beat it.

Step times: paired, in this one process. Every *variant* (the floor and each method) gets its own
copy of the same random-init model (the real shape, no download) and, for a method, its own AdamW.
After warm-up rounds, each timed round runs one training step of every variant, in an order rotated
by one position from round to round (`common.rotated_rounds`, the design `peftbench latency` uses),
so slow machine drift falls on all variants alike. Per variant: the median step time and its IQR,
and the median of the per-round paired ratios t_variant / t_ft and t_variant / t_floor, with the
ratios' quartiles as their spread. With as many rounds as variants (or a multiple), every variant
sits at every position equally often.

Peak memory: a fresh process per variant (`python -m peftbench.bench.profile JOB.json OUT.json`), after
the timing: on CPU the peak RSS only grows within a process, and on CUDA a fresh process also starts
from an empty caching allocator. `--no-memory` skips those processes (no peak memory then).
"""

from __future__ import annotations

import copy
import gc
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from peftbench.bench import common, measure
from peftbench.bench.common import check_methods, parse_dtype, pick_device
from peftbench.bench.options import PROFILE_ROUNDS, ProfileOptions
from peftbench.bench.variants import FLOOR, TrainVariant, Workload, build_variant, workload
from peftbench.config.resolve import resolve_measurement
from peftbench.errors import UsageError
from peftbench.paper import REFERENCE_METHOD
from peftbench.records.env import environment
from peftbench.records.schema import measurement_header
from peftbench.records.store import save_measurement
from peftbench.tables import render_table

FLOOR_LABEL = "floor (frozen; grad w.r.t. input embeddings only)"
MEMORY_STEPS = 2  # the first step allocates AdamW's state; the second runs with it already held
COMMAND = "peftbench latency and profile"  # how a misrouted `--set` names the commands that route it
WORKER = ("-m", "peftbench.bench.profile")  # `python -m peftbench.bench.profile JOB.json OUT.json`


# ---------------------------------------------------------------- peak memory: a fresh process per variant


@dataclass(frozen=True)
class Job:
    """One peak-memory measurement, in its own process: `method` None is the floor."""

    model: str
    method: str | None
    overrides: tuple[str, ...] = ()
    batch: int = 8
    seq: int = 128
    steps: int = MEMORY_STEPS
    seed: int = 0
    cpu: bool = False
    threads: int | None = None
    dtype: str = "fp32"


VariantBuilder = Callable[[Job, Workload, torch.device, torch.dtype], TrainVariant]


def method_variant(job: Job, work: Workload, device: torch.device, dtype: torch.dtype) -> TrainVariant:
    """The default `VariantBuilder`: a registered method (or the floor) with its spec's hyperparameters and `job.overrides`."""
    if job.method is None:
        return build_variant(work.base, None, None, work, device, dtype)
    hp = resolve_measurement([job.method], job.model, list(job.overrides), command=COMMAND).hyperparameters[job.method]
    return build_variant(work.base, job.method, hp, work, device, dtype)


def measure_memory(job: Job, build: VariantBuilder = method_variant) -> dict[str, Any]:
    """Build one variant in this process, run `job.steps` training steps, return the peak memory (JSON-ready).

    `build` makes the variant from the shared workload; benchmarks pass their own to measure a variant
    that is not a registered method (e.g. another library's LoRA) under the same protocol.
    """
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    device, dtype = pick_device(job.cpu), parse_dtype(job.dtype)
    work = workload(job.model, job.batch, job.seq, device, dtype, job.seed)
    variant = build(job, work, device, dtype)
    gc.collect()
    measure.synchronize(device)
    before: dict[str, Any] = {"peak_rss_bytes": measure.peak_rss_bytes(), "rss_bytes": measure.current_rss_bytes()}
    if device.type == "cuda":
        before["allocated_bytes"] = torch.cuda.memory_allocated(device)
        measure.reset_peaks(device)
    times = [measure.timed(variant.step, device) for _ in range(job.steps)]
    peak_rss = measure.peak_rss_bytes()
    memory: dict[str, Any] = {"peak_rss_bytes": peak_rss, "before_steps": before, "steps": job.steps, **measure.cuda_peaks(device)}
    if device.type == "cuda":
        memory["peak_bytes"] = memory["max_memory_allocated"]
        memory["added_by_steps_bytes"] = memory["max_memory_allocated"] - before["allocated_bytes"]
        memory["source"] = "torch.cuda.max_memory_allocated (reset after the model was built), a fresh process per variant"
    else:
        memory["peak_bytes"] = peak_rss
        memory["added_by_steps_bytes"] = peak_rss - before["peak_rss_bytes"]
        memory["source"] = "peak RSS of a fresh process per variant"
    return {
        "method": job.method or FLOOR,
        "device": device.type,
        "threads": torch.get_num_threads(),
        "memory": memory,
        "optimizer_state_bytes": variant.optimizer_state_bytes(),
        "step_times_s": times,  # informational only: the reported step times are the paired ones
    }


def run_isolated(job: Job, worker: Sequence[str] = WORKER) -> dict[str, Any]:
    """`measure_memory` in a fresh Python process (`common.in_fresh_process`); its failure comes back as `{'method', 'error'}`.

    `worker`: the Python arguments that run a `worker_main` (this module's by default; a benchmark
    script with its own `VariantBuilder` passes its path and a flag), given JOB.json and OUT.json.
    """
    got = common.in_fresh_process(asdict(job), worker, prefix="peftbench-profile-")
    return {"method": job.method or FLOOR, **got} if "error" in got else got


def worker_main(argv: list[str], build: VariantBuilder = method_variant) -> int:
    """The memory worker: JOB.json (a `Job`) in, `measure_memory`'s result to OUT.json (`common.serve`)."""
    return common.serve(argv, lambda data: measure_memory(Job(**{**data, "overrides": tuple(data["overrides"])}), build))


# ---------------------------------------------------------------- the profile


@dataclass
class ProfileResult:
    record: dict[str, Any]
    path: Path | None = None
    text: str = ""
    failed: list[str] = field(default_factory=list)


def check_options(o: ProfileOptions, rounds: int) -> None:
    """The option values that are user mistakes, as one line each, before anything is built."""
    for name, value, low in (("--batch", o.batch, 1), ("--seq", o.seq, 2), ("--rounds", rounds, 1), ("--warmup", o.warmup, 0)):
        if value < low:
            raise UsageError(f"{name} must be >= {low}, got {value}")
    if o.threads is not None and o.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {o.threads}")


def measure_peaks(o: ProfileOptions, rows: list[dict[str, Any]], routed: dict[str, list[str]]) -> None:
    """Each variant's peak memory, a fresh process each (`run_isolated`), into its row."""
    ok = [r for r in rows if "error" not in r]
    shared = {"model": o.model, "batch": o.batch, "seq": o.seq, "seed": o.seed, "cpu": o.cpu, "threads": o.threads, "dtype": o.dtype}
    for row in tqdm(ok, desc="peak memory", unit="variant", mininterval=0.5, leave=False):
        method = None if row["method"] == FLOOR else row["method"]
        got = run_isolated(Job(method=method, overrides=tuple(routed[method]) if method else (), **shared))  # type: ignore[arg-type]
        row["memory"] = {"error": got["error"]} if "error" in got else got["memory"]


def protocol(device: torch.device, memory: bool) -> dict[str, str]:
    """How the numbers were taken, stored with them."""
    return {
        "step": "forward, loss, backward, AdamW step, zero_grad (the floor: forward, loss, backward only)",
        "floor": "same frozen model, gradient only w.r.t. inputs_embeds: forward + activation backward, no parameter gradients",
        "timing": "one process; every variant on its own copy of the same random-init model with its own AdamW; after "
        "the warm-up rounds, each round runs one step of every variant, in an order rotated by one position per round; "
        "step time = median over the timed rounds (IQR = its spread); ratio vs ft / vs floor = median over rounds of "
        "t_variant / t_reference of the same round, with the quartiles of those per-round ratios",
        "memory": memory_protocol(device) if memory else "not measured (--no-memory)",
        "optimizer_state": "bytes of the tensors in AdamW's state after the timed rounds (measured)",
    }


def run_profile(options: ProfileOptions) -> ProfileResult:
    """Paired step times of the floor and every method in this process, then (`options.memory`) one process per variant
    for its peak; writes `<results>/profile/<time>-<model>.json` when `options.results` is given."""
    o = options
    methods = check_methods(o.methods)
    rounds = PROFILE_ROUNDS if o.rounds is None else o.rounds
    check_options(o, rounds)
    torch_dtype = parse_dtype(o.dtype)
    measured = resolve_measurement(methods, o.model, list(o.overrides), command=COMMAND)  # bad --set fails here, before any work
    measured.check_seq(o.seq)
    if o.threads is not None:
        torch.set_num_threads(o.threads)
    device = pick_device(o.cpu)
    hps = measured.hyperparameters
    timing, rows, forward = time_variants(
        o.model, methods, hps, batch=o.batch, seq=o.seq, rounds=rounds, warmup=o.warmup, device=device, dtype=torch_dtype, seed=o.seed
    )
    if o.memory:
        measure_peaks(o, rows, measured.overrides)
    add_ratios(rows)
    env = environment(device, torch_dtype)
    if o.threads is not None:
        env["threads"] = o.threads
    record: dict[str, Any] = {
        **measurement_header("profile", measured.source, measured.kind, methods),
        "settings": {"batch": o.batch, "seq": o.seq, "warmup_rounds": o.warmup, "rounds": rounds, "seed": o.seed, "memory": o.memory},
        "protocol": protocol(device, o.memory),
        "env": env,
        "hyperparameters": {m: {k: v for k, v in asdict(hps[m]).items() if v is not None} for m in methods},
        "timing": timing,
        "forward": forward,
        "rows": rows,
    }
    path = save_measurement(record, o.results) if o.results is not None else None
    failed = [r["method"] for r in rows if "error" in r or "error" in (r.get("memory") or {})]
    return ProfileResult(record, path, format_profile(record), failed)


def build_all(
    work: Workload, methods: list[str], hps: dict[str, Any], device: torch.device, dtype: torch.dtype
) -> tuple[dict[str, TrainVariant], dict[str, str]]:
    """The floor and every method, each method on its own copy of the same random-init base; a method whose build
    fails is an error in the result, not a crash."""
    errors: dict[str, str] = {}
    variants: dict[str, TrainVariant] = {}
    for m in methods:
        try:
            variants[m] = build_variant(copy.deepcopy(work.base), m, hps[m], work, device, dtype)
        except Exception as exc:
            errors[m] = f"{type(exc).__name__}: {exc}"
    return {FLOOR: build_variant(work.base, None, None, work, device, dtype), **variants}, errors


def variant_row(name: str, v: TrainVariant, kind: str, timing: dict[str, Any], paired: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """One variant's timed row: its step-time summary, its paired ratios to ft and to the floor, and what it holds."""
    times = timing["times_s"][name]
    return {
        "method": name,
        "kind": kind,
        "params": v.params,
        "step_s": measure.summarize(times)["median"],
        "step_time_s": measure.summarize(times),
        "step_times_s": times,
        "warmup_times_s": timing["warmup_times_s"][name],
        "paired": {f"vs_{ref}": {**measure.summarize(ratios[name]), "per_round": ratios[name]} for ref, ratios in paired.items()},
        "optimizer_state_bytes": v.optimizer_state_bytes(),
        "gradient_bytes": v.seen.get("gradient_bytes"),
        "memory_breakdown_bytes": measure.memory_breakdown(v.model, v.trainable),
        "memory": None,
    }


def forward_alone(floor: TrainVariant, work: Workload, device: torch.device, warmup: int, rounds: int) -> dict[str, Any]:
    """The floor model's forward pass alone (eval mode, no grad), for scale; not paired."""
    inputs = {k: work.batch[k] for k in ("input_ids", "attention_mask")}
    floor.model.eval()
    with torch.no_grad():
        times = [measure.timed(lambda: floor.model(**inputs), device) for _ in range(warmup + rounds)]
    floor.model.train()
    forward: dict[str, Any] = {"what": "forward pass alone, eval mode, no grad, the floor's model", "times_s": times[warmup:]}
    forward["time_s"] = measure.summarize(forward["times_s"])
    return forward


def time_variants(
    model: str,
    methods: list[str],
    hps: dict[str, Any],
    *,
    batch: int,
    seq: int,
    rounds: int,
    warmup: int,
    device: torch.device,
    dtype: torch.dtype,
    seed: int,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The paired timing: build every variant here, run the rotated rounds, summarise; frees the models before returning.

    Returns the rounds' bookkeeping (orders, errors), one row per variant (the floor first; a variant that
    failed to build or to step is `{'method', 'error'}`), and the no-grad forward pass alone, for scale.
    """
    work = workload(model, batch, seq, device, dtype, seed)
    variants, errors = build_all(work, methods, hps, device, dtype)
    timing = common.rotated_rounds(
        {name: v.step for name, v in variants.items()}, device, rounds=rounds, warmup=warmup, desc="profile rounds", catch=True
    )
    errors.update(timing["errors"])
    paired = {ref: common.paired_ratios(timing["times_s"], ref) for ref in (REFERENCE_METHOD, FLOOR) if ref in timing["times_s"]}
    rows = [
        {"method": name, "error": errors[name]} if name in errors else variant_row(name, variants[name], work.kind, timing, paired)
        for name in [FLOOR, *methods]
    ]
    forward = forward_alone(variants[FLOOR], work, device, warmup, rounds) if FLOOR not in errors else {}
    variants.clear()
    del work
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    bookkeeping = {"rounds": timing["rounds"], "warmup_rounds": warmup, "orders": timing["orders"], "errors": errors}
    return bookkeeping, rows, forward


def memory_protocol(device: torch.device) -> str:
    if device.type == "cuda":
        return f"torch.cuda.max_memory_allocated after a reset, in a fresh process per variant over {MEMORY_STEPS} steps"
    return f"peak RSS of a fresh process per variant over {MEMORY_STEPS} steps"


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Medians of the paired step ratios vs ft and vs the floor; peak memory and optimizer state vs ft (where those rows exist)."""
    ok = {r["method"]: r for r in rows if "error" not in r}
    ft = ok.get(REFERENCE_METHOD)
    for r in ok.values():
        ratios: dict[str, float] = {f"step_{key}": p["median"] for key, p in r["paired"].items()}
        if ft:
            peak, ft_peak = peak_bytes(r), peak_bytes(ft)
            if peak is not None and ft_peak:
                ratios["peak_memory_vs_ft"] = peak / ft_peak
            if ft["optimizer_state_bytes"]:
                ratios["optimizer_state_vs_ft"] = r["optimizer_state_bytes"] / ft["optimizer_state_bytes"]
        r["ratios"] = ratios


def peak_bytes(row: dict[str, Any]) -> int | None:
    m = row.get("memory") or {}
    return m.get("peak_bytes")


# ---------------------------------------------------------------- output


def mib(n: float | None, digits: int = 0) -> str:
    return "-" if n is None else f"{n / 2**20:,.{digits}f}"


def fmt_ratio(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}x"


def fmt_fraction(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.3g}%"


def fmt_paired(row: dict[str, Any], key: str) -> str:
    """`0.617x (0.612-0.624)`: median of the per-round ratios and their quartiles; `ref` for the reference itself."""
    p = row["paired"].get(key)
    if p is None:
        return "-"
    if row["method"] == key.removeprefix("vs_"):
        return "ref"
    return f"{p['median']:.3f}x ({p['q1']:.3f}-{p['q3']:.3f})"


PROFILE_HEADER = [
    "method",
    "step s",
    "IQR s",
    "vs ft (Q1-Q3)",
    "vs floor (Q1-Q3)",
    "peak MiB",
    "added MiB",
    "peak vs ft",
    "optimizer MiB",
    "vs ft",
    "trainable params",
    "% of base",
]


def profile_row(r: dict[str, Any]) -> list[str]:
    """One row of the profile table (`PROFILE_HEADER`); a variant that failed says so."""
    if "error" in r:
        return [r["method"], "failed", *([""] * (len(PROFILE_HEADER) - 2))]
    q, m, p, t = r["ratios"], r.get("memory") or {}, r["params"], r["step_time_s"]
    return [
        r["method"],
        f"{t['median']:.4g}",
        f"{t['iqr']:.2g}",
        fmt_paired(r, "vs_ft"),
        fmt_paired(r, f"vs_{FLOOR}"),
        "failed" if "error" in m else mib(m.get("peak_bytes")),
        mib(m.get("added_by_steps_bytes")),
        fmt_ratio(q.get("peak_memory_vs_ft")),
        mib(r["optimizer_state_bytes"], 1),
        fmt_fraction(q.get("optimizer_state_vs_ft")),
        f"{p['trainable']:,}",
        f"{100 * p['trainable'] / p['base_total']:.3g}%",
    ]


def profile_notes(record: dict[str, Any]) -> list[str]:
    """What the columns mean, the forward pass for scale, the floor, how memory was taken, and each failure."""
    lines = [
        "vs ft / vs floor: median over rounds of t_method / t_reference measured in the same round; (Q1-Q3) = quartiles of "
        "those per-round ratios, the spread. IQR s = interquartile range of the step times."
    ]
    forward = record.get("forward") or {}
    floor = next((r for r in record["rows"] if r["method"] == FLOOR and "error" not in r), None)
    if forward and floor:
        f = forward["time_s"]["median"]
        lines.append(f"forward pass alone (eval, no grad; timed after the rounds): {f:.3f} s = {f / floor['step_s']:.2f}x the floor's step")
    lines.append(
        f"{FLOOR_LABEL}: the frozen model's forward + backward through the activations to the input embeddings, with no "
        "parameter gradients and no optimizer; no method that trains something in the first layer can take less."
    )
    added = "; added = peak minus the peak before the first step." if record["settings"]["memory"] else "."
    lines.append(f"peak memory: {record['protocol']['memory']}{added}")
    for r in record["rows"]:
        if "error" in r:
            lines.append(f"{r['method']} failed: {r['error']}")
        elif "error" in (r.get("memory") or {}):
            lines.append(f"{r['method']} peak memory failed: {r['memory']['error']}")
    return lines


def format_profile(record: dict[str, Any]) -> str:
    s, env, timing = record["settings"], record["env"], record["timing"]
    names = [r["method"] for r in record["rows"] if "error" not in r]
    lines = [
        f"profile: {record['model']} ({record['model_origin']}), {record['model_class']} model, batch {s['batch']} x seq {s['seq']}, "
        f"{env['dtype']}, {env['device']} {env['device_name']}, {env['threads']} threads",
        f"step times: one process, {s['warmup_rounds']} warm-up + {timing['rounds']} timed rounds; each round runs one step of every "
        f"variant ({', '.join(names)}), the order rotated by one per round",
        "",
        *render_table([profile_row(r) for r in record["rows"]], PROFILE_HEADER, "md").splitlines(),
        "",
        *profile_notes(record),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(worker_main(sys.argv[1:]))
