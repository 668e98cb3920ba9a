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

from torch import nn

from peftbench.methods.base import Method, register
from peftbench.methods.config import MethodConfig
from peftbench.models.arch import ArchSpec


def is_bias(name: str) -> bool:
    return name.rpartition(".")[2] == "bias"


@register
class BitFit(Method):
    name = "bitfit"
    description = "bias terms only (BitFit), LayerNorm biases included"

    def adapt(self, model: nn.Module, config: MethodConfig, arch: ArchSpec) -> None:
        for name, param in arch.backbone(model).named_parameters():
            if is_bias(name):
                param.requires_grad_(True)
