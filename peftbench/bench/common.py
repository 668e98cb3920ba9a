"""What `peftbench latency` and `peftbench profile` share: the set-up, the paired design, fresh processes.

Set-up: the model's real shape with random weights (no download), random inputs, the device and
dtype, the methods' names, and each method's hyperparameters (its spec's defaults and presets for
the model, then `--set`, routed to the methods that have the key: `config.parse_method_set`).

The paired design: after warm-up rounds, each timed round runs every variant once, in an order
rotated by one position from round to round (`rotated_rounds`), so slow drift (thermal, other
processes, allocator state) falls on all variants alike and each variant sits at each position
equally often; times of the same round are pairs (`paired_ratios`). `verdict` labels a variant's
paired ratios against those of an A/A control (an identical copy of the reference): with [a1, a3]
the A/A ratios' quartiles and [v1, v3] the variant's, "distinguishable (slower)" when
v1 > max(a3, 1), "distinguishable (faster)" when v3 < min(a1, 1), "within noise" otherwise; with
fewer than `FEW_ROUNDS` rounds no verdict is given.

Fresh processes: `in_fresh_process` runs a worker (`python -m MODULE JOB.json OUT.json`) and reads
back its JSON result; `serve` is the worker's side. On CPU the peak RSS only grows within a process,
and on CUDA a fresh process starts from an empty caching allocator.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from peftbench.bench.measure import timed
from peftbench.config.resolve import resolve_measurement
from peftbench.config.schema import parse_method_set, section_fields
from peftbench.errors import UsageError
from peftbench.methods import METHODS
from peftbench.models.build import build_model, model_class, task_config
from peftbench.models.presets import ModelSource

FEW_ROUNDS = 5  # below this, quartiles mean little: no verdict

# ---------------------------------------------------------------- set-up


def shaped_model(source: ModelSource, kind: str, num_labels: int, seed: int = 0) -> nn.Module:
    """The model's real shape with random weights (speed and memory do not depend on the values): no download.

    A local folder (`--model DIR`) loads its own weights; a counting-only preset is refused.
    """
    if source.counting_only:
        raise UsageError(f"{source.name} is for parameter counting only (peftbench params)")
    if source.local_dir:
        return build_model(source, kind, num_labels, seed=seed)
    config = task_config(source, kind, num_labels)
    torch.manual_seed(seed)
    return model_class(kind).from_config(config)


def split_overrides(methods: list[str], pairs: list[str]) -> dict[str, list[str]]:
    """Route `--set` to the listed methods: `key=value` / `section.key=value` to every method whose settings have
    the key, `METHOD.key=value` to that method alone (`config.parse_method_set`). A key no listed method has is an error.
    """
    return parse_method_set(list(pairs), {m: section_fields(m) for m in methods}, command="peftbench latency and profile")


def check_methods(methods: Sequence[str]) -> list[str]:
    """The methods to measure, as a list: at least one, none twice, every name registered (suggestions otherwise)."""
    methods = list(methods)
    if not methods:
        raise UsageError("--methods needs at least one method name")
    if len(set(methods)) != len(methods):
        raise UsageError(f"--methods lists a method twice: {','.join(methods)}")
    for m in methods:
        METHODS.get(m)  # unknown names fail here, with suggestions
    return methods


def resolve_hyperparameters(methods: list[str], model: str | ModelSource, overrides: list[str]) -> dict[str, Any]:
    """Each method's hyperparameters: its spec's defaults and presets for the model (no task), then `--set`."""
    return resolve_measurement(methods, model, overrides, command="peftbench latency and profile").hyperparameters


def pick_device(cpu: bool) -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() and not cpu else torch.device("cpu")


def parse_dtype(name: str) -> torch.dtype:
    table = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16}
    if name not in table:
        raise UsageError(f"--dtype must be one of fp32, fp16, bf16; got {name!r}")
    return table[name]


def random_batch(vocab_size: int, batch: int, seq: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Token ids drawn uniformly (above the first few special ids), full attention, prompt = whole input."""
    g = torch.Generator().manual_seed(seed)
    low = min(5, vocab_size - 1)
    ids = torch.randint(low, vocab_size, (batch, seq), generator=g)
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones(batch, seq, dtype=torch.long, device=device),
        "prompt_lengths": torch.full((batch,), seq, dtype=torch.long, device=device),
    }


# ---------------------------------------------------------------- the paired design


def rotated(items: list[Any], round_index: int) -> list[Any]:
    """`items` started at position `round_index` (mod its length): round r of the rotated order."""
    k = round_index % len(items)
    return items[k:] + items[:k]


@dataclass
class RoundTimer:
    """The state of one rotated measurement: the entries still running, their times by phase, their errors."""

    calls: Mapping[str, Callable[[], Any]]
    device: torch.device
    catch: bool
    live: list[str] = field(init=False)
    errors: dict[str, str] = field(default_factory=dict)
    warm: dict[str, list[float]] = field(init=False)
    times: dict[str, list[float]] = field(init=False)

    def __post_init__(self) -> None:
        self.live = list(self.calls)
        self.warm = {n: [] for n in self.calls}
        self.times = {n: [] for n in self.calls}

    def call(self, name: str, into: dict[str, list[float]]) -> float:
        """Time one call; with `catch`, a call that raises drops its entry (error kept) instead of propagating."""
        try:
            seconds = timed(self.calls[name], self.device)
        except Exception as exc:
            if not self.catch:
                raise
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            self.live.remove(name)
            return 0.0
        into[name].append(seconds)
        return seconds

    def round(self, index: int, into: dict[str, list[float]]) -> tuple[list[str], float]:
        """One round in the order rotated by `index`: the order and the round's seconds."""
        order = rotated(self.live, index) if self.live else []
        return order, sum(self.call(name, into) for name in order if name in self.live)

    def result(self, rounds: int, warmup: int, orders: list[list[str]]) -> dict[str, Any]:
        for name in self.errors:
            self.warm.pop(name, None)
            self.times.pop(name, None)
        times = {"times_s": self.times, "warmup_times_s": self.warm}
        return {"rounds": rounds, "warmup": warmup, **times, "orders": orders, "errors": self.errors}


@contextmanager
def gc_paused() -> Iterator[None]:
    """Garbage collection off (after one collection): a collection inside one timed call would land on that call alone."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def rotated_rounds(
    calls: Mapping[str, Callable[[], Any]],
    device: torch.device,
    *,
    rounds: int | Callable[[float], int],
    warmup: int,
    desc: str = "",
    catch: bool = False,
) -> dict[str, Any]:
    """Warm-up rounds, then timed rounds; a round calls every entry of `calls` once, timed alone.

    The order rotates by one position per round (round r starts at the r-th name), so slow drift
    (thermal, other processes, allocator state) falls on all entries alike and each sits at every
    position equally often; times of the same round are pairs. Garbage collection is off during
    the timed rounds: a collection inside one call would land on that call alone.

    `rounds` is a count, or a function of the last warm-up round's seconds (a time budget).
    With `catch`, an entry whose call raises is dropped from the remaining rounds, its times
    discarded and its error kept in `errors`; without it, the exception propagates.

    Returns `rounds`, `warmup`, `times_s` and `warmup_times_s` (name -> seconds per round),
    `orders` (the timed rounds' orders) and `errors`.
    """
    timer = RoundTimer(calls, device, catch)
    count = rounds if isinstance(rounds, int) else None
    bar = tqdm(total=warmup + (count or 0), desc=desc, unit="round", mininterval=1.0, leave=False)
    try:
        last_round = 0.0
        for w in range(warmup):
            _, last_round = timer.round(w, timer.warm)
            bar.update()
        if count is None:
            assert callable(rounds)
            count = rounds(last_round)
            bar.total = warmup + count
            bar.refresh()
        orders: list[list[str]] = []
        with gc_paused():
            for r in range(count):
                orders.append(timer.round(r, timer.times)[0])
                bar.update()
    finally:
        bar.close()
    return timer.result(count, warmup, orders)


def paired_ratios(times: dict[str, list[float]], reference: str) -> dict[str, list[float]]:
    """Per entry, t / t_reference of the same round (the reference's own ratios are all 1)."""
    ref = times[reference]
    return {name: [t / b for t, b in zip(ts, ref, strict=True)] for name, ts in times.items()}


def verdict(ratio: dict[str, float], control: dict[str, float]) -> str:
    """The labelling rule of the module docstring: a variant's ratio summary against the A/A control's."""
    if ratio["n"] < FEW_ROUNDS:
        return f"too few rounds (< {FEW_ROUNDS}) to say"
    if ratio["q1"] > max(control["q3"], 1.0):
        return "distinguishable (slower)"
    if ratio["q3"] < min(control["q1"], 1.0):
        return "distinguishable (faster)"
    return "within noise"


# ---------------------------------------------------------------- fresh processes


def in_fresh_process(payload: dict[str, Any], worker: Sequence[str], prefix: str = "peftbench-bench-") -> dict[str, Any]:
    """Run `python *worker JOB.json OUT.json` on `payload` in a fresh Python process; its JSON result, or `{'error': ...}`
    with the tail of its output when it fails."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        spec, out = Path(tmp) / "job.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps(payload), encoding="utf-8")
        proc = subprocess.run([sys.executable, *worker, str(spec), str(out)], capture_output=True, text=True)
        if proc.returncode != 0 or not out.is_file():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
            return {"error": f"worker exited {proc.returncode}: {tail}"}
        return json.loads(out.read_text(encoding="utf-8"))


def serve(argv: list[str], job: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """The worker's side of `in_fresh_process`: `argv` is JOB.json OUT.json; exit 1 (traceback on stderr) on failure."""
    spec, out = argv
    data = json.loads(Path(spec).read_text(encoding="utf-8"))
    try:
        result = job(data)
    except Exception as exc:  # reported by the parent, with the job's name
        traceback.print_exc()
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    return 0
