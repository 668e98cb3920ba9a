"""Run checkpoints: everything an interrupted run needs to continue exactly where it stopped.

A checkpoint holds the trainable tensors (the method's and the head's: the frozen base model is
rebuilt from its source), the optimizer and scheduler states, every random generator (Python,
NumPy, torch, CUDA, and the data loader's shuffling generator as it was when the epoch began),
and the position: epoch, optimizer step, batches done in that epoch and their losses. It is
written at every epoch end and when a run is interrupted, atomically, under
`<results>/checkpoints/<run id>.safetensors`, and removed when the run finishes (unless kept).

Why safetensors and JSON, never pickle: a results folder travels between machines, so a checkpoint
is input from someone else. Unpickling it (`torch.load(weights_only=False)`) would run whatever code
the file names. Here every tensor is stored as a safetensors tensor and everything else (numbers,
strings, lists, the optimizer's hyperparameters, the RNG states' integers) as one JSON document in
the file's metadata, with tensors referenced by name. Reading it parses data and nothing else.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from peftbench.records.store import write_bytes

FORMAT = 2  # 1 was a pickle (`.pt`): never read again
STATE_KEY = "peftbench_state"
MAX_DEPTH = 32  # a checkpoint's JSON tree is a few levels deep; anything deeper is not ours


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(states["numpy"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class Encoder:
    """Splits a state tree into JSON (the tree, tensors replaced by references) and named tensors.

    Markers keep what JSON cannot say: `{"$tensor": name}`, `{"$ndarray": name}`, `{"$tuple": [...]}` and
    `{"$items": [[key, value], ...]}` for a dict whose keys are not all strings (an optimizer's state is keyed
    by parameter index).
    """

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._storages: set[int] = set()

    def encode(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return {"$tensor": self._add(value)}
        if isinstance(value, np.ndarray):
            return {"$ndarray": self._add(torch.from_numpy(np.ascontiguousarray(value)))}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {k: self.encode(v) for k, v in value.items()}
            return {"$items": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"checkpoint: cannot store a {type(value).__name__} (tensors, numbers, strings, lists and dicts only)")

    def _add(self, tensor: torch.Tensor) -> str:
        """Name a tensor; a copy where it shares storage with another (safetensors stores each storage once)."""
        tensor = tensor.detach().to("cpu")
        storage = tensor.untyped_storage()
        if storage.data_ptr() in self._storages or storage.nbytes() != tensor.nbytes or not tensor.is_contiguous():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        self._storages.add(tensor.untyped_storage().data_ptr())
        name = str(len(self.tensors))
        self.tensors[name] = tensor
        return name


def decode(value: Any, tensors: dict[str, torch.Tensor], depth: int = 0) -> Any:
    """The inverse of `Encoder.encode`; a reference to a tensor the file lacks, or a tree too deep, is a ValueError."""
    if depth > MAX_DEPTH:
        raise ValueError("checkpoint state nested too deep")
    if isinstance(value, list):
        return [decode(v, tensors, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    if value.keys() == {"$tensor"}:
        return tensors[str(value["$tensor"])]
    if value.keys() == {"$ndarray"}:
        return tensors[str(value["$ndarray"])].numpy()
    if value.keys() == {"$tuple"}:
        return tuple(decode(v, tensors, depth + 1) for v in value["$tuple"])
    if value.keys() == {"$items"}:
        return {decode(k, tensors, depth + 1): decode(v, tensors, depth + 1) for k, v in value["$items"]}
    return {k: decode(v, tensors, depth + 1) for k, v in value.items()}


def save(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically (a crash mid-write keeps the previous checkpoint).

    The file is serialised in memory and written with ordinary file calls, so a full disk is the OS's
    own `OSError` ("No space left on device"), never a serialiser's internal message.
    """
    encoder = Encoder()
    tree = encoder.encode({"format": FORMAT, **state})
    write_bytes(path, safetensors_bytes(encoder.tensors, metadata={STATE_KEY: json.dumps(tree, separators=(",", ":"))}))


def load(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path`, or None if there is none or it is not one of ours (then the run starts over).

    Only data is parsed: safetensors tensors and a JSON document. Nothing in the file can run code.
    """
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        state = decode(json.loads(metadata[STATE_KEY]), tensors)
    except (OSError, SafetensorError, KeyError, ValueError, TypeError, RecursionError):
        return None
    return state if isinstance(state, dict) and state.get("format") == FORMAT else None
