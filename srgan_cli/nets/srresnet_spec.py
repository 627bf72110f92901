"""The SRResNet generator's layout as numbers: :class:`GeneratorSpec` (parameters, FLOPs,
receptive radius, live activations) and its value ranges. A leaf module (no torch, nothing
else of the package), so the torch modules, the layout converters and the architecture
(:mod:`srgan_cli.arch.srresnet`) can all import it without importing each other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

NAME = "srresnet"
INPUT_RANGE = (0.0, 1.0)
OUTPUT_RANGE = (-1.0, 1.0)
# Rows of the banded last stage's 4C-map tensors computed at a time: about this many bytes
# each (srgan_cli.inference.rewrite.SubpixelTail).
BAND_BYTES = 96 << 20
_SPEC_KEYS = ("scale", "blocks", "width", "channels", "delattice")
# keys a file or registry block may leave out (older files): their defaults apply
_OPTIONAL_SPEC_KEYS = ("delattice",)


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a generator; stored in weight-file metadata."""

    scale: int = 4
    blocks: int = 16
    width: int = 64
    channels: int = 3
    # the lattice-removal output filter's window in LR pixels (srgan_cli.nets.delattice;
    # 0: none, the paper's network)
    delattice: int = 0

    def __post_init__(self) -> None:
        if self.scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {self.scale}")
        if self.blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {self.blocks}")
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if self.delattice < 0 or self.delattice == 1:
            raise ValueError(f"delattice must be 0 (off) or at least 2 LR pixels, got "
                             f"{self.delattice} (1 would leave only the bicubic upscale)")

    def unfiltered(self) -> "GeneratorSpec":
        """The same network without the lattice filter (it has no weights): what a
        filtered file shares with its parent."""
        return replace(self, delattice=0)

    @property
    def up_stages(self) -> int:
        return int(math.log2(self.scale))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def receptive_radius(self) -> int:
        """LR pixels each output pixel depends on, on each side (exact).

        Followed back from an output pixel of each sub-pixel phase: the 9x9 tail reaches 4
        pixels; each upsampling stage maps output rows [a, b] to [a // 2 - 1, b // 2 + 1]
        at its input (the shuffle, then its 3x3 conv); then 1 (fuse) + 2 per residual
        block + 4 (the 9x9 head) LR pixels; the lattice filter adds ``delattice // 2``.
        """
        trunk = 4 + 2 * self.blocks + 1
        r = 0
        for phase in range(self.scale):  # output pixel scale * q + phase, LR pixel q
            a, b = phase - 4, phase + 4
            for _ in range(self.up_stages):
                a, b = a // 2 - 1, b // 2 + 1
            r = max(r, trunk - a, b + trunk)
        return r + self.delattice // 2

    def flops_per_lr_pixel(self) -> float:
        """Multiply-adds x 2 per LR pixel (convolutions only)."""
        c, k = self.width, self.channels
        macs = 81 * k * c  # head
        macs += self.blocks * 2 * 9 * c * c
        macs += 9 * c * c  # fuse
        area = 1
        for _ in range(self.up_stages):
            macs += area * 9 * c * 4 * c
            area *= 4
        macs += area * 81 * c * k
        return 2.0 * macs

    def parameters(self) -> int:
        """Learned values (weights, biases, PReLU slopes, BN affine terms; not BN statistics)."""
        c, k = self.width, self.channels
        head = 81 * k * c + c + c  # 9x9 conv + bias + PReLU
        block = 2 * (9 * c * c + c) + 2 * (2 * c) + c  # two convs, two BNs, PReLU
        fuse = 9 * c * c + c + 2 * c
        up = 9 * c * 4 * c + 4 * c + c
        tail = 81 * c * k + k
        return head + self.blocks * block + fuse + self.up_stages * up + tail

    def live_values(self) -> tuple[int, int]:
        """Peak live activations per LR pixel of one forward pass: ``(as trained, banded)``.

        As trained: at most three live tensors of ``width`` maps at the output resolution.
        With the last stage in bands (the inference form on the CPU): the largest of the
        residual blocks (about 6 tensors of ``width`` maps), the stage before the last (its
        input plus two tensors of 4 * width maps at its own resolution) and the last
        stage's input plus two copies of its output; its band buffers (4 x BAND_BYTES)
        come on top whatever the size. The lattice filter (``delattice``) needs 8 fp32
        copies of the output after the network: the larger of the two peaks counts.
        """
        c, n = self.width, self.up_stages
        banded = max(6 * c,
                     9 * c * 4 ** (n - 2) if n >= 2 else 0,
                     c * 4 ** max(n - 1, 0) + 2 * self.channels * self.scale**2)
        # the lattice filter's fp32 copies of the output (output, bicubic, residual, its
        # phases, their padded and local means, the result): it runs after the network's
        # activations are gone, so its peak counts beside theirs, not on top
        post = 8 * self.channels * self.scale**2 if self.delattice else 0
        return max(3 * c * self.scale**2, post), max(banded, post)


def output_to_unit(y, peak: float = 1.0):
    """A generator output (a tensor in :data:`OUTPUT_RANGE`) as ``[0, peak]``, not clamped:
    ``(y - lo) * (peak / (hi - lo))`` (``(y + 1) * peak / 2`` for [-1, 1], exactly)."""
    lo, hi = OUTPUT_RANGE
    return (y - lo) * (peak / (hi - lo))


def unit_to_output_(x):
    """A tensor in [0, 1] mapped in place to :data:`OUTPUT_RANGE` (training targets):
    ``x * (hi - lo) + lo`` (``2x - 1`` for [-1, 1], exactly)."""
    lo, hi = OUTPUT_RANGE
    return x.mul_(hi - lo).add_(lo)
