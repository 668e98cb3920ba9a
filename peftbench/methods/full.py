"""Full fine-tuning (`ft`) and fine-tuning only the top k blocks (`ft_top2`, k=2 as in the paper)."""

from __future__ import annotations

from torch import nn

from peftbench.methods.base import Method, register
from peftbench.methods.config import MethodConfig, TopKConfig
from peftbench.models.arch import ArchSpec


@register
class FullFineTune(Method):
    name = "ft"
    description = "every parameter of the model (the paper's FT)"

    def adapt(self, model: nn.Module, config: MethodConfig, arch: ArchSpec) -> None:
        model.requires_grad_(True)


@register
class FineTuneTopK(Method):
    name = "ft_top2"
    description = "only the last k transformer blocks, k=2 by default (the paper's FT^Top2)"

    def adapt(self, model: nn.Module, config: TopKConfig, arch: ArchSpec) -> None:
        for block in arch.block_list(model)[-config.top_k :]:
            block.requires_grad_(True)
