"""Sweeps: specs and grids, validation before work, skipping, failures, interrupt and resume, executors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peftbench.config.resolve import resolve_run
from peftbench.errors import RunInterrupted, UsageError
from peftbench.grid import sweep
from peftbench.records.store import Store, read_record
from peftbench.run import loop as run_loop
from peftbench.run import runner

SHORT = ("max_steps=3", "max_eval_examples=16", "batch_size=32")


def grid(methods=("lora", "bitfit"), tasks=("mrpc",), models=("tiny-roberta",), seeds=(0,), sets=SHORT) -> sweep.SweepSpec:
    return sweep.SweepSpec(name="t", methods=methods, tasks=tasks, models=models, seeds=seeds, overrides=sets)


def finished(root: Path) -> list[dict]:
    return [e.record for e in Store(root).entries("run", status="finished")]


def test_every_preset_parses_and_the_smoke_grid_covers_all_ten_methods():
    assert {"smoke", "table2-roberta-base", "table3-gpt2-medium"} <= set(sweep.preset_names())
    for name in sweep.preset_names():
        assert sweep.load_spec(name).cells()
    smoke = sweep.load_spec("smoke")
    assert len(smoke.methods) == 10 and {(c.task, c.model) for c in smoke.cells()} == {("mrpc", "tiny-roberta"), ("e2e", "tiny-gpt2")}


def test_a_spec_file_with_overrides_presets_and_method_at_preset(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "version: 1\nname: mine\nmethods: [lora, adapter_d@0.3m]\ntasks: [mrpc, stsb]\nmodels: [tiny-roberta]\nseeds: [0, 1]\n"
        "set: [epochs=1]\nper_method: {lora: [r=4]}\nper_task: {stsb: [lr=1e-3]}\n"
    )
    cells = sweep.load_spec(str(path)).cells()
    assert len(cells) == 2 * 2 * 2
    lora_stsb = next(c for c in cells if c.method == "lora" and c.task == "stsb")
    assert lora_stsb.overrides == ("epochs=1", "lr=1e-3", "r=4")
    assert {c.preset for c in cells if c.method == "adapter_d"} == {"0.3m"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nname: x\nmethods: [lora]\n", "missing key(s) tasks"),
        ("version: 1\nname: x\nmethods: [lora]\ntasks: [mrpc]\nseed: [0]\n", "unknown key(s) seed"),
        ("version: 1\nname: x\nmethods: [lora]\ntasks: [mrpc]\nseeds: [a]\n", "seeds must be integers"),
        ("version: 2\nname: x\nmethods: [lora]\ntasks: [mrpc]\n", "version must be 1"),
        (
            "version: 1\nname: x\nmethods: [lora]\ntasks: [mrpc]\nper_method: {lorra: [r=4]}\n",
            "per_method: unknown method of this sweep 'lorra'; did you mean 'lora'?",
        ),
        ("version: 1\nname: x\nmethods: [lora]\ntasks: [mrpc]\nper_task: {sst2: [r=4]}\n", "per_task: unknown task of this sweep 'sst2'"),
        (
            "version: 1\nname: x\nmethods: [bitfit]\ntasks: [mrpc]\npresets: {bitfitt: repo}\n",
            "presets: unknown method of this sweep 'bitfitt'; did you mean 'bitfit'?",
        ),
    ],
)
def test_a_bad_spec_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sweep.load_spec(str(path))


def test_every_cell_is_validated_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "execute", lambda *a, **k: pytest.fail("a cell ran"))
    spec = grid(methods=("lora", "lorra", "bitfit"), sets=(*SHORT, "r=0"))
    with pytest.raises(UsageError) as err:
        sweep.run_sweep(spec, Store(tmp_path))
    text = str(err.value)
    assert "unknown method 'lorra'" in text and "lora/mrpc/tiny-roberta/seed 0" in text and "nothing was run" in text


def test_pairs_a_model_cannot_serve_are_left_out_and_said(tmp_path, capsys):
    spec = grid(methods=("bitfit",), tasks=("mrpc", "e2e"), models=("tiny-roberta",))
    result = sweep.run_sweep(spec, Store(tmp_path))
    assert result.left_out == ["e2e with tiny-roberta (the task generates text; the model cannot)"]
    assert [o.cell.task for o in result.outcomes] == ["mrpc"]
    assert "left out: e2e with tiny-roberta" in capsys.readouterr().out


def test_a_second_sweep_trains_nothing_and_a_new_seed_only_its_cells(tmp_path, monkeypatch):
    store = Store(tmp_path)
    first = sweep.run_sweep(grid(), store)
    assert [o.status for o in first.outcomes] == ["finished", "finished"]
    again = sweep.run_sweep(grid(), store)
    assert again.outcomes == [] and len(again.skipped) == 2
    wider = sweep.run_sweep(grid(seeds=(0, 1)), store)
    assert [o.cell.seed for o in wider.outcomes] == [1, 1] and len(finished(tmp_path)) == 4
    table = sweep.summary_table(wider, store)
    assert "lora" in table and "(n=2)" in table


def test_a_failing_cell_does_not_stop_the_grid_and_is_retried_next_time(tmp_path, monkeypatch):
    real_step = run_loop.training_step

    def fail_for_bitfit(loop, batch, grad_clip):
        if loop.adapted.method.name == "bitfit":
            raise RuntimeError("bitfit broke")
        return real_step(loop, batch, grad_clip)

    monkeypatch.setattr(run_loop, "training_step", fail_for_bitfit)
    result = sweep.run_sweep(grid(methods=("bitfit", "lora")), Store(tmp_path))
    assert [(o.cell.method, o.status) for o in result.outcomes] == [("bitfit", "failed"), ("lora", "finished")]
    assert "bitfit broke" in result.failed[0].error
    monkeypatch.setattr(run_loop, "training_step", real_step)
    retry = sweep.run_sweep(grid(methods=("bitfit", "lora")), Store(tmp_path))
    assert [(o.cell.method, o.status) for o in retry.outcomes] == [("bitfit", "finished")]


class StopAt(runner.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state: runner.TrainState) -> None:
        if state.step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("stop_at", [3, 7])  # mid-epoch, and the last step of an epoch (7 steps each)
def test_a_resumed_run_ends_exactly_as_an_uninterrupted_one(tmp_path, stop_at):
    resolved = resolve_run("ft", "mrpc", "tiny-roberta", overrides=["epochs=2", "batch_size=32", "max_eval_examples=16"])
    whole = runner.run(resolved, store=Store(tmp_path / "whole"), checkpoints=True)
    store = Store(tmp_path / "cut")
    with pytest.raises(RunInterrupted) as stopped:
        runner.run(resolved, store=store, checkpoints=True, callbacks=[StopAt(stop_at)])
    path = Path(str(stopped.value))
    assert read_record(path)["status"] == "interrupted" and store.checkpoint_path(path.stem).exists()
    resumed = runner.run(resolved, store=store, checkpoints=True, resume=path)
    assert [e["train_loss"] for e in resumed["epochs"]] == [e["train_loss"] for e in whole["epochs"]]
    assert resumed["metrics"] == whole["metrics"] and resumed["resumed"][0]["from_step"] == stop_at
    assert not store.checkpoint_path(path.stem).exists() and len(list(store.paths("run"))) == 1


def sweep_cmd(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "peftbench", "sweep", "--methods", "lora,ft", "--tasks", "mrpc", "--models", "tiny-roberta",
            "--set", "epochs=40", "--set", "max_eval_examples=8", "--results-dir", str(root), *extra]  # fmt: skip


@pytest.mark.slow
def test_a_sweep_killed_midway_finishes_on_the_next_start_without_duplicates(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(sweep_cmd(tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "checkpoints").glob("*.safetensors")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    interrupted = [e.record for e in Store(tmp_path).entries("run", status="interrupted")]
    assert len(interrupted) == 1
    again = subprocess.run(sweep_cmd(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    records = [e.record for e in Store(tmp_path).entries("run")]
    assert len(records) == 2 and {r["status"] for r in records} == {"finished"}
    (continued,) = [r for r in records if r["run_id"] == interrupted[0]["run_id"]]
    assert continued["resumed"][0]["from_step"] > 0  # from its checkpoint, not from scratch


def comparable(root: Path) -> dict:
    return {(r["config"]["method"], r["key"]): r["metrics"] for r in finished(root)}


@pytest.mark.slow
def test_workers_and_ray_give_the_records_of_one_process(tmp_path):
    spec = grid(methods=("lora", "bitfit", "adapter_h"))
    sweep.run_sweep(spec, Store(tmp_path / "one"))
    sweep.run_sweep(spec, Store(tmp_path / "two"), jobs=2)
    expected = comparable(tmp_path / "one")
    assert len(expected) == 3 and comparable(tmp_path / "two") == expected
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sweep.run_sweep(spec, Store(tmp_path / "ray"), backend="ray")
    finally:
        ray.shutdown()
    assert comparable(tmp_path / "ray") == expected


def test_the_command_lines_data_dir_wins_over_a_specs(tmp_path):
    """A spec names no machine's folders: `--data-dir` points it at yours (real-cpu-nlg names none at all)."""
    from types import SimpleNamespace

    from peftbench.grid.sweep import grid_from_flags, load_spec

    assert load_spec("real-cpu-nlg").data_dir is None
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: s\nmethods: [lora]\ntasks: [mrpc]\ndata_dir: somewhere\n")
    args = SimpleNamespace(spec=str(spec), overrides=[], seeds=None, data_dir=None)
    assert grid_from_flags(args).data_dir == "somewhere"
    assert grid_from_flags(SimpleNamespace(**{**vars(args), "data_dir": str(tmp_path)})).data_dir == str(tmp_path)


def test_an_unreachable_ray_address_is_one_line_and_exit_2_in_seconds(cli, tmp_path):
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    args = ("sweep", "--methods", "lora", "--tasks", "mrpc", "--models", "tiny-roberta", "--results-dir", str(tmp_path), "--no-report")
    out = cli(*args, "--backend", "ray", "--address", f"127.0.0.1:{port}")
    assert out.code == 2 and len(out.err.strip().splitlines()) == 1 and "no Ray cluster reachable" in out.err, out.err
    assert not list(Store(tmp_path).paths("run"))
    alone = cli(*args, "--address", f"127.0.0.1:{port}")
    assert alone.code == 2 and "needs --backend ray" in alone.err


def test_a_ray_worker_continues_an_interrupted_cell_in_its_own_record(tmp_path):
    """What Ray carries (record and checkpoint to the worker, the continued record back) without a cluster: the
    cell ends in the record it started in, exactly as an uninterrupted run, and its checkpoint is gone."""
    resolved = resolve_run("ft", "mrpc", "tiny-roberta", overrides=["epochs=2", "batch_size=32", "max_eval_examples=16"])
    whole = runner.run(resolved, store=Store(tmp_path / "whole"))
    store = Store(tmp_path / "cut")
    with pytest.raises(RunInterrupted) as stopped:
        runner.run(resolved, store=store, checkpoints=True, callbacks=[StopAt(3)])
    path = Path(str(stopped.value))
    (planned,), _ = sweep.plan([sweep.Cell("ft", "mrpc", "tiny-roberta", 0, ("epochs=2", "batch_size=32", "max_eval_examples=16"))],
                               store, runner.LoadCache())  # fmt: skip
    assert planned.action == "resume" and planned.resume == path
    got = sweep.ray_cell(planned.resolved, sweep.resume_payload(planned, store))
    sweep.store_ray_result(got, planned, store)
    (record,) = [e.record for e in store.entries("run")]
    assert record["run_id"] == path.stem and record["status"] == "finished" and record["resumed"][0]["from_step"] == 3
    assert record["metrics"] == whole["metrics"] and not store.checkpoint_path(path.stem).exists()
