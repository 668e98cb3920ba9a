"""Tiny-model helpers shared by the method tests: the (model, task kind) cases, one fixed batch, its labels,
and the exact comparison and optimizer step of the equivalence tests.

A plain module, imported as `from tiny import ...`: pytest's default import mode puts this folder on sys.path.
"""

import torch

from peftbench.methods import METHODS
from peftbench.models.build import build_model
from peftbench.models.presets import resolve_model

CASES = [  # the architectures and the three task kinds
    ("tiny-roberta", "classification"),
    ("tiny-deberta", "classification"),
    ("tiny-gpt2", "classification"),
    ("tiny-gpt2", "generation"),
    ("tiny-roberta", "regression"),
    ("tiny-bert", "classification"),
    ("tiny-llama", "classification"),
    ("tiny-llama", "generation"),
]

# (method, model) pairs refused before any work, with what the message says: Llama has no bias terms.
REFUSED = {("bitfit", "tiny-llama"): "has none"}


def adapt(model_name, kind, method, *, seed=0, meta=False, **hyperparameters):
    """A model in eval mode and `method` applied to it with its config class's defaults overridden by `hyperparameters`."""
    model = build_model(resolve_model(model_name), kind, seed=seed, meta=meta).eval()
    impl = METHODS.get(method)
    torch.manual_seed(seed)  # method initialisation draws from the global generator, as in a run (runner.set_seed)
    return model, impl.apply(model, impl.config_cls(**hyperparameters))


def batch(seed=0):
    """Three unpadded rows of 12 random token ids."""
    g = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(6, 500, (3, 12), generator=g), "attention_mask": torch.ones(3, 12, dtype=torch.long)}


def labels_for(kind, x):
    """Labels for a 3-row batch: the inputs themselves (padding ignored) for generation, fixed targets otherwise."""
    if kind == "generation":
        return x["input_ids"].masked_fill(x["attention_mask"] == 0, -100)
    return torch.tensor([0.1, 0.5, 0.9]) if kind == "regression" else torch.tensor([0, 1, 1])


def assert_same(ours, theirs, what=""):
    """Bit for bit; the message says by how much where not."""
    assert ours is not None and theirs is not None, what
    assert torch.equal(ours, theirs), f"{what}: max |difference| {(ours - theirs).abs().max().item():.3g}"


def adamw_step(params):
    """One AdamW step as the runner takes it (its defaults, with weight decay, so both terms of the update count)."""
    torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1).step()
