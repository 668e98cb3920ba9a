"""Spec files are read strictly: a typo in a spec must never fall back to a default silently."""

import pytest

from peftbench.errors import UsageError
from peftbench.specs import method_specs, parse_method_spec, spec_dir
from peftbench.tasks.base import parse_task_spec, task_specs


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_every_shipped_spec_loads():
    assert set(method_specs()) >= {
        "lora",
        "ft",
        "bitfit",
        "ft_top2",
        "prefix_embed",
        "prefix_layer",
        "adapter_h",
        "adapter_l",
        "adapter_p",
        "adapter_d",
    }
    assert len(list(task_specs())) == 12  # GLUE (8), E2E, WebNLG, DART, rotten-tomatoes
    assert spec_dir("methods").name == "methods"


def test_unknown_key_is_an_error(tmp_path):
    path = write(tmp_path, "lora", "version: 1\nname: lora\ndescription: x\nhyperparmeters: {r: 4}\n")
    with pytest.raises(UsageError, match="unknown key\\(s\\) hyperparmeters"):
        parse_method_spec(path)


def test_version_is_required(tmp_path):
    path = write(tmp_path, "lora", "name: lora\ndescription: x\n")
    with pytest.raises(UsageError, match="missing key\\(s\\) version"):
        parse_method_spec(path)
    path = write(tmp_path, "lora", "version: 2\nname: lora\ndescription: x\n")
    with pytest.raises(UsageError, match="version must be 1"):
        parse_method_spec(path)


def test_name_must_match_the_file(tmp_path):
    path = write(tmp_path, "lora", "version: 1\nname: loraa\ndescription: x\n")
    with pytest.raises(UsageError, match="must match the file name"):
        parse_method_spec(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = write(tmp_path, "lora", "version: 1\nname: lora\ndescription: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(UsageError, match="cannot read spec"):
        parse_method_spec(path)


def test_preset_keys_are_checked(tmp_path):
    path = write(tmp_path, "lora", "version: 1\nname: lora\ndescription: x\npresets:\n  - {models: [roberta-base], trianing: {lr: 1}}\n")
    with pytest.raises(UsageError, match="presets\\[0\\]: unknown key"):
        parse_method_spec(path)


def test_task_spec_rejects_unknown_metric_and_kind(tmp_path):
    base = (
        "version: 1\nname: t\ndescription: x\nkind: {kind}\nformat: glue\nmetrics: [{metric}]\nmain_metric: {metric}\n"
        "eval_splits: [validation]\ndefault_model: roberta-base\n"
    )
    with pytest.raises(UsageError, match="unknown metric 'acc'"):
        parse_task_spec(write(tmp_path, "t", base.format(kind="classification", metric="acc")))
    with pytest.raises(UsageError, match="kind must be one of"):
        parse_task_spec(write(tmp_path, "t", base.format(kind="ranking", metric="accuracy")))
