"""BitFit: every backbone bias trains, nothing else (besides the task head)."""

import pytest
import torch
from tiny import CASES, REFUSED, adapt, batch, labels_for

BIASED = [(m, k) for m, k in CASES if ("bitfit", m) not in REFUSED]  # tiny-llama has no biases: refused (test_method_contract.py)


def setup(model_name, kind, meta=False):
    return adapt(model_name, kind, "bitfit", meta=meta)


@pytest.mark.parametrize(("model_name", "kind"), BIASED)
def test_exactly_the_backbone_biases_and_head_train_and_the_biases_get_gradients(model_name, kind):
    """Gradients staying in trainable tensors and the loss falling are in test_method_contract.py."""
    model, adapted = setup(model_name, kind)
    trainable = adapted.trainable_parameters()
    backbone = {n for n in trainable if not adapted.is_head(n)}
    all_biases = {n for n, _ in model.named_parameters() if n.endswith(".bias") and not adapted.is_head(n)}
    assert backbone == all_biases and backbone
    assert any("LayerNorm" in n or ".ln_" in n for n in backbone)  # LayerNorm biases included
    counts = adapted.param_counts()
    assert counts["method"] == sum(trainable[n].numel() for n in backbone)
    assert counts["total"] == counts["base_total"]  # BitFit adds nothing
    assert adapted.formula_count() is None  # the paper gives no formula for BitFit

    x = batch()
    adapted(**x, labels=labels_for(kind, x)).loss.backward()
    assert {n for n, p in model.named_parameters() if p.grad is not None} & backbone


def test_roberta_base_reproduces_the_paper_count():
    """Table 2 BitFit 0.1M: per layer q, k, v, o (4d) + FFN (d_ffn + d) + two LayerNorms (2d), plus the embedding LayerNorm."""
    _model, adapted = setup("roberta-base", "classification", meta=True)
    d, d_ffn, layers = 768, 3072, 12
    assert adapted.param_counts()["method"] == layers * (4 * d + d_ffn + d + 2 * d) + d == 102_144


def test_gpt2_inventory():
    """GPT-2: c_attn (3d), attn c_proj (d), c_fc (4d), mlp c_proj (d), ln_1, ln_2 (2d) per layer, plus ln_f."""
    _model, adapted = setup("gpt2-medium", "generation", meta=True)
    d, layers = 1024, 24
    assert adapted.param_counts()["method"] == layers * 11 * d + d == 271_360
    assert adapted.param_counts()["head"] == 0  # the LM head is tied to the embeddings and has no bias


def test_adapter_state_round_trips():
    _model, adapted = setup("tiny-roberta", "classification")
    with torch.no_grad():
        for p in adapted.trainable_parameters().values():
            p.add_(torch.randn_like(p) * 0.1)
    state = adapted.adapter_state_dict()
    x = batch()
    with torch.no_grad():
        expected = adapted(**x).logits
    _fresh_model, fresh = setup("tiny-roberta", "classification")
    fresh.load_adapter_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh(**x).logits, expected)
    with pytest.raises(KeyError, match="missing"):
        fresh.load_adapter_state_dict({k: v for k, v in state.items() if "LayerNorm" not in k})


def test_llama_with_its_bias_switches_on_trains_exactly_those_biases():
    """Llama refuses BitFit by default (no biases); with `attention_bias` and `mlp_bias` on, its biases are the method."""
    import dataclasses

    from peftbench.methods import METHODS
    from peftbench.models.build import build_model
    from peftbench.models.presets import resolve_model

    source = resolve_model("tiny-llama")
    biased = dataclasses.replace(source, config={**source.config, "attention_bias": True, "mlp_bias": True})
    model = build_model(biased, "generation")
    adapted = METHODS.get("bitfit").apply(model, METHODS.get("bitfit").config_cls())
    per_layer = (64 + 32 + 32 + 64) + (176 + 176 + 64)  # q, k, v (d_kv = 32), o; gate, up, down
    assert adapted.param_counts()["method"] == 2 * per_layer == 1_216
