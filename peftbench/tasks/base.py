"""Task specs (`tasks/*.yaml`) and where a task's examples come from.

A task spec says what the data is (format, splits, labels), how it is scored (metrics and
their direction) and which training settings the paper used. Examples come from exactly one
source, recorded with a content hash per split:
- `--data-dir DIR`: the dataset's original release files;
- `--data-dir sample`: the small synthetic sample bundled with peftbench;
- neither: the hub, except for tiny models, which use the sample (a benchmark never trains on
  sample data silently: the record says `data: sample`).
How a release is found and read is its format's business: the reader registered under the
spec's `format` in `FORMATS` (`tasks/formats.py`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from peftbench.errors import UsageError
from peftbench.registry import Registry
from peftbench.specs import Preset, check_keys, check_version, mapping, names, parse_presets, read_yaml, spec_dir, text
from peftbench.tasks.readers import FORMATS, SAMPLES_DIR

KINDS = ("classification", "regression", "generation")
TASK_KEYS_REQUIRED = {"version", "name", "description", "kind", "format", "metrics", "main_metric", "eval_splits", "default_model"}
TASK_KEYS_OPTIONAL = {"num_labels", "label_names", "hub", "package", "training", "generation", "presets", "paper_table"}


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    kind: str
    format: str
    metrics: tuple[str, ...]
    main_metric: str
    eval_splits: tuple[str, ...]
    default_model: str
    num_labels: int = 1
    label_names: tuple[str, ...] = ()
    hub: dict[str, str] = field(default_factory=dict)
    package: dict[str, str] = field(default_factory=dict)  # {file: module/path, install: ...}: data shipped in a PyPI package
    training: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    presets: tuple[Preset, ...] = ()
    paper_table: str = ""
    source: Path | None = None


def parse_task_spec(path: Path) -> TaskSpec:
    data = read_yaml(path)
    where = str(path)
    check_keys(where, data, TASK_KEYS_REQUIRED, TASK_KEYS_OPTIONAL)
    check_version(where, data)
    if data["name"] != path.stem:
        raise UsageError(f"{where}: name {data['name']!r} must match the file name {path.stem!r}")
    kind, fmt = text(where, "kind", data["kind"]), text(where, "format", data["format"])
    if kind not in KINDS:
        raise UsageError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if fmt not in FORMATS:  # a format is known by its registered reader (tasks/formats.py)
        raise UsageError(f"{where}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    from peftbench.tasks.metrics import METRICS

    metrics = names(where, "metrics", data["metrics"])
    for metric in metrics:
        if metric not in METRICS:
            raise UsageError(f"{where}: unknown metric {metric!r} (known: {', '.join(METRICS)})")
    main_metric = text(where, "main_metric", data["main_metric"])
    if main_metric not in metrics:
        raise UsageError(f"{where}: main_metric {main_metric!r} is not among its metrics")
    eval_splits = names(where, "eval_splits", data["eval_splits"])
    if not eval_splits:
        raise UsageError(f"{where}: eval_splits must name at least one split")
    num_labels = data.get("num_labels", 1)
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise UsageError(f"{where}: num_labels must be a positive integer, got {num_labels!r}")
    return TaskSpec(
        name=data["name"],
        description=text(where, "description", data["description"]) or "",
        kind=kind,
        format=fmt,
        metrics=metrics,
        main_metric=main_metric,
        eval_splits=eval_splits,
        default_model=text(where, "default_model", data["default_model"]) or "",
        num_labels=num_labels,
        label_names=names(where, "label_names", data.get("label_names")),
        hub=mapping(where, "hub", data.get("hub")),
        package=mapping(where, "package", data.get("package")),
        training=mapping(where, "training", data.get("training")),
        generation=mapping(where, "generation", data.get("generation")),
        presets=parse_presets(where, data.get("presets")),
        paper_table=text(where, "paper_table", data.get("paper_table", "")) or "",
        source=path,
    )


@lru_cache(maxsize=1)
def task_specs() -> Registry[TaskSpec]:
    registry: Registry[TaskSpec] = Registry("task")
    for path in sorted(spec_dir("tasks").glob("*.yaml")):
        registry.add(path.stem, parse_task_spec(path))
    return registry


@dataclass(frozen=True)
class DataSource:
    """Where a run's examples come from; `files` (split -> files, relative to `path`) is filled as they are read."""

    kind: str  # 'hub', 'package', 'sample' or 'local'
    path: Path | None = None
    files: dict[str, str] = field(default_factory=dict, compare=False)

    def describe(self, spec: TaskSpec) -> str:
        """`local:/data/webnlg (train: train/ (45 XML files); test: test/testdata_with_lex.xml)`: shown at the start and recorded."""
        if self.kind == "hub":
            return f"hub:{spec.hub.get('path', '?')}" + (f"/{spec.hub['name']}" if spec.hub.get("name") else "")
        read = "; ".join(f"{split}: {files}" for split, files in self.files.items())
        return f"{self.kind}:{self.path}" + (f" ({read})" if read else "")


def data_source(spec: TaskSpec, data_dir: str | None, tiny_model: bool, train_split: str = "train") -> DataSource:
    if data_dir == "sample" or (data_dir is None and tiny_model):
        return DataSource("sample", SAMPLES_DIR / spec.format)
    if data_dir is None and spec.package:
        from peftbench.models.packaged import package_file

        return DataSource("package", package_file(spec.package["file"], spec.package.get("install"), f"task {spec.name}"))
    if data_dir is None:
        return DataSource("hub")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise UsageError(f"--data-dir {data_dir}: no such directory")
    locate_files(spec, path.resolve(), train_split)  # a missing split fails now, before a model is loaded
    return DataSource("local", path.resolve())


def locate_files(spec: TaskSpec, path: Path, train_split: str = "train") -> dict[str, list[Path]]:
    """The release files each split of a folder will be read from, every split the run needs checked present; none is parsed."""
    return FORMATS.get(spec.format).locate(spec, path, required_splits(spec, train_split))


def required_splits(spec: TaskSpec, train_split: str = "train") -> tuple[str, ...]:
    """The splits a run reads: it trains on `train_split` (normally train) and scores the spec's eval splits."""
    return (train_split, *(s for s in spec.eval_splits if s != train_split))


def check_train_split(spec: TaskSpec, train_split: str) -> None:
    """Training on a split that is also scored would report a memorised score: refused before any work."""
    if train_split in spec.eval_splits:
        raise UsageError(f"train_split={train_split}: task {spec.name} scores that split ({', '.join(spec.eval_splits)}); train on another")


def load_splits(spec: TaskSpec, source: DataSource, train_split: str = "train") -> dict[str, list[Any]]:
    """The task's examples by split, from its one source, in the dataset's own format.

    From files, every split the run needs is located before any is parsed, so a folder without
    (say) a train file fails at once with a `DataError` naming what is missing.
    """
    fmt = FORMATS.get(spec.format)
    if source.kind == "hub":
        return fmt.load_hub(spec)
    files = locate_files(spec, source.path, train_split)  # type: ignore[arg-type]
    source.files.update(fmt.describe(source.path, files))  # type: ignore[arg-type]
    return fmt.assign_splits(spec, {split: read_split(spec, paths) for split, paths in files.items()})


def read_split(spec: TaskSpec, paths: list[Path]) -> list[Any]:
    """One split's examples from its located files, by the task's format."""
    return FORMATS.get(spec.format).read(spec, paths)


def content_hash(examples: list[Any]) -> str:
    """A hash of the examples themselves, so two records can tell whether they saw the same data."""
    digest = hashlib.sha256()
    for example in examples:
        plain = asdict(example) if is_dataclass(example) and not isinstance(example, type) else example
        digest.update(json.dumps(plain, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()
