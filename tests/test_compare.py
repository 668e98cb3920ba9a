"""Regression tracking: outcomes of golden record pairs, noise rules, baselines (also of schema-1 records), check's
exit codes, history, and the whole loop end to end on real tiny runs.

The golden records under tests/fixtures/compare/ are real tiny runs with documented edits (see make_fixtures.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from peftbench.errors import UsageError
from peftbench.regress import verdicts as V
from peftbench.regress.baselines import bless, load_baseline
from peftbench.regress.compare import compare
from peftbench.regress.runs import runs_in
from peftbench.regress.sides import load_side

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "compare"
EXPECTED = {
    "within": "within tolerance",
    "regressed": "regressed",
    "improved": "improved",
    "new_failure": "new failure",
    "fixed": "fixed",
    "still_failing": "still failing",
    "missing_in_b": "missing",
    "missing_in_a": "new",
    "not_comparable": "not comparable",
    "params_changed": "changed",
    "seeds_within": "within tolerance",
    "seeds_one_moved": "regressed",
    "seeds_regressed": "regressed",
    "speed_regressed": "regressed",
    "speed_load": "within tolerance",
    "speed_old": "within tolerance",
    "seed_mismatch": "within tolerance",
    "exact_same": "within tolerance",
    "exact_changed": "changed",
}


@pytest.fixture(scope="module")
def golden():
    pairs = compare(runs_in(GOLDEN / "a"), runs_in(GOLDEN / "b"))
    return {p.identity[0]: p for p in pairs}


def test_every_golden_case_gets_its_outcome(golden):
    assert {case: p.outcome for case, p in golden.items()} == EXPECTED


def test_quality_verdicts_name_metric_size_and_rule(golden):
    (acc,) = [v for v in golden["regressed"].verdicts if v.quantity == "accuracy"]
    assert acc.verdict == V.REGRESSED and acc.change == "-0.05" and "registry tolerance 0.005" in acc.rule
    assert golden["within"].verdicts[0].verdict == V.WITHIN


def test_seeds_are_judged_one_by_one_never_by_a_widened_band(golden):
    """Means .9433 -> .9333 sit inside 3 standard errors of the seeds' spread (what the old rule asked); seed 2's
    -0.03 is a regression all the same, and it is named."""
    (acc,) = [v for v in golden["seeds_one_moved"].verdicts if v.quantity == "accuracy"]
    assert acc.verdict == V.REGRESSED and [(s.seed, s.verdict) for s in acc.moved] == [(2, V.REGRESSED)]
    assert golden["seeds_within"].verdicts[0].verdict == V.WITHIN and golden["seeds_within"].seeds == "0,1,2"
    assert "paired t-test over 3 seeds" in golden["seeds_regressed"].verdicts[0].rule


def test_more_seeds_sharpen_a_verdict():
    """A shift every seed shows, each inside the tolerance: 2 seeds cannot tell it from noise, 6 seeds can; and a
    seed beyond the tolerance stays a regression however many unchanged seeds surround it."""
    shifted = [0.5 + i / 100 for i in range(6)]
    assert V.paired_quality("accuracy", [0, 1], shifted[:2], [x - 0.004 for x in shifted[:2]]).verdict == V.WITHIN
    drift = [0.004, 0.0041, 0.0039, 0.0042, 0.0038, 0.004]
    current = [x - d for x, d in zip(shifted, drift, strict=True)]
    assert V.paired_quality("accuracy", list(range(6)), shifted, current).verdict == V.REGRESSED
    noise = [x - 5e-5 for x in shifted]  # two machines' summation orders, the same way in every seed: not a verdict
    assert V.paired_quality("accuracy", list(range(6)), shifted, noise).verdict == V.WITHIN
    for n in (1, 3, 10):
        a = [0.5] * n
        assert V.paired_quality("accuracy", list(range(n)), a, [0.49, *a[1:]]).verdict == V.REGRESSED


def test_exact_mode_names_seed_metric_old_and_new(golden):
    pair = golden["exact_changed"]
    assert pair.exact and "exact mode" in pair.mode
    (acc,) = [v for v in pair.verdicts if v.quantity == "accuracy"]
    assert acc.verdict == V.CHANGED and [(s.seed, round(s.b - s.a, 6)) for s in acc.moved] == [(0, -0.0001)]
    assert golden["exact_same"].exact and not golden["within"].exact  # records that do not say deterministic
    assert "older peftbench" in golden["within"].mode


def test_speed_is_judged_on_the_step_relative_to_a_reference(golden):
    speed = next(v for v in golden["speed_regressed"].verdicts if v.kind == "speed")
    assert speed.verdict == V.REGRESSED and speed.change == "x2.000" and "median over 3 seed(s)" in speed.rule
    load = next(v for v in golden["speed_load"].verdicts if v.kind == "speed")  # raw step times x3, relative x1.03
    assert load.verdict == V.WITHIN and load.change == "x1.030"
    old = next(v for v in golden["speed_old"].verdicts if v.kind == "speed")
    assert old.verdict == V.UNJUDGED and "older peftbench" in old.rule and old.change == "x3.000"
    memory = next(v for v in golden["within"].verdicts if v.kind == "memory")
    assert memory.verdict == V.WITHIN and memory.change == "x1.000"


def test_exact_counts_and_sizes(golden):
    changed = {v.quantity: v.change for v in golden["params_changed"].verdicts if v.verdict == V.CHANGED}  # -> outcome changed
    assert changed == {"params.method": "+64", "checkpoint_bytes": "+256"}


def test_not_comparable_says_what_changed_and_shows_metrics(golden):
    pair = golden["not_comparable"]
    assert pair.differences == ["config training.lr: 0.002 -> 0.0"]
    assert pair.verdicts[0].quantity == "accuracy" and pair.verdicts[0].b == 0.5


def test_failures_carry_the_error_and_notes(golden):
    assert "NonFiniteLoss" in golden["new_failure"].note
    assert "different seeds (0 vs 1)" in golden["seed_mismatch"].note
    assert golden["missing_in_b"].note == "seed 0 only in A: no current run"
    assert golden["missing_in_a"].note == "seed 0: a configuration A does not have"


def test_verdict_rules():
    assert V.paired_quality("ter", [0], [0.50], [0.60]).verdict == V.REGRESSED  # lower is better
    assert V.paired_quality("ter", [0], [0.50], [0.40]).verdict == V.IMPROVED
    assert V.paired_quality("bleu", [0], [60.0], [60.4]).verdict == V.WITHIN  # tolerance 0.5 BLEU
    assert V.paired_quality("pearson", [0], [0.8], [None]).verdict == V.REGRESSED  # became NaN
    assert V.paired_quality("accuracy", [0, 1], [0.5, 0.5], [0.6, 0.4]).verdict == V.REGRESSED  # one seed worse is enough
    assert V.exact_quality("accuracy", [0], [0.5], [0.5 + 1e-13]).verdict == V.WITHIN  # float rounding
    assert V.exact_quality("accuracy", [0], [0.5], [0.5001]).verdict == V.CHANGED
    assert V.median_ratio("t", "speed", [1.0, 1.0], [1.2, 1.25], 0.3).verdict == V.WITHIN
    assert V.median_ratio("t", "speed", [1.0, 1.0, 1.0], [2.0, 1.1, 2.1], 0.3).verdict == V.REGRESSED  # median x2
    assert V.median_ratio("t", "speed", [2.0], [1.0], 0.3).verdict == V.IMPROVED
    steady = {"n": 20, "median": 4.0, "q1": 3.9, "q3": 4.1}
    twice, spread = {"n": 20, "median": 8.0, "q1": 7.8, "q3": 8.3}, {"n": 20, "median": 8.0, "q1": 2.0, "q3": 12.0}
    assert V.relative_speed("s", [steady], [twice]).verdict == V.REGRESSED
    assert V.relative_speed("s", [steady], [spread]).verdict == V.WITHIN  # quartiles overlap: threads fighting for cores
    assert V.relative_speed("s", [steady], [{**twice, "n": 1}]).verdict == V.UNJUDGED  # one steady step tells nothing
    mib = 2**20
    assert V.median_ratio("m", "memory", [100 * mib], [120 * mib], 0.1, 32 * mib).verdict == V.WITHIN  # +20 MiB: below the floor
    assert V.median_ratio("m", "memory", [400 * mib], [656 * mib], 0.1, 32 * mib).verdict == V.REGRESSED  # a 256 MiB leak
    assert V.exact("n", 5, 5).verdict == V.WITHIN and V.exact("n", 5, 6).verdict == V.CHANGED


def test_compare_cli_sides_and_json(cli, results):
    shutil.copytree(GOLDEN / "a", results / "scratch")
    out = cli("compare", str(GOLDEN / "a"), str(GOLDEN / "b"), "--json")
    assert out.code == 0
    data = json.loads(out.out)
    assert data["counts"]["regressed"] == 4 and data["counts"]["new failure"] == 1 and data["counts"]["changed"] == 2
    # a side as filters on the results directory, and as a commit stored in the records
    side = load_side("method=regressed,improved", results, {})
    assert {r.identity[0] for r in side} == {"regressed", "improved"}
    assert len(load_side("commit:3d4f088", results, {})) == len(list((GOLDEN / "a").glob("*.json")))
    with pytest.raises(UsageError, match="no run matches"):
        load_side("commit:0000000", results, {})
    bad = cli("compare", "nowhere", str(GOLDEN / "b"))
    assert bad.code == 2 and "commit:SHA" in bad.err and "Traceback" not in bad.err


def test_a_side_or_filter_that_selects_nothing_is_one_line_and_exit_2(cli, results):
    shutil.copytree(GOLDEN / "a", results / "scratch")
    for args in (("commit:0000000", str(GOLDEN / "b")), (str(GOLDEN / "a"), str(GOLDEN / "b"), "--where", "methd=lora"), ("commit:", "x")):
        out = cli("compare", *args)
        assert out.code == 2 and len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err, args


def copy_side(side: str, dest: Path, *cases: str) -> Path:
    (dest / "scratch").mkdir(parents=True, exist_ok=True)
    for path in (GOLDEN / side).glob("*.json"):
        if not cases or path.name.split("-")[0] in cases:
            shutil.copy(path, dest / "scratch" / path.name)
    return dest


def bless_side(cli, tmp_path: Path, name: str, *cases: str) -> str:
    base = tmp_path / f"{name}.json"
    assert cli("bless", "--results-dir", str(copy_side("a", tmp_path / f"{name}-a", *cases)), "--out", str(base), "--force").code == 0
    return str(base)


def check(cli, results: Path, base: str, *flags: str):
    return cli("check", "--results-dir", str(results), "--against", base, *flags)


def test_check_exit_codes(cli, tmp_path):
    full = bless_side(cli, tmp_path, "full")
    failing = check(cli, copy_side("b", tmp_path / "new"), full)
    assert failing.code == 1 and "check FAILED" in failing.out and "accuracy seed 0: 0.9833 -> 0.9333 (-0.05): regressed" in failing.out
    assert json.loads(check(cli, tmp_path / "new", full, "--json").out)["passed"] is False
    calm_cases = ("within", "improved", "fixed", "seeds_within", "speed_load", "speed_old")
    calm, calm_base = copy_side("b", tmp_path / "calm", *calm_cases), bless_side(cli, tmp_path, "calm", *calm_cases)
    passed = check(cli, calm, calm_base)
    assert passed.code == 0 and "1 pair(s) improved beyond tolerance" in passed.out
    assert passed.out.index("improved") < passed.out.index("within tolerance")  # improvements listed first
    assert check(cli, calm, calm_base, "--fail-on-improved").code == 1
    changed_base = bless_side(cli, tmp_path, "changed", "within", "not_comparable")
    changed = copy_side("b", tmp_path / "changed", "within", "not_comparable")
    assert check(cli, changed, changed_base).code == 1
    assert check(cli, changed, changed_base, "--allow-changed").code == 0
    empty = check(cli, tmp_path / "void", full)
    assert empty.code == 2 and "nothing to check" in empty.err
    nothing = check(cli, calm, full, "--where", "method=nosuch")
    assert nothing.code == 2 and "matches no run of the baseline" in nothing.err


def test_nothing_missing_passes_and_new_informs(cli, tmp_path):
    calm_cases = ("within", "improved", "fixed")
    calm, base = copy_side("b", tmp_path / "calm", *calm_cases), bless_side(cli, tmp_path, "calm", *calm_cases, "missing_in_b")
    missing = check(cli, calm, base)
    assert missing.code == 1 and "missing" in missing.out and "seed 0 only in A: no current run" in missing.out
    assert check(cli, calm, base, "--allow-missing").code == 0
    copy_side("b", calm, "missing_in_a")  # a method the baseline lacks: not the baseline's business, said so
    assert "1 run(s) of methods, tasks or models the baseline does not have" in check(cli, calm, base, "--allow-missing").out
    a_seed = tmp_path / "seeds"  # a baseline of seeds 0,1,2; the current side lost seed 2 and gained seed 3
    copy_side("b", a_seed, "seeds_within")
    (a_seed / "scratch" / "seeds_within-b-seed2.json").unlink()
    extra = json.loads((GOLDEN / "b" / "seeds_within-b-seed1.json").read_text()) | {"seed": 3, "run_id": "seeds_within-b-seed3"}
    (a_seed / "scratch" / "seeds_within-b-seed3.json").write_text(json.dumps(extra))
    seeds_base = bless_side(cli, tmp_path, "seeds", "seeds_within")
    out = check(cli, a_seed, seeds_base, "--json")
    counts = json.loads(out.out)["counts"]
    assert out.code == 1 and counts["missing"] == 1 and counts["new"] == 1 and counts["within tolerance"] == 1
    assert check(cli, a_seed, seeds_base, "--allow-missing").code == 0
    assert check(cli, a_seed, seeds_base, "--allow-missing", "--strict-new").code == 1


def test_bless_names_refusals_and_provenance(cli, results, monkeypatch):
    copy_side("a", results, "within", "regressed")
    both = cli("bless", "--name", "x", "--out", "y.json")
    assert both.code == 2 and "not both" in both.err
    monkeypatch.setattr("peftbench.records.env.git_state", lambda: {"commit": "abc", "dirty": True})
    refused = cli("bless", "--name", "nightly")
    assert refused.code == 2 and "refusing" in refused.err and not (results / "baselines").exists()
    assert cli("bless", "--name", "nightly", "--force", "--where", "method=within").code == 0
    data = json.loads((results / "baselines" / "nightly.json").read_text())
    assert data["kind"] == "baseline" and data["schema_version"] == 1 and data["forced"] is True
    assert data["commit"] == "abc" and data["versions"]["torch"] and data["machine"]["host"]
    assert [r["config"]["method"] for r in data["records"]] == ["within"]
    assert cli("check").code == 0  # the only baseline in results/baselines is the default


def test_baseline_from_schema_1_records(tmp_path):
    """`bless` reads schema-1 records through the record migrations; the baseline then checks like any other."""
    results = tmp_path / "old"
    shutil.copytree(FIXTURES / "records_v1", results)
    path, runs = bless(results, {}, tmp_path / "b.json", force=True)
    loaded = load_baseline(path)
    assert [r.record["schema_version"] for r in loaded.runs] == [2] and loaded.runs[0].key == runs[0].key
    pairs = compare(loaded.runs, runs_in(results))
    assert [p.outcome for p in pairs] == ["within tolerance"]


def test_old_baseline_file_with_schema_1_records_loads():
    """A baseline written before record schema 2 embeds schema-1 records: they migrate on load."""
    baseline = load_baseline(FIXTURES / "baseline_records_v1.json")
    (run,) = baseline.runs
    assert run.record["schema_version"] == 2 and run.key and run.seed == 0 and run.identity == ("lora", "mrpc", "tiny-roberta")
    with pytest.raises(UsageError, match="not a peftbench baseline"):
        load_baseline(FIXTURES / "records_v1" / "scratch" / "20261202T020819Z-lora-mrpc-tiny-roberta-eae5b57a.json")


def test_history_table_and_figure(cli, tmp_path):
    results = copy_side("a", tmp_path / "r", "seeds_within")
    fig = tmp_path / "h.svg"
    out = cli("history", "--method", "seeds_within", "--task", "sst2", "--results-dir", str(results), "--out", str(fig))
    assert out.code == 0, out.err
    assert "accuracy over time" in out.out and "3d4f088813+dirty" in out.out and "0.9433" in out.out
    assert "<svg" in fig.read_text()
    nothing = cli("history", "--method", "lora", "--task", "sst2", "--results-dir", str(results))
    assert nothing.code == 2 and "no finished run" in nothing.err


@pytest.mark.slow
def test_bless_rerun_check_end_to_end(cli, results, tmp_path, monkeypatch):
    """Real tiny runs: the same config and seed passes; lr=0 fails naming the metric and the change; a failure is new."""
    run = ("run", "--method", "ft", "--task", "sst2", "--model", "tiny-roberta", "--set", "epochs=3")
    assert cli(*run).code == 0
    base = tmp_path / "base.json"
    assert cli("bless", "--out", str(base), "--force").code == 0
    first = runs_in(results)[0].record
    again = tmp_path / "again"
    assert cli(*run, "--results-dir", str(again)).code == 0
    assert runs_in(again)[0].record["metrics"] == first["metrics"]  # deterministic on CPU for one seed
    ok = cli("check", "--results-dir", str(again), "--against", str(base))
    assert ok.code == 0, ok.out
    zero = tmp_path / "zero"
    assert cli(*run, "--set", "lr=0", "--results-dir", str(zero)).code == 0
    bad = cli("check", "--results-dir", str(zero), "--against", str(base))
    assert bad.code == 1 and "not comparable" in bad.out and "training.lr: 0.002 -> 0.0" in bad.out
    assert " ft " in bad.out and f"accuracy {first['metrics']['accuracy']['value']:.4g} -> 0.5 (" in bad.out
    monkeypatch.setattr("peftbench.run.loop.training_step", lambda *a, **k: float("nan"))
    broken = tmp_path / "broken"
    assert cli(*run, "--results-dir", str(broken)).code == 1
    failed = cli("check", "--results-dir", str(broken), "--against", str(base))
    assert failed.code == 1 and "new failure" in failed.out and "NonFiniteLoss" in failed.out


def test_step_timer_keeps_each_step_relative_to_the_reference_beside_it():
    """A busier machine slows the step and the reference timed right after it alike: the ratio stays."""
    from peftbench.bench.measure import StepTimer

    load = iter([1.0, 1.0, 3.0, 3.0, 1.0, 2.0])  # the machine's slowdown during each step and its reference
    factor = {"now": 1.0}
    timer = StepTimer(warmup=1, reference=lambda: 0.01 * factor["now"])  # type: ignore[arg-type]
    for _ in range(6):
        factor["now"] = next(load)
        timer.add(0.1 * factor["now"], 10, 1)
    summary = timer.summary()
    assert summary["step_seconds"]["median"] == pytest.approx(0.2)  # raw step times moved 3x with the load
    assert summary["relative_step"]["n"] == 5 and summary["relative_step"]["median"] == pytest.approx(10.0)
    assert summary["relative_step"]["q1"] == pytest.approx(10.0) and summary["relative_step"]["q3"] == pytest.approx(10.0)


def test_the_reference_step_draws_nothing_from_the_global_generator():
    import torch

    from peftbench.bench.measure import ReferenceStep

    state = torch.get_rng_state()
    reference = ReferenceStep()
    assert reference() > 0 and reference() > 0
    assert torch.equal(torch.get_rng_state(), state)


def test_a_record_says_when_a_rerun_must_reproduce_it(monkeypatch):
    import torch

    from peftbench.records.env import determinism

    assert determinism(torch.device("cpu"), 1)[0] is True
    assert determinism(torch.device("cpu"), 2) == (False, "2 processes: gradient reduction order may vary")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert determinism(torch.device("cuda"), 1)[0] is False
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    assert determinism(torch.device("cuda"), 1)[0] is True
