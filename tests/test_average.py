"""``srgan models average``: the mean of several weights files (srgan_cli.train.export.average)."""

import torch
from click.testing import CliRunner
from conftest import trained_looking
from safetensors import safe_open

from srgan_cli.cli import main
from srgan_cli.distribution.hub import sha256_file
from srgan_cli.distribution.loading import load_file
from srgan_cli.distribution.modelfile import save_generator
from srgan_cli.nets.srresnet_spec import GeneratorSpec


def weights(path, spec, seed, iterations):
    save_generator(trained_looking(spec, seed), path,
                   {"stage": "gan", "iterations": iterations, "data": "test"})
    return path


def tensors(path):
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_the_average_is_the_mean_of_every_tensor_and_names_its_files(tmp_path, tiny_spec):
    files = [weights(tmp_path / f"g{i}.safetensors", tiny_spec, i, 100 * i) for i in (1, 2, 3)]
    out = tmp_path / "mean.safetensors"
    res = CliRunner().invoke(main, ["models", "average", str(out), *map(str, files)])
    assert res.exit_code == 0, res.output
    mean, meta = tensors(out)
    ins = [tensors(f)[0] for f in files]
    assert set(mean) == set(ins[0])
    for k, v in mean.items():
        expect = torch.stack([t[k].double() for t in ins]).mean(0).float()
        assert torch.allclose(v, expect, atol=1e-7), k
    assert any(not torch.equal(mean[k], ins[0][k]) for k in mean)
    assert meta["iterations"] == "300" and meta["stage"] == "gan"
    for f in files:
        assert f"{f.name} (sha256 {sha256_file(f)}" in meta["averaged_from"]
    model = load_file(out, ours_only=True)  # a weights file like any other, that runs
    y = model.net(torch.rand(1, 3, 8, 8))
    assert y.shape == (1, 3, 32, 32) and torch.isfinite(y).all()


def test_averaging_refuses_other_architectures_one_file_and_an_existing_output(tmp_path, tiny_spec):
    a = weights(tmp_path / "a.safetensors", tiny_spec, 1, 10)
    b = weights(tmp_path / "b.safetensors", GeneratorSpec(scale=4, blocks=1, width=8), 2, 10)
    out = tmp_path / "mean.safetensors"
    run = CliRunner().invoke
    res = run(main, ["models", "average", str(out), str(a), str(b)])
    assert res.exit_code != 0 and "b.safetensors" in res.output and "cannot be averaged" in res.output
    assert "Traceback" not in res.output and not out.exists()
    res = run(main, ["models", "average", str(out), str(a)])
    assert res.exit_code != 0 and "at least two" in res.output and not out.exists()
    out.write_bytes(b"keep")
    res = run(main, ["models", "average", str(out), str(a), str(a)])
    assert res.exit_code != 0 and "already exists" in res.output and out.read_bytes() == b"keep"
    res = run(main, ["models", "average", str(a), str(a), str(a), "--overwrite"])
    assert res.exit_code != 0 and "one of the files" in res.output
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weights file")
    res = run(main, ["models", "average", str(tmp_path / "m2.safetensors"), str(a), str(bad)])
    assert res.exit_code != 0 and "bad.safetensors" in res.output and "Traceback" not in res.output


def test_provenance_restates_init_parent_and_made_by_and_keeps_the_weights(tmp_path, tiny_spec):
    init = weights(tmp_path / "release.safetensors", tiny_spec, 1, 10)
    parent = weights(tmp_path / "srresnet.safetensors", tiny_spec, 2, 10)
    src = tmp_path / "mean.safetensors"
    save_generator(trained_looking(tiny_spec, 3), src,
                   {"stage": "gan", "iterations": "300", "data": "test", "init": "run start",
                    "parent_file": "cand.safetensors", "parent_sha256": "ab" * 32,
                    "weights_of": "g.safetensors", "averaged_from": "a; b"})
    init_sha = sha256_file(init)
    res = CliRunner().invoke(main, [
        "models", "provenance", str(src), str(init), "--init", str(init),
        "--init-note", "runs gr38 and gr39", "--parent", str(parent),
        "--made-by", "the mean of two checkpoints", "--overwrite"])
    assert res.exit_code == 0, res.output
    out, meta = tensors(init)  # OUT was the --init file: hashed before it was replaced
    ins, _ = tensors(src)
    assert set(out) == set(ins) and all(torch.equal(out[k], ins[k]) for k in out)
    assert meta["init_sha256"] == init_sha and sha256_file(init) != init_sha
    assert meta["init_file"] == "release.safetensors, then runs gr38 and gr39"
    assert meta["parent_file"] == "srresnet.safetensors"
    assert meta["parent_sha256"] == sha256_file(parent)
    assert meta["made_by"] == "the mean of two checkpoints"
    assert meta["averaged_from"] == "a; b" and meta["iterations"] == "300"
    assert "init" not in meta and "weights_of" not in meta
    assert load_file(init, ours_only=True).spec == tiny_spec


def test_provenance_refuses_nothing_to_set_a_foreign_init_and_an_existing_output(tmp_path, tiny_spec):
    src = weights(tmp_path / "a.safetensors", tiny_spec, 1, 10)
    out = tmp_path / "out.safetensors"
    run = CliRunner().invoke
    res = run(main, ["models", "provenance", str(src), str(out)])
    assert res.exit_code != 0 and "nothing to set" in res.output and not out.exists()
    res = run(main, ["models", "provenance", str(src), str(out), "--init-note", "x"])
    assert res.exit_code != 0 and "--init" in res.output and not out.exists()
    bad = tmp_path / "notes.txt"
    bad.write_text("not weights")
    res = run(main, ["models", "provenance", str(src), str(out), "--init", str(bad)])
    assert res.exit_code != 0 and "notes.txt" in res.output and not out.exists()
    assert "Traceback" not in res.output
    out.write_bytes(b"keep")
    res = run(main, ["models", "provenance", str(src), str(out), "--made-by", "x"])
    assert res.exit_code != 0 and "already exists" in res.output and out.read_bytes() == b"keep"
