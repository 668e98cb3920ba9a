"""QLoRA (Dettmers et al. 2023): LoRA on a frozen base whose linear maps are stored in 4 bits (NF4, double quantisation).

LoRA is applied first, exactly as `lora` applies it (the same A, B, targets and counts); then every frozen map
of every block that the ArchSpec names (q, k, v, o and the FFN; GPT-2's Conv1D transposed to a Linear's layout)
is replaced by bitsandbytes' `Linear4bit`, dequantised to `compute_dtype` for each matmul. The LoRA factors
stay in full precision and are all that trains. bitsandbytes runs 4-bit on the CPU since 0.45; torchao's NF4
tensor, the other backend the issue names, is not wired here.

A 4-bit base cannot take B·A in place, so `qlora` does not merge (merging means dequantising to a copy,
which is a deployment step, not this method). On the meta device (`peftbench params`) nothing can be
quantised and the base stays as it is: the trainable counts, which are LoRA's, do not depend on it.
The record's `hooks.qlora` names the backend and its version, the data types and the base's weight bytes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from peftbench.errors import UsageError
from peftbench.methods.base import Adapted, Capabilities, register
from peftbench.methods.config import QloraConfig
from peftbench.methods.lora import Lora, LoraLayer, set_submodule
from peftbench.models.arch import ArchSpec

HOOK = "qlora"  # record["hooks"][HOOK]


def quantised(base: nn.Module, config: QloraConfig, transposed: bool) -> nn.Module:
    """`base` (an nn.Linear, or GPT-2's Conv1D whose weight is (in, out)) as a frozen bitsandbytes `Linear4bit`."""
    import bitsandbytes as bnb

    weight: torch.Tensor = base.get_parameter("weight").detach()
    weight = weight.T.contiguous() if transposed else weight
    out_features, in_features = weight.shape
    layer = bnb.nn.Linear4bit(
        in_features,
        out_features,
        bias=base.bias is not None,
        compute_dtype=getattr(torch, config.compute_dtype),
        compress_statistics=config.double_quant,
        quant_type=config.quant_type,
        device="meta",
    )
    layer.weight = bnb.nn.Params4bit(
        weight.to(torch.float32), requires_grad=False, compress_statistics=config.double_quant, quant_type=config.quant_type
    )
    if base.bias is not None:
        layer.bias = nn.Parameter(base.get_parameter("bias").detach().clone(), requires_grad=False)
    return layer.to(weight.device)  # bitsandbytes quantises when the weight moves to its device


def quantise_blocks(model: nn.Module, arch: ArchSpec, config: QloraConfig) -> int:
    """Every map the ArchSpec names in every block, in 4 bits (inside a LoRA layer: its base); returns how many."""
    paths = sorted({p.path for projections in arch.projections.values() for p in projections})
    done = 0
    for block in arch.block_list(model):
        for path in paths:
            module = block.get_submodule(path)
            holder = module if isinstance(module, LoraLayer) else None
            base = holder.base if holder is not None else module
            if base.weight.is_meta:  # `params`: shapes only, nothing to quantise
                continue
            layer = quantised(base, config, transposed=arch.conv1d_weights)
            if holder is not None:
                holder.base = layer
            else:
                set_submodule(block, path, layer)
            done += 1
    return done


def base_weight_bytes(model: nn.Module) -> int:
    """Bytes of the frozen model as stored: 4-bit weights with their quantisation state, everything else as it is."""
    import bitsandbytes as bnb

    total = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if isinstance(module, bnb.nn.Linear4bit) and state is not None:
            packed = state.as_dict(packed=True).values()
            total += sum(t.numel() * t.element_size() for t in packed if isinstance(t, torch.Tensor))
    return total


@register
class Qlora(Lora):
    name = "qlora"
    description = "LoRA on a frozen 4-bit NF4 base (bitsandbytes, double quantisation); LoRA's count; not mergeable"
    capabilities = Capabilities(mergeable=False, adds_latency=True)

    def adapt(self, model: nn.Module, config: QloraConfig, arch: ArchSpec) -> None:  # type: ignore[override]
        super().adapt(model, config, arch)
        maps = quantise_blocks(model, arch, config)
        object.__setattr__(model, "peftbench_quantised_maps", maps)

    def callbacks(self, adapted: Adapted) -> list[Any]:
        return [QloraReport(adapted)]

    def merge(self, model: nn.Module) -> Any:
        raise UsageError("qlora cannot be merged: a 4-bit base cannot take B·A in place (dequantise a copy to deploy)")

    def unmerge(self, model: nn.Module, merged: Any) -> None:
        raise UsageError("qlora cannot be merged: a 4-bit base cannot take B·A in place (dequantise a copy to deploy)")


def describe(adapted: Adapted) -> dict[str, Any]:
    import bitsandbytes as bnb

    config: QloraConfig = adapted.config  # type: ignore[assignment]
    return {
        "backend": f"bitsandbytes {bnb.__version__}",
        "quant_type": config.quant_type,
        "compute_dtype": config.compute_dtype,
        "double_quant": config.double_quant,
        "quantised_maps": getattr(adapted.model, "peftbench_quantised_maps", 0),
        "base_weight_bytes": base_weight_bytes(adapted.model),
        "base_weight_bytes_unquantised": 4 * (adapted.base_total - adapted.param_counts()["head"]),
    }


class QloraReport:
    """The `run.hooks.Callback` of QLoRA (duck-typed): writes `record["hooks"]["qlora"]` once."""

    def __init__(self, adapted: Adapted):
        self.adapted = adapted

    def on_step_end(self, state: Any) -> None:
        if HOOK not in state.record["hooks"]:
            state.record["hooks"][HOOK] = describe(self.adapted)

    def on_epoch_end(self, state: Any, entry: dict[str, Any]) -> None:
        self.on_step_end(state)
