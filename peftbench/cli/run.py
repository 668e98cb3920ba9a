"""`run`: one train+eval run, measured and recorded."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, cast

from peftbench.cli.common import EPILOG, add_model, add_no_keep_adapters, add_results_dir, add_set, add_trust_pickle


def add_parser(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="train and evaluate one method on one task, measured and recorded",
        description="One train+eval run, measured, written as a JSON run record.",
        epilog=EPILOG,
    )
    run.add_argument("--method", required=True, help="a method name (peftbench ls methods)")
    run.add_argument("--task", required=True, help="a task name (peftbench ls tasks)")
    add_model(run, "a model preset (peftbench ls models) or a local model folder; default: the task's")
    run.add_argument("--preset", help="a named preset of the method spec (e.g. repo)")
    run.add_argument("--seed", type=int, help="random seed (same as --set seed=N)")
    add_set(run, "override a hyperparameter or training setting, e.g. --set r=16 --set lr=1e-4")
    run.add_argument("--max-steps", type=int, help="stop after N optimizer steps (same as --set max_steps=N)")
    run.add_argument("--epochs", type=int, help="number of epochs (same as --set epochs=N)")
    run.add_argument(
        "--data-dir",
        help="the dataset's original files, or 'sample' for the bundled sample; default: the hub (tiny models default to the sample)",
    )
    add_results_dir(run, "where records go")
    run.add_argument("--record", action="store_true", help="a canonical run (results/runs/) rather than scratch (results/scratch/)")
    add_trust_pickle(run)
    add_no_keep_adapters(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from peftbench.cli.display import EpochPrinter, print_config, print_summary
    from peftbench.config.resolve import resolve_run
    from peftbench.records.store import Store
    from peftbench.run import runner

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
    # EpochPrinter is duck-typed (display must not import the runner, which imports torch)
    record = runner.execute(plan, callbacks=[cast("runner.Callback", EpochPrinter())])
    print_summary(record, plan.record_path)
    return 0
