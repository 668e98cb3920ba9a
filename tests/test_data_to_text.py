"""Data-to-text readers: real release files, bundled samples, the sample generator, the hub path.

The real files live in `../shared/data` (see its README for the counts checked here); tests that
need them skip where they are absent, since users never have that folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sample_generators import load

from peftbench.errors import DataError, OfflineError, UsageError
from peftbench.tasks import data_to_text as d2t
from peftbench.tasks.data_to_text import (
    D2TExample,
    dart_source,
    load_data_to_text_dir,
    load_data_to_text_hub,
    read_dart_json,
    read_dart_xml,
    read_e2e_csv,
    read_webnlg_xml,
    read_xml_entries,
    seen_categories,
    webnlg_entity,
    webnlg_source,
    webnlg_split_files,
)

_generator = load("data_to_text")  # tools/samples/data_to_text.py
SPLIT_SIZES, write_samples = _generator.SPLIT_SIZES, _generator.write_samples

REAL = Path(__file__).resolve().parents[2] / "shared" / "data"


def real(*parts: str) -> Path:
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real release files not present: {path} (see shared/data/README.md)")
    return path


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# --------------------------------------------------------------------------- linearisation


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("Abilene_Regional_Airport", "Abilene Regional Airport"),
        ('"Aarhus, Denmark"', "Aarhus, Denmark"),
        ('"Aarhus, Denmark"@en', "Aarhus, Denmark"),
        ('"25.0"^^xsd:double', "25.0"),
        ("elevation_  of_\tthings", "elevation of things"),
        ('"Squeezed" or "smashed" fried chicken', '"Squeezed" or "smashed" fried chicken'),
    ],
)
def test_webnlg_entity_spells_dbpedia_names_as_words(raw: str, words: str) -> None:
    assert webnlg_entity(raw) == words


def test_webnlg_source_joins_triples_and_keeps_relations() -> None:
    triples = [
        ("Aarhus_Airport", "cityServed", '"Aarhus, Denmark"'),
        ("Aarhus_Airport", "elevationAboveTheSeaLevel_(in_metres)", "25.0"),
    ]
    assert webnlg_source(triples) == (
        "Aarhus Airport : cityServed : Aarhus, Denmark | Aarhus Airport : elevationAboveTheSeaLevel_(in_metres) : 25.0"
    )


def test_dart_source_lowercases_relations_only() -> None:
    triples = [("[TABLECONTEXT]", "[TITLE]", "Jeff Daniels"), ("Mars_Hill College", "JOINED", '"1973"')]
    assert dart_source(triples) == '[TABLECONTEXT] : [title] : Jeff Daniels | Mars_Hill College : joined : "1973"'


def test_e2e_keeps_the_mr_string_and_groups_references(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "devset.csv",
        'mr,ref\r\n"name[The Vaults], eatType[pub], priceRange[more than £30]",The Vaults is an  expensive pub.\r\n'
        '"name[Aromi], area[riverside]",Aromi is by the river.\r\n'
        '"name[The Vaults], eatType[pub], priceRange[more than £30]","The Vaults, a pub,\nis pricey."\r\n',
    )
    assert read_e2e_csv(path) == [
        D2TExample(
            "name[The Vaults], eatType[pub], priceRange[more than £30]",
            ("The Vaults is an expensive pub.", "The Vaults, a pub, is pricey."),
        ),
        D2TExample("name[Aromi], area[riverside]", ("Aromi is by the river.",)),
    ]


CHALLENGE_XML = """<?xml version="1.0" ?>
<benchmark>
  <entries>
    <entry category="Airport" eid="Id7" size="2">
      <originaltripleset>
        <otriple>Aarhus_Airport | cityServed | "Aarhus, Denmark"@en</otriple>
        <otriple>Aarhus_Airport | elevation | "25.0"^^xsd:double</otriple>
      </originaltripleset>
      <modifiedtripleset>
        <mtriple>Aarhus_Airport | cityServed | "Aarhus, Denmark"</mtriple>
        <mtriple>Aarhus_Airport | elevationAboveTheSeaLevel_(in_metres) | 25.0</mtriple>
      </modifiedtripleset>
      <lex comment="good" lid="Id1">Aarhus Airport serves Aarhus, Denmark and is 25 metres high.</lex>
      <lex comment="bad" lid="Id2">Aarhus.</lex>
      <lex comment="toFix" lid="Id3">Aarhus Airport is in Aarhus</lex>
      <lex comment="good" lid="Id4">Aarhus Airport, 25 metres above sea level,
        serves the city of Aarhus, Denmark.</lex>
    </entry>
  </entries>
</benchmark>
"""


def test_webnlg_challenge_variant_text_inside_lex(tmp_path: Path) -> None:
    """The official 2017 challenge release: text directly in <lex>; bad/toFix texts dropped."""
    [example] = read_webnlg_xml([write(tmp_path, "Airport.xml", CHALLENGE_XML)])
    assert example == D2TExample(
        "Aarhus Airport : cityServed : Aarhus, Denmark | Aarhus Airport : elevationAboveTheSeaLevel_(in_metres) : 25.0",
        (
            "Aarhus Airport serves Aarhus, Denmark and is 25 metres high.",
            "Aarhus Airport, 25 metres above sea level, serves the city of Aarhus, Denmark.",
        ),
        "Airport",
    )


def test_webnlg_entry_with_only_empty_or_flagged_texts_is_skipped(tmp_path: Path) -> None:
    xml = CHALLENGE_XML.replace('comment="good"', 'comment="toFix"')
    path = write(tmp_path, "Airport.xml", xml)
    assert len(read_xml_entries(path)) == 1
    assert read_webnlg_xml(path) == []


# --------------------------------------------------------------------------- real release files


@pytest.fixture(scope="module")
def real_webnlg_entries() -> dict[str, list]:
    folder = real("webnlg")
    return {
        split: [entry for path in webnlg_split_files(folder / name) for entry in read_xml_entries(path)]
        for split, name in d2t.WEBNLG_DIRS.items()
    }


@pytest.fixture(scope="module")
def real_webnlg() -> dict[str, list[D2TExample]]:
    return load_data_to_text_dir("webnlg", real("webnlg"))


def test_real_e2e_counts() -> None:
    splits = load_data_to_text_dir("e2e", real("e2e"))
    assert list(splits) == ["validation", "test"]  # the copy has no trainset.csv
    counts = {split: (len(ex), sum(len(e.references) for e in ex)) for split, ex in splits.items()}
    assert counts == {"validation": (547, 4672), "test": (630, 4693)}
    assert splits["validation"][0].source == "name[Alimentum], area[city centre], familyFriendly[no]"
    assert all(e.category is None for e in splits["test"])


def test_real_webnlg_entry_counts(real_webnlg_entries: dict[str, list]) -> None:
    assert {split: len(entries) for split, entries in real_webnlg_entries.items()} == {
        "train": 6940,
        "validation": 872,
        "test": 1862,
    }


def test_real_webnlg_examples_skip_entries_without_a_usable_reference(
    real_webnlg_entries: dict[str, list], real_webnlg: dict[str, list[D2TExample]]
) -> None:
    """Train: 5 entries with toFix/bad texts only; dev: those plus 2 whose <text> are all empty."""
    skipped = {
        split: sorted(f"{e.category}/{e.eid}" for e in entries if not e.references()) for split, entries in real_webnlg_entries.items()
    }
    assert skipped == {
        "train": ["Astronaut/Id90", "Building/Id118", "Building/Id185", "Food/Id32", "University/Id26"],
        "validation": ["Building/Id23", "Food/Id9", "SportsTeam/Id4"],
        "test": [],
    }
    counts = {split: (len(ex), sum(len(e.references) for e in ex)) for split, ex in real_webnlg.items()}
    assert counts == {"train": (6935, 17979), "validation": (869, 2253), "test": (1862, 4922)}
    assert real_webnlg["train"][0] == D2TExample(
        "Aarhus Airport : cityServed : Aarhus, Denmark",
        ("The Aarhus is the airport of Aarhus, Denmark.", "Aarhus Airport serves the city of Aarhus, Denmark."),
        "Airport",
    )


def test_real_webnlg_test_reads_otriple_in_modifiedtripleset(real_webnlg: dict[str, list[D2TExample]]) -> None:
    assert real_webnlg["test"][0].source == "Abilene Regional Airport : cityServed : Abilene, Texas"


def test_real_webnlg_seen_and_unseen_categories(real_webnlg: dict[str, list[D2TExample]]) -> None:
    seen = seen_categories(real_webnlg["train"])
    assert len(seen) == 10
    assert {e.category for e in real_webnlg["validation"]} == seen
    unseen = {e.category for e in real_webnlg["test"]} - seen
    assert unseen == {"Artist", "Athlete", "CelestialBody", "MeanOfTransportation", "Politician"}
    assert sum(e.category in seen for e in real_webnlg["test"]) == 971  # WebNLG 2017: 971 seen, 891 unseen
    assert sum(e.category in unseen for e in real_webnlg["test"]) == 891


def test_real_dart_json_and_xml() -> None:
    splits = load_data_to_text_dir("dart", real("dart"))
    counts = {split: (len(ex), sum(len(e.references) for e in ex)) for split, ex in splits.items()}
    # test XML: 12,552 <lex>, one of them empty
    assert counts == {"validation": (2768, 6980), "test": (5097, 12551)}
    assert splits["validation"][0].source == (
        "Mars Hill College : joined : 1973 | Mars Hill College : location : Mars Hill, North Carolina"
    )
    assert splits["test"][0].source.startswith("Hawaii Five-O : notes : Episode: The Flight of the Jewels | ")


def test_parent_folder_serves_every_task() -> None:
    parent = real()
    assert list(load_data_to_text_dir("e2e", parent)) == ["validation", "test"]


# --------------------------------------------------------------------------- bundled samples


@pytest.mark.parametrize("task", d2t.TASKS)
def test_samples_load_with_the_real_readers(task: str) -> None:
    splits = load_data_to_text_dir(task, d2t.SAMPLES_DIR / task)
    assert {split: len(ex) for split, ex in splits.items()} == SPLIT_SIZES
    for examples in splits.values():
        assert all(1 <= len(e.references) <= 3 for e in examples)
        assert len({e.source for e in examples}) == len(examples)
    sources = [{e.source for e in ex} for ex in splits.values()]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])


def test_sample_webnlg_has_unseen_test_categories_and_drops_flagged_texts() -> None:
    folder = d2t.SAMPLES_DIR / "webnlg"
    splits = load_data_to_text_dir("webnlg", folder)
    seen = seen_categories(splits["train"])
    assert {e.category for e in splits["test"]} - seen == {"Artist", "Politician"}
    entries = [entry for path in webnlg_split_files(folder / "train") for entry in read_xml_entries(path)]
    assert any(comment == "toFix" for entry in entries for comment, _ in entry.lexes)
    assert sum(len(e.references) for e in splits["train"]) == sum(comment == "good" for entry in entries for comment, _ in entry.lexes)


def test_sample_dart_json_and_xml_agree() -> None:
    folder = d2t.SAMPLES_DIR / "dart"
    stem = d2t.DART_STEMS["test"]
    assert read_dart_json(folder / f"{stem}.json") == read_dart_xml(folder / f"{stem}.xml")


def _files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for task in d2t.TASKS
        for path in sorted((root / task).rglob("*"))
        if path.is_file()
    }


def test_generator_reproduces_the_bundled_samples(tmp_path: Path) -> None:
    written = write_samples(tmp_path, seed=0)
    generated = _files(tmp_path)
    assert sorted(generated) == sorted(p.relative_to(tmp_path).as_posix() for p in written)
    bundled = _files(d2t.SAMPLES_DIR)
    assert sorted(bundled) == sorted(generated), "stale or missing bundled files: regenerate the samples"
    changed = [name for name in generated if generated[name] != bundled[name]]
    assert not changed, f"regenerate with `python tools/samples/data_to_text.py`: {changed}"
    assert sum(map(len, bundled.values())) < 200_000


def test_generator_is_deterministic_per_seed(tmp_path: Path) -> None:
    write_samples(tmp_path / "a", seed=1)
    write_samples(tmp_path / "b", seed=1)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(d2t.SAMPLES_DIR)


# --------------------------------------------------------------------------- malformed files

TRUNCATED_XML = CHALLENGE_XML[: CHALLENGE_XML.index('<lex comment="bad"')]
NO_LEX_XML = CHALLENGE_XML.split("<lex")[0] + "</entry></entries></benchmark>"

MALFORMED = [
    # (reader, file name, content, line, record)
    (read_e2e_csv, "devset.csv", b"mr,text\nname[A],A.\n", 1, None),
    (read_e2e_csv, "devset.csv", b"", None, None),
    (read_e2e_csv, "devset.csv", b" \r\n\n", None, None),
    (read_e2e_csv, "devset.csv", b"mr,ref\nname[A],A.\nname[B],caf\xe9 B.\n", 3, None),
    (read_e2e_csv, "devset.csv", b'mr,ref\nname[A],A.\n"name[B],B.\n', 3, None),
    (read_e2e_csv, "devset.csv", b'mr,ref\n"name[A]"x,A.\n', 2, None),
    (read_e2e_csv, "devset.csv", b"mr,ref\nname[A],A.\nname[B],\n", 3, None),
    (read_e2e_csv, "devset.csv", b"mr,ref\nname[A],A.,extra\n", 2, None),
    (read_e2e_csv, "devset.csv", b"mr,ref\n", None, None),
    (read_webnlg_xml, "Airport.xml", TRUNCATED_XML.encode(), 14, None),
    (read_webnlg_xml, "Airport.xml", b"", None, None),
    (read_webnlg_xml, "Airport.xml", CHALLENGE_XML.encode().replace(b"Denmark", b"D\xe4nemark", 1), 6, None),
    (read_webnlg_xml, "Airport.xml", NO_LEX_XML.encode(), None, "Id7"),
    (read_webnlg_xml, "Airport.xml", CHALLENGE_XML.replace("modifiedtripleset", "triples").encode(), None, "Id7"),
    (read_webnlg_xml, "Airport.xml", CHALLENGE_XML.replace("| 25.0<", "25.0<").encode(), None, "Id7"),
    (read_webnlg_xml, "Airport.xml", b"<benchmark><entries/></benchmark>", None, None),
    (read_dart_xml, "dart-v1.1.1-full-test.xml", TRUNCATED_XML.encode(), 14, None),
    (read_dart_json, "dart.json", b'[\n {"tripleset": [["a", "b", "c"]],\n  "annotations": [', 3, None),
    (read_dart_json, "dart.json", b"", None, None),
    (read_dart_json, "dart.json", b'[\n{"tripleset": [["a", "b", "\xff"]]}]', 2, None),
    (read_dart_json, "dart.json", b'{"tripleset": []}', 1, None),
    (read_dart_json, "dart.json", b"[]", None, None),
    (read_dart_json, "dart.json", b'[{"tripleset": [["a", "b", "c"]], "annotations": []}]', None, 0),
    (read_dart_json, "dart.json", b'[{"tripleset": [["a", "b", "c"]]}]', None, 0),
    (read_dart_json, "dart.json", b'[{"tripleset": [["a", "b"]], "annotations": [{"text": "x"}]}]', None, 0),
    (read_dart_json, "dart.json", b'[{"tripleset": [["a", "b", "c"]], "annotations": [{"source": "x"}]}]', None, 0),
]


@pytest.mark.parametrize(
    ("reader", "name", "content", "line", "record"),
    MALFORMED,
    ids=[f"{i:02d}-{case[0].__name__}" for i, case in enumerate(MALFORMED)],
)
def test_malformed_files_raise_data_error(
    tmp_path: Path, reader, name: str, content: bytes, line: int | None, record: str | int | None
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(DataError) as caught:
        reader(path)
    error = caught.value
    assert str(path) in str(error)
    assert error.line == line
    assert error.record == record
    assert error.exit_code == 2


def test_missing_file_and_folder_raise_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_e2e_csv(tmp_path / "trainset.csv")
    with pytest.raises(DataError, match="not a folder"):
        load_data_to_text_dir("e2e", tmp_path / "nowhere")
    with pytest.raises(DataError, match="no webnlg release files"):
        load_data_to_text_dir("webnlg", tmp_path)
    (tmp_path / "dev").mkdir()
    with pytest.raises(DataError, match="no XML files"):
        load_data_to_text_dir("webnlg", tmp_path)


def test_unknown_task_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown data-to-text task 'xsum'"):
        load_data_to_text_dir("xsum", tmp_path)


# --------------------------------------------------------------------------- hub


def test_hub_offline_raises_offline_error_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("datasets")  # imported with the session's own settings, as in a real run
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OfflineError) as caught:
        load_data_to_text_hub("webnlg")
    assert time.perf_counter() - start < 10
    message = str(caught.value)
    assert "ThiagoCF05/enriched_web_nlg" in message
    assert "--data-dir DIR" in message and "--data-dir sample" in message
    assert caught.value.exit_code == 2


def _fake_hub(monkeypatch: pytest.MonkeyPatch, load) -> None:
    datasets = pytest.importorskip("datasets")
    import peftbench.models.hub

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(peftbench.models.hub, "hub_reachable", lambda *args, **kwargs: True)
    monkeypatch.setattr(datasets, "load_dataset", load)


def test_hub_connection_failure_is_an_offline_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise ConnectionError("connection refused")

    _fake_hub(monkeypatch, refuse)
    with pytest.raises(OfflineError, match="connection refused"):
        load_data_to_text_hub("e2e")


HUB_ROWS = {
    "e2e": [
        {"meaning_representation": "name[A], food[Thai]", "human_reference": "A serves Thai food."},
        {"meaning_representation": "name[B]", "human_reference": "B is a place."},
        {"meaning_representation": "name[A], food[Thai]", "human_reference": "Thai food at A."},
    ],
    "webnlg": [  # datasets' Sequence-of-dict columns arrive as dict-of-lists ...
        {
            "category": "Airport",
            "eid": "Id1",
            "modified_triple_sets": {"mtriple_set": [['Aarhus_Airport | cityServed | "Aarhus, Denmark"']]},
            "original_triple_sets": {"otriple_set": [['Aarhus_Airport | cityServed | "Aarhus, Denmark"@en']]},
            "lex": {"comment": ["good", "bad"], "lid": ["Id1", "Id2"], "text": ["It serves Aarhus.", "Aarhus."]},
        },
        {  # ... or, from another reader, as list-of-dicts
            "category": "Food",
            "eid": "Id2",
            "modified_triple_sets": [{"mtriple_set": ["Bakso | country | Indonesia"]}],
            "original_triple_sets": [],
            "lex": [{"comment": "toFix", "text": "Bakso."}],
        },
    ],
    "dart": [
        {
            "tripleset": [["Newberry College", "NICKNAME", "Wolves"]],
            "subtree_was_extended": False,
            "annotations": {"source": ["WikiSQL_decl_sents"], "text": ["Newberry College's nickname is the wolves."]},
        }
    ],
}
HUB_EXPECTED = {
    "e2e": [
        D2TExample("name[A], food[Thai]", ("A serves Thai food.", "Thai food at A.")),
        D2TExample("name[B]", ("B is a place.",)),
    ],
    "webnlg": [D2TExample("Aarhus Airport : cityServed : Aarhus, Denmark", ("It serves Aarhus.",), "Airport")],
    "dart": [D2TExample("Newberry College : nickname : Wolves", ("Newberry College's nickname is the wolves.",))],
}


@pytest.mark.parametrize("task", d2t.TASKS)
def test_hub_rows_become_examples_like_the_files(monkeypatch: pytest.MonkeyPatch, task: str) -> None:
    calls = []

    def fake_load(repo, **kwargs):
        calls.append((repo, kwargs))
        return {split: HUB_ROWS[task] for split in kwargs["data_files"]}

    _fake_hub(monkeypatch, fake_load)
    splits = load_data_to_text_hub(task)
    source = d2t.HUB_SOURCES[task]
    assert calls == [(source.repo, {"revision": "refs/convert/parquet", "data_files": dict(source.data_files)})]
    assert list(splits) == ["train", "validation", "test"]
    assert splits["test"] == HUB_EXPECTED[task]


def test_hub_schema_change_is_a_data_error_naming_the_export(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_hub(monkeypatch, lambda repo, **kwargs: {split: [{"mr": "name[A]", "ref": "A."}] for split in kwargs["data_files"]})
    with pytest.raises(DataError, match=r"hf://datasets/tuetschek/e2e_nlg@refs/convert/parquet/default/train/\*\.parquet, record 0"):
        load_data_to_text_hub("e2e")


# --------------------------------------------------------------------------- release layouts of WebNLG


def _one_file(files: list[Path], keep=lambda entry: True, drop_lex: bool = False) -> str:
    """The entries of many WebNLG XML files as one file, the way the 2017 challenge ships its test set."""
    import xml.etree.ElementTree as ET

    root = ET.Element("benchmark")
    entries = ET.SubElement(root, "entries")
    for path in files:
        for entry in ET.parse(path).getroot().iter("entry"):
            if keep(entry):
                if drop_lex:
                    for lex in entry.findall("lex"):
                        entry.remove(lex)
                entries.append(entry)
    return ET.tostring(root, encoding="unicode")


@pytest.fixture
def challenge_layout(tmp_path: Path) -> tuple[Path, list[D2TExample]]:
    """The sample with its test folder replaced by the 2017 challenge's three test files."""
    import shutil

    sample = d2t.SAMPLES_DIR / "webnlg"
    folder = tmp_path / "webnlg"
    shutil.copytree(sample, folder)
    files = webnlg_split_files(sample / "test")
    shutil.rmtree(folder / "test")
    unseen = {"Artist", "Politician"}
    write(folder, "test/testdata_with_lex.xml", _one_file(files))
    write(folder, "test/testdata_unseen_with_lex.xml", _one_file(files, keep=lambda e: e.get("category") in unseen))
    write(folder, "test/testdata_no_lex.xml", _one_file(files, drop_lex=True))
    return folder, read_webnlg_xml(files)


def test_webnlg_test_split_as_one_file_beside_its_unseen_half_and_unlabelled_copy(challenge_layout) -> None:
    folder, expected = challenge_layout
    _, files = d2t.data_to_text_files("webnlg", folder, ("train", "test"))
    assert [p.name for p in files["test"]] == ["testdata_with_lex.xml"]  # not the unseen subset, not the one without references
    assert d2t.describe_files(folder, files["test"]) == "test/testdata_with_lex.xml"
    assert d2t.describe_files(folder, files["train"]).startswith("train/ (")
    assert load_data_to_text_dir("webnlg", folder)["test"] == expected


def test_webnlg_unseen_file_alone_is_read(challenge_layout) -> None:
    folder, expected = challenge_layout
    (folder / "test" / "testdata_with_lex.xml").unlink()
    test = load_data_to_text_dir("webnlg", folder)["test"]
    assert test and {e.category for e in test} == {"Artist", "Politician"}
    assert test == [e for e in expected if e.category in {"Artist", "Politician"}]


def test_webnlg_split_as_a_single_file_beside_the_folders(challenge_layout) -> None:
    folder, expected = challenge_layout
    (folder / "test" / "testdata_with_lex.xml").rename(folder / "test.xml")
    import shutil

    shutil.rmtree(folder / "test")
    _, files = d2t.data_to_text_files("webnlg", folder, ("train", "test"))
    assert files["test"] == [folder / "test.xml"]
    assert load_data_to_text_dir("webnlg", folder)["test"] == expected


def test_webnlg_missing_split_names_what_was_found(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(d2t.SAMPLES_DIR / "webnlg", tmp_path / "webnlg")
    shutil.rmtree(tmp_path / "webnlg" / "test")
    with pytest.raises(DataError, match=r"no test split.*test/ \(XML files.*or test\*\.xml.*found only train \(train/"):
        d2t.data_to_text_files("webnlg", tmp_path / "webnlg", ("train", "test"))
    assert set(load_data_to_text_dir("webnlg", tmp_path / "webnlg")) == {"train", "validation"}  # nothing required: what is there


def test_data_source_description_names_the_files_read(challenge_layout) -> None:
    from peftbench.tasks.base import data_source, load_splits, task_specs

    folder, _ = challenge_layout
    spec = task_specs().get("webnlg")
    source = data_source(spec, str(folder), tiny_model=True)
    load_splits(spec, source)
    described = source.describe(spec)
    assert described.startswith(f"local:{folder}") and "test: test/testdata_with_lex.xml" in described
    assert "train: train/ (" in described and "XML files)" in described
