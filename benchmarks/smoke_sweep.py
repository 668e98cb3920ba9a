"""How long the README's main command takes: the smoke sweep (20 tiny runs) and its report, from scratch,
then the same sweep again (everything finished: nothing trains). Wall times of the real CLI, each in a
fresh results folder; run it on a quiet machine (nothing else on the cores).

    python benchmarks/smoke_sweep.py [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1, help="sweep worker processes (default 1)")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    peftbench = [sys.executable, "-m", "peftbench"]
    with tempfile.TemporaryDirectory() as tmp:
        results, report = Path(tmp) / "results", Path(tmp) / "report"
        sweep = [*peftbench, "sweep", "smoke", "--jobs", str(args.jobs), "--results-dir", str(results)]
        first = timed(sweep, env)
        again = timed(sweep, env)
        has_report = subprocess.run([*peftbench, "report", "--help"], capture_output=True).returncode == 0
        rendered = timed([*peftbench, "report", "--results-dir", str(results), "--out", str(report)], env) if has_report else None
    print(f"smoke sweep, 20 cells, --jobs {args.jobs}: {first:.1f} s from scratch; {again:.1f} s again (all skipped)")
    if rendered is not None:
        print(f"report: {rendered:.1f} s; sweep + report: {first + rendered:.1f} s")
    print(f"on {os.cpu_count()} CPUs; target: sweep + report under 180 s on 2 cores")


if __name__ == "__main__":
    main()
