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


PARENT_POLL_S = 0.1
STARTED_UNDER = os.getppid()  # the parent when this process started (this module loads first thing)


class ParentTie:
    """Whether runs in this process die with the process that started it (see `tied_to_parent`)."""

    forced = False  # a worker of ours (a sweep's pool) is always tied, whatever it inherited


TIE = ParentTie()


def outlives_parent() -> bool:
    """Whether this process was started to outlive its parent: under `nohup` (SIGHUP ignored), as a
    session leader (`setsid`, `start_new_session=True`), or with init as its parent from the start.

    Torch elastic (`accelerate launch`, `torchrun`) starts its workers as session leaders; they are
    its workers all the same, and stay tied to it.
    """
    if TIE.forced or "TORCHELASTIC_RUN_ID" in os.environ:
        return False
    return signal.getsignal(signal.SIGHUP) == signal.SIG_IGN or os.getsid(0) == os.getpid() or STARTED_UNDER <= 1


def tie_workers_to_parent() -> None:
    """For a pool's worker processes: tied to the pool's process even when it was started detached
    (a `nohup`ped sweep passes its ignored SIGHUP on to every worker)."""
    TIE.forced = True


@contextlib.contextmanager
def tied_to_parent() -> Iterator[None]:
    """While the block runs, kill this process outright if the process that started it dies.

    A run started by a supervisor (`timeout`, a sweep worker pool, a scheduler's step, a script) that
    is itself killed with SIGKILL would otherwise train on as an orphan nobody waits for, holding the
    accelerator, while its owner believes it gone. The kernel gave the parent no chance to clean up,
    and the run takes none either: it ends the same way, its record stays `running` with a dead pid
    and so reads `stale`, and a sweep resumes it from its last checkpoint. A parent that died
    before the block (while the model loaded) counts the same. Runs meant to outlive their parent
    are detached on purpose (`outlives_parent`). The parent id is polled (every PARENT_POLL_S)
    rather than set with PR_SET_PDEATHSIG, which fires when the parent's *thread* ends, and a pool
    may start processes from short-lived threads.
    """
    if os.name != "posix" or outlives_parent():
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while os.getppid() == STARTED_UNDER:
            if done.wait(PARENT_POLL_S):
                return
        os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, daemon=True, name="peftbench-parent-watch")
    thread.start()
    try:
        yield
    finally:
        done.set()
