"""Shared fixtures: tests never touch the network and never write outside tmp_path."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the suite may download
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from dataclasses import dataclass

import pytest
import torch

from peftbench.cli import main


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models gain nothing from threads, and on busy cores the intra-op pool's spinning costs 10-50x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A fresh results folder that `peftbench` uses by default."""
    path = tmp_path / "results"
    monkeypatch.setenv("PEFTBENCH_RESULTS", str(path))
    return path


@pytest.fixture
def cli(capsys, results):
    """Run the CLI in process (fast); returns exit code and captured output."""

    def run(*args: str) -> CliResult:
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
