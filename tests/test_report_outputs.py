"""What the report's files are safe for: Markdown that shows record strings as text, LaTeX that compiles and fits
the page, intervals of the stated kind, and the paper's protocol check, without training anything."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from peftbench import paper
from peftbench.paper.protocol import Decoding, RunProtocol, differences
from peftbench.report import latex, markdown
from peftbench.report.uncertainty import example_interval, seed_interval

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = 'x"><img src=x onerror=alert(1)>|y `z` *w* [l](http://e) #h'


def test_markdown_escapes_html_and_table_syntax():
    shown = markdown.escape(HOSTILE)
    assert "<" not in shown and ">" not in shown and "&lt;img src=x" in shown
    assert "\\|" in shown and "\\`z\\`" in shown and "\\*w\\*" in shown and "\\[l\\]" in shown
    rows = markdown.table(["model", "score"], [[(HOSTILE, False), ("1.0", True)]]).splitlines()
    unescaped = [len(re.findall(r"(?<!\\)\|", line)) for line in rows]
    assert unescaped == [3, 3, 3]  # the hostile `|` does not open a cell
    assert rows[2].endswith("| **1.0** |")


def test_latex_escapes_every_special_character():
    text = latex.escape("a_b 50% #1 & $x$ {y} ~^ \\ ± ↓ † ⚠ 漢")
    assert text == (
        r"a\_\allowbreak{}b 50\% \#1 \& \$x\$ \{y\} \textasciitilde{}\textasciicircum{} \textbackslash{} $\pm$ "
        r"$\downarrow$ \dag{} \textbf{!} ?"
    )


def test_a_table_that_does_not_fit_is_scaled_when_mildly_wide_and_wrapped_when_wider():
    header = ["model & method", *(f"column {i}" for i in range(10))]
    rows = [
        [(f"model-{i} lora+prefix_layer (r=8, alpha=16)", i == 0), *((f"{i}.5 [1.0, 2.0]R n=3", False) for _ in range(10))]
        for i in range(40)
    ]
    tex = latex.table("t", "A_title with 50%", "caption #1", header, rows, ["note & more"])
    assert r"\begin{longtable}" in tex and r"p{0." in tex and r"\caption{A\_\allowbreak{}title with 50\%}" in tex
    wide = latex.table("t", "T", "", header, rows[:5], [])  # five rows, but three pages wide: wrapped, across pages if need be
    assert r"\begin{longtable}" in wide and r"p{0." in wide and r"\textbf{model-0" in wide
    mild = latex.table("t", "T", "", header[:5], rows[:5], [])  # 1.2 pages wide: a float, scaled to the text width
    assert r"\resizebox{\linewidth}{!}" in mild and r"\begin{table}" in mild
    fits = latex.table("t", "T", "", header[:2], rows[:5], [])
    assert r"\resizebox" not in fits and r"\begin{tabular}{ll}" in fits


PDFLATEX = shutil.which("pdflatex")


def compile_tex(tables: Path, tmp_path: Path) -> str:
    """The acceptance check's wrapper: a plain article; returns the log."""
    (tmp_path / "tables.tex").write_text(tables.read_text())
    doc = "\\documentclass{article}\n\\usepackage{booktabs,longtable,tabularx,array,graphicx,amssymb,xcolor}\n"
    (tmp_path / "doc.tex").write_text(doc + "\\begin{document}\n\\input{tables.tex}\n\\end{document}\n")
    done = subprocess.run(
        [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path, capture_output=True, timeout=300
    )
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert done.returncode == 0, re.findall(r"^!.*", log, re.M)[:3]
    return log


def overfull(log: str) -> list[float]:
    return [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
@pytest.mark.parametrize("report", sorted(p.parent.name for p in (ROOT / "reports").glob("*/tables.tex")))
def test_committed_tables_tex_compiles_and_fits(report, tmp_path):
    log = compile_tex(ROOT / "reports" / report / "tables.tex", tmp_path)
    assert max(overfull(log), default=0.0) <= 20.0 and "Float too large" not in log


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
def test_hostile_strings_and_a_long_table_compile(tmp_path):
    header = ["model & method", *(f"task_{i}" for i in range(9))]
    rows = [
        [(f"{HOSTILE} 20261202T151757Z-lora-e2e-smollm2-135m-{i}", False), *((f"{i}.5 [1.0, 2.0]R n=3", False) for _ in range(9))]
        for i in range(60)
    ]
    body = latex.table("hostile", f"Training step cost on {HOSTILE}", HOSTILE, header, rows, [HOSTILE])
    body += "\n" + latex.table("short", HOSTILE, "", header, rows[:4], [])
    (tmp_path / "in.tex").write_text(body)
    log = compile_tex(tmp_path / "in.tex", tmp_path)
    assert max(overfull(log), default=0.0) <= 20.0


def test_intervals_say_their_kind():
    five = seed_interval([0.80, 0.82, 0.85, 0.86, 0.90], "median")
    assert five.kind == "B" and 0.80 <= five.low <= 0.85 <= five.high <= 0.90
    assert seed_interval([0.8, 0.9, 1.0], "median") == seed_interval([1.0, 0.8, 0.9], "mean")  # under 5 seeds: the range
    assert seed_interval([0.8, 1.0], "mean").kind == "R" and seed_interval([0.8], "mean").kind == "N"
    acc = example_interval("accuracy", 0.8, 400, 100.0)  # sqrt(.8 * .2 / 400) = 0.02, x 1.96
    assert acc.kind == "E" and (acc.low, acc.high) == (pytest.approx(76.08, abs=0.01), pytest.approx(83.92, abs=0.01))
    corr = example_interval("pearson", 0.5, 103, 100.0)
    assert corr.kind == "F" and corr.low < 50 < corr.high and corr.high - 50 < 50 - corr.low  # Fisher z: asymmetric
    assert example_interval("bleu", 30.0, 630, 1.0).kind == "N"  # corpus BLEU of one run: needs the predictions


def gpt2_e2e(**changes) -> RunProtocol:
    follows = {
        "model": "gpt2-medium", "data": "hub", "train_split": "train", "train_examples": None, "eval_split": "test",
        "eval_examples": None, "eval_total": 630, "epochs": 5, "max_steps": None, "params": 393_216.0,
        "decoding": Decoding(10, 0.9, 4, 64),
    }  # fmt: skip
    return RunProtocol(**{**follows, **changes})


def test_the_protocol_check_lists_every_difference_from_the_papers_table():
    lora, _ = paper.match("table3", "gpt2-medium", "lora", 393_216)
    assert differences(lora, "gpt2-medium", "e2e", gpt2_e2e()) == []  # the paper's protocol; 0.39M is within x1.25 of 0.35M
    found = differences(
        lora,
        "gpt2-medium",
        "e2e",
        gpt2_e2e(train_split="validation", train_examples=64, eval_examples=50, epochs=1, decoding=Decoding(1, 0.9, 4, 40), params=4096.0),
    )
    assert found == [
        "trained on the validation split (paper: train)",
        "trained on 64 examples (paper: the whole train split)",
        "scored on 50 of 630 test examples (paper: all)",
        "1 epochs (paper: 5)",
        "greedy decoding (paper: beam 10)",
        "at most 40 new tokens (paper's code: 64)",
        "4.1K trainable (paper: 0.35M, tolerance x1.25)",
    ]
    glue, _ = paper.match("table2", "roberta-base", "lora", 294_912)
    run = gpt2_e2e(model="roberta-base", eval_split="validation", eval_total=408, epochs=30, decoding=None, params=294_912.0)
    assert differences(glue, "roberta-base", "mrpc", run) == []  # Table 9: 30 epochs on MRPC
    assert differences(glue, "roberta-base", "rte", run) == ["30 epochs (paper: 80)"]


def imported_packages(folder: Path) -> set[str]:
    """The peftbench modules a package's files import (at the top or inside functions)."""
    import ast

    found: set[str] = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("peftbench"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("peftbench")}
    return found


def test_the_paper_package_sits_below_the_report_and_figures_never_import_tuning():
    """paper/ is the one place that knows the paper: it imports no part above it, and the report's
    figures and tuning modules draw through svg.py instead of importing each other."""
    above = ("peftbench.report", "peftbench.cli", "peftbench.grid", "peftbench.run", "peftbench.bench", "peftbench.regress")
    assert not [m for m in imported_packages(ROOT / "peftbench" / "paper") if m.startswith(above)]
    report = ROOT / "peftbench" / "report"
    assert "tuning" not in (report / "figures.py").read_text() and "report.figures" not in (report / "tuning.py").read_text()


def test_a_sweep_header_counts_its_configurations_instead_of_listing_keys():
    from peftbench.report.collect import describe_where

    keys = [f"{i:08x}" * 2 for i in range(20)]
    assert describe_where({"key": keys}) == "20 configurations"
    assert describe_where({"method": ["lora", "bitfit"], "task": ["mrpc"]}) == "method=lora, bitfit; task=mrpc"
