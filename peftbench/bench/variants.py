"""What `peftbench latency` and `peftbench profile` measure: copies of one base model with each method applied.

Inference (`build_variants`, latency): the base model, an A/A control (a second, identical copy of
the base), every method applied to its own copy of the base (same weights, so outputs start equal),
and for every mergeable method a merged copy too; eval mode, no key/value cache.

Training (`build_variant`, profile): the *floor* (the frozen model with gradients taken only with
respect to the input embeddings: forward plus the backward through every layer's activations, no
parameter gradient, no optimizer) or a method applied to its own copy of the `Workload`'s base, with
its own AdamW and one training step to call (forward, loss, backward, AdamW step, zero_grad).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peftbench.bench import measure
from peftbench.bench.common import random_batch, shaped_model
from peftbench.config.resolve import default_kind
from peftbench.config.schema import to_plain
from peftbench.methods import METHODS, Adapted
from peftbench.models.arch import dims_of
from peftbench.models.build import base_config, task_config
from peftbench.models.presets import resolve_model

BASE, CONTROL = "base", "base A/A"
FLOOR = "floor"

# ---------------------------------------------------------------- inference: base, A/A control, methods, merged copies


@dataclass
class Variant:
    name: str
    role: str  # base, control, method
    model: nn.Module
    adapted: Adapted | None = None
    method: str | None = None
    merged: bool = False
    params: dict[str, int] = field(default_factory=dict)  # counted before merging

    def __post_init__(self) -> None:
        if self.adapted is not None and not self.params:
            self.params = self.adapted.param_counts()

    def __call__(self, inputs: dict[str, torch.Tensor]) -> Any:
        if self.adapted is None:
            return self.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        return self.adapted(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], prompt_lengths=inputs["prompt_lengths"])

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "role": self.role, "method": self.method, "merged": self.merged}
        if self.adapted is not None:
            info["params"] = self.params
            info["hyperparameters"] = {k: v for k, v in to_plain(self.adapted.config).items() if v is not None}
            caps = self.adapted.capabilities
            info["capabilities"] = {"mergeable": caps.mergeable, "adds_latency": caps.adds_latency, "changes_seq_len": caps.changes_seq_len}
        return info


def build_variants(
    base: nn.Module, methods: list[str], hyperparameters: dict[str, Any], device: torch.device, dtype: torch.dtype
) -> list[Variant]:
    """Base, A/A control, each method on its own copy of the base, and merged copies of mergeable methods."""
    base = base.to(device=device, dtype=dtype).eval()
    if hasattr(base.config, "use_cache"):
        base.config.use_cache = False  # one forward pass: no key/value cache to build
    variants = [Variant(BASE, "base", base), Variant(CONTROL, "control", copy.deepcopy(base))]
    for name in methods:
        impl = METHODS.get(name)
        adapted = impl.apply(copy.deepcopy(base), hyperparameters[name])
        adapted.model.to(device=device, dtype=dtype).eval()
        variants.append(Variant(name, "method", adapted.model, adapted, name))
        if impl.capabilities.mergeable:
            twin = impl.apply(copy.deepcopy(base), hyperparameters[name])
            twin.load_adapter_state_dict(adapted.adapter_state_dict())
            twin.model.to(device=device, dtype=dtype).eval()
            counted = twin.param_counts()
            twin.merge()
            variants.append(Variant(f"{name} merged", "method", twin.model, twin, name, merged=True, params=counted))
    return variants


@torch.no_grad()
def output_gaps(variants: list[Variant], inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Largest absolute difference of each variant's output from the base's (all start from the same weights)."""
    outs = {v.name: first_tensor(v(inputs)).float() for v in variants}
    ref = outs[BASE]
    return {name: float((out - ref).abs().max()) if out.shape == ref.shape else math.nan for name, out in outs.items()}


def first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    return output.logits if hasattr(output, "logits") else output[0]


# ---------------------------------------------------------------- training: the floor, or a method with its AdamW


def loss_for(kind: str, logits: torch.Tensor, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    if kind == "generation":  # next-token prediction on the input itself
        ids = batch["input_ids"]
        if logits.shape[1] != ids.shape[1]:
            raise RuntimeError(f"the model returned {logits.shape[1]} positions for {ids.shape[1]} input tokens")
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1))
    return F.cross_entropy(logits.float(), labels)


@dataclass
class Workload:
    """What every variant shares: the model's task class, the random-init base, one batch and its labels."""

    kind: str
    num_labels: int
    base: nn.Module
    batch: dict[str, torch.Tensor]
    labels: torch.Tensor


def workload(model: str, batch: int, seq: int, device: torch.device, dtype: torch.dtype, seed: int) -> Workload:
    source = resolve_model(model)
    kind, num_labels = default_kind(base_config(source).model_type)
    vocab = dims_of(task_config(source, kind, num_labels)).vocab_size
    base = shaped_model(source, kind, num_labels, seed).to(device=device, dtype=dtype)
    if hasattr(base.config, "use_cache"):
        base.config.use_cache = False
    inputs = random_batch(vocab, batch, seq, device, seed)
    labels = torch.randint(0, num_labels, (batch,), generator=torch.Generator().manual_seed(seed)).to(device)
    return Workload(kind, num_labels, base, inputs, labels)


@dataclass
class TrainVariant:
    """The floor (`method` None) or a method applied to its own model, with one training step to call."""

    name: str
    model: nn.Module
    step: Callable[[], None]
    params: dict[str, int]
    trainable: dict[str, nn.Parameter]
    optimizer: torch.optim.Optimizer | None
    seen: dict[str, int] = field(default_factory=dict)  # gradient bytes, recorded at the first step

    def optimizer_state_bytes(self) -> int:
        return measure.optimizer_state_bytes(self.optimizer) if self.optimizer is not None else 0


def build_variant(model: nn.Module, method: str | None, hp: Any, work: Workload, device: torch.device, dtype: torch.dtype) -> TrainVariant:
    """`model` (consumed: the caller passes its own copy) made into the floor or `method`, in train mode."""
    batch, labels, kind = work.batch, work.labels, work.kind
    seen: dict[str, int] = {}
    if method is None:
        model.requires_grad_(False)
        embed: nn.Module = model.get_input_embeddings()  # type: ignore[operator]  # nn.Module attributes read as Tensor
        total = sum(p.numel() for p in model.parameters())

        def floor_step() -> None:
            embeds = embed(batch["input_ids"]).detach().requires_grad_()
            logits = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
            loss_for(kind, logits, batch, labels).backward()
            if not seen:
                seen["gradient_bytes"] = measure.tensor_bytes([embeds.grad])

        params = {"method": 0, "head": 0, "trainable": 0, "total": total, "base_total": total}
        model.train()
        return TrainVariant(FLOOR, model, floor_step, params, {}, None, seen)

    adapted = METHODS.get(method).apply(model, hp)
    adapted.model.to(device=device, dtype=dtype)
    trainable = adapted.trainable_parameters()
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-4)

    def method_step() -> None:
        out = adapted(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], prompt_lengths=batch["prompt_lengths"])
        loss_for(kind, out.logits, batch, labels).backward()
        if not seen:
            seen["gradient_bytes"] = measure.gradient_bytes(trainable.values())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    adapted.model.train()
    return TrainVariant(method, adapted.model, method_step, adapted.param_counts(), trainable, optimizer, seen)
