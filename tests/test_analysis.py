"""Section 7's analyses (`peftbench analyze`) with known answers, and runs keeping their trained tensors."""

import json

import pytest
import torch

from peftbench.bench.analysis import amplification, effective_rank, subspace_similarity
from peftbench.cli import main
from peftbench.records.store import Store


def test_identical_subspaces_give_one_and_orthogonal_ones_zero():
    a = torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(subspace_similarity(a, a), torch.ones(4, 4, dtype=torch.float64))
    rotated = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))[0].float() @ a  # same row space, other basis
    assert subspace_similarity(a, rotated)[3, 3] == pytest.approx(1.0)
    first, second = torch.eye(32)[:4], torch.eye(32)[4:12]
    assert torch.allclose(subspace_similarity(first, second), torch.zeros(4, 8, dtype=torch.float64))


def test_a_half_shared_subspace_gives_a_half():
    first, second = torch.eye(8)[[0, 1]], torch.eye(8)[[0, 2]] * torch.tensor([[2.0], [1.0]])  # second's top direction: e0
    phi = subspace_similarity(first, second)
    assert phi[1, 1] == pytest.approx(0.5)  # span{e0, e1} vs span{e0, e2}: one of two directions shared
    assert phi[1, 0] == pytest.approx(1.0)  # e0 lies in span{e0, e1}


def test_amplification_of_an_update_along_ws_top_directions():
    u, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    v, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))
    sigma = torch.linspace(10, 1, 16, dtype=torch.float64)
    weight = u @ torch.diag(sigma) @ v.T
    delta = 3.0 * torch.outer(u[:, 0], v[:, 0])  # rank 1 along W's top direction, ||ΔW||_F = 3
    got = amplification(delta, weight, r=1)
    assert got["delta_W"] == pytest.approx(10.0)  # ||u1^T W v1|| = σ1
    assert got["W"] == pytest.approx(10.0)
    assert got["norm_delta"] == pytest.approx(3.0)
    assert got["factor"] == pytest.approx(0.3)
    along_last = 3.0 * torch.outer(u[:, 15], v[:, 15])  # along W's weakest direction: amplified 3 / σ16 = 3
    assert amplification(along_last, weight, r=1)["factor"] == pytest.approx(3.0)


def test_effective_rank_counts_equal_directions():
    assert effective_rank(torch.tensor([1.0, 1.0, 1.0, 0.0])) == pytest.approx(3.0)
    assert effective_rank(torch.tensor([5.0])) == pytest.approx(1.0)


def test_a_finished_run_keeps_its_tensors_and_the_analyses_read_them(tmp_path, capsys):
    args = ["sweep", "--methods", "lora", "--tasks", "sst2", "--models", "tiny-roberta", "--set", "max_steps=2", "--no-report"]
    assert main([*args, "--vary", "lora.r=2", "--results-dir", str(tmp_path)]) == 0
    (entry,) = Store(tmp_path).entries("run")
    kept = entry.record["measurements"]["adapters"]
    assert (tmp_path / kept["file"]).stat().st_size == kept["bytes"] and kept["tensors"] == 12  # 2 layers x q,v x A,B + 4 head
    capsys.readouterr()
    assert main(["analyze", "subspace", str(entry.path), str(entry.path), "--json"]) == 0
    phi = json.loads(capsys.readouterr().out)["phi"]
    assert [v for row in phi for v in row] == pytest.approx([1.0] * 4)
    assert main(["analyze", "amplification", str(entry.path), "--matrix", "v", "--layer", "0"]) == 0
    assert "amplification factor" in capsys.readouterr().out
    assert main(["analyze", "spectrum", str(entry.path), "--json"]) == 0
    spectra = json.loads(capsys.readouterr().out)["updates"]
    assert len(spectra) == 4 and all(s["numerical_rank"] <= 2 for s in spectra)  # ΔW = BA has rank at most r


def test_no_keep_adapters_keeps_nothing_and_analyze_says_why(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PEFTBENCH_KEEP_ADAPTERS", raising=False)
    args = ["sweep", "--methods", "lora", "--tasks", "sst2", "--models", "tiny-roberta", "--set", "max_steps=1", "--no-report"]
    assert main([*args, "--no-keep-adapters", "--results-dir", str(tmp_path)]) == 0
    monkeypatch.delenv("PEFTBENCH_KEEP_ADAPTERS", raising=False)
    (entry,) = Store(tmp_path).entries("run")
    assert "adapters" not in entry.record["measurements"] and not (tmp_path / "adapters").exists()
    assert main(["analyze", "spectrum", str(entry.path)]) == 2
    assert "kept no trained tensors" in capsys.readouterr().err
