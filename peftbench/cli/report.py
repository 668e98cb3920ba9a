"""`report`: the paper's tables with our numbers beside them, and figures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from peftbench.cli.common import EPILOG, add_results_dir, add_where


def add_parser(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="tables like the paper's, our numbers beside the paper's, figures (HTML, Markdown, LaTeX, CSV)",
        description="Read the records, pool the seeds of each configuration (comparability key) as the paper does (GLUE: "
        "median; E2E, WebNLG, DART: mean; ± the standard deviation, n seeds in every cell), put the paper's numbers beside "
        "them with ours - paper where the run followed the paper's protocol (a run that did not is marked with its "
        "differences), give every cell an interval, and write index.html (self-contained), report.md, tables.tex and csv/ "
        "under --out. Paper rows not run yet come last.",
        epilog=EPILOG,
    )
    add_where(report)
    add_results_dir(report)
    report.add_argument("--out", default="reports/latest", help="output folder (default: reports/latest)")
    report.add_argument("--format", help="comma-separated subset of html,md,tex,csv (default: all)")
    report.add_argument(
        "--diff-anyway",
        action="store_true",
        help="show ours - paper also for runs that do not follow the paper's protocol (still marked with their differences)",
    )
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from peftbench.records.store import check_writable, results_dir
    from peftbench.report import make_report, parse_formats, parse_where

    check_writable(Path(args.out), "report folder")
    where, formats = parse_where(args.where), parse_formats(args.format)
    result = make_report(results_dir(args.results_dir), where, Path(args.out), formats, diff_anyway=args.diff_anyway)
    print(result.report.summary[0])
    for table in result.report.tables:
        if table.row_kind and table.row_kind[0] == "ours":  # the paper-layout score tables, in full; the rest by size
            print(f"\n{table.title}\n{table.to_text()}\n")
        else:
            print(f"{table.title}: {len(table.frame)} rows")
    for path in result.written:
        if path.suffix in (".html", ".md", ".tex"):
            print(f"wrote {path}")
    csvs = [p for p in result.written if p.suffix == ".csv"]
    print(f"wrote {len(csvs)} CSV files and {len(result.report.charts)} figures under {args.out}")
    return 0
