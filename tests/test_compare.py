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
from peftbench.regress.compare import compare, load_side, runs_in

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
    "missing_in_a": "missing",
    "not_comparable": "not comparable",
    "params_changed": "regressed",
    "seeds_within": "within tolerance",
    "seeds_regressed": "regressed",
    "speed_regressed": "regressed",
    "speed_hint": "within tolerance",
    "seed_mismatch": "within tolerance",
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


def test_seeds_widen_the_tolerance_to_their_spread(golden):
    # means 0.9433 -> 0.9333: beyond the registry's 0.005, inside 3 standard errors of the seeds' difference
    within = golden["seeds_within"].verdicts[0]
    assert within.verdict == V.WITHIN and "3 x seed standard error" in within.rule
    assert golden["seeds_within"].seeds == "0,1,2" and len(golden["seeds_within"].a) == 3


def test_speed_is_judged_against_a_measured_spread(golden):
    speed = next(v for v in golden["speed_regressed"].verdicts if v.kind == "speed")
    assert speed.verdict == V.REGRESSED and "range of 3 runs" in speed.rule
    hint = next(v for v in golden["speed_hint"].verdicts if v.kind == "speed")  # x3, but one run per side
    assert hint.verdict == V.SLOWER_HINT and "IQR of 76 step times" in hint.rule
    memory = next(v for v in golden["within"].verdicts if v.kind == "memory")
    assert memory.verdict == V.UNJUDGED  # no spread of peak RSS inside one run


def test_exact_counts_and_sizes(golden):
    changed = {v.quantity: v.change for v in golden["params_changed"].verdicts if v.verdict == V.CHANGED}
    assert changed == {"params.method": "+64", "checkpoint_bytes": "+256"}


def test_not_comparable_says_what_changed_and_shows_metrics(golden):
    pair = golden["not_comparable"]
    assert pair.differences == ["config training.lr: 0.002 -> 0.0"]
    assert pair.verdicts[0].quantity == "accuracy" and pair.verdicts[0].b == 0.5


def test_failures_carry_the_error_and_notes(golden):
    assert "NonFiniteLoss" in golden["new_failure"].note
    assert "different seeds (0 vs 1)" in golden["seed_mismatch"].note
    assert golden["missing_in_b"].note == "only in A" and golden["missing_in_a"].note == "only in B"


def test_verdict_rules():
    assert V.quality("ter", [0.50], [0.60]).verdict == V.REGRESSED  # lower is better
    assert V.quality("ter", [0.50], [0.40]).verdict == V.IMPROVED
    assert V.quality("bleu", [60.0], [60.4]).verdict == V.WITHIN  # tolerance 0.5 BLEU
    assert V.quality("pearson", [0.8], [None]).verdict == V.REGRESSED  # became NaN
    a, b = V.Spread(1.0, 0.9, 1.1, "range of 3 runs"), V.Spread(1.15, 1.05, 1.25, "range of 3 runs")
    assert V.ratio("t", "speed", a, b, 1.0, 1.15).verdict == V.WITHIN  # spreads overlap
    far = V.Spread(1.5, 1.45, 1.55, "range of 3 runs")
    assert V.ratio("t", "speed", a, far, 1.0, 1.5).verdict == V.REGRESSED
    assert V.ratio("t", "speed", far, a, 1.5, 1.0).verdict == V.IMPROVED
    assert V.exact("n", 5, 5).verdict == V.WITHIN and V.exact("n", 5, 6).verdict == V.CHANGED


def test_compare_cli_sides_and_json(cli, results):
    shutil.copytree(GOLDEN / "a", results / "scratch")
    out = cli("compare", str(GOLDEN / "a"), str(GOLDEN / "b"), "--json")
    assert out.code == 0
    data = json.loads(out.out)
    assert data["counts"]["regressed"] == 4 and data["counts"]["new failure"] == 1
    # a side as filters on the results directory, and as a commit stored in the records
    side = load_side("method=regressed,improved", results, {})
    assert {r.identity[0] for r in side} == {"regressed", "improved"}
    assert len(load_side("commit:3d4f088", results, {})) == 20
    assert load_side("commit:0000000", results, {}) == []
    bad = cli("compare", "nowhere", str(GOLDEN / "b"))
    assert bad.code == 2 and "commit:SHA" in bad.err and "Traceback" not in bad.err


def copy_side(side: str, dest: Path, *cases: str) -> Path:
    (dest / "scratch").mkdir(parents=True, exist_ok=True)
    for path in (GOLDEN / side).glob("*.json"):
        if not cases or path.name.split("-")[0] in cases:
            shutil.copy(path, dest / "scratch" / path.name)
    return dest


def test_check_exit_codes(cli, tmp_path):
    old, new = copy_side("a", tmp_path / "old"), copy_side("b", tmp_path / "new")
    base = tmp_path / "base.json"
    assert cli("bless", "--results-dir", str(old), "--out", str(base), "--force").code == 0
    failing = cli("check", "--results-dir", str(new), "--against", str(base))
    assert failing.code == 1 and "check FAILED" in failing.out and "accuracy 0.9833 -> 0.9333 (-0.05)" in failing.out
    js = json.loads(cli("check", "--results-dir", str(new), "--against", str(base), "--json").out)
    assert js["passed"] is False
    calm = copy_side("b", tmp_path / "calm", "within", "improved", "fixed", "seeds_within", "speed_hint")
    assert cli("check", "--results-dir", str(calm), "--against", str(base)).code == 0
    changed = copy_side("b", tmp_path / "changed", "within", "not_comparable")
    assert cli("check", "--results-dir", str(changed), "--against", str(base)).code == 1
    assert cli("check", "--results-dir", str(changed), "--against", str(base), "--allow-changed").code == 0
    empty = cli("check", "--results-dir", str(tmp_path / "void"), "--against", str(base))
    assert empty.code == 2 and "nothing to check" in empty.err


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


def test_step_timer_stores_the_spread_of_steady_steps():
    from peftbench.bench.measure import StepTimer

    timer = StepTimer(warmup=1)
    for seconds in (9.0, 0.1, 0.2, 0.3, 0.4, 0.5):  # the first (warm-up) step is left out of the spread too
        timer.add(seconds, 10, 1)
    spread = timer.summary()["step_seconds"]
    assert spread["n"] == 5 and spread["median"] == pytest.approx(0.3)
    assert (spread["q1"], spread["q3"]) == (pytest.approx(0.2), pytest.approx(0.4))
    assert V.spread_of_steps(spread) == V.Spread(pytest.approx(0.3), pytest.approx(0.2), pytest.approx(0.4), "IQR of 5 step times")
