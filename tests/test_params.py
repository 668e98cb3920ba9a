"""`peftbench params`: exact counts on the meta device, and the paper's rows recounted."""

import json
import re

import pytest
import torch
from transformers import AutoModel

from peftbench.bench.params import agreement, count_params, paper_rows, paper_table, printed_millions
from peftbench.models.build import base_config, build_model
from peftbench.models.presets import resolve_model
from peftbench.specs import PACKAGE_DIR


@pytest.fixture(scope="module")
def recounted():
    """Every defined row of the paper's tables, recounted once (about 20 s on the meta device)."""
    return paper_table()


@pytest.mark.parametrize(
    ("method", "model", "overrides", "expected"),
    [
        ("lora", "roberta-base", [], 294_912),  # Table 2: 2 x 24 x 768 x 8
        ("lora", "roberta-large", ["r=8"], 786_432),
        ("lora", "deberta-v2-xxlarge", ["r=16"], 4_718_592),
        ("lora", "gpt2-medium", ["r=4"], 393_216),
        ("lora", "gpt3-175b", ["r=1"], 4_718_592),  # Table 4: r_q = r_v = 1
        ("lora", "gpt3-175b", ["targets=v", "r=2"], 4_718_592),  # Table 15: r_v = 2
        ("ft", "gpt2-large", [], 774_030_080),
        ("ft_top2", "gpt2-medium", [], 25_192_448),
    ],
)
def test_counts_reproduce_the_paper(method, model, overrides, expected):
    count = count_params(method, model, overrides=overrides)
    assert count.counts["method"] == expected
    if method == "lora":
        assert count.formula == expected


def test_head_is_reported_separately_for_encoders():
    count = count_params("lora", "roberta-base")
    assert count.counts["head"] == 768 * 768 + 768 + 768 * 2 + 2  # dense + out_proj of the 2-label head
    assert count.counts["trainable"] == count.counts["method"] + count.counts["head"]
    assert count.checkpoint_bytes(2) == 294_912 * 2


def test_task_changes_the_head_not_the_method():
    counts = {task: count_params("lora", "roberta-base", task=task).counts for task in ("stsb", "mrpc", "mnli")}  # 1, 2, 3 outputs
    assert {task: c["method"] for task, c in counts.items()} == dict.fromkeys(counts, 294_912)
    dense = 768 * 768 + 768
    assert {task: c["head"] for task, c in counts.items()} == {"stsb": dense + 769, "mrpc": dense + 2 * 769, "mnli": dense + 3 * 769}


@pytest.mark.parametrize(
    ("count", "printed", "verdict"),
    [
        (294_912, "0.3M", "matches (rounded)"),
        (491_520, "0.4M", "matches (truncated)"),
        (393_216, "0.35M", "MISMATCH (+12.3%)"),
        (774_030_080, "774.03M", "matches (rounded)"),
    ],
)
def test_agreement(count, printed, verdict):
    assert agreement(count, printed) == verdict


def test_every_defined_paper_row_is_recounted_and_unexplained_rows_match(recounted):
    rows = recounted
    assert len(rows) == len(paper_rows()) >= 50
    assert {r["table"] for r in rows} == {"2", "3", "4", "15"}
    for row in rows:
        if row["agreement"].startswith("MISMATCH"):
            assert row.get("note"), f"unexplained mismatch: {row['label']}"
        if row["formula"] is not None and row["method"] in ("lora", "prefix_embed", "prefix_layer", "adapter_h", "adapter_p", "adapter_l"):
            assert row["formula"] == row["ours"], row["label"]


def test_cli_params_and_errors(cli):
    res = cli("params", "--method", "lora", "--model", "roberta-base")
    assert res.code == 0 and "294,912" in res.out and "(equal)" in res.out
    bad = cli("params", "--method", "lora", "--model", "roberta-base", "--set", "r=0")
    assert bad.code == 2 and "rank" in bad.err
    missing = cli("params", "--method", "lora")
    assert missing.code == 2


# ---------------------------------------------------------------- the notes say what a recount gives

COUNT = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")  # 1,049,600: how the notes write a count


def pooler(model: str) -> int:
    """Parameters of the model's pooler: the backbone's (RoBERTa), or the classification head's (DeBERTa-v2)."""
    source = resolve_model(model)
    with torch.device("meta"):
        owner = AutoModel.from_config(base_config(source))
    if getattr(owner, "pooler", None) is None:
        owner = build_model(source, "classification", meta=True)
    return sum(p.numel() for p in owner.pooler.parameters())


def extra_counts(row: dict) -> set[int]:
    """Counts a row's note may state besides its own, its formula's and its gap to the printed count, each recounted."""
    ours, label = row["ours"], row["label"]
    if label in ("RoB-base FT*", "RoB-large FT*", "DeB-XXL FT*"):
        size = pooler(row["model"])
        return {size, ours + size, round(printed_millions(row["printed"]) * 1e6) - ours - size}
    if label.startswith("DeB-XXL LoRA (Table 10"):
        return {count_params("lora", row["model"], overrides=["r=16"]).counts["method"]}
    if label.startswith("LoRA+PL"):
        parts = ("lora", ["r=8"]), ("prefix_layer", ["prefix_len=8", "infix_len=4"])
        return {count_params(method, row["model"], overrides=overrides).counts["method"] for method, overrides in parts}
    return set()


def test_every_count_a_note_states_is_a_recount(recounted):
    """A note that explains a mismatch says how much it explains, in counts this test recomputes: no claim by eye."""
    for row in (r for r in recounted if r.get("note")):
        gap = round(printed_millions(row["printed"]) * 1e6) - row["ours"]
        known = {row["ours"], row["formula"], gap} | extra_counts(row)
        stated = {int(n.replace(",", "")) for n in COUNT.findall(row["note"])}
        assert stated <= known, f"{row['label']}: {sorted(stated - known)} in {row['note']!r}"
    notes = {r["label"]: r.get("note", "") for r in recounted}
    assert "explains 590,592 of the 944,960 gap" in notes["RoB-base FT*"] and "354,368 are unexplained" in notes["RoB-base FT*"]
    assert "overshoots the 689,856 gap" in notes["RoB-large FT*"]


def test_the_prelayer_notes_give_the_real_range_of_the_gap(recounted):
    prelayer = [r for r in recounted if r["method"] == "prefix_layer"]
    above = [printed_millions(r["printed"]) * 1e6 / r["ours"] - 1 for r in prelayer]
    span = f"{100 * min(above):.1f}-{100 * max(above):.1f}%"
    assert span == "0.8-8.1%" and all(span in r["note"] for r in prelayer)
    (composed,) = [r for r in recounted if r["method"] == "lora+prefix_layer"]
    lora, layer = sorted(extra_counts(composed), reverse=True)
    left = printed_millions(composed["printed"]) * 1e6 - lora
    assert f"{left / 1e6:.2f}M" in composed["note"] and f"{100 * (left / layer - 1):.1f}% above" in composed["note"]


def test_the_gpt2_lora_notes_name_table_3s_prelayer_counts(recounted):
    """The printed LoRA counts of GPT-2 M and L are the PreLayer rows' counts of the same table (microsoft/LoRA #172)."""
    table3 = json.loads((PACKAGE_DIR / "paper" / "paper_tables.json").read_text())["table3"]["rows"]
    prelayer = {r["model"]: r["trainable_params_printed"] for r in table3 if r["method"].startswith("PreLayer")}
    for row in (r for r in recounted if r["table"] == "3" and r["method"] == "lora"):
        assert prelayer[row["model"]] == row["printed"] and "Table 3's PreLayer count" in row["note"]
