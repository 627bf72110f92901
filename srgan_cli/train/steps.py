"""One training iteration's two updates: the generator step (its stage's losses summed) and,
in the gan stage, the discriminator step on a real and a generated batch."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from srgan_cli.nets.generator import tie_phases as tie
from srgan_cli.train.losses import AdversarialLoss, GeneratorLosses, PixelLoss
from srgan_cli.train.state import TrainState


@dataclass
class Nets:
    """The networks as the steps call them (DistributedDataParallel-wrapped when several
    processes train) and the autocast context of the forward passes."""

    generator: torch.nn.Module
    discriminator: torch.nn.Module | None
    autocast: contextlib.AbstractContextManager
    distributed: bool = False


def generator_step(state: TrainState, nets: Nets, losses: GeneratorLosses,
                   batch: tuple[torch.Tensor, torch.Tensor], ema_decay: float = 0.0, *,
                   tie_phases: str = "off") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Update the generator once (projected back onto phase-tied sub-pixel stages when
    ``tie_phases`` is 'dc' or 'resize') and its EMA; returns SR and the loss terms to log."""
    lr_img, hr = batch
    logged: dict[str, torch.Tensor] = {}
    if losses.adversarial is not None:
        state.discriminator.requires_grad_(False)
    with nets.autocast:
        sr = nets.generator(lr_img)
        content = losses.content(sr, hr)
        if losses.perceptual:
            logged["l_g_percep"] = content
        if losses.adversarial is not None:
            # D's weights are frozen here; its batch statistics come from this batch
            l_gan = losses.adversarial(state.discriminator(sr).float(), real=True)
            logged["l_g_gan"] = l_gan
    loss = content.float()
    if losses.adversarial is not None:
        loss = loss + losses.adversarial_weight(state.iteration) * l_gan
    if losses.pixel is not None:
        l_pixel = losses.pixel(sr, hr)
        logged["l_g_l1"] = l_pixel
        loss = loss + losses.pixel_weight * l_pixel
    if losses.grid is not None:
        l_grid = losses.grid(sr, hr)
        logged["l_g_grid"] = l_grid
        loss = loss + losses.grid_weight * l_grid
    if losses.perceptual:
        with torch.no_grad():
            logged["l_g_pix"] = PixelLoss("mse")(sr.detach(), hr)
    else:
        logged["l_g_pix"] = content  # the MSE content loss is the pixel loss
    _backward_and_step(loss, state.optimizer_g, state.scaler_g)
    if tie_phases != "off":
        tie(state.generator, tie_phases)
    state.update_ema(ema_decay)
    return sr, logged


def discriminator_step(state: TrainState, nets: Nets, adversarial: AdversarialLoss,
                       hr: torch.Tensor, sr: torch.Tensor) -> dict[str, torch.Tensor]:
    """Update the discriminator once on -log D(HR) - log(1 - D(SR)); the real and generated
    batches go through D separately (each with its own batch statistics)."""
    state.discriminator.requires_grad_(True)
    state.optimizer_d.zero_grad(set_to_none=True)
    scaler = state.scaler_d
    fake_in = sr.detach()
    # several processes: the gradients are averaged once, after both backward passes
    sync = nets.discriminator.no_sync() if nets.distributed else contextlib.nullcontext()
    with sync:
        with nets.autocast:
            real = nets.discriminator(hr).float()
        l_real = adversarial(real, real=True)
        scaler.scale(l_real).backward()
    with nets.autocast:
        fake = nets.discriminator(fake_in).float()
    l_fake = adversarial(fake, real=False)
    scaler.scale(l_fake).backward()
    scaler.step(state.optimizer_d)
    scaler.update()
    return {"l_d": l_real + l_fake, "l_d_real": l_real, "l_d_fake": l_fake,
            "d_real": torch.sigmoid(real).mean(), "d_fake": torch.sigmoid(fake).mean()}


def _backward_and_step(loss: torch.Tensor, opt: torch.optim.Optimizer,
                       scaler: torch.amp.GradScaler) -> None:
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
