"""Options shared by several commands, declared once (``--device``, ``--precision``,
``--kernels``, ``--border``, ``--model``), and the parsers of option values that are not
click types. Their choices come from the library's constants where those load without
torch, else are repeated here and checked against them by tests/test_cli_options.py."""

from __future__ import annotations

import click

from srgan_cli.arch.base import PRECISIONS as MODEL_PRECISIONS
from srgan_cli.inference.kernels.choice import CHOICES as KERNELS

# What --precision and --kernels accept: the model precisions the architectures declare
# (srgan_cli.arch.base) and the kernel choices of srgan_cli.inference.kernels.choice (neither imports torch).
# tests/test_cli_options.py checks that they agree with srgan_cli.inference.runner's.
PRECISIONS = ("auto", *MODEL_PRECISIONS)
DEVICE_DEFAULT = "auto"


def device_option(f):
    """``--device``, for every command that runs a model (``upscale``, ``benchmark``,
    ``train``)."""
    return click.option("--device", default=DEVICE_DEFAULT, show_default=True,
                        help="auto, cpu, cuda, cuda:N, mps.")(f)


def precision_choice() -> click.Choice:
    """The values of every ``--precision`` (inference and training)."""
    return click.Choice(PRECISIONS)


def inference_options(f):
    """``--device``, ``--precision`` and ``--kernels``, declared once for every command
    that runs a model for inference (``upscale``, ``benchmark``)."""
    f = click.option("--kernels", type=click.Choice(KERNELS), default="auto",
                     show_default=True, help="auto: run the 3x3 convolutions through srgan's "
                     "fused kernels (PReLU, residual adds and pixel shuffles folded in; built "
                     "with the C compiler on first use): AMX in bf16 on CPUs with AMX-BF16, AVX2 "
                     "in fp32 on CPUs without AMX; else PyTorch's operators. amx, avx2: insist "
                     "on that path; torch: never.")(f)
    f = click.option("--precision", type=precision_choice(),
                     default="auto", show_default=True, help="auto: bf16 on CPUs with "
                     "AMX/AVX512-BF16 (fp32 on other CPUs), fp16 on CUDA. A reduced-precision "
                     "tile that yields NaN/Inf is redone in fp32.")(f)
    return device_option(f)


# srgan_cli.inference.upscale's BORDERS, DEFAULT_BORDER and MIRROR_PAD, which import torch;
# tests/test_cli_options.py checks that they agree
BORDERS = ("zero", "symmetric", "reflect", "edge")
DEFAULT_BORDER = "symmetric"
MIRROR_PAD = 12


def border_option(f):
    """``--border``, for the commands that run a model on whole images (``upscale``,
    ``benchmark``, and ``models export --onnx``, which builds it into the graph)."""
    return click.option(
        "--border", type=click.Choice(BORDERS), default=DEFAULT_BORDER, show_default=True,
        help=f"Image borders: {', '.join(repr(b) for b in BORDERS[1:])} mirror the image by "
        f"{MIRROR_PAD} LR px first (fewer for a network that reaches fewer; solid colours "
        "and tiny images stay right at the corners); 'zero' runs the network with its zero "
        "padding, its raw behaviour (corners of flat areas off by up to ~40 levels; Set5 "
        "PSNR +0.009 dB).")(f)


def model_option(*, several: bool):
    """``-m/--model``: one model (``upscale``; default the registry's default model), or
    several, where the baselines count as models (``benchmark``)."""
    if several:
        return click.option("-m", "--model", "models", multiple=True,
                            help="Registered model name, .safetensors path or "
                            "hf://owner/repo/file.safetensors[@revision], a community model "
                            "file (.pth/.safetensors of any x4 SR model spandrel recognises), "
                            "or the baselines 'nearest' / 'bicubic' (repeatable). Default: "
                            "the registry's default model, srresnet and bicubic.")
    return click.option("-m", "--model", default=None,
                        help="Registered model name, path to a .safetensors file, "
                        "hf://owner/repo/file.safetensors[@revision], or a community model "
                        "file (.pth/.pt/.ckpt/.safetensors: ESRGAN, Real-ESRGAN, SwinIR, HAT, "
                        "... x2/x3/x4/x8, recognised by spandrel). Default: the registry's "
                        "default model (`srgan models list` shows it).")


def benchmark_models(models: tuple[str, ...]) -> tuple[str, ...]:
    """``benchmark``'s models: those given, else the registry's default model (whatever it
    is), the SRResNet and bicubic, each once."""
    if models:
        return models
    from srgan_cli.distribution.registry import default_model

    return tuple(dict.fromkeys((default_model(), "srresnet", "bicubic")))


def parse_tile(value: str) -> int | None:
    """``--tile``: None for 'auto', else a number of LR pixels (0: the whole image)."""
    if value == "auto":
        return None
    try:
        t = int(value)
    except ValueError:
        raise click.BadParameter("expected 'auto' or a number of LR pixels") from None
    if t < 0:
        raise click.BadParameter("must be >= 0")
    return t


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """``--shard K/N``: (K, N), or None when not given."""
    if value is None:
        return None
    try:
        k, n = (int(v) for v in value.split("/"))
    except ValueError:
        raise click.BadParameter("expected K/N, e.g. 2/8") from None
    if not (n >= 1 and 1 <= k <= n):
        raise click.BadParameter("need 1 <= K <= N")
    return k, n
