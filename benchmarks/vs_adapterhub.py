"""Our adapters vs AdapterHub's (`adapters`): same base, same adapter weights -> outputs and counts compared.

    python benchmarks/vs_adapterhub.py                 # builds (once) a private virtualenv, then compares
    python benchmarks/vs_adapterhub.py --venv DIR      # another place for that virtualenv

AdapterHub's `adapters` needs transformers 4.x, peftbench transformers 5, so AdapterHub runs in its
own virtualenv (built once, under `$PEFTBENCH_CACHE` or `~/.cache/peftbench`) with pinned versions:
adapters 1.3.0 (the newest on PyPI on 2026-12-02), transformers 4.57.6 (what adapters 1.3 supports),
torch 2.13.0 (the CPU wheel). The comparison:

1. here (peftbench, transformers 5): a tiny random RoBERTa (tiny-roberta's shape), our `adapter_h`
   and `adapter_p` applied with random weights (the up-projections too, so no adapter is the
   identity), the backbone's last hidden states on a fixed batch; exported as safetensors with the
   base weights, the adapter weights and the batch;
2. there (a subprocess in the AdapterHub virtualenv): the same base, our weights loaded into
   AdapterHub adapters under several configurations, their outputs and adapter parameter counts;
3. here: the largest output difference and the counts, side by side, with the verdict.

Design choices, per library (the LoRA paper, Section 5.1, describes AdapterH as Houlsby et al.'s
adapter between the attention / MLP module and the residual connection, and AdapterP (Pfeiffer et
al.) as like AdapterL: one adapter after the MLP module and after a LayerNorm):

| choice | Houlsby 2019 code | AdapterHub `double_seq_bn` | ours `adapter_h` |
|---|---|---|---|
| sites | after attention output projection and after FFN output projection, before residual + LayerNorm | same | same |
| non-linearity | GELU | swish (SiLU) | swish in the spec (as in microsoft/LoRA); `--set nonlinearity=`: relu, gelu, swish, tanh |
| initialisation | near identity (truncated normal, std 1e-3) | "bert": normal std 0.02, zero biases | exact identity (up-projection zero) |

| choice | Pfeiffer 2020/21, AdapterHub `seq_bn`, the paper's AdptP | ours `adapter_p` (and `adapter_d`) |
|---|---|---|
| site | after the FFN's residual + LayerNorm: reads LN(h + x), adds its update to h + x, the LayerNorm applied again after | the same |
| non-linearity | ReLU | ReLU |

Both have 2dr + r + d parameters per adapter and no trainable LayerNorm, so counts agree. With the
same choices the outputs agree to float rounding; the cases that differ on purpose (another
non-linearity, Houlsby's second site instead of Pfeiffer's) show that the comparison can tell.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ADAPTERS = "adapters==1.3.0"
TRANSFORMERS = "transformers==4.57.6"
TORCH = "torch==2.13.0"
PINS = (ADAPTERS, TRANSFORMERS, TORCH, "safetensors")
TOLERANCE = 1e-5  # max |difference| of the last hidden states that counts as the same function
GRADIENT_TOLERANCE = 1e-4  # max |difference| of the adapters' gradients, relative to each tensor's largest


@dataclass(frozen=True)
class Case:
    """One comparison: our method (with its settings) against one AdapterHub configuration."""

    label: str
    method: str
    nonlinearity: str
    adapterhub: str  # a Python expression evaluated in the AdapterHub process (`rf`: d / r)
    expect_same: bool
    why: str
    settings: tuple[tuple[str, int], ...] = ()  # further hyperparameters of ours


HOULSBY_SECOND_SITE = (  # an output adapter before the FFN's residual + LayerNorm: what adapter_p did before it moved
    "BnConfig(mh_adapter=False, output_adapter=True, original_ln_before=False, original_ln_after=True, "
    "residual_before_ln=True, non_linearity='relu', reduction_factor=rf)"
)
CASES = (
    Case("Houlsby, AdapterHub's named config", "adapter_h", "swish", "DoubleSeqBnConfig(reduction_factor=rf)", True,
         "same sites, both swish (our spec's default)"),
    Case("Houlsby, both with ReLU", "adapter_h", "relu", "DoubleSeqBnConfig(reduction_factor=rf, non_linearity='relu')", True,
         "ReLU set on both"),
    Case("Houlsby, ReLU against swish", "adapter_h", "relu", "DoubleSeqBnConfig(reduction_factor=rf)", False,
         "non-linearity: ours ReLU, AdapterHub swish"),
    Case("Pfeiffer, AdapterHub's named config", "adapter_p", "relu", "SeqBnConfig(reduction_factor=rf)", True,
         "both at Pfeiffer's site: after the FFN's residual + LayerNorm"),
    Case("Pfeiffer against Houlsby's second site", "adapter_p", "relu", HOULSBY_SECOND_SITE, False,
         "placement: AdapterHub's adapter before the residual + LayerNorm, ours after it"),
    Case("AdapterDrop, lowest layer dropped", "adapter_d", "relu", "SeqBnConfig(reduction_factor=rf, leave_out=[0])", True,
         "Pfeiffer adapters in every layer but the first", (("drop_layers", 1),)),
)  # fmt: skip

# Runs inside the AdapterHub virtualenv (transformers 4.57, adapters): no peftbench there.
WORKER = r"""
import json, sys
import torch, adapters
from adapters import BnConfig, DoubleSeqBnConfig, SeqBnConfig
from safetensors.torch import load_file, save_file
from transformers import RobertaConfig, RobertaModel

folder = sys.argv[1]
spec = json.load(open(f"{folder}/spec.json"))
base = load_file(f"{folder}/base.safetensors")
batch = load_file(f"{folder}/batch.safetensors")
SITES = {"attn_output": "attention.output", "ffn_output": "output", "ffn_residual": "output"}  # our site -> AdapterHub's host
results, outputs = {}, {}
for i, case in enumerate(spec["cases"]):
    model = RobertaModel(RobertaConfig(**spec["config"]), add_pooling_layer=False).eval()
    model.load_state_dict(base)
    adapters.init(model)
    model.add_adapter("ours", config=eval(case["adapterhub"], {}, {**globals(), "rf": spec["reduction_factor"]}))
    model.set_active_adapters("ours")
    ours = load_file(f"{folder}/{case['method']}.safetensors")
    state, named = {}, {}
    for name, tensor in ours.items():  # encoder.layer.{i}.adapters.{site}.{down|up}.{weight|bias}
        layer, rest = name.split(".adapters.")
        site, proj, leaf = rest.split(".")
        part = "adapter_down.0" if proj == "down" else "adapter_up"
        named[name] = f"{layer}.{SITES[site]}.adapters.ours.{part}.{leaf}"
        state[named[name]] = tensor
    theirs = {n: p for n, p in model.named_parameters() if ".adapters." in n}
    missing, unexpected = sorted(theirs.keys() - state.keys()), sorted(state.keys() - theirs.keys())
    if missing or unexpected:
        raise SystemExit(f"{case['label']}: AdapterHub parameters not matched: missing {missing[:4]}, unexpected {unexpected[:4]}")
    with torch.no_grad():
        for n, t in state.items():
            theirs[n].copy_(t)
    states = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    outputs[f"case{i}"] = states.detach().contiguous()
    (states @ batch["probe"]).pow(2).mean().backward()  # the same loss and step as ours: one AdamW step on the adapters
    outputs.update({f"case{i} grad {ours_name}": theirs[their_name].grad for ours_name, their_name in named.items()})
    torch.optim.AdamW(list(theirs.values()), lr=1e-2, weight_decay=0.1).step()
    with torch.no_grad():
        after = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        outputs[f"case{i} after"] = after.contiguous()
    results[case["label"]] = {"params": sum(p.numel() for p in theirs.values())}
save_file(outputs, f"{folder}/adapterhub_outputs.safetensors")
json.dump({"results": results, "versions": {"adapters": adapters.__version__, "transformers": __import__("transformers").__version__,
           "torch": torch.__version__}}, open(f"{folder}/adapterhub.json", "w"))
"""


def default_venv() -> Path:
    root = Path(os.environ.get("PEFTBENCH_CACHE") or Path.home() / ".cache" / "peftbench")
    return root / ("adapterhub-" + "-".join(p.replace("==", "") for p in PINS[:3]))


def ensure_venv(venv: Path) -> Path:
    """A virtualenv with the pinned AdapterHub stack, built once (a marker file holds the pins it was built with)."""
    python, marker = venv / "bin" / "python", venv / "peftbench-pins.txt"
    if python.is_file() and marker.is_file() and marker.read_text() == "\n".join(PINS):
        return python
    print(f"building the AdapterHub virtualenv in {venv} ({', '.join(PINS)}); once, a few minutes", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PINS], check=True)
    marker.write_text("\n".join(PINS))
    return python


def our_side(folder: Path, bottleneck: int, seed: int) -> dict[str, torch.Tensor]:
    """Export the base, our adapters (random weights) and a batch; return our last hidden states per case, before and
    after one AdamW step on the adapters, and their gradients."""
    from peftbench.models.build import build_model
    from peftbench.models.presets import resolve_model

    source = resolve_model("tiny-roberta")
    config = build_model(source, "classification", seed=seed).config
    batch = export_base_and_batch(folder, source, config, seed)
    outputs: dict[str, torch.Tensor] = {}
    for case in CASES:
        outputs.update(our_case(folder, case, build_model(source, "classification", seed=seed).eval(), batch, bottleneck, seed))
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings",
            "type_vocab_size", "layer_norm_eps", "pad_token_id", "hidden_act")  # fmt: skip
    spec = {
        "config": {k: getattr(config, k) for k in keys},
        "reduction_factor": config.hidden_size / bottleneck,
        "cases": [{"label": c.label, "method": c.method, "adapterhub": c.adapterhub} for c in CASES],
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    return outputs


def export_base_and_batch(folder: Path, source: object, config: object, seed: int) -> dict[str, torch.Tensor]:
    """The backbone's weights (tiny-roberta's, from `seed`) and a fixed batch with one padded row, as safetensors."""
    from peftbench.models.build import build_model

    model = build_model(source, "classification", seed=seed)  # type: ignore[arg-type]
    save_file({k: v.contiguous() for k, v in model.roberta.state_dict().items() if "pooler" not in k}, str(folder / "base.safetensors"))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(6, config.vocab_size, (3, 12), generator=g)  # type: ignore[attr-defined]
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0
    # the loss of the step: the squared projection of each state on a fixed random direction. Not a function of
    # the states' norms: those are fixed by the closing LayerNorm, and its gradient would be rounding noise
    probe = torch.randn(config.hidden_size, generator=g)  # type: ignore[attr-defined]
    batch = {"input_ids": ids, "attention_mask": mask, "probe": probe}
    save_file(batch, str(folder / "batch.safetensors"))
    return batch


def our_case(folder: Path, case: Case, model: torch.nn.Module, batch: dict, bottleneck: int, seed: int) -> dict[str, torch.Tensor]:
    """One case on our side: random adapter weights (the same for every case of a method, exported once), the states
    before and after one AdamW step on the adapters, the gradients, and the count."""
    from peftbench.methods import METHODS

    impl = METHODS.get(case.method)
    adapted = impl.apply(model, impl.config_cls(bottleneck=bottleneck, nonlinearity=case.nonlinearity, **dict(case.settings)))
    adapters = {n.removeprefix("roberta."): p for n, p in adapted.trainable_parameters().items() if ".adapters." in n}
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        for p in adapted.trainable_parameters().values():
            p.normal_(0.0, 0.1)
    path = folder / f"{case.method}.safetensors"
    if not path.exists():
        save_file({n: p.detach().contiguous() for n, p in adapters.items()}, str(path))
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    states = model.roberta(**inputs).last_hidden_state
    out = {case.label: states.detach(), case.label + " params": torch.tensor(adapted.param_counts()["method"])}
    (states @ batch["probe"]).pow(2).mean().backward()
    out.update({f"{case.label} grad {n}": p.grad for n, p in adapters.items()})
    torch.optim.AdamW(list(adapters.values()), lr=1e-2, weight_decay=0.1).step()
    with torch.no_grad():
        out[case.label + " after"] = model.roberta(**inputs).last_hidden_state
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=None, help=f"the AdapterHub virtualenv (default {default_venv()})")
    parser.add_argument("--bottleneck", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    python = ensure_venv(args.venv or default_venv())
    with tempfile.TemporaryDirectory(prefix="peftbench-adapterhub-") as tmp:
        folder = Path(tmp)
        ours = our_side(folder, args.bottleneck, args.seed)
        (folder / "worker.py").write_text(WORKER)
        proc = subprocess.run([str(python), str(folder / "worker.py"), str(folder)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"AdapterHub side failed ({proc.returncode}):\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        theirs = load_file(str(folder / "adapterhub_outputs.safetensors"))
        meta = {**json.loads((folder / "adapterhub.json").read_text()), **json.loads((folder / "spec.json").read_text())}
    return report(ours, theirs, meta, args.bottleneck)


def differences(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], label: str, case: str) -> dict[str, float]:
    """Largest differences of one case: the states before and after the step, and the gradients (relative per tensor)."""
    relative = []
    for name in (n.removeprefix(f"{label} grad ") for n in ours if n.startswith(f"{label} grad ")):
        mine, other = ours[f"{label} grad {name}"], theirs[f"{case} grad {name}"]
        relative.append(float((mine - other).abs().max() / other.abs().max().clamp(min=1e-30)))
    return {
        "outputs": float((ours[label] - theirs[case]).abs().max()),
        "gradients": max(relative),
        "after": float((ours[label + " after"] - theirs[case + " after"]).abs().max()),
    }


def report(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], meta: dict, bottleneck: int) -> int:
    v = meta["versions"]
    print(f"ours: peftbench, transformers {__import__('transformers').__version__}, torch {torch.__version__}")
    print(f"AdapterHub: adapters {v['adapters']}, transformers {v['transformers']}, torch {v['torch']}")
    print(f"tiny-roberta shape (d=64, 2 layers), bottleneck r={bottleneck}, random adapter weights, batch 3 x 12 (one row padded)\n")
    print("| case | ours | AdapterHub config | max abs diff of last hidden states | max rel diff of gradients | "
          "max abs diff after one AdamW step | params ours / AdapterHub | verdict | why |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    failures = 0
    for i, case in enumerate(CASES):
        diffs = differences(ours, theirs, case.label, f"case{i}")
        same = max(diffs["outputs"], diffs["after"]) < TOLERANCE and diffs["gradients"] < GRADIENT_TOLERANCE
        ours_params, their_params = int(ours[case.label + " params"]), meta["results"][case.label]["params"]
        expected = same == case.expect_same and ours_params == their_params
        failures += not expected
        verdict = ("same function" if same else "different function") + ("" if expected else " (UNEXPECTED)")
        config = case.adapterhub.replace("=rf", f"={meta['reduction_factor']:g}")
        shown = [f"{diffs[k]:.2g}" for k in ("outputs", "gradients", "after")]
        cells = [case.label, f"{case.method}, {case.nonlinearity}", f"`{config}`", *shown, f"{ours_params:,} / {their_params:,}"]
        print("| " + " | ".join([*cells, verdict, case.why]) + " |")
    print(f"\nsame function: states within {TOLERANCE:g} before and after the step, gradients within {GRADIENT_TOLERANCE:g} (relative).")
    print("0 where both compute the same float operations (Houlsby's sites); at Pfeiffer's site ours sums LN(s + update),")
    print("AdapterHub LN(update + h + x): the same function, summed in another order. Counts: 2dr + r + d per adapter.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
