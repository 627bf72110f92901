"""The model registry (models.json): parsing, validation, the shipped entry and file."""

import pytest
from hubenv import FILENAME, REPO_ID, entry, env, write_registry  # noqa: F401  (env: fixture)
from hubserver import hub_server  # noqa: F401  (fixture)

from srgan_cli.distribution.hub import sha256_file
from srgan_cli.distribution.registry import registry, resolve_model
from srgan_cli.errors import WeightsError


def test_registry_parsing_and_validation(env):
    write_registry(env.registry, tiny=entry("a" * 64, "b" * 40))
    e = registry()["tiny"]
    assert (e.scale, e.spec.blocks, e.spec.width, e.published, e.verifiable) == (4, 2, 8, True, True)
    assert e.hub_url == f"hf://{REPO_ID}/{FILENAME}@{'b' * 40}"
    with pytest.raises(WeightsError, match="unknown model 'nope'"):
        resolve_model("nope")
    write_registry(env.registry, tiny=entry("a" * 64, "main"))
    with pytest.raises(WeightsError, match="40-hex"):
        registry()
    write_registry(env.registry, tiny=entry("a" * 64, None, filename="../x.safetensors"))
    with pytest.raises(WeightsError, match="bad filename"):
        registry()
    env.registry.write_text("{not json", encoding="utf-8")
    with pytest.raises(WeightsError, match="unreadable model registry"):
        resolve_model("tiny")


def test_an_entry_of_the_old_format_with_srresnets_keys_at_its_top_is_still_read(env):
    old = {k: v for k, v in entry("a" * 64, None).items() if k != "spec"}
    old.update(arch="srresnet", scale=2, blocks=3, width=16)  # no channels: 3
    write_registry(env.registry, tiny=old)
    e = registry()["tiny"]
    assert (e.arch, e.scale, e.spec.blocks, e.spec.width, e.spec.channels) == (
        "srresnet", 2, 3, 16, 3)
    assert e == registry_entry_of(env, spec={"arch": "srresnet", "scale": 2, "blocks": 3,
                                             "width": 16})


def registry_entry_of(env, **fields):
    write_registry(env.registry, tiny={**entry("a" * 64, None), **fields})
    return registry()["tiny"]


def test_a_spec_block_with_an_unknown_key_or_architecture_is_refused_naming_the_entry(env):
    with pytest.raises(WeightsError, match=r"model 'tiny': unknown srresnet spec key 'depth'"):
        registry_entry_of(env, spec={"arch": "srresnet", "scale": 4, "depth": 3})
    with pytest.raises(WeightsError, match=r"model 'tiny': unknown architecture 'rrdb'"):
        registry_entry_of(env, spec={"arch": "rrdb", "scale": 4})
    with pytest.raises(WeightsError, match=r"model 'tiny': spec must be an object"):
        registry_entry_of(env, spec=[4, 16, 64])


def test_shipped_registry_has_the_agreed_entry():
    from srgan_cli.paths import REPO_DIR

    e = registry(REPO_DIR / "weights" / "models.json")["srresnet"]
    assert e.repo_id == "srgan-project/srresnet-x4" and e.filename == "srresnet_x4.safetensors"
    assert (e.scale, e.spec.blocks, e.spec.width) == (4, 16, 64) and e.parameters == 1_550_659
    assert e.revision is None or len(e.revision) == 40


def test_shipped_file_matches_its_registry_entry():
    """The file in weights/ is the one the registry names (no hash written here: the
    registry is the record). After replacing the file, re-register it."""
    from srgan_cli.paths import REPO_DIR

    e = registry(REPO_DIR / "weights" / "models.json")["srresnet"]
    f = REPO_DIR / "weights" / e.filename
    if not f.is_file():
        pytest.skip(f"{f} not present")
    assert sha256_file(f) == e.sha256, (
        f"{f} changed since it was registered: run `srgan models register {f}`")




def test_where_a_registered_model_would_come_from_is_told_without_the_network(env, tiny_weights):
    from hubenv import published, sha, shipped_weights

    from srgan_cli.distribution.registry import local_source, resolve_registered

    data, commit = published(env, tiny_weights)
    e = registry()["tiny"]
    assert local_source(e) == ("remote", None, None)
    path = resolve_registered(e)  # downloads into the private Hub cache
    source, local, problem = local_source(e)
    assert (source, problem) == ("cached", None) and local.read_bytes() == data
    local.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # the cached copy goes bad
    source, local, problem = local_source(e)
    assert source == "cached (sha256 mismatch)" and local is None and str(path) in problem
    ship = shipped_weights(env)
    write_registry(env.registry, ship=entry(sha(ship.read_bytes()), None, filename=ship.name))
    assert local_source(registry()["ship"]) == ("shipped", ship, None)
    write_registry(env.registry, ship=entry("a" * 64, None, filename=ship.name))
    source, local, problem = local_source(registry()["ship"])
    assert source.startswith("unpublished") and local is None and problem
