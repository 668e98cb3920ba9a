"""`peftbench params --budget N`: the size knob solved so the paper-convention count is N exactly."""

import pytest

from peftbench.bench.budget import size_knob, solve, solve_params
from peftbench.cli import main
from peftbench.errors import UsageError

TABLE5_BUDGET = 18_874_368  # GPT-3 175B, Table 5's "18M": 96 layers x 2 x 12,288 x 8 for one matrix at r=8


@pytest.mark.parametrize(("targets", "rank"), [("q", 8), ("v", 8), ("q,v", 4), ("q,k", 4), ("q,k,v,o", 2)])
def test_table5_ranks_on_the_gpt3_shape(targets, rank):
    solved = solve_params("lora", "gpt3-175b", TABLE5_BUDGET, overrides=[f"targets={targets}"])
    assert (solved.knob, solved.value, solved.count) == ("r", rank, TABLE5_BUDGET)


def test_roberta_base_four_matrices_under_the_qv_r8_budget(capsys):
    assert main(["params", "--method", "lora", "--model", "roberta-base", "--set", "targets=q,k,v,o", "--budget", "147456"]) == 0
    out = capsys.readouterr().out
    assert "r=2 gives 147,456" in out
    assert "method parameters (paper convention: task head excluded)  147,456" in out


def test_unreachable_budget_is_one_line_naming_the_nearest_counts(capsys):
    args = ["params", "--method", "lora", "--model", "roberta-base", "--set", "targets=q,k,v,o"]
    assert main([*args, "--budget", "100000"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "73,728 (r=1)" in err and "147,456 (r=2)" in err
    assert main([*args, "--budget", "1000"]) == 2
    assert "nearest is 73,728 (r=1)" in capsys.readouterr().err


def test_adapters_and_prefixes_solve_their_own_knob():
    adapter = solve_params("adapter_h", "roberta-base", 92_208)  # the count at bottleneck=2 (Houlsby: two adapters a block)
    assert (adapter.knob, adapter.value) == ("bottleneck", 2)
    prefix = solve_params("prefix_layer", "roberta-base", 101_376)
    assert (prefix.knob, prefix.value) == ("prefix_len", 11)


def test_methods_without_a_size_knob_and_a_knob_also_set_are_refused():
    assert size_knob("relora") == "r"
    with pytest.raises(UsageError, match="no size knob"):
        size_knob("bitfit")
    with pytest.raises(UsageError, match="do not also --set r"):
        solve_params("lora", "roberta-base", 147_456, overrides=["r=4"])


def test_solve_falls_back_to_bisection_when_the_count_is_not_affine():
    def count(k: int) -> int:  # a count that bends: squares are not on the line through 1 and 2
        return k * k

    assert solve(count, 49, "r").value == 7
    with pytest.raises(UsageError, match=r"36 \(r=6\) and 49 \(r=7\)"):
        solve(count, 40, "r")
