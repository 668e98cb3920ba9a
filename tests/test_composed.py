"""Composed methods (lora+prefix_embed, lora+prefix_layer): parts applied in order, each with its own
hyperparameters; counts and formulas add up; capabilities combine; both train and decode end to end."""

import json
import pickle
from pathlib import Path

import pytest
import torch
from tiny import batch, labels_for

from peftbench.bench.params import count_params, paper_table
from peftbench.cli.catalog import catalog
from peftbench.config.resolve import resolve_sections
from peftbench.errors import UsageError
from peftbench.methods import METHODS
from peftbench.methods.lora import lora_layers
from peftbench.methods.prefix import prefix_module
from peftbench.models.build import build_model
from peftbench.models.presets import resolve_model

COMPOSED = ["lora+prefix_embed", "lora+prefix_layer"]
CASES = [("tiny-roberta", "classification"), ("tiny-gpt2", "generation")]


def hyperparameters(method, model_name, *overrides):
    return resolve_sections(method, None, model_name, overrides=list(overrides)).sections["hyperparameters"]


def applied(method, model_name, kind, config, seed=0):
    model = build_model(resolve_model(model_name), kind, seed=seed).eval()
    return model, METHODS.get(method).apply(model, config)


@pytest.mark.parametrize("method", COMPOSED)
@pytest.mark.parametrize(("model_name", "kind"), CASES)
def test_counts_and_formula_are_the_sum_of_the_parts(method, model_name, kind):
    prefix = method.split("+")[1]
    config = hyperparameters(method, model_name, "lora.r=4", f"{prefix}.prefix_len=3", "infix_len=2")
    _, whole = applied(method, model_name, kind, config)
    _, lora = applied("lora", model_name, kind, config.lora)
    _, part = applied(prefix, model_name, kind, getattr(config, prefix))
    counts = whole.param_counts()
    assert counts["method"] == lora.param_counts()["method"] + part.param_counts()["method"] == whole.formula_count()
    assert whole.formula_count() == lora.formula_count() + part.formula_count()
    assert counts["head"] == lora.param_counts()["head"]
    assert config.extra_positions() == 5


def test_each_part_takes_its_own_hyperparameters():
    config = hyperparameters("lora+prefix_embed", "tiny-gpt2", "lora.r=4", "prefix_embed.prefix_len=6", "alpha=16", "infix_len=2")
    assert (config.lora.r, config.lora.alpha, config.lora.targets) == (4, 16.0, ("q", "v"))
    assert (config.prefix_embed.prefix_len, config.prefix_embed.infix_len) == (6, 2)
    assert hyperparameters("lora+prefix_embed", "tiny-gpt2").prefix_embed.prefix_len == 10  # the spec's default
    assert pickle.loads(pickle.dumps(config)) == config  # sweeps send configs to other processes


@pytest.mark.parametrize(
    ("override", "message"),
    [("lora.nope=1", "unknown key"), ("prefix_embed.r=1", "unknown key"), ("lora.r=x", "expected int"), ("prefix_len=-1", ">= 0")],
)
def test_bad_part_settings_are_usage_errors(override, message):
    with pytest.raises(UsageError, match=message):
        hyperparameters("lora+prefix_embed", "tiny-gpt2", override)


def test_a_composed_preset_overrides_one_part_key_by_key():
    config = resolve_sections("lora+prefix_embed", None, "gpt3-175b", preset="gpt3-37.8m").sections["hyperparameters"]
    assert (config.lora.r, config.lora.alpha, config.prefix_embed.prefix_len, config.prefix_embed.infix_len) == (8, 8.0, 8, 4)


@pytest.mark.parametrize("method", COMPOSED)
def test_capabilities_combine_and_merge_folds_only_the_lora_part(method):
    caps = METHODS.get(method).capabilities
    assert caps.mergeable and caps.changes_seq_len and caps.adds_latency
    model, adapted = applied(method, "tiny-gpt2", "generation", hyperparameters(method, "tiny-gpt2"))
    with torch.no_grad():
        for p in adapted.trainable_parameters().values():
            p.add_(torch.randn_like(p) * 0.05)
        x = batch()
        before = adapted(**x).logits
        adapted.merge()
        assert not lora_layers(model) and prefix_module(model) is not None  # LoRA folded, the prefix stays
        assert torch.allclose(adapted(**x).logits, before, atol=1e-5)
        adapted.unmerge()
        assert len(lora_layers(model)) == 2
        assert torch.allclose(adapted(**x).logits, before, atol=1e-5)


@pytest.mark.parametrize("method", COMPOSED)
def test_both_parts_train(method):
    _, adapted = applied(method, "tiny-gpt2", "generation", hyperparameters(method, "tiny-gpt2"))
    x = batch()
    adapted(**x, labels=labels_for("generation", x)).loss.backward()
    grads = {n for n, p in adapted.trainable_parameters().items() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any("lora_B" in n for n in grads) and any("prefix_tuning" in n for n in grads)


def test_listed_validated_and_recounted_from_the_paper():
    listed = {name: spec for name, _, spec in catalog("methods")}
    assert all(name in listed and listed[name].endswith(f"{name}.yaml") for name in COMPOSED)
    rows = {r["label"]: r for r in paper_table() if r["method"] in COMPOSED}
    assert rows["LoRA+PE r_q=r_v=8, l_p=8, l_i=4"]["ours"] == 37_896_192
    assert rows["LoRA+PE r_q=r_v=32, l_p=8, l_i=4"]["ours"] == 151_142_400
    assert rows["LoRA+PE r_q=r_v=64, l_p=8, l_i=4"]["ours"] == 302_137_344
    assert rows["LoRA+PL r_q=r_v=8, l_p=8, l_i=4"]["ours"] == 51_904_512 == rows["LoRA+PL r_q=r_v=8, l_p=8, l_i=4"]["formula"]
    assert count_params("lora+prefix_layer", "gpt3-175b", preset="gpt3-52.8m").counts["method"] == 51_904_512


@pytest.mark.parametrize("method", COMPOSED)
def test_trains_and_decodes_end_to_end(cli, results, method):
    res = cli(
        "run", "--method", method, "--task", "e2e", "--model", "tiny-gpt2", "--max-steps", "2",
        "--set", "max_eval_examples=2", "--set", "num_beams=2", "--set", "lora.r=2", "--set", "prefix_len=4",
    )  # fmt: skip
    assert res.code == 0, res.err
    (path,) = list(Path(results / "scratch").glob("*.json"))
    record = json.loads(path.read_text())
    assert record["status"] == "finished" and record["config"]["method"] == method
    assert record["config"]["hyperparameters"]["lora"]["r"] == 2
    assert record["params"]["method"] == record["params"]["formula"]
    assert record["metrics"] and record["epochs"][0]["metrics"]


def test_latency_routes_set_to_composed_methods():
    from peftbench.bench.common import split_overrides

    methods = ["lora", "lora+prefix_embed"]
    assert split_overrides(methods, ["r=4"]) == {"lora": ["r=4"], "lora+prefix_embed": ["r=4"]}
    assert split_overrides(methods, ["lora+prefix_embed.prefix_len=6"]) == {"lora": [], "lora+prefix_embed": ["prefix_len=6"]}
    assert split_overrides(methods, ["lora+prefix_embed.lora.r=2"]) == {"lora": [], "lora+prefix_embed": ["lora.r=2"]}
    assert split_overrides(["lora+prefix_embed"], ["lora.r=2"]) == {"lora+prefix_embed": ["lora.r=2"]}
    with pytest.raises(UsageError, match="not one of the listed methods"):
        split_overrides(methods, ["nope.r=4"])
