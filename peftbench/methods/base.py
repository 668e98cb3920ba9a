"""The one method interface: `Method.apply(model, config) -> Adapted`.

A method freezes the base model, adds or unfreezes what it trains, and says what it can do
(`Capabilities`). `Adapted` is what the runner, the measurements and the tests see: the model
(called as before), the trainable parameters (the single list the optimizer and the counts
use), the adapter-only state dict, and merge/unmerge where the method allows it. Nothing
outside `peftbench.methods` ever branches on which method it holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from peftbench.errors import UsageError
from peftbench.methods.config import CONFIGS, MethodConfig
from peftbench.models.arch import ArchSpec, ModelDims, arch_for, dims_of
from peftbench.registry import Registry


@dataclass(frozen=True)
class Capabilities:
    mergeable: bool = False  # can fold into the base weights: no inference overhead
    adds_latency: bool = False  # extra modules on the inference path
    changes_seq_len: bool = False  # inserts positions (prefix methods)


class Method(ABC):
    # class attributes of each method (`config_cls` from `config.CONFIGS`, set by `register`); a `Composed`
    # method sets them on its instance, so they are not ClassVars
    name: str
    description: str
    config_cls: type[MethodConfig]
    capabilities: Capabilities = Capabilities()

    def apply(self, model: nn.Module, config: MethodConfig) -> Adapted:
        """Freeze everything, let the method add/unfreeze its part, keep the task head trainable."""
        arch = arch_for(model)
        config.validate(dims_of(model.config))
        base_total = count(model.parameters())
        model.requires_grad_(False)
        self.adapt(model, config, arch)
        adapted = Adapted(model, self, config, arch, base_total)
        for name, param in model.named_parameters():
            if adapted.is_head(name):
                param.requires_grad_(True)
        return adapted

    @abstractmethod
    def adapt(self, model: nn.Module, config: Any, arch: ArchSpec) -> None:
        """Add modules (as registered submodules of the backbone) or unfreeze parameters."""

    def before_forward(self, model: nn.Module, prompt_lengths: torch.Tensor | None) -> None:  # noqa: B027
        """Methods that insert positions after each example's prompt (infix) read its length here."""

    def formula(self, config: Any, dims: ModelDims) -> int | None:
        """The paper's analytic count of this method's parameters (Section 5.1), if it gives one."""
        return None

    def callbacks(self, adapted: Adapted) -> list[Any]:
        """Training-loop callbacks (`run.hooks.Callback`) the method needs, e.g. to merge and restart; most need none."""
        return []

    def merge(self, model: nn.Module) -> Any:
        """Fold the method into the base weights; returns what `unmerge` needs to undo it."""
        raise UsageError(f"method {self.name!r} cannot be merged into the base weights")

    def unmerge(self, model: nn.Module, merged: Any) -> None:
        raise UsageError(f"method {self.name!r} cannot be merged into the base weights")


def count(params: Any) -> int:
    return sum(p.numel() for p in params)


def lm_head_names(model: nn.Module) -> set[str]:
    """Names of the output-embedding parameters of a language model (empty for other heads and for tied ones)."""
    get = getattr(model, "get_output_embeddings", None)
    out = get() if callable(get) else None
    if out is None:
        return set()
    own = {id(p) for p in out.parameters()}
    return {n for n, p in model.named_parameters() if id(p) in own}


class Adapted:
    """A model with a method applied. Call it like the model; ask it what trains and what it costs."""

    def __init__(self, model: nn.Module, method: Method, config: MethodConfig, arch: ArchSpec, base_total: int):
        self.model = model
        self.method = method
        self.config = config
        self.arch = arch
        self.base_total = base_total
        self._merged: Any = None
        self._detached: dict[str, nn.Parameter] = {}  # the method's parameters while merged (no longer in the model)
        self.forward_module: nn.Module = model  # what calls go through: the model, or its DDP wrapper after `accelerator.prepare`
        backbone = arch.backbone(model)
        self._backbone_prefix = "" if backbone is model else f"{model.base_model_prefix}."  # a transformers model's str
        self._lm_head = lm_head_names(model)

    def __call__(self, *args: Any, prompt_lengths: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """Call the model; `prompt_lengths` (from the collate step) goes to the method, not the model."""
        self.method.before_forward(self.model, prompt_lengths)
        return self.forward_module(*args, **kwargs)

    def generate(self, *args: Any, prompt_lengths: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """`model.generate` with the method told where each prompt ends, as in `__call__`."""
        self.method.before_forward(self.model, prompt_lengths)
        return self.model.generate(*args, **kwargs)  # type: ignore[operator]  # a transformers model's method

    def callbacks(self) -> list[Any]:
        return self.method.callbacks(self)

    @property
    def capabilities(self) -> Capabilities:
        return self.method.capabilities

    def is_head(self, name: str) -> bool:
        """Task-head parameters live outside the backbone (classifier, pooler, score); they train for every method.

        A causal LM's output embeddings (`lm_head`) are not a task head: they are pretrained, part
        of the base model, and stay frozen like the rest of it (as in peft's CAUSAL_LM). GPT-2 ties
        them to the input embeddings, so this only shows on untied models such as Llama, where
        training them would add vocab x d parameters to every method.
        """
        return bool(self._backbone_prefix) and not name.startswith(self._backbone_prefix) and name not in self._lm_head

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """What the optimizer steps and the counts count; while merged, the same parameters as before `merge`."""
        if self.merged:
            return dict(self._detached)
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def param_counts(self) -> dict[str, int]:
        """method: the paper's convention (task head excluded); trainable: what the optimizer sees.

        The same whether merged or not: merging folds the method into the base weights for
        inference, it does not change what the method trains or what its checkpoint holds.
        """
        trainable = self.trainable_parameters()
        head = count(p for n, p in trainable.items() if self.is_head(n))
        attached = {id(p) for p in self.model.parameters()}
        total = count(self.model.parameters()) + count(p for p in trainable.values() if id(p) not in attached)
        return {
            "method": count(trainable.values()) - head,
            "head": head,
            "trainable": count(trainable.values()),
            "total": total,
            "base_total": self.base_total,
        }

    def formula_count(self) -> int | None:
        return self.method.formula(self.config, dims_of(self.model.config))

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what training changed: the method's tensors and the task head."""
        return {n: p.detach().clone() for n, p in self.trainable_parameters().items()}

    def load_adapter_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.merged:
            raise UsageError("cannot load an adapter state into a merged model: unmerge() first")
        own = self.trainable_parameters()
        missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
        if missing or unexpected:
            raise KeyError(f"adapter state mismatch: missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            for name, param in own.items():
                if param.shape != state[name].shape:
                    raise KeyError(f"adapter state mismatch: {name} has shape {tuple(state[name].shape)}, expected {tuple(param.shape)}")
                param.copy_(state[name])

    def checkpoint_bytes(self, bytes_per_value: int = 4) -> int:
        return count(self.trainable_parameters().values()) * bytes_per_value

    @property
    def merged(self) -> bool:
        return self._merged is not None

    def merge(self) -> None:
        if not self.merged:
            detached = self.trainable_parameters()
            self._merged = self.method.merge(self.model)
            self._detached = detached

    def unmerge(self) -> None:
        if self.merged:
            self.method.unmerge(self.model, self._merged)
            self._merged, self._detached = None, {}


METHODS: Registry[Method] = Registry("method")


def register(cls: type[Method]) -> type[Method]:
    """Add an implementation to METHODS, with its hyperparameters' class from the one table (`config.CONFIGS`)."""
    cls.config_cls = CONFIGS.get(cls.name)
    METHODS.add(cls.name, cls())
    return cls
