"""Axes in sweeps (`--vary`, `vary:`): every value its own cell, comparability key and record."""

from __future__ import annotations

import pytest

from peftbench.cli import main
from peftbench.errors import UsageError
from peftbench.grid import sweep
from peftbench.grid.axes import Axis, axes_from_spec, axis_label, expand, parse_vary
from peftbench.records.store import Store


def test_parsing_method_qualified_keys_and_set_values():
    assert parse_vary("lora.r=1,2,4") == Axis("r", ("1", "2", "4"), "lora")
    assert parse_vary("training.max_train_examples=100,1000") == Axis("training.max_train_examples", ("100", "1000"))
    assert parse_vary("adapter_h.bottleneck=2,8").method == "adapter_h"
    assert parse_vary("targets=q|v|q,v").overrides() == ["targets=q", "targets=v", "targets=q,v"]
    assert parse_vary("lora.targets=q,q+v,q+k+v+o").overrides() == ["targets=q", "targets=q,v", "targets=q,k,v,o"]
    with pytest.raises(UsageError, match="KEY=V1"):
        parse_vary("r")
    with pytest.raises(UsageError, match="twice"):
        parse_vary("r=1,1")


def test_the_product_of_axes_applies_only_to_the_named_methods_cells():
    axes = (parse_vary("lora.r=1,2"), parse_vary("max_train_examples=100,1000"))
    assert expand(axes, "lora") == [
        ("r=1", "max_train_examples=100"),
        ("r=1", "max_train_examples=1000"),
        ("r=2", "max_train_examples=100"),
        ("r=2", "max_train_examples=1000"),
    ]
    assert expand(axes, "bitfit") == [("max_train_examples=100",), ("max_train_examples=1000",)]
    spec = sweep.SweepSpec(name="t", methods=("lora", "bitfit"), tasks=("sst2",), axes=axes)
    assert len(spec.cells()) == 6


def test_a_spec_file_varies_with_a_mapping(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("version: 1\nname: g\nmethods: [lora]\ntasks: [sst2]\nvary: {lora.r: [1, 4], lora.targets: [q, q+v]}\n")
    spec = sweep.load_spec(str(path))
    assert [c.overrides for c in spec.cells()] == [
        ("r=1", "targets=q"),
        ("r=1", "targets=q,v"),
        ("r=4", "targets=q"),
        ("r=4", "targets=q,v"),
    ]
    with pytest.raises(UsageError, match="list of values"):
        axes_from_spec("x", {"r": {"a": 1}})


def test_a_records_axis_values_are_read_from_its_config():
    config = {"method": "lora", "hyperparameters": {"r": 4, "targets": ["q", "v"]}, "training": {"max_train_examples": 100}}
    axes = (parse_vary("lora.r=1,4"), parse_vary("targets=q|q,v"), parse_vary("training.max_train_examples=100"))
    assert axis_label(config, axes) == "r=4 targets=q,v max_train_examples=100"
    assert axis_label({**config, "method": "bitfit"}, (parse_vary("lora.r=1,4"),)) == ""


def test_sweep_vary_gives_one_record_per_value_with_its_count(tmp_path, capsys):
    args = ["sweep", "--methods", "lora,bitfit", "--tasks", "sst2", "--models", "tiny-roberta", "--set", "max_steps=2"]
    assert main([*args, "--vary", "lora.r=1,4", "--results-dir", str(tmp_path), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "lora r=1" in out and "lora r=4" in out  # the summary keeps the values apart
    records = [e.record for e in Store(tmp_path).entries("run", status="finished")]
    counts = sorted((r["config"]["method"], r["params"]["method"]) for r in records)
    assert counts == [("bitfit", 1472), ("lora", 512), ("lora", 2048)]  # tiny-roberta, q and v: 512 per unit of r
    assert len({r["key"] for r in records}) == 3
    assert main([*args, "--vary", "lora.r=1,4,8", "--results-dir", str(tmp_path), "--no-report"]) == 0
    assert "1 ran, 3 skipped" in capsys.readouterr().out  # a new value is only its own cell
