"""Run configuration: the frozen dataclasses, their coercion and validation, and the one `--set` grammar.

Every value passes through `coerce`, so a spec and the command line are checked the same way. How the
layers (specs, presets, `--set`) are stacked into one configuration is `config.resolve`'s business.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from peftbench.errors import UsageError
from peftbench.specs import stable_hash


@dataclass(frozen=True)
class TrainConfig:
    """Training and evaluation settings shared by every method (the paper's Appendix D fields)."""

    lr: float = 5e-4
    batch_size: int = 16
    eval_batch_size: int = 32
    epochs: int = 3
    max_steps: int = 0  # 0: run the epochs; N: stop after N optimizer steps
    warmup_ratio: float = 0.06
    warmup_steps: int = 0  # when > 0, overrides warmup_ratio
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    cls_dropout: float = -1.0  # < 0: keep the model's own classifier dropout
    max_seq_len: int = 128
    max_train_examples: int = 0  # 0: all
    train_split: str = "train"  # the split trained on: "validation" where a release ships no train file (E2E here)
    max_eval_examples: int = 0  # 0: all
    grad_clip: float = 0.0  # 0: no clipping
    seed: int = 0

    def validate(self) -> None:
        positive = ("batch_size", "eval_batch_size", "epochs", "max_seq_len")
        for name in positive:
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} must be > 0, got {getattr(self, name)}")
        # lr=0 is allowed: the untrained control (the head and method start as they were), a run a check must catch
        for name in ("lr", "max_steps", "warmup_steps", "weight_decay", "max_train_examples", "max_eval_examples", "grad_clip"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise UsageError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.label_smoothing < 1:
            raise UsageError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.cls_dropout >= 1:
            raise UsageError(f"cls_dropout must be in [0, 1) (or < 0: the model's own), got {self.cls_dropout}")
        if not 0 <= self.seed < 2**32:  # what every generator accepts (numpy's is the narrowest)
            raise UsageError(f"seed must be in 0..{2**32 - 1}, got {self.seed}")


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding for data-to-text (the paper's Table 11: beam 10, no-repeat 4-grams)."""

    num_beams: int = 10
    length_penalty: float = 0.9
    no_repeat_ngram_size: int = 4
    max_new_tokens: int = 64

    def validate(self) -> None:
        for name in ("num_beams", "max_new_tokens"):
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.no_repeat_ngram_size < 0:
            raise UsageError(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}")


SECTIONS = ("hyperparameters", "training", "generation")


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's result; its hash keys comparisons between runs."""

    method: str
    task: str
    model: str
    data: str  # 'hub', 'sample' or 'local': where the examples come from
    preset: str | None
    hyperparameters: Any  # the method's own frozen config dataclass
    training: TrainConfig
    generation: GenerationConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "task": self.task,
            "model": self.model,
            "data": self.data,
            "preset": self.preset,
            "hyperparameters": to_plain(self.hyperparameters),
            "training": to_plain(self.training),
            "generation": to_plain(self.generation),
        }

    def config_hash(self) -> str:
        return stable_hash(self.to_dict())


def to_plain(obj: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}


@functools.cache  # resolving the string annotations is slow, and `validate` asks for every spec preset
def field_types(cls: type) -> Mapping[str, Any]:
    hints = typing.get_type_hints(cls)
    return types.MappingProxyType({f.name: hints[f.name] for f in fields(cls)})


def is_config_class(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def flat_field_types(cls: type) -> dict[str, Any]:
    """Field types with nested config dataclasses spelt out as dotted names.

    A composed method's config holds its parts' configs (`lora`, `prefix_embed`), so its settable
    names are `lora.r`, `prefix_embed.prefix_len`, ...; a flat config's names are its fields.
    """
    out: dict[str, Any] = {}
    for name, kind in field_types(cls).items():
        if is_config_class(kind):
            out.update({f"{name}.{sub}": t for sub, t in flat_field_types(kind).items()})
        else:
            out[name] = kind
    return out


def flatten(values: dict[str, Any]) -> dict[str, Any]:
    """`{'lora': {'r': 8}}` -> `{'lora.r': 8}`: a spec's nested mapping and `--set lora.r=8` merge key by key."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update({f"{key}.{sub}": v for sub, v in flatten(value).items()})
        else:
            out[key] = value
    return out


def matching_names(name: str, names: set[str] | dict[str, Any]) -> list[str]:
    """The settable names `name` stands for: itself, or the one dotted name it ends (`r` -> `lora.r`)."""
    if name in names:
        return [name]
    return sorted(n for n in names if n.endswith("." + name))


def coerce(where: str, kind: Any, value: Any) -> Any:
    """Convert a spec or command-line value to the field's type, or say why it cannot be."""
    given = value
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return coerce(where, inner, value)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise UsageError(f"{where}: expected a list, got {value!r}")
        (inner, *_) = typing.get_args(kind)
        return tuple(coerce(where, inner, item.strip() if isinstance(item, str) else item) for item in items)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1", "on"):
                return True
            if str(value).lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, str) and "e" in value.lower():
                value = float(value)  # 1e5 is an integer written as a float; 1.5e0 is not
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise ValueError  # nan and inf pass every `<= 0` check: no setting means them
            return float(value)
        if kind is str:
            return str(value)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{where}: expected {'a finite ' if kind is float else ''}{kind.__name__}, got {given!r}") from None
    raise TypeError(f"{where}: unsupported field type {kind}")


def build(cls: type, where: str, values: dict[str, Any]) -> Any:
    """Instantiate a config dataclass from loose values, rejecting unknown keys.

    Values of a nested config field come as dotted keys (`lora.r`) or a mapping (`lora: {r: 8}`).
    """
    values = flatten(values)
    known = flat_field_types(cls)
    unknown = values.keys() - known.keys()
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    kwargs: dict[str, Any] = {}
    for name, kind in field_types(cls).items():
        if is_config_class(kind):
            sub = {k.partition(".")[2]: v for k, v in values.items() if k.partition(".")[0] == name}
            kwargs[name] = build(kind, f"{where}: {name}", sub)
        elif name in values:
            kwargs[name] = coerce(f"{where}: {name}", kind, values[name])
    return cls(**kwargs)


def parse_set(pairs: list[str], section_fields: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """`['r=16', 'training.lr=1e-4']` -> {'hyperparameters': {'r': '16'}, 'training': {'lr': '1e-4'}}.

    A short name must belong to exactly one section; the values stay strings until `build`
    coerces them, so their type is checked against the field.
    """
    out: dict[str, dict[str, Any]] = {s: {} for s in section_fields}
    for pair in pairs:
        key, value = split_pair(pair)
        owners = locate(key, section_fields)
        if len(owners) > 1:
            raise UsageError(ambiguous_key_message(key, owners))
        if not owners:
            raise UsageError(unknown_key_message(key, section_fields))
        section, full = owners[0]
        out[section][full] = value
    return out


def parse_method_set(
    pairs: list[str], method_fields: dict[str, dict[str, set[str]]], *, sections: tuple[str, ...] = ("hyperparameters",), command: str
) -> dict[str, list[str]]:
    """`--set` for a command that applies several methods at once (`latency`, `profile`): `parse_set`'s grammar
    (`key=value`, `section.key=value`), the key going to every listed method that has it, plus `METHOD.key=value`
    (the longest listed name that prefixes the key) for one method's value.

    `method_fields`: each method's settable names by section; only keys of `sections` may be set. Returns each
    method's own pairs, the method prefix removed, for `resolve_sections`. A pair no listed method takes, or one
    that names a section the command does not use, is a one-line error.
    """
    out: dict[str, list[str]] = {m: [] for m in method_fields}
    for pair in pairs:
        key, value = split_pair(pair)
        qualified = [m for m in method_fields if key.startswith(m + ".")]  # a composed method's own names have dots too
        target = max(qualified, key=len) if qualified else None
        name = key[len(target) + 1 :] if target else key
        candidates = [target] if target else list(method_fields)
        owners: dict[str, tuple[str, str]] = {}
        for m in candidates:
            found = locate(name, method_fields[m])
            if len(found) > 1:
                raise UsageError(ambiguous_key_message(name, found) + f" (for {m})")
            if found:
                owners[m] = found[0]
        head = name.partition(".")[0]
        elsewhere = sorted({f"{s}.{full}" for s, full in owners.values() if s not in sections})
        if elsewhere or (not owners and head in SECTIONS and head not in sections):
            what = ", ".join(elsewhere) or head
            raise UsageError(f"--set {key}: {command} set only {', '.join(sections)}, not {what}")
        if not owners:
            if target is None and "." in key and head not in SECTIONS:
                raise UsageError(f"--set {key}: {head!r} is not one of the listed methods ({', '.join(method_fields)})")
            known = {s: {n for m in candidates for n in method_fields[m].get(s, ())} for s in sections}
            raise UsageError(unknown_key_message(name, known, scope=f" for {', '.join(candidates)}"))
        for m in owners:
            out[m].append(f"{name}={value}")
    return out


def split_pair(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--set expects key=value, got {pair!r}")
    return key, value


def locate(key: str, section_fields: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The (section, name) pairs `key` can stand for: `section.name`, a short name, or a composed method's dotted one."""
    section, dot, name = key.partition(".")
    if dot and section in section_fields:
        return [(section, name)] if name in section_fields[section] else []
    return [(s, full) for s, names in section_fields.items() for full in matching_names(key, names)]


def ambiguous_key_message(key: str, owners: list[tuple[str, str]]) -> str:
    return f"--set {key} is ambiguous: say one of {', '.join(f'{s}.{full}' for s, full in owners)}"


def unknown_key_message(key: str, section_fields: dict[str, set[str]], scope: str = "") -> str:
    """`--set lrr`: the close short or dotted names, or, with none close, every key by section (there is no other list)."""
    section, dot, name = key.rpartition(".")
    if dot and section in section_fields:  # a known section: its own keys only
        close = [f"{section}.{c}" for c in difflib.get_close_matches(name, sorted(section_fields[section]), n=3, cutoff=0.6)]
    else:
        names = sorted({n for names in section_fields.values() for n in names})
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if close:
        return f"--set: unknown key {key!r}{scope}; did you mean {' or '.join(repr(c) for c in dict.fromkeys(close))}?"
    known = "; ".join(f"{s}: {', '.join(sorted(names)) or 'none'}" for s, names in section_fields.items())
    return f"--set: unknown key {key!r}{scope} (known keys: {known})"


def section_fields(method: str) -> dict[str, set[str]]:
    """The names `--set` reaches for `method`, by section (a composed method's hyperparameters as `part.key`)."""
    from peftbench.methods.config import CONFIGS

    classes = {"hyperparameters": CONFIGS.get(method), "training": TrainConfig, "generation": GenerationConfig}
    return {s: set(flat_field_types(c)) for s, c in classes.items()}
