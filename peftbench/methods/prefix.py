"""Prefix methods of the paper's baselines (Section 5.1): `prefix_embed` and `prefix_layer`.

Both insert l_p positions before each sequence and l_i positions right after each example's
prompt (`prompt_lengths`, from the collate step: the whole input for classification, the source
for generation). `PrefixTuning`, a module registered on the backbone, holds the trainable vectors
and routes activations with hooks:

- a forward pre-hook on the backbone turns `input_ids` into `inputs_embeds` with the inserted
  vectors (gathered into place, so each row of a right- or left-padded batch gets its infix right
  after its own prompt) and extends `attention_mask`, `position_ids` and `token_type_ids`;
- `prefix_layer` adds a forward pre-hook on every block that replaces the block's input at the
  inserted positions by that layer's trainable vectors (L x d x (l_p + l_i) in all; the vectors
  inserted as embeddings are then fixed zeros, overwritten before the first block);
- a forward hook on the backbone removes the inserted positions from its output
  (`last_hidden_state`, hidden states, attentions), so the head, labels and losses see the
  original length. In a causal model the state kept for token t is the one that predicts token
  t+1: the last inserted position before t+1, so the token before an infix reads the infix
  (GPT-2 classifies and predicts the first target token after seeing it).

Generation: the prompt pass (no cache, or an empty one) inserts, so the cache holds the inserted
positions; a later pass with a non-empty cache inserts nothing, and the 2D attention mask and
position ids that `generate` builds for the original tokens are widened / shifted by l_p + l_i
to match the longer cache.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from peftbench.errors import UsageError
from peftbench.methods.base import Capabilities, Method, register
from peftbench.methods.config import PrefixConfig
from peftbench.models.arch import ArchSpec, ModelDims, arch_for

MODULE_NAME = "prefix_tuning"  # attribute on the backbone: `<backbone>.prefix_tuning.{prefix,infix}`

#: The keyword a backbone's cache arrives under. transformers 5.24 renamed `past_key_values` to
#: `cache` in GPT-2 and `generate` (the old name is a deprecated alias until 5.40, translated by the
#: model's own `forward`, which runs after our pre-hook), so the hook looks for both: a hook that
#: missed the cache would take every decoding step for a prompt pass and insert the vectors again.
CACHE_KWARGS = ("cache", "past_key_values")


@dataclass(frozen=True)
class Layout:
    """Where the original and the inserted positions of one batch sit in the longer sequence.

    source: (B, T + E) for each longer position, its index into cat([original, inserted]);
    slots: (B, E) the inserted positions (prefix first); read: (B, T) the position whose state
    stands for original token t in the output.
    """

    source: torch.Tensor
    slots: torch.Tensor
    read: torch.Tensor


def make_layout(index: torch.Tensor, length: int, prefix_len: int, infix_len: int, causal: bool) -> Layout:
    """index: (B,) where each row's infix goes, in original positions (0..length)."""
    batch, device = index.shape[0], index.device
    t = torch.arange(length, device=device).expand(batch, -1)
    dest = prefix_len + t + infix_len * (t >= index[:, None])
    read = prefix_len + t + infix_len * (t + 1 >= index[:, None]) if causal else dest
    slots = torch.cat(
        [
            torch.arange(prefix_len, device=device).expand(batch, -1),
            prefix_len + index[:, None] + torch.arange(infix_len, device=device),
        ],
        dim=1,
    )
    extra = prefix_len + infix_len
    source = torch.empty(batch, length + extra, dtype=torch.long, device=device)
    source.scatter_(1, dest, t)
    source.scatter_(1, slots, length + torch.arange(extra, device=device).expand(batch, -1))
    return Layout(source=source, slots=slots, read=read)


def gather_seq(x: torch.Tensor, index: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """x[b, index[b, j], ...] along `dim` (the batch is dim 0)."""
    shape = list(x.shape)
    shape[dim] = index.shape[1]
    view = [index.shape[0]] + [1] * (x.dim() - 1)
    view[dim] = index.shape[1]
    return x.gather(dim, index.view(view).expand(shape))


def insert(x: torch.Tensor, inserted: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(B, T, ...) and (B, E, ...) -> (B, T + E, ...) with the inserted rows in their slots."""
    return gather_seq(torch.cat([x, inserted.to(x.dtype)], dim=1), layout.source)


def infix_index(
    prompt_lengths: torch.Tensor | None, mask: torch.Tensor | None, batch: int, length: int, device: torch.device
) -> torch.Tensor:
    """Per row, the position right after its prompt: after the p-th real token (padding on either side)."""
    if prompt_lengths is not None:
        p = torch.as_tensor(prompt_lengths, device=device).long().reshape(-1)
        if p.numel() != batch:
            if p.numel() == 0 or batch % p.numel():
                raise UsageError(f"prompt_lengths has {p.numel()} entries for a batch of {batch}")
            p = p.repeat_interleave(batch // p.numel())  # generate's beams / return sequences, expanded per row
    if mask is None:
        return torch.full((batch,), length, device=device) if prompt_lengths is None else p.clamp(0, length)
    seen = (mask != 0).long().cumsum(1)
    p = seen[:, -1] if prompt_lengths is None else torch.minimum(p.clamp(min=0), seen[:, -1])
    return (seen < p[:, None]).sum(1) + (p > 0).long()


class PrefixTuning(nn.Module):
    """The inserted vectors of one model and the hooks that put them in and take them out.

    `prefix`: (l_p, d) for prefix_embed, (L, l_p, d) for prefix_layer; `infix` likewise with l_i.
    """

    prefix: nn.Parameter | None  # registered in __init__ (None when its length is 0)
    infix: nn.Parameter | None

    def __init__(self, arch: ArchSpec, backbone: nn.Module, prefix_len: int, infix_len: int, layers: int, init_std: float):
        super().__init__()
        self.arch = arch
        self.prefix_len, self.infix_len, self.layers = prefix_len, infix_len, layers
        embeddings = arch.embeddings(backbone)
        weight = embeddings.weight
        self.dim = weight.shape[1]
        lead = (layers,) if layers else ()
        for name, n in (("prefix", prefix_len), ("infix", infix_len)):
            param = nn.Parameter(torch.empty(*lead, n, self.dim, device=weight.device, dtype=weight.dtype)) if n else None
            self.register_parameter(name, param)
        with torch.no_grad():
            for param in (self.prefix, self.infix):
                if param is None:
                    continue
                if layers:  # activations of every layer: small random
                    param.normal_(0.0, init_std)
                else:  # input embeddings: copies of the embeddings of random vocabulary tokens
                    ids = torch.randint(weight.shape[0], param.shape[:-1], device="cpu").to(weight.device)
                    param.copy_(weight[ids])
        self._arg_names = positional_names(backbone.forward)
        self.prompt_lengths: torch.Tensor | None = None  # set by `Method.before_forward` for each call / generate
        self._layout: Layout | None = None  # the batch being run, between the backbone's pre-hook and hook
        self._index: torch.Tensor | None = None  # the last prompt pass's infix positions, for cached steps

    @property
    def extra(self) -> int:
        return self.prefix_len + self.infix_len

    def attach(self, backbone: nn.Module, blocks: nn.ModuleList | None) -> None:
        backbone.register_forward_pre_hook(self._before_backbone, with_kwargs=True)
        backbone.register_forward_hook(self._after_backbone)
        for i, block in enumerate(blocks or ()):
            block.register_forward_pre_hook(partial(self._before_block, i), with_kwargs=True)

    def vectors(self, batch: int, layer: int | None) -> torch.Tensor:
        """(B, l_p + l_i, d): the vectors of one layer (None: the embedding layer)."""
        parts = [p if layer is None else p[layer] for p in (self.prefix, self.infix) if p is not None]
        return torch.cat(parts, dim=0).unsqueeze(0).expand(batch, -1, -1)

    # ------------------------------------------------------------------ hooks

    def _before_backbone(self, backbone: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kw = {**dict(zip(self._arg_names, args, strict=False)), **kwargs}
        self._layout = None
        cache = passed_cache(kw)
        if cache is not None and cache.get_seq_length() > 0:
            return (), self._continue(kw, cache.get_seq_length())
        embeds = kw.get("inputs_embeds")
        if embeds is None:
            embeds = self.arch.embeddings(backbone)(kw["input_ids"])
        batch, length = embeds.shape[:2]
        mask = kw.get("attention_mask")
        if mask is not None and mask.dim() != 2:
            raise UsageError(f"prefix methods need a 2D attention mask (batch, length), got shape {tuple(mask.shape)}")
        index = infix_index(self.prompt_lengths, mask, batch, length, embeds.device)
        layout = make_layout(index, length, self.prefix_len, self.infix_len, self.arch.causal)
        inserted = self.vectors(batch, None) if not self.layers else embeds.new_zeros(batch, self.extra, embeds.shape[-1])
        kw["inputs_embeds"] = insert(embeds, inserted, layout)
        kw["input_ids"] = None
        if mask is not None:
            kw["attention_mask"] = insert(mask, mask.new_ones(batch, self.extra), layout)
        if kw.get("position_ids") is not None:
            kw["position_ids"] = self._positions(kw["position_ids"].expand(batch, -1), index, layout)
        if kw.get("token_type_ids") is not None:
            types = kw["token_type_ids"].expand(batch, -1)
            before = gather_seq(types, (index - 1).clamp(min=0)[:, None]).expand(-1, self.infix_len)
            kw["token_type_ids"] = insert(types, torch.cat([types.new_zeros(batch, self.prefix_len), before], dim=1), layout)
        self._layout, self._index = layout, index
        return (), kw

    def _positions(self, positions: torch.Tensor, index: torch.Tensor, layout: Layout) -> torch.Tensor:
        """Shift the caller's positions past the inserted ones: the prefix takes the first ones, the infix follows its prompt."""
        t = torch.arange(positions.shape[1], device=positions.device)
        shifted = positions + self.prefix_len + self.infix_len * (t >= index[:, None])
        last = torch.where(index > 0, gather_seq(positions, (index - 1).clamp(min=0)[:, None])[:, 0], -1)
        infix = last[:, None] + 1 + self.prefix_len + torch.arange(self.infix_len, device=positions.device)
        prefix = positions[:, :1] + torch.arange(self.prefix_len, device=positions.device)  # RoBERTa counts from pad + 1
        return gather_seq(torch.cat([shifted, prefix.to(positions.dtype), infix.to(positions.dtype)], dim=1), layout.source)

    def _continue(self, kw: dict, past: int) -> dict:
        """A step after the prompt pass: the cache holds the inserted positions; the new tokens come after them."""
        mask = kw.get("attention_mask")
        new = (kw["input_ids"] if kw.get("input_ids") is not None else kw["inputs_embeds"]).shape[1]
        if mask is not None and mask.dim() == 2 and mask.shape[1] != past + new:
            if mask.shape[1] != past + new - self.extra or self._index is None:
                raise UsageError(
                    f"attention mask of length {mask.shape[1]} fits neither the cache ({past} positions, "
                    f"{self.extra} of them inserted) nor the cache without the inserted positions, plus {new} new"
                )
            index = self._index
            if index.shape[0] != mask.shape[0]:
                index = index.repeat_interleave(mask.shape[0] // index.shape[0])
            layout = make_layout(index, mask.shape[1], self.prefix_len, self.infix_len, self.arch.causal)
            kw["attention_mask"] = insert(mask, mask.new_ones(mask.shape[0], self.extra), layout)
            if kw.get("position_ids") is not None:
                kw["position_ids"] = kw["position_ids"] + self.extra
        elif mask is None and kw.get("position_ids") is not None:
            kw["position_ids"] = kw["position_ids"] + self.extra
        return kw

    def _before_block(self, layer: int, block: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        """prefix_layer: the block's input at the inserted positions is this layer's trainable vectors."""
        layout = self._layout
        if layout is None:
            return None
        hidden = args[0] if args else kwargs["hidden_states"]
        values = self.vectors(hidden.shape[0], layer).to(hidden.dtype)
        hidden = hidden.scatter(1, layout.slots[..., None].expand(-1, -1, hidden.shape[-1]), values)
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden}

    def _after_backbone(self, backbone: nn.Module, args: tuple, output: Any) -> Any:
        layout, self._layout = self._layout, None
        if layout is None:
            return output
        length = layout.source.shape[1]

        def strip(x: Any) -> Any:
            if isinstance(x, torch.Tensor) and x.dim() >= 3 and x.shape[1] == length:
                return gather_seq(x, layout.read)
            if isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[-1] == length:  # attention maps
                return gather_seq(gather_seq(x, layout.read, dim=2), layout.read, dim=3)
            if isinstance(x, tuple):
                return tuple(strip(y) for y in x)
            return x

        if isinstance(output, tuple) and not hasattr(output, "keys"):
            return strip(output)
        for key in ("last_hidden_state", "hidden_states", "attentions"):
            if getattr(output, key, None) is not None:
                setattr(output, key, strip(getattr(output, key)))
        pooler = getattr(backbone, "pooler", None)
        if getattr(output, "pooler_output", None) is not None and pooler is not None:
            output.pooler_output = pooler(output.last_hidden_state)  # pooled from the first original token
        return output


def passed_cache(kwargs: dict[str, Any]) -> Any:
    """The key/value cache of a backbone call under either of its names (`CACHE_KWARGS`), or None."""
    for name in CACHE_KWARGS:
        cache = kwargs.get(name)
        if cache is not None and hasattr(cache, "get_seq_length"):
            return cache
    return None


def positional_names(fn: Any) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind in kinds]


def prefix_module(model: nn.Module) -> PrefixTuning:
    module = getattr(arch_for(model).backbone(model), MODULE_NAME, None)
    if not isinstance(module, PrefixTuning):
        raise UsageError("this model has no prefix method applied")
    return module


class PrefixMethod(Method):
    per_layer = False
    capabilities = Capabilities(mergeable=False, adds_latency=True, changes_seq_len=True)

    def adapt(self, model: nn.Module, config: PrefixConfig, arch: ArchSpec) -> None:
        backbone = arch.backbone(model)
        if hasattr(backbone, MODULE_NAME):
            raise UsageError(f"a prefix method is already applied to this model ({MODULE_NAME} exists)")
        blocks = arch.block_list(model) if self.per_layer else None
        std = getattr(model.config, "initializer_range", 0.02)
        module = PrefixTuning(arch, backbone, config.prefix_len, config.infix_len, len(blocks) if blocks else 0, std)
        backbone.add_module(MODULE_NAME, module)
        module.attach(backbone, blocks)

    def before_forward(self, model: nn.Module, prompt_lengths: torch.Tensor | None) -> None:
        prefix_module(model).prompt_lengths = prompt_lengths


@register
class PrefixEmbed(PrefixMethod):
    name = "prefix_embed"
    description = "trainable embeddings at l_p prefix and l_i infix positions; d·(l_p+l_i)"

    def formula(self, config: PrefixConfig, dims: ModelDims) -> int:
        """PreEmbed: d_model x (l_p + l_i)."""
        return dims.d_model * (config.prefix_len + config.infix_len)


@register
class PrefixLayer(PrefixMethod):
    name = "prefix_layer"
    description = "trainable activations at l_p prefix and l_i infix positions in every layer; L·d·(l_p+l_i)"
    per_layer = True

    def formula(self, config: PrefixConfig, dims: ModelDims) -> int:
        """PreLayer: L x d_model x (l_p + l_i)."""
        return dims.n_layers * dims.d_model * (config.prefix_len + config.infix_len)
