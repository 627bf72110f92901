"""The linters `make test` runs: ruff (pyflakes, pycodestyle, bugbear, sorted imports, and
ceilings on complexity, statements per function and positional parameters) and
import-linter (the layers of pyproject.toml's ``[tool.importlinter]``: a module imports only
from the layers below its own). Both are pinned in requirements.lock; the configuration is
pyproject.toml's."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (requirements.lock pins it: make test installs it)")
    return found


def _run(*cmd: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing_in_the_package_its_scripts_and_tests():
    r = _run(_tool("ruff"), "check", "--no-cache", "srgan_cli", "scripts", "tests")
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_refuses_a_sixth_positional_parameter_and_a_tangle(tmp_path):
    bad = tmp_path / "srgan_cli" / "bad.py"
    bad.parent.mkdir()
    branches = "".join(f"    if a == {i}:\n        return {i}\n" for i in range(16))
    bad.write_text(f"def six(a, b, c, d, e, f):\n    return a\n\n\ndef tangle(a):\n{branches}"
                   "    return -1\n")
    r = _run(_tool("ruff"), "check", "--no-cache", "--config", str(REPO / "pyproject.toml"),
             str(bad), cwd=tmp_path)
    assert r.returncode == 1
    assert "PLR0917" in r.stdout and "C901" in r.stdout


def test_the_layers_contract_is_kept():
    r = _run(_tool("lint-imports"), "--no-cache")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 kept, 0 broken" in r.stdout


def test_the_layers_contract_breaks_when_a_lower_layer_imports_a_higher_one(tmp_path):
    pkg = tmp_path / "srgan_cli"
    shutil.copytree(REPO / "srgan_cli", pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    rewrite = pkg / "inference" / "rewrite.py"  # a low layer reaching up to the Upscaler
    rewrite.write_text(rewrite.read_text() + textwrap.dedent("""
        def _up():
            from srgan_cli.inference.upscale import Upscaler
            return Upscaler
        """))
    r = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert "srgan_cli.inference.rewrite -> srgan_cli.inference.upscale" in r.stdout
