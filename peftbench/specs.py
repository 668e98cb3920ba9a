"""Finding and reading the declarative specs (`methods/*.yaml`, `tasks/*.yaml`, model presets).

Specs live at the top of a checkout and are copied into the wheel under `peftbench/_specs/`
(see `pyproject.toml`), so the same lookup works in both. Reading is strict: a safe YAML load,
a `version` every spec must declare, and unknown keys are errors, because a misspelt key in a
spec would otherwise silently fall back to a default and change a benchmark's meaning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeGuard, overload

import yaml

from peftbench.errors import UsageError

SPEC_VERSION = 1
PACKAGE_DIR = Path(__file__).resolve().parent


def spec_dir(kind: str) -> Path:
    """The folder of `kind` specs ('methods' or 'tasks'): the installed copy, else the checkout's."""
    for candidate in (PACKAGE_DIR / "_specs" / kind, PACKAGE_DIR.parent / kind):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    raise UsageError(f"no {kind} specs found next to the peftbench package ({PACKAGE_DIR})")


MAX_JSON_BYTES = 64 * 2**20  # records, baselines, summaries and model configs are far smaller
MAX_JSON_DEPTH = 64  # ours nest a few levels; a deeper file is not ours, and deep trees break recursive readers


def read_json(path: Path, what: str) -> Any:
    """A JSON file's content, or one clear error naming the file and what it should have been.

    Files may come from anywhere (records are merged by copying), so size and nesting are bounded.
    """
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise UsageError(f"{path}: not a readable {what} (larger than {MAX_JSON_BYTES // 2**20} MiB)")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deep" if isinstance(exc, RecursionError) else exc
        raise UsageError(f"{path}: not a readable {what} ({reason})") from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise UsageError(f"{path}: not a readable {what} (nested deeper than {MAX_JSON_DEPTH} levels)")
    return data


def json_depth(data: Any) -> int:
    """How deep a parsed JSON document nests (iteratively: a deep document must not exhaust the stack here)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        value, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)
    return deepest


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML has it: the same documents, faster


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise UsageError(f"{path}: cannot read spec: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a spec must be a mapping, got {type(data).__name__}")
    return data


def spec_content_hash(path: Path | None) -> str | None:
    """sha256 of a spec's parsed content without its file-format `version`: what a spec says, not how it is
    laid out, so a comment or a reordering keeps runs comparable while a changed value does not. A method's
    `search:` space is left out too: it decides what `tune` tries, never what one run does."""
    if path is None:
        return None
    return stable_hash({k: v for k, v in read_yaml(path).items() if k not in ("version", "search")})


def stable_hash(obj: Any) -> str:
    """sha256 of a JSON-able object in canonical form (sorted keys, no whitespace): the one content hash of
    configurations, specs and model definitions."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def check_keys(where: str, data: dict[str, Any], required: set[str], optional: set[str]) -> None:
    missing = required - data.keys()
    unknown = data.keys() - required - optional
    if missing:
        raise UsageError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    if unknown:
        allowed = ", ".join(sorted(required | optional))
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: {allowed})")


# Typed reads of one spec field. YAML gives any shape (a number where a list belongs, a list where
# a mapping does); each is checked here, so a broken spec is a `UsageError` naming the key, never
# a TypeError from deep inside the code that uses it.


@overload
def text(where: str, key: str, value: Any, *, optional: Literal[False] = False) -> str: ...
@overload
def text(where: str, key: str, value: Any, *, optional: bool) -> str | None: ...
def text(where: str, key: str, value: Any, *, optional: bool = False) -> str | None:
    """A string field (None allowed when `optional`)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{where}: {key} must be a string, got {type(value).__name__}")
    return value


def names(where: str, key: str, value: Any) -> tuple[str, ...]:
    """A list of strings (absent: empty)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: {key} must be a list of strings, got {value!r}")
    return tuple(value)


def mapping(where: str, key: str, value: Any) -> dict[str, Any]:
    """A mapping with string keys (absent: empty); its values are checked where they are used."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {key} must be a mapping, got {type(value).__name__}")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise UsageError(f"{where}: {key} keys must be strings, got {bad[0]!r}")
    return dict(value)


def check_version(where: str, data: dict[str, Any]) -> None:
    if data.get("version") != SPEC_VERSION:
        raise UsageError(f"{where}: version must be {SPEC_VERSION}, got {data.get('version')!r}")


@dataclass(frozen=True)
class Preset:
    """Overrides that apply to some (model, task) pairs, or to all when `models`/`tasks` are empty.

    A preset with a `name` applies only when asked for with `--preset NAME`.
    """

    name: str | None = None
    models: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    note: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)

    def matches(self, model: str, task: str | None) -> bool:
        return (not self.models or model in self.models) and (not self.tasks or task in self.tasks)


PRESET_KEYS = {"name", "models", "tasks", "note", "hyperparameters", "training", "generation"}


def parse_presets(where: str, raw: Any) -> tuple[Preset, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise UsageError(f"{where}: presets must be a list")
    presets = []
    for i, entry in enumerate(raw):
        at = f"{where}: presets[{i}]"
        if not isinstance(entry, dict):
            raise UsageError(f"{at}: must be a mapping")
        check_keys(at, entry, set(), PRESET_KEYS)
        presets.append(
            Preset(
                name=text(at, "name", entry.get("name"), optional=True),
                models=names(at, "models", entry.get("models")),
                tasks=names(at, "tasks", entry.get("tasks")),
                note=text(at, "note", entry.get("note", "")) or "",
                hyperparameters=mapping(at, "hyperparameters", entry.get("hyperparameters")),
                training=mapping(at, "training", entry.get("training")),
                generation=mapping(at, "generation", entry.get("generation")),
            )
        )
    return tuple(presets)


METHOD_KEYS_REQUIRED = {"version", "name", "description"}
METHOD_KEYS_OPTIONAL = {"hyperparameters", "training", "presets", "paper_labels", "search", "peft"}
SEARCH_TYPES = ("float", "int", "categorical")


@dataclass(frozen=True)
class SearchParam:
    """One tunable setting of a method's search space (`search:` in methods/*.yaml), by its `--set` name.

    Declared in the spec, not in code, so every method's space is visible and reviewable beside its
    presets; `peftbench tune` samples it with Optuna (float/int: `low`..`high`, `log` scale; or `choices`).
    """

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_search(where: str, raw: Any) -> tuple[SearchParam, ...]:
    """`{lr: {type: float, low: 1e-5, high: 1e-2, log: true}, r: {type: categorical, choices: [4, 8]}}`."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: search must be a mapping of setting name -> range")
    params = []
    for name, entry in raw.items():
        at = f"{where}: search.{name}"
        if not isinstance(entry, dict):
            raise UsageError(f"{at}: must be a mapping")
        check_keys(at, entry, {"type"}, {"low", "high", "log", "choices"})
        kind = entry["type"]
        if kind not in SEARCH_TYPES:
            raise UsageError(f"{at}: type must be one of {', '.join(SEARCH_TYPES)}, got {kind!r}")
        if kind == "categorical":
            choices = entry.get("choices")
            if not isinstance(choices, list) or not choices or entry.keys() - {"type", "choices"}:
                raise UsageError(f"{at}: a categorical needs a non-empty list `choices` (and no low/high/log)")
            params.append(SearchParam(str(name), kind, choices=tuple(choices)))
            continue
        low, high, log = entry.get("low"), entry.get("high"), bool(entry.get("log", False))
        if not (is_number(low) and is_number(high)) or "choices" in entry or not low < high or (log and low <= 0):
            raise UsageError(f"{at}: needs numbers low < high (low > 0 with log: true), and no choices")
        params.append(SearchParam(str(name), kind, float(low), float(high), log))
    return tuple(params)


@dataclass(frozen=True)
class MethodSpec:
    """A method's declarative side: its default hyperparameters and the paper's presets."""

    name: str
    description: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    presets: tuple[Preset, ...] = ()
    paper_labels: tuple[str, ...] = ()
    search: tuple[SearchParam, ...] = ()  # the tuning space (`peftbench tune`)
    source: Path | None = None
    # `peft:<type>` methods only: how the bridge builds peft's config (its class, what it targets) and where the type
    # runs (families, the reason for each refused one); checked in `methods/config.py`, read without importing peft
    peft: dict[str, Any] = field(default_factory=dict)

    def preset_names(self) -> list[str]:
        return [p.name for p in self.presets if p.name]


def parse_method_spec(path: Path) -> MethodSpec:
    data = read_yaml(path)
    where = str(path)
    check_keys(where, data, METHOD_KEYS_REQUIRED, METHOD_KEYS_OPTIONAL)
    check_version(where, data)
    if data["name"] != spec_name(path):
        raise UsageError(f"{where}: name {data['name']!r} must match the file name {spec_name(path)!r}")
    return MethodSpec(
        name=data["name"],
        description=text(where, "description", data["description"]) or "",
        hyperparameters=mapping(where, "hyperparameters", data.get("hyperparameters")),
        training=mapping(where, "training", data.get("training")),
        presets=parse_presets(where, data.get("presets")),
        paper_labels=names(where, "paper_labels", data.get("paper_labels")),
        search=parse_search(where, data.get("search")),
        source=path,
        peft=mapping(where, "peft", data.get("peft")),
    )


def spec_name(path: Path) -> str:
    """A spec's method name: its file name, prefixed by its folder inside methods/ (`peft/dora.yaml` -> `peft:dora`).

    A family of methods from one source (the peft bridge) keeps its specs in one folder; a colon in a
    file name would not survive every file system or wheel, a folder does.
    """
    return path.stem if path.parent.name == "methods" or path.parent.parent.name != "methods" else f"{path.parent.name}:{path.stem}"


@lru_cache(maxsize=1)
def method_specs() -> dict[str, MethodSpec]:
    folder = spec_dir("methods")
    paths = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*/*.yaml"))
    return {spec_name(p): parse_method_spec(p) for p in paths}
