"""`peftbench profile`: one training step per method, side by side, against `ft` and the floor.

For every method: the median wall time of a training step (forward, loss, backward, AdamW step,
zero_grad) over a few timed steps after warm-up, the step's peak memory, the optimizer state
actually allocated (AdamW's tensors after a step, measured), and the trainable parameters.

The *floor* is the same frozen model with gradients taken only with respect to the input
embeddings (`inputs_embeds.requires_grad_()`): a forward pass plus the backward pass through
every layer's activations, with no parameter gradient and no optimizer. A method that trains
anything in the first layer needs at least that backward, so no such method can beat it.

Models have their real shape and random weights (no download). Each measurement runs in a fresh
process (`python -m peftbench.profile JOB.json OUT.json`): on CPU the peak RSS only grows within a
process, and on CUDA a fresh process also starts from an empty caching allocator.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from peftbench import measure
from peftbench.config import default_kind
from peftbench.errors import UsageError
from peftbench.latency import (
    markdown_table,
    parse_dtype,
    pick_device,
    random_batch,
    resolve_hyperparameters,
    shaped_model,
    split_overrides,
    utc_stamp,
)
from peftbench.methods import METHODS
from peftbench.models import base_config, dims_of, resolve_model, task_config
from peftbench.store import SCHEMA_VERSION, write_record

FLOOR = "floor"
FLOOR_LABEL = "floor (frozen; grad w.r.t. input embeddings only)"


@dataclass(frozen=True)
class Job:
    """One measurement: `method` None is the floor."""

    model: str
    method: str | None
    overrides: tuple[str, ...] = ()
    batch: int = 8
    seq: int = 128
    steps: int = 3
    warmup: int = 1
    seed: int = 0
    cpu: bool = False
    threads: int | None = None
    dtype: str = "fp32"


def loss_for(kind: str, logits: torch.Tensor, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    if kind == "generation":  # next-token prediction on the input itself
        ids = batch["input_ids"]
        if logits.shape[1] != ids.shape[1]:
            raise RuntimeError(f"the model returned {logits.shape[1]} positions for {ids.shape[1]} input tokens")
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1))
    return F.cross_entropy(logits.float(), labels)


def measure_job(job: Job) -> dict[str, Any]:
    """Run one job in this process and return what it measured (JSON-ready)."""
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    device = pick_device(job.cpu)
    dtype = parse_dtype(job.dtype)
    source = resolve_model(job.model)
    kind, num_labels = default_kind(base_config(source).model_type)
    vocab = dims_of(task_config(source, kind, num_labels)).vocab_size
    model = shaped_model(source, kind, num_labels, job.seed).to(device=device, dtype=dtype)
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False
    batch = random_batch(vocab, job.batch, job.seq, device, job.seed)
    labels = torch.randint(0, num_labels, (job.batch,), generator=torch.Generator().manual_seed(job.seed)).to(device)
    result: dict[str, Any] = {"method": job.method or FLOOR, "kind": kind, "threads": torch.get_num_threads(), "device": device.type}

    if job.method is None:
        model.requires_grad_(False)
        embed = model.get_input_embeddings()
        total = sum(p.numel() for p in model.parameters())
        result["params"] = {"method": 0, "head": 0, "trainable": 0, "total": total, "base_total": total}
        trainable: dict[str, torch.nn.Parameter] = {}
        optimizer = None

        def step() -> None:
            embeds = embed(batch["input_ids"]).detach().requires_grad_()
            logits = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
            loss_for(kind, logits, batch, labels).backward()
            result["gradient_bytes"] = measure.tensor_bytes([embeds.grad])

    else:
        hp = resolve_hyperparameters([job.method], job.model, list(job.overrides))[job.method]
        adapted = METHODS.get(job.method).apply(model, hp)
        model.to(device=device, dtype=dtype)
        trainable = adapted.trainable_parameters()
        result["params"] = adapted.param_counts()
        optimizer = torch.optim.AdamW(trainable.values(), lr=1e-4)

        def step() -> None:
            out = adapted(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], prompt_lengths=batch["prompt_lengths"])
            loss_for(kind, out.logits, batch, labels).backward()
            result["gradient_bytes"] = measure.gradient_bytes(trainable.values())
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    model.train()
    gc.collect()
    measure.synchronize(device)
    before = {"peak_rss_bytes": measure.peak_rss_bytes(), "rss_bytes": measure.current_rss_bytes()}
    if device.type == "cuda":
        before["allocated_bytes"] = torch.cuda.memory_allocated(device)
        measure.reset_peaks(device)
    times = [measure.timed(step, device) for _ in range(job.warmup + job.steps)]
    peak_rss = measure.peak_rss_bytes()
    memory: dict[str, Any] = {"peak_rss_bytes": peak_rss, "before_steps": before, **measure.cuda_peaks(device)}
    if device.type == "cuda":
        memory["peak_bytes"] = memory["max_memory_allocated"]
        memory["added_by_steps_bytes"] = memory["max_memory_allocated"] - before["allocated_bytes"]
        memory["source"] = "torch.cuda.max_memory_allocated (reset after the model was built)"
    else:
        memory["peak_bytes"] = peak_rss
        memory["added_by_steps_bytes"] = peak_rss - before["peak_rss_bytes"]
        memory["source"] = "peak RSS of this process (its own process per method)"
    result.update(
        {
            "step_times_s": times,
            "warmup_steps": job.warmup,
            "step_s": measure.summarize(times[job.warmup :])["median"],
            "memory": memory,
            "optimizer_state_bytes": measure.optimizer_state_bytes(optimizer) if optimizer is not None else 0,
            "memory_breakdown_bytes": measure.memory_breakdown(model, trainable),
        }
    )
    if job.method is None:  # the forward alone, for scale
        model.eval()
        with torch.no_grad():
            fwd = [
                measure.timed(lambda: model(**{k: batch[k] for k in ("input_ids", "attention_mask")}), device)
                for _ in range(job.warmup + job.steps)
            ]
        result["forward_s"] = measure.summarize(fwd[job.warmup :])["median"]
    return result


def run_isolated(job: Job) -> dict[str, Any]:
    """`measure_job` in a fresh Python process; its failure comes back as `{'error': ...}`."""
    with tempfile.TemporaryDirectory(prefix="peftbench-profile-") as tmp:
        spec, out = Path(tmp) / "job.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps(asdict(job)), encoding="utf-8")
        proc = subprocess.run([sys.executable, "-m", "peftbench.profile", str(spec), str(out)], capture_output=True, text=True)
        if proc.returncode != 0 or not out.is_file():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
            return {"method": job.method or FLOOR, "error": f"worker exited {proc.returncode}: {tail}"}
        return json.loads(out.read_text(encoding="utf-8"))


def worker_main(argv: list[str]) -> int:
    spec, out = argv
    data = json.loads(Path(spec).read_text(encoding="utf-8"))
    data["overrides"] = tuple(data["overrides"])
    try:
        result = measure_job(Job(**data))
    except Exception as exc:  # reported by the parent, with the method's name
        traceback.print_exc()
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    return 0


@dataclass
class ProfileResult:
    record: dict[str, Any]
    path: Path | None = None
    text: str = ""
    failed: list[str] = field(default_factory=list)


def run_profile(
    model: str,
    methods: list[str],
    *,
    batch: int = 8,
    seq: int = 128,
    steps: int = 3,
    warmup: int = 1,
    overrides: list[str] = (),  # type: ignore[assignment]
    cpu: bool = False,
    threads: int | None = None,
    dtype: str = "fp32",
    seed: int = 0,
    isolate: bool = True,
    results: Path | None = None,
) -> ProfileResult:
    """The floor, then each method, each measured in its own process (`isolate`); one table, one record."""
    for name, value, low in (("--batch", batch, 1), ("--seq", seq, 2), ("--steps", steps, 1), ("--warmup", warmup, 0)):
        if value < low:
            raise UsageError(f"{name} must be >= {low}, got {value}")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    torch_dtype = parse_dtype(dtype)
    source = resolve_model(model)
    if source.counting_only:
        raise UsageError(f"{source.name} is for parameter counting only (peftbench params)")
    kind, num_labels = default_kind(base_config(source).model_type)
    hps = resolve_hyperparameters(methods, model, list(overrides))  # bad --set fails here, before any work
    routed = split_overrides(methods, list(overrides))
    dims = dims_of(task_config(source, kind, num_labels))
    for m in methods:
        extra = METHODS.get(m).extra_positions(hps[m])
        if seq + extra > dims.max_positions:
            raise UsageError(f"seq {seq} (+{extra} inserted by {m}) exceeds {source.name}'s {dims.max_positions} positions")
    device = pick_device(cpu)
    common = {"model": model, "batch": batch, "seq": seq, "steps": steps, "warmup": warmup, "seed": seed, "cpu": cpu, "threads": threads}
    jobs = [Job(method=None, dtype=dtype, **common)] + [Job(method=m, overrides=tuple(routed[m]), dtype=dtype, **common) for m in methods]
    rows = []
    for job in tqdm(jobs, desc="profile", unit="method", mininterval=0.5):
        if isolate:
            rows.append(run_isolated(job))
        else:
            try:
                rows.append(measure_job(job))
            except Exception as exc:
                rows.append({"method": job.method or FLOOR, "error": f"{type(exc).__name__}: {exc}"})
    from peftbench.env import environment

    env = environment(device, torch_dtype)
    if threads is not None:
        env["threads"] = threads
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "profile",
        "created_at": datetime.now(timezone.utc).isoformat(),
        "model": source.name,
        "model_origin": str(source.local_dir) if source.local_dir else "random weights of the real shape (no download)",
        "model_class": kind,
        "methods": methods,
        "settings": {"batch": batch, "seq": seq, "warmup_steps": warmup, "timed_steps": steps, "seed": seed, "isolated": isolate},
        "protocol": {
            "step": "forward, loss, backward, AdamW step, zero_grad; median wall time of the timed steps after warm-up",
            "floor": "same frozen model, gradient only w.r.t. inputs_embeds: forward + activation backward, no parameter gradients",
            "memory": memory_protocol(device, isolate),
            "optimizer_state": "bytes of the tensors in AdamW's state after the steps (measured)",
        },
        "env": env,
        "hyperparameters": {m: {k: v for k, v in asdict(hps[m]).items() if v is not None} for m in methods},
        "rows": rows,
    }
    add_ratios(rows)
    path = None
    if results is not None:
        path = results / "profile" / f"{utc_stamp()}-{source.name.replace('/', '_')}.json"
        write_record(path, record)
    failed = [r["method"] for r in rows if "error" in r]
    return ProfileResult(record, path, format_profile(record), failed)


def memory_protocol(device: torch.device, isolate: bool) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated after a reset, in " + ("a fresh process per method" if isolate else "one shared process")
    if isolate:
        return "peak RSS of a fresh process per method"
    return "peak RSS of one shared process: it only grows, so it is not per method"


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Step time vs ft and vs the floor; peak memory and optimizer state vs ft (where those rows exist)."""
    ok = {r["method"]: r for r in rows if "error" not in r}
    ft, floor = ok.get("ft"), ok.get(FLOOR)
    for r in ok.values():
        ratios: dict[str, float] = {}
        if floor:
            ratios["step_vs_floor"] = r["step_s"] / floor["step_s"]
        if ft:
            ratios["step_vs_ft"] = r["step_s"] / ft["step_s"]
            ratios["peak_memory_vs_ft"] = r["memory"]["peak_bytes"] / ft["memory"]["peak_bytes"]
            if ft["optimizer_state_bytes"]:
                ratios["optimizer_state_vs_ft"] = r["optimizer_state_bytes"] / ft["optimizer_state_bytes"]
        r["ratios"] = ratios


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def fmt_ratio(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}x"


def fmt_fraction(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.3g}%"


def format_profile(record: dict[str, Any]) -> str:
    s, env = record["settings"], record["env"]
    lines = [
        f"profile: {record['model']} ({record['model_origin']}), {record['model_class']} model, batch {s['batch']} x seq {s['seq']}, "
        f"{env['dtype']}, {env['device']} {env['device_name']}, {env['threads']} threads",
        f"{s['warmup_steps']} warm-up + {s['timed_steps']} timed steps per method (median); "
        + ("each method in its own process" if s["isolated"] else "all in one process (CPU peak memory not per method)"),
        "",
    ]
    header = [
        "method",
        "step s",
        "vs ft",
        "vs floor",
        "peak MiB",
        "added MiB",
        "peak vs ft",
        "optimizer state",
        "vs ft",
        "trainable params",
        "% of base",
    ]
    rows = []
    for r in record["rows"]:
        name = FLOOR_LABEL if r["method"] == FLOOR else r["method"]
        if "error" in r:
            rows.append([name, "failed", *([""] * (len(header) - 2))])
            continue
        q, m, p = r["ratios"], r["memory"], r["params"]
        rows.append(
            [
                name,
                f"{r['step_s']:.3f}",
                fmt_ratio(q.get("step_vs_ft")),
                fmt_ratio(q.get("step_vs_floor")),
                mib(m["peak_bytes"]),
                mib(m["added_by_steps_bytes"]),
                fmt_ratio(q.get("peak_memory_vs_ft")),
                f"{r['optimizer_state_bytes']:,} B",
                fmt_fraction(q.get("optimizer_state_vs_ft")),
                f"{p['trainable']:,}",
                f"{100 * p['trainable'] / p['base_total']:.3g}%",
            ]
        )
    lines += markdown_table(header, rows)
    floor = next((r for r in record["rows"] if r["method"] == FLOOR and "error" not in r), None)
    if floor and "forward_s" in floor:
        lines.append(f"\nforward pass alone (no grad): {floor['forward_s']:.3f} s")
    lines.append(
        "floor: the frozen model's forward + backward through the activations to the input embeddings, with no parameter "
        "gradients and no optimizer; no method that trains something in the first layer can take less."
    )
    lines.append(f"peak memory: {record['protocol']['memory']}; added = peak minus the peak before the first step.")
    for r in record["rows"]:
        if "error" in r:
            lines.append(f"{r['method']} failed: {r['error']}")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(worker_main(sys.argv[1:]))
