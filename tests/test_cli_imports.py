"""Importing the CLI (what `peftbench --help`, `ls`, `show`, `runs` pay before doing anything) stays light:
every command imports torch, transformers, pandas or matplotlib inside its own function, when it runs."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "pandas", "matplotlib")


def heavy_modules_after(code: str) -> list[str]:
    """The heavy top-level packages in `sys.modules` after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return out.stdout.split()


def test_importing_the_cli_imports_nothing_heavy():
    assert heavy_modules_after("import peftbench.cli") == []


def test_building_the_parser_imports_nothing_heavy():
    assert heavy_modules_after("from peftbench.cli import build_parser\nbuild_parser().parse_args(['runs'])") == []


def test_the_display_of_records_imports_nothing_heavy():
    """`peftbench show` and `peftbench runs` format records: no model code involved."""
    assert heavy_modules_after("import peftbench.cli.display") == []


def test_listing_methods_tasks_and_models_imports_nothing_heavy():
    """`peftbench ls` reads the spec files and models.yaml only (presets.py holds what a model source is)."""
    run_ls = "import contextlib, io\nfrom peftbench.cli import main\nwith contextlib.redirect_stdout(io.StringIO()):\n"
    run_ls += "    assert [main(['ls', w]) for w in ('methods', 'tasks', 'models')] == [0, 0, 0]"
    assert heavy_modules_after(run_ls) == []


def test_validating_every_spec_imports_nothing_heavy():
    """`peftbench validate` resolves every spec preset from plain data: method configs (`methods/config.py`),
    presets and `config.json` files, sizes through the ArchSpecs; torch and transformers stay out."""
    run = "import contextlib, io\nfrom peftbench.cli import main\nwith contextlib.redirect_stdout(io.StringIO()) as out:\n"
    run += "    assert main(['validate']) == 0\nassert 'all specs valid' in out.getvalue()"
    assert heavy_modules_after(run) == []


def test_method_configs_import_nothing_heavy():
    modules = "peftbench.methods.config, peftbench.models.arch, peftbench.config.schema, peftbench.models.presets"
    assert heavy_modules_after(f"import {modules}") == []
