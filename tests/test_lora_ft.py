"""LoRA specifics (counts per target, fused q|k|v slices, exact merge) and FT; the shared contract is in test_method_contract.py."""

import pytest
import torch
from tiny import CASES, adapt, batch

from peftbench.errors import UsageError
from peftbench.methods.lora import LoraConfig, LoraLayer
from peftbench.models import build_model, dims_of, resolve_model


def randomize_lora(adapted):
    with torch.no_grad():
        for name, p in adapted.trainable_parameters().items():
            if "lora_B" in name:
                p.normal_(0, 0.1)


@pytest.mark.parametrize(("model_name", "kind"), CASES)
@pytest.mark.parametrize("targets", [("q", "v"), ("q", "k", "v", "o"), ("ffn",)])
def test_lora_count_equals_formula(model_name, kind, targets):
    model, adapted = adapt(model_name, kind, "lora", r=4, targets=targets)
    counts = adapted.param_counts()
    d, layers = model.config.hidden_size, model.config.num_hidden_layers
    expected = layers * len(targets) * 2 * d * 4 if targets != ("ffn",) else layers * 2 * 4 * (d + model.config.hidden_size * 4)
    assert counts["method"] == expected == adapted.formula_count()
    lora_names = [n for n in adapted.trainable_parameters() if "lora_" in n]
    assert sum(adapted.trainable_parameters()[n].numel() for n in lora_names) == counts["method"]


@pytest.mark.parametrize(("model_name", "kind"), CASES)
def test_lora_starts_at_the_base_model_and_merges_exactly(model_name, kind):
    base = build_model(resolve_model(model_name), kind, seed=0).eval()
    x = batch()
    with torch.no_grad():
        reference = base(**x).logits
        model, adapted = adapt(model_name, kind, "lora", r=4, targets=("q", "v", "o"))
        assert torch.allclose(adapted(**x).logits, reference, atol=1e-6)
        randomize_lora(adapted)
        unmerged = adapted(**x).logits
        assert not torch.allclose(unmerged, reference, atol=1e-4)
        weights_before = {n: p.clone() for n, p in model.named_parameters() if "lora_" not in n}
        adapted.merge()
        assert not any(isinstance(m, LoraLayer) for m in model.modules())  # the merged model runs no LoRA code
        assert torch.allclose(adapted(**x).logits, unmerged, atol=1e-5)
        adapted.unmerge()
        after = {n: p for n, p in model.named_parameters() if "lora_" not in n}
        assert all(torch.allclose(after[n], w, atol=1e-6) for n, w in weights_before.items())
        assert torch.allclose(adapted(**x).logits, unmerged, atol=1e-6)


def test_gpt2_fused_qkv_adapts_only_the_q_and_v_slices():
    model, adapted = adapt("tiny-gpt2", "generation", "lora", r=2, targets=("q", "v"))
    layer = model.transformer.h[0].attn.c_attn
    d = model.config.hidden_size
    assert layer.slices == {"q": (0, d), "v": (2 * d, 3 * d)}
    randomize_lora(adapted)
    before = layer.base.weight.clone()
    adapted.merge()
    changed = (model.transformer.h[0].attn.c_attn.weight - before).abs().sum(0) > 0
    assert changed[:d].all() and not changed[d : 2 * d].any() and changed[2 * d :].all()


def test_ft_cannot_merge():
    _, adapted = adapt("tiny-roberta", "classification", "ft")
    with pytest.raises(UsageError, match="cannot be merged"):
        adapted.merge()


def test_per_target_rank_and_validation():
    model, adapted = adapt("tiny-roberta", "classification", "lora", r=4, r_v=2, targets=("q", "v"))
    d, layers = model.config.hidden_size, model.config.num_hidden_layers
    assert adapted.param_counts()["method"] == layers * 2 * d * (4 + 2)
    dims = dims_of(model.config)
    with pytest.raises(UsageError, match="r_k is set"):
        LoraConfig(r_k=2).validate(dims)
