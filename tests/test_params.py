"""`peftbench params`: exact counts on the meta device, and the paper's rows recounted."""

import pytest

from peftbench.params import agreement, count_params, paper_rows, paper_table


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


def test_every_defined_paper_row_is_recounted_and_unexplained_rows_match():
    rows = paper_table()
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
