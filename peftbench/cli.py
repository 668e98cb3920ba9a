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
from typing import Any

from peftbench import __version__
from peftbench.errors import PeftbenchError

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
    return parser


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
    from peftbench.display import print_config, print_epoch, print_summary
    from peftbench.store import results_dir

    overrides = list(args.overrides)
    for key, value in (("seed", args.seed), ("max_steps", args.max_steps), ("epochs", args.epochs)):
        if value is not None:
            overrides.append(f"{key}={value}")
    plan = runner.prepare(
        args.method,
        args.task,
        args.model,
        preset=args.preset,
        overrides=overrides,
        data_dir=args.data_dir,
        results=results_dir(args.results_dir),
        canonical=args.record,
    )
    print_config(plan)
    record = runner.execute(plan, on_update=print_epoch)
    print_summary(record, plan.record_path)
    return 0


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
    from peftbench.display import show_record
    from peftbench.store import find_record, read_record, results_dir

    path = find_record(args.run, results_dir(args.results_dir))
    record = read_record(path)
    print(json.dumps(record, indent=2) if args.json else show_record(record, path))
    return 0


def raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from peftbench.runner import RunFailed, RunInterrupted

    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        return args.func(args)
    except PeftbenchError as exc:
        print(f"peftbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except RunFailed as exc:
        print(f"peftbench: {exc}", file=sys.stderr)
        return 1
    except (RunInterrupted, KeyboardInterrupt) as exc:
        where = f"; record: {exc}" if isinstance(exc, RunInterrupted) else ""
        print(f"peftbench: interrupted{where}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
