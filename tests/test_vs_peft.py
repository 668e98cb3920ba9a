"""Equivalence with Hugging Face peft (the `[compare]` extra): same base, same adapter values -> same function.

For LoRA on RoBERTa, BERT, DeBERTa-v2 and Llama (tiny random models, offline): our LoRA layers and
peft's, holding the same A and B, give the same logits unmerged and merged, the same gradients
for A, B and the task head, and the same counts (DeBERTa-v2: peft's head is the classifier only,
ours also trains the pooler, which sits outside DeBERTa's backbone).

GPT-2 differs by construction: peft adapts the whole fused `c_attn` (q|k|v) with one (A, B);
ours adapts only the q and v slices, one (A, B) each. The comparable part: our q,v LoRA embedded
in a rank-2r peft LoRA on `c_attn` (A = [A_q; A_v], B block-diagonal over the q and v rows, zero
on the k rows, alpha doubled so alpha/r is the same) is the same function, with the same
gradients on the shared blocks; peft's zero blocks get gradients too (peft would train them).

BitFit and prefix-embedding have no peft method of that name; their nearest equivalents are
counted: LoRA's `bias="all"` trains exactly our BitFit bias set on top of LoRA, and prompt tuning
with l_p virtual tokens trains l_p x d, our prefix_embed with infix_len 0. peft's prefix tuning
trains keys and values per layer (2 L d l_p), twice our prefix_layer's L d l_p.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from tiny import batch, labels_for

peft = pytest.importorskip("peft", reason="peft is not installed: pip install -e '.[compare]'")

from peftbench.methods import METHODS  # noqa: E402
from peftbench.methods.config import LoraConfig  # noqa: E402
from peftbench.methods.lora import LoraLayer, lora_layers  # noqa: E402
from peftbench.models import build_model  # noqa: E402
from peftbench.presets import resolve_model  # noqa: E402

R, ALPHA = 4, 8.0
LORA_CASES = [
    ("tiny-roberta", "classification"),
    ("tiny-bert", "classification"),
    ("tiny-deberta", "classification"),
    ("tiny-llama", "classification"),
    ("tiny-llama", "generation"),
]
TASK_TYPE = {"classification": "SEQ_CLS", "generation": "CAUSAL_LM"}


def peft_model(model, config):
    with warnings.catch_warnings():  # fan_in_fan_out and target-module notices
        warnings.simplefilter("ignore")
        return peft.get_peft_model(model, config)


def randomize(adapted):
    """Move B (zero at the start) and the head away from their initial values, so the comparison sees them."""
    with torch.no_grad():
        for name, p in adapted.trainable_parameters().items():
            p.add_(torch.randn_like(p) * (0.1 if "lora_B" in name else 0.01))


def lora_pair(model_name, kind, targets):
    """Ours and peft's LoRA on two copies of one random base, holding the same A, B and head values."""
    base = build_model(resolve_model(model_name), kind, seed=0).eval()
    twin = copy.deepcopy(base)
    ours = METHODS.get("lora").apply(base, LoraConfig(r=R, alpha=ALPHA, targets=targets))
    randomize(ours)
    paths = [path for path, _ in lora_layers(base)]
    theirs = peft_model(twin, peft.LoraConfig(r=R, lora_alpha=ALPHA, target_modules=paths, task_type=TASK_TYPE[kind]))
    inner = theirs.base_model.model
    with torch.no_grad():
        for path, layer in lora_layers(base):
            (slice_name,) = layer.slices  # one full-width update per map outside GPT-2
            target = inner.get_submodule(path)
            target.lora_A["default"].weight.copy_(layer.lora_A[slice_name])
            target.lora_B["default"].weight.copy_(layer.lora_B[slice_name])
        for name, p in ours.trainable_parameters().items():
            if ours.is_head(name):
                peft_head_param(theirs, name).copy_(p)
    return ours, theirs


def peft_head_param(theirs, name):
    """peft keeps a trainable copy of the head under `modules_to_save.default`; a module it does not save (DeBERTa's pooler) stays as is."""
    module_path, _, leaf = name.rpartition(".")
    head, _, rest = module_path.partition(".")
    module = theirs.base_model.model.get_submodule(head)
    if not hasattr(module, "modules_to_save"):
        return theirs.base_model.model.get_parameter(name)
    inner = module.modules_to_save["default"]
    return (inner.get_submodule(rest) if rest else inner).get_parameter(leaf)


def loss_of(model, kind, x):
    return model(**x, labels=labels_for(kind, x)).loss


def lora_params_of_peft(theirs):
    return {n: p for n, p in theirs.named_parameters() if "lora_" in n}


@pytest.mark.parametrize(("model_name", "kind"), LORA_CASES)
@pytest.mark.parametrize("targets", [("q", "v"), ("q", "k", "v", "o", "ffn")])
def test_lora_matches_peft_outputs_gradients_and_counts(model_name, kind, targets):
    ours, theirs = lora_pair(model_name, kind, targets)
    x = batch()  # both in eval mode: the base's dropout off (LoRA dropout is 0 in both)
    ours_loss, theirs_loss = loss_of(ours, kind, x), loss_of(theirs, kind, x)
    assert torch.allclose(ours_loss, theirs_loss, atol=1e-6)
    ours_loss.backward()
    theirs_loss.backward()
    inner = theirs.base_model.model
    for path, layer in lora_layers(ours.model):
        (slice_name,) = layer.slices
        target = inner.get_submodule(path)
        assert torch.allclose(layer.lora_A[slice_name].grad, target.lora_A["default"].weight.grad, atol=1e-6)
        assert torch.allclose(layer.lora_B[slice_name].grad, target.lora_B["default"].weight.grad, atol=1e-6)
    for name, p in ours.trainable_parameters().items():
        if not ours.is_head(name):
            continue
        theirs_grad = peft_head_param(theirs, name).grad
        if model_name == "tiny-deberta" and name.startswith("pooler."):
            assert theirs_grad is None  # frozen in peft, trained in ours
        else:
            assert torch.allclose(p.grad, theirs_grad, atol=1e-6), name

    counts = ours.param_counts()
    assert counts["method"] == sum(p.numel() for p in lora_params_of_peft(theirs).values())
    peft_trainable = theirs.get_nb_trainable_parameters()[0]
    if model_name == "tiny-deberta":  # our head also trains DeBERTa's pooler (outside its backbone); peft's is the classifier
        pooler = sum(p.numel() for p in ours.model.pooler.parameters())
        assert counts["trainable"] == peft_trainable + pooler
    else:
        assert counts["trainable"] == peft_trainable


@pytest.mark.parametrize(("model_name", "kind"), LORA_CASES)
def test_merged_lora_matches_peft_merge_and_unload(model_name, kind):
    ours, theirs = lora_pair(model_name, kind, ("q", "v", "ffn"))
    x = batch()
    with torch.no_grad():
        unmerged = ours(**x).logits
        ours.merge()
        merged_peft = theirs.merge_and_unload()
        assert not any(isinstance(m, LoraLayer) for m in ours.model.modules())
        assert torch.allclose(ours(**x).logits, merged_peft(**x).logits, atol=1e-5)
        assert torch.allclose(ours(**x).logits, unmerged, atol=1e-5)


# ---------------------------------------------------------------- GPT-2: q,v slices inside peft's whole c_attn


def gpt2_pair():
    """Ours (q, v slices, rank R each) and peft on the whole c_attn at rank 2R holding the same update."""
    base = build_model(resolve_model("tiny-gpt2"), "generation", seed=0).eval()
    twin = copy.deepcopy(base)
    ours = METHODS.get("lora").apply(base, LoraConfig(r=R, alpha=ALPHA, targets=("q", "v")))
    randomize(ours)
    config = peft.LoraConfig(r=2 * R, lora_alpha=2 * ALPHA, target_modules=["c_attn"], fan_in_fan_out=True, task_type="CAUSAL_LM")
    theirs = peft_model(twin, config)
    d = base.config.hidden_size
    inner = theirs.base_model.model
    with torch.no_grad():
        for path, layer in lora_layers(base):
            assert layer.slices == {"q": (0, d), "v": (2 * d, 3 * d)}
            target = inner.get_submodule(path)
            a, b = target.lora_A["default"].weight, target.lora_B["default"].weight  # (2R, d), (3d, 2R)
            a.copy_(torch.cat([layer.lora_A["q"], layer.lora_A["v"]]))
            b.zero_()
            b[:d, :R] = layer.lora_B["q"]
            b[2 * d :, R:] = layer.lora_B["v"]
    return ours, theirs, d


def test_gpt2_qv_lora_embedded_in_peft_c_attn_gives_the_same_function_and_shared_gradients():
    ours, theirs, d = gpt2_pair()
    x = batch()
    ours_loss, theirs_loss = loss_of(ours, "generation", x), loss_of(theirs, "generation", x)
    assert torch.allclose(ours_loss, theirs_loss, atol=1e-6)
    ours_loss.backward()
    theirs_loss.backward()
    inner = theirs.base_model.model
    for path, layer in lora_layers(ours.model):
        target = inner.get_submodule(path)
        ga, gb = target.lora_A["default"].weight.grad, target.lora_B["default"].weight.grad
        assert torch.allclose(layer.lora_A["q"].grad, ga[:R], atol=1e-6)
        assert torch.allclose(layer.lora_A["v"].grad, ga[R:], atol=1e-6)
        assert torch.allclose(layer.lora_B["q"].grad, gb[:d, :R], atol=1e-6)
        assert torch.allclose(layer.lora_B["v"].grad, gb[2 * d :, R:], atol=1e-6)
        # the structural difference: peft's B also has the k rows and the cross blocks, and they get gradients
        assert gb[d : 2 * d].abs().sum() > 0 and gb[:d, R:].abs().sum() > 0
    with torch.no_grad():
        ours.merge()
        assert torch.allclose(ours(**x).logits, theirs.merge_and_unload()(**x).logits, atol=1e-5)


def test_gpt2_counts_same_rank_same_count_but_a_different_function():
    """Per layer: ours r(d+d) for q plus r(d+d) for v = 4rd; peft's usual r on the whole c_attn r(d+3d) = 4rd.

    Equal counts, different functions: peft learns one rank-r update over q|k|v, ours two rank-r updates on q and v only.
    """
    base = build_model(resolve_model("tiny-gpt2"), "generation", seed=0)
    d, layers = base.config.hidden_size, base.config.num_hidden_layers
    theirs = peft_model(copy.deepcopy(base), peft.LoraConfig(r=R, target_modules=["c_attn"], fan_in_fan_out=True, task_type="CAUSAL_LM"))
    ours = METHODS.get("lora").apply(base, LoraConfig(r=R, alpha=ALPHA, targets=("q", "v")))
    assert ours.param_counts()["method"] == layers * 4 * R * d == sum(p.numel() for p in lora_params_of_peft(theirs).values())


# ---------------------------------------------------------------- BitFit and prefix-embedding: peft's nearest equivalents


@pytest.mark.parametrize(
    ("model_name", "kind"), [("tiny-roberta", "classification"), ("tiny-gpt2", "generation"), ("tiny-bert", "classification")]
)
def test_bitfit_is_the_bias_set_peft_lora_trains_with_bias_all(model_name, kind):
    """peft has no BitFit; `LoraConfig(bias="all")` trains every bias besides LoRA: that bias set is ours, tensor for tensor."""
    base = build_model(resolve_model(model_name), kind, seed=0)
    targets = ["query"] if "gpt2" not in model_name else ["c_attn"]
    theirs = peft_model(
        copy.deepcopy(base),
        peft.LoraConfig(r=R, target_modules=targets, task_type=TASK_TYPE[kind], bias="all", fan_in_fan_out="gpt2" in model_name),
    )
    ours = METHODS.get("bitfit").apply(base, METHODS.get("bitfit").config_cls())
    prefix = "base_model.model."
    peft_biases = {
        n.removeprefix(prefix).replace(".base_layer", ""): p.numel()
        for n, p in theirs.named_parameters()
        if p.requires_grad and "lora_" not in n and "modules_to_save" not in n and "original_module" not in n
    }
    ours_biases = {n: p.numel() for n, p in ours.trainable_parameters().items() if not ours.is_head(n)}
    assert peft_biases == ours_biases
    assert sum(ours_biases.values()) == ours.param_counts()["method"]


def test_prefix_embed_count_equals_peft_prompt_tuning_and_prefix_layer_is_half_of_peft_prefix_tuning():
    """Prompt tuning (l_p virtual token embeddings) trains l_p x d = our prefix_embed (no infix).

    peft's prefix tuning trains a key and a value vector per layer and position: 2 L d l_p; our
    prefix_layer (the paper's PreLayer) replaces one activation per layer and position: L d l_p.
    """
    l_p = 10
    base = build_model(resolve_model("tiny-gpt2"), "generation", seed=0)
    d, layers = base.config.hidden_size, base.config.num_hidden_layers
    prompt = peft_model(copy.deepcopy(base), peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=l_p))
    prefix = peft_model(copy.deepcopy(base), peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=l_p))
    embed = METHODS.get("prefix_embed")
    layer = METHODS.get("prefix_layer")
    ours_embed = embed.apply(copy.deepcopy(base), embed.config_cls(prefix_len=l_p, infix_len=0)).param_counts()["method"]
    ours_layer = layer.apply(copy.deepcopy(base), layer.config_cls(prefix_len=l_p, infix_len=0)).param_counts()["method"]
    assert ours_embed == prompt.get_nb_trainable_parameters()[0] == l_p * d
    assert 2 * ours_layer == prefix.get_nb_trainable_parameters()[0] == 2 * layers * d * l_p
