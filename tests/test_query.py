"""The one `--where` grammar (records/query.py): parsing, reading a field, matching."""

import pytest

from peftbench.errors import UsageError
from peftbench.records.query import as_where, field_of, matches, parse_where

RECORD = {
    "kind": "run",
    "run_id": "r1",
    "status": "finished",
    "seed": 0,
    "key": "abc123",
    "host": "box",
    "env": {"commit": "9fe7e28deadbeef", "dirty": False},
    "params": {"method": 4096},
    "config": {
        "method": "lora",
        "task": "mrpc",
        "model": "tiny-roberta",
        "training": {"lr": 0.002, "seed": 0},
        "hyperparameters": {"r": 8},
    },
}


def test_the_grammar_takes_pairs_lists_and_repeats():
    assert parse_where(["method=lora,bitfit,task=mrpc", "seed=0"]) == {"method": ["lora", "bitfit"], "task": ["mrpc"], "seed": ["0"]}
    assert parse_where(["method=lora", "method=ft"]) == {"method": ["lora", "ft"]}
    assert parse_where([" training.lr = 0.002 "]) == {"training.lr": ["0.002"]}
    assert parse_where(None) == {} and parse_where([]) == {}
    for bad in ("lora", "=lora", "method=lora,=x"):
        with pytest.raises(UsageError, match="FIELD=VALUE"):
            parse_where([bad])
    with pytest.raises(UsageError, match="unknown field 'metod'; did you mean method"):
        parse_where(["metod=lora"])
    assert parse_where(["bottleneck=8,num_beams=1,anything.dotted=1"])  # settings of any method, dotted paths as given


def test_keyword_filters_become_the_grammar():
    assert as_where({"method": "lora", "seed": [0, 1], "task": None}) == {"method": ["lora"], "seed": ["0", "1"]}


@pytest.mark.parametrize(
    ("name", "value"),
    [("method", "lora"), ("seed", 0), ("key", "abc123"), ("commit", "9fe7e28deadbeef"), ("dirty", False), ("host", "box"),
     ("training.lr", 0.002), ("config.training.lr", 0.002), ("lr", 0.002), ("r", 8), ("params.method", 4096), ("nothing", None)],
)  # fmt: skip
def test_a_field_is_read_where_the_record_keeps_it(name, value):
    assert field_of(RECORD, name) == value


def test_matching_is_by_text_number_or_commit_prefix():
    assert matches(RECORD, parse_where(["method=lora,bitfit", "task=mrpc"]))
    assert matches(RECORD, {"lr": ["2e-3"]}) and not matches(RECORD, {"lr": ["2e-4"]})
    assert matches(RECORD, {"commit": ["9fe7e28"]}) and not matches(RECORD, {"commit": ["0000000"]})
    assert not matches(RECORD, {"method": ["ft"]})
    assert not matches(RECORD, {"unknown_field": ["x"]})  # a typo matches nothing (commands say so)
    assert matches(RECORD, {"status": ["stale"]}, status="stale") and not matches(RECORD, {"status": ["stale"]})
    assert not matches(RECORD, {"dirty": ["1"]})  # a boolean is not the number 1
