"""Write the `peft:<type>` specs (methods/peft/<type>.yaml) from peft's own config defaults and a probe on the tiny models.

    python tools/peft_specs.py [TYPE ...]   # all of TYPES by default; needs peft (pip install -e '.[peft]')

Each spec's hyperparameters are the scalar fields of peft's config class with peft's defaults (the names
peft uses), minus the fields that are plumbing rather than method (SKIP), plus `targets: [q, v]` (the
paper's LoRA targets, named through each family's ArchSpec) for types that take target modules. Where the
type runs is measured, not assumed: the type is applied to every tiny family (RoBERTa, BERT, DeBERTa-v2,
GPT-2, Llama) and must give a finite loss with a nonzero gradient on what it trains; peft's error is the
refusal reason. `mergeable` is whether peft's merge_and_unload reproduces the unmerged outputs.
A hand-written spec works as well: this tool only saves typing and keeps the specs honest about peft.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "methods" / "peft"
FAMILIES = {"roberta": ("tiny-roberta", "classification"), "bert": ("tiny-bert", "classification"),
            "deberta-v2": ("tiny-deberta", "classification"), "gpt2": ("tiny-gpt2", "generation"),
            "llama": ("tiny-llama", "classification")}
SKIP = {"peft_version", "base_model_name_or_path", "revision", "peft_type", "task_type", "inference_mode", "fan_in_fan_out",
        "megatron_core", "use_qalora", "qalora_group_size", "ensure_weight_tying", "progressbar", "runtime_offload_base_weight",
        "save_projection", "save_precomputed_indices", "save_only_topk_weights", "save_indices", "use_effective_conv2d"}
# the CPU-budget presets (README "Real numbers offline"): a type's lr, raised to the rate our LoRA uses on the model
CPU_PRESETS = (("minilm-l6", "bert", 3.0e-3), ("smollm2-135m", "llama", 2.0e-3))
SCALED = 1.0e-2  # lr for types that train scaling vectors or a few coefficients (IA3, VeRA, FourierFT...): their papers use larger rates
# type -> (peft config class, values that make the type (DoRA is LoRA with use_dora), lr, one-line description)
TYPES: dict[str, tuple[str, dict[str, Any], float, str]] = {
    "lora": ("LoraConfig", {}, 5.0e-4, "LoRA (Hu et al. 2021) as peft builds it"),
    "dora": ("LoraConfig", {"use_dora": True}, 5.0e-4, "DoRA (Liu et al. 2024): LoRA on the direction plus a trained magnitude per output"),
    "rslora": ("LoraConfig", {"use_rslora": True}, 5.0e-4, "rsLoRA (Kalajdzievski 2023): LoRA scaled by alpha/sqrt(r)"),
    "adamss": ("AdamssConfig", {}, 5.0e-4, "AdaMSS: adaptive multi-subspace low-rank updates from an SVD of W"),
    "beft": ("BeftConfig", {}, 3.0e-3, "BEFT: a trained bias-like vector per adapted map"),
    "boft": ("BOFTConfig", {}, 5.0e-4, "BOFT (Liu et al. 2024): butterfly-factorised orthogonal rotation of W"),
    "deft": ("DeftConfig", {}, 5.0e-4, "DeFT: decomposed low-rank updates"),
    "delora": ("DeloraConfig", {}, 5.0e-4, "DeLoRA (Bini et al. 2025): LoRA with a bounded, decoupled update norm"),
    "fourierft": ("FourierFTConfig", {}, SCALED, "FourierFT (Gao et al. 2024): a few trained spectral coefficients of the update"),
    "glora": ("GloraConfig", {}, 5.0e-4, "GLoRA (Chavan et al. 2023): generalised LoRA (weight, bias and prompt terms)"),
    "gralora": ("GraloraConfig", {}, 5.0e-4, "GraLoRA: granular low-rank adaptation on sub-blocks of W"),
    "hira": ("HiraConfig", {}, 5.0e-4, "HiRA: Hadamard (elementwise) high-rank updates W * (B A)"),
    "hra": ("HRAConfig", {}, 5.0e-4, "HRA (Yuan et al. 2024): a chain of Householder reflections of W"),
    "ia3": ("IA3Config", {}, SCALED, "(IA)3 (Liu et al. 2022): trained vectors rescaling the adapted maps' activations"),
    "lily": ("LilyConfig", {}, 5.0e-4, "Lily: low-rank updates with shared projectors across layers"),
    "ln_tuning": ("LNTuningConfig", {}, 3.0e-3, "LN tuning (Zhao et al. 2023): the blocks' LayerNorms train, nothing else"),
    "loha": ("LoHaConfig", {}, 5.0e-4, "LoHa (Hyeon-Woo et al. 2022): a Hadamard product of two low-rank updates"),
    "lokr": ("LoKrConfig", {}, 5.0e-4, "LoKr (Yeh et al. 2024): a Kronecker product of a small and a low-rank factor"),
    "miss": ("MissConfig", {}, 5.0e-4, "MiSS: a shared trained block sliced over W"),
    "oft": ("OFTConfig", {}, 5.0e-4, "OFT (Qiu et al. 2023): a block-diagonal orthogonal rotation of W"),
    "osf": ("OSFConfig", {}, 5.0e-4, "OSF: orthogonal subspace fine-tuning of W's low singular directions"),
    "peanut": ("PeanutConfig", {}, 5.0e-4, "PEANuT: a small nonlinear network producing the update"),
    "psoft": ("PsoftConfig", {}, 5.0e-4, "PSOFT: principal-subspace orthogonal fine-tuning"),
    "randlora": ("RandLoraConfig", {}, SCALED, "RandLoRA (Albert et al. 2025): full-rank updates from trained scalings of random bases"),
    "road": ("RoadConfig", {}, 3.0e-3, "RoAd (Liao et al. 2025): trained 2D rotations of the adapted maps' outputs"),
    "shira": ("ShiraConfig", {}, 5.0e-4, "SHiRA (Bhardwaj et al. 2024): a sparse trained subset of W's entries"),
    "supertuning": ("SupertuningConfig", {}, 5.0e-4, "SuperTuning: sparse updates on selected entries of W"),
    "vera": ("VeraConfig", {}, SCALED, "VeRA (Kopiczko et al. 2024): trained scaling vectors around shared frozen random projections"),
    # vector_length 256 divides no tiny map (nor minilm-l6's 384): the tool writes no spec
    "vblora": ("VBLoRAConfig", {}, SCALED, "VB-LoRA (Li et al. 2024): LoRA factors composed from a shared vector bank"),
    "waveft": ("WaveFTConfig", {}, SCALED, "WaveFT: a few trained wavelet coefficients of the update"),
    "unilora": ("UniLoraConfig", {}, SCALED, "Uni-LoRA: every LoRA factor projected from one small shared trained vector"),
    "tinylora": ("TinyLoraConfig", {}, SCALED, "TinyLoRA: LoRA factors from fixed random projections of a few trained numbers"),
    "frod": ("FrodConfig", {}, 5.0e-4, "FRoD: sparse trained updates in a fixed random rotated basis"),
    "pvera": ("PveraConfig", {}, SCALED, "PVeRA: VeRA with probabilistic (sampled) scaling vectors"),
}


def defaults(config_class: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    """peft's scalar defaults by peft's names (enums and None-valued fields are left to peft), then `targets`."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config_class):
        value = f.default if f.default is not dataclasses.MISSING else None
        if f.name not in SKIP and type(value) in (bool, int, float, str):
            out[f.name] = fixed.get(f.name, value)
    out.update(fixed)
    if "target_modules" in {f.name for f in dataclasses.fields(config_class)} and config_class.__name__ != "LNTuningConfig":
        out["targets"] = ["q", "v"]
    return out


def draft_spec(name: str, runs_on: list[str], refused: dict[str, str], mergeable: bool) -> dict[str, Any]:
    import peft

    config, fixed, lr, description = TYPES[name]
    hyperparameters = defaults(getattr(peft, config), fixed)
    bridge: dict[str, Any] = {"config": config, "runs_on": runs_on, "refused": refused, "mergeable": mergeable}
    if config == "LNTuningConfig":
        bridge["targets"] = "norms"
    search: dict[str, Any] = {"lr": {"type": "float", "low": 1.0e-5, "high": 1.0e-1, "log": True}}
    if isinstance(hyperparameters.get("r"), int) and hyperparameters["r"] > 0:
        r = hyperparameters["r"]
        search["r"] = {"type": "categorical", "choices": sorted({max(1, r // 4), max(1, r // 2), r, 2 * r})}
    return {
        "version": 1,
        "name": f"peft:{name}",
        "description": description,
        "peft": bridge,
        "hyperparameters": hyperparameters,
        "training": {"lr": lr, "warmup_ratio": 0.06, "weight_decay": 0.0},
        "search": search,
        "presets": [{"models": [model], "training": {"lr": max(lr, floor)}} for model, family, floor in CPU_PRESETS if family in runs_on],
    }


def probe(name: str, family: str) -> str | None:
    """None when the type trains on the family's tiny model; else the first line of peft's error."""
    import torch

    from peftbench.methods.bridge import PeftTuner
    from peftbench.methods.config import peft_config_class
    from peftbench.models.arch import arch_for
    from peftbench.models.build import build_model
    from peftbench.models.presets import resolve_model
    from peftbench.specs import MethodSpec

    spec = draft_spec(name, list(FAMILIES), {}, False)
    config_cls = peft_config_class(MethodSpec(spec["name"], "", hyperparameters=spec["hyperparameters"], peft=spec["peft"]))
    model_name, kind = FAMILIES[family]
    model = build_model(resolve_model(model_name), kind, seed=0).eval()
    try:
        model.requires_grad_(False)
        PeftTuner(spec["name"], config_cls).adapt(model, config_cls(), arch_for(model))
        x = torch.randint(6, 200, (2, 10))
        loss = model(input_ids=x, labels=x if kind == "generation" else torch.tensor([0, 1])).loss
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
        if not torch.isfinite(loss) or not any(g.abs().sum() > 0 for g in grads):
            return "trains nothing here (no gradient reaches its parameters)"
        return None
    except Exception as exc:  # peft's refusal, whatever its type: its first line is the reason
        return " ".join(str(exc).split())[:200] or type(exc).__name__


def write(name: str) -> None:
    outcomes = {family: probe(name, family) for family in FAMILIES}
    runs_on = [f for f, why in outcomes.items() if why is None]
    refused = {f: f"on {FAMILIES[f][0]}: {why}" for f, why in outcomes.items() if why is not None}  # the probe's sizes, not the family's
    if not runs_on:
        print(f"peft:{name}: runs on no tiny model, no spec written: {refused}")
        return
    spec = draft_spec(name, runs_on, refused, mergeable=merges(name) if runs_on else False)
    OUT.mkdir(parents=True, exist_ok=True)
    header = f"# generated by tools/peft_specs.py from peft's {spec['peft']['config']} defaults and a probe on the tiny models\n"
    body = yaml.safe_dump(spec, sort_keys=False, width=140, default_flow_style=None, allow_unicode=True)
    (OUT / f"{name}.yaml").write_text(header + body)
    print(f"peft:{name}: runs on {', '.join(runs_on) or 'nothing'}; refused {sorted(refused)}")


def merges(name: str) -> bool:
    """peft's merge_and_unload gives the unmerged outputs (to float rounding) on tiny-roberta, and unmerge restores them."""
    import torch

    from peftbench.methods.bridge import PeftTuner
    from peftbench.methods.config import peft_config_class
    from peftbench.models.arch import arch_for
    from peftbench.models.build import build_model
    from peftbench.models.presets import resolve_model
    from peftbench.specs import MethodSpec

    spec = draft_spec(name, list(FAMILIES), {}, True)
    config_cls = peft_config_class(MethodSpec(spec["name"], "", hyperparameters=spec["hyperparameters"], peft=spec["peft"]))
    model = build_model(resolve_model("tiny-roberta"), "classification", seed=0).eval()
    tuner = PeftTuner(spec["name"], config_cls)
    tuner.adapt(model, config_cls(), arch_for(model))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # away from an identity initialisation, so merging has something to fold
        x = torch.randint(6, 200, (2, 10))
        before = model(input_ids=x).logits
        try:
            merged = tuner.merge(model)
        except Exception:  # peft's NotImplementedError and the like: not mergeable
            return False
        ok = torch.allclose(model(input_ids=x).logits, before, atol=1e-4)
        tuner.unmerge(model, merged)
        return ok and torch.allclose(model(input_ids=x).logits, before, atol=1e-4)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for type_name in sys.argv[1:] or list(TYPES):
        write(type_name)
