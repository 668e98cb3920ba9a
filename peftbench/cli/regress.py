"""`compare`, `check`, `bless`, `history`: regression tracking over run records (peftbench/regress/compare.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """Registers `compare`, `check`, `bless` and `history`."""
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
    from peftbench.records.store import results_dir
    from peftbench.regress import view as compare_view
    from peftbench.regress.compare import compare, load_side, parse_where

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
    from peftbench.errors import UsageError
    from peftbench.records.store import results_dir
    from peftbench.regress import view as compare_view
    from peftbench.regress.baselines import current_runs, default_baseline, load_baseline
    from peftbench.regress.compare import MISSING, NEW_FAILURE, NOT_COMPARABLE, REGRESSED, compare, parse_where

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
    from peftbench.records.store import check_writable, results_dir
    from peftbench.regress.baselines import baseline_target, bless
    from peftbench.regress.compare import parse_where
    from peftbench.tables import indent, render_table

    results = results_dir(args.results_dir)
    target = baseline_target(results, args.name, args.out)
    check_writable(target.parent, "baseline folder")
    existed = target.exists()
    path, runs = bless(results, parse_where(args.where), target, force=args.force)
    if runs:
        print(indent(render_table([(run.status, " ".join(run.identity), f"seed {run.seed}", run.record.get("run_id")) for run in runs])))
    print(f"{'updated' if existed else 'wrote'} baseline {path} ({len(runs)} runs); commit it to share it")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from peftbench.records.store import results_dir
    from peftbench.regress import history

    metric, points = history.collect(results_dir(args.results_dir), args.method, args.task, args.model, args.metric, args.by)
    print(history.table(metric, points))
    if args.out:
        title = f"{args.method} on {args.task}" + (f" ({args.model})" if args.model else "")
        print(f"figure: {history.figure(metric, points, Path(args.out), title)}")
    return 0
