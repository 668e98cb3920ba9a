"""Run configuration: frozen dataclasses, built in layers, validated, hashed.

Layers, lowest first: dataclass defaults < task spec < method spec < model preset (tiny models
train briefly) < method presets matching (model, task) < `--preset NAME` < `--set key=value`.
Every value passes through `coerce`, so a spec and the command line are checked the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from peftbench.errors import UsageError


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
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


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


def resolve_run_config(
    method: str,
    task: str,
    model: str,
    *,
    preset: str | None = None,
    overrides: list[str] = (),  # type: ignore[assignment]
    data: str = "hub",
) -> RunConfig:
    """Merge the layers (see the module docstring) into one validated `RunConfig`."""
    return resolve_sections(method, task, model, preset=preset, overrides=overrides).run_config(method, task, preset, data)


@dataclass(frozen=True)
class Declared:
    """The sections of one (method, task, model) built from the specs, before any model config exists."""

    model: str
    kind: str  # classification, regression or generation
    num_labels: int
    sections: dict[str, Any]
    source: Any  # presets.ModelSource
    has_task: bool
    model_config: dict[str, Any]  # the model's config as plain data (`ModelSource.declared_config`), read once


@dataclass(frozen=True)
class Resolved(Declared):
    """A `Declared` checked against the model's real sizes, with its transformers config built once."""

    hf_config: Any = None  # the task-specialised transformers config
    dims: Any = None  # arch.ModelDims

    def run_config(self, method: str, task: str, preset: str | None, data: str) -> RunConfig:
        return RunConfig(method=method, task=task, model=self.model, data=data, preset=preset, **self.sections)


def default_kind(model_type: str) -> tuple[str, int]:
    """Without a task, the paper's model class: decoders (GPT-2, Llama) as language models, encoders as 2-label classifiers."""
    from peftbench.models.arch import arch_for_type

    return ("generation", 1) if arch_for_type(model_type).causal else ("classification", 2)


def resolve_declared(
    method: str,
    task: str | None,
    model: str | Any,
    *,
    preset: str | None = None,
    overrides: list[str] = (),  # type: ignore[assignment]
    results_dir: str | None = None,
) -> Declared:
    """The three config sections for (method, task, model) from the layers alone: no torch, no transformers.

    `model` is a preset name, a folder, or an already resolved `ModelSource`. `results_dir` is where
    a `tuned:<study>` preset's study lives (default: $PEFTBENCH_RESULTS or ./results).
    """
    from peftbench.methods.config import CONFIGS
    from peftbench.models.presets import ModelSource, resolve_model
    from peftbench.specs import method_specs
    from peftbench.tasks.base import task_specs

    config_cls = CONFIGS.get(method)
    task_spec = task_specs().get(task) if task is not None else None
    specs = method_specs()
    if method not in specs:
        raise UsageError(f"method {method!r} has no spec file in methods/")
    method_spec = specs[method]
    source = model if isinstance(model, ModelSource) else resolve_model(model)

    layers: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    if task_spec:
        layers["training"].update(task_spec.training)
        layers["generation"].update(task_spec.generation)
    layers["hyperparameters"].update(flatten(method_spec.hyperparameters))
    layers["training"].update(method_spec.training)
    layers["training"].update(source.training)
    for p in (*(task_spec.presets if task_spec else ()), *method_spec.presets):
        if p.name is None and p.matches(source.name, task):
            apply_preset(layers, p)
    if preset is not None:
        for p in named_presets(method_spec, preset, source.name, task, results_dir):
            apply_preset(layers, p)
    classes = {"hyperparameters": config_cls, "training": TrainConfig, "generation": GenerationConfig}
    for section, values in parse_set(list(overrides), {s: set(flat_field_types(c)) for s, c in classes.items()}).items():
        layers[section].update(values)

    built = {s: build(classes[s], f"{method}/{task or '-'}/{source.name} {s}", layers[s]) for s in SECTIONS}
    built["training"].validate()
    built["generation"].validate()
    model_config = source.declared_config()
    kind, num_labels = (task_spec.kind, task_spec.num_labels) if task_spec else default_kind(model_config["model_type"])
    return Declared(
        model=source.name,
        kind=kind,
        num_labels=num_labels,
        sections=built,
        source=source,
        has_task=task_spec is not None,
        model_config=model_config,
    )


def check_sizes(declared: Declared, method: str, dims: Any) -> None:
    """The checks that need the model's sizes: the method's hyperparameters, and the positions a sequence needs."""
    sections = declared.sections
    sections["hyperparameters"].validate(dims)
    if not declared.has_task:
        return
    extra = sections["hyperparameters"].extra_positions()
    name = declared.source.name
    if sections["training"].max_seq_len + extra > dims.max_positions:
        added = f" + {extra} inserted by {method}" if extra else ""
        raise UsageError(f"max_seq_len {sections['training'].max_seq_len}{added} exceeds {name}'s {dims.max_positions} positions")
    new_tokens = sections["generation"].max_new_tokens
    if declared.kind == "generation" and dims.max_positions - new_tokens - extra < 2:  # a prompt needs source + separator
        added = f" and {extra} inserted by {method}" if extra else ""
        raise UsageError(f"max_new_tokens {new_tokens}{added} leave no room for a prompt in {name}'s {dims.max_positions} positions")


def check_declared(method: str, task: str | None, model: str | Any, *, preset: str | None = None) -> Declared:
    """`resolve_declared` checked against the sizes the model's config declares (a preset's, a `config.json`'s),
    read as plain data: what `peftbench validate` does for every spec preset, without building anything."""
    from peftbench.models.arch import arch_serving, dims_of

    declared = resolve_declared(method, task, model, preset=preset)
    arch_serving(declared.model_config["model_type"], declared.model, declared.kind)
    check_sizes(declared, method, dims_of(declared.model_config))
    return declared


def resolve_sections(
    method: str,
    task: str | None,
    model: str | Any,
    *,
    preset: str | None = None,
    overrides: list[str] = (),  # type: ignore[assignment]
    results_dir: str | None = None,
) -> Resolved:
    """The three config sections for (method, task, model); `task=None` for counting without a task.

    The model source is resolved once and its transformers config built once, here, and the
    sections checked against the sizes of that config.
    """
    from peftbench.models.arch import dims_of
    from peftbench.models.build import base_config, specialise

    declared = resolve_declared(method, task, model, preset=preset, overrides=overrides, results_dir=results_dir)
    cls_dropout = declared.sections["training"].cls_dropout
    hf_config = specialise(base_config(declared.source), declared.model, declared.kind, declared.num_labels, cls_dropout)
    dims = dims_of(hf_config)
    check_sizes(declared, method, dims)
    return Resolved(**{f.name: getattr(declared, f.name) for f in fields(Declared)}, hf_config=hf_config, dims=dims)


def apply_preset(layers: dict[str, dict[str, Any]], preset: Any) -> None:
    for section in SECTIONS:
        layers[section].update(flatten(getattr(preset, section)))


def named_presets(method_spec: Any, name: str, model: str, task: str | None, results_dir: str | None = None) -> list[Any]:
    """The presets called `name` that apply to (model, task); an error that says where they apply otherwise.

    `tuned:<study>` is the best configuration a `peftbench tune` study found, read from the study's
    summary under `<results>/studies/` (tuned values live with the results, not in the specs).
    """
    from peftbench.registry import unknown_name_message

    if name.startswith("tuned:"):
        from peftbench.grid.tune import tuned_presets

        return tuned_presets(method_spec, name.removeprefix("tuned:"), model, task, results_dir)

    named = [p for p in method_spec.presets if p.name == name]
    if not named:
        raise UsageError(unknown_name_message(f"preset of {method_spec.name}", name, method_spec.preset_names()))
    applicable = [p for p in named if p.matches(model, task)]
    if not applicable:
        where = "; ".join(f"models {', '.join(p.models) or 'any'}, tasks {', '.join(p.tasks) or 'any'}" for p in named)
        raise UsageError(f"preset {name!r} of {method_spec.name} does not apply to {model} on {task or 'any task'} (it is for {where})")
    return applicable
