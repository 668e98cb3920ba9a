"""The tiny presets' tokenizer: a small byte-level BPE shipped in the package (no download).

Byte-level means any text encodes losslessly, so the tiny models read the real datasets too.
`build_tiny_bpe` is how the shipped files were made (from the bundled sample data).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from transformers import GPT2TokenizerFast, PreTrainedTokenizerBase, RobertaTokenizerFast

from peftbench.arch import arch_for_type

TINY_BPE_DIR = Path(__file__).resolve().parent / "assets" / "tiny-bpe"
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"]  # ids 0..5, RoBERTa's order


def build_tiny_bpe(texts: Iterable[str], out_dir: Path = TINY_BPE_DIR, vocab_size: int = 2000) -> None:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS, show_progress=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(out_dir))


@cache
def tiny_tokenizer(model_type: str) -> PreTrainedTokenizerBase:
    """RoBERTa-style special tokens for encoders; for decoders (GPT-2, Llama: `ArchSpec.causal`) GPT-2's single
    `<|endoftext|>` as bos, eos and pad, which the generation format uses as the separator and the stop token."""
    if arch_for_type(model_type).causal:
        eot = "<|endoftext|>"
        return GPT2TokenizerFast.from_pretrained(TINY_BPE_DIR, bos_token=eot, eos_token=eot, unk_token=eot, pad_token=eot)
    return RobertaTokenizerFast.from_pretrained(TINY_BPE_DIR)
