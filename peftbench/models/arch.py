"""Where things live inside each supported architecture: the one place that knows module names.

Methods ask an `ArchSpec` for "the query projection of block 3" or "the blocks"; they never
spell `attention.self.query` or `attn.c_attn` themselves. Paths are relative to the backbone
(`model.base_model`: `roberta`, `deberta`, `transformer`, `model`), and projections relative to
a block. Each projection also names its shape symbolically (`d_model`, `d_attn`, `d_kv`, `d_ffn`:
fields of `ModelDims`), so parameter formulas sum over the real maps: Llama's three-matrix FFN and
its narrower grouped-query key/value maps included. Which families can generate (`causal`) and
whether a family has bias terms (`bias_switches`) are here too, not in the code that asks, and so
are the family's names for the standard config fields (`config_names`: GPT-2's `n_embd`) and where
its positions start, which is how `ModelDims` is read off any config: a transformers object, or a
`config.json` / preset as plain data, without importing torch (`peftbench validate` does that).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from peftbench.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class ModelDims:
    """The sizes that parameter formulas and hyperparameter checks need."""

    model_type: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ffn: int
    vocab_size: int  # 0 when a config does not say (a tiny preset takes its tokenizer's size when built)
    max_positions: int  # tokens a sequence can hold (RoBERTa: embeddings minus the pad offset)
    d_attn: int = 0  # width of the query and attention-output maps: n_heads x head_dim (d_model unless head_dim says otherwise)
    d_kv: int = 0  # width of the key and value maps: n_kv_heads x head_dim (below d_attn under grouped-query attention)
    has_biases: bool = True  # the blocks have bias terms (Llama's are off by default)


@dataclass(frozen=True)
class Projection:
    """A linear map inside a block; `part` picks a slice of a fused output (GPT-2's q|k|v).

    `shape` names the (in, out) widths of the map (of the slice, for a fused map) as `ModelDims`
    fields, so a formula needs no model: `("d_model", "d_kv")` is Llama's key projection.
    """

    path: str
    part: int | None = None
    parts: int = 1
    shape: tuple[str, str] = ("d_model", "d_model")


@dataclass(frozen=True)
class ArchSpec:
    name: str
    model_types: tuple[str, ...]
    blocks: str
    word_embeddings: str
    projections: dict[str, tuple[Projection, ...]]  # target name -> the maps it covers in a block
    block_returns_tuple: bool
    conv1d_weights: bool = False  # GPT-2's Conv1D stores the weight as (in, out)
    # A decoder: attends only to earlier positions (the state at t predicts token t+1) and has a
    # causal-LM class, so it can do generation tasks, is a language model when no task is given,
    # and its tiny preset uses GPT-2's single end-of-text token as bos, eos and pad.
    causal: bool = False
    # Config flags that switch the family's bias terms on (Llama: `attention_bias`, `mlp_bias`,
    # both off by default); empty: the family always has biases (RoBERTa, DeBERTa-v2, GPT-2).
    bias_switches: tuple[str, ...] = ()
    # The family's own config keys for the standard names, as transformers' `attribute_map` has them
    # (GPT-2: `n_embd` for `hidden_size`), so a config read as plain JSON gives the same sizes.
    config_names: dict[str, str] = field(default_factory=dict)
    # RoBERTa numbers positions from pad_token_id + 1 (its padding_idx; the config's default pad id
    # is 1), so 514 position embeddings hold 512 tokens; the others start at 0.
    positions_after_pad: bool = False
    # The LayerNorm that closes a post-LN block's FFN sublayer: it reads h + x (the FFN's output plus
    # its input) and its output is the block's. None in pre-LN families (GPT-2, Llama), whose block
    # output is h + x itself. Pfeiffer's adapter sits there (methods/adapters.py).
    ffn_norm: str | None = None

    @property
    def attn_output(self) -> str:
        """The attention output projection (before the residual add): the `o` target's map."""
        return self.projections["o"][0].path

    @property
    def ffn_output(self) -> str:
        """The FFN's last map (before the residual add)."""
        return self.projections["ffn"][-1].path

    def map_shapes(self, target: str, dims: Any) -> list[tuple[int, int]]:
        """(in, out) of every map `target` covers in one block, from the model's dimensions (`ModelDims`)."""
        return [(getattr(dims, p.shape[0]), getattr(dims, p.shape[1])) for p in self.projections[target]]

    def config_value(self, config: Any, name: str, default: Any = None) -> Any:
        """A standard config field (`hidden_size`, ...) of a transformers config or of a plain mapping."""
        for key in (name, self.config_names.get(name)):
            if key is None:
                continue
            value = config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)
            if value is not None:
                return value
        return default

    def has_biases(self, config: Any) -> bool:
        """Whether a model of this family with this config has bias terms in its blocks."""
        return not self.bias_switches or any(self.config_value(config, flag, False) for flag in self.bias_switches)

    def usable_positions(self, config: Any) -> int:
        """Tokens a sequence can hold: the position embeddings, less RoBERTa's offset past the pad id."""
        positions = self.config_value(config, "max_position_embeddings")
        return positions - self.config_value(config, "pad_token_id", 1) - 1 if self.positions_after_pad else positions

    def backbone(self, model: nn.Module) -> nn.Module:
        return getattr(model, "base_model", model)

    def block_list(self, model: nn.Module) -> nn.ModuleList:
        return cast("nn.ModuleList", self.backbone(model).get_submodule(self.blocks))  # what `blocks` names

    def embeddings(self, model: nn.Module) -> nn.Embedding:
        return cast("nn.Embedding", self.backbone(model).get_submodule(self.word_embeddings))  # what `word_embeddings` names

    def block_hidden(self, output: Any) -> torch.Tensor:
        """The hidden states a block returns (DeBERTa-v2 returns a tuple, the others a tensor)."""
        return output[0] if self.block_returns_tuple else output

    def with_block_hidden(self, output: Any, hidden: torch.Tensor) -> Any:
        return (hidden, *output[1:]) if self.block_returns_tuple else hidden


GPT2_QKV = "attn.c_attn"
IN_ATTN, ATTN_OUT = ("d_model", "d_attn"), ("d_attn", "d_model")  # q/k/v and the attention output map
FFN_IN, FFN_OUT = ("d_model", "d_ffn"), ("d_ffn", "d_model")
BERT_LAYOUT = {  # BERT's block layout, which RoBERTa keeps
    "q": (Projection("attention.self.query", shape=IN_ATTN),),
    "k": (Projection("attention.self.key", shape=IN_ATTN),),
    "v": (Projection("attention.self.value", shape=IN_ATTN),),
    "o": (Projection("attention.output.dense", shape=ATTN_OUT),),
    "ffn": (Projection("intermediate.dense", shape=FFN_IN), Projection("output.dense", shape=FFN_OUT)),
}

ARCHS: tuple[ArchSpec, ...] = (
    ArchSpec(
        name="roberta",
        model_types=("roberta", "xlm-roberta"),
        blocks="encoder.layer",
        word_embeddings="embeddings.word_embeddings",
        projections=BERT_LAYOUT,
        block_returns_tuple=False,
        positions_after_pad=True,
        ffn_norm="output.LayerNorm",
    ),
    ArchSpec(  # its pooler is pretrained (next-sentence prediction) and part of the backbone: frozen like it
        name="bert",
        model_types=("bert",),
        blocks="encoder.layer",
        word_embeddings="embeddings.word_embeddings",
        projections=BERT_LAYOUT,
        block_returns_tuple=False,
        ffn_norm="output.LayerNorm",
    ),
    ArchSpec(
        name="deberta-v2",
        model_types=("deberta-v2",),
        blocks="encoder.layer",
        word_embeddings="embeddings.word_embeddings",
        projections={
            "q": (Projection("attention.self.query_proj", shape=IN_ATTN),),
            "k": (Projection("attention.self.key_proj", shape=IN_ATTN),),
            "v": (Projection("attention.self.value_proj", shape=IN_ATTN),),
            "o": (Projection("attention.output.dense", shape=ATTN_OUT),),
            "ffn": (Projection("intermediate.dense", shape=FFN_IN), Projection("output.dense", shape=FFN_OUT)),
        },
        block_returns_tuple=True,
        config_names={"head_dim": "attention_head_size"},
        ffn_norm="output.LayerNorm",
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
            "ffn": (Projection("mlp.c_fc", shape=FFN_IN), Projection("mlp.c_proj", shape=FFN_OUT)),
        },
        block_returns_tuple=False,
        conv1d_weights=True,
        causal=True,
        config_names={
            "hidden_size": "n_embd",
            "num_hidden_layers": "n_layer",
            "num_attention_heads": "n_head",
            "max_position_embeddings": "n_positions",
            "intermediate_size": "n_inner",
        },
    ),
    ArchSpec(  # grouped-query attention: k and v map d_model -> d_kv (n_kv_heads x head_dim); no biases by default
        name="llama",
        model_types=("llama",),
        blocks="layers",
        word_embeddings="embed_tokens",
        projections={
            "q": (Projection("self_attn.q_proj", shape=IN_ATTN),),
            "k": (Projection("self_attn.k_proj", shape=("d_model", "d_kv")),),
            "v": (Projection("self_attn.v_proj", shape=("d_model", "d_kv")),),
            "o": (Projection("self_attn.o_proj", shape=ATTN_OUT),),
            "ffn": (
                Projection("mlp.gate_proj", shape=FFN_IN),
                Projection("mlp.up_proj", shape=FFN_IN),
                Projection("mlp.down_proj", shape=FFN_OUT),
            ),
        },
        block_returns_tuple=False,
        causal=True,
        bias_switches=("attention_bias", "mlp_bias"),
    ),
)


def arch_for_type(model_type: str) -> ArchSpec:
    for spec in ARCHS:
        if model_type in spec.model_types:
            return spec
    supported = ", ".join(t for spec in ARCHS for t in spec.model_types)
    raise UsageError(f"unsupported architecture {model_type!r}; supported model types: {supported}")


def arch_serving(model_type: str, name: str, kind: str) -> ArchSpec:
    """The family's spec, checked to serve a task kind: generation needs a decoder (a causal-LM head)."""
    arch = arch_for_type(model_type)
    if kind == "generation" and not arch.causal:
        decoders = ", ".join(t for a in ARCHS if a.causal for t in a.model_types)
        raise UsageError(f"{name} ({model_type}) has no causal-LM head; generation tasks need a decoder ({decoders})")
    return arch


def arch_for(model: nn.Module) -> ArchSpec:
    return arch_for_type(config_model_type(model.config))


def config_model_type(config: Any) -> str:
    return config["model_type"] if isinstance(config, Mapping) else config.model_type


def dims_of(config: Any) -> ModelDims:
    """The sizes of a model from its config: a transformers config, or plain data (a `config.json`, a preset)."""
    arch = arch_for_type(config_model_type(config))
    value = partial(arch.config_value, config)
    for name in ("hidden_size", "num_attention_heads", "num_hidden_layers", "max_position_embeddings"):
        if value(name) is None:
            keys = " or ".join(repr(k) for k in dict.fromkeys((name, arch.config_names.get(name, name))))
            raise UsageError(f"the {config_model_type(config)} model config gives no {keys}")
    d_model, n_heads = value("hidden_size"), value("num_attention_heads")
    head_dim = value("head_dim") or d_model // n_heads
    return ModelDims(
        model_type=config_model_type(config),
        d_model=d_model,
        n_layers=value("num_hidden_layers"),
        n_heads=n_heads,
        d_ffn=value("intermediate_size") or 4 * d_model,
        vocab_size=value("vocab_size", 0),
        max_positions=arch.usable_positions(config),
        d_attn=n_heads * head_dim,
        d_kv=value("num_key_value_heads", n_heads) * head_dim,
        has_biases=arch.has_biases(config),
    )
