"""The wheel: what it carries, and that it works installed outside the checkout.

The wheel is built once per session from a copy of the working tree (so stale ``build/``
folders cannot leak into it), offline: ``pip wheel --no-deps --no-build-isolation``. The
throw-away venv reuses the running environment's dependencies through a ``.pth`` file
(reinstalling torch would take minutes) and gets only the wheel, with ``--no-deps``.
These tests are marked ``wheel`` (``pytest -m "not wheel"`` leaves them out); CI runs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
NOT_SOURCE = {".git", ".venv", "build", "dist", "runs", "__pycache__", ".pytest_cache"}
CODE_ALLOWANCE = 1_000_000  # bytes the wheel may hold beyond the shipped weights


def _ignore(folder: str, names: list[str]) -> set[str]:
    out = {n for n in names if n in NOT_SOURCE or n.endswith(".egg-info")}
    if Path(folder).name == "examples":
        out.add("out")
    return out


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("source") / "srgan"
    shutil.copytree(REPO, src, ignore=_ignore)
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                        "--no-build-isolation", "--no-cache-dir", "--disable-pip-version-check",
                        "-q", "-w", str(dist)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = dist.glob("srgan-*.whl")
    return whl


def _version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


@pytest.mark.wheel
def test_the_wheel_holds_the_package_and_its_data_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"srgan_cli", f"srgan-{_version()}.dist-info"}
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".so", ".tmp"))]
    assert "srgan_cli/inference/kernels/amx.c" in names  # compiled on first use on AMX CPUs
    missing = sorted(str(p.relative_to(REPO)) for p in (REPO / "srgan_cli").rglob("*.py")
                     if str(p.relative_to(REPO)) not in names)
    assert not missing, f"packages missing from pyproject.toml's list: {missing}"
    data = sorted(n for n in names if n.startswith("srgan_cli/weights_data/"))
    shipped = sorted(p.name for p in (REPO / "weights").glob("*.safetensors"))
    assert data == sorted(f"srgan_cli/weights_data/{n}"
                          for n in ["__init__.py", "models.json", *shipped])


@pytest.mark.wheel
def test_each_shipped_weights_file_is_in_the_wheel_once_and_matches_the_registry(wheel):
    z = zipfile.ZipFile(wheel)
    weights = [n for n in z.namelist() if n.endswith(".safetensors")]
    assert len(weights) == len(set(Path(n).name for n in weights))
    reg = json.loads(z.read("srgan_cli/weights_data/models.json"))["models"]
    by_file = {e["filename"]: e["sha256"] for e in reg.values()}
    assert weights, "no weights in the wheel"
    for n in weights:  # every weights/*.safetensors is packed: each must be a registered file
        assert Path(n).name in by_file, f"{n} is in the wheel but not in weights/models.json"
        assert hashlib.sha256(z.read(n)).hexdigest() == by_file[Path(n).name], n
    total = sum(p.stat().st_size for p in (REPO / "weights").glob("*.safetensors"))
    assert wheel.stat().st_size < total + CODE_ALLOWANCE


@pytest.mark.wheel
def test_the_wheel_declares_the_console_script_and_the_version(wheel):
    z = zipfile.ZipFile(wheel)
    info = f"srgan-{_version()}.dist-info"
    assert "srgan = srgan_cli.cli:main" in z.read(f"{info}/entry_points.txt").decode()
    assert f"Version: {_version()}" in z.read(f"{info}/METADATA").decode()


@pytest.fixture(scope="session")
def installed(wheel, tmp_path_factory) -> tuple[Path, dict]:
    """A throw-away venv outside the checkout holding only the wheel (dependencies seen
    through a .pth file naming the running environment's site-packages)."""
    root = tmp_path_factory.mktemp("venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib.stdout.strip()) / "srgan_test_deps.pth").write_text("\n".join(deps) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SRGAN_REGISTRY",
                                                            "SRGAN_WEIGHTS_DIR", "VIRTUAL_ENV")}
    env |= {"XDG_CONFIG_HOME": str(root / "config"), "HF_HUB_OFFLINE": "1",
            "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}"}
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                        "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    work = root / "work"  # the current folder: nowhere near the checkout
    work.mkdir()
    return bindir, env | {"_cwd": str(work)}


def _run(installed, *args) -> subprocess.CompletedProcess:
    bindir, env = installed
    env = dict(env)
    cwd = env.pop("_cwd")
    return subprocess.run([str(bindir / args[0]), *args[1:]], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.mark.wheel
def test_the_installed_package_is_imported_from_the_venv_with_its_version(installed):
    r = _run(installed, "python", "-c", "import srgan_cli, srgan_cli.distribution.registry as m; "
             "import importlib.metadata as md; print(srgan_cli.__file__); "
             "print(m.package_data_dir()); print(m.registry_path()); "
             "print(md.files('srgan')[0].locate()); print(srgan_cli.__version__)")
    assert r.returncode == 0, r.stderr
    module, data, writes_to, metadata, version = r.stdout.splitlines()
    venv = str(installed[0].parent)
    assert module.startswith(venv) and data.startswith(venv) and metadata.startswith(venv)
    assert version == _version()
    assert not module.startswith(str(REPO)) and not data.startswith(str(REPO))
    assert writes_to == str(Path(installed[1]["XDG_CONFIG_HOME"]) / "srgan" / "models.json")
    for cmd in (["srgan", "--version"], ["python", "-m", "srgan_cli", "--version"]):
        r = _run(installed, *cmd)
        assert r.returncode == 0 and _version() in r.stdout, (cmd, r.stdout, r.stderr)


@pytest.mark.wheel
def test_the_installed_wheel_upscales_with_the_default_model_and_lists_it(installed, tiny_weights):
    work = Path(installed[1]["_cwd"])
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(work / "in.png")
    r = _run(installed, "srgan", "upscale", "in.png", "-o", "out.png", "-q")
    assert r.returncode == 0, r.stderr
    assert Image.open(work / "out.png").size == (64, 48)

    # a model registered by the user goes to the user's registry, not into site-packages
    r = _run(installed, "srgan", "models", "register", str(tiny_weights), "--name", "mine")
    assert r.returncode == 0, r.stderr
    user_reg = Path(installed[1]["XDG_CONFIG_HOME"]) / "srgan" / "models.json"
    assert "mine" in json.loads(user_reg.read_text())["models"]
    r = _run(installed, "srgan", "models", "list")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert "shipped" in rows["srresnet"]
    assert "unpublished" in rows["mine"]


# --------------------------------------------------------------------------- registry locations


def test_from_a_checkout_the_registry_is_the_checkouts_weights_folder(monkeypatch):
    from srgan_cli.distribution import registry

    monkeypatch.delenv("SRGAN_REGISTRY", raising=False)
    monkeypatch.delenv("SRGAN_WEIGHTS_DIR", raising=False)
    assert registry.package_data_dir() == REPO / "weights"
    assert registry.registry_path() == REPO / "weights" / "models.json"  # register writes here
    assert registry.registry_paths() == [REPO / "weights" / "models.json",
                                       registry.user_registry_path()]


def test_user_registered_models_join_the_shipped_ones_and_their_copies_live_beside_them(
        monkeypatch, tmp_path, tiny_weights):
    from srgan_cli.distribution import registry

    monkeypatch.delenv("SRGAN_REGISTRY", raising=False)
    monkeypatch.delenv("SRGAN_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    user = registry.user_registry_path()
    assert user == tmp_path / "config" / "srgan" / "models.json"
    registry.register_file(tiny_weights, "mine", registry_file=user)
    reg = registry.registry()
    assert reg["srresnet"].registry_file == REPO / "weights" / "models.json"
    assert reg["mine"].registry_file == user
    assert registry.shipped_path(reg["mine"]) == user.parent / tiny_weights.name
    shutil.copy(tiny_weights, user.parent / tiny_weights.name)
    assert registry.resolve_model("mine") == user.parent / tiny_weights.name


def test_srgan_registry_replaces_both_registries(monkeypatch, tmp_path, tiny_weights):
    from srgan_cli.distribution import registry

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    registry.register_file(tiny_weights, "mine", registry_file=registry.user_registry_path())
    monkeypatch.setenv("SRGAN_REGISTRY", str(tmp_path / "only.json"))
    assert registry.registry() == {}
    assert registry.registry_path() == tmp_path / "only.json"


# --------------------------------------------------------------------------- command line


def _readme_block(heading: str) -> list[str]:
    """Command lines (comments dropped, spaces collapsed) of the first code block under
    ``heading`` in the README."""
    text = (REPO / "README.md").read_text()
    block = text.split(heading, 1)[1].split("```", 2)[1]
    return [" ".join(line.split("#")[0].split()) for line in block.splitlines() if line.strip()]


def test_every_upscale_help_example_is_one_of_the_readme_examples():
    from click.testing import CliRunner

    from srgan_cli.cli import main

    r = CliRunner().invoke(main, ["upscale", "--help"], terminal_width=120)
    assert r.exit_code == 0, r.output
    examples = [" ".join(line.split("#")[0].split()) for line in r.output.splitlines()
                if line.strip().startswith("srgan upscale")]
    readme = _readme_block("### `srgan upscale`")
    assert len(examples) >= 5
    assert [e for e in examples if e not in readme] == []


def test_shell_completion_follows_clicks_documented_variable():
    from click.testing import CliRunner

    from srgan_cli.cli import main

    runner = CliRunner()
    script = runner.invoke(main, [], prog_name="srgan", env={"_SRGAN_COMPLETE": "bash_source"})
    assert script.exit_code == 0 and "_srgan_completion" in script.output
    words = runner.invoke(main, [], prog_name="srgan", env={
        "_SRGAN_COMPLETE": "bash_complete", "COMP_WORDS": "srgan mo", "COMP_CWORD": "1"})
    assert words.exit_code == 0 and "plain,models" in words.output.splitlines()
    opts = runner.invoke(main, [], prog_name="srgan", env={
        "_SRGAN_COMPLETE": "bash_complete", "COMP_WORDS": "srgan upscale --ski",
        "COMP_CWORD": "2"})
    assert "plain,--skip-existing" in opts.output.splitlines()
