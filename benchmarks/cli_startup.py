"""How long the CLI takes to start: the wall time of `peftbench --help`, `peftbench ls methods`,
`peftbench validate` and `peftbench runs` (an empty results folder), each a fresh process, and the
import time of `peftbench.cli` (`python -X importtime`), side by side in one run. Repetitions are
interleaved (one of each per round) so a busy moment hits every command alike; medians are shown,
with the interpreter's own start (`python -c pass`) for scale. Anything at or above 1 s is flagged.
Run it on a quiet machine.

    python benchmarks/cli_startup.py [--reps N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from smoke_sweep import timed  # one wall-clock timer for the benchmark scripts (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
SLOW_S = 1.0




def import_seconds(module: str, env: dict[str, str]) -> float:
    """Cumulative import time of `module` and its parent packages: the top-level (unindented) lines
    of `-X importtime` that belong to the package; everything it imports is nested under them."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"import {module} failed:\n{done.stderr[-2000:]}")
    package = module.split(".")[0]
    total_us = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not name.startswith(" ") or name.startswith("  "):  # nested: counted in its parent's cumulative time
            continue
        if name.strip() == package or name.strip().startswith(package + "."):
            total_us += int(cumulative)
    return total_us / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each measurement (default 5)")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    peftbench = [sys.executable, "-m", "peftbench"]
    with tempfile.TemporaryDirectory() as empty:
        commands = {
            "python -c pass (for scale)": [sys.executable, "-c", "pass"],
            "peftbench --help": [*peftbench, "--help"],
            "peftbench ls methods": [*peftbench, "ls", "methods"],
            "peftbench validate": [*peftbench, "validate"],
            "peftbench runs (empty results)": [*peftbench, "runs", "--results-dir", empty],
        }
        times: dict[str, list[float]] = {label: [] for label in [*commands, "import peftbench.cli (-X importtime)"]}
        for _ in range(args.reps):
            for label, cmd in commands.items():
                times[label].append(timed(cmd, env))
            times["import peftbench.cli (-X importtime)"].append(import_seconds("peftbench.cli", env))

    from peftbench.tables import render_table

    rows = []
    for label, values in times.items():
        median = statistics.median(values)
        flag = "SLOW (>= 1 s)" if median >= SLOW_S and "for scale" not in label else ""
        rows.append([label, f"{median:.3f}", f"{min(values):.3f}", f"{max(values):.3f}", flag])
    print(f"CLI start-up, median of {args.reps} (interleaved), seconds; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(render_table(rows, ["measurement", "median s", "min s", "max s", ""]))
    slow = [row[0] for row in rows if row[4]]
    if slow:
        print(f"\n{len(slow)} at or above {SLOW_S:g} s: {', '.join(slow)}")


if __name__ == "__main__":
    main()
