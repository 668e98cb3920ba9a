"""How the paper produced each score table, and how a run of ours differs from it.

A number of ours sits beside the paper's as `ours - paper` only when both were produced the same
way: the same model, the full training split, the full evaluation split, the paper's decoding, no
step cap, the paper's epochs where Appendix D states them, and a trainable-parameter count within
a tolerance of the paper's row. Anything else (a 64-example training set, 50 of 630 test inputs,
greedy decoding) makes the difference meaningless, so the report withholds it and lists why.

The protocols are data read from Appendix D (`tables.hyperparams`) plus the table captions
(GLUE: dev set; data-to-text: test set). `RunProtocol` is what a run did, filled in by the report
from a record; this module never reads records, so it stays below records/ and report/.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from peftbench.paper.tables import PaperRow, hyperparams

PARAMS_TOLERANCE = 1.25  # a run's trainable count within x1.25 of the printed count (GPT-2 M LoRA: 0.39M vs 0.35M)
GLUE_LABELS = {"mnli": "MNLI", "sst2": "SST-2", "mrpc": "MRPC", "cola": "CoLA", "qnli": "QNLI", "qqp": "QQP", "rte": "RTE", "stsb": "STS-B"}
NLG_DATASETS = {"table3": "E2E", "table14": "WebNLG", "table13": "DART"}
MAX_NEW_TOKENS = 64  # the repository's `--eval_len 64` (the paper does not state it)


@dataclass(frozen=True)
class Decoding:
    num_beams: int
    length_penalty: float
    no_repeat_ngram_size: int
    max_new_tokens: int


@dataclass(frozen=True)
class Protocol:
    """What the paper did for one (table, row, task): the splits, their sizes, decoding and epochs."""

    eval_split: str  # our split name: "validation" (GLUE dev) or "test"
    decoding: Decoding | None  # None: a classification or regression table
    epochs: int | None  # None: Appendix D does not state it for this row (prior work, or a method it does not list)


@dataclass(frozen=True)
class RunProtocol:
    """What one run of ours did, as the comparison needs it (filled from a record by the report)."""

    model: str
    data: str  # where the data came from ("sample": the bundled sample files, not the dataset)
    train_split: str
    train_examples: int | None  # None: the whole split
    eval_split: str
    eval_examples: int | None  # None: the whole split
    eval_total: int | None  # examples in the evaluation split, when the record says
    epochs: int | None
    max_steps: int | None  # None or 0: no step cap
    params: float | None
    decoding: Decoding | None


def protocol_of(row: PaperRow, task: str) -> Protocol:
    """The paper's protocol behind `row`'s number for `task`."""
    if row.table == "table2":
        return Protocol("validation", None, glue_epochs(row, task))
    d3 = hyperparams()["D3_gpt2"]
    setting = d3["by_dataset"][NLG_DATASETS[row.table]]
    decoding = Decoding(setting["beam_size"], float(setting["length_penalty"]), setting["no_repeat_ngram_size"], MAX_NEW_TOKENS)
    return Protocol("test", decoding, None if row.prior_work else int(setting["epochs"]))


def glue_epochs(row: PaperRow, task: str) -> int | None:
    """Table 9/10's epochs for this row and task; None where the paper does not state them (the * rows)."""
    if row.prior_work:
        return None
    tables = {**hyperparams()["D1_roberta"], **hyperparams()["D2_deberta"]}
    base = row.label.rstrip("†*")
    size = row.params_text.replace(".0M", "M")
    keys = [k for k in tables if k.startswith(f"{row.model} {base}") and k.endswith("†") == row.label.endswith("†")]
    keys = [k for k in keys if "(" not in k or f"({size})" in k]
    epochs = tables[keys[0]].get("epochs") if keys else None
    return int(epochs[GLUE_LABELS[task]]) if isinstance(epochs, dict) and task in GLUE_LABELS else None


def differences(row: PaperRow, paper_model: str, task: str, run: RunProtocol) -> list[str]:
    """Every way `run` differs from the protocol behind `row`'s number for `task`; empty: comparable."""
    paper = protocol_of(row, task)
    out = [f"model {run.model} (paper: {paper_model})"] if run.model != paper_model else []
    if run.data == "sample":
        out.append("the bundled sample data (paper: the dataset)")
    if run.train_split != "train":
        out.append(f"trained on the {run.train_split} split (paper: train)")
    if run.train_examples:
        out.append(f"trained on {run.train_examples} examples (paper: the whole train split)")
    if run.eval_split != paper.eval_split:
        out.append(f"scored on {run.eval_split} (paper: {paper.eval_split})")
    if run.eval_examples and (run.eval_total is None or run.eval_examples < run.eval_total):
        of = f" of {run.eval_total}" if run.eval_total else ""
        out.append(f"scored on {run.eval_examples}{of} {run.eval_split} examples (paper: all)")
    if run.max_steps:
        out.append(f"stopped at {run.max_steps} steps (paper: whole epochs)")
    elif paper.epochs is not None and run.epochs != paper.epochs:
        out.append(f"{run.epochs} epochs (paper: {paper.epochs})")
    out += decoding_differences(paper.decoding, run.decoding)
    out += params_difference(row, run.params)
    return out


def decoding_differences(paper: Decoding | None, ours: Decoding | None) -> list[str]:
    if paper is None or ours is None:
        return []
    out = []
    if ours.num_beams != paper.num_beams:
        out.append("greedy decoding" if ours.num_beams == 1 else f"beam {ours.num_beams}")
        out[-1] += f" (paper: beam {paper.num_beams})"
    if not math.isclose(ours.length_penalty, paper.length_penalty):
        out.append(f"length penalty {ours.length_penalty:g} (paper: {paper.length_penalty:g})")
    if ours.no_repeat_ngram_size != paper.no_repeat_ngram_size:
        out.append(f"no-repeat n-gram {ours.no_repeat_ngram_size} (paper: {paper.no_repeat_ngram_size})")
    if ours.max_new_tokens != paper.max_new_tokens:
        out.append(f"at most {ours.max_new_tokens} new tokens (paper's code: {paper.max_new_tokens})")
    return out


def params_difference(row: PaperRow, params: float | None) -> list[str]:
    """A trainable count outside the tolerance of the row's printed count: another configuration."""
    if not row.params or not params or params <= 0:
        return []
    if abs(math.log(params / row.params)) <= math.log(PARAMS_TOLERANCE):
        return []
    return [f"{fmt_params(params)} trainable (paper: {row.params_text}, tolerance x{PARAMS_TOLERANCE:g})"]


def fmt_params(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}K" if n >= 1e3 else f"{int(n)}"
