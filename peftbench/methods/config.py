"""Every method's hyperparameters, and the checks they need, without torch.

The split follows peft's (config / layer / model): a method's config is plain data a spec file,
`--set` and a search space fill in, checked against the model's sizes (`ModelDims`) before any
model exists. Keeping it free of torch and transformers is what lets `peftbench validate` resolve
every spec preset in a fraction of a second; the implementations (`lora.py`, `adapters.py`, ...)
import their config from here, and `CONFIGS` is the one table of method name -> config class
(`methods.base.register` gives each implementation its class from it).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from typing import Any, ClassVar

from peftbench.errors import UsageError
from peftbench.models.arch import ModelDims, arch_for_type
from peftbench.registry import Registry
from peftbench.specs import MethodSpec, check_keys, mapping, method_specs, names, text


@dataclass(frozen=True)
class MethodConfig:
    """Base of every method's hyperparameters; `validate` runs before any model is built."""

    def validate(self, dims: ModelDims) -> None:
        pass

    def extra_positions(self) -> int:
        """Positions the method inserts into every sequence (prefix methods); they count against the model's maximum."""
        return 0

    @classmethod
    def missing_library(cls) -> str | None:
        """The install command of an optional library the method needs and does not find (peft, bitsandbytes); else None.

        `validate` raises with it; `peftbench validate` reports such methods as not checked instead of failing.
        """
        return None


# ---------------------------------------------------------------- LoRA and ReLoRA

LORA_TARGETS = ("q", "k", "v", "o", "ffn")


@dataclass(frozen=True)
class LoraConfig(MethodConfig):
    r: int = 8
    alpha: float = 8.0
    lora_dropout: float = 0.0
    targets: tuple[str, ...] = ("q", "v")
    r_q: int | None = None
    r_k: int | None = None
    r_v: int | None = None
    r_o: int | None = None
    r_ffn: int | None = None

    def rank(self, target: str) -> int:
        own = getattr(self, f"r_{target}")
        return self.r if own is None else own

    def validate(self, dims: ModelDims) -> None:
        unknown = [t for t in self.targets if t not in LORA_TARGETS]
        if unknown or not self.targets:
            raise UsageError(
                f"lora targets must be a non-empty subset of {', '.join(LORA_TARGETS)}; got {', '.join(self.targets) or 'none'}"
            )
        for target in LORA_TARGETS:
            if getattr(self, f"r_{target}") is not None and target not in self.targets:
                raise UsageError(f"r_{target} is set but {target!r} is not among the targets ({', '.join(self.targets)})")
        for target in self.targets:
            rank = self.rank(target)
            if not 0 < rank <= dims.d_model:
                raise UsageError(f"lora rank for {target!r} must be in 1..d_model ({dims.d_model}), got {rank}")
        if self.alpha <= 0:
            raise UsageError(f"lora alpha must be > 0, got {self.alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise UsageError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")


@dataclass(frozen=True)
class ReloraConfig(LoraConfig):
    restart_every: int = 5000  # optimizer steps between merges (the paper: 5,000); 0: never, plain LoRA
    optimizer_reset: float = 0.99  # fraction of each LoRA tensor's Adam state zeroed by magnitude at a restart
    restart_warmup: int = 50  # steps over which the LR ramps from 0 back to the base schedule (the paper: 50-100)

    def validate(self, dims: ModelDims) -> None:
        super().validate(dims)
        if self.restart_every < 0:
            raise UsageError(f"restart_every must be >= 0 (0: never restart), got {self.restart_every}")
        if not 0 <= self.optimizer_reset <= 1:
            raise UsageError(f"optimizer_reset must be in [0, 1] (the fraction of optimizer state pruned), got {self.optimizer_reset}")
        if self.restart_warmup < 0:
            raise UsageError(f"restart_warmup must be >= 0, got {self.restart_warmup}")
        if self.restart_every and self.restart_warmup >= self.restart_every:
            raise UsageError(
                f"restart_warmup ({self.restart_warmup}) must be below restart_every ({self.restart_every}): "
                "the learning rate would never get back to the base schedule"
            )


QUANT_TYPES = ("nf4", "fp4")
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
QLORA_BACKENDS = {"bitsandbytes": "pip install -e '.[qlora]' (or: pip install 'bitsandbytes>=0.49,<0.51')"}


@dataclass(frozen=True)
class QloraConfig(LoraConfig):
    """LoRA's hyperparameters plus how the frozen base is quantised (Dettmers et al. 2023: NF4, double quantisation)."""

    quant_type: str = "nf4"  # bitsandbytes' 4-bit data type: NF4 (the paper's) or FP4
    compute_dtype: str = "float32"  # what the 4-bit weights are dequantised to for each matmul (bf16 on GPUs in the paper)
    double_quant: bool = True  # the quantisation constants themselves quantised (8-bit), as in the paper
    backend: str = "bitsandbytes"

    def validate(self, dims: ModelDims) -> None:
        super().validate(dims)
        if self.quant_type not in QUANT_TYPES:
            raise UsageError(f"quant_type must be one of {', '.join(QUANT_TYPES)}, got {self.quant_type!r}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise UsageError(f"compute_dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {self.compute_dtype!r}")
        if self.backend not in QLORA_BACKENDS:
            raise UsageError(f"qlora backend must be one of {', '.join(QLORA_BACKENDS)}, got {self.backend!r}")
        if importlib.util.find_spec(self.backend) is None:
            raise UsageError(f"qlora needs {self.backend}, which is not installed: {QLORA_BACKENDS[self.backend]}")

    @classmethod
    def missing_library(cls) -> str | None:
        backend = cls.backend
        return None if importlib.util.find_spec(backend) else f"{backend}: {QLORA_BACKENDS[backend]}"


# ---------------------------------------------------------------- adapters

# An adapter's nonlinearity by name -> the `torch.nn` class that computes it (adapters.py builds it).
NONLINEARITIES = {"relu": "ReLU", "gelu": "GELU", "swish": "SiLU", "silu": "SiLU", "tanh": "Tanh"}


@dataclass(frozen=True)
class AdapterConfig(MethodConfig):
    bottleneck: int = 16  # the paper's r for adapters
    nonlinearity: str = "relu"

    def validate(self, dims: ModelDims) -> None:
        if not 1 <= self.bottleneck <= dims.d_model:
            raise UsageError(f"adapter bottleneck must be in 1..d_model ({dims.d_model}), got {self.bottleneck}")
        if self.nonlinearity not in NONLINEARITIES:
            raise UsageError(f"adapter nonlinearity must be one of {', '.join(NONLINEARITIES)}, got {self.nonlinearity!r}")


@dataclass(frozen=True)
class AdapterDropConfig(AdapterConfig):
    drop_layers: int = 5  # adapters removed from the lowest n blocks (Rücklé et al. 2020 mostly drop 5)

    def validate(self, dims: ModelDims) -> None:
        super().validate(dims)
        if not 0 <= self.drop_layers <= dims.n_layers - 1:
            raise UsageError(
                f"drop_layers must be in 0..{dims.n_layers - 1} (the model has {dims.n_layers} layers and at least "
                f"one must keep its adapter), got {self.drop_layers}"
            )


# ---------------------------------------------------------------- BitFit, FT-TopK

@dataclass(frozen=True)
class BitFitConfig(MethodConfig):
    def validate(self, dims: ModelDims) -> None:
        if not dims.has_biases:
            raise UsageError(
                f"bitfit trains bias terms, and this {dims.model_type} model has none (its config switches them off); "
                "BitFit would train nothing but the task head"
            )


@dataclass(frozen=True)
class TopKConfig(MethodConfig):
    top_k: int = 2

    def validate(self, dims: ModelDims) -> None:
        if not 1 <= self.top_k <= dims.n_layers:
            raise UsageError(f"top_k must be in 1..{dims.n_layers} (the model's layers), got {self.top_k}")


# ---------------------------------------------------------------- prefix methods

@dataclass(frozen=True)
class PrefixConfig(MethodConfig):
    prefix_len: int = 10  # l_p: positions before every sequence
    infix_len: int = 0  # l_i: positions right after every prompt

    def validate(self, dims: ModelDims) -> None:
        if self.prefix_len < 0 or self.infix_len < 0:
            raise UsageError(f"prefix_len and infix_len must be >= 0, got prefix_len={self.prefix_len}, infix_len={self.infix_len}")
        if self.prefix_len + self.infix_len == 0:
            raise UsageError("prefix_len + infix_len must be > 0: the method inserts nothing")
        if self.prefix_len + self.infix_len >= dims.max_positions:
            raise UsageError(
                f"prefix_len + infix_len ({self.prefix_len} + {self.infix_len}) must be below the model's "
                f"{dims.max_positions} positions, leaving room for the input"
            )

    def extra_positions(self) -> int:
        return self.prefix_len + self.infix_len


# ---------------------------------------------------------------- compositions

COMPOSITIONS = (("lora", "prefix_embed"), ("lora", "prefix_layer"))  # each has a spec file and a `Composed` method
SEPARATOR = "+"


@dataclass(frozen=True)
class ComposedConfig(MethodConfig):
    """Base of a composition's config: one field per part, named after it, holding that part's config."""

    def parts(self) -> list[tuple[str, MethodConfig]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]

    def validate(self, dims: ModelDims) -> None:
        for _, config in self.parts():
            config.validate(dims)

    def extra_positions(self) -> int:
        return sum(config.extra_positions() for _, config in self.parts())


def composed_config_class(parts: tuple[str, ...]) -> type[ComposedConfig]:
    """A frozen dataclass with a field per part (its default: the part's own defaults), importable by name."""
    name = "".join(p.title().replace("_", "") for p in parts) + "Config"
    fields = [(p, CONFIGS.get(p), dataclasses.field(default_factory=CONFIGS.get(p))) for p in parts]
    cls = dataclasses.make_dataclass(name, fields, bases=(ComposedConfig,), frozen=True)
    cls.__module__ = __name__
    globals()[name] = cls  # so a config pickles (sweeps send configs to worker processes)
    return cls


# ---------------------------------------------------------------- the peft bridge (peft:<type>)

PEFT_PREFIX = "peft:"
PEFT_INSTALL = "pip install -e '.[peft]' (or: pip install 'peft>=0.21.2,<0.22')"
PEFT_KEYS = {"config", "runs_on", "refused", "targets", "mergeable"}
PEFT_TARGETS = ("norms",)  # fixed targets a type may declare instead of a `targets` hyperparameter


def peft_installed() -> bool:
    """Whether peft can be imported, found without importing it (that would import torch)."""
    return importlib.util.find_spec("peft") is not None


def require_peft(method: str) -> None:
    if not peft_installed():
        raise UsageError(f"{method} needs the peft library, which is not installed: {PEFT_INSTALL}")


@dataclass(frozen=True)
class PeftBridge:
    """What a `peft:<type>` spec declares about building peft's config, read without importing peft."""

    method: str
    config: str  # the name of peft's config class (`LoraConfig`)
    runs_on: tuple[str, ...]  # ArchSpec names the type was run on
    refused: dict[str, str] = field(default_factory=dict)  # ArchSpec name -> why peft refuses the type there
    targets: str | None = None  # "norms": the blocks' norms; None: the `targets` hyperparameter, or peft's own defaults
    mergeable: bool = False  # peft can fold it into the base weights (merge_and_unload)


@dataclass(frozen=True)
class PeftTypeConfig(MethodConfig):
    """Base of each `peft:<type>`'s hyperparameters: peft's own names and defaults, as its spec lists them.

    The fields come from the spec (`peft_config_class`), so a new type is a spec file; `targets` (q, k,
    v, o, ffn) is ours, turned into module names through the family's ArchSpec when the config is built.
    """

    bridge: ClassVar[PeftBridge]

    @classmethod
    def missing_library(cls) -> str | None:
        return None if peft_installed() else f"peft: {PEFT_INSTALL}"

    def validate(self, dims: ModelDims) -> None:
        bridge = self.bridge
        require_peft(bridge.method)
        family = arch_for_type(dims.model_type).name
        if family in bridge.refused:
            raise UsageError(f"{bridge.method} does not run on {family} models: {bridge.refused[family]}")
        if family not in bridge.runs_on:
            raise UsageError(f"{bridge.method} has not been checked on {family} models (it runs on {', '.join(bridge.runs_on)})")
        targets = getattr(self, "targets", None)
        if targets is not None and (not targets or any(t not in LORA_TARGETS for t in targets)):
            allowed, got = ", ".join(LORA_TARGETS), ", ".join(targets) or "none"
            raise UsageError(f"{bridge.method} targets must be a non-empty subset of {allowed}; got {got}")

    def peft_kwargs(self) -> dict[str, Any]:
        """The values peft's config class takes, by its own names (everything but our `targets`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "targets"}


def spec_value_type(where: str, value: Any) -> Any:
    """The field type a spec default stands for: a peft setting is a bool, int, float, string or list of strings."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple[str, ...]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind
    raise UsageError(f"{where}: a peft setting must be a bool, number, string or list of strings, got {value!r}")


def parse_bridge(spec: MethodSpec) -> PeftBridge:
    where = f"{spec.source}: peft"
    check_keys(where, spec.peft, {"config", "runs_on"}, PEFT_KEYS - {"config", "runs_on"})
    targets = text(where, "targets", spec.peft.get("targets"), optional=True)
    if targets is not None and targets not in PEFT_TARGETS:
        raise UsageError(f"{where}: targets must be one of {', '.join(PEFT_TARGETS)}, got {targets!r}")
    return PeftBridge(
        method=spec.name,
        config=text(where, "config", spec.peft["config"]) or "",
        runs_on=names(where, "runs_on", spec.peft["runs_on"]),
        refused={k: str(v) for k, v in mapping(where, "refused", spec.peft.get("refused")).items()},
        targets=targets,
        mergeable=bool(spec.peft.get("mergeable", False)),
    )


def peft_config_class(spec: MethodSpec) -> type[PeftTypeConfig]:
    """A frozen dataclass with a field per hyperparameter of the spec (its value the default), importable by name."""
    where = f"{spec.source}: hyperparameters"
    fields = []
    for key, value in spec.hyperparameters.items():
        default = tuple(value) if isinstance(value, list) else value
        fields.append((key, spec_value_type(f"{where}.{key}", value), dataclasses.field(default=default)))
    kind = spec.name.removeprefix(PEFT_PREFIX)
    name = "Peft" + "".join(p.title() for p in kind.split("_")) + "Config"
    cls = dataclasses.make_dataclass(name, fields, bases=(PeftTypeConfig,), frozen=True, namespace={"bridge": parse_bridge(spec)})
    cls.__module__ = __name__
    globals()[name] = cls  # so a config pickles (sweeps send configs to worker processes)
    return cls


# ---------------------------------------------------------------- the table

CONFIGS: Registry[type[MethodConfig]] = Registry("method")
for _name, _cls in {
    "ft": MethodConfig,
    "ft_top2": TopKConfig,
    "bitfit": BitFitConfig,
    "lora": LoraConfig,
    "relora": ReloraConfig,
    "qlora": QloraConfig,
    "prefix_embed": PrefixConfig,
    "prefix_layer": PrefixConfig,
    "adapter_h": AdapterConfig,
    "adapter_p": AdapterConfig,
    "adapter_l": AdapterConfig,
    "adapter_d": AdapterDropConfig,
}.items():
    CONFIGS.add(_name, _cls)
for _parts in COMPOSITIONS:
    CONFIGS.add(SEPARATOR.join(_parts), composed_config_class(_parts))
for _name, _spec in method_specs().items():
    if _spec.peft:
        CONFIGS.add(_name, peft_config_class(_spec))
