"""`sweep`: a grid of methods x tasks x models x seeds, resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from peftbench.cli.common import EPILOG, add_no_keep_adapters, add_results_dir, add_set, add_trust_pickle


def add_parser(sub: Any) -> None:
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
    add_set(sweep, "for every cell")
    sweep.add_argument(
        "--vary",
        action="append",
        metavar="KEY=V1,V2",
        help="an axis: every value its own cell (repeatable: the product of the axes); KEY as for --set, or METHOD.KEY for "
        "that method's cells only (lora.r=1,2,4,8); values split on '|' when there is one (targets=q|v|q,v), and '+' "
        "joins a set (targets=q,v,q+v)",
    )
    sweep.add_argument("--preset", dest="method_preset", help="a named method preset applied to every method (e.g. repo)")
    sweep.add_argument("--data-dir", help="the datasets' original files (as for run)")
    sweep.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1; one GPU each when there are GPUs)")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local", help="local processes (default) or Ray tasks")
    sweep.add_argument("--address", help="a Ray cluster's address (default: a local Ray instance)")
    sweep.add_argument("--keep-checkpoints", action="store_true", help="keep the checkpoints of finished runs")
    add_results_dir(sweep, "where records go")
    sweep.add_argument(
        "--fair",
        action="store_true",
        help="tune every method first (same trials, same budget), then run each best configuration",
    )
    sweep.add_argument("--trials", type=int, default=20, help="with --fair: trials per method (default 20)")
    sweep.add_argument("--budget-steps", type=int, help="with --fair: max_steps of every trial and every final run")
    sweep.add_argument("--report", metavar="DIR", help="write the report of the sweep's runs here (default: the spec's report.out)")
    sweep.add_argument("--no-report", action="store_true", help="no report, only the summary table")
    add_trust_pickle(sweep)
    add_no_keep_adapters(sweep)
    sweep.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from peftbench.grid import sweep
    from peftbench.records.store import Store

    if args.list:
        from peftbench.tables import render_table

        specs = {name: sweep.load_spec(name) for name in sweep.preset_names()}
        print(render_table([(name, f"{len(spec.cells())} cells", spec.description) for name, spec in specs.items()]))
        return 0
    spec = sweep.grid_from_flags(args)
    store = Store(args.results_dir and Path(args.results_dir))
    cells = sweep.tune_grid(spec, store, args.trials, args.budget_steps) if args.fair else None
    result = sweep.run_sweep(
        spec, store, jobs=args.jobs, backend=args.backend, address=args.address, keep_checkpoints=args.keep_checkpoints, cells=cells
    )
    print(sweep.summary_table(result, store, spec.axes))
    out = args.report or (spec.report or {}).get("out")
    if out and not args.no_report and result.keys:
        from peftbench.report import make_report

        label = f"sweep {spec.name}, {len(result.keys)} configuration{'' if len(result.keys) == 1 else 's'}"
        written = make_report(store.root, {"key": list(result.keys)}, Path(out), label=label).written
        page = next((p for p in written if p.name == "index.html"), None)
        print(f"report: {page or out} ({len(written)} files)")
    ran = sum(o.status != "skipped" for o in result.outcomes)
    elsewhere = len(result.outcomes) - ran
    print(
        f"sweep {spec.name}: {ran} ran, {len(result.skipped)} skipped (done before), "
        + (f"{elsewhere} finished by another process, " if elsewhere else "")
        + f"{len(result.failed)} failed, "
        f"{result.seconds:.0f} s; records in {store.root}"
    )
    for outcome in result.failed:
        print(f"  failed: {outcome.cell.label}: {outcome.error}", file=sys.stderr)
    return 1 if result.failed else 0
