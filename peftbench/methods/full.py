"""Full fine-tuning (`ft`) and fine-tuning only the top k blocks (`ft_top2`, k=2 as in the paper)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from peftbench.arch import ArchSpec
from peftbench.errors import UsageError
from peftbench.methods.base import Method, MethodConfig, register
from peftbench.models import ModelDims


@register
class FullFineTune(Method):
    name = "ft"
    description = "every parameter of the model (the paper's FT)"

    def adapt(self, model: nn.Module, config: MethodConfig, arch: ArchSpec) -> None:
        model.requires_grad_(True)


@dataclass(frozen=True)
class TopKConfig(MethodConfig):
    top_k: int = 2

    def validate(self, dims: ModelDims) -> None:
        if not 1 <= self.top_k <= dims.n_layers:
            raise UsageError(f"top_k must be in 1..{dims.n_layers} (the model's layers), got {self.top_k}")


@register
class FineTuneTopK(Method):
    name = "ft_top2"
    description = "only the last k transformer blocks, k=2 by default (the paper's FT^Top2)"
    config_cls = TopKConfig

    def adapt(self, model: nn.Module, config: TopKConfig, arch: ArchSpec) -> None:
        for block in arch.block_list(model)[-config.top_k :]:
            block.requires_grad_(True)
