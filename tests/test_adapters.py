"""The four bottleneck-adapter variants, on every tiny architecture and task kind, and the paper's counts."""

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny import CASES, adapt, batch, labels_for

from peftbench.config.resolve import resolve_run_config
from peftbench.errors import UsageError
from peftbench.methods import METHODS
from peftbench.methods.adapters import BottleneckAdapter
from peftbench.models.build import build_model
from peftbench.models.presets import resolve_model

ADAPTERS = ["adapter_h", "adapter_p", "adapter_l", "adapter_d"]
# Tiny models have 2 layers: AdapterDrop keeps its adapter in the upper one only.
SMALL = {
    "adapter_h": {"bottleneck": 4},
    "adapter_p": {"bottleneck": 4},
    "adapter_l": {"bottleneck": 4},
    "adapter_d": {"bottleneck": 4, "drop_layers": 1},
}


def setup(model_name, kind, method, **hp):
    return adapt(model_name, kind, method, **{**SMALL[method], **hp})


def randomize_adapters(model, seed=1):
    """Give every adapter seeded projections with a non-zero up-projection (a fresh one is the identity).

    Both projections come from `seed`: with a global-RNG down-projection, about 3% of draws left every
    ReLU unit of a 4-wide bottleneck dead on the test batch, and the adapter did nothing (a flaky test).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BottleneckAdapter):
                module.down.weight.copy_(torch.randn(module.down.weight.shape, generator=g))
                module.down.bias.copy_(torch.rand(module.down.bias.shape, generator=g))  # positive: units start alive
                module.up.weight.copy_(torch.randn(module.up.weight.shape, generator=g) * 0.5)


def adapter_blocks(adapted):
    return [any(isinstance(m, BottleneckAdapter) for m in block.modules()) for block in adapted.arch.block_list(adapted.model)]


@pytest.mark.parametrize(("model_name", "kind"), CASES)
@pytest.mark.parametrize("method", ADAPTERS)
def test_only_the_adapters_train_in_the_backbone_and_training_them_changes_it(model_name, kind, method):
    """Starting at the base model, the loss falling and gradients staying in trainable tensors are in test_method_contract.py."""
    base = build_model(resolve_model(model_name), kind, seed=0).eval()
    x = batch()
    with torch.no_grad():
        reference = base(**x, output_hidden_states=True).hidden_states[-1]
    model, adapted = setup(model_name, kind, method)

    trainable = adapted.trainable_parameters()
    assert all(".adapters." in n or adapted.is_head(n) for n in trainable)
    counts = adapted.param_counts()
    assert counts["method"] == adapted.formula_count() == sum(p.numel() for n, p in trainable.items() if ".adapters." in n)
    assert counts["total"] == counts["base_total"] + counts["method"]

    labels = labels_for(kind, x)
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    for _ in range(6):  # dropout stays off (eval mode) so that the fixed-batch loss is deterministic
        adapted(**x, labels=labels).loss.backward()
        assert any(".adapters." in n for n, p in model.named_parameters() if p.grad is not None)
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():  # only the adapters train inside the backbone, so a changed backbone output means they are on the path
        hidden = adapted(**x, output_hidden_states=True).hidden_states[-1]
    assert not torch.allclose(hidden, reference, atol=1e-3)


# The paper's counts (Section 5.1 formula; reference/paper_tables.md section 7), on the real shapes.
PAPER_COUNTS = [
    ("adapter_h", "roberta-large", "classification", {"bottleneck": 8}, 835_968),  # Table 2 AdptH† 0.8M
    ("adapter_h", "roberta-large", "classification", {"bottleneck": 64}, 6_343_680),  # Table 2 AdptH† 6.0M (nominal)
    ("adapter_p", "roberta-large", "classification", {"bottleneck": 16}, 811_392),  # Table 2 AdptP† 0.8M
    ("adapter_p", "roberta-large", "classification", {"bottleneck": 64}, 3_171_840),  # Table 2 AdptP† 3.0M (nominal)
    ("adapter_d", "roberta-base", "classification", {"bottleneck": 16, "drop_layers": 0}, 304_320),  # Table 2 AdptD* 0.3M
    ("adapter_d", "roberta-base", "classification", {"bottleneck": 48, "drop_layers": 0}, 894_528),  # Table 2 AdptD* 0.9M
    ("adapter_l", "gpt2-medium", "generation", {"bottleneck": 6}, 368_784),  # Table 3 AdapterL* 0.37M (r inferred)
    ("adapter_l", "gpt2-medium", "generation", {"bottleneck": 224}, 11_089_152),  # Table 3 AdapterL* 11.09M (r inferred)
    ("adapter_l", "gpt2-large", "generation", {"bottleneck": 8}, 875_808),  # Table 3 AdapterL 0.88M (r inferred)
    ("adapter_l", "gpt2-large", "generation", {"bottleneck": 248}, 23_002_848),  # Table 3 AdapterL 23.00M (r inferred)
    ("adapter_h", "gpt3-175b", "generation", {"bottleneck": 1}, 7_078_080),  # Table 15 AdapterH r=1, 7.1M
]


@pytest.mark.parametrize(("method", "model_name", "kind", "hp", "expected"), PAPER_COUNTS)
def test_paper_counts_on_the_meta_device(method, model_name, kind, hp, expected):
    _, adapted = adapt(model_name, kind, method, meta=True, **hp)
    assert adapted.param_counts()["method"] == adapted.formula_count() == expected
    assert all(p.device.type == "meta" for p in adapted.trainable_parameters().values())


def test_gpt3_adapter_h_formula_reproduces_table_15():
    impl = METHODS.get("adapter_h")
    from peftbench.models.arch import dims_of
    from peftbench.models.build import base_config

    dims = dims_of(base_config(resolve_model("gpt3-175b")))
    printed = {1: 7_078_080, 4: 21_234_432, 8: 40_109_568, 16: 77_859_840, 64: 304_361_472}  # 7.1M 21.2M 40.1M 77.9M 304.4M
    assert {r: impl.formula(impl.config_cls(bottleneck=r), dims) for r in printed} == printed


@pytest.mark.parametrize("method", ADAPTERS)
def test_adapter_state_round_trips_strictly(method, tmp_path):
    model_name = "tiny-deberta" if method == "adapter_l" else "tiny-roberta"  # adapter_l: DeBERTa's tuple-returning blocks
    model, adapted = setup(model_name, "classification", method)
    randomize_adapters(model)
    state = adapted.adapter_state_dict()
    assert all(".adapters." in k or adapted.is_head(k) for k in state)
    save_file(state, tmp_path / "adapter.safetensors")
    x = batch()
    with torch.no_grad():
        expected = adapted(**x).logits
    _fresh_model, fresh = setup(model_name, "classification", method)
    with torch.no_grad():
        assert not torch.allclose(fresh(**x).logits, expected, atol=1e-3)
    fresh.load_adapter_state_dict(load_file(tmp_path / "adapter.safetensors"))
    with torch.no_grad():
        assert torch.equal(fresh(**x).logits, expected)
    with pytest.raises(KeyError, match="missing"):
        fresh.load_adapter_state_dict({k: v for k, v in state.items() if ".adapters." not in k})
    with pytest.raises(KeyError, match="unexpected"):
        fresh.load_adapter_state_dict({**state, "roberta.encoder.layer.0.adapters.extra.weight": torch.zeros(1)})


@pytest.mark.parametrize("model_name", ["tiny-roberta", "tiny-deberta", "tiny-gpt2"])
def test_adapter_drop_removes_exactly_the_lowest_layers(model_name):
    kind = "generation" if model_name == "tiny-gpt2" else "classification"
    base = build_model(resolve_model(model_name), kind, seed=0).eval()
    model, adapted = setup(model_name, kind, "adapter_d", drop_layers=1)
    assert adapter_blocks(adapted) == [False, True]
    randomize_adapters(model)
    x = batch()
    with torch.no_grad():
        ref, out = base(**x, output_hidden_states=True).hidden_states, adapted(**x, output_hidden_states=True).hidden_states
    assert torch.allclose(ref[1], out[1], atol=1e-6)  # block 0's output: no adapter there
    assert not torch.allclose(ref[2], out[2], atol=1e-3)  # block 1 is adapted


@pytest.mark.parametrize(("drop", "blocks"), [(0, [True] * 12), (5, [False] * 5 + [True] * 7), (11, [False] * 11 + [True])])
def test_adapter_drop_layers_on_roberta_base(drop, blocks):
    _, adapted = adapt("roberta-base", "classification", "adapter_d", meta=True, bottleneck=16, drop_layers=drop)
    assert adapter_blocks(adapted) == blocks
    assert adapted.param_counts()["method"] == adapted.formula_count() == (12 - drop) * (2 * 768 * 16 + 16 + 768)


def test_placements():
    per_method = {}
    for method in ADAPTERS:
        model, _adapted = setup("tiny-gpt2", "generation", method)
        block = model.transformer.h[1]
        per_method[method] = sorted(block.adapters.keys())
        has_norm = [not isinstance(a.layer_norm, torch.nn.Identity) for a in block.adapters.values()]
        assert has_norm == [method == "adapter_l"] * len(has_norm)
    assert per_method == {
        "adapter_h": ["attn_output", "ffn_output"],
        "adapter_p": ["ffn_residual"],
        "adapter_l": ["block_output"],
        "adapter_d": ["ffn_residual"],
    }


PFEIFFER_CASES = [("tiny-roberta", "classification"), ("tiny-deberta", "classification"), ("tiny-gpt2", "generation")]


@pytest.mark.parametrize(("model_name", "kind"), PFEIFFER_CASES)
def test_pfeiffer_site_reads_the_normalised_output_and_normalises_again(model_name, kind):
    """Post-LN: with s = h + x the closing LayerNorm's input, the block's output LN(s) becomes LN(s + delta(LN(s)));
    pre-LN (GPT-2, no LayerNorm there): the block's output s becomes s + delta(s). Checked by hand on the last block."""
    model, adapted = setup(model_name, kind, "adapter_p")
    randomize_adapters(model)
    arch, block = adapted.arch, adapted.arch.block_list(model)[-1]
    adapter, seen = block.adapters["ffn_residual"], {}

    def keep(name, tensor):  # a hook that returns None changes nothing
        seen[name] = tensor

    if arch.ffn_norm:
        norm = block.get_submodule(arch.ffn_norm)
        norm.register_forward_pre_hook(lambda m, args: keep("s", args[0]))
        without, expected = norm.forward, lambda s: norm.forward(s + adapter.delta(norm.forward(s)))
    else:  # the block's output before the adapter's hook, which was registered first
        block.register_forward_hook(lambda m, args, out: keep("s", arch.block_hidden(out)), prepend=True)
        without, expected = (lambda s: s), (lambda s: s + adapter.delta(s))
    block.register_forward_hook(lambda m, args, out: keep("out", arch.block_hidden(out)))
    with torch.no_grad():
        adapted(**batch())
        assert torch.equal(seen["out"], expected(seen["s"]))
        assert not torch.allclose(seen["out"], without(seen["s"]), atol=1e-3)  # the adapter did something


@pytest.mark.parametrize("method", ["adapter_h", "adapter_l"])
def test_generation_and_deepcopy_go_through_the_adapters(method):
    base = build_model(resolve_model("tiny-gpt2"), "generation", seed=0).eval()
    model, adapted = setup("tiny-gpt2", "generation", method)
    prompt = batch()["input_ids"][:1, :5]
    settings = {"max_new_tokens": 4, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        assert torch.equal(adapted.generate(prompt, **settings), base.generate(prompt, **settings))
        copied = copy.deepcopy(model)
        randomize_adapters(model)
        x = batch()
        assert torch.allclose(copied(**x).logits, base(**x).logits, atol=1e-6)  # the copy's hooks use the copy's adapters
        randomize_adapters(copied)
        assert torch.allclose(copied(**x).logits, model(**x).logits, atol=1e-6)


def test_capabilities_and_no_merge():
    _model, adapted = setup("tiny-roberta", "classification", "adapter_h")
    assert adapted.capabilities.adds_latency and not adapted.capabilities.mergeable
    with pytest.raises(UsageError, match="cannot be merged"):
        adapted.merge()
    with pytest.raises(UsageError, match="already has adapters"):
        adapted.method.apply(adapted.model, adapted.config)


@pytest.mark.parametrize(
    ("method", "override", "message"),
    [
        ("adapter_h", "bottleneck=0", "bottleneck must be in 1..d_model"),
        ("adapter_p", "bottleneck=-3", "bottleneck must be in 1..d_model"),
        ("adapter_l", "bottleneck=65", r"bottleneck must be in 1..d_model \(64\)"),
        ("adapter_d", "bottleneck=0", "bottleneck must be in 1..d_model"),
        ("adapter_d", "drop_layers=2", r"drop_layers must be in 0..1"),
        ("adapter_d", "drop_layers=-1", r"drop_layers must be in 0..1"),
        ("adapter_h", "nonlinearity=softmax", "nonlinearity must be one of"),
        ("adapter_h", "drop_layers=1", "drop_layers"),  # only AdapterDrop has it
    ],
)
def test_invalid_hyperparameters_fail_at_config_time(method, override, message):
    with pytest.raises(UsageError, match=message):
        resolve_run_config(method, "mrpc", "tiny-roberta", overrides=[override])


def test_paper_presets_resolve():
    large = resolve_run_config("adapter_h", "mnli", "roberta-large", preset="6m")
    assert (large.hyperparameters.bottleneck, large.training.lr, large.training.batch_size, large.training.max_seq_len) == (
        64,
        3e-5,
        32,
        128,
    )
    default = resolve_run_config("adapter_h", "mnli", "roberta-large")
    assert (default.hyperparameters.bottleneck, default.training.lr, default.training.epochs) == (8, 3e-4, 10)
    pfeiffer = resolve_run_config("adapter_p", "sst2", "roberta-large", preset="3m")
    assert (pfeiffer.hyperparameters.bottleneck, pfeiffer.training.lr, pfeiffer.training.epochs) == (64, 3e-5, 20)
    lin = resolve_run_config("adapter_l", "e2e", "gpt2-medium", preset="11m")
    assert lin.hyperparameters.bottleneck == 224
    drop = resolve_run_config("adapter_d", "rte", "roberta-base", preset="0.3m")
    assert (drop.hyperparameters.bottleneck, drop.hyperparameters.drop_layers) == (16, 0)
