"""Ctrl-C and SIGTERM: a flag the training loop polls, and the handler that sets it.

Kept free of heavy imports: the handler is installed before anything else runs, so a signal
during start-up (imports, model loading) ends the program with one line and exit 130, never a
traceback. While a run polls the flag (training, evaluation, the final record write) the handler
only sets it: an exception raised inside a signal handler can land in some object's `__del__`,
where Python swallows it, or halfway through a write. Elsewhere, or on a second signal, it raises
`KeyboardInterrupt` at once.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any


class StopRequest:
    requested = False
    polling = False


STOP = StopRequest()


@contextlib.contextmanager
def polling_for_stop() -> Iterator[None]:
    previous = STOP.polling
    STOP.polling = True
    try:
        yield
    finally:
        STOP.polling = previous


def request_stop(signum: int, frame: Any) -> None:
    already = STOP.requested
    STOP.requested = True
    if already or not STOP.polling:
        raise KeyboardInterrupt


def install() -> dict[int, Any]:
    """Route SIGINT and SIGTERM to `request_stop`; returns the previous handlers."""
    STOP.requested = STOP.polling = False
    return {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}


def import_deferring_stop(*modules: str) -> None:
    """Import `modules` with a stop request only noted, then honoured right after.

    A KeyboardInterrupt raised while a C extension initialises (torch's import takes a second or
    two) can abort the interpreter (seen: exit -6) or surface as an unrelated error, instead of
    ending with one line and exit 130.
    """
    import importlib

    with polling_for_stop():
        for name in modules:
            importlib.import_module(name)
    if STOP.requested:
        raise KeyboardInterrupt
