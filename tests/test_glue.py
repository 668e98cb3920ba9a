"""GLUE readers, the bundled synthetic sample, and the hub loader's offline failure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sample_generators import load

from peftbench.errors import DataError, OfflineError, UsageError
from peftbench.models import hub
from peftbench.tasks import glue
from peftbench.tasks.glue import (
    GLUE_FORMATS,
    SAMPLE_ROOT,
    load_glue_dir,
    load_glue_hub,
    read_glue_tsv,
)

TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
PAIR_TASKS = {"mrpc", "qqp", "stsb", "mnli", "qnli", "rte"}
write_glue_sample = load("glue").write_glue_sample  # tools/samples/glue.py


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


# ---------------------------------------------------------------------------------------------
# The bundled sample


def test_formats_cover_the_eight_tasks():
    assert set(GLUE_FORMATS) == set(TASKS)
    assert GLUE_FORMATS["mnli"].label_values == ("entailment", "neutral", "contradiction")
    assert GLUE_FORMATS["rte"].label_values == ("entailment", "not_entailment")
    assert GLUE_FORMATS["stsb"].is_regression and GLUE_FORMATS["stsb"].num_labels == 1


@pytest.mark.parametrize("task", TASKS)
def test_sample_loads_with_hub_split_names_sizes_and_labels(task):
    fmt = GLUE_FORMATS[task]
    splits = load_glue_dir(task, SAMPLE_ROOT)
    assert list(splits) == [name for name, _ in fmt.splits]
    for split, examples in splits.items():
        assert len(examples) == (200 if split == "train" else 60)
        for ex in examples:
            assert set(ex) == {"text_a", "text_b", "label"}
            assert isinstance(ex["text_a"], str) and ex["text_a"]
            assert (ex["text_b"] is not None) == (task in PAIR_TASKS)
            assert len(ex["text_a"].split()) < 25 and len((ex["text_b"] or "").split()) < 25
        labels = [ex["label"] for ex in examples]
        if fmt.is_regression:
            assert all(isinstance(y, float) and 0.0 <= y <= 5.0 for y in labels)
            assert min(labels) == 0.0 and max(labels) == 5.0 and len(set(labels)) >= 5
        else:
            assert all(type(y) is int for y in labels)
            assert set(labels) == set(range(fmt.num_labels))


@pytest.mark.parametrize("task", TASKS)
def test_sample_dev_never_repeats_train(task):
    splits = load_glue_dir(task, SAMPLE_ROOT)
    train = {(ex["text_a"], ex["text_b"]) for ex in splits["train"]}
    for name, examples in splits.items():
        if name != "train":
            assert not train & {(ex["text_a"], ex["text_b"]) for ex in examples}


@pytest.mark.parametrize("task", TASKS)
def test_sample_has_unlabelled_test_files_with_their_header(task):
    fmt = GLUE_FORMATS[task]
    for name in fmt.test_files:
        lines = (SAMPLE_ROOT / fmt.folder / name).read_text(encoding="utf-8").splitlines()
        assert lines[0].split("\t") == list(fmt.test_columns)
        assert len(lines) == 21 and all(len(line.split("\t")) == len(fmt.test_columns) for line in lines)


def test_cola_sample_has_no_header_and_marks_unacceptable_sentences():
    first = (SAMPLE_ROOT / "CoLA" / "train.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")
    _source, label, mark, sentence = first
    assert label in {"0", "1"} and mark == ("*" if label == "0" else "") and sentence.endswith(".")


@pytest.mark.parametrize("task", TASKS)
def test_generator_reproduces_the_bundled_files_byte_for_byte(task, tmp_path):
    folder = GLUE_FORMATS[task].folder
    write_glue_sample(tmp_path, task, seed=0)
    bundled = sorted(p.name for p in (SAMPLE_ROOT / folder).iterdir())
    assert sorted(p.name for p in (tmp_path / folder).iterdir()) == bundled
    for name in bundled:
        assert (tmp_path / folder / name).read_bytes() == (SAMPLE_ROOT / folder / name).read_bytes(), name


def test_generator_depends_on_the_seed(tmp_path):
    write_glue_sample(tmp_path / "a", "mrpc", seed=1)
    write_glue_sample(tmp_path / "b", "mrpc", seed=1)
    write_glue_sample(tmp_path / "c", "mrpc", seed=2)
    one = (tmp_path / "a" / "MRPC" / "train.tsv").read_bytes()
    assert one == (tmp_path / "b" / "MRPC" / "train.tsv").read_bytes()
    assert one != (tmp_path / "c" / "MRPC" / "train.tsv").read_bytes()


def test_sample_folder_stays_small():
    total = sum(p.stat().st_size for p in SAMPLE_ROOT.rglob("*") if p.is_file())
    assert total < 400_000


# ---------------------------------------------------------------------------------------------
# Hand-written files in GLUE's format


def test_cola_without_header_reads_by_position(tmp_path):
    path = _write(tmp_path / "train.tsv", "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n")
    assert read_glue_tsv(path, "cola") == [
        {"text_a": "Our friends won't buy this analysis.", "text_b": None, "label": 1},
        {"text_a": "They drank the pub.", "text_b": None, "label": 0},
    ]


def test_stray_double_quotes_are_text(tmp_path):
    text = (
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        '1\t1\t2\t"We are ready," he said.\tHe said "we are ready.\n'
        '0\t3\t4\tShe wrote ""nothing"" at all\tAn unmatched " quote\n'
    )
    rows = read_glue_tsv(_write(tmp_path / "train.tsv", text), "mrpc")
    assert rows[0] == {"text_a": '"We are ready," he said.', "text_b": 'He said "we are ready.', "label": 1}
    assert rows[1] == {"text_a": 'She wrote ""nothing"" at all', "text_b": 'An unmatched " quote', "label": 0}


def test_sst2_keeps_trailing_space_like_the_hub(tmp_path):
    path = _write(tmp_path / "dev.tsv", "sentence\tlabel\nit 's a charming journey . \t1\n")
    assert read_glue_tsv(path, "sst2") == [{"text_a": "it 's a charming journey . ", "text_b": None, "label": 1}]


def test_bom_and_crlf_are_accepted(tmp_path):
    text = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t1\t2\tA b.\tB a.\r\n"
    assert read_glue_tsv(_write(tmp_path / "train.tsv", text), "mrpc") == [{"text_a": "A b.", "text_b": "B a.", "label": 1}]


def test_columns_are_found_by_header_name(tmp_path):
    path = _write(tmp_path / "train.tsv", "is_duplicate\tquestion2\tquestion1\tid\tqid1\tqid2\n1\tWhy?\tHow?\t0\t1\t2\n")
    assert read_glue_tsv(path, "qqp") == [{"text_a": "How?", "text_b": "Why?", "label": 1}]


def _mnli_row(index: int, premise: str, hypothesis: str, labels: list[str]) -> str:
    return "\t".join([str(index), "1", "1e", "fiction", "( a )", "( b )", "(ROOT a)", "(ROOT b)", premise, hypothesis, *labels])


def test_mnli_reads_train_and_both_dev_files(tmp_path):
    fmt = GLUE_FORMATS["mnli"]
    folder = tmp_path / "glue_data" / "MNLI"
    _write(folder / "train.tsv", "\t".join(fmt.columns) + "\n" + _mnli_row(0, "P.", "H.", ["neutral"] * 2) + "\n")
    dev_header = "\t".join(fmt.dev_columns) + "\n"
    five = ["contradiction", "contradiction", "neutral", "contradiction", "entailment", "contradiction"]
    _write(folder / "dev_matched.tsv", dev_header + _mnli_row(0, "A.", "B.", five) + "\n")
    _write(folder / "dev_mismatched.tsv", dev_header + _mnli_row(0, "C.", "D.", ["entailment"] * 6) + "\n")
    _write(folder / "test_matched.tsv", "not read\n")
    splits = load_glue_dir("mnli", tmp_path / "glue_data")
    assert list(splits) == ["train", "validation_matched", "validation_mismatched"]
    assert splits["train"] == [{"text_a": "P.", "text_b": "H.", "label": 1}]
    assert splits["validation_matched"] == [{"text_a": "A.", "text_b": "B.", "label": 2}]
    assert splits["validation_mismatched"] == [{"text_a": "C.", "text_b": "D.", "label": 0}]


def test_nli_string_labels_and_stsb_scores(tmp_path):
    rte = _write(tmp_path / "rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tnot_entailment\n1\tC.\tD.\tentailment\n")
    assert [r["label"] for r in read_glue_tsv(rte, "rte")] == [1, 0]
    qnli = _write(tmp_path / "qnli.tsv", "index\tquestion\tsentence\tlabel\n0\tWho?\tHe.\tnot_entailment\n")
    assert read_glue_tsv(qnli, "qnli") == [{"text_a": "Who?", "text_b": "He.", "label": 1}]
    header = "\t".join(GLUE_FORMATS["stsb"].columns)
    stsb = _write(tmp_path / "stsb.tsv", f"{header}\n0\tmain-news\tMSRpar\t2012\t0001\tnone\tnone\tA man.\tA man.\t3.800\n")
    [row] = read_glue_tsv(stsb, "stsb")
    assert row == {"text_a": "A man.", "text_b": "A man.", "label": 3.8} and isinstance(row["label"], float)


def test_data_dir_may_be_the_root_the_task_folder_or_a_renamed_folder(tmp_path):
    write_glue_sample(tmp_path / "root", "sst2")
    from_root = load_glue_dir("sst2", tmp_path / "root")
    assert load_glue_dir("sst2", tmp_path / "root" / "SST-2") == from_root
    (tmp_path / "root" / "SST-2").rename(tmp_path / "root" / "sst2")
    assert load_glue_dir("sst2", tmp_path / "root") == from_root


# ---------------------------------------------------------------------------------------------
# Malformed input: a DataError naming the file and the line

MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
MALFORMED = {
    "csv instead of tsv": ("mrpc", "not,a,glue,file\n", 1, "header lacks"),
    "missing column": ("mrpc", "Quality\t#1 ID\t#2 ID\t#1 String\n1\t1\t2\tA.\n", 1, "'#2 String'"),
    "unknown label": ("rte", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n1\tA.\tB.\tmaybe\n", 3, "unknown label 'maybe'"),
    "too few fields": ("mrpc", MRPC_HEADER + "1\t1\t2\tA.\tB.\n0\t3\t4\tonly one sentence\n", 3, "expected 5"),
    "too many fields": ("mrpc", MRPC_HEADER + "1\t1\t2\tA.\tB.\textra\n", 2, "found 6"),
    "empty file": ("sst2", "", 1, "empty"),
    "header only": ("sst2", "sentence\tlabel\n", 2, "no examples"),
    "bad utf-8": ("sst2", b"sentence\tlabel\ngood\t1\nbad \xff\xfe byte\t0\n", 3, "UTF-8"),
    "cola with a header": ("cola", "source\tlabel\tlabel_mark\tsentence\ngj04\t1\t\tFine.\n", 1, "unknown label"),
    "cola short row": ("cola", "gj04\t1\t\tFine.\ngj04\t1\tFine.\n", 2, "no header row"),
    "score not a number": ("stsb", "\t".join(GLUE_FORMATS["stsb"].columns) + "\n0\tg\tf\ty\t0\tn\tn\tA.\tB.\thigh\n", 2, "not a number"),
    "score out of range": ("stsb", "\t".join(GLUE_FORMATS["stsb"].columns) + "\n0\tg\tf\ty\t0\tn\tn\tA.\tB.\t7.5\n", 2, "range"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_file_raises_data_error_with_file_and_line(case, tmp_path):
    task, content, line, fragment = MALFORMED[case]
    path = _write(tmp_path / "train.tsv", content)
    with pytest.raises(DataError) as caught:
        read_glue_tsv(path, task)
    message = str(caught.value)
    assert str(path) in message and f"line {line}" in message and fragment in message, message
    assert caught.value.line == line and caught.value.path == path


def test_malformed_mrpc_directory_fails_on_its_train_file(tmp_path):
    _write(tmp_path / "bad" / "train.tsv", "not,a,glue,file\n")
    _write(tmp_path / "bad" / "dev.tsv", MRPC_HEADER + "1\t1\t2\tA.\tB.\n")
    with pytest.raises(DataError, match=r"bad/train\.tsv, line 1: not a GLUE MRPC file"):
        load_glue_dir("mrpc", tmp_path / "bad")


def test_missing_split_file_is_named_before_any_file_is_read(tmp_path, monkeypatch):
    _write(tmp_path / "MRPC" / "train.tsv", MRPC_HEADER + "1\t1\t2\tA.\tB.\n")
    read = []
    monkeypatch.setattr(glue, "read_glue_tsv", lambda path, task: read.append(path))
    with pytest.raises(DataError, match=r"MRPC: missing dev\.tsv, which a mrpc run needs \(found: train\.tsv\)"):
        load_glue_dir("mrpc", tmp_path)
    assert read == []


def test_missing_or_wrong_data_dir_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: data directory does not exist"):
        load_glue_dir("mrpc", tmp_path / "nowhere")
    with pytest.raises(DataError, match="not a directory"):
        load_glue_dir("mrpc", _write(tmp_path / "file.tsv", "x"))
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match=r"holds neither a MRPC/ folder"):
        load_glue_dir("mrpc", tmp_path / "other")


def test_unknown_task_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown GLUE task 'wnli'"):
        load_glue_dir("wnli", SAMPLE_ROOT)


# ---------------------------------------------------------------------------------------------
# The hub


def _no_network_hints(monkeypatch):
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def fresh_probe():
    """The hub probe's cached answer forgotten before and after the test."""
    hub.hub_reachable.cache_clear()
    yield
    hub.hub_reachable.cache_clear()


def test_hub_offline_mode_fails_fast_naming_the_offline_options(monkeypatch, tmp_path):
    pytest.importorskip("datasets")
    from huggingface_hub import constants

    _no_network_hints(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = constants.HF_HUB_OFFLINE
    start = time.perf_counter()
    with pytest.raises(OfflineError) as caught:
        load_glue_hub("mrpc", cache_dir=tmp_path)
    assert time.perf_counter() - start < 15
    message = str(caught.value)
    assert "nyu-mll/glue" in message and "--data-dir DIR" in message and "--data-dir sample" in message
    assert before == constants.HF_HUB_OFFLINE  # the switch is undone


def test_unreachable_hub_fails_fast_without_retries(monkeypatch, tmp_path, fresh_probe):
    pytest.importorskip("datasets")

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    _no_network_hints(monkeypatch)
    monkeypatch.setattr(hub.socket, "create_connection", refuse)
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="--data-dir sample"):
        load_glue_hub("rte", cache_dir=tmp_path)
    assert time.perf_counter() - start < 15


def test_hub_rows_map_to_the_same_examples(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(path, name, **kwargs):
        calls.append((path, name))
        rows = {"premise": ["P."], "hypothesis": ["H."], "label": [2], "idx": [0]}
        return datasets.DatasetDict(
            {s: datasets.Dataset.from_dict(rows) for s in ("train", "validation_matched", "validation_mismatched", "test_matched")}
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(hub, "offline_requested", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    splits = load_glue_hub("mnli")
    assert calls == [("nyu-mll/glue", "mnli")]
    assert list(splits) == ["train", "validation_matched", "validation_mismatched"]
    assert splits["validation_matched"] == [{"text_a": "P.", "text_b": "H.", "label": 2}]
