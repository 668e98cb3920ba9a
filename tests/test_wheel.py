"""The specs must be found from an installed wheel too, not only from a checkout."""

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dependency_dirs() -> list[str]:
    """The running interpreter's import path, less the checkout.

    The test runs wherever the suite runs: a virtualenv (CI's fresh one, a developer's), or a system
    Python. `--system-site-packages` would expose the *base* interpreter's packages, not this
    environment's, so the new venv is pointed at this environment's directories instead (torch & co.
    are already installed here). They come after the venv's own site-packages, so the wheel's
    peftbench shadows any other copy (an editable install, a `PYTHONPATH` entry); the test checks that.
    """
    keep: list[str] = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.is_dir() and path != ROOT and str(path) not in keep:
            keep.append(str(path))
    return keep


def make_venv(where: Path) -> Path:
    """A venv without pip that sees this environment's packages after its own; returns its python."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True)
    assert purelib.returncode == 0, purelib.stderr
    # plain directory lines: appended to sys.path after the venv's own site-packages, and their own
    # .pth files (an editable peftbench among them) are not processed
    (Path(purelib.stdout.strip()) / "_outer_environment.pth").write_text("\n".join(dependency_dirs()) + "\n")
    return python


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
    python = make_venv(tmp_path / "venv")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = tmp_path / "venv" / "bin" / "peftbench"
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}  # no PYTHONPATH: the checkout must not leak in
    which = [python, "-c", "import peftbench; print(peftbench.__file__)"]
    where = subprocess.run(which, cwd=elsewhere, capture_output=True, text=True, env=env)
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout  # the wheel, not an editable install
    for args in (["ls", "methods"], ["ls", "tasks"], ["validate"]):
        out = subprocess.run([script, *args], cwd=elsewhere, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        if args[0] == "ls":
            assert str(tmp_path / "venv") in out.stdout and "_specs" in out.stdout  # the wheel's copy, not the checkout's
            assert str(ROOT / args[1]) not in out.stdout
