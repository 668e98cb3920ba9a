"""The data-format registry: every task's format is one registered reader, and base.py only asks it.

Also the facts a spec and its reader both hold, checked equal since they are kept twice: the spec
names the hub copy, the package file and the labels (shown and recorded), while the readers keep
their own tables so that they work by task name without a spec (`load_data_to_text_hub("e2e")`).
GLUE's (splits, labels, hub config) are checked in test_tasks.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftbench.errors import DataError, UsageError
from peftbench.registry import Registry
from peftbench.tasks import base
from peftbench.tasks.base import TaskSpec, data_source, load_splits, task_specs
from peftbench.tasks.formats import DataFormat
from peftbench.tasks.readers import FORMATS, SAMPLES_DIR

SPECS = [task_specs().get(name) for name in task_specs()]


def test_every_format_a_spec_names_is_registered_and_every_registered_one_is_used():
    assert set(FORMATS) == {spec.format for spec in SPECS} == {"glue", "e2e", "webnlg", "dart", "rotten_tomatoes"}
    assert all(FORMATS.get(name).name == name for name in FORMATS)


def test_an_unknown_format_in_a_spec_lists_the_registered_ones(tmp_path):
    text = (task_specs().get("mrpc").source.read_text()).replace("format: glue", "format: glu")
    (tmp_path / "mrpc.yaml").write_text(text)
    with pytest.raises(UsageError, match=r"format must be one of dart, e2e, glue, rotten_tomatoes, webnlg, got 'glu'"):
        base.parse_task_spec(tmp_path / "mrpc.yaml")


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_each_format_locates_the_splits_a_run_needs_in_its_bundled_sample(spec):
    fmt = FORMATS.get(spec.format)
    folder = SAMPLES_DIR / spec.format
    files = fmt.locate(spec, folder, base.required_splits(spec))
    assert files and all(paths and all(p.is_file() for p in paths) for paths in files.values())
    described = fmt.describe(folder, files)
    assert set(described) <= set(files) and all(isinstance(text, str) and text for text in described.values())


def test_only_webnlg_scores_by_category():
    assert [name for name in FORMATS if FORMATS.get(name).scores_by_category] == ["webnlg"]


# --------------------------------------------------------------------------- a new format


class JsonLines(DataFormat):
    """A toy format: `<split>.jsonl` per split, one {"text", "label"} object per line."""

    name = "jsonl"

    def locate(self, spec, folder, required):
        files = {split: [folder / f"{split}.jsonl"] for split in ("train", "validation") if (folder / f"{split}.jsonl").is_file()}
        missing = [split for split in required if split not in files]
        if missing:
            raise DataError(folder, f"no {', '.join(missing)} split (found: {', '.join(files) or 'nothing'})")
        return files

    def read(self, spec, paths):
        rows = map(json.loads, paths[0].read_text().splitlines())
        return [{"text_a": row["text"], "text_b": None, "label": row["label"]} for row in rows]


@pytest.fixture
def jsonl(monkeypatch) -> TaskSpec:
    registry: Registry[DataFormat] = Registry("data format")
    registry.add("jsonl", JsonLines())
    monkeypatch.setattr(base, "FORMATS", registry)
    return TaskSpec("toy", "", "classification", "jsonl", ("accuracy",), "accuracy", ("validation",), "tiny-roberta", num_labels=2)


def write(folder: Path, *splits: str) -> Path:
    folder.mkdir()
    for split in splits:
        (folder / f"{split}.jsonl").write_text('{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n')
    return folder


def test_a_registered_reader_is_all_a_new_format_needs(jsonl, tmp_path):
    source = data_source(jsonl, str(write(tmp_path / "toy", "train", "validation")), tiny_model=False)
    splits = load_splits(jsonl, source)
    assert list(splits) == ["train", "validation"] and splits["train"][0] == {"text_a": "good", "text_b": None, "label": 1}
    assert source.describe(jsonl) == f"local:{tmp_path / 'toy'} (train: train.jsonl; validation: validation.jsonl)"


def test_a_new_formats_missing_split_fails_before_any_file_is_read(jsonl, tmp_path, monkeypatch):
    monkeypatch.setattr(JsonLines, "read", lambda *args: pytest.fail("a file was read"))
    with pytest.raises(DataError, match="no train split"):
        data_source(jsonl, str(write(tmp_path / "toy", "validation")), tiny_model=False)


def test_a_format_without_a_hub_copy_says_so(jsonl):
    with pytest.raises(UsageError, match="task toy: the jsonl format has no hub copy; give its files with --data-dir DIR"):
        load_splits(jsonl, base.DataSource("hub"))


# --------------------------------------------------------------------------- facts held by a spec and its reader


@pytest.mark.parametrize("name", ["e2e", "webnlg", "dart"])
def test_data_to_text_spec_names_the_hub_export_its_reader_loads(name):
    spec, source = task_specs().get(name), FORMATS.get(name).hub_source  # type: ignore[attr-defined]
    assert (spec.hub["path"], spec.hub["revision"]) == (source.repo, source.revision)
    assert all(pattern.startswith(f"{spec.hub.get('name', 'default')}/") for pattern in source.data_files.values())
    assert set(spec.eval_splits) <= set(source.data_files)


def test_rotten_tomatoes_spec_agrees_with_its_reader():
    from peftbench.tasks import rotten_tomatoes

    spec = task_specs().get("rotten-tomatoes")
    assert Path(spec.package["file"]).name in rotten_tomatoes.FILE_NAMES
    assert spec.label_names == tuple(sorted(rotten_tomatoes.LABELS, key=rotten_tomatoes.LABELS.get))
    assert set(spec.eval_splits) <= set(rotten_tomatoes.fixed_split([{"label": 0}] * 20))
