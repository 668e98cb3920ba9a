"""`tune`: an Optuna study of one method on one task; the best configuration becomes a preset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from peftbench.cli.common import EPILOG, add_model, add_results_dir, add_set


def add_parser(sub: Any) -> None:
    tune = sub.add_parser(
        "tune",
        help="tune one method on one task (Optuna), the best configuration becomes the preset tuned:<study>",
        description="An Optuna study (seeded TPE, median pruning on each epoch's evaluation) over the method spec's search: space. "
        "Fair comparisons: give every method the same --trials and --budget-steps. Running it again runs only the missing trials.",
        epilog=EPILOG,
    )
    tune.add_argument("--method", required=True, help="a method name (peftbench ls methods)")
    tune.add_argument("--task", required=True, help="a task name (peftbench ls tasks)")
    add_model(tune, "a model preset or a local model folder; default: the task's")
    tune.add_argument("--trials", type=int, required=True, help="the study's total number of trials (finished + pruned)")
    tune.add_argument("--budget-steps", type=int, help="max_steps of every trial (the same for every method: the fair budget)")
    tune.add_argument("--metric", help="the score to optimise (default: the task's main metric)")
    tune.add_argument("--seeds", type=int, default=1, help="seeds per trial (0..K-1); the trial's score is their mean (default 1)")
    add_set(tune, "for every trial")
    tune.add_argument("--preset", help="a named method preset under the searched values")
    tune.add_argument("--pruner", choices=["median", "halving", "none"], default="median", help="median rule (default), successive halving")
    tune.add_argument("--data-dir", help="the dataset's original files (as for run)")
    add_results_dir(tune, "where records and studies go")
    tune.add_argument("--storage", help="an Optuna storage URL (default: sqlite under <results>/studies/)")
    tune.add_argument("--study", help="the study's name (default: method-task-model-<hash of the settings>)")
    tune.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from peftbench.grid.tune import TuneSpec, tune
    from peftbench.records.store import Store

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
