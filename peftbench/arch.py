"""Where things live inside each supported architecture: the one place that knows module names.

Methods ask an `ArchSpec` for "the query projection of block 3" or "the blocks"; they never
spell `attention.self.query` or `attn.c_attn` themselves. Paths are relative to the backbone
(`model.base_model`: `roberta`, `deberta`, `transformer`), and projections relative to a block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from peftbench.errors import UsageError


@dataclass(frozen=True)
class Projection:
    """A linear map inside a block; `part` picks a slice of a fused output (GPT-2's q|k|v)."""

    path: str
    part: int | None = None
    parts: int = 1


@dataclass(frozen=True)
class ArchSpec:
    name: str
    model_types: tuple[str, ...]
    blocks: str
    word_embeddings: str
    projections: dict[str, tuple[Projection, ...]]  # target name -> the maps it covers in a block
    attn_output: str  # attention output projection, before the residual add
    ffn_output: str  # FFN output projection, before the residual add
    block_returns_tuple: bool
    conv1d_weights: bool = False  # GPT-2's Conv1D stores the weight as (in, out)
    pre_layernorm: bool = False
    causal: bool = False  # attends only to earlier positions (GPT-2): the state at t predicts token t+1
    extra: dict[str, str] = field(default_factory=dict)

    def backbone(self, model: nn.Module) -> nn.Module:
        return getattr(model, "base_model", model)

    def block_list(self, model: nn.Module) -> nn.ModuleList:
        return self.backbone(model).get_submodule(self.blocks)

    def embeddings(self, model: nn.Module) -> nn.Embedding:
        return self.backbone(model).get_submodule(self.word_embeddings)

    def block_hidden(self, output: object) -> torch.Tensor:
        """The hidden states a block returns (DeBERTa-v2 returns a tuple, the others a tensor)."""
        return output[0] if self.block_returns_tuple else output  # type: ignore[index]

    def with_block_hidden(self, output: object, hidden: torch.Tensor) -> object:
        return (hidden, *output[1:]) if self.block_returns_tuple else hidden  # type: ignore[index]


GPT2_QKV = "attn.c_attn"

ARCHS: tuple[ArchSpec, ...] = (
    ArchSpec(
        name="roberta",
        model_types=("roberta", "bert", "xlm-roberta"),
        blocks="encoder.layer",
        word_embeddings="embeddings.word_embeddings",
        projections={
            "q": (Projection("attention.self.query"),),
            "k": (Projection("attention.self.key"),),
            "v": (Projection("attention.self.value"),),
            "o": (Projection("attention.output.dense"),),
            "ffn": (Projection("intermediate.dense"), Projection("output.dense")),
        },
        attn_output="attention.output.dense",
        ffn_output="output.dense",
        block_returns_tuple=False,
    ),
    ArchSpec(
        name="deberta-v2",
        model_types=("deberta-v2",),
        blocks="encoder.layer",
        word_embeddings="embeddings.word_embeddings",
        projections={
            "q": (Projection("attention.self.query_proj"),),
            "k": (Projection("attention.self.key_proj"),),
            "v": (Projection("attention.self.value_proj"),),
            "o": (Projection("attention.output.dense"),),
            "ffn": (Projection("intermediate.dense"), Projection("output.dense")),
        },
        attn_output="attention.output.dense",
        ffn_output="output.dense",
        block_returns_tuple=True,
    ),
    ArchSpec(
        name="gpt2",
        model_types=("gpt2",),
        blocks="h",
        word_embeddings="wte",
        projections={
            "q": (Projection(GPT2_QKV, part=0, parts=3),),
            "k": (Projection(GPT2_QKV, part=1, parts=3),),
            "v": (Projection(GPT2_QKV, part=2, parts=3),),
            "o": (Projection("attn.c_proj"),),
            "ffn": (Projection("mlp.c_fc"), Projection("mlp.c_proj")),
        },
        attn_output="attn.c_proj",
        ffn_output="mlp.c_proj",
        block_returns_tuple=False,
        conv1d_weights=True,
        pre_layernorm=True,
        causal=True,
    ),
)


def arch_for_type(model_type: str) -> ArchSpec:
    for spec in ARCHS:
        if model_type in spec.model_types:
            return spec
    supported = ", ".join(t for spec in ARCHS for t in spec.model_types)
    raise UsageError(f"unsupported architecture {model_type!r}; supported model types: {supported}")


def arch_for(model: nn.Module) -> ArchSpec:
    return arch_for_type(model.config.model_type)
