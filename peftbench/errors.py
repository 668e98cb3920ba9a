"""Errors that carry their own exit code, so the CLI can end a run without a traceback.

`UsageError` (exit 2) is anything caught before work starts: an unknown name, a bad `--set`,
missing or malformed data, a hub download that cannot happen offline. Everything else that
escapes a started run is a failure (exit 1) and is recorded as such.
"""

from __future__ import annotations

import re
from pathlib import Path

# C0 and C1 control characters except newline and tab: what a terminal would act on (clear screen, set the title)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def one_line(text: object) -> str:
    """Text (an exception's message, say) on one line: the CLI promises one-line errors."""
    return " ".join(terminal_safe(text).split())


def terminal_safe(text: object) -> str:
    """Text with every control character written as an escape (`\\x1b`): strings from records and files reach
    the terminal, and an escape sequence in a model name must be shown, never obeyed."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


class PeftbenchError(Exception):
    """Base class: the message is meant for the user, as is."""

    exit_code = 1


class UsageError(PeftbenchError):
    """A mistake in the command line, a spec, or the input: nothing was run."""

    exit_code = 2


class DataError(UsageError):
    """A data file that cannot be read as its format says; names the file and the line or record."""

    def __init__(self, path: str | Path, message: str, *, line: int | None = None, record: str | int | None = None):
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if record is not None:
            where += f", record {record}"
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line
        self.record = record


class OfflineError(UsageError):
    """A download was needed (model weights, a dataset) and could not happen."""


class RunFailed(Exception):
    """A run that started and failed; its record says `failed` with the error (exit 1)."""

    exit_code = 1


class RunInterrupted(Exception):
    """Ctrl-C (or SIGTERM) during a run; its record says `interrupted` (exit 130). The argument is the record's path."""
