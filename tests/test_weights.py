import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from srgan_cli.distribution import loading
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.distribution.tensorfile import metadata
from srgan_cli.errors import WeightsError
from srgan_cli.nets.generator import GeneratorSpec, SRResNet


def test_round_trip_preserves_weights_and_metadata(tmp_path, tiny_spec):
    torch.manual_seed(3)
    model = SRResNet(tiny_spec).eval()
    path = tmp_path / "m.safetensors"
    save_generator(model, path, {"stage": "srresnet", "iterations": 1234, "data": "x",
                                 "date": "2026-11-22", "val": {"set5": 30.1}})
    info = loading.load_file(path, ours_only=True)
    loaded = info.net
    assert info.spec == tiny_spec and info.stage == "srresnet" and info.iterations == 1234
    assert info.metadata["input_range"] == "0,1" and info.metadata["output_range"] == "-1,1"
    assert json.loads(info.metadata["val"]) == {"set5": 30.1}
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        if a.is_floating_point():
            assert torch.equal(a, b), k
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert not list(tmp_path.glob("*.tmp"))


def test_architecture_comes_from_metadata_not_file_name(tiny_weights, tmp_path):
    misleading = tmp_path / "srresnet_x2_b16.safetensors"
    shutil.copy(tiny_weights, misleading)
    info = loading.load_file(misleading, ours_only=True)
    assert info.spec == GeneratorSpec(scale=4, blocks=2, width=8)


def test_wrong_shape_is_refused_with_the_tensor_named(tiny_weights, tmp_path):
    state = load_file(str(tiny_weights))
    meta = metadata(tiny_weights)
    state["head.conv.weight"] = torch.zeros(8, 3, 3, 3)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=meta)
    with pytest.raises(WeightsError, match=r"head\.conv\.weight.*shape"):
        loading.load_file(bad, ours_only=True)


def test_metadata_disagreeing_with_tensors_is_refused(tiny_weights, tmp_path):
    state = load_file(str(tiny_weights))
    meta = dict(metadata(tiny_weights), blocks="3")
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=meta)
    with pytest.raises(WeightsError, match="missing"):
        loading.load_file(bad, ours_only=True)


def test_missing_and_extra_keys_are_refused(tiny_weights, tmp_path):
    state = load_file(str(tiny_weights))
    meta = metadata(tiny_weights)
    del state["tail.weight"]
    state["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=meta)
    with pytest.raises(WeightsError, match=r"missing 1 tensors.*tail\.weight.*unexpected"):
        loading.load_file(bad, ours_only=True)


def test_file_without_architecture_metadata_is_refused(tiny_weights, tmp_path):
    bad = tmp_path / "nometa.safetensors"
    save_file(load_file(str(tiny_weights)), str(bad))
    with pytest.raises(WeightsError, match="metadata"):
        loading.load_file(bad, ours_only=True)


def test_pickle_is_refused_without_being_unpickled(tmp_path, tiny_spec, monkeypatch):
    path = tmp_path / "model.pth"
    torch.save(SRResNet(tiny_spec).state_dict(), path)

    def boom(*a, **k):  # loading must never reach a pickle loader
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", boom)
    with pytest.raises(WeightsError, match="pickle"):
        loading.load_file(path, ours_only=True)
    legacy = tmp_path / "legacy.safetensors"  # renamed pickle: content decides, not the name
    torch.save({"a": 1}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(WeightsError, match="pickle"):
        loading.load_file(legacy, ours_only=True)


@pytest.mark.parametrize("content", [b"", b"not a weights file at all", b"\x10\x00\x00\x00\x00"])
def test_garbage_is_refused(tmp_path, content):
    path = tmp_path / "g.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="g.safetensors"):
        loading.load_file(path, ours_only=True)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        loading.load_file(tmp_path / "nope.safetensors", ours_only=True)


def test_safetensors_header_length_with_low_byte_0x80_is_not_taken_for_a_pickle(tmp_path):
    import json
    import struct

    from safetensors.torch import load_file

    from srgan_cli.distribution.tensorfile import check_header

    header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    header += b" " * (0x180 - len(header))  # length 384: first byte of the file is 0x80
    path = tmp_path / "odd.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\x80\x3f")
    assert path.read_bytes()[0] == 0x80
    check_header(path)  # no error
    assert load_file(str(path))["x"].item() == 1.0

    pickled = tmp_path / "model.pt"
    import torch

    torch.save({"w": torch.zeros(1)}, pickled, _use_new_zipfile_serialization=False)
    with pytest.raises(WeightsError, match="pickled"):
        check_header(pickled)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError, match="truncated"):
        check_header(truncated)
