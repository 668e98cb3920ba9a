"""How many seeds buy what sensitivity in `peftbench check`, measured on this machine (docs/regression.md).

    python benchmarks/seed_sensitivity.py [--seeds 5] [--steps 30] [--draws 2000] 2>/dev/null

Two "machines" that do not reproduce each other bit for bit: the same lora/STS-B runs (tiny-roberta) with 1 and
with 2 torch threads (another summation order, as a CI runner with other cores would have). Their per-seed Pearson
differences are the noise a cross-machine check sees. Then, drawing that noise with replacement, a shift of every
seed's score by -delta is judged by the gate's own rule (`peftbench.regress.verdicts.paired_quality`) with 1, 2, 3,
5 and 10 seeds: the table gives the fraction of draws that fail (delta 0: false alarms). Exact mode (same machine,
deterministic runs) needs no table: any change beyond float rounding fails, with one seed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
from pathlib import Path

os.environ["TQDM_DISABLE"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pearsons(threads: int, seeds: int, steps: int) -> list[float]:
    import torch

    from peftbench.config.resolve import resolve_run
    from peftbench.records.store import Store
    from peftbench.run import runner

    torch.set_num_threads(threads)
    out = []
    for seed in range(seeds):
        resolved = resolve_run("lora", "stsb", "tiny-roberta", overrides=[f"max_steps={steps}", f"seed={seed}"], data_dir="sample")
        record = runner.run(resolved, store=Store(Path(tempfile.mkdtemp())))
        out.append(record["metrics"]["pearson"]["value"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--draws", type=int, default=2000)
    args = parser.parse_args()
    from peftbench.regress.verdicts import REGRESSED, paired_quality
    from peftbench.tasks.metrics import metric_for

    one, two = pearsons(1, args.seeds, args.steps), pearsons(2, args.seeds, args.steps)
    noise = [b - a for a, b in zip(one, two, strict=True)]
    print(f"pearson, 1 thread:  {' '.join(f'{v:.6f}' for v in one)}")
    print(f"pearson, 2 threads: {' '.join(f'{v:.6f}' for v in two)}")
    print(f"cross-machine noise per seed: max |d| {max(map(abs, noise)):.2e}, sd {statistics.pstdev(noise):.2e}")
    print(f"registry tolerance (pearson): {metric_for('pearson').tolerance}")
    rng = random.Random(0)
    deltas = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01)
    print("fraction of draws that fail, by seeds (rows) and a shift of every seed's score by -delta (columns)")
    print("seeds " + " ".join(f"{d:>8g}" for d in deltas))
    for n in (1, 2, 3, 5, 10):
        rates = []
        for delta in deltas:
            failed = 0
            for _ in range(args.draws):
                base = [rng.choice(one) for _ in range(n)]
                current = [a + rng.choice(noise) - delta for a in base]
                failed += paired_quality("pearson", list(range(n)), base, current).verdict == REGRESSED
            rates.append(failed / args.draws)
        print(f"{n:>5} " + " ".join(f"{r:>8.3f}" for r in rates), flush=True)


if __name__ == "__main__":
    main()
