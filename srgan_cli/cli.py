"""The ``srgan`` command line (``srgan models ...`` is in cli_models.py). Only these two CLI
modules print (through console.py); everything else raises or calls back.

Heavy imports (torch) happen inside the commands so that ``srgan --help`` is instant.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from srgan_cli.cli_models import models as _models_group
from srgan_cli.console import err, fail
from srgan_cli.files import remove_temporaries


def _command_line(ctx: click.Context) -> str:
    """The command as given (options set on the command line only), for run records."""
    words = ["srgan", ctx.info_name]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) != click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        flag = param.opts[0]
        if isinstance(param, click.Option) and param.is_flag:
            words.append(flag if value else (param.secondary_opts or [flag])[0])
        elif isinstance(value, (tuple, list)):
            for v in value:
                words += [flag, str(v)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _speed_benchmark(models, device, precision, kernels, size, tile, runs, baselines, gemm,
                     json_path):
    import json

    import torch
    from rich.table import Table

    from srgan_cli.bench.quality import BASELINES
    from srgan_cli.bench.speed import (eager_fp32_baseline, gemm_fraction, gemm_rates,
                                        hardware, measure, synthetic_photo)
    from srgan_cli.errors import SrganError
    from srgan_cli.imaging import Decoded
    from srgan_cli.upscale import Upscaler
    from srgan_cli.weights import load_generator

    try:
        w, h = (int(v) for v in size.lower().split("x"))
        tile_n = _parse_tile(tile)
    except (ValueError, click.BadParameter):
        fail(f"--size {size!r} / --tile {tile!r}: expected WxH and auto or a number", 2)
    names = [m for m in models if m not in BASELINES] or ["srresnet"]
    rgb = synthetic_photo(w, h)
    results, extra = [], {}
    for name in names:
        try:
            up = Upscaler(name, device=device, precision=precision, tile=tile_n, kernels=kernels)
        except SrganError as e:
            fail(str(e))
        used = up.tile_for(h, w)
        common = dict(model=name, device=up.device, in_size=(w, h), scale=up.descriptor.scale,
                      flops_per_px=up.descriptor.flops_per_lr_pixel, runs=runs)
        d = Decoded(rgb, None, "RGB")
        err.print(f"timing {name} ({up.precision}, {up.kernels} kernels, tile "
                  f"{used or 'whole image'}) on {up.device}..."
                  + (f" ({up.kernels_note})" if up.kernels_note else ""))
        results.append(measure(f"srgan upscale path ({up.kernels} kernels)",
                               lambda: up.upscale_decoded(d), precision=up.precision, tile=used,
                               **common))
        if "eager-fp32" in baselines:
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(up.device)
            err.print("timing the eager fp32 baseline (whole image)...")
            plain, _ = load_generator(up.weights_path, up.device)  # as trained: BN unfolded
            results.append(measure("baseline eager-fp32", eager_fp32_baseline(plain, x),
                                   precision="fp32", tile=0, **common))
    extra["hardware"] = hardware(torch.device(results[0].device))
    rates = {}
    if gemm:  # each path is compared with the matmul rate of the precision it runs in
        rates = gemm_rates(torch.device(results[0].device), [r.precision for r in results])
        extra["gemm_gflops"] = rates
        if "bf16" in rates:
            extra["bf16_gemm_gflops"] = rates["bf16"]
    fractions = [gemm_fraction(r.gflops, rates.get(r.precision)) for r in results]
    table = Table(title=f"speed: {w}x{h} input, median of {runs} runs after 1 warm-up")
    for col in ("path", "model", "device", "precision", "tile", "out MP/s (min-max)",
                "GFLOP/s", "peak RSS MB", "CUDA peak MB"):
        table.add_column(col, justify="right" if col not in ("path", "model") else "left")
    for r in results:
        table.add_row(r.label, r.model, r.device, r.precision, str(r.tile or "whole"),
                      f"{r.mp_per_s_median:.3f} ({r.mp_per_s_min:.3f}-{r.mp_per_s_max:.3f})",
                      f"{r.gflops:.0f}", f"{r.peak_rss_mb:.0f}",
                      "-" if r.cuda_peak_mb is None else f"{r.cuda_peak_mb:.0f}")
    _print_table(table)
    if rates:
        Console().print(
            f"GEMM (2048^3) on {results[0].device}: "
            + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in rates.items()) + "; "
            + "; ".join(f"{r.label}: " + ("n/a" if f is None else
                                          f"{f:.0%} of the {r.precision} GEMM rate")
                        for r, f in zip(results, fractions)), soft_wrap=True)
    if len(results) > 1 and results[1].label.startswith("baseline"):
        Console().print(f"speed-up over the eager fp32 baseline: "
                        f"{results[0].mp_per_s_median / results[1].mp_per_s_median:.2f}x")
    if json_path:
        records = [{**r.as_dict(), "gemm_fraction": f} for r, f in zip(results, fractions)]
        json_path.write_text(json.dumps({"results": records, **extra},
                                        indent=2) + "\n", encoding="utf-8")


def _print_table(table) -> None:
    """A rich table on stdout when it is a terminal wide enough for it; elsewhere (a pipe,
    a file, a narrow terminal) the same table as Markdown with aligned columns, which
    never wraps inside a cell."""
    out = Console()
    if out.is_terminal and out.measure(table).maximum <= out.width:
        out.print(table)
        return
    head = [str(c.header) for c in table.columns]
    cols = [[str(cell) for cell in c.cells] for c in table.columns]
    rows = [head] + [list(r) for r in zip(*cols)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    right = [c.justify == "right" for c in table.columns]

    def line(cells) -> str:
        return "| " + " | ".join(v.rjust(w) if r else v.ljust(w)
                                 for v, w, r in zip(cells, widths, right)) + " |"

    if table.title:
        click.echo(f"{table.title}\n")
    click.echo(line(head))
    click.echo("|" + "|".join(("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1))
                             for w, r in zip(widths, right)) + "|")
    for r in rows[1:]:
        click.echo(line(r))


def _safe_name(method: str) -> str:
    """A folder/file-name-safe label for a method (model paths become their stem)."""
    import re

    name = Path(method).stem if ("/" in method or method.endswith(".safetensors")) else method
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _interrupt_on_signals() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt, so training checkpoints and stops.

    Needed because a job started in the background by a non-interactive shell inherits
    an ignored SIGINT, and schedulers stop jobs with SIGTERM.
    """
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


class _Interrupted:
    """``with _Interrupted() as stop:`` ends the block on Ctrl-C or SIGTERM instead of the
    program; ``stop`` is then true, and further signals are ignored while the caller cleans
    up; :meth:`restore` puts the previous handlers back."""

    def __init__(self) -> None:
        self.happened = False
        self._saved: dict = {}

    def __bool__(self) -> bool:
        return self.happened

    def __enter__(self) -> "_Interrupted":
        import signal

        self._saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        _interrupt_on_signals()
        return self

    def __exit__(self, kind, value, tb) -> bool:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            import signal

            for s in self._saved:
                signal.signal(s, signal.SIG_IGN)
            self.happened = True
            return True
        return False

    def restore(self) -> None:
        import signal

        for s, handler in self._saved.items():
            signal.signal(s, handler)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="srgan", prog_name="srgan")
def main() -> None:
    """Photo-realistic 4x super-resolution with SRResNet / SRGAN (Ledig et al., CVPR 2017).

    \b
    Examples:
      srgan upscale photo.jpg -o photo_4x.png
      srgan upscale photos/ -o photos_4x/ --device cuda
      srgan train --stage srresnet --iters 100000

    \b
    Shell completion (click's own; put the line in your shell's start-up file):
      bash: eval "$(_SRGAN_COMPLETE=bash_source srgan)"
      zsh:  eval "$(_SRGAN_COMPLETE=zsh_source srgan)"
      fish: _SRGAN_COMPLETE=fish_source srgan | source
    """


def inference_options(f):
    """``--device``, ``--precision`` and ``--kernels``, declared once for every command
    that runs a model for inference (``upscale``, ``benchmark``)."""
    f = click.option("--kernels", type=click.Choice(["auto", "amx", "torch"]), default="auto",
                     show_default=True, help="auto: on CPUs with AMX-BF16 in bf16, run the 3x3 "
                     "convolutions through srgan's fused kernels (PReLU, residual adds and pixel "
                     "shuffles folded in; built with the C compiler on first use), else "
                     "PyTorch's operators; amx: insist; torch: never.")(f)
    f = click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
                     default="auto", show_default=True, help="auto: bf16 on CPUs with "
                     "AMX/AVX512-BF16 (fp32 on other CPUs), fp16 on CUDA. A reduced-precision "
                     "tile that yields NaN/Inf is redone in fp32.")(f)
    return click.option("--device", default="auto", show_default=True,
                        help="auto, cpu, cuda, cuda:N, mps.")(f)


# --------------------------------------------------------------------------- train


@main.command()
@click.option("--stage", type=click.Choice(["srresnet", "gan"]), default="srresnet",
              show_default=True, help="'srresnet': the paper's MSE pre-training. 'gan': SRGAN "
              "(generator from --init, default the registered 'srresnet'; VGG54 content loss "
              "+ 1e-3 x adversarial loss; 10^5 iterations at --lr then 10^5 at lr/10).")
@click.option("--data", "data", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of HR training images (repeatable). Default: ../shared/datasets/train "
                   "when present.")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where checkpoints (last.pt) and the log (log.jsonl) go. "
              "Default: runs/<stage>.")
@click.option("--iters", type=click.IntRange(1), default=None,
              help="Total iterations. Default: the paper's, 10^6 (srresnet) or 2x10^5 (gan).")
@click.option("--batch", type=click.IntRange(1), default=16, show_default=True)
@click.option("--crop", type=click.IntRange(8), default=96, show_default=True,
              help="HR crop size in pixels (LR crops are crop/scale).")
@click.option("--scale", type=click.Choice(["2", "4", "8"]), default="4", show_default=True)
@click.option("--blocks", type=click.IntRange(1), default=16, show_default=True,
              help="Residual blocks B.")
@click.option("--width", type=click.IntRange(1), default=64, show_default=True,
              help="Feature maps per conv.")
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate.")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine", "step"]),
              default=None, help="Default: constant (srresnet); step at 10^5 (gan).")
@click.option("--lr-milestones", default=None, help="For 'step': comma-separated iterations at "
              "which the lr is multiplied by 0.1 (gan default: 100000).")
@click.option("--content-loss", type=click.Choice(["mse", "vgg22", "vgg54"]), default=None,
              help="The paper's Table 1 variants. Default: mse (srresnet), vgg54 (gan).")
@click.option("--adv-weight", type=float, default=1e-3, show_default=True,
              help="gan: weight of the adversarial loss -log D(G(LR)).")
@click.option("--pixel-weight", type=click.FloatRange(0), default=0.0, show_default=True,
              help="gan: weight of an L1 pixel loss (on [-1, 1] images) added to the VGG content "
              "loss, as ESRGAN does; keeps colour and structure. 0: the paper's recipe.")
@click.option("--adv-warmup", type=click.IntRange(0), default=0, show_default=True,
              help="gan: ramp the adversarial weight linearly from 0 to --adv-weight over this "
              "many iterations. 0: the paper's recipe.")
@click.option("--d-lr", type=float, default=None, help="gan: discriminator lr (default: --lr; "
              "follows the same schedule).")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="Keep an exponential moving average of the generator "
              "with this decay (e.g. 0.999); validation and --export use it. 0: off.")
@click.option("--vgg-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ImageNet VGG19 features (safetensors, torchvision layout) for the VGG "
              "losses. Default: $SRGAN_VGG_WEIGHTS, ../shared/weights, else torchvision's "
              "download.")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="gan: LPIPS weights for validation (default as for benchmark).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto",
              show_default=True, help="Autocast dtype. auto: bf16 on CPUs with AMX/AVX512-BF16 and "
              "on CUDA (fp16 where bf16 is unsupported), else fp32.")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ckpt-every", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--val-every", type=click.IntRange(1), default=1000, show_default=True,
              help="Validate (Set5 Y-PSNR) every N iterations when Set5 is available.")
@click.option("--val-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with <Name>_HR/ and <Name>_LR_x4/. Default: Set5 from ../shared.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Continue from a checkpoint (model, optimiser, RNG and iteration restored).")
@click.option("--init", "init_path", default=None,
              help="Start the generator from released weights: a registered name or a "
              ".safetensors file (fresh optimiser). The gan stage defaults to 'srresnet'.")
@click.option("--export", "export_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="At the end, write the generator as a safetensors release file.")
@click.option("--log-every", type=click.IntRange(1), default=10, show_default=True,
              help="Log the mean losses every N iterations (each log waits for the device).")
@click.option("--max-seconds", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Wall-clock limit (data loading included): then checkpoint, validate, "
              "stop and --export as at the end; --resume continues. 0: none.")
def train(stage, data, run_dir, iters, batch, crop, scale, blocks, width, lr, lr_schedule,
          lr_milestones, content_loss, adv_weight, pixel_weight, adv_warmup, d_lr, ema,
          vgg_weights, lpips_weights,
          precision, channels_last, device, seed, ckpt_every, val_every, val_dir,
          resume, init_path, export_path, log_every, max_seconds):
    """Train the generator: the paper's SRResNet stage, or its SRGAN stage (--stage gan).

    Runs on CPU (bf16 autocast + channels_last) or CUDA. Ctrl-C writes a checkpoint;
    --resume continues exactly where it stopped.
    """
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    from srgan_cli import paths
    from srgan_cli.errors import SrganError
    from srgan_cli.train.loop import TrainConfig, export, train as run_train

    data_dirs = [str(d) for d in data] or [str(d) for d in paths.default_train_dirs()]
    if not data_dirs:
        fail("no training data: pass --data DIR (../shared/datasets/train not found)")
    if val_dir is None:
        found = paths.benchmark_dir("Set5")
        val_dir = found
    milestones = None  # unset options stay None: TrainConfig fills in the stage's defaults
    if lr_milestones is not None:
        try:
            milestones = [int(m) for m in lr_milestones.split(",") if m.strip()]
        except ValueError:
            fail(f"--lr-milestones: expected comma-separated integers, got {lr_milestones!r}")
    cfg = TrainConfig(
        data=data_dirs, run_dir=str(run_dir) if run_dir else None, stage=stage, iters=iters,
        batch=batch, crop=crop,
        scale=int(scale), blocks=blocks, width=width, lr=lr, lr_schedule=lr_schedule,
        lr_milestones=milestones, precision=precision, channels_last=channels_last,
        device=device, seed=seed, ckpt_every=ckpt_every, val_every=val_every,
        val_dir=str(val_dir) if val_dir else None, init=str(init_path) if init_path else None,
        content_loss=content_loss, adv_weight=adv_weight, pixel_weight=pixel_weight,
        adv_warmup=adv_warmup, d_lr=d_lr, ema=ema,
        vgg_weights=str(vgg_weights) if vgg_weights else None,
        lpips_weights=str(lpips_weights) if lpips_weights else None,
        max_seconds=max_seconds, log_every=log_every,
    )
    run_dir = Path(cfg.run_dir)
    main_process = os.environ.get("RANK", "0") == "0"
    if main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "commands.txt", "a", encoding="utf-8") as f:
            f.write(_command_line(click.get_current_context()) + "\n")

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, transient=False, disable=not main_process,
    ) as bar:
        task = bar.add_task("train", total=cfg.iters, stats="")

        def on_progress(p):
            if p.event == "step":
                losses = " ".join(f"{k} {v:.5f}" for k, v in p.losses.items())
                bar.update(task, completed=p.iteration,
                           stats=f"{losses} lr {p.lr:.1e} {p.its_per_sec:.2f} it/s")
            elif p.event == "validate":
                bar.console.print(f"iter {p.iteration}: Set5 Y-PSNR {p.val_psnr:.3f} dB"
                                  + (f", LPIPS {p.val_lpips:.4f}" if p.val_lpips is not None
                                     else ""))
            elif p.event == "loading":
                bar.update(task, completed=p.iteration)
                bar.console.print(p.message)
            elif p.event == "checkpoint" and p.message.startswith(("interrupted", "time limit")):
                bar.console.print(p.message)

        _interrupt_on_signals()
        try:
            result = run_train(cfg, resume=resume, on_progress=on_progress)
        except KeyboardInterrupt:
            fail("interrupted", code=130)
        except SrganError as e:
            fail(str(e))
    if not main_process:
        return
    err.print(f"done: {result.iteration} iterations, checkpoint {escape(str(result.checkpoint))}"
              + (f", Set5 Y-PSNR {result.val_psnr:.3f} dB" if result.val_psnr else ""))
    if export_path:
        try:
            export(result.checkpoint, export_path)
        except SrganError as e:
            fail(str(e))
        err.print(f"exported {escape(str(export_path))}")


# --------------------------------------------------------------------------- upscale


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


def _collect_inputs(inputs: tuple[str, ...], recursive: bool) -> list[tuple[Path, Path | None]]:
    """(file, root) pairs; root is the folder a file was found under (for mirroring).

    An argument may be a file, a folder, or a glob pattern (``**`` descends folders).
    Missing files are kept and reported per item, not fatal here.
    """
    import glob

    from srgan_cli.imaging import INPUT_SUFFIXES

    def is_image(f: Path) -> bool:
        return f.is_file() and f.suffix.lower() in INPUT_SUFFIXES

    items: list[tuple[Path, Path | None]] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            files = p.rglob("*") if recursive else p.glob("*")
            items.extend((f, p) for f in sorted(files) if is_image(f))
        elif not p.exists() and glob.has_magic(raw):
            matches = sorted(Path(m) for m in glob.glob(raw, recursive=True))
            base = Path(raw.split("*")[0].split("?")[0].split("[")[0] or ".")
            base = base if base.is_dir() else base.parent
            items.extend((f, base) for f in matches if is_image(f))
        else:
            items.append((p, None))
    seen: set[Path] = set()
    unique = []
    for f, root in items:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((f, root))
    return unique


def _output_path(src: Path, root: Path | None, out: Path | None, single: bool, suffix: str,
                 fmt: str | None) -> Path:
    from srgan_cli.imaging import FORMAT_SUFFIX, FORMATS, output_format

    ext = FORMAT_SUFFIX[output_format(src, fmt)] if fmt else None
    # inputs that cannot be written back in their own format (GIF, PNM, TGA, ...) give PNG
    ext = ext or (src.suffix if src.suffix.lower() in FORMATS else ".png")
    if out is None:
        return src.with_name(f"{src.stem}{suffix}{ext}")
    if single and out.suffix and not out.is_dir():
        return out
    rel = src.relative_to(root) if root is not None else Path(src.name)
    dst = out / rel
    return dst.with_name(f"{dst.stem}{ext}")


def _precision_words(up, files: list[Path]) -> str:
    """'<precision>, <kernels> kernels' for the first line, saying when 16-bit inputs run in
    fp32 instead of --precision auto's reduced precision."""
    from srgan_cli.imaging import bit_depth

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


def _plan_jobs(items: list[tuple[Path, Path | None]], output: Path | None, single: bool,
               suffix: str, fmt: str | None, overwrite: bool) -> tuple[list, list[Path]]:
    """One job per input, in order, and the files left out as earlier outputs.

    Files found in folders or by patterns (not named one by one) are left out when this
    command would write them itself, as the output of another input (``a_x4.png`` beside
    ``a.png``, and its outputs in turn) or under the ``-o`` folder; and an output that
    already exists is skipped for them (unless ``overwrite``), so re-running a command
    over a folder does no new work.
    """
    from srgan_cli.errors import ImageError, SrganError
    from srgan_cli.upscale import FileJob

    jobs = []
    for src, root in items:
        if root is None and not src.exists() and not src.is_symlink():
            jobs.append(FileJob(src, None, ImageError(f"{src}: no such file")))
            continue
        try:
            jobs.append(FileJob(src, _output_path(src, root, output, single, suffix, fmt),
                                skip_existing=root is not None and not overwrite))
        except SrganError as e:
            jobs.append(FileJob(src, None, e))
    outputs = {job.dst.resolve() for job in jobs
               if job.dst is not None and job.dst.resolve() != job.src.resolve()}
    out_dir = output.resolve() if output is not None and not single else None
    kept, earlier = [], []
    for job, (src, root) in zip(jobs, items):
        key = src.resolve()
        if root is not None and (key in outputs or (
                out_dir is not None and out_dir in key.parents and out_dir != root.resolve())):
            earlier.append(src)
        else:
            kept.append(job)
    return kept, earlier


def _conflicts(jobs: list) -> list[str]:
    """One line per output that would be written twice, or over an input of this command
    (refused whatever the flags)."""
    inputs = {job.src.resolve(): job.src for job in jobs}
    first: dict[Path, Path] = {}
    lines = []
    for job in jobs:
        if job.dst is None:
            continue
        key = job.dst.resolve()
        if key in inputs:
            lines.append(f"{job.src}: its output {job.dst} is an input of this command; refusing "
                         "to write over it (choose another -o or --suffix)")
        elif key in first:
            lines.append(f"{first[key]} and {job.src} would both be written to {job.dst} "
                         "(upscale them in separate runs or folders)")
        else:
            first[key] = job.src
    return lines


def _unwritable(folders: set[Path]) -> str | None:
    """Why outputs cannot be written into one of ``folders`` (None when they can): each
    folder's nearest existing ancestor must be a folder where a file can be created."""
    import tempfile

    probed: set[Path] = set()
    for folder in sorted(folders):
        base = folder.absolute()
        while not base.exists() and base.parent != base:
            base = base.parent
        if base in probed:
            continue
        probed.add(base)
        if not base.is_dir():
            return f"{folder}: cannot create the output folder ({base} is not a folder)"
        try:
            fd, tmp = tempfile.mkstemp(prefix=".srgan-probe-", dir=base)
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            return f"{folder}: cannot write there ({e.strerror or e})"
    return None


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        k, n = (int(v) for v in value.split("/"))
    except ValueError:
        raise click.BadParameter("expected K/N, e.g. 2/8") from None
    if not (n >= 1 and 1 <= k <= n):
        raise click.BadParameter("need 1 <= K <= N")
    return k, n


def _parse_tile(value: str) -> int | None:
    if value == "auto":
        return None
    try:
        t = int(value)
    except ValueError:
        raise click.BadParameter("expected 'auto' or a number of LR pixels") from None
    if t < 0:
        raise click.BadParameter("must be >= 0")
    return t


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Output file (one input) or folder (sub-folders are mirrored). Default: next "
                   "to each input with an '_x4' suffix.")
@click.option("-m", "--model", default=None,
              help="Registered model name, path to a .safetensors file, or "
              "hf://owner/repo/file.safetensors[@revision]. Default: the registry's default "
              "model (`srgan models list` shows it).")
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
                   "(40 for SRResNet), which makes tiled output equal to whole-image output.")
@click.option("--tile-batch", type=click.IntRange(1), default=1, show_default=True,
              help="Run up to N same-sized tiles per forward pass (helps on GPUs).")
@click.option("--alpha", type=click.Choice(["bicubic", "model"]), default="bicubic",
              show_default=True, help="How transparency is upscaled.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg", "jpeg", "webp", "tif", "tiff",
              "bmp"], case_sensitive=False), default=None,
              help="Output format (default: from the output extension, else the input's).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="JPEG/WebP quality.")
@click.option("--png-level", type=click.IntRange(0, 9), default=6, show_default=True,
              help="PNG zlib compression level. 1 writes a 2048x2048 PNG about 5x faster than "
              "6 (files ~15% larger; same pixels): writing, not the model, is then no longer "
              "what limits a folder's throughput.")
@click.option("--strip-metadata", is_flag=True, help="Do not copy ICC profile and EXIF.")
@click.option("--max-pixels", type=click.IntRange(0), default=100_000_000, show_default=True,
              help="Refuse inputs with more pixels (decompression bombs); 0 = no limit.")
@click.option("--outscale", type=click.FloatRange(0, min_open=True), default=None,
              metavar="S", help="Output size as S x the input size, any positive number "
              "(e.g. 1.5, 2, 8): the model's x4 output resized with an antialiased bicubic "
              "filter. Default: the model's scale.")
@click.option("--border", type=click.Choice(["zero", "symmetric", "reflect", "edge"]),
              default="zero", show_default=True, help="Image borders: 'zero' runs the network "
              "with its zero padding, as trained (best PSNR on Set5/Set14); 'symmetric', "
              "'reflect', 'edge' mirror the image by the receptive radius first (solid colours "
              "and tiny images stay right at the corners; Set5 PSNR -0.009 dB with symmetric).")
@click.option("--suffix", default=None, help="Name suffix when -o is omitted. Default: "
              "_x<scale> (_x<S> with --outscale).")
@click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders of input folders.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--skip-existing", is_flag=True,
              help="Skip inputs whose output already exists (resume an interrupted batch).")
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
    import json
    import time
    import warnings

    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)

    from srgan_cli.errors import SrganError
    from srgan_cli.imaging import FORMATS, output_format
    from srgan_cli.imaging import INPUT_SUFFIXES as IMAGE_SUFFIXES
    from srgan_cli.models import default_model, resolve_model
    from srgan_cli.upscale import Upscaler, describe
    from srgan_cli.weights import read_info

    try:
        tile_n = _parse_tile(tile)
        shard_kn = _parse_shard(shard)
    except click.BadParameter as e:
        fail(str(e), code=2)
    items = _collect_inputs(inputs, recursive)
    if shard_kn:
        k, n = shard_kn
        items = [it for i, it in enumerate(sorted(items, key=lambda t: str(t[0]))) if i % n == k - 1]
    if not items:
        nested = not recursive and any(
            Path(i).is_dir() and any(c.is_dir() for c in Path(i).iterdir()) for i in inputs)
        fail("no input images found" + (f" in shard {shard}" if shard else "")
             + ("; the input folder has sub-folders: add -r to descend into them" if nested
                else ""))
    try:
        weights = resolve_model(model if model is not None else default_model())
        scale = read_info(weights).scale  # to plan the outputs before loading the model
    except SrganError as e:
        fail(str(e))
    suffix = f"_x{outscale or scale:g}" if suffix is None else suffix
    single = len(items) == 1 and items[0][1] is None
    if (not single and output is not None and output.suffix.lower() in IMAGE_SUFFIXES
            and not output.is_dir()):
        fail(f"-o {output}: {len(items)} inputs need an output folder, not an image file name")
    jobs, earlier = _plan_jobs(items, output, single, suffix, fmt, overwrite)
    conflicts = _conflicts(jobs)
    for line in conflicts[:-1]:
        err.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
    if conflicts:
        fail(conflicts[-1])
    why = _unwritable({job.dst.parent for job in jobs if job.dst is not None})
    if why:
        fail(why)
    try:
        up = Upscaler(weights, device=device, precision=precision, tile=tile_n, tile_pad=tile_pad,
                      tile_batch=tile_batch, alpha=alpha, kernels=kernels, outscale=outscale,
                      realism=realism, border=border)
    except SrganError as e:
        fail(str(e))
    if not quiet:
        err.print(f"model: {escape(str(up.weights_path))} ({describe(up.info)})"
                  + (f" at realism {realism:g} with {escape(str(up.parent_path))}"
                     if realism is not None else "") + f" on {up.device}, "
                  f"{_precision_words(up, [job.src for job in jobs])}"
                  + (f", output resized to x{up.outscale:g}" if up.outscale else "")
                  + (f" ({up.kernels_note})" if up.kernels_note else ""),
                  soft_wrap=True)
        if up.device.type == "cpu" and up.precision == "fp16":
            err.print("[yellow]note:[/] --precision fp16 on the CPU is far slower than bf16 or "
                      "fp32 (CPUs have no fast fp16 arithmetic)", soft_wrap=True)
        if single and fmt and output is not None and output.suffix.lower() in FORMATS:
            said, meant = FORMATS[output.suffix.lower()], output_format(output, fmt)
            if said != meant:
                err.print(f"[yellow]note:[/] {escape(str(output))} is written as {meant} "
                          f"(--format {fmt}), although its extension says {said}",
                          soft_wrap=True)
        if earlier:
            err.print(f"[yellow]note:[/] {len(earlier)} file(s) named as this command's outputs "
                      f"(e.g. {escape(str(earlier[0]))}) are not taken as inputs", soft_wrap=True)

    failures = skipped = reported = 0
    mp_out = 0.0
    t0 = time.perf_counter()
    progress = Progress(SpinnerColumn(finished_text=" "), TextColumn("[bold]{task.description}"),
                        BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
                        TimeElapsedColumn(), _eta_column(), console=err, disable=quiet,
                        transient=False)
    outcomes = (o for o in ())
    with progress as bar, _Interrupted() as interrupted, warnings.catch_warnings():
        # Pillow warns (with a source line) about damaged files it still reads or then
        # refuses: each file gets its one line here instead.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        task = bar.add_task("images", total=len(jobs), name="", visible=len(jobs) > 1,
                            unit="images")
        # one image: "tiles" with an ETA when it is tiled, else a spinner and elapsed time
        tiles = bar.add_task("tiles", total=1, name="", visible=False, unit=None)
        noted: set[str] = set()

        def on_tile(done: int, total: int) -> None:
            bar.update(tiles, completed=done, total=total,
                       description="tiles" if total > 1 else "upscaling")

        def on_event(msg: str) -> None:
            if msg not in noted:
                noted.add(msg)
                bar.console.print(f"[yellow]note:[/] {escape(msg)}", soft_wrap=True)

        def on_start(src: Path) -> None:
            bar.update(task, name=escape(src.name))  # file names are not markup
            bar.reset(tiles, total=None, description="upscaling", visible=True,
                      name="" if len(jobs) > 1 else escape(src.name))

        # Decoding the next image and writing the previous one overlap with the model.
        outcomes = up.upscale_files(jobs, overwrite=overwrite, skip_existing=skip_existing,
                                    fmt=fmt, quality=quality, strip_metadata=strip_metadata,
                                    max_pixels=max_pixels, png_level=png_level,
                                    on_start=on_start, on_tile=on_tile,
                                    on_event=on_event)
        for o in outcomes:
            record = {"input": str(o.src)}
            if o.dst is not None:
                record["output"] = str(o.dst)
            if o.status == "skipped":
                skipped += 1
                record["status"] = "skipped"
            elif o.status == "error":
                failures += 1
                record.update(status="error", error=str(o.error))
                bar.console.print(f"[bold red]error:[/] {escape(str(o.error))}", soft_wrap=True)
            else:
                res = o.result
                mp_out += res.out_size[0] * res.out_size[1] / 1e6
                record.update(status="ok", in_size=list(res.in_size),
                              out_size=list(res.out_size), seconds=round(o.seconds, 3),
                              tile=res.tile, fp32_retries=res.fp32_retries)
                if res.fp32_retries:
                    on_event(f"{o.src}: {res.fp32_retries} tile(s) overflowed in {up.precision}"
                             " and were redone in fp32")
                if not quiet and not as_json:
                    bar.console.print(f"{escape(str(o.src))} -> {escape(str(o.dst))} "
                                      f"({res.in_size[0]}x{res.in_size[1]} -> "
                                      f"{res.out_size[0]}x{res.out_size[1]})", soft_wrap=True)
            if as_json:
                click.echo(json.dumps(record))
            bar.advance(task)
            reported += 1
        if len(jobs) > 1:
            bar.update(tiles, visible=False)
    if interrupted:
        outcomes.close()  # waits for the reader and the write in flight
        remove_temporaries(job.dst for job in jobs if job.dst is not None)
    interrupted.restore()
    seconds = time.perf_counter() - t0
    done = reported - failures - skipped
    summary = {"images": done, "skipped": skipped, "failed": failures,
               "megapixels_out": round(mp_out, 3), "seconds": round(seconds, 3),
               "mp_per_s": round(mp_out / seconds, 4) if seconds > 0 else None}
    if as_json:
        click.echo(json.dumps({"summary": summary}))
    if not quiet:
        rate = f", {done / seconds:.2f} images/s" if done > 1 and seconds > 0 else ""
        err.print(f"{done} image(s) upscaled, {mp_out:.2f} MP out in {seconds:.1f} s "
                  f"({summary['mp_per_s']} MP/s{rate})"
                  + (f", {skipped} skipped (output exists)" if skipped else "")
                  + (f", [bold red]{failures} failed[/]" if failures else "")
                  + (f", [bold red]interrupted[/] ({len(jobs) - reported} not done)"
                     if interrupted else ""), soft_wrap=True)  # one line, also in logs
    if interrupted:
        sys.exit(130)
    if failures:
        sys.exit(1)


# --------------------------------------------------------------------------- benchmark


@main.command()
@click.argument("datasets", nargs=-1, required=False)
@click.option("-m", "--model", "models", multiple=True, default=("srresnet", "bicubic"),
              show_default=True, help="Registered model name, .safetensors path or "
              "hf://owner/repo/file.safetensors[@revision], or the baselines 'nearest' / "
              "'bicubic' (repeatable).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder holding <Name>/<Name>_HR/ and <Name>/<Name>_LR_x4/. Default: "
                   "$SRGAN_BENCHMARK_DIR, else ../shared/datasets/benchmark.")
@click.option("--source", type=click.Choice(["auto", "local", "hub"]), default="auto",
              show_default=True, help="auto: the data dir when it has the dataset, else the Hub "
              "(eugenesiow/<Name> dataset repos, cached).")
@inference_options
@click.option("--speed", is_flag=True, help="Measure speed instead of quality (no datasets).")
@click.option("--size", default="512x512", show_default=True, metavar="WxH",
              help="--speed: LR input size of the synthetic photo.")
@click.option("--tile", default="auto", show_default=True, help="--speed: as for upscale.")
@click.option("--runs", type=click.IntRange(1), default=5, show_default=True,
              help="--speed: timed runs (after one warm-up run).")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(["eager-fp32"]),
              help="--speed: also time a plain eager fp32 model(x) on the same input.")
@click.option("--gemm/--no-gemm", default=True, show_default=True,
              help="--speed: also measure the device's matmul rate in each precision timed, "
              "as a yardstick for the paths run in it.")
@click.option("--ssim", "ssim_method", type=click.Choice(["daala", "standard"]), default="daala",
              show_default=True, help="daala: the paper's SSIM (Gaussian sigma 1.5*H/256, "
              "in-image taps); standard: the common 11x11 sigma-1.5 SSIM.")
@click.option("--lpips/--no-lpips", "use_lpips", default=None,
              help="LPIPS (AlexNet, v0.1) on RGB. Default: on when its weights are found.")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="LPIPS weights (safetensors). Default: $SRGAN_LPIPS_WEIGHTS, else "
                   "../shared/weights/lpips-alexnet.safetensors.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the results as a JSON list of records.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the results as CSV (one row per dataset x method).")
@click.option("--save-images", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the SR outputs as DIR/<dataset>/<method>/<image>.png.")
@click.option("--compare", "compare_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Write side-by-side crops (HR | bicubic | each model) as PNGs.")
@click.option("--realism", "realisms", type=click.FloatRange(0, 1), multiple=True, metavar="R",
              help="Score each GAN model blended with its parent SRResNet at realism R "
              "(repeatable; rows named 'MODEL R=0.5'); see upscale --realism.")
def benchmark(datasets, models, data_dir, source, device, precision, kernels, speed, size, tile, runs, baselines,
              gemm, ssim_method, use_lpips, lpips_weights, json_path, csv_path, save_images,
              compare_dir, realisms):
    """Score models on benchmark sets with the paper's protocol (x4).

    PSNR and SSIM on the BT.601 luma (Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255) after
    cropping 4 px from every border; grayscale images on their raw values. The paper's
    published numbers are shown beside ours.

    \b
    Examples:
      srgan benchmark set5 set14
      srgan benchmark set5 --model nearest --model bicubic --model weights/mine.safetensors
      srgan benchmark --speed --size 512x512 --baseline eager-fp32 --json speed.json
    """
    if speed:
        return _speed_benchmark(models, device, precision, kernels, size, tile, runs, baselines,
                                gemm, json_path)
    if not datasets:
        fail("name at least one dataset (set5, set14, bsd100, urban100), or use --speed", 2)
    import json

    import numpy as np
    from PIL import Image
    from rich.table import Table

    from srgan_cli import paths
    from srgan_cli.bench.datasets import has_dataset, load_dataset
    from srgan_cli.bench.hubdata import REPOS, fetch_dataset
    from srgan_cli.bench.quality import BASELINES, PAPER, baseline, compare_strip, evaluate
    from srgan_cli.errors import SrganError
    from srgan_cli.nets.lpips import LPIPS, default_weights as default_lpips

    explicit = data_dir is not None
    if data_dir is None:
        env = os.environ.get("SRGAN_BENCHMARK_DIR")
        shared = paths.shared_dir()
        data_dir = Path(env) if env else (shared / "datasets" / "benchmark" if shared else None)
        explicit = bool(env)
    if source == "local" and data_dir is None:
        fail("no benchmark data: pass --data-dir DIR (../shared/datasets/benchmark not found)")
    scale = 4
    methods = {}
    try:
        for m in models:
            if m in BASELINES:
                methods[m] = baseline(m, scale)
            else:
                from srgan_cli.upscale import Upscaler

                for r in realisms or (None,):
                    label = m if r is None else f"{m} R={r:g}"
                    up = Upscaler(m, device=device, precision=precision, kernels=kernels,
                                  realism=r)
                    if up.kernels_note:
                        err.print(f"{label}: {up.kernels_note}")
                    if up.scale != scale:
                        fail(f"{m}: scale x{up.scale}; only x{scale} benchmarks are supported")
                    methods[label] = (lambda u: lambda lr: np.asarray(
                        u.upscale_image(Image.fromarray(lr))))(up)
        loaded = {}
        for d in datasets:
            root = data_dir
            if source == "hub" or (source == "auto" and not explicit
                                   and not has_dataset(data_dir, d)):
                err.print(f"{d}: fetching from the Hub ({REPOS.get(d.lower(), '?')})")
                root = fetch_dataset(d, scale)
            loaded[d.lower()] = load_dataset(d, root, scale)
        lpips_model = None
        if use_lpips or (use_lpips is None and (lpips_weights or default_lpips())):
            lpips_model = LPIPS.load(lpips_weights)
    except SrganError as e:
        fail(str(e))
    if compare_dir and "bicubic" not in methods:
        methods_compare = {"bicubic": baseline("bicubic", scale)}
    else:
        methods_compare = {}

    records = []
    outputs: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for ds, pairs in loaded.items():
        for name, fn in {**methods, **methods_compare}.items():
            def on_output(image, sr, ds=ds, name=name):
                if compare_dir:
                    outputs.setdefault((ds, image), {})[name] = sr
                if save_images and name in methods:
                    d = save_images / ds / _safe_name(name)
                    d.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(sr).save(d / f"{image}.png")

            scored = name in methods
            rec = evaluate(ds, name, pairs, scale, fn, ssim_method=ssim_method,
                           lpips_model=lpips_model if scored else None, on_output=on_output)
            if not scored:
                continue
            records.append(rec)
            err.print(f"{ds} {name}: PSNR {rec.psnr:.2f} dB, SSIM {rec.ssim:.4f}"
                      + (f", LPIPS {rec.lpips:.4f}" if rec.lpips is not None else "")
                      + f" ({rec.images} images)")
    if compare_dir:
        for (ds, image), panels in outputs.items():
            hr = next(p.hr for p in loaded[ds] if p.name == image)
            order = {"bicubic": panels["bicubic"],
                     **{k: v for k, v in panels.items() if k != "bicubic"}}
            d = compare_dir / ds
            d.mkdir(parents=True, exist_ok=True)
            compare_strip(hr, {(_safe_name(k) if k not in BASELINES else k): v
                               for k, v in order.items()}).save(d / f"{image}.png")
        err.print(f"comparison crops written to {compare_dir}")

    table = Table(title=f"x{scale}, Y channel, 4-px border crop, SSIM {ssim_method}; "
                        "the paper's Table 2 in brackets")
    table.add_column("method")
    for ds in loaded:
        table.add_column(f"{ds} PSNR", justify="right")
        table.add_column(f"{ds} SSIM", justify="right")
        if lpips_model is not None:
            table.add_column(f"{ds} LPIPS", justify="right")
    for name in methods:
        row = [name]
        for ds in loaded:
            rec = next(r for r in records if r.dataset == ds and r.method == name)
            paper = PAPER.get((ds, name))
            row.append(f"{rec.psnr:.2f}" + (f" [{paper[0]:.2f}]" if paper else ""))
            show_paper = paper and ssim_method == "daala"
            row.append(f"{rec.ssim:.4f}" + (f" [{paper[1]:.4f}]" if show_paper else ""))
            if lpips_model is not None:
                row.append(f"{rec.lpips:.4f}")
        table.add_row(*row)
    _print_table(table)
    if json_path:
        data = [r.as_dict() for r in records]
        json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if csv_path:
        import csv

        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["dataset", "method", "scale", "psnr", "ssim", "ssim_method", "lpips",
                        "images"])
            for r in records:
                w.writerow([r.dataset, r.method, r.scale, f"{r.psnr:.4f}", f"{r.ssim:.5f}",
                            r.ssim_method, "" if r.lpips is None else f"{r.lpips:.5f}",
                            r.images])


main.add_command(_models_group)
