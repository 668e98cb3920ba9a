"""Tuning (`peftbench tune`, `sweep --fair`): search spaces, studies that resume, pruning, tuned presets."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna")

from optuna.distributions import CategoricalDistribution, FloatDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from peftbench.config.resolve import resolve_sections  # noqa: E402
from peftbench.errors import RunInterrupted, UsageError  # noqa: E402
from peftbench.grid import tune as tuning  # noqa: E402
from peftbench.records.store import Store  # noqa: E402
from peftbench.specs import method_specs, parse_search  # noqa: E402

SHORT = ("max_eval_examples=16", "batch_size=32")
LORA = ("--method", "lora", "--task", "sst2", "--model", "tiny-roberta")


def lora_spec(trials: int, **kw) -> tuning.TuneSpec:
    return tuning.TuneSpec("lora", "sst2", "tiny-roberta", trials, budget_steps=2, overrides=SHORT, **kw)


def study_of(store: Store, name: str):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{store.study_path(name, '.db')}")


def run_records(root) -> list[dict]:
    return [e.record for e in Store(root).entries("run")]


@pytest.mark.parametrize("method", sorted(method_specs()))
def test_every_method_declares_a_search_space_whose_corners_resolve(method):
    """Every value a study can sample (the ends of a range, every choice) resolves for the tiny models."""
    space = tuning.space_of(method)
    assert space[0]["name"] == "lr" and space[0]["log"]
    options = [p["choices"] if p["type"] == "categorical" else [p["low"], p["high"]] for p in space]
    for values in itertools.product(*options):
        sets = tuning.as_overrides(dict(zip([p["name"] for p in space], values, strict=True)))
        for task, model in (("sst2", "tiny-roberta"), ("e2e", "tiny-gpt2")):
            if model == "tiny-gpt2" and "gpt2" not in method_specs()[method].peft.get("runs_on", ["gpt2"]):
                continue  # a peft type its spec says peft refuses on GPT-2 (test_peft_bridge.py checks the refusal)
            resolved = resolve_sections(method, task, model, overrides=sets)
            assert resolved.sections["training"].lr == values[0]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "low > 0 with log"),
        ({"lr": {"type": "float", "low": 1, "high": 0.1}}, "low < high"),
        ({"r": {"type": "categorical", "choices": []}}, "non-empty list"),
        ({"r": {"type": "choice", "choices": [1]}}, "type must be one of"),
        ({"r": {"type": "int", "low": 1, "high": 4, "step": 2}}, "unknown key(s) step"),
    ],
)
def test_a_bad_search_space_is_one_clear_error(raw, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_search("methods/x.yaml", raw)


def test_a_study_finishes_resumes_after_an_interruption_and_its_preset_runs(cli, results, monkeypatch):
    got = cli("tune", *LORA, "--trials", "2", "--budget-steps", "2", "--set", SHORT[0], "--set", SHORT[1])
    assert got.code == 0, got.err
    name = next(w for w in got.out.split() if w.startswith("tuned:")).removeprefix("tuned:")
    store = Store(results)
    records = run_records(results)
    assert len(records) == 2 and {r["status"] for r in records} == {"finished"}
    assert sorted(r["hooks"]["tune"]["trial"] for r in records) == [0, 1]
    assert {r["hooks"]["tune"]["study"] for r in records} == {name}
    assert {r["config"]["training"]["max_steps"] for r in records} == {2}
    assert len({r["key"] for r in records}) == 2  # different params: different cells, never "the same run"

    # interrupted in its third trial: the trial is FAIL, the run record says interrupted
    def stop(self, state):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(tuning.TrialCallback, "on_step_end", stop)
        with pytest.raises(RunInterrupted):
            tuning.tune(lora_spec(3, study=name), store)
    # and a trial left RUNNING by a process of this host that died (killed: nothing could tell Optuna)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    study = study_of(store, name)
    orphan = study.ask()
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", int(dead))

    outcome = tuning.tune(lora_spec(3, study=name), store)
    assert outcome.ran == 1
    states = [t.state for t in study_of(store, name).trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    params = [tuple(t.params.items()) for t in study_of(store, name).trials if t.state == TrialState.COMPLETE]
    assert len(set(params)) == 3  # a resumed, seeded sampler draws new points, never replays old ones
    assert sorted(r["status"] for r in run_records(results)) == ["finished"] * 3 + ["interrupted"]
    assert tuning.tune(lora_spec(3, study=name), store).ran == 0  # done: nothing runs again

    summary = json.loads(store.study_path(name).read_text())
    assert summary["n_trials"] == 3 and summary["direction"] == "maximize" and len(summary["trials"]) == 5
    best = summary["best_params"]
    got = cli("run", *LORA, "--preset", f"tuned:{name}", "--max-steps", "1", "--set", SHORT[0])
    assert got.code == 0, got.err
    tuned = max(run_records(results), key=lambda r: r["created_at"])
    assert tuned["config"]["preset"] == f"tuned:{name}"
    assert tuned["config"]["hyperparameters"]["r"] == best["r"] and tuned["config"]["training"]["lr"] == best["lr"]

    wrong = cli("run", "--method", "bitfit", "--task", "sst2", "--model", "tiny-roberta", "--preset", f"tuned:{name}")
    assert wrong.code == 2 and "tuned lora, not bitfit" in wrong.err and "Traceback" not in wrong.err
    assert cli("run", "--method", "lora", "--task", "sst2", "--preset", "tuned:nothing-here").code == 2
    changed = cli("tune", *LORA, "--trials", "3", "--study", name)
    assert changed.code == 2 and "other settings" in changed.err


@pytest.mark.filterwarnings("ignore:Fixed parameter lr:UserWarning")  # 1e-9 is outside the space on purpose
def test_a_bad_learning_rate_is_pruned_after_its_first_epoch(results):
    """Three good trials are in the study; a trial at lr=1e-9 cannot reach their first-epoch score."""
    store = Store(results)
    path = store.study_path("bad-lr", ".db")
    path.parent.mkdir(parents=True)
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name="bad-lr", direction="maximize")
    space = {"lr": FloatDistribution(1e-5, 1e-2, log=True), "r": CategoricalDistribution([1, 2, 4, 8, 16, 32])}
    curve = {1: 0.99, 2: 0.99, 3: 0.99}
    for lr in (1e-3, 2e-3, 3e-3):
        study.add_trial(optuna.trial.create_trial(params={"lr": lr, "r": 8}, distributions=space, value=0.99, intermediate_values=curve))
    study.enqueue_trial({"lr": 1e-9, "r": 4})
    short = ("epochs=3", "max_train_examples=32", "batch_size=16", "max_eval_examples=16")
    spec = tuning.TuneSpec("lora", "sst2", "tiny-roberta", 4, overrides=short, study="bad-lr")
    outcome = tuning.tune(spec, store)
    assert outcome.ran == 1 and outcome.summary["n_trials"] == 4
    assert study_of(store, "bad-lr").trials[-1].state == TrialState.PRUNED
    (record,) = run_records(results)
    assert record["hooks"]["tune"]["pruned"] is True and record["hooks"]["tune"]["pruned_at_epoch"] == 1
    assert len(record["epochs"]) == 1 and "TrialPruned" in record["error"]


def test_a_fair_sweep_tunes_each_method_with_the_same_budget_then_runs_the_best(cli, results):
    got = cli(
        *("sweep", "--methods", "lora,bitfit", "--tasks", "sst2", "--models", "tiny-roberta"),
        *("--fair", "--trials", "2", "--budget-steps", "1", "--set", "max_eval_examples=8"),
    )
    assert got.code == 0, got.err
    records = run_records(results)
    trials = [r for r in records if "tune" in r["hooks"]]
    tags = sorted((r["config"]["method"], r["hooks"]["tune"]["trial"]) for r in trials)
    assert tags == [("bitfit", 0), ("bitfit", 1), ("lora", 0), ("lora", 1)]
    assert {r["config"]["training"]["max_steps"] for r in records} == {1}  # one budget for every trial and final run
    studies = {p.stem for p in (results / "studies").glob("*.json")}
    assert len(studies) == 2 and all(f"tuned:{s}" in got.out for s in studies)
    # the final seed trains afresh, even where the winning trial has its key and seed: trials never count as results
    finals = [r for r in records if "tune" not in r["hooks"]]
    assert sorted(r["config"]["method"] for r in finals) == ["bitfit", "lora"]
    winners = {(r["key"], r["seed"]) for r in trials}
    assert {(r["key"], r["seed"]) for r in finals} <= winners
    assert "2 cells, 0 done before, 0 to resume, 2 to run" in got.out
