"""The specs must be found from an installed wheel too, not only from a checkout."""

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to copy the tracked tree")
def test_wheel_installs_into_a_fresh_venv_and_finds_its_specs(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("peftbench-*.whl")
    # system site packages provide torch & co. (already installed); the venv's own peftbench shadows any other
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    install = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = tmp_path / "venv" / "bin" / "peftbench"
    for args in (["ls", "methods"], ["ls", "tasks"], ["validate"]):
        out = subprocess.run(
            [script, *args], cwd=elsewhere, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
        )
        assert out.returncode == 0, out.stderr
        if args[0] == "ls":
            assert str(tmp_path / "venv") in out.stdout and "_specs" in out.stdout  # the wheel's copy, not the checkout's
            assert str(ROOT / args[1]) not in out.stdout
