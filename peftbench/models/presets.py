"""Model presets (`models.yaml`), local model folders, and what a model source is: readable without
torch or transformers, so `peftbench ls`, `validate` and other listings answer at once; `models.py`
builds and loads the models."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from peftbench.errors import UsageError
from peftbench.registry import Registry
from peftbench.specs import PACKAGE_DIR, check_keys, check_version, read_yaml

TRUST_PICKLE = "PEFTBENCH_TRUST_PICKLE"  # "1": load pickled model weights (set by --trust-pickle; a sweep's workers inherit it)

TOKENIZERS = ("tiny", "gpt2-bpe")  # what a random-init preset's `tokenizer:` may name (tokenizer.py)
MODEL_KEYS = {"description", "hub_id", "config", "tokenizer", "training", "counting_only", "package", "gguf", "eos", "install", "reference"}


@dataclass(frozen=True)
class ModelSource:
    """A preset from `models.yaml`, or a local folder with a `config.json` (and weights)."""

    name: str
    description: str = ""
    hub_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tokenizer: str | None = None  # random-init presets: 'tiny' (the bundled BPE) or 'gpt2-bpe' (tokenizer.py)
    training: dict[str, Any] = field(default_factory=dict)
    counting_only: bool = False
    package: str | None = None  # `module/folder`: a model folder inside an installed Python package
    gguf: str | None = None  # `module/file.gguf`: a GGUF file inside an installed package, converted once
    eos: str | None = None  # the eos token to set on a converted GGUF tokenizer
    install: str | None = None  # how to install the package (named in the error when it is missing)
    reference: str | None = None  # the paper's model of the same family whose numbers a report shows beside this one, as a reference only
    local_dir: Path | None = None

    @property
    def is_tiny(self) -> bool:
        return self.tokenizer in TOKENIZERS

    @property
    def origin(self) -> str:
        if self.package or self.gguf:
            return f"python package {self.package or self.gguf}" + (" (GGUF, converted)" if self.gguf else "")
        return str(self.local_dir) if self.local_dir else (self.hub_id or "random init from config")

    def declared_config(self) -> dict[str, Any]:
        """The model's config as plain data: the folder's `config.json`, or the preset's `config:`.

        Without transformers' defaults and, for a tiny preset, without its tokenizer's vocabulary
        and special ids, which building the model adds; `arch.dims_of` reads the sizes from it.
        """
        if self.local_dir:
            return check_model_config(self.local_dir / "config.json")
        return dict(self.config)


@lru_cache(maxsize=1)
def model_presets() -> Registry[ModelSource]:
    path = PACKAGE_DIR / "models.yaml"
    data = read_yaml(path)
    check_keys(str(path), data, {"version", "models"}, set())
    check_version(str(path), data)
    registry: Registry[ModelSource] = Registry("model")
    for name, entry in data["models"].items():
        check_keys(f"{path}: {name}", entry, {"description"}, MODEL_KEYS)
        if entry.get("tokenizer") not in (None, *TOKENIZERS):
            raise UsageError(f"{path}: {name}: tokenizer must be one of {', '.join(TOKENIZERS)}, got {entry['tokenizer']!r}")
        registry.add(name, ModelSource(name=name, **entry))
    return registry


def resolve_model(name: str) -> ModelSource:
    """A preset name, or a path to a local model folder (`--model DIR`)."""
    if name in model_presets():
        return materialised(model_presets().get(name))
    path = Path(name).expanduser()
    if path.is_dir():
        check_model_config(path / "config.json")
        return ModelSource(name=path.name, description=f"local model {path}", local_dir=path.resolve())
    if os.sep in name or name.startswith("."):
        raise UsageError(f"model folder {name!r} does not exist")
    return model_presets().get(name)  # raises with suggestions


def materialised(source: ModelSource) -> ModelSource:
    """A preset whose files come in an installed package, pointed at its model folder (converted once for GGUF)."""
    from dataclasses import replace

    from peftbench.models import packaged

    if source.package:
        return replace(source, local_dir=packaged.package_file(source.package, source.install, f"model {source.name}"))
    if source.gguf:
        gguf = packaged.package_file(source.gguf, source.install, f"model {source.name}")
        return replace(source, local_dir=packaged.gguf_model_folder(source.name, gguf, source.eos))
    return source


def check_model_config(path: Path) -> dict[str, Any]:
    """A local model folder's `config.json`, which must be a JSON object naming its `model_type`.

    Checked when the folder is named, so a corrupt file is a one-line usage error before any work,
    not an OSError from deep inside `AutoConfig`.
    """
    if not path.is_file():
        raise UsageError(f"{path.parent}: not a model folder (no config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the model config: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: the model config is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: the model config is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path}: the model config must be a JSON object, got {type(config).__name__}")
    if not isinstance(config.get("model_type"), str) or not config["model_type"]:
        from peftbench.models.arch import ARCHS

        supported = ", ".join(t for arch in ARCHS for t in arch.model_types)
        raise UsageError(f"{path}: the model config names no model_type (supported: {supported})")
    return config
