"""Records as a data layer: schema and migration, comparability key, unique ids, liveness, the store's
index, `peftbench runs`, the DataFrame, the programmatic run API with callbacks, and several processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

import peftbench.results as results_api
from peftbench.bench.measure import checkpoint_bytes
from peftbench.cli import main
from peftbench.config.resolve import resolve_run
from peftbench.records.schema import SCHEMA_VERSION, comparability_key, effective_status, liveness, pid_alive, processes_of
from peftbench.records.store import Store, read_record, write_record
from peftbench.regress.compare import differences
from peftbench.run import keeper as run_keeper
from peftbench.run import loop as run_loop
from peftbench.run import plan as run_plan
from peftbench.run import runner
from peftbench.specs import spec_content_hash

FIXTURES = Path(__file__).parent / "fixtures" / "records_v1"
TINY = ("--method", "lora", "--task", "mrpc", "--model", "tiny-roberta", "--max-steps", "2", "--set", "max_eval_examples=8")


def records_in(root: Path) -> list[dict]:
    return [read_record(p) for p in sorted(root.rglob("*.json"))]


# ---------------------------------------------------------------- schema, migration, key


def test_a_version_1_run_record_loads_migrated_and_shows(cli, tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "old")
    (path,) = (tmp_path / "old" / "scratch").glob("*.json")
    assert json.loads(path.read_text())["schema_version"] == 1
    record = read_record(path)
    assert record["schema_version"] == SCHEMA_VERSION and record["kind"] == "run"
    assert record["seed"] == 0 and len(record["key"]) == 16 and record["key_parts"]["specs"] is None
    res = cli("show", record["run_id"][:20], "--results-dir", str(tmp_path / "old"))
    assert res.code == 0, res.err
    assert "lora on mrpc with tiny-roberta" in res.out and "transformers" in res.out


def test_a_version_1_profile_record_shows_without_error(cli):
    (path,) = (FIXTURES / "profile").glob("*.json")
    res = cli("show", str(path))
    assert res.code == 0, res.err
    assert res.out.startswith("profile ") and "methods: [lora]" in res.out


def test_show_of_a_record_missing_fields_prints_dashes(cli, tmp_path):
    path = tmp_path / "bare.json"
    path.write_text(json.dumps({"schema_version": 2, "kind": "run", "status": "failed"}))
    res = cli("show", str(path))
    assert res.code == 0, res.err
    assert "status: failed" in res.out and "- on - with -" in res.out


def test_the_key_ignores_seed_and_preset_label_but_not_values():
    base = {"method": "lora", "preset": None, "training": {"lr": 1e-3, "seed": 0}, "hyperparameters": {"r": 8}}
    other_seed = {**base, "preset": "repo", "training": {"lr": 1e-3, "seed": 7}}
    other_lr = {**base, "training": {"lr": 2e-3, "seed": 0}}
    key = comparability_key(base, {"method": "a"}, {"train": "x"})[0]
    assert comparability_key(other_seed, {"method": "a"}, {"train": "x"})[0] == key
    assert comparability_key(other_lr, {"method": "a"}, {"train": "x"})[0] != key
    assert comparability_key(base, {"method": "b"}, {"train": "x"})[0] != key
    assert comparability_key(base, {"method": "a"}, {"train": "y"})[0] != key


def test_the_number_of_processes_enters_the_key_and_old_records_count_as_one_process():
    """2 processes of batch 8 train with batches of 16: another experiment than 1 process of 8. A one-process key
    is the key records had before processes were counted, so those records still pair with new one-process runs."""
    config = {"method": "lora", "training": {"batch_size": 8, "seed": 0}}
    one, one_parts = comparability_key(config, {"method": "a"}, {"train": "x"})
    two, two_parts = comparability_key(config, {"method": "a"}, {"train": "x"}, processes=2)
    assert one != two and two_parts["processes"] == 2 and "processes" not in one_parts
    assert one == comparability_key(config, {"method": "a"}, {"train": "x"}, processes=1)[0]
    old = read_record(next((FIXTURES / "scratch").glob("*.json")))  # a schema-1 record: its key is migrated as is
    assert processes_of(old) == 1
    a = {"config": config, "key_parts": one_parts}
    b = {"config": config, "key_parts": two_parts}
    assert differences(a, b) == ["processes: 1 -> 2 (batch_size is per process)"]


def test_a_cpu_launch_that_started_one_of_several_processes_is_refused(cli, results, monkeypatch):
    """`accelerate launch --cpu --num_processes 2` runs one process with the rendezvous port set: exit 2, not half a batch."""
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setattr(run_plan, "build_model", lambda *a, **k: pytest.fail("the model was loaded"))
    res = cli("run", *TINY)
    assert res.code == 2 and "started one process" in res.err and "--multi_gpu --num_processes N" in res.err
    assert not results.exists() or not records_in(results)


def test_spec_hash_is_content_not_layout(tmp_path):
    a, b, c = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    a.write_text("version: 1\nname: x\nhyperparameters: {r: 8, alpha: 8}\n")
    b.write_text("# a comment\nname: x\nversion: 1\nhyperparameters:\n  alpha: 8\n  r: 8\n")
    c.write_text("version: 1\nname: x\nhyperparameters: {r: 16, alpha: 8}\n")
    assert spec_content_hash(a) == spec_content_hash(b) != spec_content_hash(c)


def test_resolved_runs_differing_only_by_seed_share_the_key_parts():
    one = resolve_run("lora", "mrpc", "tiny-roberta", overrides=["seed=1"])
    two = resolve_run("lora", "mrpc", "tiny-roberta", overrides=["seed=2"])
    assert one.seed == 1 and two.seed == 2 and one.spec_hashes == two.spec_hashes
    data = {"train": "h"}
    assert comparability_key(one.config.to_dict(), one.spec_hashes, data) == comparability_key(two.config.to_dict(), two.spec_hashes, data)


def test_checkpoint_bytes_from_shapes_equal_a_real_safetensors_file():
    state = {
        "b.lora_A": torch.zeros(8, 64),
        "a.bias": torch.zeros(7, dtype=torch.float16),
        "z": torch.zeros(2, 3, dtype=torch.bfloat16),
        "n": torch.zeros(1, dtype=torch.int64),
    }
    assert checkpoint_bytes(state) == len(save(state))


# ---------------------------------------------------------------- liveness and the store


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_running_record_whose_process_is_gone_is_stale(tmp_path):
    record = {"schema_version": 2, "kind": "run", "status": "running", **liveness()}
    assert effective_status(record) == "running"  # this very process
    assert effective_status({**record, "pid": dead_pid()}) == "stale"
    elsewhere = {**record, "host": "another-host"}
    assert effective_status(elsewhere) == "running"
    assert effective_status({**elsewhere, "heartbeat_at": "2020-01-01T00:00:00+00:00"}) == "stale"
    assert effective_status({**record, "status": "finished", "pid": dead_pid()}) == "finished"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_an_unreaped_process_counts_as_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while time.time() < deadline and Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        time.sleep(0.05)
    try:
        assert not pid_alive(proc.pid)  # a zombie: ended, its parent (this test) has not waited yet
        assert pid_alive(os.getpid())
    finally:
        proc.wait()


def test_pid_alive_is_true_for_live_processes_only():
    assert pid_alive(os.getpid()) and pid_alive(1)  # pid 1 always lives (for a non-root user os.kill says EPERM: alive all the same)
    assert not pid_alive(dead_pid())
    assert not pid_alive(0) and not pid_alive(-1)  # process groups, never one process (os.kill(0, 0) would succeed)


def test_the_store_skips_a_corrupt_file_and_names_it(tmp_path, capsys):
    store = Store(tmp_path)
    good = store.claim("run", "good")
    config = {"method": "lora", "task": "mrpc", "model": "tiny-roberta"}
    write_record(good, {"schema_version": 2, "kind": "run", "run_id": "good", "status": "finished", "config": config})
    (tmp_path / "scratch" / "broken.json").write_text("{not json")
    assert [e.record["run_id"] for e in store.entries("run")] == ["good"]
    assert "broken.json" in capsys.readouterr().err
    assert [e.record["run_id"] for e in store.entries("run", method="bitfit")] == []


def test_claims_are_exclusive_and_files_get_the_umask_permissions(tmp_path):
    store = Store(tmp_path)
    path = store.claim("run", "x")
    with pytest.raises(FileExistsError):
        store.claim("run", "x")
    write_record(path, {"schema_version": 2})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# ---------------------------------------------------------------- the runner, in process


class Counting(runner.Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.epochs: list[int] = []

    def on_step_end(self, state: runner.TrainState) -> None:
        assert state.optimizer is not None and state.scheduler is not None and state.adapted is not None
        self.steps.append(state.step)

    def on_epoch_end(self, state: runner.TrainState, entry: dict) -> None:
        self.epochs.append(entry["epoch"])
        state.record["hooks"]["counting"] = len(self.steps)


def test_run_api_calls_callbacks_and_returns_the_record(tmp_path):
    resolved = resolve_run("bitfit", "mrpc", "tiny-roberta", overrides=["max_steps=5", "batch_size=64", "max_eval_examples=8"])
    hook = Counting()
    record = runner.run(resolved, store=Store(tmp_path), callbacks=[hook])
    assert record["status"] == "finished" and hook.steps == [1, 2, 3, 4, 5]
    assert hook.epochs == list(range(1, len(record["epochs"]) + 1))
    (saved,) = records_in(tmp_path)
    assert saved["hooks"]["counting"] == 5 and saved["run_id"] == record["run_id"]
    assert saved["measurements"]["checkpoint_bytes"] > saved["params"]["trainable"] * 4


def test_a_non_finite_loss_fails_the_run_with_its_step(cli, results, monkeypatch):
    monkeypatch.setattr(run_loop, "training_step", lambda *a, **k: float("nan"))
    res = cli("run", *TINY)
    assert res.code == 1 and "training loss is nan at step 1" in res.err and "Traceback" not in res.err
    (record,) = records_in(results)
    assert record["status"] == "failed" and "step 1" in record["error"]


def test_out_of_memory_is_recorded_as_failed_with_that_reason(cli, results, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(run_loop, "training_step", oom)
    assert cli("run", *TINY).code == 1
    (record,) = records_in(results)
    assert record["status"] == "failed" and record["error"].startswith("out of memory")


def test_a_full_disk_mid_run_keeps_the_last_good_record(cli, results, monkeypatch):
    import errno

    from peftbench.records import store as store_module

    real_write, calls = store_module.write_record, []

    def full_after_first(path, record):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, record)

    monkeypatch.setattr(run_keeper, "write_record", full_after_first)
    res = cli("run", *TINY)
    assert res.code == 1 and "No space left on device" in res.err and "Traceback" not in res.err
    (record,) = records_in(results)
    assert record["status"] == "running" and record["epochs"] == []  # the first write, intact
    assert not list(results.rglob("*.tmp"))


@pytest.mark.parametrize("make_bad", ["file_as_results", "file_as_scratch", "read_only"])
def test_an_unusable_results_directory_fails_before_any_model_loads(cli, tmp_path, monkeypatch, make_bad):
    root = tmp_path / "res"
    if make_bad == "file_as_results":
        root.write_text("")
    elif make_bad == "file_as_scratch":
        root.mkdir()
        (root / "scratch").write_text("")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        root.mkdir()
        root.chmod(0o500)
    monkeypatch.setattr(run_plan, "build_model", lambda *a, **k: pytest.fail("the model was loaded"))
    res = cli("run", *TINY, "--results-dir", str(root))
    assert res.code == 2 and "Traceback" not in res.err and str(root) in res.err
    assert len(res.err.strip().splitlines()) == 1


# ---------------------------------------------------------------- real processes


def peftbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "peftbench", *args]


def quiet_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


@pytest.mark.slow
def test_identical_runs_started_together_each_keep_their_record(tmp_path):
    procs = [
        subprocess.Popen(
            peftbench_cmd("run", *TINY, "--results-dir", str(tmp_path)), env=quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    records = records_in(tmp_path)
    assert len(records) == 4 and len({r["run_id"] for r in records}) == 4
    assert {r["status"] for r in records} == {"finished"} and len({r["key"] for r in records}) == 1
    frame = results_api.load(tmp_path)
    assert len(frame) == 4 and frame["key"].nunique() == 1


@pytest.mark.slow
def test_a_killed_run_is_listed_as_stale(cli, tmp_path):
    proc = subprocess.Popen(
        peftbench_cmd(
            "run", "--method", "ft", "--task", "mrpc", "--model", "tiny-roberta", "--epochs", "100", "--results-dir", str(tmp_path)
        ),
        env=quiet_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not [p for p in tmp_path.rglob("*.json") if p.stat().st_size]:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = cli("runs", "--results-dir", str(tmp_path))
    assert res.code == 0 and " stale " in res.out and " ft " in res.out
    assert "stale" in cli("runs", "--status", "stale", "--results-dir", str(tmp_path)).out
    assert cli("runs", "--status", "finished", "--results-dir", str(tmp_path)).out.strip() == "no records"


# like `timeout CMD`; SIGHUP reset first: a test session started under nohup would pass its ignored SIGHUP on
SUPERVISOR = "import signal, subprocess, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); subprocess.Popen(sys.argv[1:]).wait()"


@pytest.mark.slow
@pytest.mark.parametrize("detached", [False, True], ids=["attached", "nohup"])
def test_a_run_dies_with_its_killed_supervisor_unless_detached(cli, tmp_path, detached):
    """`timeout 600 peftbench run ... & kill -9 $!` kills `timeout`: the run must not train on as an orphan."""
    long_run = ("--method", "bitfit", "--task", "mrpc", "--model", "tiny-roberta", "--epochs", "100")
    command = peftbench_cmd("run", *long_run, "--results-dir", str(tmp_path))
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, *(["nohup"] if detached else []), *command],
        env=quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not [p for p in tmp_path.rglob("*.json") if p.stat().st_size]:
        time.sleep(0.2)
    (record,) = records_in(tmp_path)
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()
    deadline = time.time() + 10
    while time.time() < deadline and pid_alive(record["pid"]):
        time.sleep(0.05)
    try:
        assert pid_alive(record["pid"]) == detached
        status = "running" if detached else "stale"
        assert f" {status} " in cli("runs", "--results-dir", str(tmp_path)).out
    finally:
        if pid_alive(record["pid"]):
            os.kill(record["pid"], signal.SIGKILL)


def test_runs_lists_filters_and_dumps_json(cli, results):
    assert cli("run", *TINY).code == 0
    assert cli("run", *TINY, "--seed", "3").code == 0
    listing = cli("runs")
    assert listing.code == 0 and len(listing.out.strip().splitlines()) == 3 and "accuracy" in listing.out
    assert len(cli("runs", "--seed", "3").out.strip().splitlines()) == 2
    dumped = json.loads(cli("runs", "--json").out)
    assert {r["seed"] for r in dumped} == {0, 3} and len({r["key"] for r in dumped}) == 1
    frame = results_api.load(results, method="lora")
    assert set(frame["seed"]) == {0, 3} and frame["key"].nunique() == 1
    assert {"main_value", "accuracy", "params_method", "train_tokens_per_s", "peak_rss_bytes", "wall_s"} <= set(frame.columns)
    assert frame.groupby(["method", "task"])["main_value"].median().notna().all()
    assert results_api.load(results, method="bitfit").empty


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dropout_free_model(folder: Path) -> Path:
    """tiny-roberta without dropout, saved as a model folder: then nothing random differs between the processes,
    and 2 processes of 8 must compute what 1 process of 16 computes, up to the order of float sums."""
    from peftbench.models.build import build_model, load_tokenizer
    from peftbench.models.presets import resolve_model

    source = resolve_model("tiny-roberta")
    model = build_model(source, "classification", seed=0)
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
    model.save_pretrained(folder)
    load_tokenizer(source, "roberta").save_pretrained(folder)
    return folder


LAUNCHERS = {  # the commands the README documents, with this interpreter
    "accelerate": [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "{port}"],
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "{port}"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_two_launched_processes_average_gradients_and_write_one_record(tmp_path, launcher):
    """Two processes of batch 8 train exactly what one process of batch 16 trains (the same 16 examples per step, the
    gradients averaged), and only the main process writes. Without averaging each process would step on its own 8."""
    model = str(dropout_free_model(tmp_path / "model"))
    common = ("run", "--method", "lora", "--task", "mrpc", "--model", model, "--data-dir", "sample", "--max-steps", "6")
    common += ("--set", "max_train_examples=96", "--set", "max_eval_examples=32", "--set", "lr=1e-2")  # 6 full steps of 16
    one, two = tmp_path / "one", tmp_path / "two"
    single = subprocess.run(
        peftbench_cmd(*common, "--set", "batch_size=16", "--results-dir", str(one)), env=quiet_env(), capture_output=True, text=True
    )
    assert single.returncode == 0, single.stderr[-2000:]
    launch = [arg.replace("{port}", str(free_port())) for arg in LAUNCHERS[launcher]]
    double = subprocess.run(
        [*launch, "-m", "peftbench", *common, "--set", "batch_size=8", "--results-dir", str(two)],
        env=quiet_env(),
        capture_output=True,
        text=True,
    )
    assert double.returncode == 0, double.stderr[-2000:]
    (a,), (b,) = records_in(one), records_in(two)
    assert a["env"]["processes"] == 1 and b["env"]["processes"] == 2
    assert b["key_parts"]["processes"] == 2 and a["key"] != b["key"]  # a 2x8 run is not paired with a 1x16 one
    losses = [[e["train_loss"] for e in r["epochs"]] for r in (a, b)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    for name, metric in a["metrics"].items():
        assert metric["value"] == pytest.approx(b["metrics"][name]["value"], abs=1e-9), name


def wait_for_record(root: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not [p for p in root.rglob("*.json") if p.stat().st_size]:
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "args", "when"),
    [
        (signal.SIGINT, ("--method", "ft", "--task", "mrpc", "--epochs", "100"), 0.5),  # imports
        (signal.SIGTERM, ("--method", "ft", "--task", "mrpc", "--epochs", "100"), 2.5),  # imports or model building
        (signal.SIGTERM, ("--method", "lora", "--task", "mrpc", "--epochs", "100"), "record+1"),  # training
        (signal.SIGINT, ("--method", "lora", "--task", "e2e", "--max-steps", "1", "--set", "num_beams=4"), "record+4"),  # decoding
    ],
)
def test_a_signal_at_any_moment_ends_cleanly(tmp_path, sig, args, when):
    """Exit 130 with one line and no traceback; any record left is complete and says interrupted (or finished)."""
    model = "tiny-gpt2" if "e2e" in args else "tiny-roberta"
    cmd = peftbench_cmd("run", *args, "--model", model, "--results-dir", str(tmp_path))
    proc = subprocess.Popen(cmd, env=quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if isinstance(when, str):
        wait_for_record(tmp_path)
        time.sleep(float(when.split("+")[1]))
    else:
        time.sleep(when)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    records = records_in(tmp_path)
    if proc.returncode == 0:  # it finished first: fine, as long as the record says so
        assert [r["status"] for r in records] == ["finished"]
        return
    # 130, or death by SIGINT itself (-2) when CPython saw the interrupt in its own start-up: a shell shows 130 for both
    assert proc.returncode in (130, -signal.SIGINT), err
    assert err.strip().splitlines()[-1].startswith("peftbench: interrupted")
    assert all(r["status"] == "interrupted" and r["finished_at"] for r in records)
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_pool_worker_is_tied_to_its_pool_even_when_started_detached(monkeypatch):
    """A `nohup`ped sweep passes its ignored SIGHUP to its workers: they must still die with it."""
    from peftbench.run import stop

    monkeypatch.setattr(signal, "getsignal", lambda sig: signal.SIG_IGN if sig == signal.SIGHUP else signal.SIG_DFL)
    monkeypatch.setattr(stop.TIE, "forced", False)
    assert stop.outlives_parent()
    stop.tie_workers_to_parent()
    assert not stop.outlives_parent()


# ---------------------------------------------------------------- the schema on write, and the accessors


def declared_run() -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "run",
        "run_id": "r1",
        "status": "finished",
        "config": {"method": "lora", "task": "mrpc", "model": "tiny-roberta"},
        "params": {"method": 4096, "trainable": 8386},
        "metrics": {"f1": {"value": 0.5, "higher_is_better": True}, "pearson": {"value": None, "higher_is_better": True}},
        "main_metric": "f1",
    }


def test_a_writer_may_write_declared_fields_only_while_a_reader_accepts_more():
    from peftbench.records.schema import check_written, schema_problem

    assert schema_problem(declared_run(), strict=True) is None
    for where, record in (("record", {**declared_run(), "surprise": 1}), ("params", {**declared_run(), "params": {"method": 1, "x": 2}})):
        assert schema_problem(record) is None  # a newer peftbench may have added the field: readers take it
        assert f"{where}: undeclared field" in schema_problem(record, strict=True)
        with pytest.raises(ValueError, match="peftbench bug"):
            check_written(record)


def test_records_of_schema_1_still_load_and_show(capsys):
    paths = sorted(FIXTURES.rglob("*.json"))
    assert {p.parent.name for p in paths} == {"scratch", "profile"}
    for path in paths:
        record = read_record(path)  # migrated and checked against today's schema
        assert record["schema_version"] == SCHEMA_VERSION and record["kind"] in ("run", "latency", "profile")
        assert main(["show", str(path)]) == 0, path.name
    assert "Traceback" not in capsys.readouterr().err


def test_metric_value_is_the_number_or_none():
    from peftbench.records.schema import higher_is_better, metric_value, metric_values

    record = declared_run()
    assert metric_value(record, "f1") == 0.5 and higher_is_better(record, "f1") is True
    assert metric_value(record, "pearson") is None  # NaN is stored as null
    assert metric_value(record, "accuracy") is None and higher_is_better(record, "accuracy") is None
    assert metric_value({"metrics": {"f1": {"value": True}}}, "f1") is None  # a boolean is not a score
    assert metric_value({"metrics": {"f1": [1]}}, "f1") is None
    assert metric_value(record, "f1", {"metrics": {"f1": {"value": 0.25}}}) == 0.25  # one epoch's entry
    assert metric_values(record) == {"f1": 0.5, "pearson": None}
