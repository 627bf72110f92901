"""The Hugging Face Hub side of models: downloads, sha256 checks, model cards, publishing.

``huggingface_hub`` is imported inside the functions, and the settings it reads once at
import time are read here at call time and passed explicitly: ``HF_ENDPOINT`` (as
``endpoint=``), ``HF_HUB_CACHE``/``HF_HOME`` (as ``cache_dir=``) and ``HF_HUB_OFFLINE``
(as ``local_files_only=``). Errors are raised as :mod:`srgan_cli.errors` exceptions with
one-line messages; nothing here prints.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srgan_cli.errors import ChecksumError, ModelUnavailableError, PublishError, WeightsError
from srgan_cli.paths import offline

DEFAULT_ENDPOINT = "https://huggingface.co"
HEX40 = re.compile(r"[0-9a-f]{40}")  # a git commit (a pinned revision)
HEX64 = re.compile(r"[0-9a-f]{64}")  # a sha256


# --------------------------------------------------------------------------- settings


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (the standard library's streaming file digest)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _git_blob_sha1(path: Path) -> str:
    """The git blob id of a file, streamed (``huggingface_hub.utils.sha.git_hash`` takes
    the whole file as bytes)."""
    h = hashlib.sha1()
    h.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def endpoint() -> str:
    """``$HF_ENDPOINT`` (read now, not at import), default https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def cache_dir() -> Path:
    """The standard Hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``~/.cache/huggingface/hub`` (``$XDG_CACHE_HOME`` respected)."""
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return Path(os.path.expandvars(env)).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = text[0].strip() if text else ""
    return first or type(e).__name__


def _quiet_tqdm():
    """A tqdm class that shows nothing (library code does not print)."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class Quiet(hf_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Quiet


# --------------------------------------------------------------------------- hf:// URLs


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    filename: str
    revision: str | None = None
    repo_type: str = "model"


def parse_hf_url(url: str) -> HubRef:
    """``hf://[datasets/]owner/repo/path/in/repo.safetensors[@revision]``."""
    if not url.startswith("hf://"):
        raise WeightsError(f"{url}: not an hf:// URL")
    rest = url[len("hf://"):]
    revision = None
    if "@" in rest:
        rest, _, revision = rest.rpartition("@")
        if not revision:
            raise WeightsError(f"{url}: empty revision after '@'")
    repo_type = "model"
    if rest.startswith("datasets/"):
        repo_type, rest = "dataset", rest[len("datasets/"):]
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts):
        raise WeightsError(f"{url}: expected hf://owner/repo/path/file.safetensors[@revision]")
    return HubRef("/".join(parts[:2]), "/".join(parts[2:]), revision, repo_type)


# --------------------------------------------------------------------------- downloads


def cached_file(repo_id: str, filename: str, revision: str | None = None,
                repo_type: str = "model") -> Path | None:
    """The file in the local Hub cache, without any network call (``None`` if absent)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache_dir()),
                                   revision=revision, repo_type=repo_type)
    return Path(found) if isinstance(found, str) else None


def download(repo_id: str, filename: str, *, revision: str | None = None,
             repo_type: str = "model", force: bool = False, what: str | None = None,
             hint: str | None = None,
             otherwise: str = "pass a local .safetensors path with --model") -> Path:
    """``hf_hub_download`` into the standard Hub cache; one-line errors.

    With a 40-hex ``revision`` already in the cache, or with ``HF_HUB_OFFLINE=1``, no
    network call is made. ``what`` names the thing in messages; ``hint`` is the command
    that fetches it while online; ``otherwise`` the local alternative a message offers.
    """
    from huggingface_hub import errors as hfe
    from huggingface_hub import hf_hub_download

    what = what or f"{repo_id}/{filename}"
    rev = revision or "main"
    is_offline = offline()
    local_hint = (f"run `{hint}` while online, or " if hint else "download it while online, or ")
    local_hint += otherwise
    if force and is_offline:
        raise ModelUnavailableError(f"{what}: cannot re-download with HF_HUB_OFFLINE set")
    quiet = {"tqdm_class": _quiet_tqdm()} if "tqdm_class" in inspect.signature(
        hf_hub_download).parameters else {}  # older huggingface_hub: its default bar
    try:
        path = hf_hub_download(
            repo_id, filename, revision=revision, repo_type=repo_type,
            cache_dir=str(cache_dir()), endpoint=endpoint(), local_files_only=is_offline,
            force_download=force, **quiet,
        )
    except hfe.LocalEntryNotFoundError as e:
        if is_offline:
            why = "HF_HUB_OFFLINE is set"
        else:
            cause = e.__cause__ or e.__context__
            why = f"{endpoint()} cannot be reached ({_one_line(cause) if cause else 'offline?'})"
        raise ModelUnavailableError(
            f"{what} is not in the local Hub cache ({cache_dir()}) and {why}; {local_hint}"
        ) from None
    except hfe.EntryNotFoundError:
        raise ModelUnavailableError(
            f"{what}: {repo_id} has no file {filename} at revision {rev} (404)") from None
    except hfe.RevisionNotFoundError:
        raise ModelUnavailableError(f"{what}: {repo_id} has no revision {rev!r}") from None
    except hfe.RepositoryNotFoundError:
        raise ModelUnavailableError(
            f"{what}: Hub repository {repo_id} not found at {endpoint()} (private or gated "
            "repos need a token: `hf auth login` or $HF_TOKEN)") from None
    except hfe.HfHubHTTPError as e:
        raise ModelUnavailableError(f"{what}: download from {endpoint()} failed "
                                    f"({_one_line(e)})") from None
    except (OSError, ValueError) as e:
        raise ModelUnavailableError(f"{what}: download from {endpoint()} failed "
                                    f"({_one_line(e)})") from None
    except Exception as e:  # transport errors of the HTTP client (not OSError subclasses)
        if type(e).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore", "requests",
                                                    "urllib3", "huggingface_hub"):
            raise
        raise ModelUnavailableError(f"{what}: download from {endpoint()} failed "
                                    f"({type(e).__name__}: {_one_line(e)})") from None
    return Path(path)


def verify_sha256(path: Path, expected: str, *, what: str, hint: str | None = None) -> None:
    """Refuse ``path`` unless its sha256 is ``expected``. Deletes nothing."""
    found = sha256_file(path)
    if found != expected.lower():
        where = Path(path).resolve()
        raise ChecksumError(
            f"{what}: sha256 mismatch, refusing {path} (expected {expected}, found {found}); "
            f"nothing was deleted: remove {where} and {'run `' + hint + '`' if hint else 'retry'}"
        )


def verify_content_address(path: Path, *, what: str) -> None:
    """Check a cached Hub file against the name of its blob (the ETag the Hub gave it:
    sha256 for LFS files, git blob sha1 otherwise). No-op where the cache holds copies
    instead of links (no blob name to check against)."""
    blob = Path(path).resolve()
    name = blob.name
    if HEX64.fullmatch(name):
        found, algo = sha256_file(blob), "sha256"
    elif HEX40.fullmatch(name):
        found, algo = _git_blob_sha1(blob), "git sha1"
    else:
        return
    if found != name:
        raise ChecksumError(
            f"{what}: the cached file {blob} is corrupt ({algo} expected {name}, found "
            f"{found}); nothing was deleted: remove it and download again")


def resolve_hf_url(url: str, *, force: bool = False) -> Path:
    """Local, verified file for an ``hf://`` URL (downloaded into the Hub cache if needed)."""
    ref = parse_hf_url(url)
    path = download(ref.repo_id, ref.filename, revision=ref.revision, repo_type=ref.repo_type,
                    force=force, what=url, hint=f"srgan models download {url}")
    verify_content_address(path, what=url)
    return path


# --------------------------------------------------------------------------- file metadata




# --------------------------------------------------------------------------- publishing


def _recipe(m: dict[str, str]) -> list[str]:
    """The training recipe, in words, from what the file's metadata records (nothing is
    assumed that the metadata does not say)."""
    stage = m.get("stage", "unknown")
    what = {
        "srresnet": "pixel-wise MSE training of the generator alone (the paper's SRResNet)",
        "gan": "adversarial training with a VGG content loss (the paper's SRGAN)",
        "converted": "converted from another project's checkpoint with `srgan models convert`",
    }.get(stage, f"stage `{stage}`")
    out = [f"- Stage: {what}."]
    if m.get("init"):
        out.append(f"- Started from: {m['init']}.")
    if m.get("iterations"):
        out.append(f"- Iterations: {m['iterations']}"
                   + (f", batch {m['batch']}" if m.get("batch") else "") + ".")
    if m.get("crop"):
        c = int(m["crop"]) if m["crop"].isdigit() else None
        lr = f" (LR {c // int(m.get('scale', 4))}x{c // int(m.get('scale', 4))})" if c else ""
        out.append(f"- Random {m['crop']}x{m['crop']} HR crops{lr}, LR made by antialiased "
                   "bicubic downscaling, flips and 90-degree rotations; Adam "
                   "(`srgan train`).")
    if m.get("data"):
        out.append(f"- Training data: {m['data']}.")
    if m.get("train_seconds"):
        out.append(f"- Training time: {int(float(m['train_seconds'])) / 3600:.1f} h.")
    if m.get("val_set5_psnr"):
        out.append(f"- Set5 Y-PSNR at the last validation: {m['val_set5_psnr']} dB.")
    if stage == "converted" and m.get("source_layout"):
        out.append(f"- Source: {m.get('source_file', '?')} ({m['source_layout']} layout, "
                   f"sha256 {m.get('source_sha256', '?')}).")
    return out


def _arch_keys(meta: dict[str, str]) -> tuple[str, ...]:
    """The metadata keys that describe the network, as its architecture declares them."""
    from srgan_cli import arch

    architecture, spec = arch.from_metadata(meta, "metadata")
    return tuple(k for k in architecture.metadata(spec) if k != "arch")


def model_card(*, name: str, repo_id: str, filename: str, sha256: str, metadata: dict[str, str],
               license: str | None = "mit", psnr: dict[str, float | None] | None = None,
               parameters: int | None = None) -> str:
    """README.md for a model repo: YAML header for the Hub, then what the file is and how
    to use and verify it."""
    m = metadata
    arch_keys = ("arch", *_arch_keys(m))
    lines = (_card_head(name, m, license) + _card_architecture(m, arch_keys, parameters)
             + ["", "## Training", ""] + _recipe(m) + _card_metadata(m, arch_keys)
             + _card_benchmarks(psnr or {}) + _card_use(repo_id, filename, sha256, license))
    return "\n".join(lines)


def _card_head(name: str, m: dict[str, str], license: str | None) -> list[str]:
    """The model card's YAML header for the Hub, title and one-paragraph summary."""
    return [
        "---",
        f"license: {(license or 'other').lower()}",
        "library_name: srgan",
        "pipeline_tag: image-to-image",
        "tags:",
        "- super-resolution",
        "- srresnet",
        "- srgan",
        "- safetensors",
        "---",
        "",
        f"# {name}: {m.get('arch', 'srresnet').upper()} x{m.get('scale', '?')} super-resolution",
        "",
        "Generator of Ledig et al., *Photo-Realistic Single Image Super-Resolution Using a "
        "Generative Adversarial Network* (CVPR 2017), Figure 4, as made by the srgan "
        "project (`srgan` command line). Input: RGB in [0, 1]; output: RGB in [-1, 1].",
    ]


def _card_architecture(m: dict[str, str], arch_keys: tuple[str, ...],
                       parameters: int | None) -> list[str]:
    """The model card's architecture table."""
    lines = ["", "## Architecture", "", "| key | value |", "| --- | --- |"]
    lines += [f"| {k} | {m[k]} |" for k in arch_keys if k in m]
    if parameters:
        lines.append(f"| parameters | {parameters:,} |")
    return lines


def _card_metadata(m: dict[str, str], arch_keys: tuple[str, ...]) -> list[str]:
    """The model card's table of every other metadata key."""
    lines = ["", "Everything the file's metadata records:", "", "| key | value |", "| --- | --- |"]
    skip = {"format", *arch_keys}
    return lines + [f"| {k} | {str(m[k]).replace('|', '/')} |" for k in sorted(m)
                    if k not in skip]


def _card_benchmarks(psnr: dict[str, float | None]) -> list[str]:
    """The model card's Set5/Set14 PSNR table."""
    lines = ["", "## Benchmarks", "",
             "x4, Y channel, 4-pixel border crop (the paper's protocol; `srgan benchmark`).", "",
             "| dataset | PSNR (dB) |", "| --- | --- |"]
    for b in ("Set5", "Set14"):
        v = psnr.get(b)
        lines.append(f"| {b} | {'not measured' if v is None else f'{v:.2f}'} |")
    return lines


def _card_use(repo_id: str, filename: str, sha256: str, license: str | None) -> list[str]:
    """The model card's usage, verification and licence sections."""
    return [
        "",
        "## Use",
        "",
        "```",
        f"srgan upscale photo.jpg --model hf://{repo_id}/{filename}",
        "```",
        "",
        "or register it in `weights/models.json` with the revision printed by "
        "`srgan models publish` and use it by name (`--model NAME`).",
        "",
        "## Verify",
        "",
        f"`{filename}` sha256: `{sha256}`",
        "",
        "```",
        f"sha256sum {filename}",
        "```",
        "",
        "## Licence",
        "",
        f"{license or 'See the repository.'}",
        "",
    ]


def registry_entry(*, name: str, repo_id: str, filename: str, revision: str | None,
                   sha256: str, model, license: str | None,
                   psnr: dict[str, float | None] | None = None,
                   description: str = "") -> dict[str, Any]:
    """The ``models.json`` entry (``{name: {...}}``) for a published file (``model``: it,
    loaded)."""
    psnr = psnr or {}
    fields = entry_fields(model, filename, description)
    return {name: {
        **{k: v for k, v in fields.items() if k not in ("stage", "degradation")},
        "repo_id": repo_id,
        "revision": revision,
        "sha256": sha256,
        "license": license,
        "psnr": {"Set5": psnr.get("Set5"), "Set14": psnr.get("Set14")},
        **{k: v for k, v in fields.items() if k in ("stage", "degradation")},
    }}


def entry_fields(model, filename: str, description: str | None = None) -> dict[str, Any]:
    """What a registry entry says about a loaded weights file ``model`` (a
    :class:`~srgan_cli.model.Model`), written here only: its description (default: the
    architecture, scale, stage and spec in words), its architecture's ``spec`` block, its
    ``filename``, and its ``stage`` and ``degradation`` (a run on the clean pipeline, or a
    file without them, has none)."""
    from srgan_cli import arch

    out = {"description": description or f"{model.arch} x{model.scale} ({model.stage}), "
                                         f"{model.summary}",
           "spec": arch.get(model.arch).spec_block(model.spec),
           "filename": filename}
    meta = model.metadata
    if meta.get("stage"):
        out["stage"] = meta["stage"]
    if meta.get("degradation") and meta["degradation"] != "clean":
        out["degradation"] = meta["degradation"]
    return out


def _publish_failure(e: Exception, repo_id: str) -> str:
    """One line for an upload failure. huggingface_hub wraps a failed LFS upload in a
    RuntimeError whose cause is the HTTP error; the innermost Hub error is reported."""
    from huggingface_hub import errors as hfe

    inner: BaseException = e
    while isinstance(inner, RuntimeError) and inner.__cause__ is not None:
        inner = inner.__cause__
    if not isinstance(inner, (hfe.HfHubHTTPError, OSError, ValueError, RuntimeError)) and \
            type(inner).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore",
                                                         "requests", "urllib3"):
        raise e  # a bug, not a failed upload: keep the traceback
    msg = f"publishing to {repo_id} at {endpoint()} failed ({_one_line(inner)})"
    status = getattr(getattr(inner, "response", None), "status_code", None)
    if status == 401:
        msg += "; a write token is needed: `hf auth login` or $HF_TOKEN"
    elif status == 403:
        msg += f"; check that the token may write to {repo_id}"
    return msg


@dataclass(frozen=True)
class Published:
    entry: dict[str, Any]
    commit: str
    commit_url: str
    card: str


def publish(path: str | os.PathLike, repo_id: str, *, name: str, filename: str | None = None,
            branch: str | None = None, private: bool = False, token: str | None = None,
            license: str | None = "MIT", psnr: dict[str, float | None] | None = None,
            description: str = "", message: str | None = None) -> Published:
    """Upload a weights file plus a generated model card in one commit.

    The file must be one of our generator files (metadata and tensors are checked).
    Returns the registry entry pinned to the new commit, with the file's sha256.
    """
    from srgan_cli.distribution.loading import load_file

    path = Path(path)
    info = load_file(path, ours_only=True)  # full key/shape check before anything leaves
    filename = filename or path.name
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PublishError(f"--repo must look like owner/name, got {repo_id!r}")
    if offline():
        raise PublishError("cannot publish with HF_HUB_OFFLINE set")
    sha = sha256_file(path)
    card = model_card(name=name, repo_id=repo_id, filename=filename, sha256=sha,
                      metadata=info.metadata, license=license, psnr=psnr,
                      parameters=info.parameters)
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    api = HfApi(endpoint=endpoint(), token=token)
    bars_were_off = are_progress_bars_disabled()
    disable_progress_bars()  # library code does not print; restored below
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info_c = api.create_commit(
            repo_id,
            operations=[CommitOperationAdd(path_in_repo=filename, path_or_fileobj=str(path)),
                        CommitOperationAdd(path_in_repo="README.md",
                                           path_or_fileobj=card.encode("utf-8"))],
            commit_message=message or f"Upload {name} ({filename}, sha256 {sha[:12]})",
            revision=branch,
        )
    except Exception as e:
        raise PublishError(_publish_failure(e, repo_id)) from None
    finally:
        if not bars_were_off:
            enable_progress_bars()
    entry = registry_entry(name=name, repo_id=repo_id, filename=filename, revision=info_c.oid,
                           sha256=sha, model=info, license=license, psnr=psnr,
                           description=description)
    return Published(entry, info_c.oid, str(info_c.commit_url), card)
