"""Building a model and its tokenizer for a task (with or without weights), from a `ModelSource`
(`presets.py`: the presets of `models.yaml` and local model folders).

A preset's shapes come from `models.yaml`; weights come from the hub (or a local folder given as
`--model DIR`). On the meta device no weights exist at all, which is how `peftbench params`
counts a 1.5B model instantly.
"""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from peftbench.arch import arch_for_type, arch_serving
from peftbench.errors import UsageError
from peftbench.hub import load_from_hub
from peftbench.presets import TRUST_PICKLE, ModelSource
from peftbench.tokenizer import tiny_tokenizer

T = TypeVar("T")

# what a broken model folder raises while loading: missing files, bad JSON, a garbage safetensors file, a refused pickle
LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, SafetensorError, pickle.UnpicklingError)
PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def from_local_dir(load: Callable[..., T], what: str, folder: Path, **kwargs: Any) -> T:
    """`load(folder, **kwargs)` for a `--model DIR`, its failures (missing or unreadable files) as one-line usage errors."""
    try:
        return load(folder, **kwargs)
    except LOAD_ERRORS as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--model {folder}: cannot load its {what}: {first}") from None


def weights_format(folder: Path) -> dict[str, Any]:
    """How a local folder's weights may load: safetensors always; pickled weights only when the user trusts them.

    Unpickling a file can run any code it names. transformers loads `.bin` with `weights_only=True`, which refuses
    most payloads, but a model folder is input from elsewhere: without safetensors it is refused outright unless
    `--trust-pickle` (or PEFTBENCH_TRUST_PICKLE=1) says the user vouches for it.
    """
    if any(folder.glob("*.safetensors")):
        return {"use_safetensors": True}
    pickled = sorted(p.name for pattern in PICKLED_WEIGHTS for p in folder.glob(pattern))
    if pickled and os.environ.get(TRUST_PICKLE) != "1":
        raise UsageError(
            f"--model {folder}: its weights are pickled ({', '.join(pickled[:3])}), and loading a pickle can run code; "
            "convert them to safetensors, or pass --trust-pickle if you trust this folder"
        )
    return {}


def base_config(source: ModelSource) -> PretrainedConfig:
    if source.local_dir:
        return from_local_dir(AutoConfig.from_pretrained, "config", source.local_dir)
    config = dict(source.config)
    config = AutoConfig.for_model(config.pop("model_type"), **config)
    if source.is_tiny:
        tok = tiny_tokenizer(config.model_type, source.tokenizer)
        config.vocab_size = len(tok)
        config.pad_token_id, config.bos_token_id, config.eos_token_id = tok.pad_token_id, tok.bos_token_id, tok.eos_token_id
    return config


def task_config(source: ModelSource, kind: str, num_labels: int, cls_dropout: float = -1.0) -> PretrainedConfig:
    """The base config specialised for a task kind (see `specialise`)."""
    return specialise(base_config(source), source.name, kind, num_labels, cls_dropout)


def generates(config: PretrainedConfig) -> bool:
    """Whether the family has a causal-LM head, i.e. can serve generation tasks (its ArchSpec says)."""
    return arch_for_type(config.model_type).causal


def specialise(config: PretrainedConfig, name: str, kind: str, num_labels: int, cls_dropout: float = -1.0) -> PretrainedConfig:
    """A copy of a base config for a task kind: classification, regression or generation.

    `cls_dropout` >= 0 sets the classifier's dropout under each family's own name.
    """
    config = copy.deepcopy(config)
    if cls_dropout >= 0:
        config.classifier_dropout = config.cls_dropout = config.pooler_dropout = cls_dropout
    arch_serving(config.model_type, name, kind)  # unsupported architectures fail here, before any work
    if kind == "generation":
        return config
    config.num_labels = 1 if kind == "regression" else num_labels
    config.problem_type = "regression" if kind == "regression" else "single_label_classification"
    if config.pad_token_id is None:  # decoders (GPT-2, Llama) classify from the last non-pad token
        config.pad_token_id = config.eos_token_id
    return config


def model_class(kind: str) -> type:
    return AutoModelForCausalLM if kind == "generation" else AutoModelForSequenceClassification


def build_model(
    source: ModelSource,
    kind: str,
    num_labels: int = 2,
    *,
    meta: bool = False,
    seed: int | None = 0,
    cls_dropout: float = -1.0,
    config: PretrainedConfig | None = None,
) -> PreTrainedModel:
    """Pretrained weights for hub presets and local folders; random init for tiny presets and `meta`.

    `config`: the task-specialised config when the caller has it already (a resolved run does).
    `seed`: random-init weights (tiny presets) come from a generator seeded with it, without touching the global one.
    """
    config = config if config is not None else task_config(source, kind, num_labels, cls_dropout)
    cls = model_class(kind)
    if meta:
        with torch.device("meta"):
            return cls.from_config(config)
    if source.counting_only:
        raise UsageError(f"{source.name} is for parameter counting only (peftbench params)")
    if source.is_tiny:
        if seed is None:
            return cls.from_config(config)
        with torch.random.fork_rng(devices=[]):  # the weights depend on `seed` alone; the global generator is left as it was
            torch.manual_seed(seed)
            return cls.from_config(config)
    if source.local_dir:
        return from_local_dir(cls.from_pretrained, "weights", source.local_dir, config=config, **weights_format(source.local_dir))
    return load_from_hub(
        cls.from_pretrained,
        f"model weights {source.hub_id}",
        MODEL_OFFLINE_OPTIONS,
        pretrained_model_name_or_path=source.hub_id,
        config=config,
    )


def load_tokenizer(source: ModelSource, model_type: str) -> PreTrainedTokenizerBase:
    if source.is_tiny:
        return tiny_tokenizer(model_type, source.tokenizer)
    if source.local_dir:
        tok = from_local_dir(AutoTokenizer.from_pretrained, "tokenizer", source.local_dir)
    else:
        tok = load_from_hub(
            AutoTokenizer.from_pretrained, f"tokenizer {source.hub_id}", MODEL_OFFLINE_OPTIONS, pretrained_model_name_or_path=source.hub_id
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


MODEL_OFFLINE_OPTIONS = (
    "--model DIR (a local Hugging Face model folder: config.json, weights and tokenizer files) with "
    "--data-dir DIR (the dataset's original release files), "
    "or a tiny preset (--model tiny-roberta, tiny-bert, tiny-deberta, tiny-gpt2 or tiny-llama), which runs on the bundled sample data"
)
