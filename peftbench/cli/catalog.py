"""What `peftbench ls` lists and what `peftbench validate` checks: every spec, every preset."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from peftbench.errors import UsageError
from peftbench.models.presets import ModelSource, model_presets
from peftbench.specs import PACKAGE_DIR, method_specs
from peftbench.tasks.base import task_specs

DEFAULT_MODEL, DEFAULT_TASK = "tiny-roberta", "mrpc"  # where `validate` checks a method's defaults and model-less presets


def catalog(what: str) -> list[tuple[str, str, str]]:
    """(name, one-line description, the spec it comes from)."""
    if what == "methods":  # every method has a spec (validate checks it): listing them needs no torch
        return [(name, spec.description + runs_on(spec.peft), str(spec.source)) for name, spec in method_specs().items()]
    if what == "tasks":
        return [(name, spec.description, str(spec.source)) for name, spec in task_specs().items()]
    return [(name, src.description, str(PACKAGE_DIR / "models.yaml")) for name, src in model_presets().items()]


def runs_on(bridge: dict[str, object]) -> str:
    """A peft type's families, as its spec declares them (measured by tools/peft_specs.py); empty for our own methods."""
    families = bridge.get("runs_on")
    return f" [runs on {', '.join(map(str, families))}]" if isinstance(families, list) else ""


def validate_all() -> Iterator[str]:
    """Resolve every (method, preset) against the models and tasks it names; raise on the first problem.

    Everything is read as plain data (specs, presets, `config.json` files) and checked against the
    sizes the model configs declare: no torch, no transformers, so it answers at once.
    """
    from peftbench.config.resolve import check_declared
    from peftbench.methods.config import CONFIGS
    from peftbench.models.arch import arch_for_type

    methods, tasks, models = method_specs(), task_specs(), model_presets()
    missing_spec = sorted(set(CONFIGS) - set(methods))
    missing_config = sorted(set(methods) - set(CONFIGS))
    if missing_spec or missing_config:
        raise UsageError(f"methods without a spec: {missing_spec}; specs without a method: {missing_config}")
    yield f"{len(models._items)} model presets"
    for name, task_spec in tasks.items():
        models.get(task_spec.default_model)
        yield f"task {name}: {task_spec.kind}, metrics {', '.join(task_spec.metrics)}"
    absent: set[str] = set()
    unchecked = {name: CONFIGS.get(name).missing_library() for name in methods}
    for name, spec in methods.items():
        if unchecked[name]:
            continue
        checked = 0
        for preset in spec.presets or ():
            if any(models.get(m).counting_only for m in preset.models):
                continue
            pairs = itertools.product(preset.models or [DEFAULT_MODEL], [t for t in (preset.tasks or tasks) if t in tasks])
            for model, task in pairs:
                source = readable_without_loading(models.get(model))
                if source is None:
                    absent.add(model)
                    continue
                if tasks.get(task).kind == "generation" and not arch_for_type(source.declared_config()["model_type"]).causal:
                    continue
                check_declared(name, task, source, preset=preset.name)
                checked += 1
        check_declared(name, DEFAULT_TASK, DEFAULT_MODEL)
        yield f"method {name}: {checked + 1} configurations resolve"
    if absent:
        yield f"not checked (model not installed or not yet converted): presets of {', '.join(sorted(absent))}"
    for library in sorted({why for why in unchecked.values() if why}):
        yield f"not checked (library not installed, {library}): {', '.join(n for n, why in unchecked.items() if why == library)}"


def readable_without_loading(source: ModelSource) -> ModelSource | None:
    """The preset with a config that can be read without loading weights or converting a GGUF; None when it can't."""
    from dataclasses import replace

    from peftbench.models import packaged
    from peftbench.models.presets import materialised

    if source.gguf:
        folder = packaged.converted_folder(source.name)
        return replace(source, local_dir=folder) if (folder / "config.json").is_file() else None
    if source.package:
        try:
            return materialised(source)
        except UsageError:
            return None
    return source
