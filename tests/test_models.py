from dataclasses import replace

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from peftbench.errors import UsageError
from peftbench.models.arch import arch_for_type, dims_of
from peftbench.models.build import build_model, load_tokenizer, task_config
from peftbench.models.presets import model_presets, resolve_model


def total(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("gpt2-large", "generation", 774_030_080),  # the paper's 774.03M, tied LM head counted once
        ("gpt2-medium", "generation", 354_823_168),
        ("roberta-base", "classification", 124_055_040 + 768 * 768 + 768 + 768 * 2 + 2),  # encoder + 2-label head
    ],
)
def test_paper_model_shapes_without_weights(name, kind, expected):
    model = build_model(resolve_model(name), kind, meta=True)
    assert next(model.parameters()).device.type == "meta"
    assert total(model) == expected


def shipped_shapes():
    """The presets whose configs ship in models.yaml and need nothing installed (those that do: tests/test_real.py)."""
    return [(name, source) for name, source in model_presets().items() if source.config and not source.install]


def test_every_preset_builds_on_meta_and_has_a_known_architecture():
    for name, source in shipped_shapes():
        kind = "generation" if arch_for_type(source.config["model_type"]).causal else "classification"
        model = build_model(source, kind, meta=True)
        assert dims_of(model.config).d_model == model.config.hidden_size, name


def test_unknown_model_suggests_near_miss():
    with pytest.raises(UsageError, match="unknown model 'tiny-robrta'; did you mean 'tiny-roberta'"):
        resolve_model("tiny-robrta")


def test_unsupported_architecture_names_the_supported_ones():
    with pytest.raises(UsageError, match="unsupported architecture 't5'.*roberta.*deberta-v2.*gpt2"):
        arch_for_type("t5")


def test_deberta_has_no_causal_lm():
    with pytest.raises(UsageError, match="no causal-LM"):
        task_config(resolve_model("tiny-deberta"), "generation", 1)


def test_tiny_presets_are_seeded_and_tokenize_offline():
    source = resolve_model("tiny-roberta")
    a, b = build_model(source, "classification", seed=1), build_model(source, "classification", seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    tok = load_tokenizer(source, "roberta")
    ids = tok("A small test.", "Another one.")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.decode(tok("naïve café")["input_ids"], skip_special_tokens=True) == "naïve café"  # byte-level: lossless


def test_local_model_folder(tmp_path):
    config = AutoConfig.for_model(
        "roberta",
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=64,
        num_labels=2,
    )
    AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path / "m")
    source = resolve_model(str(tmp_path / "m"))
    assert source.local_dir == (tmp_path / "m").resolve()
    model = build_model(source, "classification")
    assert model.config.hidden_size == 32
    with pytest.raises(UsageError, match="not a model folder"):
        resolve_model(str(tmp_path))
    with pytest.raises(UsageError, match="does not exist"):
        resolve_model(str(tmp_path / "nowhere"))


def test_hub_model_offline_fails_fast_with_options(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from peftbench.models.hub import hub_reachable

    hub_reachable.cache_clear()
    with pytest.raises(UsageError, match="offline options: --model DIR"):
        build_model(resolve_model("roberta-base"), "classification")


def test_llama_dims_and_shapes_match_the_arch_spec():
    """The symbolic (in, out) of every projection in the ArchSpec equals the real module's, on every preset (meta)."""
    from peftbench.methods.lora import weight_shape

    for name, source in shipped_shapes():
        kind = "generation" if arch_for_type(source.config["model_type"]).causal else "classification"
        model = build_model(source, kind, meta=True)
        arch, dims = arch_for_type(model.config.model_type), dims_of(model.config)
        block = arch.block_list(model)[0]
        for target, projections in arch.projections.items():
            real = []
            for p in projections:
                d_in, d_out = weight_shape(block.get_submodule(p.path))
                real.append((d_in, d_out // p.parts))
            assert arch.map_shapes(target, dims) == real, (name, target)
    llama = dims_of(task_config(resolve_model("tiny-llama"), "generation", 1))
    assert (llama.d_attn, llama.d_kv, llama.has_biases) == (64, 32, False)


def test_llama_generates_and_classifies_with_the_tiny_tokenizer():
    source = resolve_model("tiny-llama")
    tok = load_tokenizer(source, "llama")
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"
    assert build_model(source, "generation").config.eos_token_id == tok.eos_token_id
    assert build_model(source, "classification", num_labels=3).score.out_features == 3


def test_sizes_read_from_plain_data_match_the_transformers_config():
    """`validate` reads sizes off a preset's config (or a config.json) as plain data; a run reads them off the
    transformers config. Both must agree, for every shipped preset and for a config.json that transformers wrote."""
    for name, source in shipped_shapes():
        built = task_config(source, "generation" if arch_for_type(source.config["model_type"]).causal else "classification", 2)
        declared = dims_of(source.declared_config())
        # a tiny preset's vocabulary is its tokenizer's, known once built
        expected = replace(declared, vocab_size=built.vocab_size) if source.is_tiny else declared
        assert dims_of(built) == expected, name
        assert dims_of(built.to_dict()) == dims_of(built), name


def test_a_sequence_of_max_positions_tokens_fits_and_one_more_does_not():
    """RoBERTa counts positions from its pad id (514 embeddings hold 512 tokens); BERT and DeBERTa-v2 from 0."""
    for name in ("tiny-roberta", "tiny-bert", "tiny-deberta"):
        model = build_model(resolve_model(name), "classification").eval()
        limit = dims_of(model.config).max_positions
        with torch.no_grad():
            model(input_ids=torch.full((1, limit), 7))
            if name != "tiny-deberta":  # relative attention: longer inputs run (its limit is the configured one)
                with pytest.raises((IndexError, RuntimeError)):
                    model(input_ids=torch.full((1, limit + 1), 7))
