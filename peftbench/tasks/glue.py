"""GLUE data: the original TSV release, the Hugging Face hub copy, and a bundled synthetic sample.

Three sources give the same thing, ``{split: [dict(text_a=..., text_b=..., label=...)]}``, with the
split names and integer labels of the hub's ``nyu-mll/glue`` (MNLI entailment=0 neutral=1
contradiction=2; QNLI/RTE entailment=0 not_entailment=1; MRPC/QQP 1 = paraphrase/duplicate;
STS-B a float score), so a run's numbers do not depend on where its data came from:

- ``load_glue_dir``: GLUE's original files (``--data-dir``), one folder per task (``MRPC/train.tsv``
  ...). They are tab-separated with stray double quotes in the text, so they are read with quoting
  off (``csv.QUOTE_NONE``), never as CSV; CoLA's labelled files have no header row.
- ``load_glue_hub``: ``datasets.load_dataset("nyu-mll/glue", config)``, through ``peftbench.models.hub``:
  a cached copy is used offline, and when the hub cannot be reached it fails fast with an
  ``OfflineError`` naming the offline options.
- the bundled synthetic sample under ``peftbench/data/samples/glue`` (``SAMPLE_ROOT``, what
  ``--data-dir sample`` reads), read like any GLUE folder. It was written (seed 0) by
  ``tools/samples/glue.py`` (in the source checkout, not the package), a small data set in the exact file format of
  each task, made to be learnable by a tiny model in a few hundred steps.

Regenerate the bundled sample with ``python tools/samples/glue.py``. ``GlueReader`` (at the end)
is the registered reader of the format ``glue`` that task specs name.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.errors import DataError, OfflineError, UsageError, one_line
from peftbench.models import hub
from peftbench.tasks.formats import SAMPLES_DIR, DataFormat, register

if TYPE_CHECKING:
    from peftbench.tasks.base import TaskSpec

HUB_ID = "nyu-mll/glue"
SAMPLE_ROOT = SAMPLES_DIR / "glue"
"""The bundled synthetic sample: one GLUE-style folder per task."""

Example = dict  # dict(text_a=str, text_b=str | None, label=int | float)


# --------------------------------------------------------------------------------------------
# The file formats


@dataclass(frozen=True)
class GlueFormat:
    """How one GLUE task is laid out in the original release and named on the hub.

    Columns are found by their header name (so a file with the columns in another order still
    reads), except CoLA's labelled files, which have no header and are read by position.
    """

    task: str
    folder: str  # the task's folder in the GLUE release
    splits: tuple[tuple[str, str], ...]  # (split name, labelled file), in reading order
    test_files: tuple[str, ...]  # unlabelled; written by the sample generator, never loaded
    columns: tuple[str, ...]  # header of the labelled files (CoLA: the positional names)
    test_columns: tuple[str, ...]  # header of the unlabelled test files
    text_a: str
    text_b: str | None
    label: str  # the gold label column
    label_values: tuple[str, ...] = ()  # label strings in the files, in the hub's integer order; () = regression
    label_names: tuple[str, ...] = ()  # the hub's ClassLabel names, same order
    has_header: bool = True
    dev_columns: tuple[str, ...] | None = None  # where dev files differ (MNLI: five annotator labels)
    hub_config: str = ""
    hub_text_a: str = "sentence"
    hub_text_b: str | None = None

    @property
    def is_regression(self) -> bool:
        """STS-B: the label is a similarity score in [0, 5], not a class."""
        return not self.label_values

    @property
    def num_labels(self) -> int:
        """Output size of the task head (1 for regression)."""
        return len(self.label_values) or 1

    def columns_for(self, file_name: str) -> tuple[str, ...]:
        """The columns a file of this task carries (train, dev and test headers can differ)."""
        if file_name in self.test_files:
            return self.test_columns
        if file_name.startswith("dev") and self.dev_columns is not None:
            return self.dev_columns
        return self.columns


_DEV = (("train", "train.tsv"), ("validation", "dev.tsv"))
_NLI = ("entailment", "not_entailment")
_MNLI_TEXT = (
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
)  # fmt: skip
_STSB_TEXT = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")

GLUE_FORMATS: dict[str, GlueFormat] = {
    "cola": GlueFormat(
        task="cola", folder="CoLA", splits=_DEV, test_files=("test.tsv",),
        columns=("source", "label", "label_mark", "sentence"), test_columns=("index", "sentence"),
        text_a="sentence", text_b=None, label="label",
        label_values=("0", "1"), label_names=("unacceptable", "acceptable"),
        has_header=False, hub_config="cola",
    ),
    "sst2": GlueFormat(
        task="sst2", folder="SST-2", splits=_DEV, test_files=("test.tsv",),
        columns=("sentence", "label"), test_columns=("index", "sentence"),
        text_a="sentence", text_b=None, label="label",
        label_values=("0", "1"), label_names=("negative", "positive"), hub_config="sst2",
    ),
    "mrpc": GlueFormat(
        task="mrpc", folder="MRPC", splits=_DEV, test_files=("test.tsv",),
        columns=("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
        test_columns=("index", "#1 ID", "#2 ID", "#1 String", "#2 String"),
        text_a="#1 String", text_b="#2 String", label="Quality",
        label_values=("0", "1"), label_names=("not_equivalent", "equivalent"),
        hub_config="mrpc", hub_text_a="sentence1", hub_text_b="sentence2",
    ),
    "qqp": GlueFormat(
        task="qqp", folder="QQP", splits=_DEV, test_files=("test.tsv",),
        columns=("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
        test_columns=("id", "question1", "question2"),
        text_a="question1", text_b="question2", label="is_duplicate",
        label_values=("0", "1"), label_names=("not_duplicate", "duplicate"),
        hub_config="qqp", hub_text_a="question1", hub_text_b="question2",
    ),
    "stsb": GlueFormat(
        task="stsb", folder="STS-B", splits=_DEV, test_files=("test.tsv",),
        columns=(*_STSB_TEXT, "score"), test_columns=_STSB_TEXT,
        text_a="sentence1", text_b="sentence2", label="score",
        hub_config="stsb", hub_text_a="sentence1", hub_text_b="sentence2",
    ),
    "mnli": GlueFormat(
        task="mnli", folder="MNLI",
        splits=(
            ("train", "train.tsv"),
            ("validation_matched", "dev_matched.tsv"),
            ("validation_mismatched", "dev_mismatched.tsv"),
        ),
        test_files=("test_matched.tsv", "test_mismatched.tsv"),
        columns=(*_MNLI_TEXT, "label1", "gold_label"),
        dev_columns=(*_MNLI_TEXT, "label1", "label2", "label3", "label4", "label5", "gold_label"),
        test_columns=_MNLI_TEXT,
        text_a="sentence1", text_b="sentence2", label="gold_label",
        label_values=("entailment", "neutral", "contradiction"),
        label_names=("entailment", "neutral", "contradiction"),
        hub_config="mnli", hub_text_a="premise", hub_text_b="hypothesis",
    ),
    "qnli": GlueFormat(
        task="qnli", folder="QNLI", splits=_DEV, test_files=("test.tsv",),
        columns=("index", "question", "sentence", "label"), test_columns=("index", "question", "sentence"),
        text_a="question", text_b="sentence", label="label", label_values=_NLI, label_names=_NLI,
        hub_config="qnli", hub_text_a="question", hub_text_b="sentence",
    ),
    "rte": GlueFormat(
        task="rte", folder="RTE", splits=_DEV, test_files=("test.tsv",),
        columns=("index", "sentence1", "sentence2", "label"), test_columns=("index", "sentence1", "sentence2"),
        text_a="sentence1", text_b="sentence2", label="label", label_values=_NLI, label_names=_NLI,
        hub_config="rte", hub_text_a="sentence1", hub_text_b="sentence2",
    ),
}  # fmt: skip


def get_format(task: str) -> GlueFormat:
    """The format of a GLUE task, or a UsageError listing the known ones."""
    try:
        return GLUE_FORMATS[task]
    except KeyError:
        raise UsageError(f"unknown GLUE task {task!r}; known: {', '.join(GLUE_FORMATS)}") from None


# --------------------------------------------------------------------------------------------
# Reading the original TSV files


def read_glue_tsv(path: Path, task: str) -> list[Example]:
    """Read one labelled GLUE file (train or dev) into examples; any defect is a DataError.

    Strict on purpose: a wrong column count means a tab inside the text or a truncated row, and
    reading on would silently shift text into labels.
    """
    fmt = get_format(task)
    path = Path(path)
    rows = _tsv_rows(path, _read_text(path))
    if fmt.has_header:
        header_line, header = next(rows)
        columns = tuple(header)
    else:
        header_line, columns = 0, fmt.columns
    index = _column_index(path, fmt, columns, header_line)
    examples = [_example(fields, columns, index, fmt, path, line) for line, fields in rows]
    if not examples:
        raise DataError(path, "no examples after the header", line=header_line + 1)
    return examples


def _read_text(path: Path) -> str:
    """The file as text; undecodable bytes are reported with their line, a BOM is dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as err:
        raise DataError(path, f"cannot read: {err.strerror or err}") from None
    if data.startswith(codecs.BOM_UTF8):  # MRPC's files come from a Windows release
        data = data[len(codecs.BOM_UTF8) :]
    if not data.strip():
        raise DataError(path, "file is empty", line=1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(path, f"not valid UTF-8 (byte 0x{data[err.start]:02x})", line=line) from None


def _tsv_rows(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each non-blank line; quotes are ordinary characters."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        for fields in reader:
            if fields:
                yield reader.line_num, fields
    except csv.Error as err:
        raise DataError(path, f"unreadable row: {err}", line=reader.line_num) from None


def _column_index(path: Path, fmt: GlueFormat, columns: tuple[str, ...], line: int) -> dict[str, int]:
    """Positions of the text and label columns, or a DataError saying what the header should be."""
    wanted = [c for c in (fmt.text_a, fmt.text_b, fmt.label) if c is not None]
    missing = [c for c in wanted if c not in columns]
    if missing:
        found = ", ".join(repr(c) for c in columns[:12])
        raise DataError(
            path,
            f"not a GLUE {fmt.folder} file: the header lacks {', '.join(repr(c) for c in missing)} "
            f"(expected tab-separated columns {', '.join(fmt.columns)}; found {found})",
            line=line,
        )
    return {c: columns.index(c) for c in wanted}


def _example(fields: list[str], columns: tuple[str, ...], index: dict[str, int], fmt: GlueFormat, path: Path, line: int) -> Example:
    """One row as an example dict; checks the field count and the label."""
    if len(fields) != len(columns):
        hint = "" if fmt.has_header else f" (CoLA's {fmt.folder} files have no header row)"
        raise DataError(
            path,
            f"expected {len(columns)} tab-separated fields ({', '.join(columns)}), found {len(fields)}{hint}",
            line=line,
        )
    return {
        "text_a": fields[index[fmt.text_a]],
        "text_b": fields[index[fmt.text_b]] if fmt.text_b is not None else None,
        "label": _parse_label(fields[index[fmt.label]], fmt, path, line),
    }


def _parse_label(raw: str, fmt: GlueFormat, path: Path, line: int) -> int | float:
    """The hub's integer class for a label string, or STS-B's float score."""
    value = raw.strip()
    if fmt.is_regression:
        try:
            score = float(value)
        except ValueError:
            raise DataError(path, f"score {raw!r} in column {fmt.label!r} is not a number", line=line) from None
        if not 0.0 <= score <= 5.0:  # also rejects nan
            raise DataError(path, f"score {raw!r} is outside STS-B's range 0 to 5", line=line)
        return score
    if value not in fmt.label_values:
        expected = ", ".join(repr(v) for v in fmt.label_values)
        raise DataError(path, f"unknown label {raw!r} in column {fmt.label!r}; expected one of {expected}", line=line)
    return fmt.label_values.index(value)


def load_glue_dir(task: str, data_dir: Path) -> dict[str, list[Example]]:
    """Train and dev splits of a task from GLUE's original files (unlabelled test files are skipped).

    ``data_dir`` is GLUE's root (holding ``MRPC/``) or the task folder itself, so both
    ``--data-dir glue_data`` and ``--data-dir glue_data/MRPC`` work.
    """
    _, files = glue_files(task, Path(data_dir))
    return {split: read_glue_tsv(path, task) for split, path in files.items()}


def glue_files(task: str, data_dir: Path) -> tuple[Path, dict[str, Path]]:
    """The task's folder and its labelled file per split, every one checked present before any is read.

    A run trains on train and scores the dev files, so each must be there: a missing one is a
    `DataError` at once, not after MNLI's 393k training rows have been parsed.
    """
    fmt = get_format(task)
    folder = _task_folder(fmt, Path(data_dir))
    files = {split: folder / name for split, name in fmt.splits}
    missing = [name for _, name in fmt.splits if not (folder / name).is_file()]
    if missing:
        present = sorted(p.name for p in folder.glob("*.tsv")) or ["no .tsv files"]
        raise DataError(folder, f"missing {', '.join(missing)}, which a {task} run needs (found: {', '.join(present)})")
    return folder, files


def _task_folder(fmt: GlueFormat, data_dir: Path) -> Path:
    """The folder holding the task's files: a subfolder named like the task, else data_dir itself."""
    expected = f"GLUE's root folder (holding {fmt.folder}/) or the {fmt.folder} folder itself"
    if not data_dir.exists():
        raise DataError(data_dir, f"data directory does not exist; expected {expected}")
    if not data_dir.is_dir():
        raise DataError(data_dir, f"not a directory; expected {expected}")
    exact = data_dir / fmt.folder
    if exact.is_dir():
        return exact
    aliases = {_fold(fmt.folder), _fold(fmt.task)}
    for entry in sorted(data_dir.iterdir()):  # sst2/, sts-b/, ... as people rename them
        if entry.is_dir() and _fold(entry.name) in aliases:
            return entry
    if any((data_dir / name).exists() for _, name in fmt.splits):
        return data_dir
    files = ", ".join(name for _, name in fmt.splits)
    raise DataError(data_dir, f"holds neither a {fmt.folder}/ folder nor {fmt.folder}'s files ({files})")


def _fold(name: str) -> str:
    """Folder name compared loosely: 'SST-2', 'sst2' and 'sst_2' are the same task."""
    return name.lower().replace("-", "").replace("_", "")


# --------------------------------------------------------------------------------------------
# The hub


def load_glue_hub(task: str, cache_dir: str | Path | None = None) -> dict[str, list[Example]]:
    """Train and dev splits from ``nyu-mll/glue`` (parquet, no loading script), as plain examples.

    A cached copy is used offline. When the hub cannot be reached this fails within seconds
    (instead of the hub client's ~25 s of retries) with an OfflineError naming the offline options.
    """
    fmt = get_format(task)
    try:
        import datasets
    except ImportError:
        raise OfflineError(_offline_message(fmt, "the 'datasets' package is not installed")) from None
    offline = hub.offline_reason()
    try:
        with hub.cache_only(offline is not None):
            loaded = datasets.load_dataset(HUB_ID, fmt.hub_config, cache_dir=None if cache_dir is None else str(cache_dir))
    except hub.network_errors() as err:
        reason = f"{offline} and there is no cached copy" if offline else f"{type(err).__name__}: {err}"
        raise OfflineError(_offline_message(fmt, reason)) from err
    return {split: _hub_examples(loaded[split], fmt, split) for split, _ in fmt.splits}


def _hub_examples(table: Any, fmt: GlueFormat, split: str) -> list[Example]:
    """A hub split's rows mapped to example dicts (labels are already the hub's integers)."""
    names = [c for c in (fmt.hub_text_a, fmt.hub_text_b, "label") if c is not None]
    missing = [c for c in names if c not in table.column_names]
    if missing:
        raise DataError(f"{HUB_ID}/{fmt.hub_config}/{split}", f"missing column(s) {', '.join(missing)}")
    cols = table.select_columns(names).to_dict()
    texts_b = cols[fmt.hub_text_b] if fmt.hub_text_b else [None] * len(cols["label"])
    cast = float if fmt.is_regression else int
    return [{"text_a": a, "text_b": b, "label": cast(y)} for a, b, y in zip(cols[fmt.hub_text_a], texts_b, cols["label"], strict=True)]


def _offline_message(fmt: GlueFormat, reason: str) -> str:
    return (
        f"cannot load GLUE {fmt.task} from the Hugging Face Hub ({HUB_ID}, config {fmt.hub_config!r}): {one_line(reason)}; "
        f"offline options: --data-dir DIR with GLUE's original TSV files (DIR/{fmt.folder}/train.tsv ...) "
        "and --model DIR for a local model folder, or --data-dir sample for the bundled synthetic sample."
    )


# --------------------------------------------------------------------------------------------
# The registered reader


@register
class GlueReader(DataFormat):
    """GLUE's TSV release, one reader for every GLUE task: the task's layout is its `GLUE_FORMATS` entry."""

    name = "glue"

    def locate(self, spec: TaskSpec, folder: Path, required: Sequence[str]) -> dict[str, list[Path]]:
        return {split: [file] for split, file in glue_files(spec.name, folder)[1].items()}  # every labelled split, always

    def read(self, spec: TaskSpec, paths: list[Path]) -> list[Example]:
        return read_glue_tsv(paths[0], spec.name)

    def load_hub(self, spec: TaskSpec) -> dict[str, list[Example]]:
        return load_glue_hub(spec.name)
