"""The training losses as objects (pixel, perceptual, adversarial) and their composition
for a stage: :func:`generator_losses` says which terms the generator step sums."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from srgan_cli.train.config import TrainConfig, adv_weight_at


class PixelLoss:
    """Mean squared (``mse``) or absolute (``l1``) error of SR against HR, in fp32."""

    def __init__(self, kind: str = "mse") -> None:
        if kind not in ("mse", "l1"):
            raise ValueError(f"unknown pixel loss {kind!r} (mse, l1)")
        self.kind = kind
        self._fn = F.mse_loss if kind == "mse" else F.l1_loss

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return self._fn(sr.float(), hr)


class PerceptualLoss:
    """Mean squared distance of rescaled VGG19 features (the paper's VGG22/VGG54)."""

    def __init__(self, vgg: torch.nn.Module) -> None:
        self.vgg = vgg

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        from srgan_cli.nets.vgg import content_loss

        return content_loss(self.vgg, sr, hr)


class AdversarialLoss:
    """Binary cross-entropy on discriminator logits: -log D(x) when ``x`` should be judged
    real, -log(1 - D(x)) when fake. The generator's term is ``loss(D(G(LR)), real=True)``."""

    def __call__(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)


class GridLoss:
    """How far SR's spectrum stands above HR's at the LR grid's frequencies, in dB: the
    training form of :func:`srgan_cli.bench.metrics.grid_score` on whole crops.

    Each crop's BT.601 luma (mean removed, 2-D Hann window) gives |FFT|^2; at each of the
    ``period``^2 - 1 grid bins, 10 log10(power / median of its 7x7 neighbourhood without the
    bin). SR's score per bin is averaged over the batch, HR's likewise, and the loss is the
    mean over bins of max(SR - HR, 0): nothing once SR's grid is no stronger than the real
    images'. The gradient goes through the bin and its neighbourhood's median alike: a loss
    on the bin's power alone pushes every high frequency down and blurs the output.
    """

    def __init__(self, period: int = 4, neighbourhood: int = 7) -> None:
        self.period, self.half = period, neighbourhood // 2

    def scores(self, img: torch.Tensor) -> torch.Tensor:
        """Per-bin scores (N, period^2 - 1) of RGB crops in [-1, 1], (N, 3, H, W)."""
        x = (img.float() + 1) * 127.5
        y = (65.481 * x[:, 0] + 128.553 * x[:, 1] + 24.966 * x[:, 2]) / 255.0
        p = self.period
        h, w = y.shape[-2] // p * p, y.shape[-1] // p * p
        y = y[:, :h, :w]
        y = y - y.mean(dim=(-2, -1), keepdim=True)
        window = torch.outer(torch.hann_window(h, periodic=False, device=y.device),
                             torch.hann_window(w, periodic=False, device=y.device))
        power = torch.fft.fft2(y * window).abs().square() + 1e-12
        rows, cols = self._indices(h, w, y.device)
        ring = power[:, rows[1], cols[1]]  # (N, bins, neighbours)
        centre = power[:, rows[0], cols[0]]  # (N, bins)
        return 10.0 * torch.log10(centre / ring.median(dim=-1).values)

    def _indices(self, h: int, w: int, device) -> tuple[tuple, tuple]:
        p, half = self.period, self.half
        bins = [(i * h // p, j * w // p) for i in range(p) for j in range(p) if i or j]
        offs = [(dy, dx) for dy in range(-half, half + 1) for dx in range(-half, half + 1)
                if dy or dx]
        centre_r = torch.tensor([u for u, _ in bins], device=device)
        centre_c = torch.tensor([v for _, v in bins], device=device)
        ring_r = torch.tensor([[(u + dy) % h for dy, _ in offs] for u, _ in bins], device=device)
        ring_c = torch.tensor([[(v + dx) % w for _, dx in offs] for _, v in bins], device=device)
        return (centre_r, ring_r), (centre_c, ring_c)

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            real = self.scores(hr).mean(0)
        fake = self.scores(sr).mean(0)
        return (fake - real).clamp_min(0).mean()


@dataclass
class GeneratorLosses:
    """The terms of a stage's generator loss, summed in this order.

    ``content``: the MSE (logged as ``l_g_pix``) or VGG loss (``l_g_percep``), weight 1;
    ``adversarial``: weighted by :func:`adv_weight_at` (``l_g_gan``; gan stage only);
    ``pixel``: an L1 term beside a VGG content loss, weighted by ``pixel_weight``
    (``l_g_l1``); ``grid``: the grid loss, weighted by ``grid_weight`` (``l_g_grid``). When the content loss is not the MSE, the MSE is still logged as
    ``l_g_pix`` (no gradient).
    """

    content: PixelLoss | PerceptualLoss
    adversarial: AdversarialLoss | None = None
    adversarial_weight: Callable[[int], float] | None = None  # of the 0-based iteration
    pixel: PixelLoss | None = None
    pixel_weight: float = 0.0
    grid: GridLoss | None = None
    grid_weight: float = 0.0

    @property
    def perceptual(self) -> bool:
        return isinstance(self.content, PerceptualLoss)


def generator_losses(cfg: TrainConfig, vgg: torch.nn.Module | None) -> GeneratorLosses:
    """The generator's loss for ``cfg``'s stage: MSE (srresnet) or VGG content (``vgg``
    given), + the adversarial term in the gan stage, + L1 when ``pixel_weight`` is set
    beside a VGG content loss."""
    perceptual = vgg is not None
    gan = cfg.stage == "gan"
    return GeneratorLosses(
        content=PerceptualLoss(vgg) if perceptual else PixelLoss("mse"),
        adversarial=AdversarialLoss() if gan else None,
        adversarial_weight=partial(adv_weight_at, cfg) if gan else None,
        pixel=PixelLoss("l1") if perceptual and cfg.pixel_weight else None,
        pixel_weight=cfg.pixel_weight,
        grid=GridLoss() if cfg.grid_weight else None, grid_weight=cfg.grid_weight)
