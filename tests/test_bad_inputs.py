"""Bad input, through the CLI: exit 2, one line that names the problem, no traceback, no record left.

One table, one row per mistake a user makes (names, `--set`, presets, model folders, data folders,
data files, offline). Every row runs in process (fast); a few also run through the real entry
point in a fresh interpreter, where a traceback would show on stderr.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from peftbench.cli import main
from peftbench.models.hub import hub_reachable
from peftbench.specs import PACKAGE_DIR

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = PACKAGE_DIR / "data" / "samples"
TINY = ("--method", "lora", "--task", "mrpc", "--model", "tiny-roberta")
TINY_GEN = ("--method", "lora", "--task", "e2e", "--model", "tiny-gpt2")


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # `{tmp}` stands for the case's own folder
    says: tuple[str, ...]  # fragments the one-line message must hold
    setup: Callable[[Path], None] | None = None
    command: str = "run"
    env: dict[str, str] = field(default_factory=dict)


def copy_sample(task: str, drop: tuple[str, ...] = ()) -> Callable[[Path], None]:
    """The bundled sample of `task` copied to `{tmp}/data`, without the files or folders in `drop`."""

    def setup(tmp: Path) -> None:
        shutil.copytree(SAMPLES / task, tmp / "data")
        for name in drop:
            target = tmp / "data" / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()

    return setup


def model_dir(config: str | None, *, weights: bool = False) -> Callable[[Path], None]:
    """A `--model DIR` at `{tmp}/model` holding `config` as its config.json (None: no config.json)."""

    def setup(tmp: Path) -> None:
        (tmp / "model").mkdir()
        if config is not None:
            (tmp / "model" / "config.json").write_text(config)

    return setup


def saved_tiny_gpt2(tmp: Path) -> None:
    """A complete local model folder (config, weights, tokenizer): tiny-gpt2 saved as a user would have one."""
    from peftbench.models.build import build_model, load_tokenizer
    from peftbench.models.presets import resolve_model

    source = resolve_model("tiny-gpt2")
    build_model(source, "generation").save_pretrained(tmp / "model")
    load_tokenizer(source, "gpt2").save_pretrained(tmp / "model")


def write(relative: str, text: str, *, base: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        if base:
            base(tmp)
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp / relative).write_text(text)

    return setup


def saved_pickled_gpt2(tmp: Path) -> None:
    """tiny-gpt2 saved with its weights as a pickle only (what an old checkpoint folder holds)."""
    import torch
    from safetensors.torch import load_file

    saved_tiny_gpt2(tmp)
    for path in (tmp / "model").glob("*.safetensors"):
        torch.save(load_file(path), tmp / "model" / "pytorch_model.bin")
        path.unlink()


SWEEP = "version: 1\nname: bad\nmethods: [lora]\ntasks: [mrpc]\nmodels: [tiny-roberta]\n"

GPT2_CONFIG = json.dumps({"model_type": "gpt2", "n_layer": 1, "n_embd": 8, "n_head": 2})

CASES: dict[str, Case] = {
    # names
    "unknown method": Case(("--method", "lorra", "--task", "mrpc", "--model", "tiny-roberta"), ("unknown method 'lorra'", "'lora'")),
    "unknown task": Case(("--method", "lora", "--task", "mrcp", "--model", "tiny-roberta"), ("unknown task 'mrcp'", "'mrpc'")),
    "unknown model": Case(
        ("--method", "lora", "--task", "mrpc", "--model", "tiny-robrta"), ("unknown model 'tiny-robrta'", "'tiny-roberta'")
    ),
    "missing model folder": Case((*TINY[:4], "--model", "./no/such/model"), ("model folder", "does not exist")),
    "unknown preset": Case((*TINY, "--preset", "rep"), ("unknown preset of lora 'rep'", "'repo'")),
    "preset for another model": Case((*TINY, "--preset", "gpt3-4.7m"), ("preset 'gpt3-4.7m'", "does not apply to tiny-roberta")),
    "generation task on an encoder": Case(("--method", "lora", "--task", "e2e", "--model", "tiny-roberta"), ("no causal-LM head",)),
    # --set
    "--set without =": Case((*TINY, "--set", "r"), ("--set expects key=value",)),
    "--set without a key": Case((*TINY, "--set", "=4"), ("--set expects key=value",)),
    "--set unknown key lists the keys": Case((*TINY, "--set", "nonexistent=1"), ("unknown key 'nonexistent'", "known keys:", "lr")),
    "--set typo suggests": Case((*TINY, "--set", "lrr=1"), ("unknown key 'lrr'", "did you mean 'lr'")),
    "--set dotted typo suggests": Case((*TINY, "--set", "training.lrr=1"), ("did you mean 'training.lr'",)),
    "--set unknown section": Case((*TINY, "--set", "trainig.lr=1"), ("unknown key 'trainig.lr'", "'lr'")),
    "--set wrong type": Case((*TINY, "--set", "r=zero"), ("r: expected int, got 'zero'",)),
    "--set fraction for an int": Case((*TINY, "--set", "r=1.5e0"), ("r: expected int, got '1.5e0'",)),
    "--set overflowing int": Case((*TINY, "--set", "r=1e400"), ("r: expected int",)),
    "--set nan": Case((*TINY, "--set", "lr=nan"), ("lr: expected a finite float",)),
    "--set out of range": Case((*TINY, "--set", "warmup_ratio=1.5"), ("warmup_ratio must be in [0, 1)",)),
    "--epochs 0": Case((*TINY, "--epochs", "0"), ("epochs must be > 0",)),
    "prefix longer than the model": Case(("--method", "prefix_embed", *TINY[2:], "--set", "prefix_len=600"), ("prefix_len",)),
    "no room for a prompt": Case((*TINY_GEN, "--set", "max_new_tokens=1023"), ("leave no room for a prompt",)),
    # model folders
    "model folder without config.json": Case((*TINY[:4], "--model", "{tmp}/model"), ("no config.json",), model_dir(None)),
    "corrupt config.json": Case((*TINY[:4], "--model", "{tmp}/model"), ("config.json", "not valid JSON"), model_dir('{"model_type": ')),
    "config.json not an object": Case((*TINY[:4], "--model", "{tmp}/model"), ("must be a JSON object",), model_dir("[1, 2]")),
    "config.json without model_type": Case((*TINY[:4], "--model", "{tmp}/model"), ("names no model_type",), model_dir("{}")),
    "unsupported architecture": Case(
        (*TINY[:4], "--model", "{tmp}/model"), ("unsupported architecture 't5'",), model_dir('{"model_type": "t5"}')
    ),
    "model folder without weights or tokenizer": Case(
        (*TINY_GEN[:4], "--model", "{tmp}/model", "--data-dir", "sample"), ("--model", "cannot load its"), model_dir(GPT2_CONFIG)
    ),
    # data folders and files
    "missing data dir": Case((*TINY, "--data-dir", "{tmp}/nowhere"), ("no such directory",)),
    "data dir is a file": Case((*TINY, "--data-dir", "{tmp}/file"), ("no such directory",), write("file", "x")),
    "GLUE folder without dev.tsv": Case(
        (*TINY, "--data-dir", "{tmp}/data"), ("missing dev.tsv", "found: test.tsv, train.tsv"), copy_sample("glue", ("MRPC/dev.tsv",))
    ),
    "GLUE folder of another task": Case((*TINY, "--data-dir", "{tmp}/data"), ("holds neither a MRPC/",), copy_sample("e2e")),
    "E2E folder without a train file": Case(
        (*TINY_GEN, "--data-dir", "{tmp}/data"), ("no train split", "trainset.csv", "found only"), copy_sample("e2e", ("trainset.csv",))
    ),
    "E2E folder without a test file": Case(
        (*TINY_GEN, "--data-dir", "{tmp}/data"), ("no test split", "testset_w_refs.csv"), copy_sample("e2e", ("testset_w_refs.csv",))
    ),
    "DART folder without a train file": Case(
        ("--method", "lora", "--task", "dart", "--model", "tiny-gpt2", "--data-dir", "{tmp}/data"),
        ("no train split", "dart-v1.1.1-full-train.json"),
        copy_sample("dart", ("dart-v1.1.1-full-train.json",)),
    ),
    "WebNLG folder without train": Case(
        ("--method", "lora", "--task", "webnlg", "--model", "tiny-gpt2", "--data-dir", "{tmp}/data"),
        ("no train split", "train/"),
        copy_sample("webnlg", ("train",)),
    ),
    "E2E file with a malformed row": Case(
        (*TINY_GEN, "--data-dir", "{tmp}/data"),
        ("trainset.csv, line 3", "expected 2 fields, found 3"),
        write("data/trainset.csv", 'mr,ref\n"name[A]","A is good."\n"name[B]","B.",extra\n', base=copy_sample("e2e", ("trainset.csv",))),
    ),
    "GLUE file with a bad label": Case(
        (*TINY, "--data-dir", "{tmp}/data"),
        ("train.tsv, line 2", "unknown label"),
        write(
            "data/MRPC/train.tsv",
            "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\nmaybe\t1\t2\tA.\tB.\n",
            base=copy_sample("glue", ("MRPC/train.tsv",)),
        ),
    ),
    "DART file that is not JSON": Case(
        ("--method", "lora", "--task", "dart", "--model", "tiny-gpt2", "--data-dir", "{tmp}/data"),
        ("dart-v1.1.1-full-train.json, line 1", "invalid JSON"),
        write("data/dart-v1.1.1-full-train.json", "[{", base=copy_sample("dart", ("dart-v1.1.1-full-train.json",))),
    ),
    # offline: the hub cannot be used and neither a local model nor local data was given
    "offline model": Case(("--method", "lora", "--task", "mrpc"), ("offline options", "--model DIR", "--data-dir DIR")),
    "offline data": Case(
        ("--method", "lora", "--task", "e2e", "--model", "{tmp}/model"),
        ("offline options", "--data-dir DIR", "--model DIR"),
        saved_tiny_gpt2,
    ),
    # other commands
    "show an unknown run": Case(("nope",), ("no record 'nope'",), command="show"),
    "params without a method": Case(("--model", "tiny-gpt2"), ("params needs --method and --model",), command="params"),
    "latency with an unknown method": Case(
        ("--model", "tiny-gpt2", "--methods", "lorra", "--cpu"), ("unknown method 'lorra'",), command="latency"
    ),
    "latency with a run setting in --set": Case(
        ("--model", "tiny-gpt2", "--methods", "lora", "--set", "lr=1e-4"), ("--set lr:", "not training.lr"), command="latency"
    ),
    # out-of-range values that only a library would have caught, after the run started (issue 29: R4, R6)
    "--set seed=-1": Case((*TINY, "--set", "seed=-1"), ("seed must be in 0..4294967295", "-1")),
    "--set seed too large": Case((*TINY, "--set", "seed=1099511627776"), ("seed must be in 0..4294967295",)),
    "--set cls_dropout=5": Case((*TINY, "--set", "cls_dropout=5"), ("cls_dropout must be in [0, 1)",)),
    "garbage model.safetensors": Case(
        (*TINY_GEN[:4], "--model", "{tmp}/model", "--data-dir", "sample"),
        ("--model", "cannot load its weights"),
        write("model/model.safetensors", "not a safetensors file", base=model_dir(GPT2_CONFIG)),
    ),
    "pickled pytorch_model.bin": Case(
        (*TINY_GEN[:4], "--model", "{tmp}/model", "--data-dir", "sample"),
        ("weights are pickled (pytorch_model.bin)", "--trust-pickle"),
        saved_pickled_gpt2,
    ),
    "DART JSON nested too deep": Case(
        ("--method", "lora", "--task", "dart", "--model", "tiny-gpt2", "--data-dir", "{tmp}/data"),
        ("nested too deep",),
        write("data/dart-v1.1.1-full-train.json", "[" * 100_000 + "]" * 100_000, base=copy_sample("dart")),
    ),
    "sweep data_dir of the wrong type": Case(
        ("{tmp}/s.yaml", "--results-dir", "{tmp}/r"), ("data_dir must be a string",), write("s.yaml", SWEEP + "data_dir: 5\n"), "sweep"
    ),
    "sweep report.out of the wrong type": Case(
        ("{tmp}/s.yaml", "--results-dir", "{tmp}/r"), ("out must be a string",), write("s.yaml", SWEEP + "report: {out: 5}\n"), "sweep"
    ),
    "baseline whose records are not objects": Case(
        ("--against", "{tmp}/b.json", "--results-dir", "{tmp}/r"),
        ("record 0", "not a peftbench record"),
        write("b.json", json.dumps({"kind": "baseline", "schema_version": 1, "records": [5]})),
        command="check",
    ),
    "baseline with a string schema_version": Case(
        ("--against", "{tmp}/b.json", "--results-dir", "{tmp}/r"),
        ("schema_version",),
        write("b.json", json.dumps({"kind": "baseline", "schema_version": "2", "records": []})),
        command="check",
    ),
    "latency with a malformed --batch": Case(
        ("--model", "tiny-gpt2", "--methods", "lora", "--batch", "x", "--seq", "8"),
        ("--batch expects comma-separated integers",),
        command="latency",
    ),
}


def argv(case: Case, tmp: Path) -> list[str]:
    return [case.command, *(a.replace("{tmp}", str(tmp)) for a in case.args)]


PROGRESS_BAR = re.compile(r"\d+%\|")  # transformers' own bars while a local model loads


def check(code: int, err: str, case: Case, results: Path) -> None:
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS_BAR.search(line)]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("peftbench: error: "), err
    for fragment in case.says:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert not list(results.rglob("*.json")), "a record was left behind"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_one_line_and_no_record(name, tmp_path, results, capsys, offline):
    case = CASES[name]
    if case.setup:
        case.setup(tmp_path)
        capsys.readouterr()  # the setup's own output
    code = main([*argv(case, tmp_path), *(["--results-dir", str(results)] if case.command in ("run", "show") else [])])
    check(code, capsys.readouterr().err, case, results)


@pytest.mark.parametrize("name", ["E2E folder without a train file", "GLUE folder without dev.tsv", "WebNLG folder without train"])
def test_a_missing_split_fails_before_a_model_is_built_or_a_file_parsed(name, tmp_path, results, capsys, monkeypatch):
    from peftbench.run import plan as run_plan
    from peftbench.tasks import base

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the data folder was checked")

    monkeypatch.setattr(run_plan, "build_model", forbidden)
    monkeypatch.setattr(base, "read_split", forbidden)
    case = CASES[name]
    case.setup(tmp_path)
    check(main([*argv(case, tmp_path), "--results-dir", str(results)]), capsys.readouterr().err, case, results)


def test_a_missing_required_option_is_argparses_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--task", "mrpc"])
    assert exit_.value.code == 2 and "the following arguments are required: --method" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["corrupt config.json", "E2E folder without a train file", "--set unknown key lists the keys"])
def test_the_real_entry_point_prints_no_traceback(name, tmp_path):
    case = CASES[name]
    if case.setup:
        case.setup(tmp_path)
    results = tmp_path / "results"
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "PEFTBENCH_RESULTS": str(results)}
    out = subprocess.run([sys.executable, "-m", "peftbench", *argv(case, tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    check(out.returncode, out.stderr, case, results)
