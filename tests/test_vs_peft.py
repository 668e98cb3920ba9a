"""Equivalence with Hugging Face peft (the `[compare]` extra), and by hand where peft has no such method.

Same base, same trained values -> the same function, asserted exactly (`torch.equal`) wherever the two
compute the same float operations in the same order, which is everywhere below but GPT-2's gradients:

- LoRA on RoBERTa, BERT, DeBERTa-v2 and Llama (tiny random models, offline): our LoRA layers and
  peft's, holding the same A and B, give the same logits unmerged and merged, the same gradients for
  A, B and the task head, the same parameters after one AdamW step, and the same counts (DeBERTa-v2:
  peft's head is the classifier only, ours also trains the pooler, which sits outside DeBERTa's
  backbone; the step compares against peft told to train it too).
- GPT-2 differs by construction: peft adapts the whole fused `c_attn` (q|k|v) with one (A, B); ours
  adapts only the q and v slices, one (A, B) each. The comparable part: our q,v LoRA embedded in a
  rank-2r peft LoRA on `c_attn` (A = [A_q; A_v], B block-diagonal over the q and v rows, zero on the k
  rows, alpha doubled so alpha/r is the same) is the same function, with the same gradients on the
  shared blocks (to float rounding: peft's wider product sums its zero blocks too); peft's zero
  blocks get gradients too (peft would train them).
- BitFit: peft has none. By hand: the same model with only its backbone's biases and the head set
  trainable gives the same trainable set, gradients and AdamW step; peft's LoRA `bias="all"` trains
  that same bias set on top of LoRA.

The prefix methods are compared in `test_vs_peft_prefix.py`.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from tiny import adamw_step, assert_same, batch, labels_for

peft = pytest.importorskip("peft", reason="peft is not installed: pip install -e '.[compare]'")

from peftbench.methods import METHODS  # noqa: E402
from peftbench.methods.config import LoraConfig  # noqa: E402
from peftbench.methods.lora import LoraLayer, lora_layers  # noqa: E402
from peftbench.models.build import build_model  # noqa: E402
from peftbench.models.presets import resolve_model  # noqa: E402

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


def lora_pair(model_name, kind, targets, modules_to_save=None):
    """Ours and peft's LoRA on two copies of one random base, holding the same A, B and head values."""
    base = build_model(resolve_model(model_name), kind, seed=0).eval()
    twin = copy.deepcopy(base)
    ours = METHODS.get("lora").apply(base, LoraConfig(r=R, alpha=ALPHA, targets=targets))
    randomize(ours)
    paths = [path for path, _ in lora_layers(base)]
    config = peft.LoraConfig(r=R, lora_alpha=ALPHA, target_modules=paths, task_type=TASK_TYPE[kind], modules_to_save=modules_to_save)
    theirs = peft_model(twin, config)
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


def lora_param_pairs(ours, theirs):
    """(name, ours, peft's) for every trained tensor: A and B of each adapted map, then the head."""
    inner = theirs.base_model.model
    pairs = []
    for path, layer in lora_layers(ours.model):
        (slice_name,) = layer.slices  # one full-width update per map outside GPT-2
        target = inner.get_submodule(path)
        pairs.append((f"{path}.A", layer.lora_A[slice_name], target.lora_A["default"].weight))
        pairs.append((f"{path}.B", layer.lora_B[slice_name], target.lora_B["default"].weight))
    return pairs + [(n, p, peft_head_param(theirs, n)) for n, p in ours.trainable_parameters().items() if ours.is_head(n)]


@pytest.mark.parametrize(("model_name", "kind"), LORA_CASES)
@pytest.mark.parametrize("targets", [("q", "v"), ("q", "k", "v", "o", "ffn")])
def test_lora_matches_peft_outputs_gradients_and_counts(model_name, kind, targets):
    ours, theirs = lora_pair(model_name, kind, targets)
    x = batch()  # both in eval mode: the base's dropout off (LoRA dropout is 0 in both)
    ours_loss, theirs_loss = loss_of(ours, kind, x), loss_of(theirs, kind, x)
    assert_same(ours_loss, theirs_loss, "loss")
    ours_loss.backward()
    theirs_loss.backward()
    for name, a, b in lora_param_pairs(ours, theirs):
        if model_name == "tiny-deberta" and name.startswith("pooler."):
            assert b.grad is None  # DeBERTa's pooler: frozen in peft, trained in ours
            continue
        assert_same(a.grad, b.grad, name)

    counts = ours.param_counts()
    assert counts["method"] == sum(p.numel() for p in lora_params_of_peft(theirs).values())
    peft_trainable = theirs.get_nb_trainable_parameters()[0]
    if model_name == "tiny-deberta":  # our head also trains DeBERTa's pooler (outside its backbone); peft's is the classifier
        pooler = sum(p.numel() for p in ours.model.pooler.parameters())
        assert counts["trainable"] == peft_trainable + pooler
    else:
        assert counts["trainable"] == peft_trainable


@pytest.mark.parametrize(("model_name", "kind"), LORA_CASES)
def test_one_adamw_step_of_lora_equals_peft(model_name, kind):
    """After one optimizer step the trained tensors, and so the next loss, are the same bit for bit."""
    save = ["classifier", "pooler"] if model_name == "tiny-deberta" else None  # peft told to train DeBERTa's pooler, as ours does
    ours, theirs = lora_pair(model_name, kind, ("q", "v", "ffn"), modules_to_save=save)
    x = batch()
    loss_of(ours, kind, x).backward()
    loss_of(theirs, kind, x).backward()
    pairs = lora_param_pairs(ours, theirs)
    assert len(pairs) == len(ours.trainable_parameters()) == len([p for p in theirs.parameters() if p.requires_grad])
    adamw_step([a for _, a, _ in pairs])
    adamw_step([b for _, _, b in pairs])
    for name, a, b in pairs:
        assert_same(a.detach(), b.detach(), f"{name} after the step")
    with torch.no_grad():
        assert_same(loss_of(ours, kind, x), loss_of(theirs, kind, x), "loss after the step")


@pytest.mark.parametrize(("model_name", "kind"), LORA_CASES)
def test_merged_lora_matches_peft_merge_and_unload(model_name, kind):
    ours, theirs = lora_pair(model_name, kind, ("q", "v", "ffn"))
    x = batch()
    with torch.no_grad():
        unmerged = ours(**x).logits
        ours.merge()
        merged_peft = theirs.merge_and_unload()
        assert not any(isinstance(m, LoraLayer) for m in ours.model.modules())
        assert_same(ours(**x).logits, merged_peft(**x).logits, "merged")  # the same W + s·B·A in both
        assert torch.allclose(ours(**x).logits, unmerged, atol=1e-5)  # merged vs unmerged: float rounding only


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
    assert_same(ours_loss, theirs_loss, "loss")
    ours_loss.backward()
    theirs_loss.backward()
    inner = theirs.base_model.model
    for path, layer in lora_layers(ours.model):
        target = inner.get_submodule(path)
        ga, gb = target.lora_A["default"].weight.grad, target.lora_B["default"].weight.grad
        # not bit for bit: peft's rank-2r products also sum the zero blocks, in another order (differences ~1e-10)
        close = {"rtol": 1e-5, "atol": 1e-8}
        torch.testing.assert_close(layer.lora_A["q"].grad, ga[:R], **close)
        torch.testing.assert_close(layer.lora_A["v"].grad, ga[R:], **close)
        torch.testing.assert_close(layer.lora_B["q"].grad, gb[:d, :R], **close)
        torch.testing.assert_close(layer.lora_B["v"].grad, gb[2 * d :, R:], **close)
        # the structural difference: peft's B also has the k rows and the cross blocks, and they get gradients
        assert gb[d : 2 * d].abs().sum() > 0 and gb[:d, R:].abs().sum() > 0
    with torch.no_grad():
        ours.merge()
        assert_same(ours(**x).logits, theirs.merge_and_unload()(**x).logits, "merged")


def test_gpt2_counts_same_rank_same_count_but_a_different_function():
    """Per layer: ours r(d+d) for q plus r(d+d) for v = 4rd; peft's usual r on the whole c_attn r(d+3d) = 4rd.

    Equal counts, different functions: peft learns one rank-r update over q|k|v, ours two rank-r updates on q and v only.
    """
    base = build_model(resolve_model("tiny-gpt2"), "generation", seed=0)
    d, layers = base.config.hidden_size, base.config.num_hidden_layers
    theirs = peft_model(copy.deepcopy(base), peft.LoraConfig(r=R, target_modules=["c_attn"], fan_in_fan_out=True, task_type="CAUSAL_LM"))
    ours = METHODS.get("lora").apply(base, LoraConfig(r=R, alpha=ALPHA, targets=("q", "v")))
    assert ours.param_counts()["method"] == layers * 4 * R * d == sum(p.numel() for p in lora_params_of_peft(theirs).values())


# ---------------------------------------------------------------- BitFit: by hand, and peft's nearest equivalent


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


BITFIT_HEADS = {  # written out by hand per model: what sits outside each backbone and trains as the task head
    ("tiny-roberta", "classification"): ("classifier.",),
    ("tiny-bert", "classification"): ("classifier.",),  # BERT's pooler is part of its pretrained backbone: frozen
    ("tiny-deberta", "classification"): ("pooler.", "classifier."),
    ("tiny-gpt2", "classification"): ("score.",),
    ("tiny-gpt2", "generation"): (),  # a causal LM's head is its (tied) embeddings: frozen
}


def biases_by_hand(model, heads):
    """`model` set up for BitFit by hand: every bias inside the backbone, and the task head, trainable; nothing else."""
    backbone = model.base_model_prefix + "."
    for name, p in model.named_parameters():
        p.requires_grad_((name.startswith(backbone) and name.endswith(".bias")) or name.startswith(heads))
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(("model_name", "kind"), BITFIT_HEADS)
def test_bitfit_equals_the_model_with_only_biases_trainable_by_hand(model_name, kind):
    """The same trainable set, loss, gradients and AdamW step as the plain model with its biases unfrozen by hand."""
    base = build_model(resolve_model(model_name), kind, seed=0).eval()
    twin = copy.deepcopy(base)
    reference = biases_by_hand(twin, BITFIT_HEADS[(model_name, kind)])
    ours = METHODS.get("bitfit").apply(base, METHODS.get("bitfit").config_cls())
    trained = ours.trainable_parameters()
    assert trained.keys() == reference.keys() and any(n.endswith("LayerNorm.bias") or ".ln_" in n for n in trained)
    x = batch()
    ours_loss, reference_loss = loss_of(ours, kind, x), loss_of(twin, kind, x)
    assert_same(ours_loss, reference_loss, "loss")
    ours_loss.backward()
    reference_loss.backward()
    for name, p in trained.items():
        assert_same(p.grad, reference[name].grad, name)
    adamw_step(list(trained.values()))
    adamw_step(list(reference.values()))
    after, expected = ours.model.state_dict(), twin.state_dict()
    assert after.keys() == expected.keys()
    for name, tensor in after.items():
        assert_same(tensor, expected[name], f"{name} after the step")
