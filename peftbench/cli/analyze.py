"""`analyze subspace | amplification | spectrum`: Section 7's analyses of a kept run's learned update."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from peftbench.cli.common import EPILOG, add_json, add_results_dir

SHOWN = 8  # rows and columns of the φ grid printed (Figure 3 zooms into the top 8 x 8 too)


def add_parser(sub: Any) -> None:
    analyze = sub.add_parser(
        "analyze",
        help="the paper's Section 7 on kept runs: subspace similarity, amplification, spectrum of ΔW",
        description="Read a finished run's kept tensors (results/adapters/), rebuild its base weights, and analyse the LoRA "
        "update. RUN: a record path, a run id or a unique prefix of one.",
        epilog=EPILOG,
    )
    kinds = analyze.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    subspace = kinds.add_parser("subspace", help="φ(A_a, A_b, i, j) of Section 7.2 (Figure 3)")
    subspace.add_argument("run_a", metavar="RUN_A")
    subspace.add_argument("run_b", metavar="RUN_B")
    amplification = kinds.add_parser("amplification", help="||U^T W V||_F along ΔW's, W's and random directions (Table 7)")
    amplification.add_argument("run", metavar="RUN")
    spectrum = kinds.add_parser("spectrum", help="singular values and effective rank of ΔW per adapted matrix")
    spectrum.add_argument("run", metavar="RUN")
    for parser in (subspace, amplification):
        parser.add_argument("--matrix", help="q, k, v, o or ffn (default: the first adapted)")
        parser.add_argument("--layer", type=int, help="the layer (default: the middle one, as Figure 3)")
    for parser in (subspace, amplification, spectrum):
        add_results_dir(parser, "where a run id is looked up")
        add_json(parser)
        parser.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from peftbench.records.store import Store

    store = Store(args.results_dir and Path(args.results_dir))
    result = {"subspace": subspace, "amplification": amplification, "spectrum": spectrum}[args.analysis](args, store)
    print(json.dumps(result[0], indent=2) if args.json else result[1])
    return 0


def subspace(args: argparse.Namespace, store: Any) -> tuple[dict[str, Any], str]:
    from peftbench.bench import analysis
    from peftbench.tables import render_table

    first, second = store.find(args.run_a), store.find(args.run_b)
    a = analysis.pick(analysis.updates(first), args.matrix, args.layer, first.name)
    b = analysis.pick(analysis.updates(second), a.matrix, a.layer, second.name)
    phi = analysis.subspace_similarity(a.a, b.a)
    rows = [(f"i={i + 1}", *(f"{float(v):.2f}" for v in phi[i, :SHOWN])) for i in range(min(SHOWN, phi.shape[0]))]
    header = ("φ", *(f"j={j + 1}" for j in range(min(SHOWN, phi.shape[1]))))
    title = f"subspace similarity φ(A_a, A_b, i, j), matrix {a.matrix}, layer {a.layer}: r_a={phi.shape[0]}, r_b={phi.shape[1]}"
    data = {"matrix": a.matrix, "layer": a.layer, "phi": phi.tolist()}
    return data, f"{title}\n  A: {first.name}\n  B: {second.name}\n{render_table(rows, header)}"


def amplification(args: argparse.Namespace, store: Any) -> tuple[dict[str, Any], str]:
    from peftbench.bench import analysis
    from peftbench.tables import render_table

    path = store.find(args.run)
    update = analysis.pick(analysis.updates(path), args.matrix, args.layer, path.name)
    r = update.a.shape[0]
    got = analysis.amplification(update.delta, update.weight, r)
    rows = [
        (f"||U^T W V^T||_F, top-{r} directions of ΔW", f"{got['delta_W']:.4g}"),
        (f"||U^T W V^T||_F, top-{r} directions of W", f"{got['W']:.4g}"),
        (f"||U^T W V^T||_F, top-{r} directions of a random matrix", f"{got['random']:.4g}"),
        ("||W||_F", f"{got['norm_W']:.4g}"),
        ("||ΔW||_F", f"{got['norm_delta']:.4g}"),
        ("amplification factor ||ΔW||_F / ||U^T W V^T||_F (ΔW's directions)", f"{got['factor']:.4g}"),
    ]
    title = f"amplification (Table 7's layout), matrix {update.matrix}, layer {update.layer}, r={r}: {path.name}"
    return {"matrix": update.matrix, "layer": update.layer, **got}, f"{title}\n{render_table(rows)}"


def spectrum(args: argparse.Namespace, store: Any) -> tuple[dict[str, Any], str]:
    from peftbench.bench import analysis
    from peftbench.tables import render_table

    path = store.find(args.run)
    found = [(u, analysis.spectrum(u.delta)) for u in analysis.updates(path)]
    rows = [
        (
            str(u.layer),
            u.matrix,
            str(u.a.shape[0]),
            f"{s['effective_rank']:.2f}",
            str(s["numerical_rank"]),
            " ".join(f"{v:.3g}" for v in s["singular_values"][:6]),
        )
        for u, s in found
    ]
    header = ("layer", "matrix", "r", "effective rank", "numerical rank", "top singular values of ΔW")
    data = {"updates": [{"layer": u.layer, "matrix": u.matrix, **s} for u, s in found]}
    return data, f"spectrum of ΔW per adapted matrix: {path.name}\n{render_table(rows, header)}"
