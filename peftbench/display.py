"""Human-readable text for the terminal: the resolved config, epoch lines, summaries, records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from peftbench.runner import Plan


def print_config(plan: Plan) -> None:
    print(f"run {plan.run_id}")
    print(f"data: {plan.data.describe(plan.spec)} ({', '.join(f'{k} {len(v)}' for k, v in plan.splits.items())})")
    print(f"model: {plan.config.model} ({plan.source.origin})")
    print("resolved config (hash " + plan.config.config_hash()[:12] + "):")
    print(indent(yaml.safe_dump(plan.config.to_dict(), sort_keys=False, default_flow_style=None)))


def format_metrics(metrics: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{name} {m['value']:.4f}" for name, m in metrics.items())


def print_epoch(entry: dict[str, Any]) -> None:
    scores = f"  {format_metrics(entry['metrics'])}" if entry["metrics"] else ""
    print(f"epoch {entry['epoch']} step {entry['step']}: train loss {entry['train_loss']:.4f}{scores}", flush=True)


def print_summary(record: dict[str, Any], path: Path) -> None:
    print(summary_lines(record))
    print(f"record: {path}")


def summary_lines(record: dict[str, Any]) -> str:
    p = record.get("params") or {}
    m = record.get("measurements") or {}
    tp = m.get("train_throughput", {})
    lines = [
        f"status: {record['status']}" + (f" ({record['error']})" if record.get("error") else ""),
        f"metrics (best epoch {record.get('best_epoch')}): {format_metrics(record.get('metrics', {})) or '-'}",
    ]
    if record.get("metrics_last") and record["metrics_last"] != record.get("metrics"):
        lines.append(f"metrics (last epoch): {format_metrics(record['metrics_last'])}")
    if p:
        formula = f", paper formula {p['formula']:,}" if p.get("formula") is not None else ""
        lines.append(
            f"parameters: method {p['method']:,} (head {p['head']:,}, trainable {p['trainable']:,}, total {p['total']:,}){formula}"
        )
    if tp.get("steps_measured"):
        lines.append(
            f"training: {tp['tokens_per_s']:.0f} tokens/s, {tp['samples_per_s']:.1f} samples/s over {tp['steps_measured']} steady steps"
        )
    if m.get("peak_rss_bytes"):
        lines.append(f"peak memory: {m['peak_rss_bytes'] / 2**20:.0f} MiB RSS; checkpoint {m.get('checkpoint_bytes', 0):,} bytes")
    return "\n".join(lines)


def show_record(record: dict[str, Any], path: Path) -> str:
    cfg = record["config"]
    head = [
        f"run {record['run_id']}  [{path}]",
        f"{cfg['method']} on {cfg['task']} with {cfg['model']}, data {record['data']['source']}",
        f"created {record['created_at']}, finished {record.get('finished_at') or '-'}",
        f"config hash {record['config_hash'][:12]}; commit {(record.get('env') or {}).get('commit') or '-'}",
    ]
    epochs = [
        f"  epoch {e['epoch']} step {e['step']}: loss {e['train_loss']:.4f}  {format_metrics(e['metrics'])}"
        for e in record.get("epochs", [])
    ]
    config = indent(yaml.safe_dump({k: cfg[k] for k in ("hyperparameters", "training")}, sort_keys=False, default_flow_style=None))
    return "\n".join([*head, summary_lines(record), "epochs:", *epochs, "config:", config])


def indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())
