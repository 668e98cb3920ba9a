"""prefix_embed and prefix_layer on every tiny architecture and task kind, and GPT-2 generation."""

import inspect

import pytest
import torch
from tiny import CASES, adapt, labels_for

from peftbench.config.resolve import resolve_run_config
from peftbench.errors import UsageError
from peftbench.methods.config import PrefixConfig
from peftbench.methods.prefix import CACHE_KWARGS, MODULE_NAME, passed_cache
from peftbench.models.arch import dims_of
from peftbench.models.build import build_model
from peftbench.models.presets import resolve_model

METHOD_NAMES = ["prefix_embed", "prefix_layer"]
LP, LI = 3, 2  # the contract runs the specs' defaults (no infix); these tests insert both kinds of vector


def setup(model_name, kind, method, **hp):
    return adapt(model_name, kind, method, **{"prefix_len": LP, "infix_len": LI, **hp})


def padded_batch(lengths, seed=0, width=None):
    """Right-padded random ids; the infix goes after the whole input (classification) or after 4 tokens (generation)."""
    g = torch.Generator().manual_seed(seed)
    width = width or max(lengths)
    ids = torch.full((len(lengths), width), 5)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(6, 500, (n,), generator=g)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


def prompt_lengths(kind, x):
    return torch.full((len(x["input_ids"]),), 4) if kind == "generation" else x["attention_mask"].sum(1)


def method_params(adapted):
    return {n: p for n, p in adapted.trainable_parameters().items() if MODULE_NAME in n}


@pytest.mark.parametrize(("model_name", "kind"), CASES)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_count_equals_formula(model_name, kind, method):
    model, adapted = setup(model_name, kind, method)
    counts = adapted.param_counts()
    d, layers = model.config.hidden_size, model.config.num_hidden_layers
    expected = d * (LP + LI) * (layers if method == "prefix_layer" else 1)
    assert counts["method"] == expected == adapted.formula_count() == sum(p.numel() for p in method_params(adapted).values())
    assert adapted.config.extra_positions() == LP + LI
    caps = adapted.capabilities
    assert caps.changes_seq_len and caps.adds_latency and not caps.mergeable
    with pytest.raises(UsageError, match="cannot be merged"):
        adapted.merge()


@pytest.mark.parametrize(("model_name", "kind"), CASES)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_only_the_inserted_vectors_and_head_train_and_every_vector_reaches_the_loss(model_name, kind, method):
    """On a right-padded batch with prompt lengths and an infix (the loss falling is in test_method_contract.py)."""
    model, adapted = setup(model_name, kind, method)
    trainable = adapted.trainable_parameters()
    assert all(MODULE_NAME in n or adapted.is_head(n) for n in trainable)
    x = padded_batch([10, 7, 10])
    model.train()
    adapted(**x, prompt_lengths=prompt_lengths(kind, x), labels=labels_for(kind, x)).loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad <= set(trainable)
    # every inserted vector (every layer's, for prefix_layer) reaches the loss
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method_params(adapted).values())


@pytest.mark.parametrize(("model_name", "kind"), CASES)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_prefix_and_infix_vectors_change_the_output_and_are_stripped(model_name, kind, method):
    model, adapted = setup(model_name, kind, method)
    x = padded_batch([9, 9])
    pl = prompt_lengths(kind, x)
    params = method_params(adapted)
    with torch.no_grad():
        out = adapted(**x, prompt_lengths=pl, output_hidden_states=True)
        assert all(h.shape[1] == 9 for h in out.hidden_states)  # inserted positions never leave the backbone
        for name in ("prefix", "infix"):
            param = next(p for n, p in params.items() if n.endswith(name))
            before = param.clone()
            param[..., 0, :] += torch.randn(param[..., 0, :].shape)  # one vector (prefix_layer: in every layer)
            changed = adapted(**x, prompt_lengths=pl).logits
            param.copy_(before)
            assert (changed - out.logits).abs().max() > 1e-6, name  # random heads give logits ~0.02; float noise ~1e-9
        if model_name == "tiny-gpt2" and kind == "classification":
            # GPT-2 pools at the last non-pad token of the original input_ids: after stripping, the
            # backbone's state at that index is the one the score head reads.
            hidden = model.transformer(**x).last_hidden_state
            last = x["attention_mask"].sum(1) - 1
            assert torch.allclose(model.score(hidden[torch.arange(2), last]), out.logits, atol=1e-6)


@pytest.mark.parametrize(("model_name", "kind"), CASES)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_example_alone_equals_example_in_a_right_padded_batch(model_name, kind, method):
    _, adapted = setup(model_name, kind, method)
    both = padded_batch([6, 11], seed=1)
    alone = {k: v[:1, :6] for k, v in both.items()}
    with torch.no_grad():
        together = adapted(**both, prompt_lengths=prompt_lengths(kind, both)).logits[:1]
        single = adapted(**alone, prompt_lengths=prompt_lengths(kind, alone)).logits
    if kind == "generation":
        together = together[:, :6]
    assert torch.allclose(together, single, atol=1e-5)


def test_prefix_layer_sets_every_blocks_input_at_the_inserted_positions():
    for model_name in ("tiny-deberta", "tiny-gpt2"):
        model, adapted = setup(model_name, "classification", "prefix_layer")
        module = getattr(model.base_model, MODULE_NAME)
        seen = []

        def record(_block, args, seen=seen):
            seen.append(args[0].detach().clone())

        for block in adapted.arch.block_list(model):
            block.register_forward_pre_hook(record)
        x = padded_batch([5, 8])
        with torch.no_grad():
            adapted(**x, prompt_lengths=x["attention_mask"].sum(1))
        assert len(seen) == model.config.num_hidden_layers
        for layer, hidden in enumerate(seen):
            assert torch.equal(hidden[:, :LP], module.prefix[layer].expand(2, -1, -1))
            assert torch.equal(hidden[0, LP + 5 : LP + 5 + LI], module.infix[layer])  # row 0: right after its 5 tokens
            assert torch.equal(hidden[1, LP + 8 : LP + 8 + LI], module.infix[layer])


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_adapter_state_round_trips_strictly(method):
    _, adapted = setup("tiny-deberta", "classification", method)
    with torch.no_grad():
        for p in adapted.trainable_parameters().values():
            p.normal_(0, 0.5)
    state = adapted.adapter_state_dict()
    x = padded_batch([7, 4])
    with torch.no_grad():
        expected = adapted(**x, prompt_lengths=x["attention_mask"].sum(1)).logits
    _, fresh = setup("tiny-deberta", "classification", method)
    fresh.load_adapter_state_dict(state)
    with torch.no_grad():
        assert torch.allclose(fresh(**x, prompt_lengths=x["attention_mask"].sum(1)).logits, expected, atol=1e-6)
    with pytest.raises(KeyError, match="missing"):
        fresh.load_adapter_state_dict({k: v for k, v in state.items() if not k.endswith("infix")})
    with pytest.raises(KeyError, match="unexpected"):
        fresh.load_adapter_state_dict({**state, "extra.weight": torch.zeros(1)})


def generation_setup(method):
    _, adapted = setup("tiny-gpt2", "generation", method)
    with torch.no_grad():  # vectors large enough to matter in a random model
        for p in method_params(adapted).values():
            p.normal_(0, 1.0)
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(6, 500, (n,), generator=g) for n in (7, 4)]
    return adapted, prompts


GEN = {"do_sample": False, "pad_token_id": 5, "eos_token_id": None}


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_greedy_generation_equals_argmax_over_full_forward_passes(method):
    """generate (cache, left-padded batch) == a token-by-token argmax over full forwards (no cache), per example."""
    adapted, prompts = generation_setup(method)
    steps, source = 6, [5, 3]  # the infix goes after the first `source` tokens of each prompt
    ids = torch.stack([torch.cat([torch.full((7 - len(p),), 5), p]) for p in prompts])  # left padding
    mask = (torch.arange(7) >= torch.tensor([[0], [3]])).long()
    out = adapted.generate(
        input_ids=ids,
        attention_mask=mask,
        prompt_lengths=torch.tensor(source),
        max_new_tokens=steps,
        output_logits=True,
        return_dict_in_generate=True,
        **GEN,
    )
    logits = torch.stack(out.logits, 1)
    for row, (prompt, p) in enumerate(zip(prompts, source, strict=True)):
        seq, reference = prompt[None], []
        with torch.no_grad():
            for _ in range(steps):
                step = adapted(input_ids=seq, attention_mask=torch.ones_like(seq), prompt_lengths=torch.tensor([p])).logits[:, -1]
                reference.append(step[0])
                seq = torch.cat([seq, step.argmax(-1, keepdim=True)], 1)
        assert torch.allclose(logits[row], torch.stack(reference), atol=1e-4)
        assert out.sequences[row, 7:].tolist() == seq[0, len(prompt) :].tolist()


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_beam_search_with_the_cache_equals_beam_search_without(method):
    adapted, prompts = generation_setup(method)
    prompt = prompts[0][None]
    kwargs = {"num_beams": 10, "num_return_sequences": 3, "no_repeat_ngram_size": 2, "length_penalty": 0.9, "max_new_tokens": 6}
    kwargs |= {"output_scores": True, "return_dict_in_generate": True, **GEN}
    runs = [
        adapted.generate(
            input_ids=prompt, attention_mask=torch.ones_like(prompt), prompt_lengths=torch.tensor([5]), use_cache=cache, **kwargs
        )
        for cache in (True, False)
    ]
    assert torch.equal(runs[0].sequences, runs[1].sequences)
    assert torch.allclose(runs[0].sequences_scores, runs[1].sequences_scores, atol=1e-4)
    base = build_model(resolve_model("tiny-gpt2"), "generation", seed=0).eval()
    plain = base.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), **kwargs)
    assert not torch.allclose(plain.sequences_scores, runs[0].sequences_scores)  # the inserted vectors took part


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize("name", CACHE_KWARGS)
def test_a_cached_step_equals_the_full_forward_whichever_name_the_cache_comes_under(method, name):
    """transformers 5.24 renamed `past_key_values` to `cache` (the old name stays a deprecated alias): both must reach the hook."""
    adapted, prompts = generation_setup(method)
    if name == "cache" and name not in inspect.signature(type(adapted.model.transformer).forward).parameters:
        pytest.skip("this transformers release (< 5.24) knows the cache only as past_key_values")
    prompt, nxt = prompts[0][None], torch.tensor([[42]])
    full = torch.cat([prompt, nxt], 1)
    with torch.no_grad():
        first = adapted(input_ids=prompt, attention_mask=torch.ones_like(prompt), prompt_lengths=torch.tensor([5]), use_cache=True)
        cache = getattr(first, "cache", None) or first.past_key_values
        step = adapted(input_ids=nxt, attention_mask=torch.ones_like(full), prompt_lengths=torch.tensor([5]), **{name: cache}).logits
        whole = adapted(input_ids=full, attention_mask=torch.ones_like(full), prompt_lengths=torch.tensor([5])).logits
    assert torch.allclose(step[:, -1], whole[:, -1], atol=1e-4)


def test_the_cache_is_found_under_either_name_and_nothing_else_counts():
    class Cache:
        def get_seq_length(self):
            return 3

    cache = Cache()
    assert passed_cache({"cache": cache}) is cache and passed_cache({"past_key_values": cache}) is cache
    assert passed_cache({"past_key_values": None, "cache": cache}) is cache
    assert passed_cache({"past_key_values": (), "input_ids": cache}) is None  # a legacy tuple is no cache object


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_invalid_lengths_raise_at_config_time(method):
    def resolve(*overrides):
        return resolve_run_config(method, "mrpc", "tiny-roberta", overrides=list(overrides))

    assert resolve().hyperparameters == PrefixConfig(prefix_len=10, infix_len=0)
    with pytest.raises(UsageError, match="must be below the model's 512 positions"):
        resolve("prefix_len=600")
    with pytest.raises(UsageError, match=">= 0"):
        resolve("infix_len=-1")
    with pytest.raises(UsageError, match="inserts nothing"):
        resolve("prefix_len=0", "infix_len=0")
    with pytest.raises(UsageError, match=f"inserted by {method}"):
        resolve("prefix_len=400", "max_seq_len=128")  # fits the model alone, not with the input
    dims = dims_of(build_model(resolve_model("tiny-gpt2"), "generation", meta=True).config)
    PrefixConfig(prefix_len=0, infix_len=1).validate(dims)
    with pytest.raises(UsageError, match="1024 positions"):
        PrefixConfig(prefix_len=1000, infix_len=24).validate(dims)
