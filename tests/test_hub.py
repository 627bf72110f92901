"""Models from the Hub: registry resolution of --model, downloads, sha256 verification,
offline use, against a real local HTTP server (tests/hubserver.py), never the internet."""

from pathlib import Path

import pytest
from hubenv import (  # noqa: F401
    FILENAME,
    REPO_ID,
    entry,
    env,
    other_weights,
    published,
    run_cli,
    sha,
    shipped_weights,
    write_registry,
)
from hubserver import hub_server  # noqa: F401  (fixture)

from srgan_cli.distribution.hub import cache_dir, parse_hf_url
from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.registry import register_file, resolve_model
from srgan_cli.errors import ChecksumError, ModelUnavailableError, WeightsError
from srgan_cli.nets.generator import GeneratorSpec

# --------------------------------------------------------------------------- downloads


def test_first_download_then_cache_then_server_stopped(env, tiny_weights):
    data, commit = published(env, tiny_weights)
    path = resolve_model("tiny")
    assert path.read_bytes() == data
    assert Path(env.tmp / "hf" / "hub") in path.parents and path.parent.name == commit
    assert ("GET", f"/{REPO_ID}/resolve/{commit}/{FILENAME}") in env.server.requests
    info = load_file(path, ours_only=True)
    assert info.spec == GeneratorSpec(scale=4, blocks=2, width=8)

    n = env.server.request_count
    assert resolve_model("tiny") == path  # pinned + cached: no network call at all
    assert env.server.request_count == n
    env.server.stop()
    assert resolve_model("tiny").read_bytes() == data
    from srgan_cli import Upscaler

    assert Upscaler("tiny", device="cpu").model.spec.width == 8


def test_offline_mode_uses_cache_and_explains_missing(env, tiny_weights, monkeypatch):
    data, commit = published(env, tiny_weights)
    write_registry(env.registry, tiny=entry(sha(data), commit),
                   missing=entry(sha(data), commit, filename="missing_x4.safetensors"))
    path = resolve_model("tiny")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = env.server.request_count
    assert resolve_model("tiny") == path
    with pytest.raises(ModelUnavailableError) as e:
        resolve_model("missing")
    msg = str(e.value)
    assert "HF_HUB_OFFLINE" in msg and "srgan models download missing" in msg
    assert "\n" not in msg
    assert env.server.request_count == n  # no network call either way


def test_no_network_missing_model_says_how_to_get_it(env, tiny_weights, monkeypatch):
    import huggingface_hub.utils._http as hfhttp

    # with nothing cached, huggingface_hub retries a failed connection with back-off
    # (about 20 s of sleeping); the outcome is the same without the sleeps
    monkeypatch.setattr(hfhttp.time, "sleep", lambda s: None)
    data, commit = published(env, tiny_weights)
    env.server.stop()  # connections are refused from now on
    with pytest.raises(ModelUnavailableError) as e:
        resolve_model("tiny")
    msg = str(e.value)
    assert "not in the local Hub cache" in msg and "cannot be reached" in msg
    assert "srgan models download tiny" in msg and "\n" not in msg


def test_tampered_file_is_refused(env, tiny_weights, other_weights):
    good = tiny_weights.read_bytes()
    bad = other_weights.read_bytes()
    commit = env.server.commit(REPO_ID, {FILENAME: bad})  # the Hub serves something else
    write_registry(env.registry, tiny=entry(sha(good), commit))
    with pytest.raises(ChecksumError) as e:
        resolve_model("tiny")
    msg = str(e.value)
    assert f"expected {sha(good)}" in msg and f"found {sha(bad)}" in msg
    cached = list((env.tmp / "hf" / "hub").rglob(FILENAME))
    assert cached and cached[0].read_bytes() == bad  # refused, but nothing deleted
    with pytest.raises(ChecksumError):  # and refused again from the cache
        resolve_model("tiny")


def test_corrupted_cache_blob_is_refused_for_hf_urls(env, tiny_weights):
    env.server.commit(REPO_ID, {FILENAME: tiny_weights.read_bytes()})
    url = f"hf://{REPO_ID}/{FILENAME}"
    path = resolve_model(url)
    blob = path.resolve()
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    with pytest.raises(ChecksumError, match="corrupt"):
        resolve_model(url)
    assert blob.exists()


def test_revision_pin(env, tiny_weights, other_weights):
    old, new = tiny_weights.read_bytes(), other_weights.read_bytes()
    c1 = env.server.commit(REPO_ID, {FILENAME: old})
    c2 = env.server.commit(REPO_ID, {FILENAME: new})  # main moves on
    write_registry(env.registry, tiny=entry(sha(old), c1))
    assert resolve_model("tiny").read_bytes() == old
    assert resolve_model(f"hf://{REPO_ID}/{FILENAME}@{c1}").read_bytes() == old
    assert resolve_model(f"hf://{REPO_ID}/{FILENAME}").read_bytes() == new
    assert resolve_model(f"hf://{REPO_ID}/{FILENAME}@{c2}").read_bytes() == new


def test_not_found_errors(env, tiny_weights):
    data, commit = published(env, tiny_weights)
    write_registry(env.registry,
                   nofile=entry(sha(data), commit, filename="nope.safetensors"),
                   norev=entry(sha(data), "0" * 40),
                   norepo=entry(sha(data), commit, repo_id="tester/absent"))
    with pytest.raises(ModelUnavailableError, match=r"has no file nope.safetensors .*\(404\)"):
        resolve_model("nofile")
    with pytest.raises(ModelUnavailableError, match="has no revision"):
        resolve_model("norev")
    with pytest.raises(ModelUnavailableError, match="tester/absent not found"):
        resolve_model("norepo")
    with pytest.raises(ModelUnavailableError, match="404"):
        resolve_model(f"hf://{REPO_ID}/other.safetensors")


def test_interrupted_download_resumes_with_range(env, tiny_weights, monkeypatch):
    """Cut off half-way, the download goes on from where it stopped (HTTP Range)."""
    import huggingface_hub.constants as hfc
    import huggingface_hub.file_download as fd

    # huggingface_hub counts bytes per chunk of 10 MB; the test file is 50 kB, so with the
    # default a cut loses the partial chunk and restarts from 0 (no Range at all)
    monkeypatch.setattr(hfc, "DOWNLOAD_CHUNK_SIZE", 4096)
    monkeypatch.setattr(fd.time, "sleep", lambda s: None)  # its retry back-off
    data, commit = published(env, tiny_weights)
    env.server.cut_downloads = 1
    assert resolve_model("tiny").read_bytes() == data
    gets = [p for m, p in env.server.requests if m == "GET"]
    assert gets == [f"/{REPO_ID}/resolve/{commit}/{FILENAME}"] * 2
    assert len(env.server.ranges) == 1
    start = int(env.server.ranges[0].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= len(data) // 2 and start % 4096 == 0


def test_failed_download_leaves_nothing_then_retry_succeeds(env, tiny_weights, monkeypatch):
    import huggingface_hub.file_download as fd

    monkeypatch.setattr(fd.time, "sleep", lambda s: None)  # its retry back-off
    data, _ = published(env, tiny_weights)
    env.server.cut_downloads = 10_000  # every attempt hangs up half-way
    with pytest.raises(ModelUnavailableError, match="download from .* failed"):
        resolve_model("tiny")
    hub_dir = env.tmp / "hf" / "hub"
    assert not [p for p in hub_dir.rglob("*") if p.is_file() and "blobs" in p.parts]
    env.server.cut_downloads = 0
    assert resolve_model("tiny").read_bytes() == data


def test_unpinned_hf_url_falls_back_to_cache_when_server_is_down(env, tiny_weights):
    data = tiny_weights.read_bytes()
    env.server.commit(REPO_ID, {FILENAME: data})
    url = f"hf://{REPO_ID}/{FILENAME}"
    path = resolve_model(url)
    env.server.stop()
    assert resolve_model(url) == path


def test_dataset_repo_url(env, tiny_weights):
    data = tiny_weights.read_bytes()
    env.server.commit("tester/ds", {"w/tiny.safetensors": data}, repo_type="dataset")
    assert resolve_model("hf://datasets/tester/ds/w/tiny.safetensors").read_bytes() == data
    assert any(p.startswith("/datasets/tester/ds/resolve/main/")
               for _, p in env.server.requests)


# --------------------------------------------------------------------------- shipped copies


def test_shipped_copy_is_used_without_network(env, tiny_weights):
    data = tiny_weights.read_bytes()
    (env.shipped / FILENAME).write_bytes(data)
    write_registry(env.registry, tiny=entry(sha(data), None))
    assert resolve_model("tiny") == env.shipped / FILENAME
    assert env.server.request_count == 0


def test_shipped_mismatch_falls_through_to_the_hub(env, tiny_weights, other_weights):
    data, commit = published(env, tiny_weights)
    stale = other_weights.read_bytes()
    (env.shipped / FILENAME).write_bytes(stale)
    path = resolve_model("tiny")
    assert path != env.shipped / FILENAME and path.read_bytes() == data
    assert (env.shipped / FILENAME).read_bytes() == stale  # the user's file is untouched


def test_shipped_mismatch_and_hub_failure_mentions_both(env, tiny_weights, other_weights):
    data, commit = published(env, tiny_weights)
    (env.shipped / FILENAME).write_bytes(other_weights.read_bytes())
    write_registry(env.registry, tiny=entry(sha(data), commit, filename=FILENAME,
                                            repo_id="tester/absent"))
    with pytest.raises(ModelUnavailableError) as e:
        resolve_model("tiny")
    assert "not found" in str(e.value) and "shipped" in str(e.value)
    assert f"expected sha256 {sha(data)}" in str(e.value)


def test_unfilled_sha_and_unpublished(env, tiny_weights):
    (env.shipped / FILENAME).write_bytes(tiny_weights.read_bytes())
    write_registry(env.registry, tiny=entry("TO-BE-FILLED", None),
                   ghost=entry("TO-BE-FILLED", None, filename="ghost.safetensors"))
    with pytest.raises(ModelUnavailableError) as e:
        resolve_model("tiny")
    assert "cannot be verified" in str(e.value) and "not published" in str(e.value)
    with pytest.raises(ModelUnavailableError, match="not published yet"):
        resolve_model("ghost")
    # a path always works
    assert resolve_model(env.shipped / FILENAME) == env.shipped / FILENAME


def test_published_without_sha_is_refused(env, tiny_weights):
    _, commit = published(env, tiny_weights)
    write_registry(env.registry, tiny=entry("TO-BE-FILLED", commit))
    with pytest.raises(ChecksumError, match="cannot be verified"):
        resolve_model("tiny")
    assert env.server.request_count == 0


def test_shipped_copy_changed_after_registering(env):
    f = shipped_weights(env)
    register_file(f, "ship")
    assert resolve_model("ship") == f
    shipped_weights(env, seed=3)  # replaced without registering
    with pytest.raises(ModelUnavailableError) as e:
        resolve_model("ship")
    assert "does not match the registry" in str(e.value)
    assert f"srgan models register {f}" in str(e.value)
    assert f.exists()


# --------------------------------------------------------------------------- URLs


def test_parse_hf_url():
    r = parse_hf_url("hf://o/r/sub/f.safetensors@" + "c" * 40)
    assert (r.repo_id, r.filename, r.revision, r.repo_type) == ("o/r", "sub/f.safetensors",
                                                                "c" * 40, "model")
    assert parse_hf_url("hf://datasets/o/r/f.bin").repo_type == "dataset"
    with pytest.raises(WeightsError):
        parse_hf_url("hf://o/r")


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "h"))
    assert cache_dir() == tmp_path / "h" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


# --------------------------------------------------------------------------- through the commands


def test_upscale_and_benchmark_resolve_through_the_registry(env, tiny_weights, other_weights,
                                                          tmp_path):
    from conftest import photo_like
    from PIL import Image

    data, commit = published(env, tiny_weights)
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(12, 10)).save(src)
    r = run_cli("upscale", src, "-o", tmp_path / "a.png", "--model", "tiny", "--device", "cpu",
                "-q")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (40, 48)
    r = run_cli("upscale", src, "-o", tmp_path / "b.png", "-q", "--device", "cpu",
                "--model", f"hf://{REPO_ID}/{FILENAME}@{commit}")
    assert r.exit_code == 0, r.output

    # a registry entry whose hash the served file does not have: one line, no traceback
    write_registry(env.registry, evil=entry(sha(other_weights.read_bytes()), commit))
    for args in (["upscale", src, "-o", tmp_path / "c.png", "--model", "evil"],
                 ["benchmark", "--speed", "--size", "8x8", "--runs", "1", "--no-gemm",
                  "--model", "evil"],
                 ["upscale", src, "-o", tmp_path / "d.png", "--model", "hf://tester/x"],
                 ["upscale", src, "-o", tmp_path / "e.png", "--model", "nope"]):
        r = run_cli(*args)
        assert r.exit_code == 1, r.output
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "c.png").exists()
    r = run_cli("upscale", src, "-o", tmp_path / "d.png", "--model", "hf://tester/x")
    assert "file.safetensors[@revision]" in r.output  # printed as text, not rich markup
    r = run_cli("upscale", src, "-o", tmp_path / "c.png", "--model", "evil")
    assert f"expected {sha(other_weights.read_bytes())}, found {sha(data)}" in r.output
