"""Time from process start to the first finished tile of ``srgan upscale ARGS...``.

    python scripts/perf_startup.py IMAGE -o OUT --tile 128 --overwrite

Runs the real command line in this process and prints, from the kernel's process start
time (/proc/self/stat, 10 ms resolution): when the CLI module was imported, when the
first tile's forward pass returned, and when the command finished.
"""

from __future__ import annotations

import os
import sys


def since_start() -> float:
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    from srgan_cli.cli import main as cli

    t_import = since_start()
    import srgan_cli.inference.upscale as U

    marks: dict[str, float] = {}
    real = U.Upscaler._forward_fn

    def patched(self, *args, **kwargs):  # whatever Upscaler._forward_fn takes
        fwd = real(self, *args, **kwargs)

        def timed(x):
            y = fwd(x)
            marks.setdefault("first_tile_s", since_start())
            return y

        return timed

    U.Upscaler._forward_fn = patched
    try:
        cli(["upscale", *sys.argv[1:]], standalone_mode=False)
    finally:
        print(f"cli imported {t_import:.2f} s, first tile {marks.get('first_tile_s', float('nan')):.2f} s, "
              f"done {since_start():.2f} s after process start", file=sys.stderr)


if __name__ == "__main__":
    main()
