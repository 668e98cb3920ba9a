"""One resolved run: everything decided about a run before anything is loaded or trained.

`resolve_run` turns names and overrides (from the CLI, a sweep or a search) into a `ResolvedRun`:
the validated configuration, the task spec, the model source with its transformers config (built
once), the data source and the content hashes of the specs. Every user mistake it can find (an
unknown name, a bad `--set`, a missing data folder, a corrupt model folder) is raised here as a
`UsageError` (exit 2), before a record exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peftbench.config.schema import RunConfig, resolve_sections
from peftbench.errors import UsageError
from peftbench.models.arch import ModelDims
from peftbench.models.presets import ModelSource, resolve_model
from peftbench.records.schema import stable_hash
from peftbench.specs import method_specs, read_json, spec_content_hash
from peftbench.tasks.base import DataSource, TaskSpec, check_train_split, data_source, task_specs


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
