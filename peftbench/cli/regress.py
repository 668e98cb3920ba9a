"""`compare`, `check`, `bless`, `history`: regression tracking over run records (peftbench/regress/).

The gate's rules live in `peftbench/regress/gate.py`; this module only reads flags and prints.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

WHERE_HELP = "only runs with KEY=VALUE (method, task, model, seed, status, commit (a prefix), training.lr, lr, ...; repeatable)"
VERBOSE_HELP = "every verdict of every pair, with its rule and the mode (exact or tolerance)"


def add_parser(sub: Any) -> None:
    """Registers `compare`, `check`, `bless` and `history`."""
    add_compare(sub)
    add_check(sub)
    add_bless(sub)
    add_history(sub)


def _results_dir(parser: Any, what: str = "where the runs are") -> None:
    parser.add_argument("--results-dir", help=f"{what} (default: $PEFTBENCH_RESULTS or ./results)")


def _where(parser: Any, extra: str = "") -> None:
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help=WHERE_HELP + extra)


def add_compare(sub: Any) -> None:
    compare = sub.add_parser(
        "compare",
        help="pair two sets of runs by configuration and seed; one outcome per pair",
        description="Pair the runs of A and B by comparability key and seed and give each pair one outcome: new failure, "
        "regressed, changed (exact mode), missing, not comparable (what differs is shown), improved, new, fixed, still "
        "failing, within tolerance. A side is a results directory, a baseline or record file, commit:SHA (the records of "
        "that commit in --results-dir) or KEY=VALUE filters on --results-dir; a side that selects no run is an error.",
        epilog="Exit codes: 0 compared (whatever the outcomes), 2 usage error (including a side that selects no run).",
    )
    compare.add_argument("a", metavar="A", help="the old side: DIR, FILE.json, commit:SHA or KEY=VALUE[,KEY=VALUE]")
    compare.add_argument("b", metavar="B", help="the new side, as A")
    _where(compare, "; applies to both sides")
    _results_dir(compare, "where commit:/KEY=VALUE sides look")
    compare.add_argument("--verbose", "-v", action="store_true", help=VERBOSE_HELP)
    compare.add_argument("--json", action="store_true", help="machine-readable output, every verdict with its rule")
    compare.set_defaults(func=cmd_compare)


def add_check(sub: Any) -> None:
    check = sub.add_parser(
        "check",
        help="compare the latest runs with a baseline, seed by seed; exit 1 on a regression, a change or a missing run",
        description="Compare the latest run of every configuration and seed in the results directory with a blessed "
        "baseline, seed by seed. Where both sides ran deterministically with the same versions, machine and configuration "
        "(exact mode), any change of a score is `changed`; elsewhere each seed is judged against the metric registry's "
        "tolerance. Fails on: new failure, regressed, changed, missing (a baseline configuration or seed with no current "
        "run), not comparable (a changed configuration). Improvements and new configurations pass and are listed.",
        epilog="Exit codes: 0 passed, 1 failed (see the outcomes above), 2 usage error (including --where matching nothing).",
    )
    check.add_argument("--against", help="the baseline file (default: <results-dir>/baselines/default.json, or the only one there)")
    _results_dir(check, "where the runs to check are")
    _where(check, "; applies to the baseline and the current runs")
    flags = {
        "--allow-changed": "a changed configuration (not comparable) does not fail the check",
        "--allow-missing": "a baseline configuration or seed with no current run does not fail the check",
        "--strict-new": "a configuration or seed the baseline does not have fails the check",
        "--fail-on-improved": "an improvement beyond tolerance fails the check (bless it to accept it)",
    }
    for flag, text in flags.items():
        check.add_argument(flag, action="store_true", help=text)
    check.add_argument("--verbose", "-v", action="store_true", help=VERBOSE_HELP)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=cmd_check)


def add_bless(sub: Any) -> None:
    bless = sub.add_parser(
        "bless",
        help="write the selected runs as a baseline (results/baselines/NAME.json)",
        description="Write the latest finished or failed run of every configuration and seed (filtered by --where) as a "
        "baseline to commit: the records, the commit, versions and machine. Refuses when the source tree or a run had "
        "uncommitted changes, unless --force. Blessing is how a `changed` or `improved` result becomes the new baseline.",
    )
    _where(bless)
    bless.add_argument("--name", help="baseline name: written to <results-dir>/baselines/NAME.json (default: default)")
    bless.add_argument("--out", help="write the baseline to this file instead")
    _results_dir(bless)
    bless.add_argument("--force", action="store_true", help="bless even with uncommitted changes (the baseline says so)")
    bless.set_defaults(func=cmd_bless)


def add_history(sub: Any) -> None:
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
    _results_dir(history)
    history.add_argument("--out", help="write the figure to this file (e.g. history.svg)")
    history.set_defaults(func=cmd_history)


def cmd_compare(args: argparse.Namespace) -> int:
    from peftbench.records.store import results_dir
    from peftbench.regress import view
    from peftbench.regress.compare import compare
    from peftbench.regress.runs import parse_where
    from peftbench.regress.sides import load_side

    where = parse_where(args.where)
    results = results_dir(args.results_dir)
    a, b = load_side(args.a, results, where), load_side(args.b, results, where)
    pairs = compare(a, b)
    labels = (f"{args.a} ({len(a)} runs)", f"{args.b} ({len(b)} runs)")
    print(json.dumps(view.to_json(pairs, labels), indent=2, default=str) if args.json else view.table(pairs, labels, args.verbose))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from peftbench.records.store import results_dir
    from peftbench.regress import gate, view
    from peftbench.regress.baselines import default_baseline, load_baseline
    from peftbench.regress.runs import parse_where

    results = results_dir(args.results_dir)
    path = Path(args.against) if args.against else default_baseline(results)
    baseline = load_baseline(path)
    policy = gate.Policy(args.allow_changed, args.allow_missing, args.strict_new, args.fail_on_improved)
    result = gate.check(baseline, results, parse_where(args.where), policy)
    labels = (
        f"baseline {path} (commit {str(baseline.data.get('commit'))[:10]}, {result.baseline_runs} runs)",
        f"{results} ({result.current_runs} runs)",
    )
    if args.json:
        extra = {"passed": result.passed, "failing": sorted(result.failing), "unrelated_runs": result.unrelated}
        print(json.dumps(view.to_json(result.pairs, labels, **extra), indent=2, default=str))
    else:
        print(view.table(result.pairs, labels, args.verbose))
        print("\n".join(view.check_lines(result)))
    return 0 if result.passed else 1


def cmd_bless(args: argparse.Namespace) -> int:
    from peftbench.records.query import parse_where
    from peftbench.records.store import check_writable, results_dir
    from peftbench.regress.baselines import baseline_target, bless
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
