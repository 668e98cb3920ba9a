"""Human-readable text for the terminal: the resolved config, epoch lines, summaries, records, run lists,
and `render_table`, through which every table the commands print goes (text, Markdown or CSV).

Records come from disk and may be old, partial (a run killed early) or of another kind: every
function here reads them with `.get` and shows `-` for what is missing, never a KeyError.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from peftbench.records.schema import main_metric_name, main_value, metric_value
from peftbench.records.store import Corrupt
from peftbench.tables import indent, render_table

if TYPE_CHECKING:  # the runner imports torch; `show` and `runs` must not pay for it
    from peftbench.records.store import Entry
    from peftbench.run.hooks import TrainState
    from peftbench.run.runner import Plan


def print_config(plan: Plan) -> None:
    r = plan.resolved
    print(f"run {plan.run_id}")
    print(f"data: {r.data.describe(r.spec)} ({', '.join(f'{k} {len(v)}' for k, v in plan.splits.items())})")
    print(f"model: {r.config.model} ({r.source.origin})")
    print("resolved config (hash " + r.config.config_hash()[:12] + "):")
    print(indent(yaml.safe_dump(r.config.to_dict(), sort_keys=False, default_flow_style=None)))


def format_metrics(metrics: dict[str, dict[str, Any]] | None) -> str:
    return ", ".join(f"{name} {fmt(m.get('value'))}" for name, m in (metrics or {}).items())


def fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


class EpochPrinter:
    """One line per epoch on the terminal: a runner callback (duck-typed, as `run.hooks.Callback` is a protocol of no-ops)."""

    def on_step_end(self, state: TrainState) -> None:
        pass

    def on_epoch_end(self, state: TrainState, entry: dict[str, Any]) -> None:
        scores = f"  {format_metrics(entry['metrics'])}" if entry["metrics"] else ""
        print(f"epoch {entry['epoch']} step {entry['step']}: train loss {entry['train_loss']:.4f}{scores}", flush=True)


def print_summary(record: dict[str, Any], path: Path) -> None:
    print(summary_lines(record))
    print(f"record: {path}")


def summary_lines(record: dict[str, Any]) -> str:
    p = record.get("params") or {}
    m = record.get("measurements") or {}
    tp = m.get("train_throughput") or {}
    lines = [
        f"status: {record.get('status', '-')}" + (f" ({record['error']})" if record.get("error") else ""),
        f"metrics (best epoch {record.get('best_epoch')}): {format_metrics(record.get('metrics')) or '-'}",
    ]
    if record.get("metrics_last") and record["metrics_last"] != record.get("metrics"):
        lines.append(f"metrics (last epoch): {format_metrics(record['metrics_last'])}")
    if p.get("method") is not None:
        formula = f", paper formula {p['formula']:,}" if p.get("formula") is not None else ""
        lines.append(
            f"parameters: method {p['method']:,} (head {p.get('head', 0):,}, trainable {p.get('trainable', 0):,}, "
            f"total {p.get('total', 0):,}){formula}"
        )
    if tp.get("steps_measured") and tp.get("tokens_per_s") is not None and tp.get("samples_per_s") is not None:
        lines.append(
            f"training: {tp['tokens_per_s']:.0f} tokens/s, {tp['samples_per_s']:.1f} samples/s over {tp['steps_measured']} steady steps"
        )
    if m.get("peak_rss_bytes"):
        lines.append(f"peak memory: {m['peak_rss_bytes'] / 2**20:.0f} MiB RSS; checkpoint {m.get('checkpoint_bytes', 0):,} bytes")
    return "\n".join(lines)


def show_record(record: dict[str, Any], path: Path, status: str | None = None) -> str:
    """Any kind of record, readable; `status` is the effective one (stale) when the caller knows it."""
    kind = record.get("kind", "run")
    env = record.get("env") or {}
    versions = ", ".join(f"{k} {env[k]}" for k in ("peftbench", "python", "torch", "transformers", "accelerate") if env.get(k))
    commit = f"{env.get('commit') or '-'}{' (dirty)' if env.get('dirty') else ''}"
    head = [
        f"{kind} {record.get('run_id', path.stem)}  [{path}]",
        f"created {record.get('created_at', '-')}, finished {record.get('finished_at') or '-'}, on {record.get('host') or '-'}",
        f"key {record.get('key', '-')}; seed {record.get('seed', '-')}; schema {record.get('schema_version', '-')}",
        f"versions: {versions or '-'}; commit {commit}; device {env.get('device_name') or env.get('device') or '-'}",
    ]
    if kind != "run":
        body = {k: v for k, v in record.items() if k not in ("env", "schema_version", "kind", "run_id", "created_at", "key_parts")}
        return "\n".join([*head, indent(yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=120))])
    cfg = record.get("config") or {}
    data = record.get("data") or {}
    lines = [
        *head,
        f"{cfg.get('method', '-')} on {cfg.get('task', '-')} with {cfg.get('model', '-')}, data {data.get('source', '-')}",
        summary_lines({**record, "status": status or record.get("status")}),
        "epochs:",
        *([indent(epochs_table(record["epochs"]))] if record.get("epochs") else []),
    ]
    sections = {k: cfg[k] for k in ("hyperparameters", "training") if k in cfg}
    if sections:
        lines += ["config:", indent(yaml.safe_dump(sections, sort_keys=False, default_flow_style=None))]
    return "\n".join(lines)


def epochs_table(epochs: list[dict[str, Any]]) -> str:
    """One row per epoch: epoch, step, train loss, then every metric any epoch has (`-` where one lacks it)."""
    names = list(dict.fromkeys(name for e in epochs for name in e.get("metrics") or {}))
    scores = [{n: metric_value({}, n, e) for n in e.get("metrics") or {}} for e in epochs]
    rows = [
        [e.get("epoch"), e.get("step"), fmt(e.get("train_loss")), *(fmt(s.get(n)) for n in names)]
        for e, s in zip(epochs, scores, strict=True)
    ]
    return render_table(rows, ["epoch", "step", "train loss", *names])


def runs_table(entries: Sequence[Entry | Corrupt]) -> str:
    """One line per record: id, status (stale included), method, task, model, seed, main metric, wall time.
    A file that is no valid record is a `corrupt` line with the reason, so a killed first write is never invisible."""
    rows = []
    for e in entries:
        if isinstance(e, Corrupt):  # status "corrupt"
            rows.append({"run": e.path.name, "status": "corrupt", "method": e.reason.removeprefix(f"{e.path}: ")[:100]})
            continue
        r, cfg = e.record, e.record.get("config") or {}
        metric, value = main_metric_name(r.get("metrics") or {}, r.get("main_metric") or ""), main_value(r)
        wall = sum(((r.get("measurements") or {}).get("wall_time_s") or {}).values())
        rows.append(
            {
                "run": r.get("run_id", e.path.stem),
                "status": e.status,
                "method": cfg.get("method", ",".join(r.get("methods", [])) or "-"),
                "task": cfg.get("task", r.get("kind", "-")),
                "model": cfg.get("model", r.get("model", "-")),
                "seed": str(r.get("seed", "-")),
                "main metric": f"{metric} {value:.4f}" if metric and value is not None else "-",
                "wall s": f"{wall:.1f}" if wall else "-",
            }
        )
    if not rows:
        return "no records"
    return render_table(rows)
