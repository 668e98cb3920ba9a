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
    add_measure_parsers(sub)

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
    resolved = resolve_run(args.method, args.task, args.model, preset=args.preset, overrides=overrides, data_dir=args.data_dir)
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
