"""``srgan models export NAME|FILE --onnx OUT.onnx``: the exported graph, run in
onnxruntime, gives what torch gives, at any batch, height and width; bad inputs are
one-line errors. Needs onnx, onnxscript and onnxruntime (pinned in requirements.lock)."""

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from foreign_nets import model_file
from hubenv import run_cli

from srgan_cli.distribution.loading import load_file
from srgan_cli.errors import ExportError
from srgan_cli.inference.onnx_export import CONVENTION, INSTALL, OPSET, export_onnx
from srgan_cli.inference.upscale import Upscaler
from srgan_cli.nets.generator import to_unit_range

# Largest |ONNX - torch| allowed, in [0, 1] units (an 8-bit level is 1/255 = 0.0039);
# measured: under 2.1e-6 for both shipped models and every border (float32 rounding of the
# folded BN and the sub-pixel tail against the network as trained, in onnxruntime 1.32).
TOLERANCE = 1e-4
SIZES = [(1, 17, 23), (2, 9, 32), (1, 2, 3)]  # (batch, height, width): odd, non-square, tiny


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped models exported once (default border): name -> ONNX file."""
    folder = tmp_path_factory.mktemp("onnx")
    files = {}
    for name in ("srresnet", "srgan", "srgan-delattice"):
        r = run_cli("models", "export", name, "--onnx", folder / f"{name}.onnx")
        assert r.exit_code == 0, r.output
        files[name] = folder / f"{name}.onnx"
    return files


def run_onnx(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["sr"], {"lr": x.numpy()})[0]


@pytest.mark.parametrize("name", ["srresnet", "srgan", "srgan-delattice"])
def test_the_onnx_graph_computes_what_srgan_upscale_computes_at_any_size(exported, name):
    up = Upscaler(name, device="cpu", precision="fp32")  # default border, as the export
    torch.manual_seed(0)
    for n, h, w in SIZES:
        x = torch.rand(n, 3, h, w)
        want = up.upscale_tensor(x).numpy()
        got = run_onnx(exported[name], x)
        assert got.shape == (n, 3, 4 * h, 4 * w) and got.dtype == np.float32
        assert np.abs(got - want).max() < TOLERANCE, (name, (n, h, w))
        assert got.min() >= 0.0 and got.max() <= 1.0


def test_with_border_zero_the_graph_is_the_bare_network_as_trained(tmp_path, tiny_weights):
    for border in ("zero", "symmetric"):
        r = run_cli("models", "export", tiny_weights, "--onnx", tmp_path / f"{border}.onnx",
                    "--border", border)
        assert r.exit_code == 0, r.output
    m = load_file(tiny_weights)
    net = m.net
    x = torch.rand(2, 3, 13, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = to_unit_range(net(x), m.output_range).numpy()
    assert np.abs(run_onnx(tmp_path / "zero.onnx", x) - want).max() < TOLERANCE
    # the mirrored border changes the corners: the default export is not the bare network
    assert np.abs(run_onnx(tmp_path / "symmetric.onnx", x) - want).max() > 100 * TOLERANCE
    sym = Upscaler(str(tiny_weights), device="cpu", precision="fp32").upscale_tensor(x)
    assert np.abs(run_onnx(tmp_path / "symmetric.onnx", x) - sym.numpy()).max() < TOLERANCE


def test_the_onnx_file_declares_dynamic_sizes_and_its_convention(exported):
    model = onnx.load(str(exported["srresnet"]))
    onnx.checker.check_model(model)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("lr", "sr")
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) and d for d in (dims[0], *dims[2:]))
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {OPSET}
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["srgan.scale"] == "4" and meta["srgan.convention"] == CONVENTION
    assert meta["srgan.source"] == "srresnet_x4.safetensors" and len(meta["srgan.sha256"]) == 64
    # weights inside the one file: no external data beside it
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert meta["srgan.border"] == "symmetric (12 px)"
    assert sorted(p.name for p in exported["srresnet"].parent.iterdir()) == \
        ["srgan-delattice.onnx", "srgan.onnx", "srresnet.onnx"]


def test_an_existing_file_is_kept_unless_overwrite(tmp_path, tiny_weights):
    out = tmp_path / "tiny.onnx"
    out.write_bytes(b"keep")
    r = run_cli("models", "export", tiny_weights, "--onnx", out)
    assert r.exit_code == 1 and "already exists (use --overwrite)" in r.output
    assert out.read_bytes() == b"keep"
    r = run_cli("models", "export", tiny_weights, "--onnx", out, "--overwrite")
    assert r.exit_code == 0, r.output
    assert onnx.load(str(out)).graph.input[0].name == "lr"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx", "tiny.safetensors"]


def test_a_community_model_exports_and_matches_torch(tmp_path):
    src = model_file(tmp_path, "compact")
    export_onnx(src, tmp_path / "compact.onnx")
    x = torch.rand(1, 3, 13, 22, generator=torch.Generator().manual_seed(2))
    want = Upscaler(str(src), device="cpu", precision="fp32").upscale_tensor(x).numpy()
    assert np.abs(run_onnx(tmp_path / "compact.onnx", x) - want).max() < TOLERANCE


def one_error_line(r) -> str:
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    return lines[0]


def test_bad_inputs_are_one_line_errors(tmp_path, tiny_weights):
    out = tmp_path / "x.onnx"
    assert "no such weights file" in one_error_line(
        run_cli("models", "export", tmp_path / "absent.safetensors", "--onnx", out))
    assert "unknown model 'nosuch'" in one_error_line(
        run_cli("models", "export", "nosuch", "--onnx", out))
    assert "not both" in one_error_line(
        run_cli("models", "export", tiny_weights, tmp_path / "y.safetensors", "--onnx", out))
    assert "--parent, --weights and --recalibrate-bn" in one_error_line(
        run_cli("models", "export", tiny_weights, "--onnx", out, "--weights", "ema"))
    r = run_cli("models", "export", tiny_weights, "--onnx", tmp_path)  # click's usage error
    assert r.exit_code == 2 and "is a directory" in r.output
    with pytest.raises(ExportError, match="is a folder"):
        export_onnx(tiny_weights, tmp_path)
    assert "missing OUT" in one_error_line(run_cli("models", "export", tiny_weights))
    assert "--border is for --onnx" in one_error_line(
        run_cli("models", "export", tiny_weights, tmp_path / "y.safetensors", "--border",
                "zero"))
    with pytest.raises(ExportError, match="unknown border 'wrap'"):
        export_onnx(tiny_weights, out, border="wrap")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model")
    assert "junk.pth" in one_error_line(run_cli("models", "export", junk, "--onnx", out))
    assert not out.exists()


def test_a_network_the_exporter_cannot_trace_is_one_error_naming_the_file(tmp_path,
                                                                          tiny_weights,
                                                                          monkeypatch):
    # what torch.export raises for e.g. SwinIR (shape-dependent Python in its windowing;
    # a real SwinIR takes 20-50 s to be refused on 2 cores), coloured as torch prints it
    def refuse(*args, **kwargs):
        raise RuntimeError("\x1b[96mConstraints violated (height, width)!\x1b[0m For more "
                           "information, run with TORCH_LOGS=\"+dynamic\".\n- Not all values "
                           "of height satisfy the generated guard")

    monkeypatch.setattr(torch.export, "export", refuse)
    out = tmp_path / "tiny.onnx"
    line = one_error_line(run_cli("models", "export", tiny_weights, "--onnx", out))
    assert line.startswith(f"error: {tiny_weights}: ") and "cannot be exported" in line
    assert "Constraints violated (height, width)!" in line and "\x1b" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.safetensors"]


def test_missing_onnx_packages_name_the_install_command(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # find_spec: not installed
    line = one_error_line(run_cli("models", "export", tiny_weights, "--onnx",
                                  tmp_path / "x.onnx"))
    assert "needs onnxscript" in line and INSTALL in line
