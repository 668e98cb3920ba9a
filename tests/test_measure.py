"""Measurement helpers, the latency protocol and the training profile.

No timing assertions here: the machines that run tests are shared and noisy; speed targets
belong in `benchmarks/`. Tiny models, tiny grids, one thread.
"""

import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch

from peftbench.bench import common, measure
from peftbench.bench.common import rotated, split_overrides, verdict
from peftbench.bench.options import ProfileOptions
from peftbench.bench.profile import Job, run_isolated, run_profile
from peftbench.bench.variants import BASE, CONTROL, FLOOR
from peftbench.errors import UsageError
from peftbench.methods import METHODS

MiB = 2**20


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """`--threads 1` (used here to keep busy machines from thrashing) must not leak into other tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_peak_rss_sees_a_200_mib_tensor_allocated_in_a_fresh_process():
    code = textwrap.dedent(
        """
        import json, torch
        from peftbench.bench.measure import current_rss_bytes, peak_rss_bytes
        before = {"peak": peak_rss_bytes(), "now": current_rss_bytes()}
        x = torch.ones(50 * 2**20)  # 200 MiB of float32, written, so resident
        print(json.dumps({**before, "after": peak_rss_bytes(), "size": x.numel() * x.element_size()}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["size"] == 200 * MiB
    assert seen["after"] >= seen["now"] + 0.95 * seen["size"]
    assert seen["after"] > seen["peak"]  # importing torch may peak above today's RSS; the tensor goes higher


def test_a_reset_forgets_an_earlier_peak_so_runs_in_one_process_are_measured_apart():
    """A sweep runs its cells in one process: each run's peak starts from its own phases, not the cells before."""
    code = textwrap.dedent(
        """
        import json, torch
        from peftbench.bench.measure import peak_rss_bytes, reset_peak_rss
        x = torch.ones(50 * 2**20)  # an earlier run's 200 MiB
        high = peak_rss_bytes()
        del x
        supported = reset_peak_rss()
        print(json.dumps({"high": high, "after": peak_rss_bytes(), "supported": supported}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    if not seen["supported"]:
        pytest.skip("/proc/self/clear_refs is not writable here (not Linux)")
    assert seen["after"] < seen["high"] - 150 * MiB


def test_a_worker_does_not_inherit_the_peak_memory_of_its_parent():
    """`ru_maxrss` survives fork + exec on Linux: a worker would report its parent's old peak as its own."""
    code = textwrap.dedent(
        """
        import subprocess, sys
        from peftbench.bench.measure import peak_rss_bytes
        x = bytearray(1024 * 2**20)  # 1 GiB, touched, then freed: the parent's peak
        x[::4096] = b"\\1" * len(x[::4096])
        del x
        child = "from peftbench.bench.measure import peak_rss_bytes; print(peak_rss_bytes())"
        worker = int(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout)
        print(peak_rss_bytes(), worker)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    parent, worker = map(int, out.stdout.split())
    assert parent >= 1024 * MiB
    assert worker < parent - 512 * MiB


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_sees_a_200_mib_tensor():
    device = torch.device("cuda")
    measure.reset_peaks(device)
    before = torch.cuda.memory_allocated(device)
    x = torch.ones(50 * MiB, device=device)
    peaks = measure.cuda_peaks(device)
    assert peaks["max_memory_allocated"] - before >= 200 * MiB
    assert peaks["max_memory_reserved"] >= peaks["max_memory_allocated"]
    del x


def test_throughput_leaves_out_the_slow_warm_up_steps():
    timer = measure.StepTimer(warmup=1)
    timer.add(5.0, tokens=100, samples=4)  # first step: compilation, allocator, caches
    for _ in range(3):
        timer.add(0.1, tokens=100, samples=4)
    s = timer.summary()
    assert s["warmup_steps_excluded"] == 1 and s["steps_measured"] == 3
    assert s["tokens_per_s"] == pytest.approx(1000.0)
    assert s["samples_per_s"] == pytest.approx(40.0)
    assert s["seconds_per_step"] == pytest.approx(0.1)


def test_eval_throughput_counts_unmasked_tokens_of_every_forward():
    model = KwModel()
    counter = measure.ForwardCounter()
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    with counter.attach(model):
        for _ in range(3):  # called with keyword arguments, as the pipelines do
            model(input_ids=torch.zeros(2, 4, dtype=torch.long), attention_mask=mask)
        grown = torch.tensor([[1, 1, 1, 0, 1], [1, 1, 0, 0, 1]])  # a decoding step with a cache: one new position each
        model(input_ids=torch.zeros(2, 1, dtype=torch.long), attention_mask=grown)
    s = counter.summary()
    assert (s["forward_calls"], s["samples"], s["tokens"]) == (4, 8, 3 * 5 + 2)
    assert s["tokens_per_s"] > 0 and s["samples_per_s"] > 0
    model(input_ids=torch.zeros(2, 4, dtype=torch.long), attention_mask=mask)  # detached: not counted
    assert counter.summary()["forward_calls"] == 4


class KwModel(torch.nn.Module):
    def forward(self, input_ids, attention_mask=None):
        return input_ids.float().sum()


def test_a_phase_adds_up_its_time_and_keeps_its_highest_peak_memory(monkeypatch):
    clock = iter([10.0, 10.5, 20.0, 20.25, 30.0, 31.0])  # perf_counter at each entry and exit
    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    rss = iter([300 * MiB, 200 * MiB])  # the second entry's peak is lower: the phase keeps the first
    monkeypatch.setattr(measure, "peak_rss_bytes", lambda: next(rss))
    times, peaks = {}, {}
    for _ in range(2):  # one phase entered twice, as once per epoch
        with measure.Phase(times, "eval", torch.device("cpu"), peaks):
            pass
    assert times == {"eval": pytest.approx(0.75)} and peaks == {"eval": {"peak_rss_bytes": 300 * MiB}}
    with measure.Phase(times, "setup"):  # without device and peaks: time only
        pass
    assert times["setup"] == pytest.approx(1.0) and "setup" not in peaks


def test_optimizer_state_is_measured_from_adamw_tensors():
    layer = torch.nn.Linear(10, 10)  # 110 parameters
    optimizer = torch.optim.AdamW(layer.parameters())
    assert measure.optimizer_state_bytes(optimizer) == 0
    layer(torch.ones(2, 10)).sum().backward()
    assert measure.gradient_bytes(layer.parameters()) == 110 * 4
    optimizer.step()
    moments = 2 * 110 * 4  # exp_avg and exp_avg_sq, fp32
    assert moments <= measure.optimizer_state_bytes(optimizer) <= moments + 2 * 8  # plus a scalar step per tensor


def test_summarize_gives_median_and_quartiles():
    s = measure.summarize([1, 2, 3, 4, 5])
    assert (s["n"], s["median"], s["q1"], s["q3"], s["iqr"], s["min"], s["max"]) == (5, 3, 2, 4, 2, 1, 5)
    assert measure.summarize([]) == {"n": 0}


def test_labelling_rule():
    control = {"n": 20, "q1": 0.98, "q3": 1.02}
    assert verdict({"n": 20, "q1": 1.03, "q3": 1.10}, control) == "distinguishable (slower)"
    assert verdict({"n": 20, "q1": 1.01, "q3": 1.10}, control) == "within noise"  # overlaps the A/A interval
    assert verdict({"n": 20, "q1": 0.90, "q3": 0.97}, control) == "distinguishable (faster)"
    shifted = {"n": 20, "q1": 0.95, "q3": 0.97}  # a control whose interval excludes 1.0: 1.0 still bounds
    assert verdict({"n": 20, "q1": 0.99, "q3": 1.05}, shifted) == "within noise"
    assert verdict({"n": 3, "q1": 2.0, "q3": 3.0}, control).startswith("too few rounds")


def test_rotation_puts_every_variant_in_every_position():
    names = ["a", "b", "c"]
    orders = [rotated(names, r) for r in range(3)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert all(sorted(o[i] for o in orders) == names for i in range(3))


def test_rotated_rounds_time_every_call_once_per_round_in_rotated_order():
    log = []
    calls = {name: (lambda name=name: log.append(name)) for name in ("a", "b", "c")}
    timing = common.rotated_rounds(calls, torch.device("cpu"), rounds=4, warmup=2)
    assert log[:6] == ["a", "b", "c", "b", "c", "a"]  # the warm-up rounds rotate too
    assert timing["orders"] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert log[6:] == [name for order in timing["orders"] for name in order]  # each round ran in its recorded order
    assert all(len(timing["times_s"][n]) == 4 and len(timing["warmup_times_s"][n]) == 2 for n in calls)
    assert timing["rounds"] == 4 and timing["errors"] == {}


def test_rotated_rounds_can_size_the_rounds_from_the_warm_up():
    seen = []
    calls = {"a": lambda: None, "b": lambda: None}
    timing = common.rotated_rounds(calls, torch.device("cpu"), rounds=lambda s: seen.append(s) or 3, warmup=2)
    warm = timing["warmup_times_s"]
    assert seen == [pytest.approx(warm["a"][-1] + warm["b"][-1])]  # the last warm-up round's seconds, asked once
    assert timing["rounds"] == 3 and all(len(t) == 3 for t in timing["times_s"].values())


def test_rotated_rounds_drop_a_failing_call_and_keep_the_others_paired():
    count = {"n": 0}

    def flaky():
        count["n"] += 1
        if count["n"] == 3:
            raise RuntimeError("boom")

    calls = {"a": lambda: None, "bad": flaky, "c": lambda: None}
    timing = common.rotated_rounds(calls, torch.device("cpu"), rounds=4, warmup=1, catch=True)
    assert timing["errors"] == {"bad": "RuntimeError: boom"}
    assert set(timing["times_s"]) == {"a", "c"} and all(len(t) == 4 for t in timing["times_s"].values())
    with pytest.raises(RuntimeError, match="boom"):
        count["n"] = 0
        common.rotated_rounds(calls, torch.device("cpu"), rounds=4, warmup=1)


def test_paired_ratios_divide_by_the_reference_of_the_same_round():
    ratios = common.paired_ratios({"ref": [2.0, 4.0], "x": [3.0, 2.0]}, "ref")
    assert ratios == {"ref": [1.0, 1.0], "x": [1.5, 0.5]}


def test_set_goes_to_the_methods_that_have_the_key():
    assert split_overrides(["lora", "ft"], ["r=4"]) == {"lora": ["r=4"], "ft": []}
    assert split_overrides(["lora", "ft"], ["lora.alpha=16"]) == {"lora": ["alpha=16"], "ft": []}
    with pytest.raises(UsageError, match="bottleneck"):
        split_overrides(["lora", "ft"], ["bottleneck=8"])
    with pytest.raises(UsageError):
        split_overrides(["lora"], ["nope.r=4"])


def test_set_takes_the_grammar_of_run_plus_a_method_prefix():
    """`run`'s `key=value` and `section.key=value`, to every listed method that has the key; `METHOD.key=value` for one."""
    methods = ["lora", "relora", "adapter_h"]
    routed = split_overrides(methods, ["hyperparameters.r=4"])
    assert routed == {"lora": ["hyperparameters.r=4"], "relora": ["hyperparameters.r=4"], "adapter_h": []}
    assert split_overrides(methods, ["relora.r=2", "bottleneck=8"]) == {"lora": [], "relora": ["r=2"], "adapter_h": ["bottleneck=8"]}
    with pytest.raises(UsageError, match=r"^--set lr: .* set only hyperparameters, not training\.lr$"):
        split_overrides(methods, ["lr=1e-4"])  # a run setting: one line that says so
    with pytest.raises(UsageError, match="not generation.num_beams"):
        split_overrides(methods, ["lora.generation.num_beams=2"])
    with pytest.raises(UsageError, match="unknown key 'bottlneck' for lora, relora, adapter_h; did you mean 'bottleneck'"):
        split_overrides(methods, ["bottlneck=8"])
    with pytest.raises(UsageError, match="expects key=value"):
        split_overrides(methods, ["r"])


def test_the_cli_and_the_benchmarks_build_the_same_options_objects():
    from peftbench.bench.options import LatencyOptions
    from peftbench.cli import build_parser

    argv = ["latency", "--model", "tiny-gpt2", "--methods", "lora, ft", "--batch", "2", "--seq", "8,16", "--set", "r=4"]
    options = LatencyOptions.from_args(build_parser().parse_args([*argv, "--results-dir", "out"]))
    assert options == LatencyOptions("tiny-gpt2", ("lora", "ft"), cells=((2, 8), (2, 16)), overrides=("r=4",), results=options.results)
    assert options.results.name == "out" and (options.warmup, options.budget_s, options.rounds) == (3, 30.0, None)
    args = build_parser().parse_args(["profile", "--model", "tiny-roberta", "--methods", "ft,lora", "--steps", "4", "--in-process"])
    options = ProfileOptions.from_args(args)
    assert (options.methods, options.rounds, options.warmup, options.memory) == (("ft", "lora"), 4, 1, False)
    assert (options.batch, options.seq) == (8, 128)


def test_latency_protocol_on_tiny_gpt2(cli, results):
    extra = [m for m in ("adapter_h", "adapter_l") if m in METHODS]
    methods = ["lora", "ft", *extra]
    r = cli(
        "latency",
        "--model",
        "tiny-gpt2",
        "--methods",
        ",".join(methods),
        "--batch",
        "2,1",
        "--seq",
        "16,8",
        "--rounds",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
    )
    assert r.code == 0, r.err
    assert "lora merged" in r.out and CONTROL in r.out and "verdict rule" in r.out
    for name in methods:
        assert f"| {name} " in r.out
    (path,) = (results / "latency").glob("*.json")
    record = json.loads(path.read_text())
    assert record["kind"] == "latency" and record["env"]["torch"] == torch.__version__
    names = [v["name"] for v in record["variants"]]
    assert names[:2] == [BASE, CONTROL] and "lora merged" in names and "ft merged" not in names
    assert [c["batch"] for c in record["cells"]] == [2, 1] and [c["seq"] for c in record["cells"]] == [16, 8]
    assert record["output_max_abs_diff_vs_base"]["lora merged"] < 1e-4  # B = 0: same function as the base
    for cell in record["cells"]:
        orders = cell["orders"]
        assert cell["rounds"] == len(orders) == 3
        assert all(sorted(o) == sorted(names) for o in orders)
        assert orders[1] == rotated(orders[0], 1) and orders[2] == rotated(orders[0], 2)  # the order rotates
        base = cell["variants"][BASE]["times_ms"]
        for name in names[1:]:
            v = cell["variants"][name]
            assert v["ratios"] == pytest.approx([t / b for t, b in zip(v["times_ms"], base, strict=True)])  # paired per round
            assert v["ratio"]["median"] == pytest.approx(sorted(v["ratios"])[1])
        assert cell["variants"][CONTROL]["verdict"].startswith("noise floor")


def test_latency_rejects_bad_input_before_work(cli):
    assert cli("latency", "--model", "tiny-gpt2", "--methods", "lorra").code == 2
    assert cli("latency", "--model", "tiny-gpt2", "--methods", "lora", "--batch", "1,2,3", "--seq", "8,16").code == 2
    assert cli("latency", "--model", "tiny-gpt2", "--methods", "lora", "--set", "bottleneck=4").code == 2
    assert cli("latency", "--model", "tiny-gpt2", "--methods", "lora", "--batch", "1", "--seq", "5000").code == 2
    assert cli("latency", "--model", "gpt3-175b", "--methods", "lora").code == 2


def test_profile_times_every_variant_in_paired_rotated_rounds(cli, results):
    r = cli(
        "profile",
        "--model",
        "tiny-roberta",
        "--methods",
        "ft,lora",
        "--batch",
        "2",
        "--seq",
        "16",
        "--rounds",
        "3",
        "--warmup",
        "1",
        "--no-memory",
        "--threads",
        "1",
    )
    assert r.code == 0, r.err
    assert "| floor " in r.out and "| lora " in r.out and "rotated" in r.out and "not measured" in r.out
    (path,) = (results / "profile").glob("*.json")
    record = json.loads(path.read_text())
    rows = {row["method"]: row for row in record["rows"]}
    assert list(rows) == [FLOOR, "ft", "lora"]
    timing = record["timing"]
    assert timing["rounds"] == len(timing["orders"]) == 3 and timing["warmup_rounds"] == 1
    assert timing["orders"] == [[FLOOR, "ft", "lora"], ["ft", "lora", FLOOR], ["lora", FLOOR, "ft"]]  # every position once
    floor, ft, lora = rows[FLOOR], rows["ft"], rows["lora"]
    for row in rows.values():
        assert len(row["step_times_s"]) == 3 and len(row["warmup_times_s"]) == 1 and row["memory"] is None
        assert row["step_s"] == pytest.approx(sorted(row["step_times_s"])[1])
        for ref in (ft, floor):  # paired: the ratio of the same round, then the median
            paired = row["paired"][f"vs_{ref['method']}"]
            per_round = [t / b for t, b in zip(row["step_times_s"], ref["step_times_s"], strict=True)]
            assert paired["per_round"] == pytest.approx(per_round)
            assert paired["median"] == pytest.approx(sorted(per_round)[1])
            assert paired["q1"] <= paired["median"] <= paired["q3"]
            assert row["ratios"][f"step_vs_{ref['method']}"] == pytest.approx(paired["median"])
    assert ft["paired"]["vs_ft"]["per_round"] == [1.0, 1.0, 1.0]
    assert floor["optimizer_state_bytes"] == 0 and floor["params"]["trainable"] == 0 and floor["gradient_bytes"] > 0
    assert record["forward"]["time_s"]["median"] > 0
    assert 0 < lora["optimizer_state_bytes"] < ft["optimizer_state_bytes"]
    assert ft["optimizer_state_bytes"] >= 2 * 4 * ft["params"]["trainable"]  # AdamW: two fp32 moments per value
    assert lora["params"]["trainable"] < ft["params"]["trainable"]
    assert set(lora["ratios"]) == {"step_vs_floor", "step_vs_ft", "optimizer_state_vs_ft"}  # no peak memory measured


def test_profile_takes_peak_memory_from_one_fresh_process_per_variant(monkeypatch, results):
    jobs = []

    def fake_isolated(job):
        jobs.append(job)
        peak = {None: 100, "ft": 400, "lora": 200}[job.method]
        return {"method": job.method or FLOOR, "memory": {"peak_bytes": peak * MiB, "added_by_steps_bytes": MiB}}

    monkeypatch.setattr("peftbench.bench.profile.run_isolated", fake_isolated)
    options = ProfileOptions(
        "tiny-roberta", ("ft", "lora"), batch=2, seq=8, rounds=1, warmup=0, overrides=("r=2",), threads=1, results=results
    )
    result = run_profile(options)
    assert not result.failed
    assert [j.method for j in jobs] == [None, "ft", "lora"]
    assert [j.overrides for j in jobs] == [(), (), ("r=2",)]
    rows = {row["method"]: row for row in result.record["rows"]}
    assert rows["lora"]["ratios"]["peak_memory_vs_ft"] == pytest.approx(0.5)
    assert rows["lora"]["params"]["trainable"] < rows["ft"]["params"]["trainable"]
    assert "fresh process per variant" in result.record["protocol"]["memory"]


def test_the_memory_worker_measures_one_variant_in_a_fresh_process():
    row = run_isolated(Job(model="tiny-roberta", method="lora", batch=2, seq=16, steps=1, threads=1))
    assert "error" not in row, row.get("error")
    assert row["memory"]["source"].startswith("peak RSS of a fresh process") or row["device"] == "cuda"
    assert row["memory"]["peak_bytes"] > 0 and row["optimizer_state_bytes"] > 0


def test_a_failing_method_is_reported_and_the_others_still_measured(cli, monkeypatch):
    def boom(self, model, config, arch):
        raise RuntimeError("adapter exploded")

    monkeypatch.setattr(type(METHODS.get("lora")), "adapt", boom)
    r = cli(
        "profile",
        "--model",
        "tiny-roberta",
        "--methods",
        "ft,lora",
        "--batch",
        "2",
        "--seq",
        "8",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--in-process",  # the old spelling of --no-memory
        "--threads",
        "1",
    )
    assert r.code == 1
    assert "lora failed: RuntimeError: adapter exploded" in r.out and "| ft " in r.out
