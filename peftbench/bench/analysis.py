"""Section 7 of the LoRA paper on a kept run: what the learned update looks like, without retraining.

A finished run keeps its trained tensors (`run/kept.py`); here the base model is rebuilt from the record
(pretrained weights, or a tiny preset's random init from the run's seed, exactly as the run built it), the
method applied, the kept tensors loaded, and every LoRA update read as its factors A (r x d_in), B and
ΔW = (alpha/r) B A with the frozen W it adds to.

- `subspace`: φ(A_a, A_b, i, j) = ||U_a^i^T U_b^j||_F^2 / min(i, j) (Section 7.2), U the right-singular
  vectors of A: 1 where the top-i directions of one lie in the top-j of the other, 0 where orthogonal.
- `amplification`: ||U^T W V||_F for the top-r singular directions of ΔW, of W and of a random matrix,
  ||ΔW||_F and the factor ||ΔW||_F / ||U^T W V||_F (Table 7): how much ΔW amplifies directions W
  under-emphasises.
- `spectrum`: ΔW's singular values and its effective rank (exp of the entropy of the normalised values).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from peftbench.errors import UsageError


@dataclass
class Update:
    """One adapted matrix of one layer: A (r x d_in), ΔW and W (d_out x d_in, the slice the update adds to)."""

    layer: int
    matrix: str
    a: torch.Tensor
    delta: torch.Tensor
    weight: torch.Tensor


def subspace_similarity(a_first: torch.Tensor, a_second: torch.Tensor) -> torch.Tensor:
    """φ for every i <= rank of the first, j <= rank of the second: a (r_a x r_b) matrix, entry [i-1, j-1]."""
    v_a = torch.linalg.svd(a_first.double(), full_matrices=False).Vh  # rows: right-singular vectors, by singular value
    v_b = torch.linalg.svd(a_second.double(), full_matrices=False).Vh
    overlap = (v_a @ v_b.T) ** 2  # squared cosines between direction i of one and j of the other
    cumulative = overlap.cumsum(0).cumsum(1)  # ||U_a^i^T U_b^j||_F^2
    i = torch.arange(1, overlap.shape[0] + 1, dtype=torch.float64)[:, None]
    j = torch.arange(1, overlap.shape[1] + 1, dtype=torch.float64)[None, :]
    return cumulative / torch.minimum(i, j)


def projection_norm(weight: torch.Tensor, of: torch.Tensor, r: int) -> float:
    """||U^T W V||_F with U, V the top-r left and right singular vectors of `of`."""
    u, _, vh = torch.linalg.svd(of.double(), full_matrices=False)
    return float(torch.linalg.matrix_norm(u[:, :r].T @ weight.double() @ vh[:r].T))


def amplification(delta: torch.Tensor, weight: torch.Tensor, r: int, seed: int = 0) -> dict[str, float]:
    """Table 7's row for one matrix: W projected on ΔW's, W's own and a random matrix's top-r directions."""
    generator = torch.Generator().manual_seed(seed)
    random = torch.randn(weight.shape, generator=generator, dtype=torch.float64)
    on_delta = projection_norm(weight, delta, r)
    delta_norm = float(torch.linalg.matrix_norm(delta.double()))
    return {
        "r": r,
        "delta_W": on_delta,
        "W": projection_norm(weight, weight, r),
        "random": projection_norm(weight, random, r),
        "norm_W": float(torch.linalg.matrix_norm(weight.double())),
        "norm_delta": delta_norm,
        "factor": delta_norm / on_delta if on_delta > 0 else math.inf,
    }


def effective_rank(values: torch.Tensor) -> float:
    """exp(entropy of σ / Σσ) (Roy and Vetterli): r for r equal values, 1 for one; 0 for a zero matrix."""
    total = float(values.sum())
    if total <= 0:
        return 0.0
    p = values.double() / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def spectrum(delta: torch.Tensor) -> dict[str, Any]:
    values = torch.linalg.svdvals(delta.double())
    tolerance = float(values.max()) * max(delta.shape) * torch.finfo(torch.float32).eps if values.numel() else 0.0
    return {
        "singular_values": [float(v) for v in values[: min(len(values), 64)]],
        "effective_rank": effective_rank(values),
        "numerical_rank": int((values > tolerance).sum()),
    }


# ---------------------------------------------------------------- from a kept run


def record_and_tensors(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A record and its kept tensors (a UsageError naming why when it has none)."""
    from safetensors.torch import load_file

    from peftbench.records.store import read_record

    record = read_record(path)
    kept = (record.get("measurements") or {}).get("adapters")
    if not kept:
        raise UsageError(f"{path.name}: the run kept no trained tensors (run without --no-keep-adapters, and let it finish)")
    file = path.parent.parent / kept["file"]
    if not file.is_file():
        raise UsageError(f"{path.name}: its kept tensors {file} are missing")
    return record, load_file(str(file))


def rebuilt(record: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Any:
    """The run's adapted model with its trained tensors: base weights as the run built them, the method applied."""
    from peftbench.config.resolve import resolve_sections
    from peftbench.methods import METHODS
    from peftbench.models.build import build_model

    config = record["config"]
    overrides = [
        f"hyperparameters.{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in config["hyperparameters"].items()
        if v is not None
    ]
    resolved = resolve_sections(config["method"], config["task"], config["model"], overrides=overrides)
    model = build_model(resolved.source, resolved.kind, config=resolved.hf_config, seed=record.get("seed", 0))
    adapted = METHODS.get(config["method"]).apply(model, resolved.sections["hyperparameters"])
    adapted.load_adapter_state_dict(tensors)
    return adapted


def updates(path: Path) -> list[Update]:
    """Every LoRA update of a kept run, by layer and matrix (q, k, v, o, ffn)."""
    from peftbench.methods.lora import LoraLayer, base_weight

    record, tensors = record_and_tensors(path)
    adapted = rebuilt(record, tensors)
    out = []
    for name, module in adapted.model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        layer = int(next(iter(re.findall(r"\.(\d+)\.", f".{name}.")), -1))
        weight = base_weight(module.base).detach()
        weight = weight if isinstance(module.base, torch.nn.Linear) else weight.T  # Conv1D stores (in, out)
        for matrix, (lo, hi) in module.slices.items():
            a, b = module.lora_A[matrix].detach(), module.lora_B[matrix].detach()
            out.append(Update(layer, matrix, a, module.scaling[matrix] * (b @ a), weight[lo:hi]))
    if not out:
        raise UsageError(f"{path.name}: {record['config']['method']} has no low-rank update to analyse (LoRA-family methods do)")
    return out


def pick(found: list[Update], matrix: str | None, layer: int | None, where: str) -> Update:
    """One update: the matrix (default: the first adapted) at the layer (default: the middle one, as Figure 3)."""
    matrices = sorted({u.matrix for u in found}, key=lambda m: "qkvof".find(m[0]))
    matrix = matrix or matrices[0]
    layers = sorted({u.layer for u in found if u.matrix == matrix})
    if not layers:
        raise UsageError(f"{where}: no update of matrix {matrix!r}; adapted: {', '.join(matrices)}")
    layer = layers[len(layers) // 2] if layer is None else layer
    chosen = [u for u in found if u.matrix == matrix and u.layer == layer]
    if not chosen:
        raise UsageError(f"{where}: no layer {layer} for {matrix}; layers: {', '.join(map(str, layers))}")
    return chosen[0]
