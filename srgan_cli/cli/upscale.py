"""``srgan upscale``: images, folders and patterns through a model. The inputs, output names
and checks are :mod:`srgan_cli.batch.plan`'s, the model :class:`srgan_cli.inference.upscale.Upscaler`;
this module parses options and shows progress."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.markup import escape

from srgan_cli.cli.console import (
    Failure,
    Interrupted,
    err,
    error_line,
    exit_on_error,
    fail,
    interrupts,
)
from srgan_cli.cli.options import (
    border_option,
    inference_options,
    model_option,
    parse_shard,
    parse_tile,
)
from srgan_cli.files import remove_temporaries


def _eta_column():
    """A progress column: 'ETA h:mm:ss' once a counted task has progressed, and the rate
    of tasks with a ``unit`` field ('2.31 images/s') after a second."""
    from datetime import timedelta

    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        def render(self, task) -> Text:
            # the mean rate since the start: outcomes arrive in bursts (decode, model and
            # write overlap), so the rate between the last two of them means little
            words = []
            elapsed = task.elapsed or 0.0
            rate = task.completed / elapsed if elapsed > 0 else 0.0
            if task.total is not None and not task.finished and rate > 0:
                left = (task.total - task.completed) / rate
                words.append(f"ETA {timedelta(seconds=round(left))}")
            if task.fields.get("unit") and rate > 0 and elapsed >= 1.0:
                words.append(f"{rate:.2f} {task.fields['unit']}/s")
            return Text(", ".join(words), style="progress.remaining")

    return EtaColumn()

def _precision_words(up, files: list[Path]) -> str:
    """'<precision>, <kernels> kernels' for the first line, saying when 16-bit inputs run in
    fp32 instead of --precision auto's reduced precision."""
    from srgan_cli.imageio.imaging import bit_depth

    plain = f"{up.precision}, {up.kernels} kernels"
    high = up.precision_for(16)
    if high == up.precision:
        return plain
    n16 = sum(bit_depth(f) == 16 for f in files if f.is_file())
    if n16 == 0:
        return plain
    if n16 == len(files):
        return (f"{high} for 16-bit input{'s' if n16 > 1 else ''} ({up.precision} would "
                "truncate them), torch kernels")
    return f"{plain}; {high} for the {n16} 16-bit input(s), which {up.precision} would truncate"

@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Output file (one input) or folder (sub-folders are mirrored). Default: next "
                   "to each input with an '_x4' suffix.")
@model_option(several=False)
@click.option("--realism", type=click.FloatRange(0, 1), default=None, metavar="R",
              help="Blend a GAN model with the SRResNet it was fine-tuned from: (1-R) x "
              "SRResNet + R x SRGAN weights. 1 = the GAN model (most texture), 0 = its "
              "SRResNet (highest PSNR, smoothest).")
@inference_options
@click.option("--tile", default="auto", show_default=True,
              help="Tile size in LR pixels; 0 = whole image; auto = the largest that fits free "
                   "memory. On CUDA out-of-memory the tile is halved and the image redone.")
@click.option("--tile-pad", type=click.IntRange(0), default=None,
              help="Context pixels around each tile. Default: the generator's receptive radius "
                   "(40 for SRResNet), which makes tiled output equal to whole-image output; "
                   "for community models, an overlap of 32 over which tiles are blended.")
@click.option("--tile-batch", type=click.IntRange(1), default=1, show_default=True,
              help="Run up to N same-sized tiles per forward pass (helps on GPUs).")
@click.option("--alpha", type=click.Choice(["bicubic", "model"]), default="bicubic",
              show_default=True, help="How transparency is upscaled.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg", "jpeg", "webp", "tif", "tiff",
              "bmp"], case_sensitive=False), default=None,
              help="Output format (default: from the output extension, else the input's).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="JPEG/WebP quality.")
@click.option("--png-level", type=click.IntRange(0, 9), default=4, show_default=True,
              help="PNG zlib compression level (imaging.DEFAULT_PNG_LEVEL). On photos 4 writes "
              "files as small as 6 (Pillow's default) 2.6x faster; 1 is faster still (files "
              "~12% larger); 9 is slower for no gain. Same pixels at every level.")
@click.option("--strip-metadata", is_flag=True, help="Do not copy ICC profile and EXIF.")
@click.option("--max-pixels", type=click.IntRange(0), default=100_000_000, show_default=True,
              help="Refuse inputs with more pixels (decompression bombs); 0 = no limit.")
@click.option("--outscale", type=click.FloatRange(0, min_open=True), default=None,
              metavar="S", help="Output size as S x the input size, any positive number "
              "(e.g. 1.5, 2, 8): the model's x4 output resized with an antialiased bicubic "
              "filter; at most the model's output for the largest input --max-pixels allows. "
              "Default: the model's scale.")
@border_option
@click.option("--suffix", default=None, help="Name suffix when -o is omitted (no path "
              "separators). Default: _x<scale> (_x<S> with --outscale).")
@click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders of input folders.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--skip-existing", is_flag=True,
              help="Skip inputs whose output already exists (resume an interrupted batch; "
              "not with --overwrite).")
@click.option("--shard", default=None, metavar="K/N",
              help="Process only the K-th of N deterministic slices of the inputs.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON line per image on stdout (and a final summary line).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
def upscale(inputs, output, model, device, precision, kernels, tile, tile_pad, tile_batch, alpha, fmt,
            quality, png_level, strip_metadata, max_pixels, outscale, border, suffix, recursive,
            overwrite, skip_existing, shard, as_json, quiet, realism):
    """Upscale images (files, folders or glob patterns) by the model's scale.

    \b
    Examples (as in the README):
      srgan upscale photo.jpg                          # writes photo_x4.jpg next to the input
      srgan upscale photo.jpg -o photo_4x.png          # output format from the extension
      srgan upscale holiday/ -o holiday_4x/ -r         # folders; sub-folders mirrored under -o
      srgan upscale 'scans/**/*.tif' -o big/           # glob patterns (quote them)
      srgan upscale raw/ -o out/ --skip-existing       # resume an interrupted batch
      srgan upscale raw/ -o out/ --json > log.jsonl    # one JSON line per image + a summary line
      srgan upscale logo.png --alpha model             # transparency through the network too

    Grayscale stays grayscale, transparency is kept, 16-bit PNG/TIFF stay 16-bit, EXIF
    orientation is applied and ICC/EXIF are carried over. A bad file is reported in one
    line and skipped; the exit status is 1 if any file failed. Outputs are written to a
    temporary file and renamed, never left half-written. Over a folder or pattern, the
    command's own earlier outputs are not inputs and existing outputs are skipped, so a
    re-run does no new work; Ctrl-C prints the summary and exits 130.
    """
    import time

    from srgan_cli.batch.tally import Tally  # torch is not loaded yet: the next lines load it

    t0, jobs = time.perf_counter(), []
    try:
        with interrupts():
            up, jobs, earlier, single = _setup(
                inputs, jobs, model=model, output=output, tile=tile, shard=shard, suffix=suffix,
                outscale=outscale, fmt=fmt, overwrite=overwrite, skip_existing=skip_existing,
                recursive=recursive, upscaler=dict(
                    device=device, precision=precision, tile_pad=tile_pad,
                    tile_batch=tile_batch, alpha=alpha, kernels=kernels, outscale=outscale,
                    realism=realism, border=border))
    except Failure as e:  # nothing done yet: with --json, stdout still gets its line
        if as_json:
            click.echo(json.dumps({"error": e.message, "summary": Tally().summary(0.0)}))
        raise
    except KeyboardInterrupt:  # e.g. while the model loads
        _print_summary(Tally(), time.perf_counter() - t0, len(jobs), interrupted=True,
                       quiet=quiet, as_json=as_json)
        sys.exit(130)
    if not quiet:
        _print_setup(up, jobs, earlier, realism=realism, fmt=fmt,
                     output=output if single else None, skip_existing=skip_existing)
    files = dict(overwrite=overwrite, skip_existing=skip_existing, fmt=fmt, quality=quality,
                 strip_metadata=strip_metadata, max_pixels=max_pixels, png_level=png_level)
    tally, seconds, interrupted = _run(up, jobs, files, quiet=quiet, as_json=as_json)
    _print_summary(tally, seconds, len(jobs), interrupted=interrupted, quiet=quiet,
                   as_json=as_json)
    if interrupted:
        sys.exit(130)
    if tally.failed:
        sys.exit(1)


def _setup(inputs, planned: list, *, model, output, tile, shard, suffix, outscale, fmt,
           overwrite, skip_existing, recursive, upscaler: dict):
    """Everything before the first image: the options checked, the jobs planned (also
    put in ``planned``, for a summary if Ctrl-C comes next), the model loaded
    (``upscaler``: the :class:`Upscaler` options). (upscaler, jobs, earlier outputs left
    out, whether one file is named as such); exits on a failure."""
    from srgan_cli.inference.upscale import Upscaler

    try:
        tile_n = parse_tile(tile)
        shard_kn = parse_shard(shard)
    except click.BadParameter as e:
        fail(str(e), code=2)
    if overwrite and skip_existing:
        fail("--overwrite and --skip-existing contradict each other: use one", code=2)
    if suffix is not None and any(sep and sep in suffix for sep in ("/", os.sep, os.altsep)):
        fail(f"--suffix {suffix!r}: a name suffix cannot contain a path separator "
             "(use -o for another folder)", code=2)
    loaded, jobs, earlier, single = _plan(
        inputs, model=model, output=output, recursive=recursive, shard=shard,
        shard_kn=shard_kn, suffix=suffix, outscale=outscale, fmt=fmt, overwrite=overwrite)
    planned.extend(jobs)
    with exit_on_error():
        up = Upscaler(loaded, tile=tile_n, **upscaler)
    return up, jobs, earlier, single


def _plan(inputs, *, model, output, recursive, shard, shard_kn, suffix, outscale, fmt,
          overwrite):
    """(the model, loaded once, jobs, earlier outputs left out, whether one file is named as such)
    for ``srgan upscale``'s inputs and options; exits with the reason when there is
    nothing to do or an output cannot be written."""
    from srgan_cli.api import load
    from srgan_cli.batch import plan
    from srgan_cli.imageio.imaging import INPUT_SUFFIXES as IMAGE_SUFFIXES

    items = plan.collect_inputs(inputs, recursive)
    if shard_kn:
        items = plan.shard(items, *shard_kn)
    if not items:
        nested = not recursive and plan.has_subfolders(inputs)
        fail("no input images found" + (f" in shard {shard}" if shard else "")
             + ("; the input folder has sub-folders: add -r to descend into them" if nested
                else ""))
    with exit_on_error():
        loaded = load(model)  # its scale names the outputs; the Upscaler runs it
    suffix = f"_x{outscale or loaded.scale:g}" if suffix is None else suffix
    single = len(items) == 1 and items[0][1] is None
    if (not single and output is not None and output.suffix.lower() in IMAGE_SUFFIXES
            and not output.is_dir()):
        fail(f"-o {output}: {len(items)} inputs need an output folder, not an image file name")
    jobs, earlier = plan.plan_jobs(items, output, single=single, suffix=suffix, fmt=fmt,
                                    overwrite=overwrite)
    conflicts = plan.conflicts(jobs)
    for line in conflicts[:-1]:
        error_line(line)
    if conflicts:
        fail(conflicts[-1])
    why = plan.unwritable({job.dst.parent for job in jobs if job.dst is not None})
    if why:
        fail(why)
    return loaded, jobs, earlier, single


def _print_setup(up, jobs, earlier, *, realism, fmt, output, skip_existing) -> None:
    """The first line (model, device, precision, kernels) and notes about the run:
    fp16 on the CPU, a --format the extension of ``output`` (the output file of a single
    input, else None) contradicts, inputs left out as earlier outputs, inputs saved as
    low-quality JPEGs when a model trained for them is registered (once for the batch)."""
    from srgan_cli.batch.pipeline import compressed_inputs_note
    from srgan_cli.batch.plan import to_upscale
    from srgan_cli.imageio.imaging import FORMATS, output_format

    err.print(f"model: {escape(str(up.weights_path))} ({up.model.describe()})"
              + (f" at realism {realism:g} with {escape(str(up.parent_path))}"
                 if realism is not None else "") + f" on {up.device}, "
              f"{_precision_words(up, [job.src for job in jobs])}"
              + (f", output resized to x{up.outscale:g}" if up.outscale else "")
              + (f" ({up.kernels_note})" if up.kernels_note else ""),
              soft_wrap=True)
    if up.device.type == "cpu" and up.precision == "fp16":
        err.print("[yellow]note:[/] --precision fp16 on the CPU is far slower than bf16 or "
                  "fp32 (CPUs have no fast fp16 arithmetic)", soft_wrap=True)
    if fmt and output is not None and output.suffix.lower() in FORMATS:
        said, meant = FORMATS[output.suffix.lower()], output_format(output, fmt)
        if said != meant:
            err.print(f"[yellow]note:[/] {escape(str(output))} is written as {meant} "
                      f"(--format {fmt}), although its extension says {said}",
                      soft_wrap=True)
    if earlier:
        err.print(f"[yellow]note:[/] {len(earlier)} file(s) named as this command's outputs "
                  f"(e.g. {escape(str(earlier[0]))}) are not taken as inputs", soft_wrap=True)
    jpeg_note = compressed_inputs_note(to_upscale(jobs, skip_existing), up.model)
    if jpeg_note:
        err.print(f"[yellow]note:[/] {escape(jpeg_note)}", soft_wrap=True)


class _Display:
    """What ``srgan upscale`` shows while it runs: a bar over the images (several), a bar
    over one image's tiles (a spinner when it is not tiled), each note once, and a line
    per image."""

    def __init__(self, bar, n_jobs: int, *, quiet: bool, as_json: bool) -> None:
        self.bar, self.n_jobs, self.lines = bar, n_jobs, not quiet and not as_json
        self.images = bar.add_task("images", total=n_jobs, name="", visible=n_jobs > 1,
                                   unit="images")
        # one image: "tiles" with an ETA when it is tiled, else a spinner and elapsed time
        self.tiles = bar.add_task("tiles", total=1, name="", visible=False, unit=None)
        self.noted: set[str] = set()

    def on_tile(self, done: int, total: int) -> None:
        self.bar.update(self.tiles, completed=done, total=total,
                        description="tiles" if total > 1 else "upscaling")

    def on_event(self, msg: str) -> None:
        if msg not in self.noted:
            self.noted.add(msg)
            self.bar.console.print(f"[yellow]note:[/] {escape(msg)}", soft_wrap=True)

    def on_start(self, src: Path) -> None:
        self.bar.update(self.images, name=escape(src.name))  # file names are not markup
        self.bar.reset(self.tiles, total=None, description="upscaling", visible=True,
                       name="" if self.n_jobs > 1 else escape(src.name))

    def show(self, o, precision: str) -> None:
        """One outcome: its error, its fp32 redo note, its line (unless quiet or --json)."""
        if o.status == "error":
            error_line(str(o.error), self.bar.console)
        elif o.status != "skipped":
            res = o.result
            if res.fp32_retries:
                self.on_event(f"{o.src}: {res.fp32_retries} tile(s) overflowed in {precision}"
                              " and were redone in fp32")
            if self.lines:
                self.bar.console.print(f"{escape(str(o.src))} -> {escape(str(o.dst))} "
                                       f"({res.in_size[0]}x{res.in_size[1]} -> "
                                       f"{res.out_size[0]}x{res.out_size[1]})", soft_wrap=True)


def _run(up, jobs, files: dict, *, quiet: bool, as_json: bool):
    """Upscale ``jobs`` (``files``: :func:`srgan_cli.batch.pipeline.upscale_files`'s file options) under
    the progress display; (tally, seconds, whether Ctrl-C or SIGTERM stopped it). After
    an interruption the write in flight ends and temporary files are removed."""
    import time
    import warnings

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from srgan_cli.batch.pipeline import upscale_files
    from srgan_cli.batch.tally import Tally

    tally = Tally()
    t0 = time.perf_counter()
    progress = Progress(SpinnerColumn(finished_text=" "), TextColumn("[bold]{task.description}"),
                        BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
                        TimeElapsedColumn(), _eta_column(), console=err, disable=quiet,
                        transient=False)
    outcomes = (o for o in ())
    with progress as bar, Interrupted() as interrupted, warnings.catch_warnings():
        # Pillow warns (with a source line) about damaged files it still reads or then
        # refuses: each file gets its one line here instead.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        shown = _Display(bar, len(jobs), quiet=quiet, as_json=as_json)
        # Decoding the next image and writing the previous one overlap with the model.
        def report(o) -> None:
            record = tally.add(o)
            shown.show(o, up.precision)
            if as_json:
                click.echo(json.dumps(record))
            bar.advance(shown.images)

        outcomes = upscale_files(up, jobs, **files, on_start=shown.on_start,
                                 on_tile=shown.on_tile, on_event=shown.on_event)
        for o in outcomes:
            report(o)
        if len(jobs) > 1:
            bar.update(shown.tiles, visible=False)
    if interrupted:
        for o in _finished(outcomes):  # the writes in flight end, and are counted
            report(o)
        remove_temporaries(job.dst for job in jobs if job.dst is not None)
    interrupted.restore()
    return tally, time.perf_counter() - t0, bool(interrupted)


def _finished(outcomes):
    """After Ctrl-C outside the generator ``outcomes`` (of :func:`srgan_cli.batch.pipeline.upscale_files`):
    the outcomes of the images whose writes were under way. Interrupted inside it, it has
    yielded them already and ended."""
    try:
        o = outcomes.throw(KeyboardInterrupt())
        while True:
            yield o
            o = next(outcomes)
    except (KeyboardInterrupt, StopIteration):
        return


def _print_summary(tally, seconds: float, n_jobs: int, *, interrupted: bool, quiet: bool,
                   as_json: bool) -> None:
    """The summary: a JSON line on stdout with --json, one line on stderr unless quiet."""
    summary = tally.summary(seconds)
    done, skipped, failures, mp_out = tally.done, tally.skipped, tally.failed, tally.mp_out
    if as_json:
        click.echo(json.dumps({"summary": summary}))
    if not quiet:
        rate = f", {done / seconds:.2f} images/s" if done > 1 and seconds > 0 else ""
        err.print(f"{done} image(s) upscaled, {mp_out:.2f} MP out in {seconds:.1f} s "
                  f"({summary['mp_per_s']} MP/s{rate})"
                  + (f", {skipped} skipped (output exists)" if skipped else "")
                  + (f", [bold red]{failures} failed[/]" if failures else "")
                  + (", [bold red]interrupted[/]" if interrupted else "")
                  + (f" ({n_jobs - tally.reported} not done)" if interrupted and n_jobs else ""),
                  soft_wrap=True)  # one line, also in logs
