"""How the paper lays out its score tables: which tasks and metrics are columns, their headers and
printed precision, the scale a column is printed in, and the order of the method rows.

Reports render these layouts and the reader (`tables.py`) maps the paper's own column labels onto
the same column ids, so the vocabulary exists once: the inverse maps are derived here, not kept
beside the forward ones.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE_METHOD = "ft"  # full fine-tuning: the method every cost ratio is taken against

# the paper's row order of methods; methods it never ran (relora, ...) follow alphabetically
METHOD_ORDER = ("ft", "ft_top2", "bitfit", "prefix_embed", "prefix_layer", "adapter_h", "adapter_l", "adapter_p", "adapter_d", "lora")


@dataclass(frozen=True)
class Column:
    id: str  # the column id of our rows and the paper's (a GLUE task, or a metric name)
    header: str  # as printed (also the paper JSON's key, with spaces as underscores)
    task: str
    metric: str | None  # None: the task's main metric (GLUE)
    digits: int
    scale: float | None = None  # None: the metric registry's paper_scale


@dataclass(frozen=True)
class ScoreSpec:
    name: str
    title: str
    paper_table: str  # "table2"...; empty for a table of ours the paper does not have
    rule: str  # "median" (GLUE) or "mean" (data-to-text), as the paper pools seeds
    columns: tuple[Column, ...]
    average: bool = False
    json_key: str = ""  # the table's key in paper_tables.json

    @property
    def paper_columns(self) -> dict[str, str]:
        """The paper JSON's column label -> our column id (the inverse of the headers)."""
        return {c.header.replace(" ", "_"): c.id for c in self.columns}


GLUE_HEADERS = {
    "mnli": "MNLI",
    "sst2": "SST-2",
    "mrpc": "MRPC",
    "cola": "CoLA",
    "qnli": "QNLI",
    "qqp": "QQP",
    "rte": "RTE",
    "stsb": "STS-B",
}
SPLITS = (("_unseen", "U"), ("_seen", "S"), ("", "A"))  # WebNLG's unseen / seen / all categories

SPECS = (
    ScoreSpec(
        "glue",
        "GLUE dev (the paper's Table 2)",
        "table2",
        "median",
        tuple(Column(t, h, t, None, 1) for t, h in GLUE_HEADERS.items()),
        average=True,
        json_key="table2",
    ),
    ScoreSpec(
        "e2e",
        "E2E NLG Challenge test (the paper's Table 3)",
        "table3",
        "mean",
        (
            Column("bleu", "BLEU", "e2e", "bleu", 1),
            Column("nist", "NIST", "e2e", "nist", 2),
            # Table 3 prints METEOR and ROUGE-L x100 (46.2, 71.0), unlike Tables 13-14 (0.39): this table's own scale
            Column("meteor", "MET", "e2e", "meteor", 1, scale=100.0),
            Column("rouge_l", "ROUGE-L", "e2e", "rouge_l", 1, scale=100.0),
            Column("cider", "CIDEr", "e2e", "cider", 2),
        ),
        json_key="table3",
    ),
    ScoreSpec(
        "webnlg",
        "WebNLG test, unseen (U) / seen (S) / all (A) categories (the paper's Table 14)",
        "table14",
        "mean",
        tuple(
            Column(f"{m}{suffix}", f"{h} {s}", "webnlg", f"{m}{suffix}", d)
            for m, h, d in (("bleu", "BLEU", 1), ("meteor", "MET", 2), ("ter", "TER", 2))
            for suffix, s in SPLITS
        ),
        json_key="webnlg",
    ),
    ScoreSpec(
        "dart",
        "DART test (the paper's Table 13)",
        "table13",
        "mean",
        (Column("bleu", "BLEU", "dart", "bleu", 1), Column("meteor", "MET", "dart", "meteor", 2), Column("ter", "TER", "dart", "ter", 2)),
        json_key="dart",
    ),
)

TABLE_NAMES = {"table2": "Table 2 (GLUE)", "table3": "Table 3 (E2E)", "table13": "Table 13 (DART)", "table14": "Table 14 (WebNLG)"}


def spec_of(paper_table: str) -> ScoreSpec:
    """The layout of one paper table by its id ("table2", ...)."""
    return next(s for s in SPECS if s.paper_table == paper_table)


def table_tasks(paper_table: str) -> list[str]:
    """The tasks one paper table holds, in column order."""
    return list(dict.fromkeys(c.task for c in spec_of(paper_table).columns))


def method_rank(method: str) -> tuple[int, str]:
    """Sort key putting methods in the paper's row order, the paper's unknown methods after them."""
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)
