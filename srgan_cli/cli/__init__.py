"""The ``srgan`` command line: one module per command (``upscale``, ``benchmark``,
``train``, ``models``), the options they share in :mod:`.options`, and what they print
with in :mod:`.console`. These are the only modules that print.

Heavy imports (torch) happen inside the commands so that ``srgan --help`` is instant.
"""

from __future__ import annotations

import click

from srgan_cli.cli import benchmark, models, train, upscale


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


for _command in (upscale.upscale, benchmark.benchmark, train.train, models.models):
    main.add_command(_command)
