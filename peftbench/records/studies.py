"""Study summaries: what a finished `peftbench tune` study left under `<results>/studies/`, read back.

The `tuned:<study>` preset applies a study's best values. Its values live with the results, not in the
specs, so this layer hands the preset source to configuration (`register_preset_source`), which never
imports records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftbench.config.resolve import named_presets, register_preset_source
from peftbench.errors import UsageError
from peftbench.records.store import Store
from peftbench.specs import MethodSpec, Preset, read_json


def read_summary(name: str, results_dir: str | None) -> dict[str, Any]:
    path = Store(results_dir and Path(results_dir)).study_path(name)
    if not path.is_file():
        raise UsageError(f"preset tuned:{name}: no study summary at {path} (run peftbench tune first, or pass --results-dir)")
    summary = read_json(path, "study summary")
    if not isinstance(summary, dict):
        raise UsageError(f"{path}: not a study summary")
    return summary


def tuned_presets(method_spec: MethodSpec, name: str, model: str, task: str | None, results_dir: str | None) -> list[Preset]:
    """The `tuned:<study>` preset: the study's base preset (if any), then its best values."""
    summary = read_summary(name, results_dir)
    if summary.get("method") != method_spec.name:
        raise UsageError(f"preset tuned:{name} tuned {summary.get('method')}, not {method_spec.name}")
    if (summary.get("model"), summary.get("task")) != (model, task):
        raise UsageError(f"preset tuned:{name} was tuned for {summary.get('model')} on {summary.get('task')}, not {model} on {task}")
    if not summary.get("best_sections"):
        raise UsageError(f"preset tuned:{name}: the study has no finished trial yet")
    base = named_presets(method_spec, summary["preset"], model, task) if summary.get("preset") else []
    sections = summary["best_sections"]
    return [*base, Preset(name=f"tuned:{name}", models=(model,), tasks=(task,) if task else (), **sections)]


register_preset_source("tuned", tuned_presets)
