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
| non-linearity | GELU | swish (SiLU) | ReLU (`--set nonlinearity=...`: relu, gelu, swish, tanh) |
| initialisation | near identity (truncated normal, std 1e-3) | "bert": normal std 0.02, zero biases | exact identity (up-projection zero) |

| choice | Pfeiffer 2020/21, AdapterHub `seq_bn` | ours `adapter_p` |
|---|---|---|
| site | after the FFN's residual + LayerNorm: reads LN(h + x), | after the FFN output projection, before residual + |
|      | residual h, the original LayerNorm applied again after | LayerNorm (Houlsby's second site): reads h |
| non-linearity | ReLU | ReLU |

Both have 2dr + r + d parameters per adapter and no trainable LayerNorm, so counts agree. With a
configuration that makes the same choices (AdapterHub's `BnConfig` with Houlsby's output site for
`adapter_p`; `non_linearity` set to ours), the outputs agree to float rounding.
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


@dataclass(frozen=True)
class Case:
    """One comparison: our method (with a non-linearity) against one AdapterHub configuration."""

    label: str
    method: str
    nonlinearity: str
    adapterhub: str  # a Python expression evaluated in the AdapterHub process (`rf`: d / r)
    expect_same: bool
    why: str


CASES = (
    Case("Houlsby, AdapterHub's named config", "adapter_h", "swish", "DoubleSeqBnConfig(reduction_factor=rf)", True,
         "same sites; AdapterHub's default swish set on ours"),
    Case("Houlsby, both with ReLU", "adapter_h", "relu", "DoubleSeqBnConfig(reduction_factor=rf, non_linearity='relu')", True,
         "our default non-linearity set on AdapterHub's"),
    Case("Houlsby, each library's default", "adapter_h", "relu", "DoubleSeqBnConfig(reduction_factor=rf)", False,
         "non-linearity: ours ReLU, AdapterHub swish"),
    Case("Pfeiffer, AdapterHub's named config", "adapter_p", "relu", "SeqBnConfig(reduction_factor=rf)", False,
         "placement: AdapterHub reads LN(h + x) after the FFN's residual + LayerNorm, ours h before it"),
    Case("Pfeiffer at ours' site", "adapter_p", "relu",
         "BnConfig(mh_adapter=False, output_adapter=True, original_ln_before=False, original_ln_after=True, "
         "residual_before_ln=True, non_linearity='relu', reduction_factor=rf)", True,
         "AdapterHub's BnConfig placed where ours is"),
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
SITES = {"attn_output": "attention.output", "ffn_output": "output"}  # our site -> AdapterHub's host module
results, outputs = {}, {}
for i, case in enumerate(spec["cases"]):
    model = RobertaModel(RobertaConfig(**spec["config"]), add_pooling_layer=False).eval()
    model.load_state_dict(base)
    adapters.init(model)
    model.add_adapter("ours", config=eval(case["adapterhub"], {}, {**globals(), "rf": spec["reduction_factor"]}))
    model.set_active_adapters("ours")
    ours = load_file(f"{folder}/{case['method']}.safetensors")
    state = {}
    for name, tensor in ours.items():  # encoder.layer.{i}.adapters.{site}.{down|up}.{weight|bias}
        layer, rest = name.split(".adapters.")
        site, proj, leaf = rest.split(".")
        part = "adapter_down.0" if proj == "down" else "adapter_up"
        state[f"{layer}.{SITES[site]}.adapters.ours.{part}.{leaf}"] = tensor
    theirs = {n: p for n, p in model.named_parameters() if ".adapters." in n}
    missing, unexpected = sorted(theirs.keys() - state.keys()), sorted(state.keys() - theirs.keys())
    if missing or unexpected:
        raise SystemExit(f"{case['label']}: AdapterHub parameters not matched: missing {missing[:4]}, unexpected {unexpected[:4]}")
    with torch.no_grad():
        for n, t in state.items():
            theirs[n].copy_(t)
        outputs[f"case{i}"] = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state.contiguous()
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
    """Export the base, our adapters (random weights) and a batch; return our last hidden states per case."""
    from peftbench.methods import METHODS
    from peftbench.models import build_model
    from peftbench.presets import resolve_model

    source = resolve_model("tiny-roberta")
    config = build_model(source, "classification", seed=seed).config
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings",
            "type_vocab_size", "layer_norm_eps", "pad_token_id", "hidden_act")  # fmt: skip
    spec_config = {k: getattr(config, k) for k in keys}
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(6, config.vocab_size, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0  # one padded row
    save_file({"input_ids": ids, "attention_mask": mask}, str(folder / "batch.safetensors"))
    outputs: dict[str, torch.Tensor] = {}
    exported: set[str] = set()
    for i, case in enumerate(CASES):
        model = build_model(source, "classification", seed=seed).eval()
        if i == 0:
            base = {k: v.contiguous() for k, v in model.roberta.state_dict().items() if "pooler" not in k}
            save_file(base, str(folder / "base.safetensors"))
        impl = METHODS.get(case.method)
        adapted = impl.apply(model, impl.config_cls(bottleneck=bottleneck, nonlinearity=case.nonlinearity))
        torch.manual_seed(seed + 1)  # the same adapter weights for every case of one method
        with torch.no_grad():
            for p in adapted.trainable_parameters().values():
                p.normal_(0.0, 0.1)
            outputs[case.label] = model.roberta(input_ids=ids, attention_mask=mask).last_hidden_state
        if case.method not in exported:
            trained = adapted.trainable_parameters().items()
            weights = {n.removeprefix("roberta."): p.detach().contiguous() for n, p in trained if ".adapters." in n}
            save_file(weights, str(folder / f"{case.method}.safetensors"))
            exported.add(case.method)
        outputs[case.label + " params"] = torch.tensor(adapted.param_counts()["method"])
    (folder / "spec.json").write_text(
        json.dumps(
            {
                "config": spec_config,
                "reduction_factor": config.hidden_size / bottleneck,
                "cases": [{"label": c.label, "method": c.method, "adapterhub": c.adapterhub} for c in CASES],
            }
        )
    )
    return outputs


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


def report(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], meta: dict, bottleneck: int) -> int:
    v = meta["versions"]
    print(f"ours: peftbench, transformers {__import__('transformers').__version__}, torch {torch.__version__}")
    print(f"AdapterHub: adapters {v['adapters']}, transformers {v['transformers']}, torch {v['torch']}")
    print(f"tiny-roberta shape (d=64, 2 layers), bottleneck r={bottleneck}, random adapter weights, batch 3 x 12 (one row padded)\n")
    print("| case | ours | AdapterHub config | max abs diff of last hidden states | params ours / AdapterHub | verdict | why |")
    print("|---|---|---|---|---|---|---|")
    failures = 0
    for i, case in enumerate(CASES):
        diff = float((ours[case.label] - theirs[f"case{i}"]).abs().max())
        same = diff < TOLERANCE
        ours_params, their_params = int(ours[case.label + " params"]), meta["results"][case.label]["params"]
        expected = same == case.expect_same and ours_params == their_params
        failures += not expected
        verdict = ("same function" if same else "different function") + ("" if expected else " (UNEXPECTED)")
        config = case.adapterhub.replace("=rf", f"={meta['reduction_factor']:g}")
        cells = [case.label, f"{case.method}, {case.nonlinearity}", f"`{config}`", f"{diff:.2e}", f"{ours_params:,} / {their_params:,}"]
        print("| " + " | ".join([*cells, verdict, case.why]) + " |")
    print(f"\nsame function: max |difference| < {TOLERANCE:g}. Counts: 2dr + r + d per adapter in both libraries.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
