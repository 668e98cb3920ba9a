"""Resolution: the layers of configuration stacked into one validated run, before anything is loaded or trained.

Layers, lowest first: dataclass defaults < task spec < method spec < model preset (tiny models
train briefly) < method presets matching (model, task) < `--preset NAME` < `--set key=value`.

`resolve_run` turns names and overrides (from the CLI, a sweep or a search) into a `ResolvedRun`:
the validated configuration, the task spec, the model source with its transformers config (built
once), the data source and the content hashes of the specs. Every user mistake it can find (an
unknown name, a bad `--set`, a missing data folder, a corrupt model folder) is raised here as a
`UsageError` (exit 2), before a record exists.

Named presets come from the method spec; other preset sources (`tuned:<study>`, whose values live with
the results) are handed in through `PRESET_SOURCES` by the layer that owns them, so configuration never
imports what sits above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from peftbench.config.schema import (
    SECTIONS,
    GenerationConfig,
    RunConfig,
    TrainConfig,
    build,
    flat_field_types,
    flatten,
    parse_method_set,
    parse_set,
    section_fields,
)
from peftbench.errors import UsageError
from peftbench.methods.config import CONFIGS
from peftbench.models.arch import ModelDims, arch_for_type, arch_serving, dims_of
from peftbench.models.presets import ModelSource, resolve_model
from peftbench.registry import unknown_name_message
from peftbench.specs import MethodSpec, Preset, method_specs, read_json, spec_content_hash, stable_hash
from peftbench.tasks.base import DataSource, TaskSpec, check_train_split, data_source, task_specs

PresetSource = Callable[[MethodSpec, str, str, "str | None", "str | None"], list[Preset]]
# `prefix:name` presets read from elsewhere: (method spec, name, model, task, results dir) -> presets to apply.
PRESET_SOURCES: dict[str, PresetSource] = {}


def register_preset_source(prefix: str, source: PresetSource) -> None:
    """Make `--preset <prefix>:<name>` read presets from `source` (records.studies registers `tuned`)."""
    PRESET_SOURCES[prefix] = source


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

    config_cls = CONFIGS.get(method)  # an unknown name fails here, with suggestions
    task_spec = task_specs().get(task) if task is not None else None
    specs = method_specs()
    if method not in specs:
        raise UsageError(unknown_name_message("method", method, specs) + " (no spec file in methods/)")
    source = model if isinstance(model, ModelSource) else resolve_model(model)
    classes = {"hyperparameters": config_cls, "training": TrainConfig, "generation": GenerationConfig}
    layers = layered_values(specs[method], task_spec, source, task, preset, results_dir)
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


def layered_values(
    method_spec: MethodSpec, task_spec: TaskSpec | None, source: ModelSource, task: str | None, preset: str | None, results_dir: str | None
) -> dict[str, dict[str, Any]]:
    """The values of each section from the layers below `--set`, lowest first: task spec < method spec <
    model preset < the unnamed presets matching (model, task) < `--preset NAME`."""
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
    return layers


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
    from peftbench.models.build import base_config, specialise  # torch and transformers: only where a config is built

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
    prefix, colon, rest = name.partition(":")
    if colon and prefix in PRESET_SOURCES:
        return PRESET_SOURCES[prefix](method_spec, rest, model, task, results_dir)

    named = [p for p in method_spec.presets if p.name == name]
    if not named:
        raise UsageError(unknown_name_message(f"preset of {method_spec.name}", name, method_spec.preset_names()))
    applicable = [p for p in named if p.matches(model, task)]
    if not applicable:
        where = "; ".join(f"models {', '.join(p.models) or 'any'}, tasks {', '.join(p.tasks) or 'any'}" for p in named)
        raise UsageError(f"preset {name!r} of {method_spec.name} does not apply to {model} on {task or 'any task'} (it is for {where})")
    return applicable


@dataclass(frozen=True)
class ResolvedRun:
    config: RunConfig
    spec: TaskSpec
    source: ModelSource
    data: DataSource
    hf_config: Any  # the task-specialised transformers config
    dims: ModelDims
    spec_hashes: dict[str, str | None]  # content hashes of the method spec, the task spec and the model's definition

    @property
    def seed(self) -> int:
        return self.config.training.seed


def resolve_run(
    method: str,
    task: str,
    model: str | None = None,
    *,
    preset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    data_dir: str | None = None,
    results_dir: str | None = None,
) -> ResolvedRun:
    """Names and overrides -> one validated run, with the model and data sources resolved once.

    `results_dir`: where a `tuned:<study>` preset is looked up (default: $PEFTBENCH_RESULTS or ./results)."""
    spec = task_specs().get(task)
    source = resolve_model(model or spec.default_model)
    resolved = resolve_sections(method, task, source, preset=preset, overrides=list(overrides), results_dir=results_dir)
    train_split = resolved.sections["training"].train_split
    check_train_split(spec, train_split)
    data = data_source(spec, data_dir, source.is_tiny, train_split)
    config = resolved.run_config(method, task, preset, data.kind)
    hashes = {
        "method": spec_content_hash(method_specs()[method].source),
        "task": spec_content_hash(spec.source),
        "model": model_definition_hash(source),
    }
    return ResolvedRun(config, spec, source, data, resolved.hf_config, resolved.dims, hashes)


def model_definition_hash(source: ModelSource) -> str:
    """What defines the model apart from its name: a preset's entry, or a local folder's config.json."""
    if source.local_dir is None:
        return stable_hash({"hub_id": source.hub_id, "config": source.config, "tokenizer": source.tokenizer})
    path = source.local_dir / "config.json"
    config = read_json(path, "model config")
    if not isinstance(config, dict):
        raise UsageError(f"{path}: not a model config (a JSON object)")
    return stable_hash({k: v for k, v in config.items() if k not in ("transformers_version", "_name_or_path")})


@dataclass(frozen=True)
class ResolvedMeasurement:
    """A model and each method's hyperparameters, resolved once for a measurement without a task (latency,
    profile): the model's default class (decoders as language models, encoders as 2-label classifiers)."""

    source: ModelSource
    kind: str
    num_labels: int
    dims: ModelDims
    hyperparameters: dict[str, Any]  # method -> its validated hyperparameter config
    overrides: dict[str, list[str]]  # method -> its own `--set` pairs (as `parse_method_set` routed them)

    def check_seq(self, seq: int) -> None:
        """A sequence of `seq` tokens, plus the positions a method inserts, fits the model."""
        for method, hp in self.hyperparameters.items():
            extra = hp.extra_positions()
            if seq + extra > self.dims.max_positions:
                limit = f"{self.source.name}'s {self.dims.max_positions} positions"
                raise UsageError(f"seq {seq} (+{extra} inserted by {method}) exceeds {limit}")


def resolve_measurement(methods: list[str], model: str | ModelSource, overrides: list[str], *, command: str) -> ResolvedMeasurement:
    """Resolve the model once and each method's hyperparameters (spec defaults and presets for the model, no task,
    then `--set` routed to the methods that have the key); a bad name or `--set` fails here, before any work."""
    source = model if isinstance(model, ModelSource) else resolve_model(model)
    if source.counting_only:
        raise UsageError(f"{source.name} is for parameter counting only (peftbench params)")
    routed = parse_method_set(list(overrides), {m: section_fields(m) for m in methods}, command=command)
    resolved = {m: resolve_sections(m, None, source, overrides=routed[m]) for m in methods}
    first = resolved[methods[0]]
    hyperparameters = {m: r.sections["hyperparameters"] for m, r in resolved.items()}
    return ResolvedMeasurement(source, first.kind, first.num_labels, first.dims, hyperparameters, routed)
