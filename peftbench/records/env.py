"""The facts about where a run ran, stored in every record so that results stay comparable."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

import peftbench
from peftbench.specs import PACKAGE_DIR

SOURCE_DIR = PACKAGE_DIR


def git_state(path: Path = SOURCE_DIR) -> dict[str, Any]:
    """The peftbench source's commit and whether it had uncommitted changes (None outside a checkout)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def cpu_model() -> str | None:
    """The CPU's model name (Linux `/proc/cpuinfo`): two hosts with the same one compute the same floats."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def determinism(device: torch.device, processes: int) -> tuple[bool, str]:
    """Whether a rerun of the same configuration on the same machine and versions computes the same numbers.

    Why it is recorded: a deterministic rerun makes any change of a score a change of the code, which `check`
    then reports exactly (`changed`) instead of judging it against a tolerance. CPU kernels with a fixed thread
    count are deterministic in one process; CUDA only with deterministic algorithms and cuBLAS's fixed
    workspace; several processes (DDP) reduce gradients in an order that may vary.
    """
    if processes != 1:
        return False, f"{processes} processes: gradient reduction order may vary"
    if device.type == "cpu":
        return True, "CPU, one process, fixed thread count"
    if torch.are_deterministic_algorithms_enabled() and os.environ.get("CUBLAS_WORKSPACE_CONFIG"):
        return True, f"{device.type} with deterministic algorithms"
    return False, f"{device.type} without torch.use_deterministic_algorithms and CUBLAS_WORKSPACE_CONFIG"


def environment(device: torch.device, dtype: torch.dtype = torch.float32, processes: int = 1) -> dict[str, Any]:
    import accelerate
    import transformers

    deterministic, why = determinism(device, processes)
    return {
        "peftbench": peftbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "platform": platform.platform(),
        "device": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "dtype": str(dtype).removeprefix("torch."),
        "processes": processes,
        "deterministic": deterministic,
        "determinism": why,
        **git_state(),
    }
