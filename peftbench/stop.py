"""Ctrl-C and SIGTERM: a flag the training loop polls, and the handler that sets it; and a run's tie
to the process that started it.

Kept free of heavy imports: the handler is installed before anything else runs, so a signal
during start-up (imports, model loading) ends the program with one line and exit 130, never a
traceback. While a run polls the flag (training, evaluation, the final record write) the handler
only sets it: an exception raised inside a signal handler can land in some object's `__del__`,
where Python swallows it, or halfway through a write. Elsewhere, or on a second signal, it raises
`KeyboardInterrupt` at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
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


PARENT_POLL_S = 0.05


def outlives_parent() -> bool:
    """Whether this process was started to outlive its parent: under `nohup` (SIGHUP ignored), as a
    session leader (`setsid`, `start_new_session=True`), or already adopted (parent id 0 or 1)."""
    return (
        signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        or os.getsid(0) == os.getpid()
        or os.getppid() <= 1
    )


def die_with_parent() -> None:
    """Kill this process outright if the process that started it dies; a no-op when it should outlive it.

    A run started by a supervisor (`timeout`, a sweep worker pool, a scheduler's step, a script) that
    is itself killed with SIGKILL would otherwise train on as an orphan nobody waits for, holding the
    accelerator, while its owner believes it gone. The kernel gave the parent no chance to clean up,
    and the run takes none either: it ends the same way, its record stays `running` with a dead pid
    and so reads `stale`, and the sweep resumes it from its last checkpoint. The parent id is polled
    (every PARENT_POLL_S) rather than set with PR_SET_PDEATHSIG, which fires when the parent's
    *thread* ends, and a pool may start processes from short-lived threads. Started once per process.
    """
    if os.name != "posix" or outlives_parent() or any(t.name == WATCH_THREAD for t in threading.enumerate()):
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name=WATCH_THREAD).start()


WATCH_THREAD = "peftbench-parent-watch"
