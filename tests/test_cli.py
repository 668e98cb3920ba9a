"""The CLI as a user meets it, in process: exit codes, messages, records."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peftbench.errors import UsageError
from peftbench.records.schema import best_epoch, with_directions
from peftbench.records.store import read_record
from peftbench.run import loop as run_loop
from peftbench.tasks.metrics import metric_for

TINY_RUN = ("run", "--method", "lora", "--task", "mrpc", "--model", "tiny-roberta", "--max-steps", "3", "--set", "max_eval_examples=16")


def only_record(results: Path) -> dict:
    (path,) = list((results / "scratch").glob("*.json"))
    return read_record(path)


def test_tiny_run_writes_a_complete_record(cli, results):
    res = cli(*TINY_RUN, "--set", "r=4")
    assert res.code == 0, res.err
    record = only_record(results)
    assert record["schema_version"] == 2 and record["kind"] == "run" and record["status"] == "finished" and record["error"] is None
    assert record["config"]["hyperparameters"]["r"] == 4
    assert record["run_id"].rsplit("-", 2)[1] == record["key"][:8] and record["seed"] == 0
    assert record["pid"] == os.getpid() and record["host"] and record["heartbeat_at"] >= record["created_at"]
    # method count = 2 x (adapted matrices) x d_model x r for tiny-roberta (2 layers, d=64, q and v)
    assert record["params"]["method"] == 2 * (2 * 2) * 64 * 4 == record["params"]["formula"]
    assert record["params"]["head"] > 0
    assert set(record["metrics"]) == {"accuracy", "f1"}
    assert all(m["higher_is_better"] is True for m in record["metrics"].values())
    env = record["env"]
    assert {"torch", "transformers", "device", "threads", "commit", "dirty"} <= set(env)
    assert record["data"]["source"].startswith("sample:")
    assert record["data"]["splits"]["train"]["examples"] > 0 and len(record["data"]["splits"]["train"]["sha256"]) == 64
    assert "resolved config" in res.out and "record:" in res.out


def test_show_finds_a_run_by_prefix(cli, results):
    assert cli(*TINY_RUN).code == 0
    run_id = only_record(results)["run_id"]
    res = cli("show", run_id[:10])
    assert res.code == 0 and run_id in res.out and "lora on mrpc" in res.out
    assert json.loads(cli("show", run_id, "--json").out)["run_id"] == run_id
    missing = cli("show", "nope")
    assert missing.code == 2 and "no record 'nope'" in missing.err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--method", "lorra", "unknown method 'lorra'; did you mean 'lora'"),
        ("--task", "mrcp", "unknown task 'mrcp'; did you mean 'mrpc'"),
        ("--model", "tiny-robrta", "unknown model 'tiny-robrta'; did you mean 'tiny-roberta'"),
    ],
)
def test_typos_exit_2_with_a_suggestion(cli, results, flag, value, message):
    args = dict(zip(TINY_RUN[1::2], TINY_RUN[2::2], strict=False))
    args[flag] = value
    res = cli("run", *[x for kv in args.items() for x in kv])
    assert res.code == 2
    assert message in res.err
    assert not results.exists() or not list(results.rglob("*.json"))


def test_bad_set_exits_2(cli):
    res = cli(*TINY_RUN, "--set", "r=zero")
    assert res.code == 2 and "expected int" in res.err


def test_hub_model_offline_exits_2_naming_offline_options(cli, monkeypatch):
    from peftbench.models.hub import hub_reachable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()
    res = cli("run", "--method", "lora", "--task", "mrpc")
    assert res.code == 2
    assert "offline options" in res.err.lower() and "--model DIR" in res.err
    assert "Traceback" not in res.err


def test_exception_during_training_is_recorded_as_failed(cli, results, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom at step 1")

    monkeypatch.setattr(run_loop, "training_step", explode)
    res = cli(*TINY_RUN)
    assert res.code == 1 and "boom at step 1" in res.err
    record = only_record(results)
    assert record["status"] == "failed" and "boom at step 1" in record["error"] and record["finished_at"]


def test_keyboard_interrupt_is_recorded_as_interrupted(cli, results, monkeypatch):
    real_step = run_loop.training_step
    calls = []

    def interrupt_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(run_loop, "training_step", interrupt_on_second)
    res = cli(*TINY_RUN)
    assert res.code == 130 and "interrupted" in res.err
    assert only_record(results)["status"] == "interrupted"


@pytest.mark.parametrize("what", ["methods", "tasks", "models"])
def test_ls(cli, what):
    res = cli("ls", what)
    assert res.code == 0
    expected = {"methods": ["lora", "ft"], "tasks": ["mrpc"], "models": ["roberta-base", "tiny-gpt2", "deberta-v2-xxlarge"]}[what]
    names = [line.split()[0] for line in res.out.splitlines()]
    assert set(expected) <= set(names)


def test_validate(cli):
    res = cli("validate")
    assert res.code == 0, res.err
    assert "all specs valid" in res.out


def test_sigint_to_the_real_entry_point_marks_the_record_interrupted(tmp_path):
    """The installed console script, a real SIGINT mid-training, and the record left behind."""
    env = {**os.environ, "PEFTBENCH_RESULTS": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "peftbench", "run", "--method", "ft", "--task", "mrpc", "--model", "tiny-roberta", "--epochs", "50"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.rglob("*.json")):
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (path,) = list(tmp_path.rglob("*.json"))
    assert read_record(path)["status"] == "interrupted"
    assert "Traceback" not in err


def test_metric_directions_follow_the_base_metric():
    assert metric_for("ter_unseen").higher_is_better is False
    assert metric_for("rouge_l_seen").name == "rouge_l"
    assert metric_for("accuracy_mismatched").higher_is_better is True
    with pytest.raises(UsageError, match="unknown metric 'perplexity'"):
        metric_for("perplexity")


def test_nan_scores_are_stored_as_null_and_never_win():
    scores = with_directions({"pearson": float("nan")})
    assert scores["pearson"]["value"] is None
    epochs = [{"epoch": 1, "metrics": with_directions({"pearson": 0.2})}, {"epoch": 2, "metrics": scores}]
    assert best_epoch(epochs, "pearson")["epoch"] == 1
