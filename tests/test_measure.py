"""Measurement helpers, the latency protocol and the training profile.

No timing assertions here: the machines that run tests are shared and noisy; speed targets
belong in `benchmarks/`. Tiny models, tiny grids, one thread.
"""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from peftbench import measure
from peftbench.errors import UsageError
from peftbench.latency import BASE, CONTROL, rotated, split_overrides, verdict
from peftbench.methods import METHODS
from peftbench.profile import FLOOR, Job, run_isolated

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
        from peftbench.measure import current_rss_bytes, peak_rss_bytes
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


def test_a_phase_records_its_time_and_peak_memory():
    times, peaks = {}, {}
    for _ in range(2):
        with measure.Phase(times, "eval", torch.device("cpu"), peaks):
            pass
    assert times["eval"] >= 0 and peaks["eval"]["peak_rss_bytes"] > 0
    with measure.Phase(times, "setup"):  # the old form still works
        pass
    assert "setup" in times and "setup" not in peaks


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


def test_set_goes_to_the_methods_that_have_the_key():
    assert split_overrides(["lora", "ft"], ["r=4"]) == {"lora": ["r=4"], "ft": []}
    assert split_overrides(["lora", "ft"], ["lora.alpha=16"]) == {"lora": ["alpha=16"], "ft": []}
    with pytest.raises(UsageError, match="bottleneck"):
        split_overrides(["lora", "ft"], ["bottleneck=8"])
    with pytest.raises(UsageError):
        split_overrides(["lora"], ["nope.r=4"])


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


def test_profile_against_ft_and_the_floor(cli, results):
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
        "--steps",
        "2",
        "--in-process",
        "--threads",
        "1",
    )
    assert r.code == 0, r.err
    assert "floor" in r.out and "| lora " in r.out
    (path,) = (results / "profile").glob("*.json")
    rows = {row["method"]: row for row in json.loads(path.read_text())["rows"]}
    assert list(rows) == [FLOOR, "ft", "lora"]
    floor, ft, lora = rows[FLOOR], rows["ft"], rows["lora"]
    assert floor["optimizer_state_bytes"] == 0 and floor["params"]["trainable"] == 0 and floor["forward_s"] > 0
    assert 0 < lora["optimizer_state_bytes"] < ft["optimizer_state_bytes"]
    assert ft["optimizer_state_bytes"] >= 2 * 4 * ft["params"]["trainable"]  # AdamW: two fp32 moments per value
    assert lora["params"]["trainable"] < ft["params"]["trainable"]
    assert len(lora["step_times_s"]) == 3 and lora["step_s"] > 0
    assert set(lora["ratios"]) == {"step_vs_floor", "step_vs_ft", "peak_memory_vs_ft", "optimizer_state_vs_ft"}
    assert ft["ratios"]["step_vs_ft"] == pytest.approx(1.0)


def test_profile_measures_each_method_in_a_fresh_process():
    row = run_isolated(Job(model="tiny-roberta", method="lora", batch=2, seq=16, steps=1, warmup=0, threads=1))
    assert "error" not in row, row.get("error")
    assert row["memory"]["source"].startswith("peak RSS of this process") or row["device"] == "cuda"
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
        "--steps",
        "1",
        "--warmup",
        "0",
        "--in-process",
        "--threads",
        "1",
    )
    assert r.code == 1
    assert "lora failed: RuntimeError: adapter exploded" in r.out and "| ft " in r.out
