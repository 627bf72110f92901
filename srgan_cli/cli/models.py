"""``srgan models ...``: list, download, inspect, register, publish, export, average and convert
models.

Torch and huggingface_hub are imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from srgan_cli.cli.console import error_line, exit_on_error, fail, say
from srgan_cli.cli.options import DEFAULT_BORDER, border_option
from srgan_cli.distribution.layouts import NAMES as LAYOUT_NAMES


def _psnr(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


@click.group("models")
def models() -> None:
    """Registered models: list, download, inspect, register, publish, export, convert,
    average, provenance.

    \b
    A --model value is a registered name, a .safetensors path, or
    hf://owner/repo/file.safetensors[@revision]. Names come from the package's registry
    (its models.json, installed with srgan) and the user's (models.json in the user's
    config folder, e.g. ~/.config/srgan); $SRGAN_REGISTRY replaces both. Registered models
    come from the copy shipped beside their registry when its sha256 matches, else from the
    Hub at the pinned revision (standard Hub cache, sha256-checked). HF_HUB_OFFLINE=1 never
    touches the network.
    """


@models.command("list")
def list_models() -> None:
    """Registered models, where each would come from, and their benchmark numbers."""
    from srgan_cli.distribution.registry import (
        default_model,
        local_source,
        registry,
        registry_paths,
    )
    from srgan_cli.errors import SrganError

    try:
        reg = registry()
        rows = [(e, local_source(e)[0]) for e in reg.values()]  # no network calls
        default = default_model()
    except SrganError as e:
        fail(str(e))
    if not reg:
        say(f"no models registered ({', '.join(map(str, registry_paths()))})")
        return
    head = ("name", "scale", "params", "source", "Set5 PSNR", "Set14 PSNR", "hub", "default")
    table = [head] + [
        (e.name, f"x{e.scale}", f"{e.parameters:,}", src, _psnr(e.psnr.get("Set5")),
         _psnr(e.psnr.get("Set14")), e.hub_url if e.published else "not published",
         "yes" if e.name == default else "")
        for e, src in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


@models.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Download again even if a verified copy exists.")
def download(names, force) -> None:
    """Fetch registered models (or hf:// URLs) into the Hub cache and verify them.

    \b
      srgan models download srresnet
      srgan models download hf://owner/repo/model.safetensors@<commit>
    """
    from srgan_cli.distribution import hub
    from srgan_cli.distribution.registry import check_shipped, lookup, resolve_registered
    from srgan_cli.errors import SrganError

    failed = 0
    for name in names:
        try:
            if name.startswith("hf://"):
                path = hub.resolve_hf_url(name, force=force)
                say(f"{name}: {path}")
                continue
            entry = lookup(name)
            shipped, _ = check_shipped(entry)
            if shipped is not None and not force:
                say(f"{name}: shipped copy {shipped} (sha256 verified); nothing to download")
                continue
            path = resolve_registered(entry, force_download=force, use_shipped=False)
            say(f"{name}: {path} (sha256 {entry.sha256[:12]}... verified)")
        except SrganError as e:
            error_line(str(e))
            failed += 1
    if failed:
        raise SystemExit(1)


@models.command()
@click.argument("model")
def info(model) -> None:
    """Registry entry and/or file metadata of a name, hf:// URL or model file.

    A registered name is shown from local copies only (no download).
    """
    from srgan_cli.distribution.registry import registry, resolve_model

    out: list[tuple[str, str]] = []
    path, known_sha256 = None, None
    with exit_on_error():
        reg = registry()
        looks_like_path = model.startswith("hf://") or "/" in model or Path(model).suffix
        if model in reg and not looks_like_path:
            out, path = _entry_rows(reg[model])
            known_sha256 = reg[model].sha256  # a local copy was verified against it
        else:
            path = resolve_model(model)
        if path is not None:
            out += _file_rows(path, known_sha256)
    w = max(len(k) for k, _ in out)
    for k, v in out:
        click.echo(f"{k.ljust(w)}  {v}")


def _entry_rows(e) -> tuple[list[tuple[str, str]], Path | None]:
    """``models info`` rows of a registry entry, and its local copy (None when none)."""
    from srgan_cli.distribution.registry import default_model, find_by_sha256, local_source

    out = [("name", e.name), ("description", e.description),
                    ("architecture", f"{e.arch} x{e.scale}, {e.facts.summary}"),
                    ("parameters", f"{e.parameters:,}"),
                    ("hub", e.hub_url if e.published else (
                        f"{e.repo_id} (intended publishing target)" if e.repo_id else "-")),
                    ("revision", e.revision or "not published yet"),
                    ("sha256", e.sha256 or "-"), ("licence", e.license or "-"),
                    ("Set5 PSNR", _psnr(e.psnr.get("Set5"))),
                    ("Set14 PSNR", _psnr(e.psnr.get("Set14")))]
    if e.parent_sha256:
        parent = find_by_sha256(e.parent_sha256)
        out.append(("parent", f"{parent.name if parent else 'not registered'} "
                              f"({e.parent_file or '?'}, sha256 {e.parent_sha256})"))
    if e.stage:
        out.append(("stage", e.stage))
    if e.real:
        out.append(("degradation", f"{e.degradation} (trained for real-world photos)"))
    out.append(("default", "yes" if default_model() == e.name else "no"))
    source, path, problem = local_source(e)
    out.append(("source", source))
    if problem:
        out.append(("problem", problem))
    if path is None:
        out.append(("local copy", f"none (get it: srgan models download {e.name})"
                    if e.published else "none"))
    return out, path


def _file_rows(path: Path, sha256: str | None = None) -> list[tuple[str, str]]:
    """``models info`` rows of a model file: size, sha256 (hashed unless already verified
    as ``sha256``), tensors, what it holds, metadata."""
    from srgan_cli.distribution import hub, tensorfile
    from srgan_cli.distribution.loading import facts_of_file
    from srgan_cli.errors import WeightsError

    if Path(path).suffix == ".safetensors" or tensorfile.looks_like_safetensors(path):
        n_tensors, n_params, meta = tensorfile.summary(path)
    else:  # a community .pth/.pt/.ckpt/.bin: torch.load(weights_only=True) only
        from srgan_cli.distribution.community_files import read_state_dict

        state = read_state_dict(path)
        n_tensors, n_params, meta = len(state), sum(t.numel() for t in state.values()), {}
    out = [("file", str(path)), ("size", f"{Path(path).stat().st_size:,} bytes"),
           ("file sha256", sha256 or hub.sha256_file(path)),
           ("tensors", f"{n_tensors} ({n_params:,} values)")]
    try:
        d = facts_of_file(path)
        out.append(("generator", f"{d.arch} x{d.scale}, {d.summary}, "
                                 f"{d.channels} channels"))
    except WeightsError as e:
        out.append(("generator", f"no ({e})"))
    out += [(f"meta.{k}", str(meta[k])) for k in sorted(meta)]
    return out


@models.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Registry name (default: the entry with FILE's "
              "file name, else FILE's stem).")
@click.option("--set5", type=float, default=None, help="Set5 x4 Y-PSNR (dB) (default for a "
              "new file: its val_set5_psnr metadata).")
@click.option("--set14", type=float, default=None, help="Set14 x4 Y-PSNR (dB).")
@click.option("--license", "license_", default=None, help="Licence (default: kept, else MIT).")
@click.option("--description", default=None, help="Description (default: kept).")
@click.option("--repo", "repo_id", default=None, help="Hub repo owner/name (default: kept).")
@click.option("--revision", default=None, help="40-hex commit holding FILE on the Hub "
              "(default: kept if FILE is the registered file, else cleared).")
@click.option("--registry", "registry_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Registry to update (default: $SRGAN_REGISTRY, else "
                                 "weights/models.json in a source checkout, else the user's "
                                 "registry in the config folder).")
@click.option("--default", "make_default", is_flag=True,
              help="Also make it the registry's default model (srgan upscale without --model).")
def register(file, name, set5, set14, license_, description, repo_id, revision,
             registry_file, make_default) -> None:
    """Record FILE's sha256 and architecture in the registry.

    The registry written is $SRGAN_REGISTRY, else weights/models.json when srgan runs from
    its source checkout, else the user's registry (models.json in the config folder, e.g.
    ~/.config/srgan; the installed package is never written). A registered file is looked
    up in that registry's folder.

    Run it whenever a shipped file changes, e.g. after exporting a new model:

    \b
      srgan models register weights/srresnet_x4.safetensors
      srgan models register weights/srresnet_x4.safetensors --set5 DB --set14 DB

    The file is fully loaded first (metadata and tensors checked). A pinned revision is
    cleared when FILE differs from the registered file, since that commit holds another
    file. A GAN model's parent (the SRResNet it was fine-tuned from, which --realism
    blends it with) is copied from the file's metadata. Prints the entry written.
    """
    from srgan_cli.distribution.registry import register_file
    from srgan_cli.errors import SrganError

    try:
        res = register_file(file, name, registry_file=registry_file, set5=set5, set14=set14,
                            license=license_, description=description, repo_id=repo_id,
                            revision=revision, make_default=make_default)
    except SrganError as e:
        fail(str(e))
    what = "registered" if res.changed else "unchanged (same sha256); updated"
    say(f"{res.name}: {what} in {res.registry} (sha256 {res.entry['sha256']})")
    for note in res.notes:
        say(f"note: {note}")
    if make_default:
        say(f"{res.name} is now the default model")
    click.echo(json.dumps({res.name: res.entry}, indent=2))


@models.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--repo", "repo_id", required=True, help="Hub model repo, owner/name (created if "
              "missing).")
@click.option("--name", default=None, help="Registry name for the printed entry (default: the "
              "file's stem).")
@click.option("--filename", default=None, help="File name in the repo (default: FILE's name).")
@click.option("--branch", "--revision", "branch", default=None,
              help="Branch to commit to (default main). The printed entry pins the new commit.")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--license", "license_", default=None,
              help="Licence for the model card and the entry (default: the registered "
                   "entry's, else MIT).")
@click.option("--set5", type=float, default=None, help="Set5 x4 Y-PSNR (dB) for the card "
              "(default: the registered entry's when it is the same file).")
@click.option("--set14", type=float, default=None, help="Set14 x4 Y-PSNR (dB) for the card "
              "(default: as --set5).")
@click.option("--description", default="", help="Description for the registry entry.")
@click.option("--token", default=None, envvar="HF_TOKEN",
              help="Hub token (default: $HF_TOKEN or the saved login).")
def publish(file, repo_id, name, filename, branch, private, license_, set5, set14, description,
            token) -> None:
    """Upload FILE plus a generated model card (README.md) to the Hub in one commit.

    Prints the models.json entry (pinned revision + sha256) to paste into the registry.
    Benchmark numbers: measure with `srgan benchmark set5 set14 --model FILE` first.
    """
    from srgan_cli.distribution import hub
    from srgan_cli.distribution.registry import registry
    from srgan_cli.errors import SrganError

    name = name or file.stem
    try:
        # a registered entry for the same bytes supplies the numbers and licence not given
        known = registry().get(name)
        if known and file.is_file() and known.verifiable and \
                hub.sha256_file(file) == known.sha256:
            set5 = known.psnr.get("Set5") if set5 is None else set5
            set14 = known.psnr.get("Set14") if set14 is None else set14
            license_ = license_ or known.license
            description = description or known.description
        res = hub.publish(file, repo_id, name=name, filename=filename, branch=branch,
                          private=private, token=token, license=license_ or "MIT",
                          psnr={"Set5": set5, "Set14": set14}, description=description)
    except SrganError as e:
        fail(str(e))
    say(f"uploaded {filename or file.name} and README.md to {repo_id}: commit "
         f"{res.commit}; the registry entry for weights/models.json (\"models\"):")
    click.echo(json.dumps(res.entry, indent=2))
    if (filename or file.name) == file.name:
        say("or write it there with: srgan models register "
             f"{file} --name {name} --repo {repo_id} --revision {res.commit}")


@models.command("average")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def average_cmd(out, files, overwrite) -> None:
    """Write the mean of several weights files of one architecture as OUT: e.g. a GAN
    run's checkpoints, exported, whose weights swing from one checkpoint to the next.

    \b
      srgan models average runs/avg.safetensors runs/g_it200.safetensors \\
          runs/g_it300.safetensors runs/g_it400.safetensors

    OUT keeps the first file's provenance and names every file averaged (with its
    sha256) in its metadata, ``averaged_from``.
    """
    from srgan_cli.errors import SrganError
    from srgan_cli.train.export import average

    if out.exists() and not overwrite:
        fail(f"{out}: already exists (use --overwrite)")
    if out.resolve() in {f.resolve() for f in files}:
        fail(f"{out}: is one of the files to average; write the mean elsewhere")
    try:
        meta = average(list(files), out)
    except SrganError as e:
        fail(str(e))
    say(f"averaged {len(files)} files -> {out} ({meta.get('stage', '?')}, up to "
        f"{meta.get('iterations', '?')} iterations)")


@models.command("provenance")
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--init", "init", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The weights file the line of runs started from (e.g. the release it "
              "replaces): metadata init_sha256 / init_file.")
@click.option("--init-note", default=None, help="What came after --init, appended to "
              "init_file after ', then' (e.g. 'runs gr38 and gr39 ...').")
@click.option("--parent", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file --realism blends with: metadata parent_sha256 / parent_file.")
@click.option("--made-by", default=None, help="How the file was made: metadata made_by.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists (OUT may be SRC "
              "or the --init file: their sha256 is taken first).")
def provenance_cmd(src, out, init, init_note, parent, made_by, overwrite) -> None:
    """Write SRC's weights unchanged as OUT with its provenance restated for a release:
    where its line of runs started (--init), its --realism parent (--parent) and how it
    was made (--made-by). Every other metadata entry is kept.

    \b
      srgan models provenance runs/mean.safetensors weights/srgan_real_x4.safetensors \\
          --init weights/srgan_real_x4.safetensors --init-note "runs gr38 and gr39" \\
          --parent weights/srresnet_x4.safetensors --made-by "..." --overwrite
    """
    from srgan_cli.errors import SrganError
    from srgan_cli.train.export import set_provenance

    if out.exists() and not overwrite:
        fail(f"{out}: already exists (use --overwrite)")
    try:
        meta = set_provenance(src, out, init=init, init_note=init_note, parent=parent,
                              made_by=made_by)
    except SrganError as e:
        fail(str(e))
    say(f"wrote {out}: " + "; ".join(
        f"{k} {meta[k]}" for k in ("init_sha256", "parent_file", "parent_sha256")
        if k in meta))


@models.command("export")
@click.argument("source")
@click.argument("out", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--onnx", "onnx_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write SOURCE (a registered name or model file) as this "
              "ONNX file instead (fp32, dynamic batch, height and width; RGB in [0, 1] -> "
              "RGB in [0, 1]); needs pip install 'srgan[onnx]'.")
@click.option("--parent", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The --init file the run started from, for checkpoints made before runs "
              "recorded its sha256 (checked against what the run did record).")
@click.option("--weights", "which", type=click.Choice(["auto", "ema", "model"]), default="auto",
              show_default=True, help="The generator's EMA ('auto': when the run kept one) "
              "or the generator as trained ('model').")
@click.option("--recalibrate-bn", "bn_batches", type=click.IntRange(min=0), default=0,
              show_default=True, help="Recompute the BatchNorm statistics over this many "
              "batches of the run's own data and degradations (seeded), so they fit the "
              "weights written: use it with the EMA, whose kept statistics are those of the "
              "generator (older runs) or an average. Needs the run's training folders.")
@border_option
@click.option("--overwrite", is_flag=True, help="Replace OUT (or the --onnx file) if it exists.")
def export_cmd(source, out, onnx_out, parent, which, bn_batches, border, overwrite) -> None:
    """Write a training checkpoint's generator (its EMA when kept) as a weights file, or a
    model as an ONNX file (--onnx).

    \b
      srgan models export runs/srgan/last.pt weights/srgan_x4.safetensors
      srgan models export runs/srgan/last.pt weights/srgan_x4.safetensors \\
          --parent weights/srresnet_x4.safetensors
      srgan models export srgan --onnx srgan_x4.onnx

    A run started from --init weights names them in the file's metadata (parent_sha256,
    parent_file): --realism blends the file with that parent. Reads the checkpoint only,
    so it is safe beside the run still writing it (checkpoints are replaced atomically).

    With --onnx, SOURCE is a registered name, hf:// URL or model file (ours or a community
    model); the graph takes float32 NCHW RGB in [0, 1] (input "lr") and returns float32
    NCHW RGB in [0, 1], SCALE times larger (output "sr"), in the exact inference form,
    with --border built in: what `srgan upscale --border BORDER` computes, untiled.
    """
    if onnx_out is not None:
        _export_onnx(source, onnx_out, out=out, parent=parent, which=which,
                     bn_batches=bn_batches, border=border, overwrite=overwrite)
        return
    if border != DEFAULT_BORDER:
        fail("--border is for --onnx (a weights file has no border)")
    from srgan_cli.distribution.tensorfile import metadata
    from srgan_cli.errors import SrganError
    from srgan_cli.train.export import export

    checkpoint = Path(source)
    if out is None:
        fail("missing OUT: the weights file to write (or --onnx FILE)")
    if out.exists() and not overwrite:
        fail(f"{out}: already exists (use --overwrite)")
    try:
        export(checkpoint, out, parent=parent, weights=which, bn_batches=bn_batches)
        meta = metadata(out)
    except SrganError as e:
        fail(str(e))
    say(f"exported {checkpoint} -> {out}: {meta.get('stage')}, {meta.get('iterations')} "
         f"iterations" + (f", EMA {meta['ema']}" if "ema" in meta else ""))
    if "parent_sha256" in meta:
        say(f"parent: {meta['parent_file']} (sha256 {meta['parent_sha256']})")
    elif meta.get("stage") == "gan":
        say("note: no parent recorded (the run predates it): --realism cannot use this "
             "file; export again with --parent FILE (the --init file of the run)")


def _export_onnx(source: str, onnx_out: Path, *, out: Path | None, parent: Path | None,
                 which: str, bn_batches: int, border: str, overwrite: bool) -> None:
    """``srgan models export SOURCE --onnx FILE`` (``out``, ``parent``, ``which``: the
    checkpoint export's arguments, refused here)."""
    from srgan_cli.inference.onnx_export import export_onnx

    if out is not None:
        fail(f"give either OUT ({out}) or --onnx FILE, not both")
    if parent is not None or which != "auto" or bn_batches:
        fail("--parent, --weights and --recalibrate-bn choose a training checkpoint's "
             "generator; --onnx exports a model file or registered name")
    with exit_on_error():
        res = export_onnx(source, onnx_out, border=border, overwrite=overwrite)
    say(f"exported {res.source} -> {res.path}: ONNX opset {res.metadata['srgan.opset']}, "
        f"x{res.scale}, border {res.metadata['srgan.border']}, "
        f"{res.path.stat().st_size:,} bytes; {res.metadata['srgan.convention']}")


@models.command()
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--layout", type=click.Choice(["auto", *LAYOUT_NAMES]), default="auto",
              show_default=True, help="Layout of SRC's state dict.")
@click.option("--overwrite", is_flag=True)
def convert(src, dst, layout, overwrite) -> None:
    """Convert an SRResNet state dict from another PyTorch project to a weights file.

    \b
    Read with torch.load(weights_only=True) only (no pickled code runs). Layouts:
      twtygqyy  twtygqyy/pytorch-SRResNet (conv_input, residual.i.{conv1,bn1,conv2,bn2},
                conv_mid, bn_mid, upscale4x.{0,3}, conv_output; LeakyReLU 0.2)
      srgan     our own key names (head, body.i, fuse, up.j, tail)
    Shapes are checked against the rebuilt generator; unknown layouts are refused.
    """
    from srgan_cli.distribution.convert import convert as run
    from srgan_cli.errors import SrganError

    try:
        used, mi = run(src, dst, layout=layout, overwrite=overwrite)
    except SrganError as e:
        fail(str(e))
    say(f"{src} ({used} layout) -> {dst}: x{mi.scale}, {mi.summary}")
