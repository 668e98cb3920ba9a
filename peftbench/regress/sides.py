"""One side of `peftbench compare`: a results directory, a baseline or record file, `commit:SHA`, or filters.

A side that selects nothing is an error (exit 2), not an empty comparison: a mistyped commit or filter must never
read as "nothing changed".
"""

from __future__ import annotations

from pathlib import Path

from peftbench.errors import UsageError
from peftbench.records.store import read_record
from peftbench.regress.baselines import is_baseline, load_baseline
from peftbench.regress.runs import Run, matches, parse_where, runs_in


def load_side(spec: str, results: Path, where: dict[str, list[str]]) -> list[Run]:
    """One side of `compare`: a results directory, a baseline or record file, `commit:SHA` (records of that commit
    in the results directory) or `KEY=VALUE[,KEY=VALUE...]` filters on the results directory. Raises a usage error
    (exit 2) when the side selects no run."""
    runs, where_from = _select(spec, results, where)
    if not runs:
        shown = " ".join(f"{k}={','.join(v)}" for k, v in where.items())
        raise UsageError(f"{spec}: no run matches{f' --where {shown}' if shown else ''} (in {where_from})")
    return runs


def _select(spec: str, results: Path, where: dict[str, list[str]]) -> tuple[list[Run], str]:
    path = Path(spec)
    if path.is_dir():
        return runs_in(path, where), str(path)
    if path.is_file():
        if is_baseline(path):
            return [r for r in load_baseline(path).runs if matches(r.record, where, r.status)], str(path)
        record = read_record(path)
        runs = [Run(record, record.get("status", "finished"), str(path))]
        return [r for r in runs if matches(r.record, where, r.status)], str(path)
    if spec.startswith("commit:"):
        if not spec.removeprefix("commit:").strip():
            raise UsageError("commit: needs a commit (a prefix of at least one character), e.g. commit:abc123")
        return runs_in(results, {**where, "commit": [spec.removeprefix("commit:")]}), str(results)
    if "=" in spec:
        extra = parse_where(spec.split(";") if ";" in spec else _split_filters(spec))
        return runs_in(results, {**where, **extra}), str(results)
    raise UsageError(
        f"{spec!r} is not a directory, a record or baseline file, commit:SHA or KEY=VALUE filters "
        f"(e.g. commit:abc123, seed=0, training.lr=0.002)"
    )


def _split_filters(spec: str) -> list[str]:
    """`method=lora,task=mrpc` -> two filters; `seed=0,1` -> one filter with two values."""
    out: list[str] = []
    for piece in spec.split(","):
        if "=" in piece or not out:
            out.append(piece)
        else:
            out[-1] += "," + piece
    return out
