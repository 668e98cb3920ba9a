"""Run records as a pandas DataFrame: one row per run, flat columns, ready for groupby.

    import peftbench.results as r
    df = r.load()                                   # ./results (or $PEFTBENCH_RESULTS)
    df = r.load("results", task="mrpc", status="finished")
    df.groupby(["method", "task", "key"])["main_value"].median()

Columns: run_id, status (effective: `stale` for a dead `running` record), method, task, model, data,
preset, seed, key, main_metric, main_value, one column per score named as the metric (`accuracy`, `bleu`,
`ter_unseen`, ...: the best epoch's),
params_method, params_head, params_trainable, params_total, params_formula, train_tokens_per_s,
train_samples_per_s, eval_tokens_per_s, peak_rss_bytes, max_memory_allocated, checkpoint_bytes,
wall_<phase>_s (setup, train, eval), wall_s, created_at, finished_at, host, commit, peftbench,
transformers, torch, path. Latency and profile records are read by their own commands, not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from peftbench.records.schema import main_value, metric_values
from peftbench.records.store import Entry, Store

CONFIG_COLUMNS = ("method", "task", "model", "data", "preset")


def row(entry: Entry) -> dict[str, Any]:
    """One run record, flattened."""
    r = entry.record
    cfg, env = r.get("config") or {}, r.get("env") or {}
    params, m = r.get("params") or {}, r.get("measurements") or {}
    train_tp, eval_tp = m.get("train_throughput") or {}, m.get("eval_throughput") or {}
    walls = m.get("wall_time_s") or {}
    out: dict[str, Any] = {
        "run_id": r.get("run_id"),
        "status": entry.status,
        **{c: cfg.get(c) for c in CONFIG_COLUMNS},
        "seed": r.get("seed"),
        "key": r.get("key"),
        "main_metric": r.get("main_metric"),
        "main_value": main_value(r),
        **metric_values(r),
        **{f"params_{k}": params.get(k) for k in ("method", "head", "trainable", "total", "formula")},
        "train_tokens_per_s": train_tp.get("tokens_per_s"),
        "train_samples_per_s": train_tp.get("samples_per_s"),
        "eval_tokens_per_s": eval_tp.get("tokens_per_s"),
        "peak_rss_bytes": m.get("peak_rss_bytes"),
        "max_memory_allocated": m.get("max_memory_allocated"),
        "checkpoint_bytes": m.get("checkpoint_bytes"),
        **{f"wall_{phase}_s": seconds for phase, seconds in walls.items()},
        "wall_s": sum(walls.values()) if walls else None,
        "created_at": r.get("created_at"),
        "finished_at": r.get("finished_at"),
        "host": r.get("host"),
        "commit": env.get("commit"),
        **{name: env.get(name) for name in ("peftbench", "transformers", "torch")},
        "path": str(entry.path),
    }
    return out


def load(path: str | Path | None = None, **filters: Any) -> pd.DataFrame:
    """Every run record under `path` (default: ./results or $PEFTBENCH_RESULTS) matching the filters.

    Filters are field=value (or a list of values): method, task, model, seed, key, status (effective,
    so `status="stale"` works), or any other top-level record field.
    """
    entries = Store(Path(path) if path is not None else None).entries("run", **filters)
    rows = [row(e) for e in entries]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "status", *CONFIG_COLUMNS, "seed", "key", "main_metric", "main_value"])
    return frame
