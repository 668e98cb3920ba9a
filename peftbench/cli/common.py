"""What every command module shares. Stdlib only: importing the CLI must stay cheap."""

from typing import Any

EPILOG = "Exit codes: 0 success, 1 a run failed (recorded), 2 usage or input error, 130 interrupted."


def add_trust_pickle(parser: Any) -> None:
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load a --model DIR whose weights are only pickled (pytorch_model.bin); unpickling can run code: trusted folders only",
    )
