"""LoRA (Hu et al. 2021): W x + (alpha / r) B A x, with B = 0 at the start.

Each adapted projection is wrapped by a `LoraLayer`. A fused projection (GPT-2's `c_attn`, which
computes q|k|v at once) gets one (A, B) pair per chosen slice, so "q and v" adapts exactly the
query and value columns. `merge` folds B A into the weights and puts the original module back,
so a merged model runs no LoRA code at all.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from peftbench.methods.base import Capabilities, Method, register
from peftbench.methods.config import LoraConfig
from peftbench.models.arch import ArchSpec, ModelDims, arch_for_type


def base_weight(module: nn.Module) -> torch.Tensor:
    """The weight of an nn.Linear or of GPT-2's Conv1D: a Parameter either way."""
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    return weight


def weight_shape(module: nn.Module) -> tuple[int, int]:
    """(in_features, out_features) of an nn.Linear or of GPT-2's Conv1D (weight stored in x out)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    d_in, d_out = base_weight(module).shape
    return d_in, d_out


class LoraLayer(nn.Module):
    """A frozen linear map plus low-rank updates on slices of its output."""

    def __init__(self, base: nn.Module, slices: dict[str, tuple[int, int]], ranks: dict[str, int], alpha: float, dropout: float):
        super().__init__()
        self.base = base
        self.slices = slices
        self.scaling = {name: alpha / ranks[name] for name in slices}
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        d_in, self.d_out = weight_shape(base)
        device, dtype = base_weight(base).device, base_weight(base).dtype
        self.lora_A = nn.ParameterDict({n: nn.Parameter(torch.empty(ranks[n], d_in, device=device, dtype=dtype)) for n in slices})
        self.lora_B = nn.ParameterDict(
            {n: nn.Parameter(torch.zeros(hi - lo, ranks[n], device=device, dtype=dtype)) for n, (lo, hi) in slices.items()}
        )
        for a in self.lora_A.values():
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        h = self.dropout(x)
        for name, (lo, hi) in self.slices.items():
            down = h @ self.lora_A[name].T
            if hi - lo == self.d_out:
                out = out + (down @ self.lora_B[name].T) * self.scaling[name]
            else:  # a slice of a fused map (GPT-2's q|k|v): accumulated into its columns by one GEMM, no temporary
                out = add_into_columns(out, down, self.lora_B[name], self.scaling[name], lo, hi)
        return out

    @torch.no_grad()
    def fold(self, sign: float) -> None:
        """Add (sign=+1) or remove (sign=-1) B A into the base weight."""
        weight = base_weight(self.base)
        for name, (lo, hi) in self.slices.items():
            delta = sign * self.scaling[name] * (self.lora_B[name] @ self.lora_A[name])  # (out, in)
            if isinstance(self.base, nn.Linear):
                weight[lo:hi, :] += delta
            else:
                weight[:, lo:hi] += delta.T

    @torch.no_grad()
    def reinitialise(self, generator: torch.Generator | None = None) -> None:
        """A fresh start as at construction: A Kaiming-uniform, B = 0 (ReLoRA restarts after a `fold(+1)`).

        A is drawn on the CPU from `generator`, so every process of a distributed run draws the same A.
        """
        for a in self.lora_A.values():
            fresh = torch.empty(a.shape, dtype=torch.float32)
            nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=generator)
            a.copy_(fresh)
        for b in self.lora_B.values():
            b.zero_()


def add_into_columns(out: torch.Tensor, down: torch.Tensor, b: torch.Tensor, scale: float, lo: int, hi: int) -> torch.Tensor:
    """out[..., lo:hi] += scale * down @ b.T, in place: one GEMM into the columns, nothing allocated but d `down` and d `b`.

    The obvious forms cost memory that peft's full-width LoRA on GPT-2's c_attn does not: padding each
    slice's update to the fused width made two full-width temporaries per layer and forward; computing
    the update then `out[..., lo:hi] += delta` made two slice-wide temporaries per slice in the forward,
    and, `out` being a view (Conv1D's `addmm(...).view(...)`), autograd's in-place on its slice (a
    `CopySlices` on the base, an `AsStridedBackward0` on `out`) allocated two full-width and two
    slice-wide gradients per slice in the backward. Here the forward is `addmm_` on the columns (a
    strided BLAS output) and the backward passes the gradient through as `out`'s and reads its columns
    in place: d down = scale g b, d b = scale g^T down, both r wide. Bit for bit the values of the
    unfused form where alpha / r is a power of two (every spec row); otherwise within a rounding.

    Safe because no autograd node saved `out` (a Linear's or Conv1D's output is not kept for its
    backward); the in-place add still bumps `out`'s version, so autograd would refuse a backward
    through a node that had saved it. The caller owns `out`: it is the base map's fresh output.
    """
    if not out.is_contiguous() or not out.dtype == down.dtype == b.dtype:  # not the base output this expects: plain autograd
        out[..., lo:hi] += (down @ b.T) * scale
        return out
    if torch.is_grad_enabled() and (out.requires_grad or down.requires_grad or b.requires_grad):
        return _AddIntoColumns.apply(out, down, b, scale, lo, hi)
    out.view(-1, out.shape[-1])[:, lo:hi].addmm_(down.reshape(-1, down.shape[-1]), b.T, alpha=scale)
    return out


class _AddIntoColumns(torch.autograd.Function):
    """`add_into_columns` as one autograd node; `out` modified in place, not `mark_dirty`: that rebases the view `out`."""

    @staticmethod
    def forward(ctx, out: torch.Tensor, down: torch.Tensor, b: torch.Tensor, scale: float, lo: int, hi: int) -> torch.Tensor:
        out.view(-1, out.shape[-1])[:, lo:hi].addmm_(down.reshape(-1, down.shape[-1]), b.T, alpha=scale)
        ctx.save_for_backward(down, b)
        ctx.scale, ctx.lo, ctx.hi = scale, lo, hi
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        down, b = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])[:, ctx.lo : ctx.hi]  # a view where `grad` is contiguous
        d_down = (g @ b).mul_(ctx.scale).view(down.shape) if ctx.needs_input_grad[1] else None
        d_b = (g.T @ down.reshape(-1, down.shape[-1])).mul_(ctx.scale) if ctx.needs_input_grad[2] else None
        return grad, d_down, d_b, None, None, None


def lora_sites(arch: ArchSpec, config: LoraConfig) -> dict[str, dict[str, tuple[str, int, int]]]:
    """Per module path inside a block: slice name -> (target, part, number of parts of a fused map)."""
    sites: dict[str, dict[str, tuple[str, int, int]]] = {}
    for target in config.targets:
        for i, proj in enumerate(arch.projections[target]):
            name = target if len(arch.projections[target]) == 1 else f"{target}{i}"
            sites.setdefault(proj.path, {})[name] = (target, proj.part or 0, proj.parts)
    return sites


def set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


@register
class Lora(Method):
    name = "lora"
    description = "low-rank updates B·A on chosen projections (default W_q, W_v); mergeable"
    capabilities = Capabilities(mergeable=True)

    def adapt(self, model: nn.Module, config: LoraConfig, arch: ArchSpec) -> None:
        for block in arch.block_list(model):
            for path, parts in lora_sites(arch, config).items():
                base = block.get_submodule(path)
                d_out = weight_shape(base)[1]
                slices = {n: (part * d_out // k, (part + 1) * d_out // k) for n, (_, part, k) in parts.items()}
                ranks = {n: config.rank(target) for n, (target, _, _) in parts.items()}
                set_submodule(block, path, LoraLayer(base, slices, ranks, config.alpha, config.lora_dropout))

    def formula(self, config: LoraConfig, dims: ModelDims) -> int:
        """r (d_in + d_out) per adapted map, summed over the maps of every target, times the layers.

        The paper's 2 x L̂ x d_model x r (Section 5.1) is the case of square maps (q, k, v, o of
        RoBERTa, DeBERTa-v2, GPT-2's q|k|v slices). The sum also covers what it does not: a
        two- or three-matrix FFN (d_model <-> d_ffn; Llama's gate, up and down) and the narrower
        key/value maps of grouped-query attention. Shapes come from the `ArchSpec`.
        """
        arch = arch_for_type(dims.model_type)
        per_layer = sum(config.rank(t) * (d_in + d_out) for t in config.targets for d_in, d_out in arch.map_shapes(t, dims))
        return dims.n_layers * per_layer

    def merge(self, model: nn.Module) -> dict[str, LoraLayer]:
        """Fold every LoRA layer into its base weight and put the base module back in its place."""
        layers = dict(lora_layers(model))
        for path, layer in layers.items():
            layer.fold(+1)
            set_submodule(model, path, layer.base)
        return layers

    def unmerge(self, model: nn.Module, merged: dict[str, LoraLayer]) -> None:
        for path, layer in merged.items():
            layer.fold(-1)
            set_submodule(model, path, layer)


def lora_layers(model: nn.Module) -> list[tuple[str, LoraLayer]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoraLayer)]
