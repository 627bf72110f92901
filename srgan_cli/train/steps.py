"""One training iteration's two updates: the generator step (its stage's losses summed) and,
in the gan stage, the discriminator step on a real and a generated batch.

The discriminator's forward on SR for the generator's adversarial term is also the
discriminator step's fake pass (:func:`generator_step` returns it, graph and all, and
:func:`discriminator_step` takes it as ``fake``): the same weights (D is only updated
after), the same input and, D being in train mode, the same batch statistics, so the
logits the step would compute again; one D forward fewer per iteration
(docs/performance.md, "the shared D forward")."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from srgan_cli.nets.generator import tie_phases as tie
from srgan_cli.train.losses import AdversarialLoss, GeneratorLosses, PixelLoss
from srgan_cli.train.state import TrainState


@dataclass
class Judged:
    """D's logits from the generator step, graph kept, for the discriminator step: on SR
    (``fake``) and, for the relativistic loss, on HR (``real``)."""

    fake: torch.Tensor
    real: torch.Tensor | None = None


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
                   tie_phases: str = "off", share_d_forward: bool = True,
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor], Judged | None]:
    """Update the generator once (projected back onto phase-tied sub-pixel stages when
    ``tie_phases`` is 'dc' or 'resize') and its EMA; returns SR, the loss terms to log and
    D's logits (:class:`Judged`) for :func:`discriminator_step`: on SR, its fake pass, and
    on HR when the adversarial loss is relativistic, its real pass (None without an
    adversarial term, or with ``share_d_forward`` False).

    The shared forward runs D (the module itself, not a DDP wrapper) on a detached copy of
    SR with D's weights requiring gradients: the adversarial term's gradient at SR is taken
    first (through D's activations only: D's weight gradients are neither computed nor
    accumulated), then the rest of the loss is differentiated with it joined at SR, into
    the generator's parameters alone; D's part of the graph is kept for the D step. With
    ``share_d_forward`` False, D's weights are frozen for the step and the D step runs its
    fake pass again (the old path; the same numbers to rounding, tests/test_train_parts.py).
    """
    lr_img, hr = batch
    logged: dict[str, torch.Tensor] = {}
    adversarial = losses.adversarial is not None
    share = adversarial and share_d_forward
    if adversarial:
        state.discriminator.requires_grad_(share)
    with nets.autocast:
        sr = nets.generator(lr_img)
        content, l_teacher = losses.content_terms(sr, hr, lr_img)
        if losses.perceptual:
            logged["l_g_percep"] = content
        if adversarial:
            # its batch statistics come from this batch; shared: SR enters D detached, so
            # D's graph stays apart from G's and can outlive this step's backward
            d_in = sr.detach().requires_grad_(True) if share else sr
            fake = state.discriminator(d_in).float()
            # relativistic: D on HR too (with D's graph when shared: the D step's real pass)
            real = state.discriminator(hr).float() if losses.adversarial.relativistic else None
            l_gan = losses.adversarial.generator_term(
                fake, real, losses.adversarial_crop_weights(lr_img, hr))
            logged["l_g_gan"] = l_gan
    loss = losses.content_weight * content.float()
    if adversarial:
        loss = loss + losses.adversarial_weight(state.iteration) * l_gan
    if losses.pixel is not None:
        l_pixel = losses.pixel(sr, hr)
        logged["l_g_l1"] = l_pixel
        loss = loss + losses.pixel_weight * l_pixel
    if losses.grid is not None:
        l_grid = losses.grid(sr, hr)
        logged["l_g_grid"] = l_grid
        loss = loss + losses.grid_weight * l_grid
    if l_teacher is not None:
        logged["l_g_teacher"] = l_teacher
        loss = loss + losses.teacher_weight * l_teacher
    if losses.artifact is not None:
        sr_ema = None
        if state.ema is not None:
            with torch.no_grad(), nets.autocast:
                sr_ema = state.ema(lr_img)
        l_art = losses.artifact(sr, hr, sr_ema)
        logged["l_g_artifact"] = l_art
        loss = loss + losses.artifact_weight * l_art
    if losses.flat is not None:
        l_flat = losses.flat(state.generator, state.iteration)
        logged["l_g_flat"] = l_flat
        loss = loss + losses.flat_weight * l_flat
    if losses.perceptual:
        with torch.no_grad():
            logged["l_g_pix"] = PixelLoss("mse")(sr.detach(), hr)
    else:
        logged["l_g_pix"] = content  # the MSE content loss is the pixel loss
    if share:
        _backward_joined_at_sr_and_step(loss, sr, d_in, state)
    else:
        _backward_and_step(loss, state.optimizer_g, state.scaler_g)
    if tie_phases != "off":
        tie(state.generator, tie_phases)
    state.update_ema(ema_decay)
    return sr, logged, Judged(fake, real) if share else None


def discriminator_step(state: TrainState, nets: Nets, adversarial: AdversarialLoss,
                       hr: torch.Tensor, sr: torch.Tensor, *,
                       judged: Judged | None = None) -> dict[str, torch.Tensor]:
    """Update the discriminator once on -log D(HR) - log(1 - D(SR)); the real and generated
    batches go through D separately (each with its own batch statistics).

    ``judged``: D's logits from :func:`generator_step` (its shared forward, graph kept):
    their backward replaces a second forward on ``sr`` (and on ``hr``, relativistic). BatchNorm's running
    statistics then see the fake batch once per iteration instead of twice (they are not
    used: D only ever runs in train mode, on batch statistics). Several processes: the
    shared forward ran outside DDP, so its gradients stay local until the real pass, which
    goes through DDP and averages the sum once, as ``no_sync`` does on the other path.
    """
    state.discriminator.requires_grad_(True)
    state.optimizer_d.zero_grad(set_to_none=True)
    scaler = state.scaler_d
    fake = judged.fake if judged is not None else None
    if adversarial.relativistic:  # one process (train.loop refuses several)
        real = judged.real if judged is not None else None
        with nets.autocast:
            if fake is None:
                fake = nets.discriminator(sr.detach()).float()
            if real is None:
                real = nets.discriminator(hr).float()
        l_real, l_fake = adversarial.discriminator_terms(real, fake)
        torch.autograd.backward(scaler.scale(l_real + l_fake),
                                inputs=_trainable(state.discriminator))
    elif fake is not None:
        l_fake = adversarial(fake, real=False)
        # into D's weights only (not into the detached SR that entered D)
        torch.autograd.backward(scaler.scale(l_fake), inputs=_trainable(state.discriminator))
        with nets.autocast:
            real = nets.discriminator(hr).float()
        l_real = adversarial(real, real=True)
        scaler.scale(l_real).backward()
    else:
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


def _trainable(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in module.parameters() if p.requires_grad]


def _backward_joined_at_sr_and_step(loss: torch.Tensor, sr: torch.Tensor, d_in: torch.Tensor,
                                    state: TrainState) -> None:
    """The generator's update when D ran on ``d_in`` (SR detached): the loss's gradient at
    ``d_in`` (through D's activations; D's graph kept), then the loss's other terms and that
    gradient at ``sr`` back into the generator's parameters. Each term's gradient at SR is
    the one the joined graph would carry (the same scaled loss, the same ops); only the
    order they are summed in at SR differs, the adversarial one now first: bitwise the
    same sum for up to three terms (VGG, adversarial, L1: the paper's and the released
    recipes), equal to rounding with the grid term too. The scaler (fp16) scales the loss
    once, and unscales, steps and updates once."""
    opt, scaler = state.optimizer_g, state.scaler_g
    opt.zero_grad(set_to_none=True)
    scaled = scaler.scale(loss)
    (grad_sr,) = torch.autograd.grad(scaled, d_in, retain_graph=True)
    # .backward, not autograd.grad: DDP's hooks on the generator's parameters must fire
    torch.autograd.backward([scaled, sr], [None, grad_sr],
                            inputs=_trainable(state.generator))
    scaler.step(opt)
    scaler.update()
