"""A finished run keeps the tensors it trained, so the analyses of its update (`peftbench analyze`) never retrain.

Only trainable tensors (the method's and the task head's) are kept, as safetensors (data, never a pickle: a
results folder travels), at `<results>/adapters/<run_id>.safetensors`, with the file, its bytes and tensor count
in the record's `measurements.adapters`. A method that trains a large part of the model (ft: the whole of it) is
not kept: it would be a second copy of the model, and the analyses are about low-rank updates.
`--no-keep-adapters` (run and sweep) sets `PEFTBENCH_KEEP_ADAPTERS=0`, which worker processes inherit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from safetensors.torch import save as safetensors_bytes

from peftbench.records.store import ADAPTERS, KEEP_ADAPTERS_ENV, write_bytes

MAX_FRACTION = 0.1  # a method training more than this share of the base model's parameters is not kept


def keeping() -> bool:
    """Whether finished runs keep their tensors in this process (the default) or not (`--no-keep-adapters`)."""
    return os.environ.get(KEEP_ADAPTERS_ENV, "1") != "0"


def keep(path: Path, adapted: Any, record: dict[str, Any]) -> None:
    """Write the trained tensors atomically beside the record and say so in its measurements."""
    params = record.get("params") or {}
    if params.get("trainable", 0) > MAX_FRACTION * max(params.get("base_total", 1), 1):
        return
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in adapted.adapter_state_dict().items()}
    config = record.get("config") or {}
    payload = safetensors_bytes(tensors, metadata={"run_id": str(record.get("run_id")), "method": str(config.get("method"))})
    write_bytes(path, payload)
    record["measurements"]["adapters"] = {"file": f"{ADAPTERS}/{path.name}", "bytes": len(payload), "tensors": len(tensors)}
