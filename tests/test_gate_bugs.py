"""The gate against deliberate bugs: each bug, monkeypatched into tiny real runs, must fail `peftbench check` with the
right outcome, and unchanged reruns must pass (0 false alarms in 5). Nothing is committed: every bug is a patch
that pytest undoes.

Time is a cost model, not the wall clock: a fake `time.perf_counter` advances by a fixed amount on every module
forward call (the model's and the reference step's alike). A bug that adds work (a redundant forward and backward)
then makes a step measurably slower, deterministically, and no assertion depends on how busy the machine is; the
real clock under real load is benchmarks/speed_gate.py's business.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from peftbench.config.resolve import resolve_run
from peftbench.methods import lora
from peftbench.records.store import Store
from peftbench.run import loop as run_loop
from peftbench.run import runner
from peftbench.tasks.classification import ClassificationPipeline

SETTINGS = ["max_steps=12", "batch_size=16", "max_eval_examples=32", "seed=0"]
TICK = 1e-4  # fake seconds per module forward call


class CostClock:
    """A `perf_counter` that advances only when a module runs forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def hook(self, module: torch.nn.Module, args: object, output: object) -> None:
        self.now += TICK


@pytest.fixture(scope="module")
def cost_clock() -> Iterator[CostClock]:
    clock = CostClock()
    patch = pytest.MonkeyPatch()
    patch.setattr(time, "perf_counter", clock)
    handle = torch.nn.modules.module.register_module_forward_hook(clock.hook)
    yield clock
    handle.remove()
    patch.undo()


def run_lora(root: Path) -> Path:
    runner.run(resolve_run("lora", "stsb", "tiny-roberta", overrides=SETTINGS, data_dir="sample"), store=Store(root))
    return root


@pytest.fixture(scope="module")
def baseline(cost_clock, tmp_path_factory) -> Path:
    from peftbench.cli import main

    root = run_lora(tmp_path_factory.mktemp("base"))
    path = root / "base.json"
    assert main(["bless", "--results-dir", str(root), "--out", str(path), "--force"]) == 0
    return path


def check(cli, results: Path, baseline: Path, *flags: str) -> tuple[int, dict, str]:
    text = cli("check", "--results-dir", str(results), "--against", str(baseline), *flags)
    js = json.loads(cli("check", "--results-dir", str(results), "--against", str(baseline), "--json", *flags).out)
    return text.code, js, text.out


def test_unchanged_reruns_pass_five_of_five(cli, baseline, tmp_path):
    """Exact mode: the same code, machine and versions reproduce every score, step cost and count."""
    for i in range(5):
        code, js, out = check(cli, run_lora(tmp_path / f"rerun{i}"), baseline)
        assert code == 0, out
        assert js["pairs"][0]["exact_mode"] is True and js["counts"]["within tolerance"] == 1


def halved_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    original = lora.LoraLayer.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        self.scaling = {name: s / 2 for name, s in self.scaling.items()}

    monkeypatch.setattr(lora.LoraLayer, "__init__", init)


def lr_tenth(monkeypatch: pytest.MonkeyPatch) -> None:
    adamw = torch.optim.AdamW
    monkeypatch.setattr(torch.optim, "AdamW", lambda params, lr, **kw: adamw(params, lr=lr / 10, **kw))


def eval_half(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ClassificationPipeline.evaluate

    def evaluate(self, model, splits, device):  # type: ignore[no-untyped-def]
        return original(self, model, {k: v[: len(v) // 2] for k, v in splits.items()}, device)

    monkeypatch.setattr(ClassificationPipeline, "evaluate", evaluate)


def labels_shifted(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ClassificationPipeline.evaluate

    def evaluate(self, model, splits, device):  # type: ignore[no-untyped-def]
        def shift(examples: list) -> list:
            labels = np.roll([e["label"] for e in examples], 1)
            return [{**e, "label": label.item()} for e, label in zip(examples, labels, strict=True)]

        return original(self, model, {k: shift(v[: self.training.max_eval_examples or None]) for k, v in splits.items()}, device)

    monkeypatch.setattr(ClassificationPipeline, "evaluate", evaluate)


def redundant_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every step runs forward and backward twice; the first pass's gradients and random draws are undone, so the
    scores stay exactly the same and only the speed moves."""
    original = run_loop.training_step

    def step(loop, batch, grad_clip):  # type: ignore[no-untyped-def]
        with torch.random.fork_rng(devices=[]):
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            loop.pipeline.loss(loop.adapted(**inputs).logits, batch["labels"]).backward()
        for weight in loop.adapted.trainable_parameters().values():
            weight.grad = None
        return original(loop, batch, grad_clip)

    monkeypatch.setattr(run_loop, "training_step", step)


LEAKED: list[torch.Tensor] = []


def leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """256 MiB kept alive from the first step on (freed by the test afterwards)."""
    original = run_loop.training_step

    def step(loop, batch, grad_clip):  # type: ignore[no-untyped-def]
        if not LEAKED:
            LEAKED.append(torch.ones(64 * 2**20))
        return original(loop, batch, grad_clip)

    monkeypatch.setattr(run_loop, "training_step", step)


QUALITY_BUGS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "lora scale halved": halved_scale,
    "lr / 10": lr_tenth,
    "half the eval set": eval_half,
    "eval labels shifted": labels_shifted,
}


@pytest.mark.parametrize("bug", list(QUALITY_BUGS))
def test_a_quality_bug_is_changed_in_exact_mode_and_seen_across_machines(cli, baseline, tmp_path, monkeypatch, bug):
    QUALITY_BUGS[bug](monkeypatch)
    current = run_lora(tmp_path / "bug")
    monkeypatch.undo()
    code, js, out = check(cli, current, baseline)
    assert code == 1 and js["counts"]["changed"] == 1, out
    assert "pearson seed 0:" in out and ": changed" in out  # configuration row, seed, metric, old and new value
    # the same records as if from another machine: judged seed by seed against the registry's tolerance
    elsewhere = as_from_another_machine(current, tmp_path / "elsewhere")
    code, js, out = check(cli, elsewhere, baseline, "--fail-on-improved")
    assert js["pairs"][0]["exact_mode"] is False
    assert code == 1 and js["counts"]["regressed"] + js["counts"]["improved"] == 1, out


def as_from_another_machine(results: Path, dest: Path) -> Path:
    shutil.copytree(results, dest)
    for path in dest.rglob("*.json"):
        record = json.loads(path.read_text())
        if record.get("kind") == "run":
            record["env"].update(deterministic=False, determinism="test: another machine")
            path.write_text(json.dumps(record))
    return dest


def test_a_redundant_forward_and_backward_fails_on_speed(cli, baseline, tmp_path, monkeypatch):
    redundant_pass(monkeypatch)
    current = run_lora(tmp_path / "slow")
    monkeypatch.undo()
    code, js, out = check(cli, current, baseline)
    (speed,) = [v for v in js["pairs"][0]["verdicts"] if v["kind"] == "speed"]
    assert code == 1 and js["counts"]["regressed"] == 1 and speed["verdict"] == "regressed", out
    assert float(speed["change"].removeprefix("x")) > 1.8  # twice the forward calls per step
    assert not [v for v in js["pairs"][0]["verdicts"] if v["kind"] == "quality" and v["verdict"] != "within tolerance"]


def test_a_memory_leak_fails_on_memory(cli, baseline, tmp_path, monkeypatch):
    leak(monkeypatch)
    try:
        current = run_lora(tmp_path / "leak")
    finally:
        LEAKED.clear()
    monkeypatch.undo()
    code, js, out = check(cli, current, baseline)
    (memory,) = [v for v in js["pairs"][0]["verdicts"] if v["kind"] == "memory"]
    assert code == 1 and memory["verdict"] == "regressed" and memory["b"] - memory["a"] > 200 * 2**20, out
