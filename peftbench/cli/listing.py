"""`ls`, `validate`, `params`, `show`, `runs`: what is registered, and what is recorded."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from peftbench.cli.common import add_json, add_model, add_results_dir, add_set, add_where
from peftbench.errors import terminal_safe


def add_ls_parser(sub: Any) -> None:
    ls = sub.add_parser("ls", help="list methods, tasks or models", description="List the registered methods, tasks or model presets.")
    ls.add_argument("what", choices=["methods", "tasks", "models"])
    ls.set_defaults(func=cmd_ls)


def add_validate_parser(sub: Any) -> None:
    validate = sub.add_parser(
        "validate",
        help="check every spec and preset (touches no model)",
        description="Load every method and task spec and model preset, resolve every preset, touch no model.",
    )
    validate.set_defaults(func=cmd_validate)


def add_params_parser(sub: Any) -> None:
    params = sub.add_parser(
        "params",
        help="count trainable parameters and checkpoint size without weights",
        description="Exact parameter counts (paper convention: task head excluded; and all trainable), checkpoint bytes and the "
        "paper's formula, on the meta device: no weights, no download. --paper recounts every defined row of Tables 2, 3, 4, 15.",
    )
    params.add_argument("--method", help="a method name (peftbench ls methods)")
    add_model(params, "a model preset (incl. gpt3-175b) or a local model folder")
    params.add_argument("--task", help="count for this task's model class (default: 2-label classifier; GPT-2 as a language model)")
    params.add_argument("--preset", help="a named preset of the method spec")
    add_set(params, "override a hyperparameter")
    params.add_argument(
        "--budget",
        type=int,
        metavar="N",
        help="solve the method's size knob (lora: r; adapters: bottleneck; prefixes: prefix_len) so the method count is N exactly",
    )
    params.add_argument("--paper", action="store_true", help="every defined row of the paper's Tables 2, 3, 4 and 15 beside our count")
    add_json(params)
    params.set_defaults(func=cmd_params)


def add_show_parser(sub: Any) -> None:
    show = sub.add_parser("show", help="print one run record, readable", description="Print one run record in a readable form.")
    show.add_argument("run", help="a run id, a unique prefix of one, or a path to a record")
    add_results_dir(show, "where a run id is looked up")
    add_json(show, "print the raw JSON record")
    show.set_defaults(func=cmd_show)


def add_runs_parser(sub: Any) -> None:
    runs = sub.add_parser(
        "runs",
        help="list the records in the results directory, one line each",
        description="One line per record: id, status (a running record whose process is gone shows as 'stale'), method, "
        "task, model, seed, main metric, wall time. Filters combine; unreadable files are reported and skipped.",
    )
    runs.add_argument("--method", help="only this method")
    runs.add_argument("--task", help="only this task")
    add_model(runs, "only this model")
    runs.add_argument(
        "--status",
        choices=["running", "finished", "failed", "interrupted", "stale", "corrupt"],
        help="only this status (corrupt: files in the record folders that are no valid record)",
    )
    runs.add_argument("--seed", type=int, help="only this seed")
    runs.add_argument("--key", help="only this comparability key")
    runs.add_argument("--kind", choices=["run", "latency", "profile"], default="run", help="record kind (default: run)")
    add_where(runs)
    add_results_dir(runs)
    add_json(runs, "the records themselves, as a JSON list")
    runs.set_defaults(func=cmd_runs)


def cmd_ls(args: argparse.Namespace) -> int:
    from peftbench.cli.catalog import catalog
    from peftbench.tables import render_table

    print(render_table([(name, description, f"[{source}]") for name, description, source in catalog(args.what)]))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from peftbench.cli.catalog import validate_all

    for line in validate_all():
        print(line)
    print("all specs valid")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from peftbench.bench import params
    from peftbench.errors import UsageError

    if args.paper:
        rows = params.paper_table()
        print(json.dumps(rows, indent=2) if args.json else params.format_paper_table(rows))
        return 0
    if not (args.method and args.model):
        raise UsageError("params needs --method and --model (or --paper)")
    overrides = list(args.overrides)
    if args.budget is not None:
        from peftbench.bench.budget import solve_params

        solved = solve_params(args.method, args.model, args.budget, args.task, args.preset, overrides)
        overrides.append(f"{solved.knob}={solved.value}")
        if not args.json:
            print(f"budget {args.budget:,}: {solved.knob}={solved.value} gives {solved.count:,} method parameters")
    count = params.count_params(args.method, args.model, args.task, args.preset, overrides)
    if args.json:
        print(json.dumps({**asdict(count), "hyperparameters": asdict(count.hyperparameters)}, indent=2))
    else:
        print(params.describe(count))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from peftbench.cli.display import show_record
    from peftbench.records.schema import effective_status
    from peftbench.records.store import Store, read_record

    path = Store(args.results_dir and Path(args.results_dir)).find(args.run)
    record = read_record(path)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    status = effective_status(record, heartbeat=mtime)
    print(json.dumps(record, indent=2) if args.json else terminal_safe(show_record(record, path, status)))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from peftbench.cli.display import runs_table
    from peftbench.records.query import as_where, matches, parse_where
    from peftbench.records.store import Corrupt, Store

    flags = {"method": args.method, "task": args.task, "model": args.model, "seed": args.seed, "key": args.key}
    where = {**as_where(flags), **parse_where(args.where)}
    if args.status not in (None, "corrupt"):
        where["status"] = [args.status]
    found = list(Store(args.results_dir and Path(args.results_dir)).scan(args.kind))
    corrupt_too = not where and args.status in (None, "corrupt")
    only_corrupt = args.status == "corrupt"
    entries = [
        f
        for f in found
        if (corrupt_too if isinstance(f, Corrupt) else not only_corrupt and matches(f.record, where, f.status))
    ]
    if args.json:
        print(json.dumps([as_json(e) for e in entries], indent=2, default=str))
    else:
        print(terminal_safe(runs_table(entries)))
    return 0


def as_json(found: Any) -> dict[str, Any]:
    if found.status == "corrupt":
        return {"path": str(found.path), "effective_status": "corrupt", "error": found.reason}
    return {"path": str(found.path), "effective_status": found.status, **found.record}
