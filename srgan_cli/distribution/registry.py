"""Resolving ``--model`` to a local weights file.

``--model`` is one of:

* a local ``.safetensors`` path (used as it is);
* ``hf://owner/repo/path/file.safetensors[@revision]`` (``hf://datasets/owner/repo/...``
  for dataset repos): downloaded into the standard Hub cache, checked against the
  content hash the Hub gave for it;
* a registered name: the copy shipped beside its registry when its sha256 matches the
  registry, otherwise the file at the registry's pinned revision from the Hub (standard
  Hub cache), sha256-checked before it is used.

The registry is data. Its ``default`` key names the model ``srgan upscale`` and
``Upscaler`` use when none is given (:func:`default_model`; ``srresnet`` when the key is
absent). An entry's ``parent`` (``{"sha256": ..., "file": ...}``) is the SRResNet a GAN
model was fine-tuned from, copied from the file's metadata by ``register_file``;
``--realism`` finds it by that sha256 (:func:`find_by_sha256`). An entry's ``stage``
(``srresnet``, ``gan``) and ``degradation`` (the ``srgan train --degradation`` spec of a
model trained for real-world photos, ``real,...``; absent for the paper's clean pipeline)
come from the file's metadata too; :func:`real_model_for` picks the model to suggest for
compressed photos by them. An entry whose ``revision`` is null is not published yet: its
``repo_id`` is only the intended publishing target, and the model is served from the
shipped copy alone. ``register_file`` (``srgan models register FILE``) recomputes a file's
sha256, reads its metadata and updates its entry.

Where registries are read (:func:`registry_paths`), later ones adding or overriding names:

1. the package's registry, ``models.json`` among the package data of ``srgan_cli.weights_data``
   (the repository's ``weights/`` folder, mapped into the wheel by ``pyproject.toml``; in a
   source checkout the ``weights/`` folder itself), found with ``importlib.resources``;
2. the user's registry, ``models.json`` in the user's config folder (``click.get_app_dir``:
   ``$XDG_CONFIG_HOME/srgan`` or ``~/.config/srgan`` on Linux, ``~/Library/Application
   Support/srgan`` on macOS, ``%APPDATA%\\srgan`` on Windows), for models the user registers.

``$SRGAN_REGISTRY`` replaces both with one file. A registry's shipped copies are looked up
in its own folder; ``$SRGAN_WEIGHTS_DIR`` moves that folder for every registry.
``register_file`` writes to :func:`registry_path`: ``$SRGAN_REGISTRY``, else the checkout's
``weights/models.json`` when running from a source checkout, else the user's registry (an
installed package's data is never written). All are read at call time. Nothing here
imports torch or huggingface_hub at module level.
"""

from __future__ import annotations

import importlib.resources
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srgan_cli.distribution.hub import HEX40, HEX64, entry_fields
from srgan_cli.errors import ChecksumError, ModelUnavailableError, WeightsError
from srgan_cli.paths import REPO_DIR

DEFAULT_MODEL = "srresnet"  # when the registry names no default
BENCHMARKS = ("Set5", "Set14")


PACKAGE_DATA = "srgan_cli.weights_data"  # the repository's weights/ inside the wheel


def _checkout_weights() -> Path | None:
    """``weights/`` of the source checkout this package is imported from, if it is one."""
    d = REPO_DIR / "weights"
    if (REPO_DIR / "pyproject.toml").is_file() and (d / "models.json").is_file():
        return d
    return None


def package_data_dir() -> Path:
    """The folder of the package's registry and shipped weights: the checkout's ``weights/``
    when running from a source checkout, else the installed ``srgan_cli.weights_data``."""
    found = _checkout_weights()
    if found is not None:
        return found
    try:
        d = importlib.resources.files(PACKAGE_DATA)
    except ModuleNotFoundError:
        raise WeightsError(f"srgan's package data ({PACKAGE_DATA}) is not installed; "
                           "reinstall srgan") from None
    if not isinstance(d, Path):  # e.g. imported from a zip file
        raise WeightsError(f"srgan's package data ({PACKAGE_DATA}) is not a folder on disk "
                           f"({d}); install srgan with pip")
    return d


def user_registry_path() -> Path:
    """The user's registry: ``models.json`` in the user's config folder for srgan."""
    import click

    return Path(click.get_app_dir("srgan")) / "models.json"


def weights_dir() -> Path:
    """Folder of the package's shipped weights (``$SRGAN_WEIGHTS_DIR``, else the package data)."""
    env = os.environ.get("SRGAN_WEIGHTS_DIR")
    return Path(env) if env else package_data_dir()


def registry_paths() -> list[Path]:
    """The registries read, in order (later files add names or override earlier entries):
    ``$SRGAN_REGISTRY`` alone, else the package's registry then the user's."""
    env = os.environ.get("SRGAN_REGISTRY")
    if env:
        return [Path(env)]
    return [package_data_dir() / "models.json", user_registry_path()]


def registry_path() -> Path:
    """The registry ``register`` writes to: ``$SRGAN_REGISTRY``, else the checkout's
    ``weights/models.json`` in a source checkout, else the user's registry."""
    env = os.environ.get("SRGAN_REGISTRY")
    if env:
        return Path(env)
    found = _checkout_weights()
    return found / "models.json" if found is not None else user_registry_path()


def shipped_dir(registry_file: Path | None = None) -> Path:
    """Where shipped copies are looked for: ``$SRGAN_WEIGHTS_DIR``, else the registry's folder."""
    env = os.environ.get("SRGAN_WEIGHTS_DIR")
    if env:
        return Path(env)
    return (registry_file or registry_path()).parent


@dataclass(frozen=True)
class RegistryEntry:
    """One registered model: its architecture's spec (the entry's ``spec`` block), where it
    lives on the Hub, how to verify it."""

    name: str
    filename: str
    spec: Any  # the architecture's own spec (a GeneratorSpec for srresnet)
    arch: str = "srresnet"
    description: str = ""
    repo_id: str | None = None
    revision: str | None = None  # a 40-hex commit; None = not published yet
    sha256: str | None = None  # 64 hex; "TO-BE-FILLED" until the release
    license: str | None = None
    psnr: dict[str, float | None] = field(default_factory=dict)  # Set5/Set14 Y-PSNR (dB)
    parent_sha256: str | None = None  # the SRResNet a GAN model was fine-tuned from
    parent_file: str | None = None
    stage: str | None = None  # the file's training stage (srresnet, gan); None = not recorded
    degradation: str | None = None  # srgan train --degradation of a real model ('real,...')
    registry_file: Path | None = field(default=None, compare=False)  # where it was read

    @property
    def facts(self):
        """The :class:`~srgan_cli.arch.ModelFacts` of the entry's spec."""
        from srgan_cli import arch

        return arch.get(self.arch).describe(self.spec)

    @property
    def scale(self) -> int:
        return self.facts.scale

    @property
    def parameters(self) -> int:
        return self.facts.parameters

    @property
    def published(self) -> bool:
        return bool(self.repo_id and self.revision)

    @property
    def real(self) -> bool:
        """Trained on real-world degradations (``srgan train --degradation real...``)."""
        return bool(self.degradation) and self.degradation != "clean"

    @property
    def verifiable(self) -> bool:
        return bool(self.sha256 and HEX64.fullmatch(self.sha256))

    @property
    def hub_url(self) -> str | None:
        if not self.repo_id:
            return None
        pin = f"@{self.revision}" if self.revision else ""
        return f"hf://{self.repo_id}/{self.filename}{pin}"


def _entry(name: str, raw: Any, where: Path) -> RegistryEntry:
    def bad(msg: str) -> WeightsError:
        return WeightsError(f"{where}: model {name!r}: {msg}")

    if not isinstance(raw, dict):
        raise bad("entry must be an object")
    if "filename" not in raw:
        raise bad("missing 'filename'")
    filename = raw["filename"]
    architecture, spec = _spec(name, raw, where)
    if not isinstance(filename, str) or not filename or "/" in filename or "\\" in filename:
        raise bad(f"bad filename {filename!r}")
    revision = raw.get("revision")
    if revision is not None and not (isinstance(revision, str) and HEX40.fullmatch(revision)):
        raise bad(f"revision must be a 40-hex commit id or null, got {revision!r}")
    repo_id = raw.get("repo_id")
    if repo_id is not None and not (isinstance(repo_id, str) and repo_id.count("/") == 1):
        raise bad(f"repo_id must look like 'owner/name', got {repo_id!r}")
    sha = raw.get("sha256")
    if sha is not None and not isinstance(sha, str):
        raise bad(f"sha256 must be a string, got {sha!r}")
    psnr_raw = raw.get("psnr") or {}
    if not isinstance(psnr_raw, dict):
        raise bad("psnr must be an object like {\"Set5\": 32.05, \"Set14\": 28.49}")
    try:
        psnr = {str(k): (None if v is None else float(v)) for k, v in psnr_raw.items()}
    except (TypeError, ValueError) as e:
        raise bad(f"bad number ({e})") from None
    parent = raw.get("parent")
    if parent is not None and not (isinstance(parent, dict) and isinstance(
            parent.get("sha256"), str) and HEX64.fullmatch(parent["sha256"])):
        raise bad(f"parent must be {{\"sha256\": <64 hex>, \"file\": NAME}} or absent, "
                  f"got {parent!r}")
    for key in ("stage", "degradation"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise bad(f"{key} must be a string or absent, got {raw[key]!r}")
    return RegistryEntry(
        name=name, filename=filename, spec=spec, arch=architecture.name,
        description=str(raw.get("description", "")), repo_id=repo_id, revision=revision,
        sha256=sha.lower() if sha and HEX64.fullmatch(sha.lower()) else sha,
        license=raw.get("license"), psnr=psnr, registry_file=where,
        parent_sha256=parent["sha256"] if parent else None,
        parent_file=str(parent.get("file")) if parent and parent.get("file") else None,
        stage=raw.get("stage"), degradation=raw.get("degradation"),
    )


#: the keys of an entry in the old format, which held SRResNet's spec at its top level
OLD_SPEC_KEYS = ("arch", "scale", "blocks", "width", "channels")


def _spec(name: str, raw: dict[str, Any], where: Path):
    """``(architecture, spec)`` of an entry: its ``spec`` block, or in an entry of the old
    format (users' registries written before the block) its top-level SRResNet keys."""
    from srgan_cli import arch

    what = f"{where}: model {name!r}"
    block = raw.get("spec")
    if block is None:
        if "scale" not in raw:
            raise WeightsError(f"{what}: missing 'spec'")
        block = {k: raw[k] for k in OLD_SPEC_KEYS if k in raw}
    return arch.from_block(block, what)


def registry(path: str | os.PathLike | None = None) -> dict[str, RegistryEntry]:
    """The registered models of ``path``, default of every file in :func:`registry_paths`
    (``{}`` when there is no registry file)."""
    if path is None:
        merged: dict[str, RegistryEntry] = {}
        for p in registry_paths():
            merged.update(registry(p))
        return merged
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path}: unreadable model registry ({e})") from None
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, dict):
        raise WeightsError(f"{path}: model registry has no \"models\" object")
    return {name: _entry(name, e, path) for name, e in models.items()}


def default_model(path: str | os.PathLike | None = None) -> str:
    """The ``default`` model name of ``path``, default of the registries in
    :func:`registry_paths` (the last one that names a default wins, so a user's registry
    can change it); :data:`DEFAULT_MODEL` when none names one."""
    paths = [Path(path)] if path is not None else registry_paths()
    known: set[str] = set()
    name, where = None, None
    for p in paths:  # each registry file read once
        raw = _read_raw(p)
        known.update(raw["models"])
        if raw.get("default") is not None:
            name, where = raw["default"], p
    if name is None:
        return DEFAULT_MODEL
    if not isinstance(name, str) or name not in known:
        raise WeightsError(f"{where}: \"default\" must name a registered model "
                           f"({', '.join(sorted(known)) or 'none'}), got {name!r}")
    return name


def find_by_sha256(sha256: str, path: str | os.PathLike | None = None) -> RegistryEntry | None:
    """The registered model whose file has this sha256, if any."""
    return next((e for e in registry(path).values() if e.sha256 == sha256), None)


def real_models(path: str | os.PathLike | None = None) -> list[RegistryEntry]:
    """The registered models trained for real-world photos (:attr:`RegistryEntry.real`), in
    registry order."""
    return [e for e in registry(path).values() if e.real]


def real_model_for(stage: str | None,
                   path: str | os.PathLike | None = None) -> RegistryEntry | None:
    """The registered real model to suggest in place of a model of training ``stage``: the
    first of the same kind (a GAN model for a GAN model, one without GAN for any other, so
    the suggestion keeps the look the user chose), else the first real model; None when
    none is registered."""
    found = real_models(path)
    same = [e for e in found if (e.stage == "gan") == (stage == "gan")]
    return (same or found or [None])[0]


def lookup(name: str, path: str | os.PathLike | None = None) -> RegistryEntry:
    reg = registry(path)
    if name not in reg:
        known = ", ".join(sorted(reg)) or "none"
        raise WeightsError(f"unknown model {name!r} (registered: {known}; "
                           "or pass a .safetensors path or an hf:// URL)")
    return reg[name]


def shipped_path(entry: RegistryEntry) -> Path:
    return shipped_dir(entry.registry_file) / entry.filename


def check_shipped(entry: RegistryEntry) -> tuple[Path | None, str | None]:
    """``(path, None)`` when the shipped copy exists and matches the registry's sha256;
    ``(None, why-not)`` when it exists but cannot be used; ``(None, None)`` when absent."""
    from srgan_cli.distribution.hub import sha256_file

    f = shipped_path(entry)
    if not f.is_file():
        return None, None
    if not entry.verifiable:
        return None, (f"the shipped {f} cannot be verified (the registry's sha256 for "
                      f"{entry.name!r} is {entry.sha256 or 'missing'!s})")
    found = sha256_file(f)
    if found != entry.sha256:
        return None, (f"the shipped {f} does not match the registry "
                      f"(expected sha256 {entry.sha256}, found {found})")
    return f, None


def local_source(entry: RegistryEntry) -> tuple[str, Path | None, str | None]:
    """Where ``entry`` would come from, without network calls: ``(source, verified local
    path or None, why a local copy is not usable or None)``; the source is ``shipped``,
    ``cached``, ``cached (sha256 mismatch)``, ``remote`` or ``unpublished``."""
    from srgan_cli.distribution import hub

    shipped, problem = check_shipped(entry)
    if shipped is not None:
        return "shipped", shipped, None
    if entry.published:
        cached = hub.cached_file(entry.repo_id, entry.filename, entry.revision)
        if cached is not None and entry.verifiable and hub.sha256_file(cached) == entry.sha256:
            return "cached", cached, None
        if cached is not None:
            return "cached (sha256 mismatch)", None, (
                f"the cached {cached} does not have the registry's sha256")
        return "remote", None, problem
    return ("unpublished (shipped copy unverified)" if problem else "unpublished"), None, problem


def resolve_registered(entry: RegistryEntry, *, force_download: bool = False,
                       use_shipped: bool = True) -> Path:
    """The verified local file for a registered model; downloads it when needed."""
    from srgan_cli.distribution import hub

    where = entry.registry_file or registry_path()
    shipped_problem = None
    if use_shipped:
        found, shipped_problem = check_shipped(entry)
        if found is not None:
            return found
    also = f"; also, {shipped_problem}" if shipped_problem else ""
    if not entry.published:
        if not use_shipped:
            raise ModelUnavailableError(
                f"model {entry.name!r} is not published yet (no pinned revision in "
                f"{where}): there is nothing to download; it is served from "
                f"{shipped_path(entry)} only")
        if shipped_problem:
            raise ModelUnavailableError(
                f"model {entry.name!r}: {shipped_problem}, and the model is not published on "
                f"the Hub yet (no pinned revision in {where}); pass the file with "
                "--model PATH to use it anyway, or, if it replaced the registered file on "
                f"purpose, run `srgan models register {shipped_path(entry)}`")
        raise ModelUnavailableError(
            f"model {entry.name!r} is not published yet (no pinned revision in "
            f"{where}) and no copy ships in {shipped_path(entry).parent}; put the file there, "
            "or pass a .safetensors path with --model")
    if not entry.verifiable:
        raise ChecksumError(
            f"model {entry.name!r}: the registry has no sha256 for it ({entry.sha256!r}), so a "
            f"download from {entry.repo_id} cannot be verified{also}")
    try:
        path = hub.download(entry.repo_id, entry.filename, revision=entry.revision,
                            force=force_download, what=f"model {entry.name!r}",
                            hint=f"srgan models download {entry.name}")
    except WeightsError as e:
        raise type(e)(f"{e}{also}") from None
    hub.verify_sha256(path, entry.sha256, what=f"model {entry.name!r} ({entry.hub_url})",
                      hint=f"srgan models download {entry.name} --force")
    return path


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A local, verified weights file for a model name, hf:// URL or path.

    Raises :class:`WeightsError` (or a subclass) with a one-line message.
    """
    return resolve_source(name_or_path)[0]


def resolve_source(name_or_path: str | os.PathLike) -> tuple[Path, str | None]:
    """:func:`resolve_model`, and the file's sha256 when it was verified against the
    registry (a registered name), else None."""
    s = str(name_or_path)
    if s.startswith("hf://"):
        from srgan_cli.distribution import hub

        return hub.resolve_hf_url(s), None
    p = Path(s)
    if p.suffix or os.sep in s or "/" in s or p.exists():
        if not p.is_file():
            raise WeightsError(f"{p}: no such weights file")
        return p, None
    entry = lookup(s)
    return resolve_registered(entry), entry.sha256


# --------------------------------------------------------------------------- registering files


def _read_raw(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"models": {}}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path}: unreadable model registry ({e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise WeightsError(f"{path}: model registry has no \"models\" object")
    return raw


def _write_raw(path: Path, raw: dict[str, Any]) -> None:
    """Write the registry atomically (temporary file in the same folder, then rename)."""
    from srgan_cli.files import atomic_write

    text = json.dumps(raw, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


@dataclass(frozen=True)
class Registered:
    """What :func:`register_file` did: the entry written and notes for the user."""

    name: str
    entry: dict[str, Any]
    registry: Path
    changed: bool  # the file differs from the one registered before (or is new)
    notes: tuple[str, ...]


def register_file(path: str | os.PathLike, name: str | None = None, *,
                  registry_file: str | os.PathLike | None = None,
                  set5: float | None = None, set14: float | None = None,
                  license: str | None = None, description: str | None = None,
                  repo_id: str | None = None, revision: str | None = None,
                  make_default: bool = False) -> Registered:
    """Register (or re-register) a weights file in the registry.

    The file is loaded in full (metadata and every tensor checked), its sha256 computed,
    and the entry ``name`` (default: the entry with the same filename, else the file's
    stem) updated: architecture from the metadata, ``filename``, ``sha256``. When the file
    differs from the registered one, a pinned ``revision`` is cleared (it holds another
    file) unless ``revision`` is given, and the benchmark numbers are replaced: Set5 by
    ``set5`` or the file's ``val_set5_psnr`` metadata, Set14 by ``set14`` or null.
    Other keys (repo_id, licence, description, unknown keys) are kept unless given.
    The entry's ``parent`` comes from the file's ``parent_sha256``/``parent_file``
    metadata, its ``stage`` and ``degradation`` from the file's ``stage`` and
    ``degradation`` (each removed when the file has none). ``make_default`` makes ``name``
    the registry's ``default`` model.
    """
    from srgan_cli.distribution.hub import sha256_file
    from srgan_cli.distribution.loading import load_file

    path = Path(path)
    reg_path = Path(registry_file) if registry_file is not None else registry_path()
    info = load_file(path, ours_only=True)  # refuses anything but a loadable weights file
    if revision is not None and not HEX40.fullmatch(revision):
        raise WeightsError(f"--revision must be a 40-hex commit id, got {revision!r}")
    if repo_id is not None and (repo_id.count("/") != 1 or not all(repo_id.split("/"))):
        raise WeightsError(f"--repo must look like owner/name, got {repo_id!r}")
    raw = _read_raw(reg_path)
    models: dict[str, Any] = raw["models"]
    if name is None:
        name = next((n for n, e in models.items()
                     if isinstance(e, dict) and e.get("filename") == path.name), path.stem)
    old = models.get(name)
    old = dict(old) if isinstance(old, dict) else {}
    sha = sha256_file(path)
    changed = old.get("sha256") != sha

    entry = _described(old, info, path, description=description, repo_id=repo_id)
    entry["revision"], notes = _revision(old, revision, changed)
    entry["sha256"] = sha
    entry["license"] = license if license is not None else old.get("license", "MIT")
    entry["psnr"], more = _psnr(old, info.metadata, changed, set5=set5, set14=set14,
                                path=path)
    notes += more
    entry.pop("parent", None)
    parent, more = _parent(info, models, name)
    if parent is not None:
        entry["parent"] = parent
    notes += more
    _entry(name, entry, reg_path)  # validate before writing
    notes += _where_served(entry, path, reg_path)
    models[name] = entry
    if make_default:
        raw["default"] = name
    _write_raw(reg_path, raw)
    return Registered(name, entry, reg_path, changed, tuple(notes))


def _described(old: dict[str, Any], model, path: Path, *, description: str | None,
               repo_id: str | None) -> dict[str, Any]:
    """``old`` with the file's description, spec block, filename and ``repo_id`` (an
    entry of the old format loses its top-level SRResNet keys)."""
    entry = {k: v for k, v in old.items()
             if k not in (*OLD_SPEC_KEYS, "spec", "stage", "degradation")}
    entry.update(entry_fields(model, path.name,
                              description if description is not None else old.get("description")))
    entry["repo_id"] = repo_id if repo_id is not None else old.get("repo_id")
    return entry


def _revision(old: dict[str, Any], revision: str | None,
              changed: bool) -> tuple[str | None, list[str]]:
    """The entry's pinned revision: the one given, else the old one unless the file
    changed (the old commit holds another file); and a note when it was cleared."""
    if revision is not None:
        return revision, []
    if changed and old.get("revision"):
        return None, [f"revision cleared: {old['revision']} holds another file; publish this "
                      "one with `srgan models publish` and register the new commit"]
    return old.get("revision"), []


def _psnr(old: dict[str, Any], meta: dict, changed: bool, *, set5: float | None,
          set14: float | None, path: Path) -> tuple[dict, list[str]]:
    """The entry's benchmark numbers (kept while the file is the same; else ``set5`` or
    the file's ``val_set5_psnr``, and ``set14`` or null), and notes about them."""
    notes = []
    psnr = dict(old.get("psnr") or {}) if not changed else {}
    if set5 is not None:
        psnr["Set5"] = set5
    elif changed:
        val = meta.get("val_set5_psnr")
        try:
            psnr["Set5"] = round(float(val), 2) if val is not None else None
        except ValueError:
            psnr["Set5"] = None
        if psnr["Set5"] is not None:
            notes.append(f"Set5 PSNR {psnr['Set5']:.2f} dB taken from the file's training "
                         "validation (val_set5_psnr); pass --set5 to override")
    if set14 is not None:
        psnr["Set14"] = set14
    elif changed:
        psnr["Set14"] = None
    if changed and (psnr.get("Set5") is None or psnr.get("Set14") is None):
        notes.append(f"benchmark numbers missing: measure with `srgan benchmark set5 set14 "
                     f"--model {path}` and pass --set5/--set14")
    ordered = {b: psnr.get(b) for b in BENCHMARKS} | {
        k: v for k, v in psnr.items() if k not in BENCHMARKS}
    return ordered, notes


def _parent(info, models: dict[str, Any], name: str) -> tuple[dict | None, list[str]]:
    """The entry's ``parent`` from the file's metadata (None when it names none), and a
    note on whether ``--realism`` can find it."""
    meta = info.metadata
    if meta.get("parent_sha256"):
        found = next((n for n, e in models.items() if n != name and isinstance(e, dict)
                      and e.get("sha256") == meta["parent_sha256"]), None)
        note = (f"parent: {found!r} (sha256 {meta['parent_sha256']})" if found else
                f"its parent ({meta.get('parent_file')}, sha256 {meta['parent_sha256']}) "
                "is not registered: --realism cannot find it until it is")
        return {"sha256": meta["parent_sha256"], "file": meta.get("parent_file")}, [note]
    if info.stage == "gan":
        return None, ["the file names no parent (parent_sha256): --realism cannot use it; "
                      "export it with `srgan models export CHECKPOINT FILE --parent INIT_FILE`"]
    return None, []


def _where_served(entry: dict[str, Any], path: Path, reg_path: Path) -> list[str]:
    """Notes on where the registered name will be served from."""
    notes = []
    expected_at = shipped_dir(reg_path) / path.name
    if not (expected_at.is_file() and expected_at.resolve() == path.resolve()):
        notes.append(f"the shipped copy is looked up as {expected_at}; copy the file there "
                     "(or publish it) for the name to resolve")
    if entry["revision"] is None:
        notes.append("not published yet: served from the shipped copy only"
                     + (f" ({entry['repo_id']} is the intended publishing target)"
                        if entry["repo_id"] else ""))
    return notes
