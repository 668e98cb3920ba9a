"""The `peftbench` command line. Every command's logic lives in its module; this file parses,
dispatches, and turns errors into exit codes: 0 success, 1 a started run failed (and was
recorded), 2 a usage or input error caught before any work, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peftbench import __version__, stop
from peftbench.errors import PeftbenchError, RunFailed, RunInterrupted

EPILOG = "Exit codes: 0 success, 1 a run failed (recorded), 2 usage or input error, 130 interrupted."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peftbench",
        description="Compare parameter-efficient fine-tuning methods the way the LoRA paper did.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"peftbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ls = sub.add_parser("ls", help="list methods, tasks or models", description="List the registered methods, tasks or model presets.")
    ls.add_argument("what", choices=["methods", "tasks", "models"])
    ls.set_defaults(func=cmd_ls)

    validate = sub.add_parser(
        "validate",
        help="check every spec and preset (touches no model)",
        description="Load every method and task spec and model preset, resolve every preset, touch no model.",
    )
    validate.set_defaults(func=cmd_validate)

    run = sub.add_parser(
        "run",
        help="train and evaluate one method on one task, measured and recorded",
        description="One train+eval run, measured, written as a JSON run record.",
        epilog=EPILOG,
    )
    run.add_argument("--method", required=True, help="a method name (peftbench ls methods)")
    run.add_argument("--task", required=True, help="a task name (peftbench ls tasks)")
    run.add_argument("--model", help="a model preset (peftbench ls models) or a local model folder; default: the task's")
    run.add_argument("--preset", help="a named preset of the method spec (e.g. repo)")
    run.add_argument("--seed", type=int, help="random seed (same as --set seed=N)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyperparameter or training setting, e.g. --set r=16 --set lr=1e-4 (repeatable)",
    )
    run.add_argument("--max-steps", type=int, help="stop after N optimizer steps (same as --set max_steps=N)")
    run.add_argument("--epochs", type=int, help="number of epochs (same as --set epochs=N)")
    run.add_argument(
        "--data-dir",
        help="the dataset's original files, or 'sample' for the bundled sample; default: the hub (tiny models default to the sample)",
    )
    run.add_argument("--results-dir", help="where records go (default: $PEFTBENCH_RESULTS or ./results)")
    run.add_argument("--record", action="store_true", help="a canonical run (results/runs/) rather than scratch (results/scratch/)")
    run.set_defaults(func=cmd_run)

    params = sub.add_parser(
        "params",
        help="count trainable parameters and checkpoint size without weights",
        description="Exact parameter counts (paper convention: task head excluded; and all trainable), checkpoint bytes and the "
        "paper's formula, on the meta device: no weights, no download. --paper recounts every defined row of Tables 2, 3, 4, 15.",
    )
    params.add_argument("--method", help="a method name (peftbench ls methods)")
    params.add_argument("--model", help="a model preset (incl. gpt3-175b) or a local model folder")
    params.add_argument("--task", help="count for this task's model class (default: 2-label classifier; GPT-2 as a language model)")
    params.add_argument("--preset", help="a named preset of the method spec")
    params.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter")
    params.add_argument("--paper", action="store_true", help="every defined row of the paper's Tables 2, 3, 4 and 15 beside our count")
    params.add_argument("--json", action="store_true", help="machine-readable output")
    params.set_defaults(func=cmd_params)

    show = sub.add_parser("show", help="print one run record, readable", description="Print one run record in a readable form.")
    show.add_argument("run", help="a run id, a unique prefix of one, or a path to a record")
    show.add_argument("--results-dir", help="where records are (default: $PEFTBENCH_RESULTS or ./results)")
    show.add_argument("--json", action="store_true", help="print the raw JSON record")
    show.set_defaults(func=cmd_show)
    runs = sub.add_parser(
        "runs",
        help="list the records in the results directory, one line each",
        description="One line per record: id, status (a running record whose process is gone shows as 'stale'), method, "
        "task, model, seed, main metric, wall time. Filters combine; unreadable files are reported and skipped.",
    )
    runs.add_argument("--method", help="only this method")
    runs.add_argument("--task", help="only this task")
    runs.add_argument("--model", help="only this model")
    runs.add_argument("--status", choices=["running", "finished", "failed", "interrupted", "stale"], help="only this status")
    runs.add_argument("--seed", type=int, help="only this seed")
    runs.add_argument("--key", help="only this comparability key")
    runs.add_argument("--kind", choices=["run", "latency", "profile"], default="run", help="record kind (default: run)")
    runs.add_argument("--results-dir", help="where records are (default: $PEFTBENCH_RESULTS or ./results)")
    runs.add_argument("--json", action="store_true", help="the records themselves, as a JSON list")
    runs.set_defaults(func=cmd_runs)
    sweep = sub.add_parser(
        "sweep",
        help="run a grid of methods x tasks x models x seeds, resumable",
        description="Run every cell of a grid: from --methods/--tasks/--models/--seeds, from a built-in preset "
        "(peftbench sweep smoke; --list shows them) or a sweep spec file (peftbench sweep my.yaml). Every cell is resolved "
        "before anything trains. Cells with a finished record of the same comparability key and seed are skipped; "
        "interrupted ones continue from their checkpoint; failed ones are retried; a failing cell never stops the grid.",
        epilog=EPILOG,
    )
    sweep.add_argument("spec", nargs="?", help="a sweep preset name (see --list) or a sweep spec file (.yaml)")
    sweep.add_argument("--list", action="store_true", help="list the built-in sweep presets")
    sweep.add_argument("--methods", help="comma-separated method names")
    sweep.add_argument("--tasks", help="comma-separated task names")
    sweep.add_argument("--models", help="comma-separated models (default: each task's); pairs a model cannot serve are left out")
    sweep.add_argument("--seeds", help="comma-separated seeds (default 0)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="for every cell (repeatable)")
    sweep.add_argument("--preset", dest="method_preset", help="a named method preset applied to every method (e.g. repo)")
    sweep.add_argument("--data-dir", help="the datasets' original files (as for run)")
    sweep.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1; one GPU each when there are GPUs)")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local", help="local processes (default) or Ray tasks")
    sweep.add_argument("--address", help="a Ray cluster's address (default: a local Ray instance)")
    sweep.add_argument("--keep-checkpoints", action="store_true", help="keep the checkpoints of finished runs")
    sweep.add_argument("--results-dir", help="where records go (default: $PEFTBENCH_RESULTS or ./results)")
    sweep.add_argument(
        "--fair",
        action="store_true",
        help="tune every method first (same trials, same budget), then run each best configuration",
    )
    sweep.add_argument("--trials", type=int, default=20, help="with --fair: trials per method (default 20)")
    sweep.add_argument("--budget-steps", type=int, help="with --fair: max_steps of every trial and every final run")
    sweep.add_argument("--report", metavar="DIR", help="write the report of the sweep's runs here (default: the spec's report.out)")
    sweep.add_argument("--no-report", action="store_true", help="no report, only the summary table")
    sweep.set_defaults(func=cmd_sweep)
    add_tune_parser(sub)
    add_measure_parsers(sub)
    add_regress_parsers(sub)

    report = sub.add_parser(
        "report",
        help="tables like the paper's, our numbers beside the paper's, figures (HTML, Markdown, LaTeX, CSV)",
        description="Read the records, pool the seeds of each configuration (comparability key) as the paper does (GLUE: "
        "median; E2E, WebNLG, DART: mean; ± the standard deviation, n seeds in every cell), put the paper's numbers beside "
        "them, and write index.html (self-contained), report.md, tables.tex and csv/ under --out. Paper rows not run yet "
        "are listed as missing.",
        epilog=EPILOG,
    )
    report.add_argument(
        "--where",
        action="append",
        metavar="FIELD=VALUE[,...]",
        help="only these records, e.g. method=lora,bitfit,task=mrpc (fields: method, task, model, seed, key, data, preset; "
        "an item without '=' adds a value to the field before it; repeatable)",
    )
    report.add_argument("--results-dir", help="where records are (default: $PEFTBENCH_RESULTS or ./results)")
    report.add_argument("--out", default="reports/latest", help="output folder (default: reports/latest)")
    report.add_argument("--format", help="comma-separated subset of html,md,tex,csv (default: all)")
    report.set_defaults(func=cmd_report)
    return parser


def add_tune_parser(sub: Any) -> None:
    tune = sub.add_parser(
        "tune",
        help="tune one method on one task (Optuna), the best configuration becomes the preset tuned:<study>",
        description="An Optuna study (seeded TPE, median pruning on each epoch's evaluation) over the method spec's search: space. "
        "Fair comparisons: give every method the same --trials and --budget-steps. Running it again runs only the missing trials.",
        epilog=EPILOG,
    )
    tune.add_argument("--method", required=True, help="a method name (peftbench ls methods)")
    tune.add_argument("--task", required=True, help="a task name (peftbench ls tasks)")
    tune.add_argument("--model", help="a model preset or a local model folder; default: the task's")
    tune.add_argument("--trials", type=int, required=True, help="the study's total number of trials (finished + pruned)")
    tune.add_argument("--budget-steps", type=int, help="max_steps of every trial (the same for every method: the fair budget)")
    tune.add_argument("--metric", help="the score to optimise (default: the task's main metric)")
    tune.add_argument("--seeds", type=int, default=1, help="seeds per trial (0..K-1); the trial's score is their mean (default 1)")
    tune.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="for every trial (repeatable)")
    tune.add_argument("--preset", help="a named method preset under the searched values")
    tune.add_argument("--pruner", choices=["median", "halving", "none"], default="median", help="median rule (default), successive halving")
    tune.add_argument("--data-dir", help="the dataset's original files (as for run)")
    tune.add_argument("--results-dir", help="where records and studies go (default: $PEFTBENCH_RESULTS or ./results)")
    tune.add_argument("--storage", help="an Optuna storage URL (default: sqlite under <results>/studies/)")
    tune.add_argument("--study", help="the study's name (default: method-task-model-<hash of the settings>)")
    tune.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from peftbench.store import Store
    from peftbench.tune import TuneSpec, tune

    spec = TuneSpec(
        method=args.method,
        task=args.task,
        model=args.model,
        trials=args.trials,
        budget_steps=args.budget_steps,
        metric=args.metric,
        seeds=args.seeds,
        overrides=tuple(args.overrides),
        preset=args.preset,
        data_dir=args.data_dir,
        pruner=args.pruner,
        study=args.study,
        storage=args.storage,
    )
    outcome = tune(spec, Store(args.results_dir and Path(args.results_dir)))
    s = outcome.summary
    best = f"best {s['metric']} {s['best_value']} (trial {s['best_trial']})"
    print(f"tune {outcome.study}: ran {outcome.ran} trial(s); {s['n_trials']} done; {best}")
    if s["best_params"] is not None:
        sets = "".join(f" --set {o}" for o in spec.fixed_overrides())
        model = f" --model {args.model}" if args.model else ""
        print(f"best: {s['best_params']}  ->  preset {outcome.preset}")
        print(f"  peftbench run --method {args.method} --task {args.task}{model} --preset {outcome.preset}{sets}")
    for line in outcome.failed:
        print(f"  failed: {line}", file=sys.stderr)
    return 0 if s["best_params"] is not None else 1


def cmd_ls(args: argparse.Namespace) -> int:
    from peftbench.catalog import catalog

    rows = catalog(args.what)
    width = max(len(name) for name, _, _ in rows)
    for name, description, source in rows:
        print(f"{name:<{width}}  {description}  [{source}]")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from peftbench.catalog import validate_all

    for line in validate_all():
        print(line)
    print("all specs valid")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from peftbench import runner
    from peftbench.display import EpochPrinter, print_config, print_summary
    from peftbench.resolve import resolve_run
    from peftbench.store import Store

    overrides = list(args.overrides)
    for key, value in (("seed", args.seed), ("max_steps", args.max_steps), ("epochs", args.epochs)):
        if value is not None:
            overrides.append(f"{key}={value}")
    resolved = resolve_run(
        args.method, args.task, args.model, preset=args.preset, overrides=overrides, data_dir=args.data_dir, results_dir=args.results_dir
    )
    plan = runner.prepare(resolved, Store(args.results_dir and Path(args.results_dir)), canonical=args.record)
    if plan.record_path is None:  # not the main process of a multi-process launch: train quietly, write nothing
        runner.execute(plan)
        return 0
    print_config(plan)
    record = runner.execute(plan, callbacks=[EpochPrinter()])
    print_summary(record, plan.record_path)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from peftbench.display import runs_table
    from peftbench.store import Store

    where = {"method": args.method, "task": args.task, "model": args.model, "status": args.status, "seed": args.seed, "key": args.key}
    entries = list(Store(args.results_dir and Path(args.results_dir)).entries(args.kind, **where))
    if args.json:
        print(json.dumps([{"path": str(e.path), "effective_status": e.status, **e.record} for e in entries], indent=2, default=str))
    else:
        print(runs_table(entries))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from peftbench import sweep
    from peftbench.store import Store

    if args.list:
        for name in sweep.preset_names():
            spec = sweep.load_spec(name)
            print(f"{name:<22} {len(spec.cells()):>4} cells  {spec.description}")
        return 0
    spec = sweep.grid_from_flags(args)
    store = Store(args.results_dir and Path(args.results_dir))
    cells = sweep.tune_grid(spec, store, args.trials, args.budget_steps) if args.fair else None
    result = sweep.run_sweep(
        spec, store, jobs=args.jobs, backend=args.backend, address=args.address, keep_checkpoints=args.keep_checkpoints, cells=cells
    )
    print(sweep.summary_table(result, store))
    out = args.report or (spec.report or {}).get("out")
    if out and not args.no_report and result.keys:
        from peftbench.report import make_report

        written = make_report(store.root, {"key": list(result.keys)}, Path(out)).written
        page = next((p for p in written if p.name == "index.html"), None)
        print(f"report: {page or out} ({len(written)} files)")
    ran = len(result.outcomes)
    print(
        f"sweep {spec.name}: {ran} ran, {len(result.skipped)} skipped (done before), {len(result.failed)} failed, "
        f"{result.seconds:.0f} s; records in {store.root}"
    )
    for outcome in result.failed:
        print(f"  failed: {outcome.cell.label}: {outcome.error}", file=sys.stderr)
    return 1 if result.failed else 0


def cmd_params(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from peftbench import params
    from peftbench.errors import UsageError

    if args.paper:
        rows = params.paper_table()
        print(json.dumps(rows, indent=2) if args.json else params.format_paper_table(rows))
        return 0
    if not (args.method and args.model):
        raise UsageError("params needs --method and --model (or --paper)")
    count = params.count_params(args.method, args.model, args.task, args.preset, args.overrides)
    if args.json:
        print(json.dumps({**asdict(count), "hyperparameters": asdict(count.hyperparameters)}, indent=2))
    else:
        print(params.describe(count))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from peftbench.display import show_record
    from peftbench.record import effective_status
    from peftbench.store import Store, read_record

    path = Store(args.results_dir and Path(args.results_dir)).find(args.run)
    record = read_record(path)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    print(json.dumps(record, indent=2) if args.json else show_record(record, path, effective_status(record, heartbeat=mtime)))
    return 0


def add_regress_parsers(sub: Any) -> None:
    """`compare`, `check`, `bless`, `history`: regression tracking over run records (peftbench/compare.py)."""
    where_help = "only runs with KEY=VALUE (method, task, model, seed, status, commit (a prefix), training.lr, lr, ...; repeatable)"
    compare = sub.add_parser(
        "compare",
        help="pair two sets of runs by configuration and seed; one outcome per pair",
        description="Pair the runs of A and B by comparability key and seed (seeds aggregated when both sides have several) "
        "and give each pair one outcome: new failure, regressed, not comparable (what differs is shown), improved, fixed, "
        "still failing, within tolerance, missing. A side is a results directory, a baseline or record file, commit:SHA "
        "(the records of that commit in --results-dir) or KEY=VALUE filters on --results-dir.",
    )
    compare.add_argument("a", metavar="A", help="the old side: DIR, FILE.json, commit:SHA or KEY=VALUE[,KEY=VALUE]")
    compare.add_argument("b", metavar="B", help="the new side, as A")
    compare.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help=where_help + "; applies to both sides")
    compare.add_argument("--results-dir", help="where commit:/KEY=VALUE sides look (default: $PEFTBENCH_RESULTS or ./results)")
    compare.add_argument("--verbose", "-v", action="store_true", help="every verdict of every pair, with its rule")
    compare.add_argument("--json", action="store_true", help="machine-readable output, every verdict with its rule")
    compare.set_defaults(func=cmd_compare)

    check = sub.add_parser(
        "check",
        help="compare the latest runs with a baseline; exit 1 on a regression or a new failure",
        description="Compare the latest run of every configuration and seed in the results directory with a blessed "
        "baseline. Exit 1 on a regression, a new failure, or a run whose configuration differs from the baseline's "
        "(not comparable; allowed with --allow-changed); 0 otherwise.",
        epilog="Exit codes: 0 no regression, 1 a regression or new failure (or a changed configuration), 2 usage error.",
    )
    check.add_argument("--against", help="the baseline file (default: <results-dir>/baselines/default.json, or the only one there)")
    check.add_argument("--results-dir", help="where the runs to check are (default: $PEFTBENCH_RESULTS or ./results)")
    check.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help=where_help)
    check.add_argument("--allow-changed", action="store_true", help="a changed configuration (not comparable) does not fail the check")
    check.add_argument("--verbose", "-v", action="store_true", help="every verdict of every pair, with its rule")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=cmd_check)

    bless = sub.add_parser(
        "bless",
        help="write the selected runs as a baseline (results/baselines/NAME.json)",
        description="Write the latest finished or failed run of every configuration and seed (filtered by --where) as a "
        "baseline to commit: the records, the commit, versions and machine. Refuses when the source tree or a run had "
        "uncommitted changes, unless --force.",
    )
    bless.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help=where_help)
    bless.add_argument("--name", help="baseline name: written to <results-dir>/baselines/NAME.json (default: default)")
    bless.add_argument("--out", help="write the baseline to this file instead")
    bless.add_argument("--results-dir", help="where the runs are (default: $PEFTBENCH_RESULTS or ./results)")
    bless.add_argument("--force", action="store_true", help="bless even with uncommitted changes (the baseline says so)")
    bless.set_defaults(func=cmd_bless)

    history = sub.add_parser(
        "history",
        help="one metric of one method and task across commits, as a table and a figure",
        description="One metric of the finished runs of a method on a task, per commit (or date) and configuration, "
        "with the seeds' mean, standard deviation, minimum and maximum; --out draws it (SVG, PNG or PDF).",
    )
    history.add_argument("--method", required=True, help="a method name")
    history.add_argument("--task", required=True, help="a task name")
    history.add_argument("--model", help="only this model")
    history.add_argument("--metric", help="a score (default: the task's main metric) or a column such as train_tokens_per_s")
    history.add_argument("--by", choices=["commit", "date"], default="commit", help="group runs by commit (default) or by date")
    history.add_argument("--results-dir", help="where the runs are (default: $PEFTBENCH_RESULTS or ./results)")
    history.add_argument("--out", help="write the figure to this file (e.g. history.svg)")
    history.set_defaults(func=cmd_history)


def cmd_compare(args: argparse.Namespace) -> int:
    from peftbench import compare_view
    from peftbench.compare import compare, load_side, parse_where
    from peftbench.store import results_dir

    where = parse_where(args.where)
    results = results_dir(args.results_dir)
    a, b = load_side(args.a, results, where), load_side(args.b, results, where)
    pairs = compare(a, b)
    labels = (f"{args.a} ({len(a)} runs)", f"{args.b} ({len(b)} runs)")
    print(
        json.dumps(compare_view.to_json(pairs, labels), indent=2, default=str)
        if args.json
        else compare_view.table(pairs, labels, args.verbose)
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from peftbench import compare_view
    from peftbench.baselines import current_runs, default_baseline, load_baseline
    from peftbench.compare import MISSING, NEW_FAILURE, NOT_COMPARABLE, REGRESSED, compare, parse_where
    from peftbench.errors import UsageError
    from peftbench.store import results_dir

    results = results_dir(args.results_dir)
    path = Path(args.against) if args.against else default_baseline(results)
    baseline = load_baseline(path)
    runs = current_runs(results, baseline, parse_where(args.where))
    if not runs:
        raise UsageError(f"no run in {results} of any method, task and model in the baseline {path}: nothing to check")
    every = compare(baseline.runs, runs)
    pairs = [p for p in every if not (p.outcome == MISSING and not p.a)]  # new seeds or runs: not the baseline's business
    extra = len(every) - len(pairs)
    failing = {REGRESSED, NEW_FAILURE} | (set() if args.allow_changed else {NOT_COMPARABLE})
    bad = [p for p in pairs if p.outcome in failing]
    labels = (
        f"baseline {path} (commit {str(baseline.data.get('commit'))[:10]}, {len(baseline.runs)} runs)",
        f"{results} ({len(runs)} runs)",
    )
    if args.json:
        print(json.dumps(compare_view.to_json(pairs, labels, passed=not bad, failing=sorted(failing)), indent=2, default=str))
    else:
        print(compare_view.table(pairs, labels, args.verbose))
        if extra:
            print(f"{extra} run(s) of newer configurations or seeds have no baseline counterpart (not judged)")
        print(f"check {'FAILED' if bad else 'passed'}: {len(bad)} of {len(pairs)} pairs {' / '.join(sorted(failing))}")
    return 1 if bad else 0


def cmd_bless(args: argparse.Namespace) -> int:
    from peftbench.baselines import baseline_target, bless
    from peftbench.compare import parse_where
    from peftbench.store import results_dir

    results = results_dir(args.results_dir)
    target = baseline_target(results, args.name, args.out)
    existed = target.exists()
    path, runs = bless(results, parse_where(args.where), target, force=args.force)
    for run in runs:
        print(f"  {run.status:<8} {' '.join(run.identity)} seed {run.seed}  {run.record.get('run_id')}")
    print(f"{'updated' if existed else 'wrote'} baseline {path} ({len(runs)} runs); commit it to share it")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from peftbench import history
    from peftbench.store import results_dir

    metric, points = history.collect(results_dir(args.results_dir), args.method, args.task, args.model, args.metric, args.by)
    print(history.table(metric, points))
    if args.out:
        title = f"{args.method} on {args.task}" + (f" ({args.model})" if args.model else "")
        print(f"figure: {history.figure(metric, points, Path(args.out), title)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from peftbench.report import make_report, parse_formats, parse_where
    from peftbench.store import results_dir

    result = make_report(results_dir(args.results_dir), parse_where(args.where), Path(args.out), parse_formats(args.format))
    print(result.report.summary[0])
    for table in result.report.tables:
        if table.row_kind[0] == "ours":  # the paper-layout score tables, in full; the rest by size
            print(f"\n{table.title}\n{table.to_text()}\n")
        else:
            print(f"{table.title}: {len(table.frame)} rows")
    for path in result.written:
        if path.suffix in (".html", ".md", ".tex"):
            print(f"wrote {path}")
    csvs = [p for p in result.written if p.suffix == ".csv"]
    print(f"wrote {len(csvs)} CSV files and {len(result.report.charts)} figures under {args.out}")
    return 0


def add_measure_parsers(sub: Any) -> None:
    """`latency` and `profile`: the paper's speed and memory measurements, without training a task."""
    latency = sub.add_parser(
        "latency",
        help="single-forward latency of methods vs the base model (the paper's Table 1 protocol)",
        description="Single forward pass (no grad, eval mode, warm-up; synchronised on CUDA) of the base model, an A/A control "
        "(an identical copy), each method on its own copy and merged copies of mergeable methods, all in one process, timed in "
        "rounds with the order rotated every round. Overhead = median of the per-round ratios to the base, labelled "
        "'distinguishable' when the middle half of its ratios lies outside the A/A control's and 1.0, else 'within noise'. "
        "Random weights of the real shape: no download.",
        epilog=EPILOG,
    )
    latency.add_argument("--model", required=True, help="a model preset (e.g. gpt2-medium, tiny-gpt2) or a local model folder")
    latency.add_argument("--methods", required=True, help="comma-separated method names, e.g. lora,adapter_h,adapter_l")
    latency.add_argument("--batch", help="comma-separated batch sizes, zipped with --seq (default on CUDA: 32,16,1 - the paper's)")
    latency.add_argument("--seq", help="comma-separated sequence lengths, zipped with --batch (default on CUDA: 512,256,128)")
    latency.add_argument("--rounds", type=int, help="timed rounds per cell (default: as many as --budget allows, 10..100)")
    latency.add_argument("--budget", type=float, default=30.0, help="seconds per cell when --rounds is not given (default 30)")
    latency.add_argument("--warmup", type=int, default=3, help="untimed warm-up rounds per cell (default 3)")
    add_shared_measure_options(latency, "latency", cpu_help="; default grid 4x128, 2x64, 1x32, 1x8")
    latency.set_defaults(func=cmd_latency)

    profile = sub.add_parser(
        "profile",
        help="one training step per method: time, peak memory, optimizer state, vs ft and the floor",
        description="One training step per method: step time, its paired ratios to ft and to the floor (the frozen model "
        "with gradients only w.r.t. the input embeddings), peak memory, the AdamW state actually allocated and the trainable "
        "parameters. Step times come from one process in which the floor and every method (each on its own copy of the same "
        "random-init model, with its own AdamW) run one step per round, in an order rotated every round; ratios are medians "
        "of the per-round ratios, shown with their quartiles. Peak memory comes from a fresh process per variant. "
        "Random weights of the real shape: no download.",
        epilog=EPILOG,
    )
    profile.add_argument("--model", required=True, help="a model preset (e.g. roberta-base) or a local model folder")
    profile.add_argument("--methods", required=True, help="comma-separated method names, e.g. ft,lora,bitfit,adapter_h")
    profile.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    profile.add_argument("--seq", type=int, default=128, help="sequence length (default 128)")
    profile.add_argument(
        "--rounds",
        "--steps",
        dest="rounds",
        type=int,
        help="timed rounds, one step of every variant each (default 10; a multiple of the variant count puts each at every "
        "position equally often)",
    )
    profile.add_argument("--warmup", type=int, default=1, help="untimed warm-up rounds (default 1)")
    add_shared_measure_options(profile, "profile")
    profile.add_argument(
        "--no-memory",
        "--in-process",
        dest="no_memory",
        action="store_true",
        help="skip the per-variant peak-memory processes: everything runs in this process, no peak memory is reported "
        "(step times always come from this process)",
    )
    profile.set_defaults(func=cmd_profile)


def add_shared_measure_options(parser: argparse.ArgumentParser, folder: str, cpu_help: str = "") -> None:
    """Options `latency` and `profile` share: device, threads, dtype, method hyperparameters, seed, results."""
    parser.add_argument("--cpu", action="store_true", help=f"run on the CPU even if CUDA is present{cpu_help}")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--dtype", default="fp32", help="fp32 (default), fp16 or bf16")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method hyperparameter for every listed method that has it, or METHOD.KEY=VALUE for one (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    parser.add_argument("--results-dir", help=f"where records go (default: $PEFTBENCH_RESULTS or ./results); written to {folder}/")


def parse_cells(batch: str | None, seq: str | None) -> list[tuple[int, int]] | None:
    """`--batch 32,16,1 --seq 512,256,128` -> [(32, 512), (16, 256), (1, 128)]; a single value pairs with every other."""
    from peftbench.errors import UsageError

    if batch is None and seq is None:
        return None

    def ints(flag: str, text: str | None) -> list[int]:
        try:
            return [int(x) for x in (text or "").split(",") if x.strip()]
        except ValueError:
            raise UsageError(f"{flag} expects comma-separated integers, got {text!r}") from None

    b, s = ints("--batch", batch), ints("--seq", seq)
    if not b or not s:
        raise UsageError("--batch and --seq go together (their lists are zipped into cells)")
    if len(b) == 1:
        b = b * len(s)
    if len(s) == 1:
        s = s * len(b)
    if len(b) != len(s):
        raise UsageError(f"--batch has {len(b)} values and --seq {len(s)}; they are zipped, so give as many of each (or one)")
    return list(zip(b, s, strict=True))


def cmd_latency(args: argparse.Namespace) -> int:
    from peftbench.latency import parse_methods, run_latency
    from peftbench.store import results_dir

    result = run_latency(
        args.model,
        parse_methods(args.methods),
        cells=parse_cells(args.batch, args.seq),
        rounds=args.rounds,
        warmup=args.warmup,
        budget_s=args.budget,
        cpu=args.cpu,
        threads=args.threads,
        dtype=args.dtype,
        overrides=args.overrides,
        seed=args.seed,
        results=results_dir(args.results_dir),
    )
    print(result.text)
    print(f"record: {result.path}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from peftbench.profile import profile_from_args

    result = profile_from_args(args)
    print(result.text)
    print(f"record: {result.path}")
    if result.failed:
        print(f"peftbench: profile failed for {', '.join(result.failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    previous = stop.install()
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except PeftbenchError as exc:
        print(f"peftbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except RunFailed as exc:
        print(f"peftbench: {exc}", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"peftbench: interrupted; record: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("peftbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
