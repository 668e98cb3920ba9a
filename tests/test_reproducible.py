"""A seed reproduces a run bit for bit, on a pretrained model too: every random draw comes from the run's seed.

The pretrained case is a local folder shaped like a real checkpoint: a BERT backbone saved without a
task head, so loading it for classification draws a new head, as `minilm-l6` or any `--model DIR`
does. Before these draws were seeded, that head came from the global generator, which torch seeds
differently in every process and which earlier work in a process has moved on: two runs with one
seed disagreed, and a sweep's cached model gave every seed the same head.
"""

from __future__ import annotations

import pytest
import torch

from peftbench.config.resolve import resolve_run
from peftbench.methods import METHODS
from peftbench.models.build import NEW_WEIGHTS, build_model, load_tokenizer
from peftbench.models.presets import resolve_model
from peftbench.records.store import Store
from peftbench.run import runner

SHORT = ["max_steps=2", "batch_size=8", "max_eval_examples=16", "max_train_examples=32"]
FITS_TWO_LAYERS = {"adapter_d": ["drop_layers=1"]}  # the folder's model has 2 layers


@pytest.fixture(scope="module")
def pretrained_folder(tmp_path_factory):
    """tiny-bert's backbone and tokenizer saved as a checkpoint without a classifier (like a sentence encoder)."""
    folder = tmp_path_factory.mktemp("pretrained") / "bert-backbone"
    source = resolve_model("tiny-bert")
    build_model(source, "classification", seed=123).bert.save_pretrained(folder)
    load_tokenizer(source, "bert").save_pretrained(folder)
    return str(folder)


def head_of(model) -> dict[str, torch.Tensor]:
    return {name: model.get_parameter(name).detach().clone() for name in getattr(model, NEW_WEIGHTS)}


def outcome(record: dict) -> tuple:
    return [e["train_loss"] for e in record["epochs"]], {k: v["value"] for k, v in record["metrics"].items()}


def test_loading_a_checkpoint_without_a_head_names_the_new_weights(pretrained_folder):
    model = build_model(resolve_model(pretrained_folder), "classification", seed=0)
    assert getattr(model, NEW_WEIGHTS) == ("classifier.bias", "classifier.weight")


def test_the_new_head_depends_on_the_seed_alone(pretrained_folder):
    source = resolve_model(pretrained_folder)
    first = head_of(build_model(source, "classification", seed=0))
    torch.rand(1000)  # another process, or earlier work in this one, left the global generator elsewhere
    state = torch.get_rng_state()
    again, other = build_model(source, "classification", seed=0), build_model(source, "classification", seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # loading leaves the global generator as it was
    assert all(torch.equal(first[n], t) for n, t in head_of(again).items())
    assert not torch.equal(first["classifier.weight"], head_of(other)["classifier.weight"])
    std = first["classifier.weight"].std().item()  # the family's own initialisation: normal(0, initializer_range)
    assert 0.5 * again.config.initializer_range < std < 2 * again.config.initializer_range
    assert torch.equal(first["classifier.bias"], torch.zeros(2))


def test_a_cached_model_gets_each_seeds_head_as_a_sweep_reuses_it(pretrained_folder):
    """One process, several seeds (a sweep): each copy of the cached model draws its head from its own seed."""
    cache = runner.LoadCache()
    heads = {seed: head_of(cache.model(resolve_run("lora", "mrpc", pretrained_folder, overrides=[f"seed={seed}"], data_dir="sample")))
             for seed in (0, 1, 0)}  # fmt: skip
    fresh = head_of(build_model(resolve_model(pretrained_folder), "classification", seed=1))
    assert not torch.equal(heads[0]["classifier.weight"], heads[1]["classifier.weight"])
    assert all(torch.equal(heads[1][n], t) for n, t in fresh.items())


@pytest.mark.parametrize("method", [m for m in METHODS if not m.startswith("peft:")] + ["peft:dora"])  # one peft type stands for the bridge
def test_a_seed_reproduces_every_method_on_a_pretrained_folder(pretrained_folder, tmp_path, method):
    """Two runs of one key and seed, with the global generator moved in between, train and score identically."""
    overrides = [*SHORT, *FITS_TWO_LAYERS.get(method, []), "seed=0"]
    first = runner.run(resolve_run(method, "mrpc", pretrained_folder, overrides=overrides, data_dir="sample"), store=Store(tmp_path / "a"))
    torch.rand(1000)
    second = runner.run(resolve_run(method, "mrpc", pretrained_folder, overrides=overrides, data_dir="sample"), store=Store(tmp_path / "b"))
    assert first["key"] == second["key"]
    assert outcome(first) == outcome(second)
    assert first["env"]["deterministic"] is True and second["env"]["deterministic"] is True  # what `check`'s exact mode relies on
