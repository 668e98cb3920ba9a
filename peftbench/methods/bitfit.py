"""BitFit (Zaken et al. 2021): train every bias term of the backbone, nothing else.

"Every bias" means every parameter named `bias` inside the backbone: the attention and FFN
projections and the LayerNorms (embedding LayerNorm included). On RoBERTa-base that is
12 x 8,448 + 768 = 102,144, the paper's 0.1M (Table 2). The task head trains as for every
method and is counted apart. The paper gives no formula for BitFit, so `formula` is None.

A model without bias terms (Llama's defaults: `attention_bias` and `mlp_bias` off, RMSNorm has
none) is refused before any work: BitFit would train nothing but the task head, and a run or a
count of zero would read as a result. A Llama config with those flags on has biases and works.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from peftbench.arch import ArchSpec
from peftbench.errors import UsageError
from peftbench.methods.base import Method, MethodConfig, register
from peftbench.models import ModelDims


def is_bias(name: str) -> bool:
    return name.rpartition(".")[2] == "bias"


@dataclass(frozen=True)
class BitFitConfig(MethodConfig):
    def validate(self, dims: ModelDims) -> None:
        if not dims.has_biases:
            raise UsageError(
                f"bitfit trains bias terms, and this {dims.model_type} model has none (its config switches them off); "
                "BitFit would train nothing but the task head"
            )


@register
class BitFit(Method):
    name = "bitfit"
    description = "bias terms only (BitFit), LayerNorm biases included"
    config_cls = BitFitConfig

    def adapt(self, model: nn.Module, config: MethodConfig, arch: ArchSpec) -> None:
        for name, param in arch.backbone(model).named_parameters():
            if is_bias(name):
                param.requires_grad_(True)
