"""The tiny presets' tokenizer: a small byte-level BPE shipped in the package (no download).

Byte-level means any text encodes losslessly, so the tiny models read the real datasets too.
The shipped files were trained by `tools/tiny_bpe.py` (source checkout only), special tokens
`<s> <pad> </s> <unk> <mask> <|endoftext|>` at ids 0..5.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from transformers import GPT2TokenizerFast, PreTrainedTokenizerBase, RobertaTokenizerFast

from peftbench.arch import arch_for_type

TINY_BPE_DIR = Path(__file__).resolve().parent / "assets" / "tiny-bpe"


@cache
def tiny_tokenizer(model_type: str) -> PreTrainedTokenizerBase:
    """RoBERTa-style special tokens for encoders; for decoders (GPT-2, Llama: `ArchSpec.causal`) GPT-2's single
    `<|endoftext|>` as bos, eos and pad, which the generation format uses as the separator and the stop token."""
    if arch_for_type(model_type).causal:
        eot = "<|endoftext|>"
        return GPT2TokenizerFast.from_pretrained(TINY_BPE_DIR, bos_token=eot, eos_token=eot, unk_token=eot, pad_token=eot)
    return RobertaTokenizerFast.from_pretrained(TINY_BPE_DIR)
