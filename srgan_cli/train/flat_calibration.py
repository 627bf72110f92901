"""Calibrate a trained generator's solid colours without touching its texture: a
least-squares correction of the last convolution's DC response (issue 21).

A GAN generator can move a saturated solid colour by several levels (weights/README.md):
its output for a flat area is an affine map of the last convolution's steady-state input
features, ``y(c) = W_dc f(c) + b``, where ``W_dc`` is the sum of each 9x9 kernel. Adding
``D / 81`` to every tap of kernel (o, i) and ``beta`` to the bias changes that map to
``(W_dc + D) f(c) + b + beta`` and, on any image, adds ``D`` times a 9x9 box average of
the features: a change of the low frequencies (local mean colour) only, not of the texture
the kernels' other components make. ``D`` and ``beta`` are the ridge least-squares fit that
makes solid colours come back as themselves, over colours drawn as the training's
solid-colour loss draws them (:class:`~srgan_cli.train.losses.FlatLoss`), computed exactly
as unbounded images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from srgan_cli.nets.srresnet_spec import OUTPUT_RANGE
from srgan_cli.train.losses import FlatLoss, as_unbounded_inference

TAIL_TAPS = 81  # the SRResNet's last convolution is 9x9


@dataclass(frozen=True)
class FlatReport:
    """Largest and mean absolute error (8-bit levels, after clamping to 0-255) over the
    check colours, before and after."""

    max_before: float
    mean_before: float
    max_after: float
    mean_after: float


def _steady(net: torch.nn.Module, colours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs (N, 3), tail inputs (N, C)) of ``net`` for solid ``colours`` as unbounded
    images, averaged over the output's pixels (all equal for phase-tied networks)."""
    seen = {}
    hook = net.tail.register_forward_hook(lambda m, i, o: seen.__setitem__("f", i[0]))
    try:
        lr = colours[:, :, None, None].expand(-1, -1, 4, 4).contiguous()
        with torch.no_grad(), as_unbounded_inference(net):
            y = net(lr.to(next(net.parameters()).dtype))
    finally:
        hook.remove()
    return y.double().mean((2, 3)), seen["f"].double().mean((2, 3))


def flat_errors(net: torch.nn.Module, colours: torch.Tensor) -> torch.Tensor:
    """(N,) largest channel error in 8-bit levels of ``net``'s output for each solid colour,
    clamped to 0-255 and rounded as saved images are."""
    lo, hi = OUTPUT_RANGE
    y, _ = _steady(net, colours)
    out = ((y - lo) / (hi - lo) * 255).clamp(0, 255).round()
    return (out - (colours.double() * 255).round()).abs().amax(1)


def check_colours(steps: int = 9) -> torch.Tensor:
    """A ``steps``^3 grid of the RGB cube (0 and 255 included), in [0, 1]."""
    v = torch.linspace(0, 1, steps).mul(255).round().div(255)
    return torch.cartesian_prod(v, v, v).float()


def calibrate_flat(net: torch.nn.Module, *, colours: int = 4096, ridge: float = 1e-3,
                   seed: int = 0, check: torch.Tensor | None = None) -> FlatReport:
    """Fit and apply (in place) the correction of ``net.tail``; returns the errors over
    ``check`` (default: :func:`check_colours`) before and after. ``ridge`` weighs the
    squared size of the correction against the squared colour error (output units)."""
    check = check_colours() if check is None else check
    before = flat_errors(net, check)
    lo, hi = OUTPUT_RANGE
    fit = FlatLoss(colours, seed=seed).draw(0)
    y, f = _steady(net, fit)
    target = lo + fit.double() * (hi - lo)
    x = torch.cat([f, torch.ones(len(f), 1, dtype=f.dtype)], 1)  # (N, C + 1)
    a = x.T @ x + ridge * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    sol = torch.linalg.solve(a, x.T @ (target - y))  # (C + 1, 3)
    d, beta = sol[:-1].T, sol[-1]
    with torch.no_grad():
        w = net.tail.weight
        w += (d / TAIL_TAPS).to(w.dtype)[:, :, None, None]
        net.tail.bias += beta.to(w.dtype)
    after = flat_errors(net, check)
    return FlatReport(float(before.max()), float(before.mean()), float(after.max()),
                      float(after.mean()))
