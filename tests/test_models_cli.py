"""``srgan models list | info | download | register | publish | convert`` against a local
Hub-compatible server (tests/hubserver.py, including its git-LFS upload API)."""

import json

import torch
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

from srgan_cli.distribution.hub import sha256_file
from srgan_cli.distribution.registry import resolve_model
from srgan_cli.nets.generator import GeneratorSpec, SRResNet, count_parameters


def test_cli_list_info_download(env, tiny_weights):
    data, commit = published(env, tiny_weights)
    (env.shipped / "shipped_x4.safetensors").write_bytes(data)
    reg = json.loads(env.registry.read_text())["models"]
    reg["local"] = entry(sha(data), None, filename="shipped_x4.safetensors")
    reg["later"] = entry("TO-BE-FILLED", None, filename="later.safetensors")
    write_registry(env.registry, **reg)

    def rows():
        r = run_cli("models", "list")
        assert r.exit_code == 0, r.output
        return {line.split()[0]: line for line in r.output.splitlines()[1:]}

    listed = rows()
    assert "remote" in listed["tiny"] and "30.50" in listed["tiny"]
    assert f"{count_parameters(SRResNet(GeneratorSpec(4, 2, 8))):,}" in listed["tiny"]
    assert f"hf://{REPO_ID}/{FILENAME}@{commit}" in listed["tiny"]
    assert "shipped" in listed["local"] and "not published" in listed["local"]
    assert "unpublished" in listed["later"]
    assert env.server.request_count == 0  # listing never touches the network

    r = run_cli("models", "download", "tiny")
    assert r.exit_code == 0 and "verified" in r.output
    assert rows()["tiny"].split()[3] == "cached"
    r = run_cli("models", "download", "local")
    assert r.exit_code == 0 and "nothing to download" in r.output
    r = run_cli("models", "download", "later")
    assert r.exit_code == 1 and "not published yet" in r.output

    r = run_cli("models", "info", "tiny")
    assert r.exit_code == 0
    fields = dict(line.split(None, 1) for line in r.output.splitlines() if " " in line)
    assert fields["source"].strip() == "cached" and fields["revision"].strip() == commit
    assert sha(data) in r.output and "meta.stage" in r.output
    assert "x4, 2 blocks, width 8" in r.output
    r = run_cli("models", "info", "later")
    assert r.exit_code == 0 and "intended publishing target" in r.output
    assert "not published yet" in r.output
    r = run_cli("models", "info", tiny_weights)
    assert r.exit_code == 0 and "meta.arch" in r.output and "tensors" in r.output
    r = run_cli("models", "info", env.tmp / "absent.safetensors")
    assert r.exit_code == 1 and "no such" in r.output


def test_cli_download_without_network(env, tiny_weights, monkeypatch):
    import huggingface_hub.utils._http as hfhttp

    monkeypatch.setattr(hfhttp.time, "sleep", lambda s: None)  # its retry back-off
    published(env, tiny_weights)
    env.server.stop()
    r = run_cli("models", "download", "tiny")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and "cannot be reached" in r.output


def test_cli_info_refuses_pickles(env, tmp_path):
    p = tmp_path / "x.safetensors"
    torch.save({"a": torch.zeros(1)}, p)
    r = run_cli("models", "info", p)
    assert r.exit_code == 1 and "pickled" in r.output


def test_cli_info_counts_the_tensors_and_refuses_a_file_cut_short(env, tiny_weights, tmp_path):
    from srgan_cli.nets.generator import GeneratorSpec as Spec

    r = run_cli("models", "info", tiny_weights)
    fields = dict(line.split(None, 1) for line in r.output.splitlines() if " " in line)
    model = SRResNet(Spec(**{k: int(fields[f"meta.{k}"]) for k in ("scale", "blocks", "width",
                                                                      "channels")}))
    floats = [v for v in model.state_dict().values() if v.is_floating_point()]
    assert fields["tensors"].strip() == f"{len(floats)} ({sum(v.numel() for v in floats):,} values)"
    cut = tmp_path / "cut.safetensors"  # the header whole, the tensor data not
    cut.write_bytes(tiny_weights.read_bytes()[:-100])
    r = run_cli("models", "info", cut)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and "cut.safetensors" in r.output


def test_publish_roundtrip(env, tiny_weights):
    """publish -> the printed entry -> resolution by name from the same server."""
    r = run_cli("models", "publish", tiny_weights, "--repo", "tester/pub-x4", "--name", "pub",
                "--filename", "pub_x4.safetensors", "--set5", "31.25", "--token", "hf_test")
    assert r.exit_code == 0, r.output
    out = r.stdout if hasattr(r, "stdout") else r.output
    entry_json = json.loads(out[out.index("{"):])
    e = entry_json["pub"]
    assert e["sha256"] == sha256_file(tiny_weights) and len(e["revision"]) == 40
    assert e["psnr"] == {"Set5": 31.25, "Set14": None} and e["repo_id"] == "tester/pub-x4"
    files = env.server.files("tester/pub-x4", e["revision"])
    assert files["pub_x4.safetensors"] == tiny_weights.read_bytes()
    card = files["README.md"].decode()
    assert card.startswith("---\nlicense: mit\n") and e["sha256"] in card and "31.25" in card
    assert "## Training" in card and "| Set14 | not measured |" in card
    assert len(env.server.commit_payloads) == 1  # file and card in one commit
    # the weights went through git-LFS (batch, PUT, verify); the card inline
    items = {i["value"]["path"]: i["key"] for i in env.server.commit_payloads[0][1:]}
    assert items == {"pub_x4.safetensors": "lfsFile", "README.md": "file"}
    assert ("PUT", f"/_lfs/{e['sha256']}") in env.server.requests
    assert ("POST", f"/_lfs/{e['sha256']}/verify") in env.server.requests

    write_registry(env.registry, **entry_json)
    assert resolve_model("pub").read_bytes() == tiny_weights.read_bytes()


def test_register_rewrites_an_old_format_entry_with_its_spec_block_and_keeps_the_rest(env):
    f = shipped_weights(env, width=16)
    old = {k: v for k, v in entry("a" * 64, None, filename=f.name).items() if k != "spec"}
    old.update(arch="srresnet", scale=4, blocks=2, width=8, channels=3, custom="kept")
    write_registry(env.registry, ship=old)
    r = run_cli("models", "register", f, "--name", "ship")
    assert r.exit_code == 0, r.output
    e = json.loads(env.registry.read_text(encoding="utf-8"))["models"]["ship"]
    assert e["spec"] == {"arch": "srresnet", "scale": 4, "blocks": 2, "width": 16, "channels": 3}
    assert not {"arch", "scale", "blocks", "width", "channels"} & set(e)
    assert e["custom"] == "kept" and e["description"] == "tiny test model"


def test_register_records_hash_and_metadata(env):
    f = shipped_weights(env, val=29.8364)
    write_registry(env.registry, other=entry("a" * 64, None))
    r = run_cli("models", "register", f, "--name", "ship", "--repo", "tester/ship-x4")
    assert r.exit_code == 0, r.output
    e = json.loads(r.stdout)["ship"]
    assert e["sha256"] == sha256_file(f) and e["filename"] == f.name
    assert e["spec"] == {"arch": "srresnet", "scale": 4, "blocks": 2, "width": 8, "channels": 3}
    assert not {"arch", "scale", "blocks", "width"} & set(e)  # SRResNet's keys live in the spec
    assert e["revision"] is None and e["repo_id"] == "tester/ship-x4"
    assert e["psnr"] == {"Set5": 29.84, "Set14": None} and e["license"] == "MIT"
    assert "val_set5_psnr" in r.stderr and "intended publishing target" in r.stderr
    saved = json.loads(env.registry.read_text())["models"]
    assert set(saved) == {"other", "ship"} and saved["ship"] == e
    assert resolve_model("ship") == f  # the shipped copy, verified, no network
    assert env.server.request_count == 0

    # same file again, with a revision and numbers: kept and updated, nothing cleared
    rev = "c" * 40
    r = run_cli("models", "register", f, "--revision", rev, "--set14", "27.5")
    assert r.exit_code == 0, r.output  # the name is found by file name
    e = json.loads(r.stdout)["ship"]
    assert e["revision"] == rev and e["psnr"] == {"Set5": 29.84, "Set14": 27.5}
    assert "unchanged" in r.stderr

    # a new file under the same name: the old pin and numbers no longer apply
    shipped_weights(env, seed=5)
    r = run_cli("models", "register", f)
    assert r.exit_code == 0, r.output
    e2 = json.loads(r.stdout)["ship"]
    assert e2["sha256"] == sha256_file(f) != e["sha256"]
    assert e2["revision"] is None and e2["psnr"] == {"Set5": None, "Set14": None}
    assert "revision cleared" in r.stderr and e2["repo_id"] == "tester/ship-x4"


def test_register_refusals(env, tmp_path, tiny_weights):
    from safetensors.torch import save_file

    write_registry(env.registry)
    before = env.registry.read_text()
    bad = tmp_path / "x.safetensors"
    save_file({"w": torch.zeros(2)}, str(bad))
    for args in ([bad], [tiny_weights, "--revision", "main"], [tiny_weights, "--repo", "x"],
                 [tmp_path / "absent.safetensors"]):
        r = run_cli("models", "register", *args)
        assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
        assert "Traceback" not in r.output
    assert env.registry.read_text() == before


def test_publish_a_registered_file_then_use_it_from_the_hub(env):
    """register -> publish (card numbers from the registry) -> register the commit ->
    without the shipped copy, the name resolves from the Hub at that commit."""
    f = shipped_weights(env)
    run_cli("models", "register", f, "--name", "ship", "--set5", "30.25", "--set14", "27.5",
            "--license", "Apache-2.0")
    r = run_cli("models", "publish", f, "--repo", "tester/ship-x4", "--name", "ship")
    assert r.exit_code == 0, r.output
    e = json.loads(r.stdout)["ship"]
    assert e["psnr"] == {"Set5": 30.25, "Set14": 27.5} and e["license"] == "Apache-2.0"
    card = env.server.files("tester/ship-x4", e["revision"])["README.md"].decode()
    assert "license: apache-2.0" in card and "| Set14 | 27.50 |" in card
    assert "Iterations: 10, batch 16" in card and "96x96 HR crops (LR 24x24)" in card
    cmd = f"srgan models register {f} --name ship --repo tester/ship-x4 --revision {e['revision']}"
    assert cmd in " ".join(r.stderr.split())
    r = run_cli(*cmd.split()[1:])
    assert r.exit_code == 0, r.output
    saved = json.loads(env.registry.read_text())["models"]["ship"]
    assert saved == e
    data = f.read_bytes()
    f.unlink()
    path = resolve_model("ship")
    assert path.read_bytes() == data and e["revision"] in str(path)


def test_publish_again_to_the_same_repo(env, tiny_weights, other_weights):
    args = ["--repo", "tester/twice", "--name", "w", "--filename", "w_x4.safetensors"]
    r1 = run_cli("models", "publish", tiny_weights, *args)
    r2 = run_cli("models", "publish", other_weights, *args)
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    e1, e2 = json.loads(r1.stdout)["w"], json.loads(r2.stdout)["w"]
    assert e1["revision"] != e2["revision"] and e1["sha256"] != e2["sha256"]
    write_registry(env.registry, old=e1, new=e2)
    assert resolve_model("old").read_bytes() == tiny_weights.read_bytes()
    assert resolve_model("new").read_bytes() == other_weights.read_bytes()
    assert "stack" not in r2.output.lower() and "%|" not in r2.output  # no progress bars


def test_publish_failures_are_one_line(env, tiny_weights, monkeypatch):
    import huggingface_hub.utils._http as hfhttp

    monkeypatch.setattr(hfhttp.time, "sleep", lambda s: None)  # its retry back-off
    env.server.require_token = "hf_good"
    r = run_cli("models", "publish", tiny_weights, "--repo", "tester/p", "--token", "hf_bad")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and "hf auth login" in r.output
    env.server.require_token = None
    env.server.reject_uploads = True
    r = run_cli("models", "publish", tiny_weights, "--repo", "tester/p", "--token", "hf_x")
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "403" in r.output
    assert not env.server.commit_payloads  # nothing committed without the file
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = run_cli("models", "publish", tiny_weights, "--repo", "tester/p")
    assert r.exit_code == 1 and "HF_HUB_OFFLINE" in r.output


def test_publish_refuses_non_generator_files(env, tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "x.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    r = run_cli("models", "publish", p, "--repo", "tester/x")
    assert r.exit_code == 1 and "metadata" in r.output
    assert env.server.request_count == 0


def test_cli_convert(env, tmp_path, tiny_weights):
    from srgan_cli.distribution.loading import load_file

    model = load_file(tiny_weights, ours_only=True).net
    src = tmp_path / "sd.pth"
    torch.save({"model": model.state_dict()}, src)
    r = run_cli("models", "convert", src, tmp_path / "out.safetensors")
    assert r.exit_code == 0, r.output
    assert "srgan layout" in r.output and "x4, 2 blocks, width 8" in r.output
    r = run_cli("models", "convert", src, tmp_path / "out.safetensors")
    assert r.exit_code == 1 and "exists" in r.output  # no overwrite without --overwrite
    unknown = tmp_path / "unknown.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, unknown)
    r = run_cli("models", "convert", unknown, tmp_path / "a.safetensors")
    assert r.exit_code == 1 and "unrecognised" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
