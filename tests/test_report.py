"""`peftbench report`: real records from tiny runs, rendered; aggregation, paper matching, determinism, browser.

The records come from real in-process runs (a few methods, several seeds, one mixed configuration,
an E2E run, a latency and a profile measurement). Tests that need exact seed values (median vs
mean) copy a real record and set its scores, so they check the rule, not a random tiny model.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from peftbench import paper
from peftbench.cli import main
from peftbench.config.resolve import resolve_run
from peftbench.errors import UsageError
from peftbench.records.store import Store, read_record, write_record
from peftbench.report import make_report, parse_formats, parse_where
from peftbench.report.collect import aggregate
from peftbench.report.figures import pareto
from peftbench.run.runner import run

GLUE = ["max_steps=2", "max_eval_examples=8"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results folder with real records: lora (3 seeds), lora r=4, bitfit (2 seeds), ft, an E2E run, latency, profile, one failed run."""
    from peftbench.bench.latency import run_latency
    from peftbench.bench.options import LatencyOptions, ProfileOptions
    from peftbench.bench.profile import run_profile

    root = tmp_path_factory.mktemp("results")
    store = Store(root)
    for method, seeds, extra in (("lora", (0, 1, 2), []), ("lora", (0,), ["r=4"]), ("bitfit", (0, 1), []), ("ft", (0,), [])):
        for seed in seeds:
            run(resolve_run(method, "mrpc", "tiny-roberta", overrides=[*GLUE, f"seed={seed}", *extra]), store=store)
    e2e = ["max_steps=2", "max_eval_examples=2", "num_beams=2", "max_new_tokens=8"]
    run(resolve_run("lora", "e2e", "tiny-gpt2", overrides=e2e), store=store)
    run_latency(LatencyOptions("tiny-gpt2", ("lora", "adapter_h"), cells=((1, 8), (2, 16)), rounds=5, warmup=1, cpu=True, results=root))
    run_profile(ProfileOptions("tiny-roberta", ("ft", "lora"), batch=2, seq=16, rounds=3, warmup=1, cpu=True, memory=False, results=root))
    failed = next(p for p in store.paths("run") if "-bitfit-" in p.name)
    record = read_record(failed)
    record.update(status="failed", error="test", run_id=record["run_id"] + "-failed")
    write_record(failed.with_name(record["run_id"] + ".json"), record)
    return root


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "rep"
    make_report(results, {}, out)
    return out


def synthetic(results: Path, tmp_path: Path, task_filter: str, values: list[float], metric: str, training=None, **config) -> Path:
    """A store of copies of one real record of `task_filter`, one per value, as seeds 0..n-1 with `metric` set
    (and `training` settings changed, to make a record follow the paper's protocol or not)."""
    src = next(p for p in Store(results).paths("run") if f"-{task_filter}-" in p.name and "failed" not in p.name)
    base = read_record(src)
    root = tmp_path / "synthetic"
    for seed, value in enumerate(values):
        r = copy.deepcopy(base)
        r["seed"], r["run_id"] = seed, f"{base['run_id']}-s{seed}"
        r["metrics"][metric]["value"] = value
        r["config"].update(config)
        r["config"]["training"].update(training or {})
        if "params_method" in config:
            r["params"]["method"] = config.pop("params_method")
            r["config"].pop("params_method")
        write_record(root / "scratch" / f"{r['run_id']}.json", r)
    return root


def test_aggregate_rules():
    assert aggregate([0.5, 0.6, 1.0], "median", 100).value == pytest.approx(60.0)
    assert aggregate([0.5, 0.6, 1.0], "mean", 100).value == pytest.approx(70.0)
    cell = aggregate([1.0, 3.0], "mean")
    assert (cell.n, cell.spread) == (2, pytest.approx(statistics.stdev([1.0, 3.0])))
    assert aggregate([2.0], "median").spread is None


def test_glue_cells_are_medians_over_seeds_with_the_seed_count(results, tmp_path):
    root = synthetic(results, tmp_path, "lora-mrpc", [0.5, 0.6, 1.0], "accuracy")
    out = tmp_path / "rep"
    make_report(root, {}, out, ("md", "csv"))
    md = (out / "report.md").read_text()
    assert "60.0 \\[50.0, 100.0\\]R n=3" in md  # median (not the mean, 70.0) of 50, 60, 100; 3 seeds: the range, said so
    import pandas as pd

    row = pd.read_csv(out / "csv" / "glue.csv").iloc[0]  # the per-table CSV holds numbers, not display text
    assert (row.value, row.n, row.low, row.high) == (pytest.approx(60.0), 3, pytest.approx(50.0), pytest.approx(100.0))
    assert row.sd == pytest.approx(26.46, abs=0.01) and row.interval.startswith("range (min-max) over seeds")


def test_data_to_text_cells_are_means(results, tmp_path):
    root = synthetic(results, tmp_path, "e2e", [10.0, 20.0, 60.0], "bleu")
    out = tmp_path / "rep"
    make_report(root, {}, out, ("md",))
    md = (out / "report.md").read_text()
    assert "30.0 \\[10.0, 60.0\\]R n=3" in md  # mean of 10, 20, 60 (BLEU is stored on the paper's 0-100 scale)


PAPER_PROTOCOL = {"max_steps": 0, "max_eval_examples": 0, "epochs": 30}  # roberta-base LoRA on MRPC: Table 9's 30 epochs, whole splits


def test_same_model_gets_the_paper_row_and_the_difference_when_the_protocol_is_the_papers(results, tmp_path):
    import pandas as pd

    root = synthetic(
        results, tmp_path, "lora-mrpc", [0.9, 0.9], "accuracy", PAPER_PROTOCOL, model="roberta-base", data="local", params_method=294912
    )
    out = tmp_path / "rep"
    make_report(root, {}, out, ("csv",))
    scores = pd.read_csv(out / "csv" / "scores.csv")
    row = scores[(scores.method == "lora") & (scores.task == "mrpc")].iloc[0]
    assert row.paper_label == "LoRA" and row.paper_value == pytest.approx(89.7) and bool(row.paper_same_model) and bool(row.comparable)
    assert row.ours_minus_paper == pytest.approx(90.0 - 89.7)
    assert (row.diff_low, row.diff_high) == (pytest.approx(0.3), pytest.approx(0.3))  # two equal seeds: a range of one point


def test_a_run_off_the_papers_protocol_is_marked_and_its_difference_withheld(results, tmp_path):
    """The tiny run's record relabelled roberta-base: 2 steps, 8 eval examples, 4.1K parameters against the paper's 0.3M."""
    import pandas as pd

    root = synthetic(results, tmp_path, "lora-mrpc", [0.9, 0.9], "accuracy", model="roberta-base")
    out = tmp_path / "rep"
    make_report(root, {}, out, ("csv", "md"))
    row = pd.read_csv(out / "csv" / "glue.csv").iloc[0]
    assert not row.comparable and pd.isna(row.ours_minus_paper)
    assert "stopped at 2 steps" in row.protocol_differences and "scored on 8 of 60 validation examples" in row.protocol_differences
    assert "the bundled sample data" in row.protocol_differences
    assert "4.1K trainable (paper: 0.3M" in row.protocol_differences
    md = (out / "report.md").read_text()
    assert "ours ⚠1" in md and "ours - paper: not comparable (⚠1)" in md and "+0.3" not in md
    assert "no row of ours follows the paper's protocol" in md
    make_report(root, {}, out, ("csv",), diff_anyway=True)  # asked for: shown, still marked
    row = pd.read_csv(out / "csv" / "glue.csv").iloc[0]
    assert row.ours_minus_paper == pytest.approx(0.3) and not row.comparable


def test_report_of_real_records(report):
    md = (report / "report.md").read_text()
    import pandas as pd

    glue = pd.read_csv(report / "csv" / "glue.csv", keep_default_na=False)  # numbers: one row per configuration and column
    assert sorted(glue.method) == ["bitfit", "ft", "lora", "lora"]
    # two lora configurations (different keys) are two rows, named by what differs, never averaged together
    assert sorted(glue[glue.method == "lora"].config) == ["r=4", "r=8"]
    n = dict(zip(glue.config + glue.method, glue.n, strict=True))
    assert (n["r=8lora"], n["r=4lora"], n["bitfit"]) == (3, 1, 2)
    kinds = dict(zip(glue.config + glue.method, glue.interval, strict=True))
    assert kinds["r=8lora"].startswith("range") and kinds["r=4lora"].startswith("95% interval from the per-example")
    # tiny models: the paper's roberta-base row as a labelled reference, no difference row
    assert set(glue.paper_model) == {"roberta-base"} and not any(glue.paper_same_model) and set(glue.ours_minus_paper) == {""}
    assert "reference: roberta-base LoRA" in md and "ours - paper" not in md.split("### GLUE")[1].split("###")[0]
    assert "E2E NLG Challenge" in md and "Inference latency, tiny-gpt2" in md and "Training step cost, tiny-roberta" in md
    assert "base A/A" in (report / "csv" / "latency-0.csv").read_text()
    assert "Left out (not finished): 1 failed." in md
    todo = pd.read_csv(report / "csv" / "todo.csv")
    assert ((todo.model == "roberta-base") & (todo.method == "lora")).any()  # the paper rows not run: a to-do list
    assert set(todo.model) == {"roberta-base", "gpt2-medium"}  # only the models this report's runs stand for
    for name in ("front-params-tiny-roberta-mrpc", "front-memory-tiny-roberta-mrpc", "seeds-tiny-roberta-mrpc", "latency-0", "cost-0"):
        assert (report / "figures" / f"{name}.svg").read_text().startswith("<svg")
    # the page reads top-down: summary (scores, the main figure), then costs, then all scores, the to-do list last
    order = [md.index(h) for h in ("## Summary", "![Cost front", "## Cost", "## All scores", "## Paper rows not run yet")]
    assert order == sorted(order)


def test_html_is_self_contained_with_inline_figures(report):
    html = (report / "index.html").read_text()
    assert html.count("<svg") >= 4 and "<script src" not in html and "<link" not in html and "@import" not in html
    assert 'data-model="tiny-roberta"' in html and '<th class="sortable">' in html
    assert "<img" not in html and 'src="figures/' not in html  # figures are inline, not files


def test_same_records_give_identical_files(results, report, tmp_path):
    again = tmp_path / "again"
    make_report(results, {}, again)
    for name in ["report.md", "tables.tex", *(f"csv/{p.name}" for p in (report / "csv").glob("*.csv"))]:
        assert (again / name).read_bytes() == (report / name).read_bytes(), name
        assert str(results) not in (again / name).read_text()
    assert (again / "index.html").read_bytes() == (report / "index.html").read_bytes()


def test_no_match_exits_2_and_writes_nothing(results, tmp_path, capsys):
    out = tmp_path / "none"
    code = main(["report", "--results-dir", str(results), "--where", "method=nosuch", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "no records match method=nosuch" in capsys.readouterr().err


def test_where_and_format_options(results, tmp_path, capsys):
    assert parse_where(["method=lora,bitfit,task=mrpc"]) == {"method": ["lora", "bitfit"], "task": ["mrpc"]}
    with pytest.raises(UsageError):
        parse_where(["metod=lora"])
    with pytest.raises(UsageError):
        parse_formats("html,pdf")
    out = tmp_path / "md"
    code = main(["report", "--results-dir", str(results), "--where", "method=bitfit", "--out", str(out), "--format", "md"])
    assert code == 0 and (out / "report.md").exists() and not (out / "index.html").exists()
    md = (out / "report.md").read_text()
    assert "bitfit" in md and "| lora" not in md and "Inference latency" not in md  # latency records hold no bitfit
    figures = sorted(p.name for p in (out / "figures").glob("*.svg"))
    fronts = [f"front-{axis}-tiny-roberta-mrpc.svg" for axis in ("checkpoint", "memory", "params", "time")]
    assert figures == [*fronts, "seeds-tiny-roberta-mrpc.svg"]  # no latency or profile records: no such figure


def test_paper_reader():
    shared = Path("/work/shared/reference/paper_tables.json")
    if shared.exists():
        assert json.loads(shared.read_text()) == paper.raw_tables()
    rows = paper.paper_rows()
    assert {r.table for r in rows} == {"table2", "table3", "table13", "table14"}
    assert all(r.method for r in rows)  # every paper label maps to one of our methods
    small, _ = paper.match("table2", "roberta-large", "adapter_h", 835_968)
    big, _ = paper.match("table2", "roberta-large", "adapter_h", 6_343_680)
    assert (small.params_text, big.params_text) == ("0.8M", "6.0M")
    ref, same = paper.match("table3", "tiny-gpt2", "lora", 4096)
    assert ref.model == "gpt2-medium" and not same and ref.values["meteor"] == 46.8


def test_pareto_front():
    points = [(10.0, 50.0), (100.0, 60.0), (1000.0, 55.0), (10.0, 40.0)]
    assert pareto(points, higher=True) == [0, 1]
    assert pareto(points, higher=False) == [3]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
GLUE_TASKS = {t: "accuracy" for t in ("mnli", "sst2", "mrpc", "qnli", "qqp", "rte")} | {"cola": "matthews", "stsb": "pearson"}


def glue_grid(results: Path, root: Path) -> Path:
    """8 GLUE tasks x 3 models x 2 methods x 3 seeds, copied from real tiny records with scores set: the paper's full Table 2 shape."""
    bases = {
        m: read_record(next(p for p in Store(results).paths("run") if f"-{m}-mrpc-" in p.name and "failed" not in p.name))
        for m in ("lora", "bitfit")
    }
    for (method, base), model, (task, metric), seed in itertools.product(
        bases.items(), ("tiny-roberta", "roberta-base", "roberta-large"), GLUE_TASKS.items(), (0, 1, 2)
    ):
        r = copy.deepcopy(base)
        r["run_id"], r["seed"], r["key"] = f"{method}-{model}-{task}-{seed}", seed, f"{method}{model}{task}"
        r["config"].update(model=model, task=task)
        r["main_metric"], r["metrics"] = metric, {metric: {"value": 0.5 + 0.1 * seed + 0.01 * len(task), "higher_is_better": True}}
        write_record(root / "scratch" / f"{r['run_id']}.json", r)
    return root


def test_the_full_glue_grid_tables_tex_compiles_and_fits(results, tmp_path):
    from test_report_outputs import PDFLATEX, compile_tex, overfull

    out = tmp_path / "rep"
    make_report(glue_grid(results, tmp_path / "grid"), {}, out, ("tex",))
    tex = (out / "tables.tex").read_text()
    assert r"\begin{longtable}" in tex and r"p{0." in tex  # the 27-row GLUE table is three pages wide: wrapped columns
    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed")
    log = compile_tex(out / "tables.tex", tmp_path)
    assert max(overfull(log), default=0.0) <= 20.0 and "Float too large" not in log


def chromium(args: list[str], url: str, tmp_path: Path) -> str:
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000",
    ]  # fmt: skip
    return subprocess.run([*flags, *args, url], capture_output=True, text=True, timeout=180).stdout


PROBE = "<script>" + (Path(__file__).parent / "report_probe.js").read_text() + "</script></body>"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_headless_browser_full_glue_grid_fits_sorts_and_filters(results, tmp_path):
    """8 GLUE tasks, 3 models, 3 seeds at 1400 px: no wider than the window, every column sorts numerically,
    the model filter hides other models' rows and figures, every figure is there and drawn."""
    out = tmp_path / "rep"
    result = make_report(glue_grid(results, tmp_path / "grid"), {}, out, ("html",))
    probed = tmp_path / "probe.html"
    probed.write_text((out / "index.html").read_text().replace("</body>", PROBE))
    dom = chromium(["--dump-dom"], probed.as_uri(), tmp_path)
    found = json.loads(re.search(r"<pre id=\"probe\">(.*?)</pre>", dom).group(1))
    assert found["width"] <= 1400, found
    assert found["cut"] == []  # no table needs its own horizontal scroll: all eight tasks and Avg are in view
    assert found["unsorted"] == []
    assert found["figures"] == len(result.report.charts) == 3 * 8 * 5 and found["blank"] == 0  # 4 cost fronts + seeds per pair
    assert found["other_rows"] == 0 and found["other_figures"] == 0 and found["rows"] > 0 and found["shown_figures"] > 0
    shot = tmp_path / "shot.png"
    chromium([f"--screenshot={shot}"], (out / "index.html").as_uri(), tmp_path)
    from PIL import Image

    image = Image.open(shot).convert("L")
    low, high = image.getextrema()
    assert high - low > 100 and sum(1 for count in image.histogram() if count) > 20  # text and figures, not a blank page


def test_tuned_rows_are_marked_with_their_trials_and_trials_stay_out_of_the_scores(results, tmp_path):
    """Trials of a study show in the tuning table and figure; the run with `--preset tuned:<study>` says so, with the trial count."""
    import pandas as pd

    src = next(p for p in Store(results).paths("run") if "-lora-mrpc-" in p.name and "failed" not in p.name)
    base, root = read_record(src), tmp_path / "tuned"
    for n, lr in enumerate((1e-4, 3e-3, 1e-2)):  # three trials: different learning rates, tagged by the tune hook
        r = copy.deepcopy(base)
        r["run_id"], r["hooks"] = f"trial{n}", {"tune": {"study": "s1", "trial": n, "trials": 3, "params": {"lr": lr}}}
        r["config"]["training"]["lr"], r["key"] = lr, f"trial-key-{n}"
        write_record(root / "scratch" / f"trial{n}.json", r)
    tuned = copy.deepcopy(base)
    tuned["run_id"], tuned["key"] = "tuned", "tuned-key"
    tuned["config"].update(preset="tuned:s1")
    tuned["config"]["training"]["lr"] = 3e-3
    write_record(root / "scratch" / "tuned.json", tuned)
    write_record(root / "scratch" / "spec.json", {**copy.deepcopy(base), "run_id": "spec"})
    trials = [
        {"number": 0, "state": "COMPLETE", "value": 0.5, "params": {"lr": 1e-4}},
        {"number": 1, "state": "COMPLETE", "value": 0.7, "params": {"lr": 3e-3}},
        {"number": 2, "state": "PRUNED", "value": None, "params": {"lr": 1e-2}},
    ]
    summary = {"study": "s1", "method": "lora", "task": "mrpc", "model": "tiny-roberta", "metric": "accuracy", "direction": "maximize"}
    summary.update(n_trials=3, best_trial=1, best_value=0.7, best_params={"lr": 3e-3}, trials=trials)
    write_record(root / "studies" / "s1.json", summary)
    out = tmp_path / "rep"
    result = make_report(root, {}, out, ("md", "csv", "html"))

    glue = pd.read_csv(out / "csv" / "glue.csv", keep_default_na=False)
    assert sorted(glue.preset) == ["spec", "tuned:s1 (3 trials)"]  # the three trial runs are not score rows
    tuning = pd.read_csv(out / "csv" / "tuning.csv", keep_default_na=False)
    row = tuning.iloc[0]
    assert (row.study, row.trials, row.finished, row.pruned, row["best values"]) == ("s1", 3, 2, 1, "lr=0.003")
    assert any(c.name == "tuning-tiny-roberta-mrpc" for c in result.report.charts)
    assert "1 tuning study (3 finished trial runs in the selection)" in (out / "report.md").read_text()


def test_best_so_far_follows_the_direction():
    from peftbench.report.tuning import best_so_far

    trials = [{"number": 0, "state": "FAIL"}, {"number": 1, "state": "COMPLETE", "value": 3.0}, {"number": 2, "state": "PRUNED"}]
    trials.append({"number": 3, "state": "COMPLETE", "value": 1.0})
    assert best_so_far({"direction": "minimize", "trials": trials}) == [(1, 3.0), (2, 3.0), (3, 1.0)]
    assert best_so_far({"direction": "maximize", "trials": trials}) == [(1, 3.0), (2, 3.0), (3, 3.0)]


def test_a_task_without_a_paper_table_gets_a_table_of_its_own_metrics(results, tmp_path):
    """rotten-tomatoes is not in the paper: its own table, every metric of its spec, the median of seeds, no paper rows."""
    import pandas as pd

    root = synthetic(results, tmp_path, "lora-mrpc", [0.70, 0.80, 0.75], "accuracy", task="rotten-tomatoes")
    for path in (root / "scratch").glob("*.json"):
        r = read_record(path)
        r["metrics"]["f1"] = {"value": 0.5, "higher_is_better": True}
        write_record(path, r)
    out = tmp_path / "rep"
    make_report(root, {}, out, ("md", "csv"))
    table = pd.read_csv(out / "csv" / "rotten-tomatoes.csv")
    assert list(table.column) == ["accuracy", "f1"] and table.paper_label.isna().all()  # no paper row, no difference
    assert list(table.value) == [pytest.approx(75.0), pytest.approx(50.0)] and list(table.n) == [3, 3]
    assert "75.0 \\[70.0, 80.0\\]R n=3" in (out / "report.md").read_text()
    assert "(not in the paper)" in (out / "report.md").read_text()
