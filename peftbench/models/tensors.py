"""Sizes of tensors, in memory and as the safetensors file a user would ship.

Low in the house (models/) because methods report their own state's bytes (ReLoRA's merged update),
and the runner and the benchmarks report the same figures.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import torch

SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def checkpoint_bytes(state: Mapping[str, torch.Tensor]) -> int:
    """Bytes of these tensors saved as one safetensors file (what a user would ship), from shapes and dtypes alone.

    No tensor is copied or serialised (for `ft` on a large model that would be gigabytes per epoch):
    the file is an 8-byte length, a JSON header padded to 8 bytes, then the raw data, and the header
    depends only on names, dtypes, shapes and offsets. Tensors are laid out by dtype size (largest
    first), then name, as safetensors does; `tests/test_measure.py` checks this against a real save.
    """
    order = sorted(state.items(), key=lambda item: (-item[1].element_size(), item[0]))
    header, offset = {}, 0
    for name, tensor in order:
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": SAFETENSORS_DTYPES[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    return 8 + len(text) + (-len(text)) % 8 + offset


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)
