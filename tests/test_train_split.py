"""`train_split`: a release without a train file (E2E here ships dev and test) trains on another split, stated in the record."""

import json
import shutil
from pathlib import Path

from peftbench.tasks.base import SAMPLES_DIR

RUN = ["run", "--method", "lora", "--task", "e2e", "--model", "tiny-gpt2", "--max-steps", "1"]
SMALL = ["--set", "max_eval_examples=2", "--set", "num_beams=1", "--set", "max_new_tokens=4", "--set", "max_train_examples=8"]


def release_without_train(tmp_path: Path) -> Path:
    folder = tmp_path / "e2e"
    folder.mkdir()
    for name in ("devset.csv", "testset_w_refs.csv"):
        shutil.copy(SAMPLES_DIR / "e2e" / name, folder / name)
    return folder


def test_training_on_the_dev_split_is_recorded(cli, results, tmp_path):
    data = release_without_train(tmp_path)
    res = cli(*RUN, *SMALL, "--data-dir", str(data), "--set", "train_split=validation")
    assert res.code == 0, res.err
    record = json.loads(next(results.glob("scratch/*.json")).read_text())
    assert record["config"]["training"]["train_split"] == "validation"
    assert set(record["data"]["splits"]) == {"validation", "test"}  # what was read, with hashes: no train split
    assert record["data"]["splits"]["validation"]["examples"] > 0


def test_a_missing_train_split_names_the_way_out(cli, tmp_path):
    res = cli(*RUN, "--data-dir", str(release_without_train(tmp_path)))
    assert res.code == 2
    assert "no train split" in res.err and "--set train_split=validation" in res.err


def test_training_on_a_scored_split_is_refused(cli, tmp_path):
    res = cli(*RUN, "--data-dir", str(release_without_train(tmp_path)), "--set", "train_split=test")
    assert res.code == 2
    assert "scores that split" in res.err
