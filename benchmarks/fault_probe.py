"""Fault probe: a results folder treated as input from elsewhere, tried as an attacker and an unlucky user would.

Prints, per section, how many cases were tried, how many ended cleanly (exit 0/1/2 with no traceback), and
what went wrong: code run from data, files touched outside the results folder, records lost or duplicated.
The README's reliability section quotes its output. About 3 minutes on 2 cores:

    python benchmarks/fault_probe.py [--kills 6]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from peftbench.cli import main
from peftbench.records.store import Store

TINY_SWEEP = ["sweep", "--methods", "lora", "--tasks", "mrpc", "--models", "tiny-roberta", "--no-report"]


def quietly(argv: list[str]) -> tuple[int | None, str]:
    """Run the CLI in process; (exit code, stderr), or (None, the exception) when something escaped it."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            return main(argv), err.getvalue()
    except BaseException as exc:
        return None, f"{type(exc).__name__}: {exc}"


def corrupt_files(good: dict) -> dict[str, str]:
    """Twenty kinds of file a results folder may hold that are not valid records."""
    wrong = {
        "config a list": {"config": [1]}, "config null": {"config": None},
        "metric a string": {"metrics": {"f1": {"value": "x"}}}, "metrics a list": {"metrics": [1]}, "seed a list": {"seed": [0]},
        "wall time strings": {"measurements": {"wall_time_s": {"a": "1"}}}, "epochs of numbers": {"epochs": [1, 2]},
        "status a list": {"status": []}, "run_id a number": {"run_id": 5}, "run_id a path": {"run_id": "../../victim/x"},
        "unknown main_metric": {"main_metric": "nonsense"}, "kind unknown": {"kind": "x"},
    }  # fmt: skip
    files = {name: json.dumps({**good, **change}) for name, change in wrong.items()}
    files.update({
        "empty": "", "truncated": json.dumps(good)[:50], "binary": "\x00\xff\xfe", "a list": "[1, 2]",
        "deep": "[" * 100_000 + "]" * 100_000, "future schema": json.dumps({**good, "schema_version": 99}),
        "no schema": json.dumps({"kind": "run"}), "a string": '"x"',
    })  # fmt: skip
    return files


def probe_corrupt(root: Path, good: dict) -> tuple[int, int, list[str]]:
    tried, clean, bad = 0, 0, []
    for name, text in corrupt_files(good).items():
        folder = root / name.replace(" ", "-")
        (folder / "scratch").mkdir(parents=True)
        (folder / "scratch" / "good.json").write_text(json.dumps(good))
        bad_file = folder / "scratch" / "bad.json"
        bad_file.write_text(text)
        os.utime(bad_file, (0, 0))
        r = ["--results-dir", str(folder)]
        for argv in (["runs", *r], ["runs", "--json", *r], ["show", str(bad_file)], ["show", "good", *r], ["check", *r],
                     ["compare", str(folder), str(folder)], ["bless", "--force", "--out", str(folder / "b.json"), *r],
                     ["history", "--method", "lora", "--task", "mrpc", *r],
                     ["report", "--out", str(folder / "rep"), "--format", "md", *r]):  # fmt: skip
            tried += 1
            code, err = quietly(argv)
            if code is None or "Traceback" in err:
                bad.append(f"{name}: {argv[0]}: {err[:80]}")
            else:
                clean += 1
    return tried, clean, bad


def probe_security(root: Path, good: dict) -> tuple[int, int, list[str]]:
    marker, victim = root / "pwned", root / "victim" / "model.pt"
    victim.parent.mkdir(parents=True)
    victim.write_bytes(b"weights")

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    cases, exploited = 0, []
    for status in ("interrupted", "running"):  # a planted pickle under every checkpoint name of a resumable record
        folder = root / f"s1-{status}"
        (folder / "scratch").mkdir(parents=True)
        (folder / "checkpoints").mkdir()
        record = {**good, "status": status, "host": "elsewhere", "heartbeat_at": "2026-01-01T00:00:00+00:00"}
        path = folder / "scratch" / f"{good['run_id']}.json"
        path.write_text(json.dumps(record))
        os.utime(path, (0, 0))  # silent for decades: stale, so a sweep resumes it
        for suffix in (".pt", ".bin", ".pkl", ".ckpt", ".safetensors"):
            (folder / "checkpoints" / f"{good['run_id']}{suffix}").write_bytes(pickle.dumps(Payload()))
        cases += 1
        quietly([*TINY_SWEEP, "--set", "max_steps=2", "--results-dir", str(folder)])
    folder = root / "s2"
    (folder / "scratch").mkdir(parents=True)
    (folder / "scratch" / "x.json").write_text(json.dumps({**good, "run_id": "../../victim/model", "status": "interrupted"}))
    cases += 1
    quietly([*TINY_SWEEP, "--set", "max_steps=2", "--results-dir", str(folder)])
    for ref in ("../../../etc/passwd", "..", "*", "a/b", "x\x00y"):
        cases += 1
        code, _ = quietly(["show", ref, "--results-dir", str(folder)])
        if code != 2:
            exploited.append(f"show {ref!r}: exit {code}")
    if marker.exists():
        exploited.append("a planted pickle ran")
    if victim.read_bytes() != b"weights":
        exploited.append("a file outside the results folder changed")
    return cases, cases - len(exploited), exploited


def probe_kills(root: Path, kills: int) -> tuple[int, list[str]]:
    """kill -9 a tiny sweep at random moments, then finish it: every cell must end finished once."""
    cmd = [sys.executable, "-m", "peftbench", *TINY_SWEEP, "--seeds", "0,1", "--set", "epochs=3", "--set", "max_eval_examples=8"]
    cmd += ["--results-dir", str(root)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(0)
    for _ in range(kills):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(3, 12))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=900)
    found = list(Store(root).scan("run"))
    problems = [f"{f.path.name}: {f.status}" for f in found if f.status != "finished"]
    cells = [(f.record["key"], f.record["seed"]) for f in found if f.status == "finished"]
    if len(cells) != len(set(cells)) or len(set(cells)) != 2:
        problems.append(f"{len(cells)} finished records for {len(set(cells))} of 2 cells")
    return kills, problems


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="peftbench-probe-") as tmp:
        root = Path(tmp)
        tiny = ["--method", "lora", "--task", "mrpc", "--model", "tiny-roberta"]
        made = quietly(["run", *tiny, "--max-steps", "2", "--results-dir", f"{root}/t"])
        assert made[0] == 0, made
        good = json.loads(next((root / "t" / "scratch").glob("*.json")).read_text())
        for title, (tried, clean, bad) in (
            ("corrupt or foreign files x reading commands", probe_corrupt(root / "corrupt", good)),
            ("security cases", probe_security(root / "security", good)),
        ):
            print(f"{title}: {tried} tried, {clean} clean, {len(bad)} not")
            for line in bad:
                print(f"  {line}")
        kills, problems = probe_kills(root / "kills", args.kills)
        print(f"kill -9 of a sweep at random moments: {kills} kills, then one full sweep: {len(problems)} records lost or duplicated")
        for line in problems:
            print(f"  {line}")


if __name__ == "__main__":
    main_()
