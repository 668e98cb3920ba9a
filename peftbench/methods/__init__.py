"""The methods: hyperparameters in `config` (no torch), implementations one module per family.

Importing this package is cheap: `config` alone is what `validate` and the spec checks need.
`METHODS` and the classes of `base` import every implementation (and so torch) on first use;
each implementation registers itself in `METHODS` when imported.
"""

from __future__ import annotations

from typing import Any

IMPLEMENTATIONS = ("adapters", "bitfit", "bridge", "composed", "full", "lora", "prefix", "qlora", "relora")
__all__ = ["METHODS", "Adapted", "Capabilities", "Method", "MethodConfig"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    if name == "MethodConfig":  # hyperparameters: no torch
        return importlib.import_module(f"{__name__}.config").MethodConfig
    for module in IMPLEMENTATIONS:
        importlib.import_module(f"{__name__}.{module}")
    return getattr(importlib.import_module(f"{__name__}.base"), name)
