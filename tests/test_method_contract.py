"""The contract every registered method keeps, on every tiny architecture and task kind.

Method-specific behaviour (LoRA merging, prefix positions, AdapterDrop layers) is tested in each
family's own file; this file holds what the runner relies on for all of them.
"""

import pytest
import torch
from tiny import CASES, REFUSED, batch, labels_for

from peftbench.config.resolve import resolve_sections
from peftbench.errors import UsageError
from peftbench.methods import METHODS
from peftbench.models.build import build_model
from peftbench.models.presets import resolve_model

# peft's types (`peft:<type>`) keep this contract in test_peft_bridge.py, on the families their specs name
OURS = [m for m in METHODS if not m.startswith("peft:")]
ALL = [(m, model, kind) for m in OURS for model, kind in CASES if (m, model) not in REFUSED]
IDS = [f"{m}-{model}-{kind}" for m, model, kind in ALL]


def adapted_model(method, model_name, kind, seed=0):
    model = build_model(resolve_model(model_name), kind, seed=seed).eval()
    hyperparameters = resolve_sections(method, None, model_name).sections["hyperparameters"]  # the spec's defaults
    return model, METHODS.get(method).apply(model, hyperparameters)


def perturb(adapted):
    """Move every trainable tensor away from its (often zero) initial value."""
    with torch.no_grad():
        for p in adapted.trainable_parameters().values():
            p.add_(torch.randn_like(p) * 0.05)


@pytest.mark.parametrize(("method", "model_name", "kind"), ALL, ids=IDS)
def test_only_the_method_and_head_train_and_the_loss_goes_down(method, model_name, kind):
    model, adapted = adapted_model(method, model_name, kind)
    trainable = adapted.trainable_parameters()
    assert trainable, "a method must train something"
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(trainable)
    counts = adapted.param_counts()
    assert counts["trainable"] == sum(p.numel() for p in trainable.values()) == counts["method"] + counts["head"]
    x = batch()
    labels = labels_for(kind, x)
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(6):
        loss = adapted(**x, labels=labels).loss
        loss.backward()
        assert {n for n, p in model.named_parameters() if p.grad is not None} <= set(trainable)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(("method", "model_name", "kind"), ALL, ids=IDS)
def test_count_equals_the_paper_formula(method, model_name, kind):
    _, adapted = adapted_model(method, model_name, kind)
    formula = adapted.formula_count()
    if formula is None:
        pytest.skip(f"the paper gives no formula for {method}")
    assert adapted.param_counts()["method"] == formula


@pytest.mark.parametrize(("method", "model_name", "kind"), ALL, ids=IDS)
def test_methods_that_keep_the_sequence_start_at_the_base_model(method, model_name, kind):
    if METHODS.get(method).capabilities.changes_seq_len:
        pytest.skip("inserted positions change the output by design")
    if method == "qlora":
        pytest.skip("a 4-bit base moves the outputs by design (test_qlora.py bounds how far)")
    base = build_model(resolve_model(model_name), kind, seed=0).eval()
    _, adapted = adapted_model(method, model_name, kind)
    x = batch()
    with torch.no_grad():
        assert torch.allclose(adapted(**x).logits, base(**x).logits, atol=1e-6)


@pytest.mark.parametrize(("method", "model_name", "kind"), ALL, ids=IDS)
def test_adapter_state_round_trips_into_a_fresh_model(method, model_name, kind):
    _, adapted = adapted_model(method, model_name, kind, seed=0)
    perturb(adapted)
    state = adapted.adapter_state_dict()
    x = batch()
    with torch.no_grad():
        expected = adapted(**x).logits
    _, fresh = adapted_model(method, model_name, kind, seed=0)
    fresh.load_adapter_state_dict(state)
    with torch.no_grad():
        assert torch.allclose(fresh(**x).logits, expected, atol=1e-6)
    first = next(iter(state))
    with pytest.raises(KeyError, match="missing"):
        fresh.load_adapter_state_dict({k: v for k, v in state.items() if k != first})
    with pytest.raises(KeyError, match="unexpected"):
        fresh.load_adapter_state_dict({**state, "not.a.parameter": torch.zeros(1)})


@pytest.mark.parametrize(("method", "model_name"), sorted(REFUSED))
def test_refused_pairs_fail_before_any_work_and_say_why(method, model_name):
    """A method that cannot apply to an architecture says so while resolving the config (exit 2), not mid-run."""
    with pytest.raises(UsageError, match=REFUSED[method, model_name]):
        resolve_sections(method, None, model_name)
    with pytest.raises(UsageError, match=REFUSED[method, model_name]):
        METHODS.get(method).apply(build_model(resolve_model(model_name), "classification"), METHODS.get(method).config_cls())


def test_every_implementation_has_its_config_in_the_one_table_and_back():
    from peftbench.methods.config import CONFIGS

    assert sorted(METHODS) == sorted(CONFIGS)
    assert all(METHODS.get(name).config_cls is CONFIGS.get(name) for name in METHODS)
