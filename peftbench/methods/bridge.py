"""The peft bridge: every `peft:<type>` (DoRA, (IA)³, VeRA, LoHa, LoKr, OFT, ...) behind the one method interface.

One class, `PeftTuner`, one instance per type spec (`methods/peft/<type>.yaml`). `adapt` builds peft's own
config class from the spec's hyperparameters (peft's names and defaults) and lets peft's tuner inject its
layers into our model in place, so `Adapted`, the runner, the counts and the checkpoints see a model like
any other: the trainable tensors are peft's, the head is ours. Targets come from the family's ArchSpec
(q, k, v, o, ffn -> the full module names of those maps), never from module-name strings here; on GPT-2
q and v are slices of the fused `c_attn`, which peft cannot adapt alone, so the whole `c_attn` is adapted.

peft is imported only here and only when a type is applied: listing, validating and resolving need the
specs alone, and without peft a `peft:*` method is one `UsageError` naming the install command.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from peftbench.errors import UsageError
from peftbench.methods.base import METHODS, Adapted, Capabilities, Method
from peftbench.methods.config import CONFIGS, PEFT_PREFIX, PeftTypeConfig, require_peft
from peftbench.methods.lora import set_submodule
from peftbench.models.arch import ArchSpec
from peftbench.specs import method_specs

ADAPTER = "default"  # peft's adapter name; one adapter per model
TUNER = "peftbench_peft_tuner"  # attribute of an adapted model: peft's tuner, which holds shared state (VeRA's projections)


def import_peft(method: str) -> Any:
    require_peft(method)
    import peft

    return peft


def module_names(model: nn.Module) -> dict[int, str]:
    return {id(m): n for n, m in model.named_modules()}


def target_names(model: nn.Module, arch: ArchSpec, targets: tuple[str, ...]) -> dict[str, list[str]]:
    """Full module names of the maps each target covers in every block (a fused map once: GPT-2's q|k|v)."""
    names, seen = module_names(model), set()
    out: dict[str, list[str]] = {t: [] for t in targets}
    for block in arch.block_list(model):
        for target in targets:
            for proj in arch.projections[target]:
                name = names[id(block.get_submodule(proj.path))]
                if name not in seen:
                    seen.add(name)
                    out[target].append(name)
    return out


def norm_names(model: nn.Module, arch: ArchSpec) -> list[str]:
    """The normalisation layers inside the blocks (LayerNorm, or RMSNorm in Llama), found by type, not by name."""
    names = module_names(model)
    return [
        names[id(m)]
        for block in arch.block_list(model)
        for m in block.modules()
        if isinstance(m, nn.LayerNorm) or type(m).__name__.endswith("RMSNorm")
    ]


def peft_config(peft: Any, config: PeftTypeConfig, arch: ArchSpec, model: nn.Module) -> Any:
    """peft's config object for `config`: its class from peft, our values, targets named through the ArchSpec."""
    cls = getattr(peft, config.bridge.config)
    kwargs = config.peft_kwargs()
    declared = {f.name for f in cls.__dataclass_fields__.values()}
    if config.bridge.targets == "norms":
        kwargs["target_modules"] = norm_names(model, arch)
    elif hasattr(config, "targets"):
        by_target = target_names(model, arch, config.targets)
        kwargs["target_modules"] = [n for names in by_target.values() for n in names]
        if "feedforward_modules" in declared:  # (IA)³ scales the input of feed-forward maps, the output of the others
            kwargs["feedforward_modules"] = by_target.get("ffn", [])
    if "fan_in_fan_out" in declared:
        kwargs["fan_in_fan_out"] = arch.conv1d_weights  # GPT-2's Conv1D stores its weight as (in, out)
    return cls(**kwargs)


class PeftTuner(Method):
    """One peft tuner type: peft builds and injects its layers; the rest is the one interface."""

    def __init__(self, name: str, config_cls: type[PeftTypeConfig], description: str = ""):
        # one instance per type, as `Composed` is one per composition: the class variables become per-instance
        self.name = name
        self.description = f"{description} (peft; runs on {', '.join(config_cls.bridge.runs_on)})"
        self.config_cls = config_cls
        mergeable = config_cls.bridge.mergeable
        self.capabilities = Capabilities(mergeable=mergeable, adds_latency=not mergeable)

    def adapt(self, model: nn.Module, config: PeftTypeConfig, arch: ArchSpec) -> None:
        peft = import_peft(self.name)
        built = peft_config(peft, config, arch, model)
        tuner_cls = peft.mapping.PEFT_TYPE_TO_TUNER_MAPPING[built.peft_type]
        with warnings.catch_warnings():  # fan_in_fan_out and target-module notices
            warnings.simplefilter("ignore")
            try:
                tuner = tuner_cls(model, built, adapter_name=ADAPTER)
            except (NotImplementedError, RuntimeError) as exc:
                if not any(p.is_meta for p in model.parameters()):
                    raise
                raise UsageError(
                    f"{self.name} initialises from the base weights (an SVD or a mask of W), which a model on the meta device "
                    "does not have: count it on a model with weights (a run's record has its counts)"
                ) from exc
        object.__setattr__(model, TUNER, tuner)  # kept alive with the model, not a submodule (it holds the model)

    def callbacks(self, adapted: Adapted) -> list[Any]:
        return [PeftSource(adapted.model)]

    def merge(self, model: nn.Module) -> dict[str, nn.Module]:
        """peft's `merge_and_unload`: every tuner layer folded into its base weight and replaced by that base module."""
        if not self.capabilities.mergeable:
            return super().merge(model)
        peft = import_peft(self.name)
        layers = {n: m for n, m in model.named_modules() if isinstance(m, peft.tuners.tuners_utils.BaseTunerLayer)}
        getattr(model, TUNER).merge_and_unload()
        return layers

    def unmerge(self, model: nn.Module, merged: dict[str, nn.Module]) -> None:
        for path, layer in merged.items():
            set_submodule(model, path, layer)
            layer.unmerge()  # type: ignore[operator]


def describe_tuner(model: nn.Module) -> dict[str, Any]:
    """What a record says of the peft side: the library's version, peft's type and config class, what it adapted."""
    import peft

    built = getattr(model, TUNER).peft_config[ADAPTER]
    targets = built.target_modules
    return {
        "source": f"peft {peft.__version__}",
        "peft_type": str(built.peft_type.value),
        "config_class": type(built).__name__,
        "target_modules": sorted(targets) if isinstance(targets, (set, list, tuple)) else targets,
    }


class PeftSource:
    """The `run.hooks.Callback` of every peft type (duck-typed): writes `record["hooks"]["peft"]` once."""

    def __init__(self, model: nn.Module):
        self.model = model

    def on_step_end(self, state: Any) -> None:
        if "peft" not in state.record["hooks"]:
            state.record["hooks"]["peft"] = describe_tuner(self.model)

    def on_epoch_end(self, state: Any, entry: dict[str, Any]) -> None:
        self.on_step_end(state)


def register_types() -> None:
    for name, config_cls in CONFIGS.items():
        if name.startswith(PEFT_PREFIX):
            if not issubclass(config_cls, PeftTypeConfig):
                raise UsageError(f"{name}: a peft: method needs a peft: spec")
            METHODS.add(name, PeftTuner(name, config_cls, method_specs()[name].description))


register_types()
