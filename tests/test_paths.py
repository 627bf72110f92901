"""Where srgan keeps what it makes: one cache folder, beside the Hub's and torch's."""

from __future__ import annotations

from pathlib import Path

from srgan_cli.bench import hubdata
from srgan_cli.inference.kernels import amx
from srgan_cli.paths import cache_dir


def test_the_kernel_and_benchmark_caches_share_srgan_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SRGAN_DATA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "mine"))
    assert amx.cache_dir() == tmp_path / "mine" / "kernels"
    assert hubdata.cache_root() == tmp_path / "mine" / "benchmark"


def test_without_srgan_cache_dir_the_cache_follows_xdg_cache_home_like_the_hub_cache(
        monkeypatch, tmp_path):
    from srgan_cli.distribution import hub

    for var in ("SRGAN_CACHE_DIR", "SRGAN_DATA_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "srgan"
    assert hubdata.cache_root() == tmp_path / "srgan" / "benchmark"  # was ~/.cache regardless
    assert hub.cache_dir().parent.parent == cache_dir().parent
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "srgan"


def test_srgan_data_cache_still_moves_the_benchmark_sets_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("SRGAN_DATA_CACHE", str(tmp_path / "sets"))
    assert hubdata.cache_root() == tmp_path / "sets"
    assert amx.cache_dir() == tmp_path / "mine" / "kernels"
