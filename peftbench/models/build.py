"""Building a model and its tokenizer for a task (with or without weights), from a `ModelSource`
(`presets.py`: the presets of `models.yaml` and local model folders).

A preset's shapes come from `models.yaml`; weights come from the hub (or a local folder given as
`--model DIR`). On the meta device no weights exist at all, which is how `peftbench params`
counts a 1.5B model instantly.

Every random weight is drawn under the run's seed and nothing else, so a seed reproduces a run in
any process: a tiny preset's weights from `seed`, and the weights a pretrained checkpoint lacks
(the new task head) from `seed` too (`seed_new_weights`), loaded under it and drawn again
explicitly after loading. The global generator is left as it was: torch seeds it differently in
every process, and a sweep's processes reuse one loaded model for many seeds (`runner.LoadCache`
copies it and calls `seed_new_weights` per run).
"""

from __future__ import annotations

import copy
import hashlib
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

from peftbench.errors import UsageError
from peftbench.models.arch import arch_for_type, arch_serving
from peftbench.models.hub import load_from_hub
from peftbench.models.presets import TRUST_PICKLE, ModelSource
from peftbench.models.tokenizer import tiny_tokenizer

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
    data = dict(source.config)
    config = AutoConfig.for_model(data.pop("model_type"), **data)
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


def model_class(kind: str) -> type[AutoModelForCausalLM] | type[AutoModelForSequenceClassification]:
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
        with seeded(seed):  # the weights depend on `seed` alone
            return cls.from_config(config)
    with seeded(seed):  # whatever loading draws depends on `seed`; the head is drawn again below, explicitly
        if source.local_dir:
            weights = {"config": config, "output_loading_info": True, **weights_format(source.local_dir)}  # pickles only if trusted
            model, info = from_local_dir(cls.from_pretrained, "weights", source.local_dir, **weights)
        else:
            model, info = load_from_hub(
                cls.from_pretrained,
                f"model weights {source.hub_id}",
                MODEL_OFFLINE_OPTIONS,
                pretrained_model_name_or_path=source.hub_id,
                config=config,
                output_loading_info=True,
            )
    setattr(model, NEW_WEIGHTS, new_weight_names(model, info["missing_keys"]))
    if seed is not None:
        seed_new_weights(model, seed)
    return model


# ---------------------------------------------------------------- the weights a checkpoint lacks

NEW_WEIGHTS = "peftbench_new_weights"  # attribute of a loaded model: the names of the weights its checkpoint lacked


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Draws inside come from `seed` (nothing changes for None); the global generator is restored after."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def new_weight_names(model: PreTrainedModel, missing: Any) -> tuple[str, ...]:
    """The parameters `from_pretrained` had to initialise (the task head), without any tied to a loaded one.

    A tied weight (an LM head sharing the embeddings) is never drawn: writing it would overwrite the embeddings.
    """
    loaded = {p.data_ptr() for n, p in model.named_parameters(remove_duplicate=False) if n not in missing}
    params = dict(model.named_parameters(remove_duplicate=False))
    return tuple(sorted(n for n in missing if n in params and params[n].data_ptr() not in loaded))


def stream(seed: int, purpose: str) -> int:
    """A seed of its own for one purpose, derived from the run's seed, so its draws never repeat the run's other draws
    (the method's initialisation starts from `seed` itself)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{purpose}".encode()).digest()[:8], "little")


def seed_new_weights(model: PreTrainedModel, seed: int) -> None:
    """Draw the weights the checkpoint lacked again, from `seed` alone, with the family's own initialisation.

    Why again: `from_pretrained` draws them from whatever state the global generator is in, and a
    model reused across runs (a sweep) would give every seed the same head. Each owning module is
    initialised as a fresh copy (so transformers' "already initialised" marks on loaded tensors
    cannot skip a draw or let one through), and only the new weights are copied back.
    """
    owners: dict[str, list[str]] = {}
    for name in getattr(model, NEW_WEIGHTS, ()):
        path, _, leaf = name.rpartition(".")
        owners.setdefault(path, []).append(leaf)
    with seeded(stream(seed, "new-weights")), torch.no_grad():
        for path in sorted(owners):
            module = model.get_submodule(path)
            fresh = copy.deepcopy(module)
            for tensor in (*fresh.parameters(), *fresh.buffers(), *fresh.modules()):
                tensor.__dict__.pop("_is_hf_initialized", None)
            model._init_weights(fresh)  # the family's own distribution (normal(0, initializer_range) for linear maps)
            for leaf in owners[path]:
                getattr(module, leaf).copy_(getattr(fresh, leaf))


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
