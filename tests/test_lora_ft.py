"""LoRA specifics (counts per target, fused q|k|v slices, exact merge) and FT; the shared contract is in test_method_contract.py."""

import pytest
import torch
from tiny import CASES, adapt, batch

from peftbench.errors import UsageError
from peftbench.methods.config import LoraConfig
from peftbench.methods.lora import LoraLayer
from peftbench.models.arch import dims_of
from peftbench.models.build import build_model
from peftbench.models.presets import resolve_model


def randomize_lora(adapted):
    with torch.no_grad():
        for name, p in adapted.trainable_parameters().items():
            if "lora_B" in name:
                p.normal_(0, 0.1)


def hand_count(config, targets, r):
    """r (d_in + d_out) per adapted map, written out per family: square attention maps and a 4d two-map FFN for the
    paper's models; for Llama narrower k/v maps (grouped-query attention) and a three-map FFN (gate, up, down)."""
    d, layers = config.hidden_size, config.num_hidden_layers
    if config.model_type == "llama":
        kv = config.num_key_value_heads * (d // config.num_attention_heads)
        per_map = {"q": [(d, d)], "k": [(d, kv)], "v": [(d, kv)], "o": [(d, d)], "ffn": [(d, config.intermediate_size)] * 3}
    else:
        per_map = {"q": [(d, d)], "k": [(d, d)], "v": [(d, d)], "o": [(d, d)], "ffn": [(d, 4 * d)] * 2}
    return layers * sum(r * (a + b) for t in targets for a, b in per_map[t])


@pytest.mark.parametrize(("model_name", "kind"), CASES)
@pytest.mark.parametrize("targets", [("q", "v"), ("q", "k", "v", "o"), ("ffn",)])
def test_lora_count_equals_formula(model_name, kind, targets):
    model, adapted = adapt(model_name, kind, "lora", r=4, targets=targets)
    counts = adapted.param_counts()
    expected = hand_count(model.config, targets, 4)
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


def test_llama_lora_counts_by_hand():
    """tiny-llama: d=64, 4 query and 2 key/value heads of 16 (d_kv=32), d_ffn=176, 2 layers, r=8."""
    _, qv = adapt("tiny-llama", "generation", "lora", r=8, targets=("q", "v"))
    assert qv.param_counts()["method"] == 2 * (8 * (64 + 64) + 8 * (64 + 32)) == 3_584
    _, everything = adapt("tiny-llama", "generation", "lora", r=8, targets=("q", "k", "v", "o", "ffn"))
    per_layer = 8 * (128 + 96 + 96 + 128) + 3 * 8 * (64 + 176)
    assert everything.param_counts()["method"] == everything.formula_count() == 2 * per_layer == 18_688


@pytest.mark.parametrize(("model_name", "kind"), CASES)
def test_counts_do_not_depend_on_the_merge_state(model_name, kind):
    """Merging swaps the LoRA layers out of the model; what the method trains and ships stays the same."""
    _, adapted = adapt(model_name, kind, "lora", r=4, targets=("q", "v", "ffn"))
    randomize_lora(adapted)
    before, state = adapted.param_counts(), adapted.adapter_state_dict()
    assert before["method"] > 0
    adapted.merge()
    assert adapted.param_counts() == before
    merged_state = adapted.adapter_state_dict()
    assert merged_state.keys() == state.keys() and all(torch.equal(state[n], t) for n, t in merged_state.items())
    with pytest.raises(UsageError, match="unmerge"):
        adapted.load_adapter_state_dict(state)
    adapted.unmerge()
    assert adapted.param_counts() == before


def test_fused_slice_update_matches_padding_in_value_and_gradient():
    """The in-place slice add on GPT-2's q|k|v gives what padding each update to the full width gave, gradients included."""
    model, adapted = adapt("tiny-gpt2", "generation", "lora", r=2, targets=("q", "v"))
    randomize_lora(adapted)
    layer = model.transformer.h[0].attn.c_attn
    x = torch.randn(2, 5, model.config.hidden_size, requires_grad=True)
    out = layer(x)
    reference = layer.base(x)
    for name, (lo, hi) in layer.slices.items():
        delta = (x @ layer.lora_A[name].T @ layer.lora_B[name].T) * layer.scaling[name]
        reference = reference + torch.nn.functional.pad(delta, (lo, layer.d_out - hi))
    assert torch.allclose(out, reference, atol=1e-6)
    weights = torch.randn_like(out)
    params = [x, *layer.lora_A.values(), *layer.lora_B.values()]
    ours = torch.autograd.grad((out * weights).sum(), params)
    theirs = torch.autograd.grad((reference * weights).sum(), params)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours, theirs, strict=True))


def graph_nodes(fn):
    seen, stack = set(), [fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.add(node)
            stack.extend(next_fn for next_fn, _ in node.next_functions)
    return {type(node).__name__ for node in seen}


def test_fused_slice_update_copies_nothing_in_backward():
    """No CopySlices / AsStridedBackward0 (autograd's in-place on a slice of Conv1D's view output): their backward allocated
    full-width gradients per slice and layer (benchmarks/vs_peft.py: ours above peft's peak memory on GPT-2-medium). The
    in-place add still bumps the base output's version, so a node that saved that output makes the backward fail."""
    model, adapted = adapt("tiny-gpt2", "generation", "lora", r=2, targets=("q", "v"))
    randomize_lora(adapted)
    layer = model.transformer.h[0].attn.c_attn
    x = torch.randn(2, 5, model.config.hidden_size, requires_grad=True)
    nodes = graph_nodes(layer(x).grad_fn)
    assert not nodes & {"CopySlices", "AsStridedBackward0"}, nodes
    kept = []
    handle = layer.base.register_forward_hook(lambda module, args, output: kept.append(output * output))  # saves output
    try:
        out = layer(x)
    finally:
        handle.remove()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (out.sum() + kept[0].sum()).backward()


def test_causal_lm_head_is_frozen_and_not_a_task_head():
    """Untied LM head (tiny-llama): part of the base model, frozen for LoRA; ft trains it as part of everything."""
    model, adapted = adapt("tiny-llama", "generation", "lora", r=4)
    assert not model.lm_head.weight.requires_grad and adapted.param_counts()["head"] == 0
    model, ft = adapt("tiny-llama", "generation", "ft")
    assert model.lm_head.weight.requires_grad and ft.param_counts()["method"] == ft.param_counts()["total"]
