"""The facts about where a run ran, stored in every record so that results stay comparable."""

from __future__ import annotations

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


def environment(device: torch.device, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    import accelerate
    import transformers

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
        "dtype": str(dtype).removeprefix("torch."),
        **git_state(),
    }
