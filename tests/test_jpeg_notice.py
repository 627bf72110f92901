"""JPEG inputs saved at low quality (issue 22): the quality estimated from the quantisation
tables, the registry's record of which models were trained for real-world photos, and
``srgan upscale``'s one notice per batch that names such a model."""

import io
import json

import pytest
import torch
from click.testing import CliRunner
from conftest import photo_like
from PIL import Image

from srgan_cli.cli import main
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.distribution.registry import real_model_for, register_file
from srgan_cli.imageio import imaging
from srgan_cli.imageio.imaging import (
    LOW_JPEG_QUALITY,
    file_jpeg_quality,
    ijg_luma_table,
    jpeg_quality,
)
from srgan_cli.nets.generator import SRResNet

NOTICE = "trained for compressed photos"


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def jpeg_bytes(quality: int, **save) -> bytes:
    b = io.BytesIO()
    Image.fromarray(photo_like(24, 32)).save(b, "JPEG", quality=quality, **save)
    return b.getvalue()


def save_jpeg(path, quality: int, seed: int = 0):
    Image.fromarray(photo_like(20, 24, seed=seed)).save(path, "JPEG", quality=quality)
    return path


# --------------------------------------------------------------------------- estimate


@pytest.mark.parametrize("q", [10, 30, 50, 75, 90, 95])
def test_the_estimate_is_the_quality_pillow_saved_at(q):
    assert jpeg_quality(Image.open(io.BytesIO(jpeg_bytes(q)))) == q


def test_every_quality_from_1_to_100_has_its_own_table_and_is_estimated_exactly():
    assert len({ijg_luma_table(q) for q in range(1, 101)}) == 100
    wrong = [(q, jpeg_quality(Image.open(io.BytesIO(jpeg_bytes(q))))) for q in range(1, 101)]
    assert [(q, e) for q, e in wrong if e != q] == []


def test_pillow_gives_the_tables_in_natural_order():
    # at quality 50 libjpeg writes the standard table itself; zigzag order would start
    # 16, 11, 12, 14, 12, 10
    table = Image.open(io.BytesIO(jpeg_bytes(50))).quantization[0]
    assert list(table[:8]) == [16, 11, 10, 16, 24, 40, 51, 61]
    assert tuple(table) == imaging.IJG_LUMINANCE


def test_grayscale_and_progressive_jpegs_are_estimated_too():
    gray = io.BytesIO()
    Image.fromarray(photo_like(16, 16)).convert("L").save(gray, "JPEG", quality=40)
    assert jpeg_quality(Image.open(gray)) == 40
    assert jpeg_quality(Image.open(io.BytesIO(jpeg_bytes(60, progressive=True)))) == 60


def test_another_encoders_tables_give_the_nearest_ijg_quality():
    table = list(ijg_luma_table(70))
    table[10] += 3  # a camera's own table, close to IJG quality 70
    table[40] -= 2
    b = io.BytesIO()
    Image.fromarray(photo_like(16, 16)).save(b, "JPEG", qtables=[table, table])
    im = Image.open(b)
    assert list(im.quantization[0]) == table
    assert jpeg_quality(im) == 70


def test_non_jpeg_and_unreadable_files_have_no_quality(tmp_path):
    png = tmp_path / "a.png"
    Image.fromarray(photo_like(16, 16)).save(png)
    assert jpeg_quality(Image.open(png)) is None and file_jpeg_quality(png) is None
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really")
    assert file_jpeg_quality(broken) is None
    assert file_jpeg_quality(tmp_path / "absent.jpg") is None
    header_only = tmp_path / "cut.jpg"
    data = jpeg_bytes(30)
    header_only.write_bytes(data[:data.index(b"\xff\xda") + 20])  # tables, no pixels
    assert file_jpeg_quality(header_only) == 30


# --------------------------------------------------------------------------- registry


def weights(path, tiny_spec, **provenance):
    torch.manual_seed(0)
    save_generator(SRResNet(tiny_spec), path, {"stage": "srresnet", "iterations": 1,
                                               **provenance})
    return path


def real_entry(filename, **extra):
    return {"arch": "srresnet", "scale": 4, "blocks": 2, "width": 8, "filename": filename,
            "sha256": "a" * 64, "degradation": "real", **extra}


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """An empty registry of its own (``$SRGAN_REGISTRY``); ``registry(**entries)`` fills it."""
    path = tmp_path / "models.json"
    monkeypatch.setenv("SRGAN_REGISTRY", str(path))

    def write(**entries):
        path.write_text(json.dumps({"models": entries}), encoding="utf-8")
        return path

    write()
    return write


def test_register_copies_the_training_degradation_and_stage_from_the_file(
        tmp_path, tiny_spec, registry):
    reg = registry()
    real = weights(tmp_path / "real.safetensors", tiny_spec,
                   degradation="real,noise_prob=0.5,clean_prob=0.1")
    e = register_file(real, "sr-real", registry_file=reg).entry
    assert e["degradation"] == "real,noise_prob=0.5,clean_prob=0.1" and e["stage"] == "srresnet"
    assert real_model_for("srresnet").name == "sr-real"
    # the same name re-registered with a clean file: no longer a real model
    clean = weights(tmp_path / "real.safetensors", tiny_spec)
    e = register_file(clean, "sr-real", registry_file=reg).entry
    assert "degradation" not in e and real_model_for("srresnet") is None


def test_the_suggested_real_model_is_of_the_kind_in_use(registry):
    registry(clean=dict(real_entry("c.safetensors"), degradation="clean"),
             sr=real_entry("sr.safetensors", stage="srresnet"),
             gan=real_entry("gan.safetensors", stage="gan"))
    assert real_model_for("gan").name == "gan"
    assert real_model_for("srresnet").name == "sr"
    assert real_model_for("bare state dict").name == "sr"
    registry(gan=real_entry("gan.safetensors", stage="gan"))
    assert real_model_for("srresnet").name == "gan"  # the only one there is


def test_a_registry_entry_with_a_degradation_that_is_not_text_is_refused(registry):
    from srgan_cli.distribution.registry import registry as read_registry
    from srgan_cli.errors import WeightsError

    registry(bad=real_entry("b.safetensors", degradation=["real"]))
    with pytest.raises(WeightsError, match="degradation must be a string"):
        read_registry()


# --------------------------------------------------------------------------- the notice


@pytest.fixture
def with_real_model(registry):
    registry(**{"srresnet-real": real_entry("srresnet_real.safetensors", stage="srresnet")})


def notices(r) -> list[str]:
    return [ln for ln in r.stderr.splitlines() if NOTICE in ln]


def test_a_folder_with_two_low_quality_jpegs_gets_one_notice_naming_the_real_model(
        tiny_weights, tmp_path, with_real_model):
    d = tmp_path / "in"
    d.mkdir()
    save_jpeg(d / "a.jpg", 60)
    save_jpeg(d / "b.jpg", 70, seed=1)
    save_jpeg(d / "c.jpg", 95, seed=2)
    Image.fromarray(photo_like(20, 24)).save(d / "d.png")
    r = run_cli("upscale", d, "-o", tmp_path / "out", "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    [line] = notices(r)
    assert f"2 inputs were saved as JPEG below quality {LOW_JPEG_QUALITY}" in line
    assert "a.jpg: ~60" in line and "b.jpg" not in line
    assert "'srresnet-real' model" in line and "(--model srresnet-real)" in line
    assert "4 image(s) upscaled" in r.stderr


def test_one_low_quality_jpeg_is_named_with_its_quality(tiny_weights, tmp_path,
                                                        with_real_model):
    src = save_jpeg(tmp_path / "photo.jpg", 62)
    r = run_cli("upscale", src, "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    [line] = notices(r)
    assert "photo.jpg: saved as JPEG at quality ~62" in line


def test_json_output_stays_json_and_the_notice_goes_to_stderr(tiny_weights, tmp_path,
                                                             with_real_model):
    src = save_jpeg(tmp_path / "photo.jpg", 50)
    r = run_cli("upscale", src, "-m", tiny_weights, "--json")
    assert r.exit_code == 0, r.output
    assert len(notices(r)) == 1
    assert [json.loads(ln) for ln in r.stdout.splitlines()][-1]["summary"]["images"] == 1


@pytest.mark.parametrize("make", ["jpeg95", "jpeg-at-the-threshold", "png", "png-named-jpg"])
def test_no_notice_for_good_jpegs_or_other_formats(tiny_weights, tmp_path, with_real_model,
                                                   make):
    src = tmp_path / ("x.png" if make == "png" else "x.jpg")
    if make.startswith("png"):
        Image.fromarray(photo_like(20, 24)).save(src, "PNG")
    else:
        save_jpeg(src, 95 if make == "jpeg95" else LOW_JPEG_QUALITY)
    r = run_cli("upscale", src, "-o", tmp_path / "out.png", "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    assert notices(r) == []


def test_no_notice_when_no_real_model_is_registered(tiny_weights, tmp_path, registry):
    registry(clean=dict(real_entry("c.safetensors", stage="srresnet"), degradation="clean"))
    src = save_jpeg(tmp_path / "photo.jpg", 40)
    r = run_cli("upscale", src, "-m", tiny_weights)
    assert r.exit_code == 0, r.output
    assert notices(r) == [] and "quality" not in r.stderr


def test_no_notice_when_the_model_in_use_is_a_real_model(tmp_path, tiny_spec, with_real_model):
    model = weights(tmp_path / "mine_real.safetensors", tiny_spec, degradation="real")
    src = save_jpeg(tmp_path / "photo.jpg", 40)
    r = run_cli("upscale", src, "-m", model)
    assert r.exit_code == 0, r.output
    assert notices(r) == []


def test_inputs_skipped_because_their_outputs_exist_get_no_notice(tiny_weights, tmp_path,
                                                                  with_real_model):
    d = tmp_path / "in"
    d.mkdir()
    save_jpeg(d / "a.jpg", 50)
    assert len(notices(run_cli("upscale", d, "-m", tiny_weights))) == 1
    r = run_cli("upscale", d, "-m", tiny_weights)  # the re-run has nothing to do
    assert r.exit_code == 0 and "1 skipped" in r.stderr, r.output
    assert notices(r) == []


def test_quiet_runs_print_no_notice(tiny_weights, tmp_path, with_real_model):
    src = save_jpeg(tmp_path / "photo.jpg", 40)
    r = run_cli("upscale", src, "-m", tiny_weights, "-q")
    assert r.exit_code == 0 and r.output == "", r.output


def test_a_community_model_gets_no_notice_since_how_it_was_trained_is_unknown(
        tiny_weights, tmp_path, with_real_model):
    import dataclasses

    import srgan_cli
    from srgan_cli.batch.pipeline import compressed_inputs_note

    src = save_jpeg(tmp_path / "photo.jpg", 40)
    model = srgan_cli.load(tiny_weights)
    assert "photo.jpg: saved as JPEG at quality ~40" in compressed_inputs_note([src], model)
    bare = model.with_net(model.net, dataclasses.replace(model.provenance, bare=True))
    assert compressed_inputs_note([src], bare) is None
