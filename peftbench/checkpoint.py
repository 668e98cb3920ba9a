"""Run checkpoints: everything an interrupted run needs to continue exactly where it stopped.

A checkpoint holds the trainable tensors (the method's and the head's: the frozen base model is
rebuilt from its source), the optimizer and scheduler states, every random generator (Python,
NumPy, torch, CUDA, and the data loader's shuffling generator as it was when the epoch began),
and the position: epoch, optimizer step, batches done in that epoch and their losses. It is
written at every epoch end and when a run is interrupted, atomically, under
`<results>/checkpoints/<run id>.pt`, and removed when the run finishes (unless kept).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically (a crash mid-write keeps the previous checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format": FORMAT, **state}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path`, or None if there is none or it cannot be read (then the run starts over)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, EOFError, RuntimeError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("format") == FORMAT else None
