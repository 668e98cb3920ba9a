"""Measurements every run records: memory, throughput, phase times, checkpoint size.

Throughput counts only steady-state steps (the first steps pay for allocator warm-up, lazy
initialisation and caches). On CPU, peak memory is the process's peak RSS, which only grows:
a per-method comparison therefore needs one process per method (`peftbench profile` does so).
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def cuda_peaks(device: torch.device) -> dict[str, int]:
    if device.type != "cuda":
        return {}
    return {
        "max_memory_allocated": torch.cuda.max_memory_allocated(device),
        "max_memory_reserved": torch.cuda.max_memory_reserved(device),
    }


def reset_peaks(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class StepTimer:
    """Per-step wall times and sizes; `summary` leaves out the first `warmup` steps."""

    warmup: int = 2
    times: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)

    def add(self, seconds: float, tokens: int, samples: int) -> None:
        self.times.append(seconds)
        self.tokens.append(tokens)
        self.samples.append(samples)

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
        }


class Phase:
    """`with Phase(times, 'train'):` adds the block's wall time to `times['train']`."""

    def __init__(self, times: dict[str, float], name: str):
        self.times, self.name = times, name

    def __enter__(self) -> Phase:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.times[self.name] = self.times.get(self.name, 0.0) + time.perf_counter() - self.start


def memory_breakdown(model: torch.nn.Module, trainable: dict[str, torch.nn.Parameter], optimizer_states: int = 2) -> dict[str, int]:
    """Analytic bytes: weights, gradients of what trains, and AdamW's two moments per trainable value."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.numel() * p.element_size() for p in trainable.values())
    return {"weights": weights, "gradients": grads, "optimizer_state": optimizer_states * grads}


def checkpoint_bytes(state: dict[str, torch.Tensor]) -> int:
    """Bytes of the method's own tensors saved as safetensors (what a user would ship)."""
    return len(safetensors_bytes({k: v.contiguous() for k, v in state.items()}))
