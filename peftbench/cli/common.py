"""What every command module shares. Stdlib only: importing the CLI must stay cheap."""

from typing import Any

EPILOG = "Exit codes: 0 success, 1 a run failed (recorded), 2 usage or input error, 130 interrupted."


def add_trust_pickle(parser: Any) -> None:
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load a --model DIR whose weights are only pickled (pytorch_model.bin); unpickling can run code: trusted folders only",
    )


def add_no_keep_adapters(parser: Any) -> None:
    """`--no-keep-adapters`: finished runs keep no trained tensors (the analyses of `peftbench analyze` need them)."""
    parser.add_argument(
        "--no-keep-adapters",
        action="store_true",
        help="do not keep a finished run's trained tensors (results/adapters/<run_id>.safetensors; `analyze` reads them)",
    )


RESULTS_DEFAULT = "$PEFTBENCH_RESULTS or ./results"


def add_results_dir(parser: Any, what: str = "where records are") -> None:
    """`--results-dir`, one spelling and one default everywhere; `what` says what the command does there."""
    parser.add_argument("--results-dir", metavar="DIR", help=f"{what} (default: {RESULTS_DEFAULT})")


def add_json(parser: Any, what: str = "machine-readable output (JSON)") -> None:
    parser.add_argument("--json", action="store_true", help=what)


def add_set(parser: Any, what: str) -> None:
    """`--set KEY=VALUE`, repeatable, into `args.overrides`: the one `--set` grammar (`config.schema.parse_set`)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=f"{what} (repeatable)")


def add_model(parser: Any, what: str = "a model preset (peftbench ls models) or a local model folder", **kwargs: Any) -> None:
    parser.add_argument("--model", help=what, **kwargs)


WHERE_HELP = (
    "only records with FIELD=VALUE[,VALUE...] (repeatable; an item without '=' adds a value to the field before it): "
    "method, task, model, seed, key, status, commit (a prefix), a config path (training.lr) or a short name (lr, r)"
)


def add_where(parser: Any, what: str = WHERE_HELP) -> None:
    """`--where`, the one record filter grammar (`records.query.parse_where`)."""
    parser.add_argument("--where", action="append", default=[], metavar="FIELD=VALUE", help=what)
