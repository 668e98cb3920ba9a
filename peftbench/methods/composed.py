"""Composed methods: several registered methods applied to one model in order (`lora+prefix_embed`).

The paper's LoRA+PE and LoRA+PL rows (Table 15) train LoRA on W_q, W_v together with a prefix
method. A `Composed` method is one more `Method`: its name joins its parts' names with `+`, its
config holds one config per part under the part's name (`--set lora.r=8 --set
prefix_embed.prefix_len=64`; a short name such as `prefix_len` works when one part has it), and
each part adapts the model in turn. Counts add up because the parts' trainable tensors are
disjoint; the formula is the sum of the parts'; capabilities combine (mergeable when a part is:
`merge` folds the mergeable parts and the others stay; the sequence grows when a part inserts
positions). Each composition has its spec file (`methods/lora+prefix_embed.yaml`) with the
parts' hyperparameters nested under their names and its own presets.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from peftbench.methods import lora, prefix  # noqa: F401 - the parts register before their compositions
from peftbench.methods.base import METHODS, Adapted, Capabilities, Method
from peftbench.methods.config import COMPOSITIONS, CONFIGS, SEPARATOR, ComposedConfig
from peftbench.models.arch import ArchSpec, ModelDims


def combined(parts: tuple[Method, ...]) -> Capabilities:
    caps = [p.capabilities for p in parts]
    return Capabilities(
        mergeable=any(c.mergeable for c in caps),
        adds_latency=any(c.adds_latency for c in caps),
        changes_seq_len=any(c.changes_seq_len for c in caps),
    )


class Composed(Method):
    """Its parts, applied in order to one model; everything else delegates to the part it concerns."""

    def __init__(self, names: tuple[str, ...]):
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"a composition needs two or more distinct methods, got {names}")
        self.parts = tuple(METHODS.get(n) for n in names)
        self.name = SEPARATOR.join(names)
        self.description = " then ".join(names) + " on one model; each part's hyperparameters under its name (PART.key)"
        self.config_cls = CONFIGS.get(self.name)
        self.capabilities = combined(self.parts)

    def part_configs(self, config: ComposedConfig) -> list[tuple[Method, Any]]:
        return [(part, getattr(config, part.name)) for part in self.parts]

    def adapt(self, model: nn.Module, config: ComposedConfig, arch: ArchSpec) -> None:
        for part, part_config in self.part_configs(config):
            part.adapt(model, part_config, arch)

    def before_forward(self, model: nn.Module, prompt_lengths: torch.Tensor | None) -> None:
        for part in self.parts:
            part.before_forward(model, prompt_lengths)

    def formula(self, config: ComposedConfig, dims: ModelDims) -> int | None:
        """The sum of the parts' formulas (the paper counts LoRA+PE and LoRA+PL so), if every part has one."""
        counts = [part.formula(c, dims) for part, c in self.part_configs(config)]
        known = [c for c in counts if c is not None]
        return None if len(known) < len(counts) else sum(known)

    def callbacks(self, adapted: Adapted) -> list[Any]:
        return [hook for part in self.parts for hook in part.callbacks(adapted)]

    def merge(self, model: nn.Module) -> list[tuple[Method, Any]]:
        """Fold the mergeable parts; the others (inserted positions) stay on the inference path."""
        return [(part, part.merge(model)) for part in self.parts if part.capabilities.mergeable]

    def unmerge(self, model: nn.Module, merged: list[tuple[Method, Any]]) -> None:
        for part, state in reversed(merged):
            part.unmerge(model, state)


def register_compositions() -> None:
    for names in COMPOSITIONS:
        METHODS.add(SEPARATOR.join(names), Composed(names))


register_compositions()
