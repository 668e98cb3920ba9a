"""Data formats: one registered reader per dataset release format, so a task is one spec file.

A task spec names its format (`format: glue`); the reader registered under that name in `FORMATS`
does everything format-specific a run needs, and `base.py` never asks which format it has:

- `locate(spec, folder, required)`: the release files each split will be read from, nothing parsed
  yet; a split in `required` (what the run trains and scores on) without files is a `DataError`
  naming what was found;
- `read(spec, paths)`: one split's examples from its located files;
- `describe(folder, files)`: what each split was read from, relative to the folder (for the record);
- `assign_splits(spec, read)`: the examples read, by split; only a release without splits of its
  own (Rotten Tomatoes: one corpus) changes anything here;
- `load_hub(spec)`: every split from the Hugging Face hub, for a format with a hub export.

The bundled synthetic sample of a format is the folder `peftbench/data/samples/<format>/`, read like
a release folder. A new format is one `DataFormat` subclass in its module under
`peftbench/tasks/`, registered with `@register`, its module imported at the end of this file, a
sample folder, and its tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from peftbench.errors import UsageError
from peftbench.registry import Registry
from peftbench.specs import PACKAGE_DIR

if TYPE_CHECKING:
    from peftbench.tasks.base import TaskSpec

SAMPLES_DIR = PACKAGE_DIR / "data" / "samples"
"""The bundled synthetic samples, one folder per format (written by `tools/samples/` in the source checkout)."""


class DataFormat:
    """How the examples of one release format are found and read; registered instances are stateless."""

    name: ClassVar[str] = ""
    scores_by_category: ClassVar[bool] = False  # examples carry a category; scored on seen/unseen ones too (WebNLG)

    def locate(self, spec: TaskSpec, folder: Path, required: Sequence[str]) -> dict[str, list[Path]]:
        """The files each split of `folder` will be read from; a `DataError` when a `required` split has none."""
        raise NotImplementedError

    def read(self, spec: TaskSpec, paths: list[Path]) -> list[Any]:
        """One split's examples from the files `locate` found for it; any defect is a `DataError`."""
        raise NotImplementedError

    def describe(self, folder: Path, files: dict[str, list[Path]]) -> dict[str, str]:
        """What each split is read from: `{'test': 'test/testdata_with_lex.xml', 'train': 'train/ (45 XML files)'}`."""
        return {split: describe_files(folder, paths) for split, paths in files.items()}

    def assign_splits(self, spec: TaskSpec, read: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The task's splits from what was read, by the names `locate` gave: the same, for a release that ships its splits."""
        return read

    def load_hub(self, spec: TaskSpec) -> dict[str, list[Any]]:
        """Every split from the hub; `OfflineError` when it cannot be reached."""
        raise UsageError(f"task {spec.name}: the {self.name} format has no hub copy; give its files with --data-dir DIR")


F = TypeVar("F", bound=type[DataFormat])

FORMATS: Registry[DataFormat] = Registry("data format")


def register(cls: F) -> F:
    """Class decorator: one instance of the reader, under its `name`."""
    FORMATS.add(cls.name, cls())
    return cls


def describe_files(folder: Path, paths: Sequence[Path]) -> str:
    """`test/testdata_with_lex.xml`, or `train/ (45 XML files)`: what a split was read from, relative to the data folder."""
    relative = [p.relative_to(folder).as_posix() if p.is_relative_to(folder) else str(p) for p in paths]
    if len(relative) <= 2:
        return ", ".join(relative)
    top = sorted({r.split("/", 1)[0] for r in relative})
    return f"{', '.join(t + '/' for t in top)} ({len(relative)} {paths[0].suffix.lstrip('.').upper()} files)"
