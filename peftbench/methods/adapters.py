"""Bottleneck adapters: Houlsby (`adapter_h`), Pfeiffer (`adapter_p`), Lin (`adapter_l`), AdapterDrop (`adapter_d`).

All four share one module, `BottleneckAdapter`: x + up(act(down(x))), a d -> r -> d bottleneck with
a residual connection, and `up` zero-initialised so that a freshly adapted model computes exactly
what the base model computes. The variants differ only in where the adapters sit (`Placement`)
and in which blocks get them:

| method      | sites in every adapted block                                  | own LayerNorm | blocks          |
|-------------|---------------------------------------------------------------|---------------|-----------------|
| `adapter_h` | after the attention output and the FFN output maps            | no            | all             |
| `adapter_p` | after the FFN sublayer's residual + LayerNorm (Pfeiffer's)    | no            | all             |
| `adapter_l` | on the block output (after the MLP sublayer)                  | yes (input)   | all             |
| `adapter_d` | Pfeiffer's site                                               | no            | all but lowest n|

Pfeiffer's site is where AdapterHub's `seq_bn` (Pfeiffer et al. 2021) and the microsoft/LoRA
scripts behind the paper's AdptP rows put it: with s = h + x the FFN's output plus its input and
LN the block's own (frozen) LayerNorm after them, the block's output LN(s) becomes
LN(s + up(act(down(LN(s))))): the adapter reads the normalised output, its update joins the
residual sum, and the same LayerNorm is applied again. Pre-LN families (GPT-2, Llama) have no
LayerNorm there; the block's output s becomes s + up(act(down(s))), the same formula with LN the
identity (AdapterHub's, when its layer has no LayerNorm to pass).

The adapters of a block are registered submodules of that block (`block.adapters[site]`), so
`state_dict`, `.to()` and accelerate see them and the base model's own parameter names do not
change. Forward hooks on the host module (the projection, the LayerNorm, or the block itself)
only route the activation through the adapter; `ArchSpec` says where the hosts live and how to
read a block's output (DeBERTa-v2 blocks return a tuple).

Parameter count per adapter: down d·r + r, up r·d + d, plus 2·d for AdapterL's LayerNorm. This
is the paper's Section 5.1 formula, |Θ| = L̂_Adpt (2 d r + r + d) + 2 L̂_LN d.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn

from peftbench.errors import UsageError
from peftbench.methods.base import Capabilities, Method, register
from peftbench.methods.config import NONLINEARITIES, AdapterConfig, AdapterDropConfig
from peftbench.models.arch import ArchSpec, ModelDims, dims_of

ADAPTERS_ATTR = "adapters"  # the ModuleDict on each adapted block: site name -> BottleneckAdapter

# Sites inside a block: the output of the attention output projection, of the FFN output
# projection (both before dropout, the residual add and, for post-LN models, the LayerNorm),
# the block's own output, and Pfeiffer's: after the FFN sublayer's residual add and LayerNorm.
ATTN_OUTPUT, FFN_OUTPUT, BLOCK_OUTPUT, FFN_RESIDUAL = "attn_output", "ffn_output", "block_output", "ffn_residual"


class BottleneckAdapter(nn.Module):
    """x + up(act(down(LN(x)))); `up` starts at zero, so the adapter starts as the identity.

    `layer_norm=True` (AdapterL) normalises the bottleneck's input with a trainable LayerNorm;
    the residual carries the raw input, so the identity at initialisation still holds.
    """

    def __init__(
        self,
        d_model: int,
        bottleneck: int,
        nonlinearity: str = "relu",
        layer_norm: bool = False,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        like: dict[str, Any] = {"device": device, "dtype": dtype}
        self.layer_norm = nn.LayerNorm(d_model, **like) if layer_norm else nn.Identity()
        self.down = nn.Linear(d_model, bottleneck, **like)
        self.act = getattr(nn, NONLINEARITIES[nonlinearity])()
        self.up = nn.Linear(bottleneck, d_model, **like)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """What the adapter adds to the residual stream: up(act(down(LN(x))))."""
        return self.up(self.act(self.down(self.layer_norm(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.delta(x)


def route_output(adapter: BottleneckAdapter, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    """Forward hook on a projection: its output goes through the adapter."""
    return adapter(output)


def route_after_norm(adapter: BottleneckAdapter, norm: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    """Forward hook on the FFN's closing LayerNorm (Pfeiffer): LN(s) -> LN(s + delta(LN(s))), s = h + x its input.

    `norm.forward` rather than `norm(...)`: the second pass must not run this hook again.
    """
    return norm.forward(args[0] + adapter.delta(output))


def route_block_output(arch: ArchSpec, adapter: BottleneckAdapter, module: nn.Module, args: Any, output: Any) -> Any:
    """Forward hook on a block: its hidden states (a tensor, or the first item of DeBERTa-v2's tuple) go through the adapter."""
    return arch.with_block_hidden(output, adapter(arch.block_hidden(output)))


def attach(arch: ArchSpec, block: nn.Module, site: str, adapter: BottleneckAdapter) -> None:
    """Route one site's activation through its adapter with a forward hook on the module that produces it."""
    if site == FFN_RESIDUAL and arch.ffn_norm:
        block.get_submodule(arch.ffn_norm).register_forward_hook(partial(route_after_norm, adapter))
    elif site in (BLOCK_OUTPUT, FFN_RESIDUAL):  # a pre-LN block's output is the FFN's residual sum
        block.register_forward_hook(partial(route_block_output, arch, adapter))
    else:
        host = block.get_submodule(arch.attn_output if site == ATTN_OUTPUT else arch.ffn_output)
        host.register_forward_hook(partial(route_output, adapter))


@dataclass(frozen=True)
class Placement:
    sites: tuple[str, ...]  # where in each adapted block
    layer_norm: bool = False  # each adapter carries its own trainable LayerNorm (AdapterL)


class BottleneckAdapters(Method):
    """The shared implementation; subclasses name a placement and, for AdapterDrop, the blocks."""

    capabilities = Capabilities(adds_latency=True)
    placement: ClassVar[Placement]

    def adapted_layers(self, config: AdapterConfig, n_layers: int) -> range:
        return range(n_layers)

    def adapt(self, model: nn.Module, config: AdapterConfig, arch: ArchSpec) -> None:
        d_model = dims_of(model.config).d_model
        blocks = arch.block_list(model)
        for i in self.adapted_layers(config, len(blocks)):
            block = blocks[i]
            if hasattr(block, ADAPTERS_ATTR):
                raise UsageError(f"block {i} already has adapters: apply an adapter method once, to a fresh model")
            like = next(block.parameters())
            adapters = {
                site: BottleneckAdapter(
                    d_model, config.bottleneck, config.nonlinearity, self.placement.layer_norm, device=like.device, dtype=like.dtype
                )
                for site in self.placement.sites
            }
            setattr(block, ADAPTERS_ATTR, nn.ModuleDict(adapters))
            for site, adapter in adapters.items():
                attach(arch, block, site, adapter)

    def formula(self, config: AdapterConfig, dims: ModelDims) -> int:
        """|Θ| = L̂_Adpt (2 d r + r + d) + 2 L̂_LN d (Section 5.1)."""
        n_adapters = len(self.adapted_layers(config, dims.n_layers)) * len(self.placement.sites)
        n_layer_norms = n_adapters if self.placement.layer_norm else 0
        d, r = dims.d_model, config.bottleneck
        return n_adapters * (2 * d * r + r + d) + 2 * n_layer_norms * d


@register
class AdapterHoulsby(BottleneckAdapters):
    name = "adapter_h"
    description = "Houlsby adapters: two per layer, after the attention and the FFN output projections"
    placement = Placement(sites=(ATTN_OUTPUT, FFN_OUTPUT))


@register
class AdapterPfeiffer(BottleneckAdapters):
    name = "adapter_p"
    description = "Pfeiffer adapters: one per layer, after the FFN sublayer's residual + LayerNorm"
    placement = Placement(sites=(FFN_RESIDUAL,))


@register
class AdapterLin(BottleneckAdapters):
    name = "adapter_l"
    description = "Lin adapters: one per layer on the block output, with its own trainable LayerNorm"
    placement = Placement(sites=(BLOCK_OUTPUT,), layer_norm=True)


@register
class AdapterDrop(BottleneckAdapters):
    """Pfeiffer's placement (one adapter per layer, at Pfeiffer's site) with no adapters in the lowest `drop_layers` blocks.

    Why Pfeiffer's placement: Rücklé et al. (2020) build AdapterDrop on one adapter per layer, and
    the paper's Table 2 AdptD counts on RoBERTa-base fit exactly that: r=16 gives 12 x 25,360 =
    304,320 (0.3M) and r=48 gives 894,528 (0.9M); two adapters per layer would give 0.6M / 1.8M.
    Those counts hold adapters in all 12 layers (drop_layers=0): the paper's rows count the
    adapters trained, not the ones dropped at inference.
    """

    name = "adapter_d"
    description = "AdapterDrop: Pfeiffer adapters with none in the lowest drop_layers layers"
    placement = Placement(sites=(FFN_RESIDUAL,))

    def adapted_layers(self, config: AdapterDropConfig, n_layers: int) -> range:  # type: ignore[override]
        return range(config.drop_layers, n_layers)
