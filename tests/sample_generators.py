"""The sample generators under tools/samples/ (source checkout only, not the package), loaded by path.

A plain module, imported as `from sample_generators import load`: pytest's default import mode puts this folder on sys.path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "samples"


def load(name: str) -> ModuleType:
    """tools/samples/<name>.py as a module (registered in sys.modules: its dataclasses need it)."""
    module_name = f"peftbench_sample_generator_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None, TOOLS / f"{name}.py"
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
