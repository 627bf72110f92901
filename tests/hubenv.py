"""Shared set-up for the Hub tests: a local Hub-compatible server (tests/hubserver.py),
a private Hub cache, registry and folder of shipped copies per test, and small helpers.

Test modules import the fixtures they use *and* ``hub_server`` (which ``env`` needs)."""

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner
from hubserver import hub_server  # noqa: F401  (fixture)

from srgan_cli.cli import main
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.nets.generator import GeneratorSpec, SRResNet

REPO_ID = "tester/tiny-x4"
FILENAME = "tiny_x4.safetensors"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(sha256, revision, *, repo_id=REPO_ID, filename=FILENAME, **extra):
    return {"description": "tiny test model",
            "spec": {"arch": "srresnet", "scale": 4, "blocks": 2, "width": 8, "channels": 3},
            "filename": filename, "repo_id": repo_id, "revision": revision,
            "sha256": sha256, "license": "MIT", "psnr": {"Set5": 30.5, "Set14": None},
            **extra}


def write_registry(path: Path, **entries) -> None:
    path.write_text(json.dumps({"models": entries}, indent=2), encoding="utf-8")


@pytest.fixture
def env(monkeypatch, tmp_path, hub_server):  # noqa: F811
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setenv("SRGAN_WEIGHTS_DIR", str(shipped))
    monkeypatch.setenv("SRGAN_REGISTRY", str(tmp_path / "models.json"))
    # huggingface_hub reads HF_HUB_DISABLE_XET once, at import (which another test module
    # may have done already): uploads must take the LFS path the test server implements.
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_DISABLE_XET", True)
    return SimpleNamespace(server=hub_server, tmp=tmp_path, shipped=shipped,
                           registry=tmp_path / "models.json")


@pytest.fixture
def other_weights(tmp_path, tiny_spec) -> Path:
    torch.manual_seed(1)
    path = tmp_path / "other.safetensors"
    save_generator(SRResNet(tiny_spec), path, {"stage": "test", "iterations": 1})
    return path


def published(env, tiny_weights, name="tiny"):
    data = tiny_weights.read_bytes()
    commit = env.server.commit(REPO_ID, {FILENAME: data})
    write_registry(env.registry, **{name: entry(sha(data), commit)})
    return data, commit


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def shipped_weights(env, seed=0, val=None, width=8):
    torch.manual_seed(seed)
    path = env.shipped / "ship_x4.safetensors"
    prov = {"stage": "srresnet", "iterations": 10, "batch": "16", "crop": "96"}
    if val is not None:
        prov["val_set5_psnr"] = f"{val:.3f}"
    save_generator(SRResNet(GeneratorSpec(4, 2, width)), path, prov)
    return path
