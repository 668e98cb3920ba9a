"""Does `peftbench check` catch a 2x slower training step, and pass unchanged code under load? On this machine.

    python benchmarks/speed_gate.py [--threads 1] [--steps 40] [--seeds 0,1] [--rounds 1] 2>/dev/null

A baseline of lora on STS-B (tiny-roberta, `--steps` steps per seed) is blessed, then three current sides are run
and checked against it, each in this process like a sweep:

  unchanged          the same code again
  unchanged + load   the same code while a competing process keeps both cores busy with matrix products
  2x slower step     every training step computes its forward and backward twice (the first pass's gradients
                     are dropped and the random state restored, so scores stay exactly the same: only speed moves)

For each it prints the raw step time ratio (what load fakes), the relative step ratio (step / reference step in
the same process, what the gate judges), the speed verdict and the check's exit code. Expected: exit 0, 0, 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

os.environ["TQDM_DISABLE"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LOAD = "import torch,time\ntorch.set_num_threads(2)\na=torch.randn(300,300)\nwhile True: a=torch.tanh(a@a)\n"


def run_side(root: Path, seeds: list[int], steps: int) -> None:
    """One lora/STS-B run per seed into `root` (canonical records, as `peftbench sweep` writes them)."""
    from peftbench.config.resolve import resolve_run
    from peftbench.records.store import Store
    from peftbench.run import runner

    for seed in seeds:
        overrides = [f"max_steps={steps}", "max_eval_examples=16", f"seed={seed}"]
        runner.run(resolve_run("lora", "stsb", "tiny-roberta", overrides=overrides, data_dir="sample"), store=Store(root))


@contextlib.contextmanager
def load() -> Iterator[None]:
    """A competing process on both cores while the block runs."""
    proc = subprocess.Popen([sys.executable, "-c", LOAD])
    try:
        yield
    finally:
        proc.terminate()
        proc.wait()


@contextlib.contextmanager
def slower_step() -> Iterator[None]:
    """Each training step twice as expensive, its results unchanged."""
    import torch

    from peftbench.run import loop as run_loop

    original = run_loop.training_step

    def twice(loop, batch, grad_clip):  # type: ignore[no-untyped-def]
        with torch.random.fork_rng(devices=[]):
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            loop.pipeline.loss(loop.adapted(**inputs).logits, batch["labels"]).backward()
        for weight in loop.adapted.trainable_parameters().values():
            weight.grad = None
        return original(loop, batch, grad_clip)

    run_loop.training_step = twice
    try:
        yield
    finally:
        run_loop.training_step = original


def check(results: Path, baseline: Path) -> tuple[int, dict]:
    import json

    from peftbench.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["check", "--results-dir", str(results), "--against", str(baseline), "--json"])
    return code, json.loads(out.getvalue())


def speed_of(report: dict, baseline: Path, current: Path) -> tuple[str, str, str]:
    """The raw and relative step ratios (medians over seeds) and the speed verdict of the (only) pair."""
    from statistics import median

    from peftbench.regress.baselines import load_baseline
    from peftbench.regress.runs import runs_in

    def raw(runs: list) -> float:
        return median(r.record["measurements"]["train_throughput"]["step_seconds"]["median"] for r in runs)

    verdict = next(v for v in report["pairs"][0]["verdicts"] if v["kind"] == "speed")
    return f"x{raw(runs_in(current)) / raw(load_baseline(baseline).runs):.2f}", verdict["change"], verdict["verdict"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: see docs/regression.md)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--rounds", type=int, default=1, help="repeat each current side this many times")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="speed-gate-"))
    run_side(tmp / "base", seeds, args.steps)
    baseline = tmp / "base.json"
    from peftbench.cli import main as cli

    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(["bless", "--results-dir", str(tmp / "base"), "--out", str(baseline), "--force"]) == 0
    sides = {"unchanged": contextlib.nullcontext, "unchanged + load": load, "2x slower step": slower_step}
    print(f"threads {args.threads}, {args.steps} steps, seeds {args.seeds}")
    print(f"{'side':18} {'raw step':>9} {'relative':>9} {'speed verdict':>17} {'exit':>5}")
    for round_ in range(args.rounds):
        for name, context in sides.items():
            folder = tmp / f"{name.replace(' ', '_')}-{round_}"
            with context():
                run_side(folder, seeds, args.steps)
            code, report = check(folder, baseline)
            raw, relative, verdict = speed_of(report, baseline, folder)
            print(f"{name:18} {raw:>9} {relative:>9} {verdict:>17} {code:>5}", flush=True)


if __name__ == "__main__":
    main()
