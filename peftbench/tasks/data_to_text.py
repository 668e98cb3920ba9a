"""Readers for the LoRA paper's data-to-text datasets: E2E, WebNLG and DART.

Each reader takes the dataset's *original release format*, so a user with the files and no
network can run the benchmark (`--data-dir DIR`), and turns every input into one
`D2TExample`: a linearised source plus *all* of its reference texts, because the metrics
(BLEU, METEOR, ...) score a generation against every reference of its input at once.

Linearisation (the convention of the LoRA repository's `format_converting_*.py` scripts,
inherited from prefix-tuning), so that our prompts match the ones the paper's numbers came from:

- E2E: the meaning representation string as released, e.g.
  ``name[The Vaults], eatType[pub], priceRange[more than £30]``.
- WebNLG: ``subject : relation : object | subject : relation : object`` over the
  *modified* triples in file order; subjects and objects lose their DBpedia spelling
  (``Abilene_Regional_Airport`` -> ``Abilene Regional Airport``, ``"Aarhus, Denmark"`` ->
  ``Aarhus, Denmark``, ``"25.0"^^xsd:double`` -> ``25.0``); relations stay as released.
- DART: the same ``s : r : o | ...`` joining, with the relation lower-cased (as the LoRA
  repository does) and the entities as released (DART's values are already plain text).

Whitespace runs inside a source or a reference collapse to one space, since references end up
one per line in the metric scripts' files.

References: WebNLG marks some texts as ``bad`` or ``toFix``; they are dropped (the LoRA
repository keeps ``good`` texts only). DART's XML uses the same ``comment`` attribute for the
annotation source, which is never one of those two values, so one rule serves both. A ``lex``
whose text is empty is dropped, and an input left with no reference is skipped (logged), since
it can neither be trained on nor scored: the real WebNLG release has such entries (train: 5,
dev: 3). An entry with no reference *element* at all, by contrast, means the file is not a
reference-bearing release (an unlabelled test file, say) and raises `DataError`.

Every malformed file raises `peftbench.errors.DataError` naming the file and the line (syntax
errors, bad encoding) or the record (an entry's eid, or its index in a JSON array).

Each dataset is one registered reader (`E2EReader`, `WebNLGReader`, `DartReader`, at the end):
its release file names, its files per split, its hub export and how a hub row becomes an example.
The functions taking a task name (`data_to_text_files`, `read_split`, `load_data_to_text_hub`)
go through the reader registered under that name.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from peftbench.errors import DataError, OfflineError, UsageError, one_line
from peftbench.models import hub
from peftbench.tasks.formats import FORMATS, DataFormat, describe_files, register
from peftbench.tasks.formats import SAMPLES_DIR as SAMPLES_DIR  # re-exported: SAMPLES_DIR/<task>/, written by tools/samples/data_to_text.py

if TYPE_CHECKING:
    from peftbench.tasks.base import TaskSpec

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")

#: Release file and folder names per split.
E2E_FILES = {"train": "trainset.csv", "validation": "devset.csv", "test": "testset_w_refs.csv"}
WEBNLG_DIRS = {"train": "train", "validation": "dev", "test": "test"}
DART_STEMS = {
    "train": "dart-v1.1.1-full-train",
    "validation": "dart-v1.1.1-full-dev",
    "test": "dart-v1.1.1-full-test",
}

#: WebNLG quality flags whose texts are not used as references.
REJECTED_LEX_COMMENTS = frozenset({"bad", "toFix"})

Triple = tuple[str, str, str]


@dataclass(frozen=True)
class D2TExample:
    """One input with every reference text written for it (multi-reference grouping)."""

    source: str  # linearised meaning representation / triples
    references: tuple[str, ...]  # every reference text for this input
    category: str | None = None  # WebNLG category (None elsewhere)


@dataclass(frozen=True)
class XmlEntry:
    """One `<entry>` of a WebNLG-style XML file, before any filtering.

    Kept separate from `D2TExample` so that entry counts can be checked against a release's
    documentation even where some entries have no usable reference.
    """

    eid: str
    category: str | None
    triples: tuple[Triple, ...]
    lexes: tuple[tuple[str | None, str], ...]  # (comment, text) per <lex>, text normalised

    def references(self) -> tuple[str, ...]:
        """Texts usable as references: non-empty and not flagged bad/toFix."""
        return tuple(text for comment, text in self.lexes if text and comment not in REJECTED_LEX_COMMENTS)


# --------------------------------------------------------------------------- linearisation


def normalize_space(text: str) -> str:
    """Collapse whitespace runs (newlines, tabs) to one space and trim the ends."""
    return " ".join(text.split())


_RDF_LITERAL = re.compile(r'^"(?P<value>.*)"(?:@[A-Za-z-]+|\^\^\S+)?$', re.DOTALL)


def webnlg_entity(text: str) -> str:
    """A WebNLG subject/object as words: DBpedia quotes, datatype/language tags and underscores go."""
    text = text.strip()
    match = _RDF_LITERAL.match(text)
    if match:
        text = match.group("value")
    return normalize_space(text.replace("_", " "))


def linearize_triples(triples: Iterable[Triple]) -> str:
    """`s : r : o | s : r : o`, the prefix-tuning / LoRA-repository table linearisation."""
    return " | ".join(f"{s} : {r} : {o}" for s, r, o in triples)


def webnlg_source(triples: Iterable[Triple]) -> str:
    """WebNLG linearisation: cleaned entities, relations as released."""
    return linearize_triples((webnlg_entity(s), normalize_space(r), webnlg_entity(o)) for s, r, o in triples)


def dart_source(triples: Iterable[Triple]) -> str:
    """DART linearisation: entities as released, relations lower-cased (LoRA repository)."""
    return linearize_triples((normalize_space(s), normalize_space(r).lower(), normalize_space(o)) for s, r, o in triples)


# --------------------------------------------------------------------------- file access


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, with an empty file reported as the data error it is."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read the file: {exc.strerror or exc}") from None
    if not data.strip():
        raise DataError(path, "the file is empty")
    return data


def _read_text(path: Path) -> str:
    """UTF-8 text (a BOM is allowed): every release read here is UTF-8."""
    data = _read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(path, f"not valid UTF-8 text (byte {exc.start})", line=line) from None


def _group_references(pairs: Iterable[tuple[str, str]]) -> list[D2TExample]:
    """Group (source, reference) rows by source, keeping the order in which sources first appear."""
    grouped: dict[str, list[str]] = {}
    for source, reference in pairs:
        grouped.setdefault(source, []).append(reference)
    return [D2TExample(source, tuple(refs)) for source, refs in grouped.items()]


def _log_skipped(where: str | Path, skipped: Sequence[str]) -> None:
    if skipped:
        log.info("%s: skipped %d input(s) without a usable reference: %s", where, len(skipped), ", ".join(skipped))


# --------------------------------------------------------------------------- E2E


def read_e2e_csv(path: str | Path) -> list[D2TExample]:
    """E2E CSV (columns `mr`, `ref`; one row per reference), grouped by MR in first-seen order."""
    path = Path(path)
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader)]
        columns = _e2e_columns(path, header)
        pairs = list(_e2e_rows(path, reader, columns, len(header)))
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV: {exc}", line=reader.line_num) from None
    if not pairs:
        raise DataError(path, "no data rows after the header")
    return _group_references(pairs)


def _e2e_columns(path: Path, header: list[str]) -> tuple[int, int]:
    missing = [name for name in ("mr", "ref") if name not in header]
    if missing:
        found = ", ".join(header) or "nothing"
        raise DataError(path, f"missing column(s) {', '.join(missing)} in the header (found: {found})", line=1)
    return header.index("mr"), header.index("ref")


def _e2e_rows(path: Path, reader: Any, columns: tuple[int, int], width: int) -> Iterable[tuple[str, str]]:
    mr_col, ref_col = columns
    for row in reader:
        if not row:
            continue  # blank line
        if len(row) != width:
            raise DataError(path, f"expected {width} fields, found {len(row)}", line=reader.line_num)
        mr, ref = row[mr_col].strip(), normalize_space(row[ref_col])
        if not mr:
            raise DataError(path, "empty meaning representation (mr)", line=reader.line_num)
        if not ref:
            raise DataError(path, "empty reference (ref)", line=reader.line_num)
        yield mr, ref


# --------------------------------------------------------------------------- WebNLG-style XML


def read_xml_entries(path: str | Path) -> list[XmlEntry]:
    """Every `<entry>` of a WebNLG-style XML file (WebNLG enriched or challenge variant, DART XML).

    Triples come from `<modifiedtripleset>` whatever its children are called: the enriched
    WebNLG release puts `<otriple>` there in its test set. A `<lex>` holds its text either in a
    `<text>` child (enriched) or directly (the challenge release, DART).
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(path, f"not valid UTF-8 text (byte {exc.start})", line=line) from None
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        message = str(exc).split(": line ")[0]
        raise DataError(path, f"invalid XML: {message}", line=exc.position[0]) from None
    elements = list(root.iter("entry"))
    if not elements:
        raise DataError(path, f"no <entry> elements (root element <{root.tag}>)")
    return [_xml_entry(path, element, index) for index, element in enumerate(elements, 1)]


def _xml_entry(path: Path, element: ET.Element, index: int) -> XmlEntry:
    eid = element.get("eid") or f"#{index}"
    tripleset = element.find("modifiedtripleset")
    if tripleset is None:
        raise DataError(path, "entry has no <modifiedtripleset>", record=eid)
    triples = tuple(_split_triple(path, eid, child.text or "") for child in tripleset)
    if not triples:
        raise DataError(path, "entry has an empty <modifiedtripleset>", record=eid)
    lex_elements = [lex for lex in element.findall("lex") if lex.get("lang") in (None, "en")]
    if not lex_elements:
        raise DataError(path, "entry has no <lex> reference element", record=eid)
    lexes = tuple((lex.get("comment"), _lex_text(lex)) for lex in lex_elements)
    return XmlEntry(eid, element.get("category"), triples, lexes)


def _lex_text(lex: ET.Element) -> str:
    child = lex.find("text")
    return normalize_space((child.text if child is not None else lex.text) or "")


def _split_triple(path: Path | str, record: str | int, text: str) -> Triple:
    """`subject | relation | object`; a bare `|` split is the fallback for odd spacing."""
    for separator in (" | ", "|"):
        parts = text.split(separator)
        if len(parts) == 3:
            subject, relation, obj = (part.strip() for part in parts)
            if subject and relation and obj:
                return subject, relation, obj
    raise DataError(path, f"not a 'subject | relation | object' triple: {text.strip()!r}", record=record)


def _webnlg_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def read_webnlg_xml(paths: str | Path | Iterable[str | Path]) -> list[D2TExample]:
    """WebNLG XML files (one or many) as examples with their category, in file order."""
    examples: list[D2TExample] = []
    for path in _webnlg_files(paths):
        skipped = []
        for entry in read_xml_entries(path):
            references = entry.references()
            if references:
                examples.append(D2TExample(webnlg_source(entry.triples), references, entry.category))
            else:
                skipped.append(entry.eid)
        _log_skipped(path, skipped)
    return examples


def read_dart_xml(path: str | Path) -> list[D2TExample]:
    """DART's WebNLG-style XML (`category="MISC"` everywhere, so no category is kept)."""
    path = Path(path)
    examples, skipped = [], []
    for entry in read_xml_entries(path):
        references = entry.references()
        if references:
            examples.append(D2TExample(dart_source(entry.triples), references))
        else:
            skipped.append(entry.eid)
    _log_skipped(path, skipped)
    return examples


def seen_categories(train: Iterable[D2TExample]) -> set[str]:
    """WebNLG's seen categories: those present in train (the files define the split)."""
    return {example.category for example in train if example.category}


# --------------------------------------------------------------------------- DART JSON


def read_dart_json(path: str | Path) -> list[D2TExample]:
    """DART JSON: an array of {tripleset: [[s, r, o], ...], annotations: [{source, text}, ...]}."""
    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    except RecursionError:
        raise DataError(path, "invalid JSON: nested too deep for a DART release") from None
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON array of entries, found {type(data).__name__}", line=1)
    if not data:
        raise DataError(path, "the JSON array has no entries")
    examples, skipped = [], []
    for index, item in enumerate(data):
        triples, references = _dart_json_entry(path, index, item)
        if references:
            examples.append(D2TExample(dart_source(triples), references))
        else:
            skipped.append(str(index))
    _log_skipped(path, skipped)
    return examples


def _dart_json_entry(path: Path | str, index: int, item: Any) -> tuple[list[Triple], tuple[str, ...]]:
    if not isinstance(item, dict):
        raise DataError(path, f"entry is a {type(item).__name__}, not an object", record=index)
    tripleset = item.get("tripleset")
    if not isinstance(tripleset, list) or not tripleset:
        raise DataError(path, "entry has no 'tripleset' list of triples", record=index)
    triples = []
    for triple in tripleset:
        if not (isinstance(triple, list) and len(triple) == 3 and all(isinstance(x, str) for x in triple)):
            raise DataError(path, f"not a [subject, relation, object] triple: {triple!r}", record=index)
        triples.append((triple[0], triple[1], triple[2]))
    annotations = item.get("annotations")
    if not isinstance(annotations, list) or not annotations:
        raise DataError(path, "entry has no 'annotations' (references)", record=index)
    texts = []
    for annotation in annotations:
        if not isinstance(annotation, dict) or not isinstance(annotation.get("text"), str):
            raise DataError(path, f"annotation without a 'text' string: {annotation!r}", record=index)
        texts.append(normalize_space(annotation["text"]))
    return triples, tuple(text for text in texts if text)


# --------------------------------------------------------------------------- folders


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise UsageError(f"unknown data-to-text task {task!r}; known: {', '.join(TASKS)}")
    return task


def _reader(task: str) -> DataToTextReader:
    return FORMATS.get(_check_task(task))  # type: ignore[return-value]


def _expected_layout(task: str) -> str:
    return ", ".join(_reader(task).expected(split) for split in SPLITS)


def _natural_key(path: Path) -> tuple[int, str, str]:
    match = re.match(r"(\d+)", path.parent.name)
    return (int(match.group(1)) if match else 0, path.parent.name, path.name)


def _labelled_xml(files: Iterable[Path]) -> list[Path]:
    """Of XML files side by side, the ones that make one split, without duplicates or unlabelled files.

    Releases name them differently: the enriched corpus has one file per category, the 2017
    challenge ships its test set as `testdata_with_lex.xml` with `testdata_unseen_with_lex.xml`
    (the unseen half of the same entries) and `testdata_no_lex.xml` (no references) beside it.
    Files named `*no_lex*` are never read, and an `*unseen*` file is skipped when a file that is
    not one sits beside it.
    """
    labelled = [f for f in sorted(files) if f.is_file() and "no_lex" not in f.stem.lower()]
    full = [f for f in labelled if "unseen" not in f.stem.lower()]
    return full or labelled


def webnlg_split_files(folder: Path) -> list[Path]:
    """A WebNLG split folder's XML files: `Ntriples/*.xml` (in size order), else its XML files (see `_labelled_xml`)."""
    files = sorted(folder.glob("*triples/*.xml"), key=_natural_key) or _labelled_xml(folder.glob("*.xml"))
    if not files:
        raise DataError(folder, "no XML files (expected 1triples/ ... 7triples/ folders of *.xml, or XML files)")
    return files


def _webnlg_split_paths(folder: Path, name: str) -> list[Path]:
    """One split: the folder `name/` if there is one, else single files `name*.xml` (`test.xml`, `testdata_with_lex.xml`)."""
    if (folder / name).is_dir():
        return webnlg_split_files(folder / name)
    return _labelled_xml(folder.glob(f"{name}*.xml"))


def data_to_text_files(task: str, data_dir: str | Path, required: Sequence[str] = ()) -> tuple[Path, dict[str, list[Path]]]:
    """The release folder and, per split found, the files it will be read from; nothing is read yet.

    `data_dir` may be the task's own folder or a parent holding it (`DIR/e2e/...`), so one
    `--data-dir` can serve all three tasks. A split in `required` (what a run trains and scores
    on) that has no file is a `DataError` here, before any file is parsed.
    """
    reader = _reader(task)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(data_dir, f"not a folder; expected the {task} release files ({_expected_layout(task)})")
    folder = data_dir
    if not reader.find(data_dir) and (data_dir / task).is_dir():
        folder = data_dir / task
    files = reader.find(folder)
    if not files:
        raise DataError(folder, f"no {task} release files found; expected {_expected_layout(task)}")
    missing = [split for split in required if split not in files]
    if missing:
        wanted = "; ".join(f"{split}: {reader.expected(split)}" for split in missing)
        found = ", ".join(f"{split} ({describe_files(folder, paths)})" for split, paths in files.items())
        hint = "; --set train_split=validation trains on another split" if "validation" in files and missing == [required[0]] else ""
        raise DataError(folder, f"no {' or '.join(missing)} split, which this run needs (expected {wanted}); found only {found}{hint}")
    return folder, files


def read_split(task: str, paths: Sequence[Path]) -> list[D2TExample]:
    """One split's examples from the files `data_to_text_files` found for it."""
    return _reader(task).read_files(paths)


def load_data_to_text_dir(task: str, data_dir: str | Path, required: Sequence[str] = ()) -> dict[str, list[D2TExample]]:
    """The splits found in a folder of release files ('train', 'validation', 'test', in that order).

    See `data_to_text_files` for the folder and `required`.
    """
    _, files = data_to_text_files(task, data_dir, required)
    return {split: read_split(task, paths) for split, paths in files.items()}


# --------------------------------------------------------------------------- hub

# Hub sources, checked with the `search` tool (huggingface.co pages and datasets issues):
# `datasets` >= 4 runs no loading scripts ("Dataset scripts are no longer supported, but found
# X.py"), and the canonical repositories still hold only a script on `main`:
#   tuetschek/e2e_nlg           main: README.md, e2e_nlg.py (huggingface.co/datasets/e2e_nlg/tree/main)
#   Yale-LILY/dart              main: README.md, dart.py    (huggingface.co/datasets/dart/tree/main)
#   ThiagoCF05/enriched_web_nlg main: README.md, enriched_web_nlg.py
# Each has the hub's automatic Parquet export on the `refs/convert/parquet` branch, plain files
# that `datasets` reads without code (the maintainers' workaround, huggingface/datasets#8012):
#   tuetschek/e2e_nlg           default/{train,validation,test}/0000.parquet (2.72 MB train):
#                               meaning_representation, human_reference; one row per reference
#   Yale-LILY/dart              default/{train,validation,test}/0000.parquet (.gitattributes on
#                               that branch): tripleset, subtree_was_extended, annotations{source,text}
#   ThiagoCF05/enriched_web_nlg en/{train,dev,test}/0000.parquet (de/ too, train and dev only):
#                               6,940 / 872 / 1,862 rows per the dataset viewer, the WebNLG 2017
#                               split of our enriched release copy (the script reads v1.5/en);
#                               category, modified_triple_sets{mtriple_set}, lex{comment,text,...}
# Not used: webnlg-challenge/web_nlg (config webnlg_challenge_2017) is script-only and its viewer
# is disabled ("requires arbitrary Python code execution"), so it has no usable export;
# GEM/web_nlg is WebNLG 2020 (v3), not the paper's 2017 split.
PARQUET_EXPORT = "refs/convert/parquet"


@dataclass(frozen=True)
class HubSource:
    """Where a task's data lives on the hub: repository, revision, and a file pattern per split."""

    repo: str
    revision: str
    data_files: Mapping[str, str]


def _offline_message(task: str, reason: str) -> str:
    source = _reader(task).hub_source
    return (
        f"cannot load the {task} dataset from the Hugging Face hub ({source.repo}): {one_line(reason)}; "
        f"offline options: --data-dir DIR with the original release files ({_expected_layout(task)}) "
        f"and --model DIR for a local model folder, or --data-dir sample for the small bundled synthetic sample "
        f"(a download already in the cache is used when HF_HUB_OFFLINE=1 is set or the hub cannot be reached)"
    )


def load_data_to_text_hub(task: str) -> dict[str, list[D2TExample]]:
    """The task's splits from the hub's Parquet export; `OfflineError` when it cannot be reached."""
    reader = _reader(task)
    source = reader.hub_source
    rows = _download(task, source)
    where = f"hf://datasets/{source.repo}@{source.revision}"
    return {split: reader.hub_examples(f"{where}/{source.data_files[split]}", rows[split]) for split in source.data_files}


def _download(task: str, source: HubSource) -> Mapping[str, Iterable[Mapping[str, Any]]]:
    """`load_dataset` on the export, without minutes of retries when the hub cannot be used.

    With offline mode set, or no answer from the hub, `datasets` is switched to cache-only mode
    for the call (`peftbench.models.hub.cache_only`): an earlier download is served from the cache, and a
    missing one fails at once.
    """
    offline = hub.offline_reason()
    import datasets

    try:
        with hub.cache_only(offline is not None):
            return datasets.load_dataset(source.repo, revision=source.revision, data_files=dict(source.data_files))
    except hub.network_errors() as exc:  # ConnectionError, TimeoutError, missing cache entries
        reason = f"{offline} and there is no cached copy" if offline else f"{type(exc).__name__}: {exc}"
        raise OfflineError(_offline_message(task, reason)) from None


def _columns(value: Any) -> dict[str, list[Any]]:
    """A `datasets` sequence of records as columns, whether it arrives as dict-of-lists or list-of-dicts."""
    if isinstance(value, Mapping):
        return {key: list(column) for key, column in value.items()}
    records = list(value or [])
    return {key: [record[key] for record in records] for key in (records[0] if records else {})}


def _convert_hub_rows(where: str, rows: Iterable[Mapping[str, Any]], convert: Callable[..., D2TExample]) -> list[D2TExample]:
    """Hub rows as examples, through the same linearisation and filtering as the file readers."""
    converted = []
    for index, row in enumerate(rows):
        try:
            converted.append(convert(where, index, row))
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
            raise DataError(where, f"unexpected hub schema ({type(exc).__name__}: {exc})", record=index) from None
    return converted


# --------------------------------------------------------------------------- the registered readers


class DataToTextReader(DataFormat):
    """What E2E, WebNLG and DART share: a folder of release files per split, a hub Parquet export."""

    hub_source: ClassVar[HubSource]

    def find(self, folder: Path) -> dict[str, list[Path]]:
        """The files of each split present in `folder` (no split required)."""
        raise NotImplementedError

    def expected(self, split: str) -> str:
        """The release file(s) one split is read from, as a user would look for them."""
        raise NotImplementedError

    def read_files(self, paths: Sequence[Path]) -> list[D2TExample]:
        raise NotImplementedError

    def hub_row(self, where: str, index: int, row: Mapping[str, Any]) -> D2TExample:
        raise NotImplementedError

    def hub_examples(self, where: str, rows: Iterable[Mapping[str, Any]]) -> list[D2TExample]:
        """One split's hub rows as examples; an input left without a reference is dropped, as from the files."""
        return [example for example in _convert_hub_rows(where, rows, self.hub_row) if example.references]

    def locate(self, spec: TaskSpec, folder: Path, required: Sequence[str]) -> dict[str, list[Path]]:
        return data_to_text_files(self.name, folder, required)[1]

    def read(self, spec: TaskSpec, paths: list[Path]) -> list[D2TExample]:
        return self.read_files(paths)

    def load_hub(self, spec: TaskSpec) -> dict[str, list[D2TExample]]:
        return load_data_to_text_hub(self.name)


@register
class E2EReader(DataToTextReader):
    """E2E's CSV files, one per split (`E2E_FILES`)."""

    name = "e2e"
    hub_source = HubSource("tuetschek/e2e_nlg", PARQUET_EXPORT, {s: f"default/{s}/*.parquet" for s in SPLITS})

    def find(self, folder: Path) -> dict[str, list[Path]]:
        return {split: [folder / name] for split, name in E2E_FILES.items() if (folder / name).is_file()}

    def expected(self, split: str) -> str:
        return E2E_FILES[split]

    def read_files(self, paths: Sequence[Path]) -> list[D2TExample]:
        return read_e2e_csv(paths[0])

    def hub_row(self, where: str, index: int, row: Mapping[str, Any]) -> D2TExample:
        reference = normalize_space(row["human_reference"])
        return D2TExample(row["meaning_representation"].strip(), (reference,) if reference else ())

    def hub_examples(self, where: str, rows: Iterable[Mapping[str, Any]]) -> list[D2TExample]:
        converted = _convert_hub_rows(where, rows, self.hub_row)  # one row per reference, as in the CSV files
        return _group_references((e.source, ref) for e in converted for ref in e.references)


@register
class WebNLGReader(DataToTextReader):
    """WebNLG's XML: a folder per split (`WEBNLG_DIRS`) of `Ntriples/*.xml` or XML files, or single files; scored by category too."""

    name = "webnlg"
    scores_by_category = True
    hub_source = HubSource(
        "ThiagoCF05/enriched_web_nlg",
        PARQUET_EXPORT,
        {"train": "en/train/*.parquet", "validation": "en/dev/*.parquet", "test": "en/test/*.parquet"},
    )

    def find(self, folder: Path) -> dict[str, list[Path]]:
        found = {split: _webnlg_split_paths(folder, name) for split, name in WEBNLG_DIRS.items()}
        return {split: paths for split, paths in found.items() if paths}

    def expected(self, split: str) -> str:
        name = WEBNLG_DIRS[split]
        return f"{name}/ (XML files, or Ntriples/*.xml) or {name}*.xml"

    def read_files(self, paths: Sequence[Path]) -> list[D2TExample]:
        return read_webnlg_xml(paths)

    def hub_row(self, where: str, index: int, row: Mapping[str, Any]) -> D2TExample:
        triple_sets = _columns(row["modified_triple_sets"]).get("mtriple_set")
        triple_sets = triple_sets or _columns(row["original_triple_sets"]).get("otriple_set", [])
        triples = [_split_triple(where, index, text) for text in triple_sets[0]]
        lex = _columns(row["lex"])
        lexes = tuple(zip(lex.get("comment", [None] * len(lex["text"])), map(normalize_space, lex["text"]), strict=True))
        entry = XmlEntry(str(row.get("eid", index)), row.get("category"), tuple(triples), lexes)
        return D2TExample(webnlg_source(entry.triples), entry.references(), entry.category)


@register
class DartReader(DataToTextReader):
    """DART's JSON file per split (`DART_STEMS`), else its XML."""

    name = "dart"
    hub_source = HubSource("Yale-LILY/dart", PARQUET_EXPORT, {s: f"default/{s}/*.parquet" for s in SPLITS})

    def find(self, folder: Path) -> dict[str, list[Path]]:
        """Each split's JSON file where present (it is the primary format), else its XML."""
        found = {}
        for split, stem in DART_STEMS.items():
            for ext in (".json", ".xml"):
                if (folder / f"{stem}{ext}").is_file():
                    found[split] = [folder / f"{stem}{ext}"]
                    break
        return found

    def expected(self, split: str) -> str:
        return f"{DART_STEMS[split]}.json (or .xml)"

    def read_files(self, paths: Sequence[Path]) -> list[D2TExample]:
        return read_dart_json(paths[0]) if paths[0].suffix == ".json" else read_dart_xml(paths[0])

    def hub_row(self, where: str, index: int, row: Mapping[str, Any]) -> D2TExample:
        annotations = _columns(row["annotations"])
        item = {"tripleset": [list(t) for t in row["tripleset"]], "annotations": [{"text": t} for t in annotations["text"]]}
        triples, references = _dart_json_entry(where, index, item)
        return D2TExample(dart_source(triples), references)


_READERS = (E2EReader, WebNLGReader, DartReader)
TASKS = tuple(reader.name for reader in _READERS)
HUB_SOURCES = {reader.name: reader.hub_source for reader in _READERS}
