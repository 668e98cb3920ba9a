"""Model presets (`models.yaml`) and what a model source is: readable without torch or transformers,
so `peftbench ls` and other listings answer at once; `models.py` builds and loads the models."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from peftbench.errors import UsageError
from peftbench.registry import Registry
from peftbench.specs import PACKAGE_DIR, check_keys, check_version, read_yaml

TOKENIZERS = ("tiny", "gpt2-bpe")  # what a random-init preset's `tokenizer:` may name (tokenizer.py)
MODEL_KEYS = {"description", "hub_id", "config", "tokenizer", "training", "counting_only", "package", "gguf", "eos", "install"}


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
    local_dir: Path | None = None

    @property
    def is_tiny(self) -> bool:
        return self.tokenizer in TOKENIZERS

    @property
    def origin(self) -> str:
        if self.package or self.gguf:
            return f"python package {self.package or self.gguf}" + (" (GGUF, converted)" if self.gguf else "")
        return str(self.local_dir) if self.local_dir else (self.hub_id or "random init from config")


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
