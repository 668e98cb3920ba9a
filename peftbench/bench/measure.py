"""Measurements every run records: memory, throughput, phase times, checkpoint size.

Throughput counts only steady-state steps (the first steps pay for allocator warm-up, lazy
initialisation and caches). On CPU, peak memory is the process's peak RSS, which only grows:
a per-method comparison therefore needs one process per method (`peftbench profile` does so).
On CUDA, peaks are `max_memory_allocated` / `max_memory_reserved` after a reset, per phase.
`timed` (one synchronised call) and `summarize` (median and quartiles of repeated measurements)
serve the paired design of `peftbench latency` and `profile` too (`peftbench.bench.common`).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from peftbench.models.tensors import SAFETENSORS_DTYPES, checkpoint_bytes, tensor_bytes

__all__ = ["SAFETENSORS_DTYPES", "checkpoint_bytes", "tensor_bytes"]  # re-exported: the sizes every measurement reports


def peak_rss_bytes() -> int:
    """The peak resident set size of this process.

    Linux: `VmHWM` of `/proc/self/status`, the high-water mark of this program's own address space.
    Not `getrusage`'s `ru_maxrss`: that one is inherited through fork + exec, so a worker started by a
    parent that once held 5 GiB reports at least 5 GiB. Elsewhere (macOS) `ru_maxrss`, in bytes there.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def current_rss_bytes() -> int | None:
    """The process's resident set size now (Linux `/proc/self/statm`); None where unavailable."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * resource.getpagesize()


def cuda_peaks(device: torch.device) -> dict[str, int]:
    if device.type != "cuda":
        return {}
    return {
        "max_memory_allocated": torch.cuda.max_memory_allocated(device),
        "max_memory_reserved": torch.cuda.max_memory_reserved(device),
    }


def reset_peaks(device: torch.device) -> None:
    """Start the peaks afresh: CUDA's allocator statistics, and this process's RSS high-water mark, so a run
    that follows others in one process (a sweep's cells, the tests) is not charged with their peaks."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    reset_peak_rss()


def reset_peak_rss() -> bool:
    """Linux: writing 5 to `/proc/self/clear_refs` resets `VmHWM` to the current RSS (since Linux 4.0); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ReferenceStep:
    """A fixed training step that never changes: a small transformer encoder's forward and backward on fixed data.

    Why: a step time alone cannot tell slower code from a busier machine (on a shared 2-core machine one
    unchanged run measured 6x slower than another). Timed right after a training step, in the same process, on
    the same device and threads, the reference sees the same load at the same moment; the ratio of the two
    (`train_throughput.relative_step`) moves with the code and hardly with the load. It is a transformer, not a
    single matrix product, because load slows many small operations far more than one large one: an MLP
    reference let an unchanged run's ratio drift 2x under load. It uses torch alone (no peftbench or
    transformers code, which a bug could slow on both sides), builds its weights under a forked random state
    and draws nothing while it runs, so it never changes what a run computes.
    """

    WIDTH, SEQ, BATCH = 64, 32, 8  # ~10-20 ms on one CPU core

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device or torch.device("cpu")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            layer = torch.nn.TransformerEncoderLayer(self.WIDTH, 4, 2 * self.WIDTH, dropout=0.0, batch_first=True)
            self.model = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).to(self.device)
            self.data = torch.randn(self.BATCH, self.SEQ, self.WIDTH).to(self.device)

    def __call__(self) -> float:
        """Seconds for one reference step (synchronised on CUDA)."""
        synchronize(self.device)
        start = time.perf_counter()
        with torch.enable_grad():
            self.model(self.data).square().mean().backward()
        synchronize(self.device)
        seconds = time.perf_counter() - start
        for weight in self.model.parameters():
            weight.grad = None
        return seconds


@dataclass
class StepTimer:
    """Per-step wall times and sizes; `summary` leaves out the first `warmup` steps.

    With a `reference`, every training step is followed by one `ReferenceStep`, and each step's time is also
    kept relative to the reference step beside it: the figure a speed regression is judged on.
    """

    warmup: int = 2
    reference: ReferenceStep | None = None
    times: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    reference_pairs: list[tuple[float, float]] = field(default_factory=list)  # (step, the reference step right after)

    REFERENCE_EVERY_STEP = 40  # then every 4th step: enough pairs for a median, a few percent of a long run's time

    def add(self, seconds: float, tokens: int, samples: int) -> None:
        self.times.append(seconds)
        self.tokens.append(tokens)
        self.samples.append(samples)
        if self.reference is not None and (len(self.times) <= self.REFERENCE_EVERY_STEP or len(self.times) % 4 == 0):
            self.reference_pairs.append((seconds, self.reference()))

    def summary(self) -> dict[str, Any]:
        skip = self.warmup if len(self.times) > self.warmup else 0
        seconds = sum(self.times[skip:])
        if not seconds:
            return {"steps_measured": 0}
        return {
            "steps_measured": len(self.times) - skip,
            "warmup_steps_excluded": skip,
            "tokens_per_s": sum(self.tokens[skip:]) / seconds,
            "samples_per_s": sum(self.samples[skip:]) / seconds,
            "seconds_per_step": seconds / (len(self.times) - skip),
            # the spread of the steady steps' times (median, quartiles, IQR): what a speed comparison judges a ratio
            # against, since one number per run cannot say how much of a difference is noise
            "step_seconds": summarize(self.times[skip:]),
            **self.relative(skip),
        }

    def relative(self, skip: int) -> dict[str, Any]:
        """Each steady step's time over the reference step timed right after it: median and quartiles."""
        pairs = [(t, r) for t, r in self.reference_pairs[skip:] if r > 0]
        if not pairs:
            return {}
        return {"reference_seconds": summarize(r for _, r in pairs), "relative_step": summarize(t / r for t, r in pairs)}


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall seconds of one call, synchronised before and after on CUDA (kernels are asynchronous)."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


class Phase:
    """`with Phase(times, 'train'):` adds the block's wall time to `times['train']`.

    With `device` and `peaks`, it also records the phase's peak memory in `peaks['train']`:
    CUDA `max_memory_allocated`/`max_memory_reserved` (reset on entry) and the process's peak RSS
    (which on CPU only grows, so a later phase's RSS peak includes the earlier ones). A phase
    entered several times (one per epoch) keeps the maximum.
    """

    def __init__(
        self, times: dict[str, float], name: str, device: torch.device | None = None, peaks: dict[str, dict[str, int]] | None = None
    ):
        self.times, self.name = times, name
        self.device, self.peaks = device, peaks

    def __enter__(self) -> Phase:
        if self.device is not None and self.peaks is not None:
            synchronize(self.device)
            reset_peaks(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device is not None:
            synchronize(self.device)
        self.times[self.name] = self.times.get(self.name, 0.0) + time.perf_counter() - self.start
        if self.device is not None and self.peaks is not None:
            now = {"peak_rss_bytes": peak_rss_bytes(), **cuda_peaks(self.device)}
            old = self.peaks.get(self.name, {})
            self.peaks[self.name] = {k: max(v, old.get(k, 0)) for k, v in now.items()}


class ForwardCounter:
    """Counts what a model's forward calls process, for evaluation throughput.

    `with counter.attach(model):` hooks the model's forward; every call adds its examples and its
    tokens: the positions fed in that call that the attention mask keeps (with a key/value cache a
    decoding step feeds one position per sequence, so generation counts model tokens, prompt plus
    generated per beam). `summary()` divides by the wall time spent inside `attach` blocks.
    """

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.calls = self.samples = self.tokens = 0
        self.seconds = 0.0

    def hook(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args and isinstance(args[0], torch.Tensor) else None)
        if ids is None:
            ids = kwargs.get("inputs_embeds")
        if ids is None:
            return
        self.calls += 1
        self.samples += int(ids.shape[0])
        width = ids.shape[1] if ids.dim() > 1 else 1
        mask = kwargs.get("attention_mask")
        if isinstance(mask, torch.Tensor) and mask.dim() == 2:
            self.tokens += int(mask[:, -width:].sum())
        else:
            self.tokens += int(ids.shape[0]) * width

    def attach(self, model: torch.nn.Module) -> _Attached:
        return _Attached(self, model)

    def summary(self) -> dict[str, Any]:
        if not self.seconds or not self.calls:
            return {"forward_calls": self.calls}
        return {
            "forward_calls": self.calls,
            "samples": self.samples,
            "tokens": self.tokens,
            "seconds": self.seconds,
            "tokens_per_s": self.tokens / self.seconds,
            "samples_per_s": self.samples / self.seconds,
        }


class _Attached:
    def __init__(self, counter: ForwardCounter, model: torch.nn.Module):
        self.counter, self.model = counter, model

    def __enter__(self) -> ForwardCounter:
        self.handle = self.model.register_forward_pre_hook(self.counter.hook, with_kwargs=True)
        if self.counter.device is not None:
            synchronize(self.counter.device)
        self.start = time.perf_counter()
        return self.counter

    def __exit__(self, *exc: object) -> None:
        if self.counter.device is not None:
            synchronize(self.counter.device)
        self.counter.seconds += time.perf_counter() - self.start
        self.handle.remove()


def memory_breakdown(model: torch.nn.Module, trainable: dict[str, torch.nn.Parameter], optimizer_states: int = 2) -> dict[str, int]:
    """Analytic bytes: weights, gradients of what trains, and AdamW's two moments per trainable value."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.numel() * p.element_size() for p in trainable.values())
    return {"weights": weights, "gradients": grads, "optimizer_state": optimizer_states * grads}


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer holds as state (AdamW: exp_avg, exp_avg_sq, step), measured."""
    return tensor_bytes(v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor))


def gradient_bytes(params: Iterable[torch.nn.Parameter]) -> int:
    """Bytes of the gradients present now (call after backward, before `zero_grad`)."""
    return tensor_bytes(p.grad for p in params if p.grad is not None)


def summarize(values: Iterable[float]) -> dict[str, float]:
    """Robust summary of repeated measurements: median and quartiles (linear interpolation), plus mean/std/min/max."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        return {"n": 0}
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    return {
        "n": int(x.size),
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "min": float(x.min()),
        "max": float(x.max()),
    }
