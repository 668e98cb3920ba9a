"""Train the tiny presets' byte-level BPE (the files under peftbench/assets/tiny-bpe/).

    python tools/tiny_bpe.py OUT_DIR TEXT_FILE...   # one training text per line

The shipped files were made this way (vocab_size 2000, min_frequency 2, the special tokens below in this
order, ids 0..5) from the bundled data-to-text samples of the first commit; the exact texts were not
recorded, so today's samples give a different (smaller) merge list. Any text still encodes losslessly.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"]  # ids 0..5, RoBERTa's order


def build_tiny_bpe(texts: Iterable[str], out_dir: Path, vocab_size: int = 2000) -> None:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS, show_progress=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(out_dir))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    lines = [line for name in sys.argv[2:] for line in Path(name).read_text(encoding="utf-8").splitlines()]
    build_tiny_bpe(lines, Path(sys.argv[1]))
