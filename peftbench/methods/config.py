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
from dataclasses import dataclass

from peftbench.errors import UsageError
from peftbench.models.arch import ModelDims
from peftbench.registry import Registry


@dataclass(frozen=True)
class MethodConfig:
    """Base of every method's hyperparameters; `validate` runs before any model is built."""

    def validate(self, dims: ModelDims) -> None:
        pass

    def extra_positions(self) -> int:
        """Positions the method inserts into every sequence (prefix methods); they count against the model's maximum."""
        return 0


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


# ---------------------------------------------------------------- the table

CONFIGS: Registry[type[MethodConfig]] = Registry("method")
for _name, _cls in {
    "ft": MethodConfig,
    "ft_top2": TopKConfig,
    "bitfit": BitFitConfig,
    "lora": LoraConfig,
    "relora": ReloraConfig,
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
