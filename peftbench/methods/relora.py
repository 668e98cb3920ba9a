"""ReLoRA (Lialin et al. 2023, "ReLoRA: High-Rank Training Through Low-Rank Updates", arXiv 2307.05695).

LoRA, restarted: every `restart_every` optimizer steps the update B·A is merged into the frozen
weight (`LoraLayer.fold`), A is drawn afresh as LoRA draws it and B = 0 (so the model's outputs do
not change), the Adam state of the LoRA parameters is pruned by magnitude (all but the largest
1 - `optimizer_reset` of each tensor's exp_avg and exp_avg_sq set to zero), and the learning rate
drops to 0 and ramps back over `restart_warmup` steps to the base schedule (the jagged schedule).
A sum of k rank-r updates can reach rank k·r, which is the point of the method.

Everything happens in a training-loop callback returned by `Relora.callbacks`; the runner does not
know about restarts. The parameters that train are LoRA's, so counts and the formula are LoRA's.

After a merge the adapter state (A, B and the head) no longer reproduces the model: the weights
themselves moved. The callback keeps every merged update as its factors (s·B_k, A_k) on the CPU,
which is what a checkpoint must hold (stacked factors, k·r·(d_in + d_out) values per matrix, or the
dense delta W - W_0, d_in·d_out, whichever is smaller), and what the rank of W - W_0 is computed
from (a QR of each stack and an SVD of an (m x m) core, m = r·(k+1): cheap at any model size, where
keeping a dense copy of W_0 would cost the adapted matrices' size again, e.g. 2·L·d² values for
q and v).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from peftbench.methods.base import Adapted, register
from peftbench.methods.config import ReloraConfig
from peftbench.methods.lora import Lora, LoraLayer, lora_layers
from peftbench.models.tensors import checkpoint_bytes

if TYPE_CHECKING:
    from peftbench.run.hooks import TrainState

HOOK = "relora"  # record["hooks"][HOOK]
CHECKPOINT_NOTE = (
    "after a merge the adapter state (A, B, head) alone no longer reproduces the model: the frozen weights moved. "
    "A checkpoint is the accumulated update W - W_0 of every adapted matrix (merged updates plus the current B·A) "
    "and the head, stored as stacked factors or as dense deltas, whichever is smaller; the base model plus that update "
    "reproduces the model"
)


@register
class Relora(Lora):
    name = "relora"
    description = "LoRA merged into the weights and restarted every n steps (optimizer state pruned, jagged LR); LoRA's count"

    def callbacks(self, adapted: Adapted) -> list[Any]:
        config = getattr(adapted.config, self.name, adapted.config)  # inside a composed method: this part's config
        assert isinstance(config, ReloraConfig)
        return [ReloraRestarts(adapted, config)]


# ---------------------------------------------------------------- optimizer state pruning


@torch.no_grad()
def prune_by_magnitude(tensor: torch.Tensor, fraction: float) -> int:
    """Zero all but the largest (1 - fraction) of `tensor`'s entries by magnitude, in place; returns how many were zeroed."""
    n = tensor.numel()
    keep = round((1.0 - fraction) * n)
    if keep >= n:
        return 0
    mask = torch.zeros(n, dtype=torch.bool, device=tensor.device)
    if keep > 0:
        mask[tensor.abs().flatten().topk(keep).indices] = True
    tensor.mul_(mask.view_as(tensor))
    return n - keep


def prune_optimizer_state(optimizer: Any, params: list[nn.Parameter], fraction: float) -> dict[str, int]:
    """Magnitude-prune exp_avg and exp_avg_sq of `params` (per tensor); the step count stays (Adam's bias correction)."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps the torch one
    entries = zeroed = 0
    for param in params:
        state = inner.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                entries += state[key].numel()
                zeroed += prune_by_magnitude(state[key], fraction)
    return {"entries": entries, "zeroed": zeroed}


# ---------------------------------------------------------------- jagged learning-rate schedule


class JaggedSchedule:
    """Wraps a `LambdaLR`'s lambdas: after a restart at step s, lr(t) = base(t) · min(1, (t - s) / warmup).

    The wrapped lambdas read the last restart from this object, so the scheduler keeps stepping as
    before and the runner never learns of it.
    """

    def __init__(self, scheduler: Any, warmup: int):
        if not hasattr(scheduler, "lr_lambdas"):
            raise TypeError(f"ReLoRA's jagged schedule wraps a LambdaLR's lr_lambdas; got {type(scheduler).__name__}")
        self.scheduler, self.warmup = scheduler, warmup
        self.last_restart: int | None = None
        scheduler.lr_lambdas = [self._wrap(fn) for fn in scheduler.lr_lambdas]

    def factor(self, step: int) -> float:
        if self.last_restart is None or self.warmup == 0:
            return 1.0
        return min(1.0, max(0.0, (step - self.last_restart) / self.warmup))

    def _wrap(self, fn: Any) -> Any:
        return lambda step: fn(step) * self.factor(step)

    def restart(self) -> None:
        """Restart at the scheduler's current step and set the LR the next optimizer step uses (0 with a warm-up)."""
        scheduler = self.scheduler
        self.last_restart = scheduler.last_epoch
        lrs = [base * fn(scheduler.last_epoch) for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)]
        for group, lr in zip(scheduler.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        scheduler._last_lr = lrs


# ---------------------------------------------------------------- the accumulated update


def slice_keys(layers: dict[str, LoraLayer]) -> list[tuple[str, str]]:
    return [(path, name) for path, layer in layers.items() for name in layer.slices]


def factors_of(layer: LoraLayer, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(s·B, A) of one slice, detached on the CPU in float32: the update s·B·A as factors."""
    b, a = layer.lora_B[name].detach(), layer.lora_A[name].detach()
    copy = {"device": "cpu", "dtype": torch.float32, "copy": True}  # a copy: A is re-drawn in place at the restart
    return (b * layer.scaling[name]).to(**copy), a.to(**copy)


def product_rank(left: torch.Tensor, right: torch.Tensor) -> int:
    """rank(left @ right) for (n x m) and (m x k) with small m, without forming the product: QR of each, SVD of the core."""
    _, r_left = torch.linalg.qr(left.double())
    _, r_right = torch.linalg.qr(right.double().T)
    return int(torch.linalg.matrix_rank(r_left @ r_right.T))


class AccumulatedUpdate:
    """Every merged update of every adapted matrix, as factors: W - W_0 = Σ_k s·B_k A_k (+ the current s·B·A)."""

    def __init__(self, layers: dict[str, LoraLayer]):
        self.layers = layers
        self.merged: dict[tuple[str, str], list[tuple[torch.Tensor, torch.Tensor]]] = {key: [] for key in slice_keys(layers)}

    def add_current(self) -> None:
        """Called just before a merge: keep what is about to move into the weights."""
        for (path, name), stack in self.merged.items():
            stack.append(factors_of(self.layers[path], name))

    def stacked(self, path: str, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(d_out x m) and (m x d_in): the merged updates and the current one, side by side."""
        parts = [*self.merged[(path, name)], factors_of(self.layers[path], name)]
        return torch.cat([b for b, _ in parts], dim=1), torch.cat([a for _, a in parts], dim=0)

    def ranks(self) -> dict[str, int]:
        return {f"{path}:{name}": product_rank(*self.stacked(path, name)) for path, name in self.merged}

    def checkpoint(self, head: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Bytes of a checkpoint that reproduces the model from the base: the update per matrix (and the head), both ways."""
        stacked: dict[str, torch.Tensor] = {}
        dense: dict[str, torch.Tensor] = {}
        for path, name in self.merged:
            left, right = self.stacked(path, name)
            stacked[f"{path}.{name}.delta_B"] = torch.empty(left.shape, device="meta")
            stacked[f"{path}.{name}.delta_A"] = torch.empty(right.shape, device="meta")
            dense[f"{path}.{name}.delta"] = torch.empty(left.shape[0], right.shape[1], device="meta")
        formats = {"stacked factors": stacked, "dense delta": dense}
        sizes = {kind: checkpoint_bytes({**state, **head}) for kind, state in formats.items()}
        chosen = min(sizes, key=sizes.__getitem__)
        return {"format": chosen, "bytes": sizes[chosen], "bytes_by_format": sizes}


# ---------------------------------------------------------------- the training-loop callback


class ReloraRestarts:
    """The `run.hooks.Callback` of ReLoRA (duck-typed: the runner imports the methods, not the other way round).

    At every `restart_every`-th step before the last: keep the update's factors, merge, re-initialise,
    prune the optimizer state, restart the jagged schedule. At each epoch's end: report.
    """

    def __init__(self, adapted: Adapted, config: ReloraConfig):
        self.adapted, self.config = adapted, config
        self.layers = dict(lora_layers(adapted.model))
        self.update = AccumulatedUpdate(self.layers)
        self.params = [p for layer in self.layers.values() for p in (*layer.lora_A.values(), *layer.lora_B.values())]
        self.schedule: JaggedSchedule | None = None
        self.restart_steps: list[int] = []
        self.pruned = {"entries": 0, "zeroed": 0}
        self.seed = torch.initial_seed()  # the run's seed on every process: every process draws the same fresh A

    def due(self, step: int, total_steps: int) -> bool:
        every = self.config.restart_every
        return every > 0 and step % every == 0 and step < total_steps

    def on_step_end(self, state: TrainState) -> None:
        if self.schedule is None:
            self.schedule = JaggedSchedule(state.scheduler, self.config.restart_warmup)
        if self.due(state.step, state.total_steps):
            self.restart(state.optimizer)
            self.restart_steps.append(state.step)
            state.record.setdefault("hooks", {})[HOOK] = self.summary()

    def on_epoch_end(self, state: TrainState, entry: dict[str, Any]) -> None:
        state.record.setdefault("hooks", {})[HOOK] = self.report(state.record)

    def restart(self, optimizer: Any) -> None:
        """Merge B·A into the weights, start A and B afresh, prune the optimizer state, restart the LR ramp."""
        self.update.add_current()
        generator = torch.Generator().manual_seed(self.seed + len(self.restart_steps) + 1)
        for layer in self.layers.values():
            layer.fold(+1)
            layer.reinitialise(generator)
        pruned = prune_optimizer_state(optimizer, self.params, self.config.optimizer_reset)
        self.pruned = {k: self.pruned[k] + v for k, v in pruned.items()}
        if self.schedule is not None:
            self.schedule.restart()

    def summary(self) -> dict[str, Any]:
        c = self.config
        return {
            "restarts": len(self.restart_steps),
            "restart_steps": list(self.restart_steps),
            "restart_every": c.restart_every,
            "restart_warmup": c.restart_warmup,
            "optimizer_reset": c.optimizer_reset,
            "optimizer_state_pruned": dict(self.pruned),
        }

    def report(self, record: dict[str, Any]) -> dict[str, Any]:
        """The summary, the rank of W - W_0 per adapted matrix, and what a checkpoint is now.

        With restarts, `measurements.checkpoint_bytes` is replaced by the size of the accumulated
        update and the head (the adapter-only size stays here), so comparisons see what must be shipped.
        """
        ranks = self.update.ranks()
        out = self.summary()
        out["accumulated_update_rank"] = ranks
        out["accumulated_update_rank_range"] = [min(ranks.values(), default=0), max(ranks.values(), default=0)]
        out["lora_ranks"] = {t: self.config.rank(t) for t in self.config.targets}
        trainable = self.adapted.trainable_parameters()
        head = {n: p for n, p in trainable.items() if self.adapted.is_head(n)}
        adapter_only = checkpoint_bytes(trainable)
        if self.restart_steps:
            checkpoint = self.update.checkpoint(head)
            out["checkpoint"] = {"adapter_state_reproduces_model": False, "note": CHECKPOINT_NOTE, **checkpoint}
            out["checkpoint"]["adapter_only_bytes"] = adapter_only
            record.setdefault("measurements", {})["checkpoint_bytes"] = checkpoint["bytes"]
        else:
            out["checkpoint"] = {
                "adapter_state_reproduces_model": True,
                "note": "no restart yet: the adapter state (A, B, head) on the base model is the model, as for LoRA",
                "format": "adapter state",
                "bytes": adapter_only,
            }
        return out
