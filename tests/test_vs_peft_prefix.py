"""prefix_embed and prefix_layer against peft's prompt and prefix tuning where peft can express them, by hand where not.

- `prefix_embed` (no infix) is peft's prompt tuning: l_p trainable input embeddings before the
  sequence. Holding the same vectors, ours and peft's compute the same outputs at the original
  positions, the same gradients and the same AdamW step, bit for bit: GPT-2 as a language model,
  and RoBERTa's backbone (peft's SEQ_CLS head would read a virtual position; ours reads the
  original first token, so the backbone's states are what both share).
- `prefix_layer` (the paper's PreLayer) replaces the activations at l_p positions before every
  block by trainable vectors P_i; what the other positions see of them is each layer's keys and
  values there. peft's prefix tuning trains those keys and values directly (2 L d l_p). So ours
  with P is peft's with K_i, V_i computed from P_i by the block's own (frozen) maps: on GPT-2 the
  same logits bit for bit, and our gradient is peft's carried back through that map (to float
  rounding: the sums run in another order). A different parameterisation, so the optimizer steps
  differ by design and are not compared.
- peft cannot run prefix tuning on RoBERTa with the installed transformers (encoders take no key/
  value cache), and neither peft method has the infix. There a hand-built reference calls the
  plain backbone on [prefix | prompt | infix | rest] with the vectors placed by hand, for both
  methods: same outputs, gradients and step, bit for bit.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from tiny import adamw_step, assert_same, batch

peft = pytest.importorskip("peft", reason="peft is not installed: pip install -e '.[compare]'")

from peftbench.methods import METHODS  # noqa: E402
from peftbench.methods.prefix import prefix_module  # noqa: E402
from peftbench.models.build import build_model  # noqa: E402
from peftbench.models.presets import resolve_model  # noqa: E402

LP, LI, PROMPT = 4, 2, 5  # prefix and infix positions; the infix goes after the first PROMPT tokens


def with_prefix(model_name, kind, method, prefix_len=LP, infix_len=0):
    """A base model and a copy of it with `method` applied, its vectors moved off their initial values."""
    base = build_model(resolve_model(model_name), kind, seed=0).eval()
    impl = METHODS.get(method)
    torch.manual_seed(1)
    adapted = impl.apply(copy.deepcopy(base), impl.config_cls(prefix_len=prefix_len, infix_len=infix_len))
    return base, adapted, prefix_module(adapted.model)


def peft_model(model, config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.get_peft_model(model, config)


def peft_vectors(theirs):
    return theirs.prompt_encoder["default"].embedding.weight


def square_loss(states):
    """A loss every output position and feature contributes to (ties of a task loss would hide differences)."""
    return states.pow(2).mean() + states[..., 0].sum()


# ---------------------------------------------------------------- prefix_embed = peft's prompt tuning


def prompt_tuning_pair(model_name, kind, task_type):
    base, ours, module = with_prefix(model_name, kind, "prefix_embed")
    target = base if task_type == "CAUSAL_LM" else base.base_model  # RoBERTa: the backbone, peft's FEATURE_EXTRACTION
    theirs = peft_model(target, peft.PromptTuningConfig(task_type=task_type, num_virtual_tokens=LP))
    with torch.no_grad():
        peft_vectors(theirs).copy_(module.prefix)
    return ours, theirs, module


def compare_outputs_gradients_and_step(ours_states, theirs_states, ours_param, theirs_param):
    assert_same(ours_states, theirs_states, "outputs at the original positions")
    square_loss(ours_states).backward()
    square_loss(theirs_states).backward()
    assert_same(ours_param.grad, theirs_param.grad, "gradient of the vectors")
    adamw_step([ours_param])
    adamw_step([theirs_param])
    assert_same(ours_param.detach(), theirs_param.detach(), "vectors after the step")


def test_prefix_embed_is_peft_prompt_tuning_on_gpt2():
    ours, theirs, module = prompt_tuning_pair("tiny-gpt2", "generation", "CAUSAL_LM")
    x = batch()
    ours_logits = ours(**x).logits
    theirs_logits = theirs(**x).logits[:, LP:]  # peft keeps the virtual positions in its output
    compare_outputs_gradients_and_step(ours_logits, theirs_logits, module.prefix, peft_vectors(theirs))


def test_prefix_embed_is_peft_prompt_tuning_on_the_roberta_backbone():
    ours, theirs, module = prompt_tuning_pair("tiny-roberta", "classification", "FEATURE_EXTRACTION")
    x = batch()
    ours_states = ours.model.roberta(**x).last_hidden_state
    theirs_states = theirs(**x).last_hidden_state[:, LP:]
    compare_outputs_gradients_and_step(ours_states, theirs_states, module.prefix, peft_vectors(theirs))


# ---------------------------------------------------------------- prefix_layer = peft's prefix tuning with K, V from P


def keys_and_values(model, prefix):
    """peft's prefix embedding (l_p, L * 2 * d) holding, per layer, the keys and values GPT-2's block i computes from P_i."""
    blocks = model.transformer.h
    per_layer = []
    for block, vectors in zip(blocks, prefix, strict=True):
        _, k, v = block.attn.c_attn(block.ln_1(vectors)).split(model.config.n_embd, dim=-1)
        per_layer.append(torch.cat([k, v], dim=-1))  # peft's order: layer 0 keys, layer 0 values, layer 1 keys, ...
    return torch.stack(per_layer, dim=1).flatten(1)


def test_prefix_layer_is_peft_prefix_tuning_with_the_keys_and_values_of_its_vectors_on_gpt2():
    base, ours, module = with_prefix("tiny-gpt2", "generation", "prefix_layer")
    theirs = peft_model(copy.deepcopy(base), peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=LP))
    embedding = keys_and_values(base, module.prefix)
    with torch.no_grad():
        peft_vectors(theirs).copy_(embedding)
    x = batch()
    ours_logits, theirs_logits = ours(**x).logits, theirs(**x).logits
    assert_same(ours_logits, theirs_logits, "logits")
    square_loss(ours_logits).backward()
    square_loss(theirs_logits).backward()
    (carried_back,) = torch.autograd.grad(embedding, module.prefix, grad_outputs=peft_vectors(theirs).grad)
    # to float rounding: ours sums the gradient over the positions inside the blocks, the carried-back one outside
    torch.testing.assert_close(module.prefix.grad, carried_back, rtol=1e-5, atol=1e-6)
    assert module.prefix.grad.abs().min() > 0  # every layer's every vector reaches the loss


def test_peft_cannot_run_prefix_tuning_on_roberta_with_the_installed_transformers():
    """Why RoBERTa's prefix_layer is checked against a hand-built reference below, not against peft."""
    base = build_model(resolve_model("tiny-roberta"), "classification", seed=0)
    with pytest.raises(ValueError, match="past key values"):
        peft_model(base, peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=LP))(**batch())


# ---------------------------------------------------------------- prefix and infix on RoBERTa: a hand-built reference


def placed(hidden, prefix, infix):
    """[prefix | first PROMPT positions | infix | rest] with the vectors written over their positions."""
    rows = hidden.shape[0]
    parts = [prefix.expand(rows, -1, -1), hidden[:, LP : LP + PROMPT], infix.expand(rows, -1, -1), hidden[:, LP + PROMPT + LI :]]
    return torch.cat(parts, dim=1)


def hand_built(backbone, x, prefix, infix, per_layer):
    """The plain backbone on the longer sequence: vectors put in by hand (before every block for prefix_layer)."""
    embeds = backbone.embeddings.word_embeddings(x["input_ids"])
    rows, width = embeds.shape[0], embeds.shape[-1]
    longer = torch.cat([embeds.new_zeros(rows, LP, width), embeds[:, :PROMPT], embeds.new_zeros(rows, LI, width), embeds[:, PROMPT:]], 1)
    ones = x["attention_mask"].new_ones
    mask = x["attention_mask"]
    mask = torch.cat([ones(rows, LP), mask[:, :PROMPT], ones(rows, LI), mask[:, PROMPT:]], 1)

    def before_block(i, block, args, kwargs):
        if args:
            return (placed(args[0], prefix[i], infix[i]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": placed(kwargs["hidden_states"], prefix[i], infix[i])}

    blocks = backbone.encoder.layer if per_layer else []
    hooks = [b.register_forward_pre_hook(lambda m, a, k, i=i: before_block(i, m, a, k), with_kwargs=True) for i, b in enumerate(blocks)]
    try:
        inputs = longer if per_layer else placed(longer, prefix, infix)
        states = backbone(inputs_embeds=inputs, attention_mask=mask).last_hidden_state
    finally:
        for hook in hooks:
            hook.remove()
    keep = torch.cat([torch.arange(LP, LP + PROMPT), torch.arange(LP + PROMPT + LI, states.shape[1])])
    return states[:, keep]


@pytest.mark.parametrize("method", ["prefix_embed", "prefix_layer"])
def test_prefix_and_infix_on_roberta_equal_a_hand_built_reference(method):
    base, ours, module = with_prefix("tiny-roberta", "classification", method, infix_len=LI)
    prefix = module.prefix.detach().clone().requires_grad_(True)
    infix = module.infix.detach().clone().requires_grad_(True)
    x = batch()
    METHODS.get(method).before_forward(ours.model, torch.full((3,), PROMPT))  # the infix after the first PROMPT tokens
    ours_states = ours.model.roberta(**x).last_hidden_state
    reference = hand_built(base.roberta, x, prefix, infix, per_layer=method == "prefix_layer")
    assert_same(ours_states, reference, "outputs at the original positions")
    square_loss(ours_states).backward()
    square_loss(reference).backward()
    for mine, theirs in ((module.prefix, prefix), (module.infix, infix)):
        assert_same(mine.grad, theirs.grad, "gradient")
    adamw_step([module.prefix, module.infix])
    adamw_step([prefix, infix])
    assert_same(module.prefix.detach(), prefix.detach(), "prefix after the step")
    assert_same(module.infix.detach(), infix.detach(), "infix after the step")


def test_prefix_embed_count_equals_peft_prompt_tuning_and_prefix_layer_is_half_of_peft_prefix_tuning():
    """Prompt tuning (l_p virtual token embeddings) trains l_p x d = our prefix_embed (no infix).

    peft's prefix tuning trains a key and a value vector per layer and position: 2 L d l_p; our
    prefix_layer (the paper's PreLayer) replaces one activation per layer and position: L d l_p.
    """
    base = build_model(resolve_model("tiny-gpt2"), "generation", seed=0)
    d, layers = base.config.hidden_size, base.config.num_hidden_layers
    prompt = peft_model(copy.deepcopy(base), peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=LP))
    prefix = peft_model(copy.deepcopy(base), peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=LP))
    _, embed, _ = with_prefix("tiny-gpt2", "generation", "prefix_embed")
    _, layer, _ = with_prefix("tiny-gpt2", "generation", "prefix_layer")
    assert embed.param_counts()["method"] == prompt.get_nb_trainable_parameters()[0] == LP * d
    assert 2 * layer.param_counts()["method"] == prefix.get_nb_trainable_parameters()[0] == 2 * layers * d * LP
