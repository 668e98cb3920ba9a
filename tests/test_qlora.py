"""QLoRA: LoRA's trainable parameters on a frozen 4-bit NF4 base (bitsandbytes, on the CPU)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from tiny import batch, labels_for

bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed: pip install -e '.[qlora]'")

from peftbench.bench.params import count_params  # noqa: E402
from peftbench.config.resolve import resolve_sections  # noqa: E402
from peftbench.errors import UsageError  # noqa: E402
from peftbench.methods import METHODS  # noqa: E402
from peftbench.methods.lora import LoraLayer  # noqa: E402
from peftbench.models.build import build_model  # noqa: E402
from peftbench.models.presets import resolve_model  # noqa: E402


def pair(model_name, kind):
    """The same base with lora and with qlora (same seed, so the same A), both r=4 on q and v."""
    out = {}
    for method in ("lora", "qlora"):
        model = build_model(resolve_model(model_name), kind, seed=0).eval()
        torch.manual_seed(0)
        impl = METHODS.get(method)
        out[method] = impl.apply(model, impl.config_cls(r=4))
    return out["lora"], out["qlora"]


def test_params_equal_loras_on_roberta_base():
    assert count_params("qlora", "roberta-base").counts == count_params("lora", "roberta-base").counts
    assert count_params("qlora", "roberta-base").counts["method"] == 294_912


@pytest.mark.parametrize(("model_name", "kind"), [("tiny-roberta", "classification"), ("tiny-gpt2", "generation")])
def test_every_block_map_is_4bit_and_only_loras_tensors_and_the_head_train(model_name, kind):
    lora, qlora = pair(model_name, kind)
    assert qlora.trainable_parameters().keys() == lora.trainable_parameters().keys()
    assert qlora.param_counts()["method"] == lora.param_counts()["method"]
    bases = [m.base for m in qlora.model.modules() if isinstance(m, LoraLayer)]
    assert bases and all(isinstance(b, bnb.nn.Linear4bit) and b.weight.quant_type == "nf4" for b in bases)
    four_bit = [m for m in qlora.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    per_block = 4 if model_name == "tiny-gpt2" else 6  # GPT-2: c_attn, c_proj, c_fc, mlp c_proj; BERT layout: q, k, v, o, two FFN maps
    assert len(four_bit) == per_block * qlora.model.config.num_hidden_layers
    x = batch()
    with torch.no_grad():  # B = 0: each model is its base; 4 bits move the outputs, a little
        gap = (qlora(**x).logits - lora(**x).logits).abs().max().item()
    assert 0 < gap < 0.5


@pytest.mark.parametrize(("model_name", "kind"), [("tiny-roberta", "classification"), ("tiny-gpt2", "generation")])
def test_the_loss_goes_down_and_the_4bit_weights_do_not_move(model_name, kind):
    _, qlora = pair(model_name, kind)
    frozen = {n: p.detach().clone() for n, p in qlora.model.named_parameters() if not p.requires_grad}
    x, labels = batch(), labels_for(kind, batch())
    optimizer = torch.optim.AdamW(qlora.trainable_parameters().values(), lr=1e-2)
    qlora.model.train()
    losses = []
    for _ in range(6):
        loss = qlora(**x, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(torch.equal(p, frozen[n]) for n, p in qlora.model.named_parameters() if n in frozen)


def test_merge_is_refused_in_one_line():
    _, qlora = pair("tiny-roberta", "classification")
    with pytest.raises(UsageError, match="cannot be merged"):
        qlora.merge()


def test_without_bitsandbytes_one_line_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(UsageError, match=r"qlora needs bitsandbytes.*pip install -e '\.\[qlora\]'"):
        resolve_sections("qlora", "mrpc", "tiny-roberta")


def test_a_run_records_the_backend_its_version_and_the_base_bytes(cli, results):
    from test_cli import only_record

    res = cli("run", "--method", "qlora", "--task", "mrpc", "--model", "tiny-roberta", "--set", "max_steps=2")
    assert res.code == 0, res.err
    record = only_record(results)
    hook = record["hooks"]["qlora"]
    assert record["status"] == "finished" and hook["backend"] == f"bitsandbytes {bnb.__version__}"
    assert hook["quant_type"] == "nf4" and hook["compute_dtype"] == "float32" and hook["double_quant"] is True
    assert hook["quantised_maps"] == 12 and hook["base_weight_bytes"] < hook["base_weight_bytes_unquantised"]
    assert record["params"]["method"] == record["params"]["formula"] == 2 * 2 * 2 * 64 * 8
