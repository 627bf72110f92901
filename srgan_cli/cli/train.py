"""``srgan train``: options for the training loop of :mod:`srgan_cli.train.loop`, and its
progress bar."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.markup import escape

from srgan_cli.cli.console import command_line, err, exit_on_error, fail, interrupt_on_signals
from srgan_cli.cli.options import device_option, precision_choice
from srgan_cli.train.config import (
    CONTENT_LOSSES,
    DISCRIMINATORS,
    GAN_LOSSES,
    GAN_LR_STEP,
    LR_SCHEDULES,
    STAGE_DEFAULTS,
    STAGES,
    TEACHER_INPUTS,
    TEACHER_LOSSES,
    TEACHER_ON,
    TrainConfig,
    field_defaults,
)

# Every default below is TrainConfig's (field_defaults), every choice the training modules'
# constant, so the options cannot drift from what a TrainConfig built in Python trains;
# tests/test_cli_options.py checks it. Two lists repeat modules that import torch:
TIE_MODES = ("off", "dc", "resize", "mixed")  # srgan_cli.nets.generator.TIE_MODES
SCALES = ("2", "4", "8")  # the scales GeneratorSpec builds
DEFAULTS = field_defaults()
GAN = STAGE_DEFAULTS["gan"]


def _per_stage(key: str, show=str) -> str:
    """'A (srresnet), B (gan)': the stages' defaults for a field left at None."""
    return ", ".join(f"{show(STAGE_DEFAULTS[s][key])} ({s})" for s in STAGES)


@click.command()
@click.option("--stage", type=click.Choice(STAGES), default=DEFAULTS["stage"],
              show_default=True, help="'srresnet': the paper's MSE pre-training. 'gan': SRGAN "
              f"(generator from --init, default the registered '{GAN['init']}'; "
              f"{GAN['content_loss'].upper()} content loss + {DEFAULTS['adv_weight']:g} x adversarial "
              f"loss; {GAN_LR_STEP:,} iterations at --lr then "
              f"{GAN['iters'] - GAN_LR_STEP:,} at lr/10).")
@click.option("--data", "data", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of HR training images (repeatable). Default: ../shared/datasets/train "
                   "when present.")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where checkpoints (last.pt) and the log (log.jsonl) go. "
              "Default: runs/<stage>.")
@click.option("--iters", type=click.IntRange(1), default=None,
              help=f"Total iterations. Default: the paper's, {_per_stage('iters', '{:,}'.format)}.")
@click.option("--batch", type=click.IntRange(1), default=DEFAULTS["batch"], show_default=True)
@click.option("--crop", type=click.IntRange(8), default=DEFAULTS["crop"], show_default=True,
              help="HR crop size in pixels (LR crops are crop/scale).")
@click.option("--scale", type=click.Choice(SCALES),
              default=str(DEFAULTS["scale"]), show_default=True)
@click.option("--blocks", type=click.IntRange(1), default=DEFAULTS["blocks"], show_default=True,
              help="Residual blocks B.")
@click.option("--width", type=click.IntRange(1), default=DEFAULTS["width"], show_default=True,
              help="Feature maps per conv.")
@click.option("--lr", type=float,
              default=DEFAULTS["lr"], show_default=True, help="Adam learning rate.")
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default=None,
              help=f"Default: {_per_stage('lr_schedule')}; the gan stage's step is at "
              f"{GAN_LR_STEP:,}.")
@click.option("--lr-milestones", default=None, help="For 'step': comma-separated iterations at "
              f"which the lr is multiplied by 0.1 (gan default: {GAN_LR_STEP}).")
@click.option("--content-loss", type=click.Choice(CONTENT_LOSSES), default=None,
              help="mse, vgg22, vgg54: the paper's Table 1 variants. vgg-multi: L1 of VGG19's "
              "conv1_2, conv2_2, conv3_4, conv4_4 and conv5_4 outputs before their ReLU, "
              "weighted 0.1, 0.1, 1, 1, 1 (Real-ESRGAN's perceptual loss; mid-level texture "
              "beside VGG54's objects; its gradient is 500-900x VGG54's: pair it with "
              f"--content-weight 2e-3). Default: {_per_stage('content_loss')}.")
@click.option("--content-weight", type=click.FloatRange(0, min_open=True),
              default=DEFAULTS["content_weight"], show_default=True,
              help="Weight of the content loss.")
@click.option("--adv-weight", type=float, default=DEFAULTS["adv_weight"], show_default=True,
              help="gan: weight of the adversarial loss -log D(G(LR)).")
@click.option("--adv-degraded", type=click.FloatRange(0), default=DEFAULTS["adv_degraded"],
              show_default=True, metavar="F",
              help="gan with --degradation real: the adversarial term's weight on a crop "
              "whose LR is degraded, relative to a clean crop (1: all alike; 0: D pushes only "
              "the clean crops' SR, the degraded ones follow the content losses). The "
              "discriminator still learns from every crop.")
@click.option("--gan-loss", type=click.Choice(GAN_LOSSES), default=DEFAULTS["gan_loss"],
              show_default=True,
              help="gan: the adversarial loss. standard: the paper's, -log D(G(LR)) for the "
              "generator; ragan: relativistic average (as ESRGAN): D judges whether HR is "
              "more realistic than the batch's SR on average and the reverse, and the "
              "generator learns from both (one process only).")
@click.option("--pixel-weight", type=click.FloatRange(0), default=DEFAULTS["pixel_weight"],
              show_default=True,
              help="gan: weight of an L1 pixel loss (on [-1, 1] images) added to the VGG content "
              "loss, as ESRGAN does; keeps colour and structure. 0: the paper's recipe.")
@click.option("--adv-warmup", type=click.IntRange(0),
              default=DEFAULTS["adv_warmup"], show_default=True,
              help="gan: ramp the adversarial weight linearly from 0 to --adv-weight over this "
              "many iterations. 0: the paper's recipe.")
@click.option("--d-warmup", type=click.IntRange(0), default=DEFAULTS["d_warmup"], show_default=True,
              help="gan: discriminator-only iterations before the first generator step of a "
              "fresh discriminator (e.g. --init from a released generator): a new D first "
              "learns the current G.")
@click.option("--d-reset-every", type=click.IntRange(0), default=DEFAULTS["d_reset_every"],
              show_default=True, metavar="N",
              help="gan: every N iterations replace the discriminator with a fresh one (new "
              "weights, fresh Adam state), warmed up by --d-warmup D-only iterations before "
              "the next generator step. 0: one discriminator for the whole run.")
@click.option("--delattice", type=click.IntRange(0), default=None, metavar="W",
              help="Train the generator with the lattice filter on its output (each sub-pixel "
              "phase's mean residual against bicubic over W x W LR pixels removed, W >= 2, as "
              "srgan-delattice runs): the losses see the filtered output and the exported "
              "file keeps the filter. 0: off, the paper's network. Default: the --init "
              "file's filter (off without one).")
@click.option("--tie-phases", type=click.Choice(TIE_MODES), default=DEFAULTS["tie_phases"],
              show_default=True,
              help="Tie the four sub-pixel phases of each upsampling convolution (at the start "
              "and after every step). dc: one DC gain and bias, so flat areas cannot get a "
              "pattern locked to the LR grid; resize: exactly resize-convolution (nearest x2 + "
              "3x3 conv, as ESRGAN); mixed: resize on the first stage, dc on the second. "
              "The released weights keep the paper's layout.")
@click.option("--grid-weight", type=click.FloatRange(0), default=DEFAULTS["grid_weight"],
              show_default=True,
              help="Weight of the grid loss: the mean squared difference between SR's and "
              "HR's sub-pixel phase offsets (each of the 16 phases' mean luma minus their "
              "mean, per crop), in levels^2: a lattice locked to the LR grid. 0: off.")
@click.option("--flat-weight", type=click.FloatRange(0), default=DEFAULTS["flat_weight"],
              show_default=True,
              help="Weight of the solid-colour loss: L1 between G's output for solid LR "
              "colours (--flat-colours a step, saturated ones as often as others; an unbounded image, "
              "as inference sees a flat area) and the colour itself. Keeps flat colours "
              "true. 0: off.")
@click.option("--flat-colours", type=click.IntRange(1), default=DEFAULTS["flat_colours"],
              show_default=True, help="Solid colours per step for --flat-weight.")
@click.option("--teacher", default=None, metavar="MODEL",
              help="A frozen generator (registered name or .safetensors file) to distil: with "
              "--teacher-weight, a term comparing the trained generator's output with the "
              "teacher's for the same LR (--teacher-loss) is added to the loss.")
@click.option("--teacher-weight", type=click.FloatRange(0), default=DEFAULTS["teacher_weight"],
              show_default=True, help="Weight of the distillation term (--teacher); "
              "--content-weight does not apply to it, so a content-loss term against the "
              "teacher wants the same scale (e.g. 2e-3 beside vgg-multi). 0: off.")
@click.option("--teacher-input", type=click.Choice(TEACHER_INPUTS),
              default=DEFAULTS["teacher_input"], show_default=True,
              help="What the teacher sees: lr, the batch's LR; clean, the clean antialiased "
              "bicubic downscale of HR, so a run on degraded LR (--degradation real) learns "
              "to give from a degraded image what the teacher gives from a clean one.")
@click.option("--teacher-on", type=click.Choice(TEACHER_ON), default=DEFAULTS["teacher_on"],
              show_default=True,
              help="Which crops the distillation term covers: all; or clean, only the crops "
              "whose LR is the clean downscale of HR (with --degradation real: a degraded "
              "crop is judged by the HR losses alone, the clean ones also by the teacher).")
@click.option("--teacher-delattice", type=click.IntRange(0), default=DEFAULTS["teacher_delattice"],
              show_default=True, metavar="W",
              help="Remove the teacher output's local sub-pixel phase offsets (each of the "
              "scale^2 phases' mean over W x W LR pixels, minus their mean; W >= 2) before "
              "comparing: a sub-pixel teacher's texture without its 4-px lattice. 0: off.")
@click.option("--teacher-loss", type=click.Choice(TEACHER_LOSSES),
              default=DEFAULTS["teacher_loss"], show_default=True,
              help="The distillation term: l1, the L1 distance to the teacher's output; "
              "content, the run's VGG content loss with the teacher's output in HR's place "
              "(its texture rather than its exact pixels; one more VGG pass on SR).")
@click.option("--artifact-weight", type=click.FloatRange(0),
              default=DEFAULTS["artifact_weight"], show_default=True,
              help="Weight of the artifact loss: L1 between SR and HR weighted by the local "
              "variance of their difference (texture HR does not have, such as GAN noise on "
              "a smooth or out-of-focus area), after Liang et al. 2022 (LDL); with --ema, "
              "only where SR is further from HR than the EMA's output. 0: off.")
@click.option("--d-lr", type=float, default=None, help="gan: discriminator lr (default: --lr; "
              "follows the same schedule).")
@click.option("--discriminator", type=click.Choice(DISCRIMINATORS),
              default=DEFAULTS["discriminator"], show_default=True,
              help="gan: vgg, the paper's (one realness logit per crop); unet, a U-Net with "
              "spectral normalisation that judges every pixel (as Real-ESRGAN trains with; "
              "about 4x the paper's discriminator's arithmetic on 96-px crops).")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=DEFAULTS["ema"],
              show_default=True, help="Keep an exponential moving average of the generator "
              "with this decay (e.g. 0.999); validation and --export use it. 0: off.")
@click.option("--vgg-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ImageNet VGG19 features (safetensors, torchvision layout) for the VGG "
              "losses. Default: $SRGAN_VGG_WEIGHTS, ../shared/weights, else torchvision's "
              "download.")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="gan: LPIPS weights for validation (default as for benchmark).")
@click.option("--precision", type=precision_choice(), default=DEFAULTS["precision"],
              show_default=True, help="Autocast dtype. auto: bf16 on CPUs with AMX/AVX512-BF16 and "
              "on CUDA (fp16 where bf16 is unsupported), else fp32.")
@click.option("--channels-last/--no-channels-last", default=DEFAULTS["channels_last"],
              show_default=True)
@device_option
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True)
@click.option("--ckpt-every", type=click.IntRange(1),
              default=DEFAULTS["ckpt_every"], show_default=True)
@click.option("--val-every", type=click.IntRange(1),
              default=DEFAULTS["val_every"], show_default=True,
              help="Validate (Set5 Y-PSNR) every N iterations when Set5 is available.")
@click.option("--val-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with <Name>_HR/ and <Name>_LR_x4/. Default: Set5 from ../shared.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Continue from a checkpoint (model, optimiser, RNG and iteration restored), "
              "with the run's settings (data, run folder, batch, crop, lr...). Options given "
              "again must match, except --iters, --ckpt-every, --val-every, --log-every, "
              "--device, --precision, --channels-last, --run-dir, --val-dir, --vgg-weights, "
              "--lpips-weights and --max-seconds (this invocation's; not restored).")
@click.option("--init", "init_path", default=None,
              help="Start the generator from released weights: a registered name or a "
              f".safetensors file (fresh optimiser). The gan stage defaults to '{GAN['init']}'.")
@click.option("--export", "export_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="At the end, write the generator as a safetensors release file.")
@click.option("--log-every", type=click.IntRange(1),
              default=DEFAULTS["log_every"], show_default=True,
              help="Log the mean losses every N iterations (each log waits for the device).")
@click.option("--max-seconds", type=click.FloatRange(0), default=DEFAULTS["max_seconds"],
              show_default=True,
              help="Wall-clock limit (data loading included): then checkpoint, validate, "
              "stop and --export as at the end; --resume continues. 0: none.")
@click.option("--degradation", default=DEFAULTS["degradation"], show_default=True,
              metavar="clean|real[,K=V...]",
              help="How LR crops are made. clean: the paper's antialiased bicubic downscale. "
              "real: Real-ESRGAN's first-order degradations per crop (Gaussian blur, x4 "
              "bicubic/bilinear/area, Gaussian or Poisson noise, JPEG 30-95), seeded by the "
              "run; 'real,jpeg_quality=50:95,noise_prob=0.5' changes its ranges (README).")
def train(resume, export_path, **options):
    """Train the generator: the paper's SRResNet stage, or its SRGAN stage (--stage gan).

    Runs on CPU (bf16 autocast + channels_last) or CUDA. Ctrl-C writes a checkpoint;
    --resume continues exactly where it stopped.
    """
    from srgan_cli.errors import SrganError
    from srgan_cli.train.export import export
    from srgan_cli.train.loop import train as run_train

    cfg = _resumed(resume, options) if resume else _config(**options)
    main_process = os.environ.get("RANK", "0") == "0"
    if main_process:
        run_dir = Path(cfg.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "commands.txt", "a", encoding="utf-8") as f:
            f.write(command_line(click.get_current_context()) + "\n")
    with _progress_bar(not main_process) as bar:
        task = bar.add_task("train", total=cfg.iters, stats="")
        interrupt_on_signals()
        try:
            result = run_train(cfg, resume=resume, on_progress=_on_progress(bar, task))
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


def _fields(*, data, run_dir, scale, lr_milestones, val_dir, init_path, vgg_weights,
            lpips_weights, **same) -> dict:
    """``srgan train``'s options as :class:`TrainConfig` fields (``same``: those that are
    its fields as they are); unset options stay None, for the stage's defaults."""
    milestones = None
    if lr_milestones is not None:
        try:
            milestones = [int(m) for m in lr_milestones.split(",") if m.strip()]
        except ValueError:
            fail(f"--lr-milestones: expected comma-separated integers, got {lr_milestones!r}")
    _check_degradation(same["degradation"])

    def text(path):
        return str(path) if path else None

    return dict(data=[str(d) for d in data] or None, run_dir=text(run_dir), scale=int(scale),
                lr_milestones=milestones, val_dir=text(val_dir), init=text(init_path),
                vgg_weights=text(vgg_weights), lpips_weights=text(lpips_weights), **same)


def _config(**options):
    """The :class:`TrainConfig` of a new run: the options, the default data and Set5."""
    from srgan_cli import paths

    fields = _fields(**options)
    if not fields["data"]:
        fields["data"] = [str(d) for d in paths.default_train_dirs()]
    if not fields["data"]:
        fail("no training data: pass --data DIR (../shared/datasets/train not found)")
    if fields["val_dir"] is None:
        val_dir = paths.benchmark_dir("Set5")
        fields["val_dir"] = str(val_dir) if val_dir else None
    return TrainConfig(**fields)


# the options whose TrainConfig field has another name
_FIELD_OF_OPTION = {"init_path": "init"}


def _resumed(resume: Path, options: dict):
    """The :class:`TrainConfig` of a resumed run: the checkpoint's, with the options given
    on the command line over it; refuses recipe options that differ, notes the others."""
    from click.core import ParameterSource

    from srgan_cli.train.config import resumed_config
    from srgan_cli.train.state import checkpoint_config

    ctx = click.get_current_context()
    fields = _fields(**options)
    given = {}
    for name in options:
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                              ParameterSource.ENVIRONMENT):
            field = _FIELD_OF_OPTION.get(name, name)
            given[field] = fields[field]
    with exit_on_error():
        cfg, notes = resumed_config(checkpoint_config(resume), given, str(resume))
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    return cfg


def _check_degradation(text: str) -> None:
    """Exit with one line (status 2) when ``--degradation`` cannot be parsed."""
    from srgan_cli.train.degrade import DegradationError, parse_degradation

    try:
        parse_degradation(text)
    except DegradationError as e:
        fail(f"--degradation: {e}", 2)


def _progress_bar(disable: bool):
    """The training progress bar (on stderr): iterations, losses, lr and speed, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, transient=False, disable=disable,
    )


def _on_progress(bar, task):
    """The training loop's progress callback: the bar's stats, validation results,
    data loading and interruption messages."""
    def on_progress(p):
        if p.event == "step":
            losses = " ".join(f"{k} {v:.5f}" for k, v in p.losses.items())
            bar.update(task, completed=p.iteration,
                       stats=f"{losses} lr {p.lr:.1e} {p.its_per_sec:.2f} it/s")
        elif p.event == "validate":
            bar.console.print(f"iter {p.iteration}: Set5 Y-PSNR {p.val_psnr:.3f} dB"
                              + (f", LPIPS {p.val_lpips:.4f}" if p.val_lpips is not None
                                 else "")
                              + (f", grid excess {p.val_grid:+.1f} dB"
                                 if p.val_grid is not None else ""))
        elif p.event == "loading":
            bar.update(task, completed=p.iteration)
            bar.console.print(p.message)
        elif p.event == "checkpoint" and p.message.startswith(("interrupted", "time limit")):
            bar.console.print(p.message)

    return on_progress
