"""BitFit: every backbone bias trains, nothing else (besides the task head)."""

import pytest
import torch

from peftbench.methods import METHODS
from peftbench.models import build_model, resolve_model

CASES = [  # the three architectures and the three task kinds
    ("tiny-roberta", "classification"),
    ("tiny-deberta", "regression"),
    ("tiny-gpt2", "classification"),
    ("tiny-gpt2", "generation"),
]


def setup(model_name, kind, meta=False):
    model = build_model(resolve_model(model_name), kind, seed=0, meta=meta)
    impl = METHODS.get("bitfit")
    return model, impl.apply(model.eval(), impl.config_cls())


def inputs():
    g = torch.Generator().manual_seed(0)
    return {"input_ids": torch.randint(6, 500, (3, 12), generator=g), "attention_mask": torch.ones(3, 12, dtype=torch.long)}


@pytest.mark.parametrize(("model_name", "kind"), CASES)
def test_only_biases_and_head_train_and_loss_goes_down(model_name, kind):
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

    x = inputs()
    labels = (
        x["input_ids"] if kind == "generation" else (torch.tensor([0.1, 0.5, 0.9]) if kind == "regression" else torch.tensor([0, 1, 1]))
    )
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    losses = []
    for _ in range(6):  # dropout stays off (eval mode) so that the fixed-batch loss is deterministic
        loss = adapted(**x, labels=labels).loss
        loss.backward()
        with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
        assert with_grad <= set(trainable)
        assert with_grad & backbone
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


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
    x = inputs()
    with torch.no_grad():
        expected = adapted(**x).logits
    _fresh_model, fresh = setup("tiny-roberta", "classification")
    fresh.load_adapter_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh(**x).logits, expected)
    with pytest.raises(KeyError, match="missing"):
        fresh.load_adapter_state_dict({k: v for k, v in state.items() if "LayerNorm" not in k})
