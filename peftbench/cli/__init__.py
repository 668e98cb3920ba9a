"""The `peftbench` command line. Every command's logic lives in its module; this package parses,
dispatches, and turns errors into exit codes: 0 success, 1 a started run failed (and was
recorded), 2 a usage or input error caught before any work, 130 interrupted.

One module per command or group of related commands; each registers its subparsers with
`add_parser(sub)` (or `add_<command>_parser(sub)`) and imports what its command needs (torch,
pandas, ...) inside the command function, so building the parser, `--help` and the light commands
stay fast. `import peftbench.cli` imports nothing heavy (tests/test_cli_imports.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from peftbench import __version__
from peftbench.cli import analyze, listing, measure, regress, report, run, sweep, tune
from peftbench.cli.common import EPILOG
from peftbench.errors import PeftbenchError, RunFailed, RunInterrupted, terminal_safe
from peftbench.run import stop

__all__ = ["EPILOG", "build_parser", "entry_point", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peftbench",
        description="Compare parameter-efficient fine-tuning methods the way the LoRA paper did.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"peftbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The order here is the order of `peftbench --help`.
    listing.add_ls_parser(sub)
    listing.add_validate_parser(sub)
    run.add_parser(sub)
    listing.add_params_parser(sub)
    listing.add_show_parser(sub)
    listing.add_runs_parser(sub)
    sweep.add_parser(sub)
    tune.add_parser(sub)
    measure.add_parser(sub)  # latency, profile
    regress.add_parser(sub)  # compare, check, bless, history
    report.add_parser(sub)
    analyze.add_parser(sub)  # subspace, amplification, spectrum
    return parser


# the commands that build models: their heavy imports happen with a Ctrl-C deferred (stop.import_deferring_stop)
MODEL_COMMANDS = {"run", "sweep", "tune", "params", "latency", "profile", "analyze"}


def main(argv: Sequence[str] | None = None) -> int:
    previous = stop.install()
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "trust_pickle", False):
            from peftbench.models.presets import TRUST_PICKLE

            os.environ[TRUST_PICKLE] = "1"  # read where model folders load, in this process and a sweep's workers
        if getattr(args, "no_keep_adapters", False):
            from peftbench.records.store import KEEP_ADAPTERS_ENV

            os.environ[KEEP_ADAPTERS_ENV] = "0"  # read where a run is planned, in this process and a sweep's workers
        if args.command in MODEL_COMMANDS:
            stop.import_deferring_stop("torch", "transformers")
        return args.func(args)
    except PeftbenchError as exc:
        print(f"peftbench: error: {terminal_safe(exc)}", file=sys.stderr)
        return exc.exit_code
    except RunFailed as exc:
        print(f"peftbench: {terminal_safe(exc)}", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"peftbench: interrupted; record: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("peftbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the system refused a read or write outside a run (a full disk, a read-only folder): say so
        where = f": {exc.filename}" if exc.filename else ""
        print(f"peftbench: error: {terminal_safe(exc.strerror or exc)}{terminal_safe(where)}", file=sys.stderr)
        return 1
    except Exception:
        if stop.STOP.requested:  # the signal landed inside an import or a library and came out as another error
            print("peftbench: interrupted", file=sys.stderr)
            return 130
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
