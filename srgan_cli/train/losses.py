"""The training losses as objects (pixel, perceptual, adversarial) and their composition
for a stage: :func:`generator_losses` says which terms the generator step sums."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from srgan_cli.nets.delattice import remove_phase_offsets
from srgan_cli.nets.srresnet_spec import OUTPUT_RANGE, output_to_unit
from srgan_cli.train.config import TEACHER_LOSSES, TrainConfig, adv_weight_at


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
    """Mean squared distance of rescaled VGG19 features (the paper's VGG22/VGG54), or the
    weighted L1 of several layers' (``vgg-multi``): :func:`srgan_cli.nets.vgg.content_loss`."""

    def __init__(self, vgg: torch.nn.Module) -> None:
        self.vgg = vgg

    def __call__(self, sr: torch.Tensor, *targets: torch.Tensor):
        """The loss against each target (one: a tensor; several: a tuple), SR's features
        computed once."""
        from srgan_cli.nets.vgg import content_loss

        return content_loss(self.vgg, sr, *targets)


class AdversarialLoss:
    """Binary cross-entropy on discriminator logits: -log D(x) when ``x`` should be judged
    real, -log(1 - D(x)) when fake (the paper's). The generator's term is
    ``loss(D(G(LR)), real=True)``; the discriminator's, ``loss(D(HR), True)`` and
    ``loss(D(G(LR)), False)``."""

    relativistic = False  # True: the terms compare real and generated logits

    def __call__(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    def generator_term(self, fake: torch.Tensor, real: torch.Tensor | None = None,
                       weights: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's adversarial term from D's logits on SR (and on HR: unused).
        ``weights``: (N,) per-crop weights (each crop's mean term times its weight,
        averaged over the batch; all ones gives the unweighted term)."""
        if weights is None:
            return self(fake, real=True)
        return _weighted(self.per_crop(fake, real=True), weights)

    @staticmethod
    def per_crop(logits: torch.Tensor, real: bool) -> torch.Tensor:
        """(N,) the cross-entropy of each crop's logits, averaged over its own."""
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(
            logits, target, reduction="none").reshape(len(logits), -1).mean(1)

    def discriminator_terms(self, real: torch.Tensor,
                            fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The discriminator's (real, fake) terms from its logits on HR and on SR."""
        return self(real, real=True), self(fake, real=False)


def _weighted(per_crop: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (per_crop * weights.to(per_crop.dtype)).mean()


class RelativisticAdversarialLoss(AdversarialLoss):
    """The relativistic average GAN loss (Jolicoeur-Martineau 2018; ESRGAN's): D estimates
    whether an HR crop is more realistic than the batch's SR crops on average, and an SR
    crop than the HR ones. Discriminator: half of -log sigma(D(HR) - mean D(SR)) plus half
    of -log(1 - sigma(D(SR) - mean D(HR))), each side's mean taken as a constant; generator:
    the mean of the same two terms with the roles swapped, D(HR) as a constant, so the
    generator learns from the real batch's logits too (``srgan train --gan-loss ragan``)."""

    relativistic = True

    def generator_term(self, fake: torch.Tensor, real: torch.Tensor | None = None,
                       weights: torch.Tensor | None = None) -> torch.Tensor:
        if real is None:
            raise ValueError("the relativistic loss needs D's logits on the real batch")
        real = real.detach()
        if weights is None:
            return 0.5 * (self(real - fake.mean(), real=False)
                          + self(fake - real.mean(), real=True))
        # crop i's pair of terms weighted together; the batch means stay the whole batch's
        return _weighted(0.5 * (self.per_crop(real - fake.mean(), real=False)
                                + self.per_crop(fake - real.mean(), real=True)), weights)

    def discriminator_terms(self, real: torch.Tensor,
                            fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (0.5 * self(real - fake.detach().mean(), real=True),
                0.5 * self(fake - real.detach().mean(), real=False))


class GridLoss:
    """The part of SR that is locked to the LR grid, against HR's: for each window of
    ``window`` x ``window`` LR pixels (None: the whole crop) of a crop's BT.601 luma
    (0-255), the mean of each of the ``period``^2 sub-pixel phases minus the mean of all of
    them; the loss is the mean squared difference of these phase offsets between SR and
    HR, in levels^2. On whole 96-px crops it orders the shipped models as the benchmark's
    grid excess does (weights/README.md).

    A 4-px lattice is exactly such offsets (local ones when the pattern follows texture),
    so this is the grid excess of the benchmark in the pixel domain, linear in the image:
    it has no term that rewards blurring or noise next to the grid's frequencies, which
    the first, spectral form (log power at the grid bins over their neighbourhood's
    median) did: measured in weights/README.md.
    """

    def __init__(self, period: int = 4, window: int | None = None) -> None:
        self.period, self.window = period, window

    def offsets(self, img: torch.Tensor) -> torch.Tensor:
        """(N, period^2, H/(period*window), W/(period*window)) phase offsets of RGB crops
        in [-1, 1]."""
        from srgan_cli.bench.metrics import Y_WEIGHTS

        x = output_to_unit(img.float(), 255.0)
        y = sum(wc * x[:, c] for c, wc in enumerate(Y_WEIGHTS)) / 255.0
        p, n, h, w = self.period, *y.shape
        k = self.window or min(h, w) // p
        h, w = h // (p * k) * (p * k), w // (p * k) * (p * k)
        phases = (y[:, :h, :w].reshape(n, h // p, p, w // p, p).permute(0, 2, 4, 1, 3)
                  .reshape(n, p * p, h // p, w // p))
        means = F.avg_pool2d(phases, k)
        return means - means.mean(1, keepdim=True)

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            real = self.offsets(hr)
        return (self.offsets(sr) - real).square().mean()


class ArtifactLoss:
    """A pixel loss where the GAN paints texture that HR does not have (after Liang et al.,
    "Details or Artifacts: A Locally Discriminative Learning Approach to Realistic Image
    Super-Resolution", CVPR 2022; our own code).

    The residual ``r = sum_c |HR - SR|`` (on [0, 1] images) is weighted per pixel by its
    local variance over ``window`` x ``window`` pixels (a residual that varies is texture
    that is wrong: noise on a smooth area, or shifted detail) times the crop's overall
    variance of ``r`` to the power 1/5 (crops with realistic texture weigh less than crops
    with artifacts). With an EMA of the generator (``sr_ema``), the pixels where SR is
    closer to HR than the EMA's output get no weight: the moving average is the stable
    reference, and what SR alone adds is an artifact where it is further from HR. The loss
    is the mean of ``weight x |SR - HR|``, the weight computed without a gradient.
    """

    def __init__(self, window: int = 7) -> None:
        self.window = window

    def weight(self, sr: torch.Tensor, hr: torch.Tensor,
               sr_ema: torch.Tensor | None = None) -> torch.Tensor:
        """(N, 1, H, W) per-pixel weight; images in [-1, 1]."""
        with torch.no_grad():
            r = (sr.float() - hr.float()).abs().sum(1, keepdim=True) / 2
            k, pad = self.window, self.window // 2
            rp = F.pad(r, (pad, pad, pad, pad), mode="reflect")
            mean = F.avg_pool2d(rp, k, stride=1)
            local = (F.avg_pool2d(rp * rp, k, stride=1) - mean * mean).clamp_min(0)
            local = local * (k * k / (k * k - 1))  # unbiased, as a sample variance
            crop = r.flatten(1).var(1).clamp_min(0).pow(0.2).view(-1, 1, 1, 1)
            w = crop * local
            if sr_ema is not None:
                r_ema = (sr_ema.float() - hr.float()).abs().sum(1, keepdim=True) / 2
                w = torch.where(r < r_ema, torch.zeros_like(w), w)
        return w

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor,
                 sr_ema: torch.Tensor | None = None) -> torch.Tensor:
        w = self.weight(sr, hr, sr_ema)
        return (w * (sr.float() - hr.float()).abs() / 2).mean()


# a crop's LR counts as clean when no value is further than this from HR's clean
# downscale: exact for the clean pipeline, below the 8-bit step that every degradation ends
# with (train.degrade quantises its LR)
CLEAN_TOLERANCE = 1e-3


def clean_lr_of(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """HR's clean antialiased bicubic downscale, in [0, 1] (no gradient)."""
    from srgan_cli.train.data import downscale

    with torch.no_grad():
        return downscale(output_to_unit(hr.float()), scale)


def clean_crops(lr_img: torch.Tensor, clean_lr: torch.Tensor) -> torch.Tensor:
    """(N,) bool: the crops whose LR is ``clean_lr`` (HR's clean downscale), to within
    :data:`CLEAN_TOLERANCE`."""
    return (lr_img.float() - clean_lr).abs().flatten(1).amax(1) <= CLEAN_TOLERANCE


class TeacherLoss:
    """Distillation: how far the generator's output is from a frozen teacher generator's
    output, as ``l1`` (on [-1, 1] images, fp32) or as ``content`` (the run's perceptual
    content loss, with the teacher's output in HR's place: texture statistics rather than
    exact pixels). The teacher sees the batch's LR, or with ``clean_input`` the clean
    antialiased bicubic downscale of HR (for a run on degraded LR: the student learns to
    give from a JPEG what the teacher gives from a clean image). It runs without a
    gradient, in eval mode, under the step's autocast. With ``delattice`` W > 0 the
    teacher's output loses its local sub-pixel phase offsets over W x W LR pixels
    (:func:`remove_phase_offsets`) first: a sub-pixel teacher's texture without its lattice,
    which a phase-tied student cannot copy anyway. With ``clean_only`` the term covers only
    the crops whose LR is the clean downscale (:meth:`clean_crops`), scaled by their share
    of the batch."""

    CLEAN_TOLERANCE = CLEAN_TOLERANCE

    def __init__(self, teacher: torch.nn.Module, kind: str = "l1",
                 content: PerceptualLoss | None = None, *, clean_input: bool = False,
                 scale: int = 4, delattice: int = 0, clean_only: bool = False) -> None:
        if kind not in TEACHER_LOSSES:
            raise ValueError(f"unknown teacher loss {kind!r} ({', '.join(TEACHER_LOSSES)})")
        if kind == "content" and content is None:
            raise ValueError("the 'content' teacher loss needs a perceptual content loss")
        self.teacher = teacher.eval().requires_grad_(False)
        self.kind, self.content = kind, content
        self.clean_input, self.scale, self.delattice = clean_input, scale, delattice
        self.clean_only = clean_only

    def _clean_lr(self, hr: torch.Tensor) -> torch.Tensor:
        return clean_lr_of(hr, self.scale)

    def _output(self, lr_img: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.teacher(lr_img).float()
            return remove_phase_offsets(out, self.delattice, self.scale) if self.delattice else out

    def target(self, lr_img: torch.Tensor, hr: torch.Tensor | None = None) -> torch.Tensor:
        return self._output(self._clean_lr(hr).to(lr_img.dtype) if self.clean_input else lr_img)

    def clean_crops(self, lr_img: torch.Tensor, clean_lr: torch.Tensor) -> torch.Tensor:
        """(N,) bool: the crops whose LR is ``clean_lr``, HR's clean antialiased bicubic
        downscale."""
        return clean_crops(lr_img, clean_lr)

    def __call__(self, sr: torch.Tensor, lr_img: torch.Tensor,
                 hr: torch.Tensor | None = None) -> torch.Tensor:
        if self.clean_only:  # the term over the clean crops, each weighing as under 'all'
            clean_lr = self._clean_lr(hr)
            keep = self.clean_crops(lr_img, clean_lr)
            if not bool(keep.any()):
                return sr.float().sum() * 0.0
            share = keep.float().mean()
            # a kept crop's LR is its clean downscale: the teacher sees it either way
            sr, target = sr[keep], self._output(clean_lr[keep].to(lr_img.dtype))
        else:
            target = self.target(lr_img, hr)
        loss = (self.content(sr, target) if self.kind == "content"
                else F.l1_loss(sr.float(), target))
        return loss * share if self.clean_only else loss

    def shares_content(self, content: PixelLoss | PerceptualLoss) -> bool:
        """Whether this term is ``content`` against another target, so a step computes
        SR's VGG features once for both (:meth:`GeneratorLosses.content_terms`); not when
        the term covers only the clean crops."""
        return self.kind == "content" and self.content is content and not self.clean_only


class FlatLoss:
    """How far the generator moves a solid colour: the L1 distance (on the output's scale)
    between G's output for solid LR images and their colour, through the network as
    inference runs it (BatchNorm on its running statistics, fp32).

    A solid image far from its borders is what the generator sees in a flat area of a
    large image, and what ``--border symmetric`` feeds it for a small solid one: every
    convolution then sees a constant (a periodic pattern of the LR grid's period after a
    sub-pixel stage), so it is computed exactly on a tiny ``size`` x ``size`` LR image with
    circular padding, as if the image were unbounded (8 colours: 128 LR pixels a step,
    0-4% of a GAN iteration on 2 Zen 4 cores; docs/performance.md). The colours are drawn per iteration from a
    generator seeded with (seed, iteration), so a resumed run draws the same ones, each
    channel from the arcsine distribution (Beta(1/2, 1/2)): saturated colours, where a GAN
    drifts most (weights/README.md), as often as the middle of the cube. Quantised to 8
    bits, as images are.
    """

    def __init__(self, colours: int = 8, size: int = 4, seed: int = 0) -> None:
        self.colours, self.size, self.seed = colours, size, seed

    def draw(self, iteration: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """(colours, 3) colours in [0, 1] for ``iteration`` (the same on every call)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + iteration)
        u = torch.rand(self.colours, 3, generator=g, dtype=torch.float64)
        c = torch.sin(0.5 * torch.pi * u).square()
        return (c * 255).round().div(255).float().to(device)

    def __call__(self, generator: torch.nn.Module, iteration: int) -> torch.Tensor:
        c = self.draw(iteration, next(generator.parameters()).device)
        sr = solid_outputs(generator, c, self.size)
        return (output_to_unit(sr) - c[:, :, None, None]).abs().mean() * (
            OUTPUT_RANGE[1] - OUTPUT_RANGE[0])  # on the output's scale


def solid_outputs(net: torch.nn.Module, colours: torch.Tensor, size: int = 4) -> torch.Tensor:
    """``net``'s fp32 outputs for solid ``colours`` ((N, 3) in [0, 1]) as unbounded images
    (``size`` x ``size`` LR with circular padding, BatchNorm on running statistics): what a
    flat area of a large image, and ``--border symmetric`` on a small solid one, get."""
    lr = colours[:, :, None, None].expand(-1, -1, size, size).contiguous()
    p = next(net.parameters())
    with as_unbounded_inference(net), torch.autocast(p.device.type, enabled=False):
        return net(lr.to(p.dtype)).float()


def solid_colour_errors(net: torch.nn.Module, colours: torch.Tensor) -> torch.Tensor:
    """(N,) largest channel error, in 8-bit levels, of ``net``'s output for each solid
    colour of ``colours`` ((N, 3) in [0, 1]) as an unbounded image (:func:`solid_outputs`),
    clamped and rounded as saved images are."""
    with torch.no_grad():
        y = output_to_unit(solid_outputs(net, colours).double().mean((2, 3)), 255.0)
    return (y.clamp(0, 255).round() - (colours.double() * 255).round()).abs().amax(1)


def rgb_grid(steps: int = 9) -> torch.Tensor:
    """A ``steps``^3 grid of the RGB cube, 0 and 255 included, 8-bit, in [0, 1]."""
    v = torch.linspace(0, 1, steps).mul(255).round().div(255)
    return torch.cartesian_prod(v, v, v).float()


@contextmanager
def as_unbounded_inference(net: torch.nn.Module):
    """``net`` in eval mode (BatchNorm on running statistics) with circular padding in
    every convolution, restored on exit."""
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    modes, was_training = [m.padding_mode for m in convs], net.training
    try:
        for m in convs:
            m.padding_mode = "circular"
        net.eval()
        yield
    finally:
        for m, mode in zip(convs, modes, strict=True):
            m.padding_mode = mode
        net.train(was_training)


@dataclass
class GeneratorLosses:
    """The terms of a stage's generator loss (summed as ``train.steps.generator_step``
    does: content, adversarial, pixel, grid, teacher, artifact, flat).

    ``content``: the MSE (logged as ``l_g_pix``) or VGG loss (``l_g_percep``), weighted by
    ``content_weight`` (1 in the paper's recipes; logged unweighted, as every term);
    ``adversarial``: weighted by :func:`adv_weight_at` (``l_g_gan``; gan stage only; the
    paper's loss or the relativistic one, ``gan_loss``);
    ``pixel``: an L1 term beside a VGG content loss, weighted by ``pixel_weight``
    (``l_g_l1``); ``grid``: the grid loss, weighted by ``grid_weight`` (``l_g_grid``);
    ``flat``: the solid-colour loss, weighted by ``flat_weight`` (``l_g_flat``);
    ``artifact``: the artifact loss, weighted by ``artifact_weight`` (``l_g_artifact``);
    ``teacher``: the distillation loss, weighted by ``teacher_weight`` (``l_g_teacher``).
    When the content loss is not the MSE, the MSE is still logged as ``l_g_pix`` (no
    gradient).
    """

    content: PixelLoss | PerceptualLoss
    content_weight: float = 1.0
    adversarial: AdversarialLoss | None = None
    adversarial_weight: Callable[[int], float] | None = None  # of the 0-based iteration
    pixel: PixelLoss | None = None
    pixel_weight: float = 0.0
    grid: GridLoss | None = None
    grid_weight: float = 0.0
    flat: FlatLoss | None = None
    flat_weight: float = 0.0
    artifact: ArtifactLoss | None = None
    artifact_weight: float = 0.0
    teacher: TeacherLoss | None = None
    teacher_weight: float = 0.0
    adversarial_degraded: float = 1.0  # the adversarial term's weight on degraded crops
    scale: int = 4

    def adversarial_crop_weights(self, lr_img: torch.Tensor,
                                 hr: torch.Tensor) -> torch.Tensor | None:
        """(N,) per-crop weights of the adversarial term: 1 on a clean crop,
        ``adversarial_degraded`` on a degraded one; None when every crop weighs 1."""
        if self.adversarial_degraded == 1.0:
            return None
        clean = clean_crops(lr_img, clean_lr_of(hr, self.scale))
        return torch.where(clean, 1.0, self.adversarial_degraded).float()

    @property
    def perceptual(self) -> bool:
        return isinstance(self.content, PerceptualLoss)

    def content_terms(self, sr: torch.Tensor, hr: torch.Tensor, lr_img: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The content term and the distillation term (None without a teacher). A
        distillation by the content loss shares SR's VGG pass with the content term."""
        if self.teacher is None:
            return self.content(sr, hr), None
        if self.teacher.shares_content(self.content):
            return self.content(sr, hr, self.teacher.target(lr_img, hr))
        return self.content(sr, hr), self.teacher(sr, lr_img, hr)


def generator_losses(cfg: TrainConfig, vgg: torch.nn.Module | None,
                     teacher: torch.nn.Module | None = None) -> GeneratorLosses:
    """The generator's loss for ``cfg``'s stage: MSE (srresnet) or VGG content (``vgg``
    given), + the adversarial term in the gan stage, + L1 when ``pixel_weight`` is set
    beside a VGG content loss."""
    perceptual = vgg is not None
    gan = cfg.stage == "gan"
    content = PerceptualLoss(vgg) if perceptual else PixelLoss("mse")
    return GeneratorLosses(
        content=content,
        content_weight=cfg.content_weight,
        adversarial=(RelativisticAdversarialLoss() if cfg.gan_loss == "ragan"
                     else AdversarialLoss()) if gan else None,
        adversarial_weight=partial(adv_weight_at, cfg) if gan else None,
        pixel=PixelLoss("l1") if perceptual and cfg.pixel_weight else None,
        pixel_weight=cfg.pixel_weight,
        grid=GridLoss() if cfg.grid_weight else None, grid_weight=cfg.grid_weight,
        flat=FlatLoss(cfg.flat_colours, seed=cfg.seed) if cfg.flat_weight else None,
        flat_weight=cfg.flat_weight,
        artifact=ArtifactLoss() if cfg.artifact_weight else None,
        artifact_weight=cfg.artifact_weight,
        teacher=(TeacherLoss(teacher, cfg.teacher_loss, content if perceptual else None,
                             clean_input=cfg.teacher_input == "clean", scale=cfg.scale,
                             delattice=cfg.teacher_delattice,
                             clean_only=cfg.teacher_on == "clean")
                 if teacher is not None and cfg.teacher_weight else None),
        teacher_weight=cfg.teacher_weight,
        adversarial_degraded=cfg.adv_degraded if gan else 1.0, scale=cfg.scale)
