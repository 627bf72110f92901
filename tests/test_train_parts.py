"""The parts of the training loop on their own: the loss objects, their composition per
stage, the two steps, and TrainState's state_dict round trip."""

import contextlib
import io

import pytest
import torch

from srgan_cli.train.config import TrainConfig, adv_weight_at
from srgan_cli.train.losses import (AdversarialLoss, PerceptualLoss, PixelLoss,
                                    generator_losses)
from srgan_cli.train.state import TrainState
from srgan_cli.train.steps import Nets, discriminator_step, generator_step


def _images(seed: int, n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_the_pixel_loss_is_the_mean_squared_or_absolute_error_in_fp32():
    sr, hr = _images(0), _images(1)
    assert torch.equal(PixelLoss("mse")(sr, hr), ((sr - hr) ** 2).mean())
    assert torch.equal(PixelLoss("l1")(sr, hr), (sr - hr).abs().mean())
    assert PixelLoss("mse")(sr.bfloat16(), hr).dtype == torch.float32
    with pytest.raises(ValueError, match="unknown pixel loss"):
        PixelLoss("l2")


def test_the_perceptual_loss_compares_vgg_features_and_only_sr_gets_a_gradient():
    from srgan_cli.nets.vgg import RESCALE, VGGFeatures

    torch.manual_seed(0)
    vgg = VGGFeatures("vgg22").eval()  # random weights: the loss's arithmetic, not quality
    loss = PerceptualLoss(vgg)
    sr, hr = _images(2).requires_grad_(True), _images(3).requires_grad_(True)
    value = loss(sr, hr)
    with torch.no_grad():
        want = (((vgg((sr + 1) / 2) - vgg((hr + 1) / 2)) * RESCALE) ** 2).mean()
    assert value.item() == pytest.approx(want.item(), rel=1e-5) and value > 0
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0 and hr.grad is None
    assert loss(hr.detach(), hr.detach()).item() == 0.0


def test_the_adversarial_loss_is_binary_cross_entropy_on_logits():
    adv = AdversarialLoss()
    zero = torch.zeros(4, 1)
    assert adv(zero, real=True).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    sure = torch.full((4, 1), 20.0)
    assert adv(sure, real=True).item() < 1e-6 < 19 < adv(sure, real=False).item()
    logits = torch.tensor([[1.5], [-0.5]])
    assert adv(logits, real=False).item() == pytest.approx(
        -torch.log(1 - torch.sigmoid(logits)).mean().item(), rel=1e-6)


def test_each_stage_composes_its_generator_losses():
    sr = generator_losses(TrainConfig(data=[], pixel_weight=0.5), None)
    assert isinstance(sr.content, PixelLoss) and sr.content.kind == "mse"
    assert sr.adversarial is None and sr.pixel is None and not sr.perceptual

    vgg = torch.nn.Identity()
    paper = generator_losses(TrainConfig(data=[], stage="gan"), vgg)
    assert isinstance(paper.content, PerceptualLoss) and paper.perceptual
    assert isinstance(paper.adversarial, AdversarialLoss) and paper.pixel is None

    cfg = TrainConfig(data=[], stage="gan", pixel_weight=0.5, adv_weight=1e-3, adv_warmup=4)
    aided = generator_losses(cfg, vgg)
    assert aided.pixel.kind == "l1" and aided.pixel_weight == 0.5
    assert [aided.adversarial_weight(i) for i in range(6)] == [adv_weight_at(cfg, i)
                                                              for i in range(6)]


def _gan_state(seed: int, **kw) -> tuple[TrainConfig, TrainState]:
    cfg = TrainConfig(data=[], stage="gan", crop=32, blocks=1, width=8, lr=1e-3, ema=0.9,
                      content_loss="mse", precision="fp32", device="cpu", seed=seed, **kw)
    torch.manual_seed(seed)
    return cfg, TrainState.build(cfg, cfg.spec(), torch.device("cpu"))


def _step(cfg: TrainConfig, state: TrainState) -> dict[str, torch.Tensor]:
    nets = Nets(state.generator, state.discriminator, contextlib.nullcontext())
    losses = generator_losses(cfg, None)
    hr = _images(10 + state.iteration)
    lr = torch.nn.functional.avg_pool2d((hr + 1) / 2, 4)
    sr, terms = generator_step(state, nets, losses, (lr, hr), cfg.ema)
    terms.update(discriminator_step(state, nets, losses.adversarial, hr, sr))
    state.iteration += 1
    return terms


def test_the_steps_update_both_networks_and_the_ema_and_log_the_named_terms():
    cfg, state = _gan_state(0)
    g0 = {k: v.clone() for k, v in state.generator.state_dict().items()}
    d0 = {k: v.clone() for k, v in state.discriminator.state_dict().items()}
    terms = _step(cfg, state)
    assert {"l_g_pix", "l_g_gan", "l_d", "l_d_real", "l_d_fake", "d_real", "d_fake"} <= terms.keys()
    assert torch.equal(terms["l_d"], terms["l_d_real"] + terms["l_d_fake"])
    w = next(k for k in g0 if k.endswith("weight"))
    g1 = state.generator.state_dict()
    assert not torch.equal(g0[w], g1[w])
    assert any(not torch.equal(d0[k], v) for k, v in state.discriminator.state_dict().items())
    # EMA = 0.9 x the start + 0.1 x the stepped generator
    assert torch.allclose(state.ema.state_dict()[w], 0.9 * g0[w] + 0.1 * g1[w], atol=1e-7)


def test_a_train_state_round_trips_through_its_state_dict_and_trains_on_identically():
    cfg, a = _gan_state(1)
    for _ in range(2):
        _step(cfg, a)
    a.history["val"].append([2, 20.5])
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)  # as a checkpoint holds it: tensors and JSON strings
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)

    _, b = _gan_state(2)  # other initial weights, all of them replaced by the load
    b.load_state_dict(saved)
    assert b.iteration == 2 and b.history == a.history
    assert torch.equal(a.data_rng.get_state(), b.data_rng.get_state())
    for part in ("model", "disc", "ema", "optim", "optim_d"):
        _assert_same(saved[part], b.state_dict()[part], part)
    ta, tb = _step(cfg, a), _step(cfg, b)  # one more step each: the same numbers
    assert all(torch.equal(ta[k], tb[k]) for k in ta)
    for part in ("model", "disc", "ema", "optim", "optim_d"):
        _assert_same(a.state_dict()[part], b.state_dict()[part], part)


def _assert_same(x, y, where: str) -> None:
    if isinstance(x, torch.Tensor):
        assert torch.equal(x, y), where
    elif isinstance(x, dict):
        assert x.keys() == y.keys(), where
        for k in x:
            _assert_same(x[k], y[k], f"{where}/{k}")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y)):
            _assert_same(u, v, f"{where}/{i}")
    else:
        assert x == y, where


def test_a_gan_checkpoint_without_a_discriminator_is_refused_by_name():
    from srgan_cli.errors import TrainError

    cfg, state = _gan_state(3)
    saved = state.state_dict()
    del saved["disc"]
    with pytest.raises(TrainError, match="old.pt: has no discriminator state"):
        state.load_state_dict(saved, source="old.pt")


def test_a_first_ctrl_c_waits_for_the_iteration_end_and_a_second_stops_at_once_unless_saving():
    import os
    import signal

    from srgan_cli.train.loop import _StopAtIterationEnd

    before = signal.getsignal(signal.SIGINT)
    with _StopAtIterationEnd(True) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.pending  # noted, not raised
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        stop.saving = True
        os.kill(os.getpid(), signal.SIGINT)  # ignored while the checkpoint is written
        stop.saving = False
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            signal.getsignal(signal.SIGINT)  # the handler runs between bytecodes
    assert signal.getsignal(signal.SIGINT) is before


def test_training_uses_the_fused_adam_which_matches_the_default_one_to_rounding():
    from srgan_cli.nets.discriminator import Discriminator

    state = TrainState.build(TrainConfig(data=[], stage="gan", crop=32, blocks=1, width=8),
                             TrainConfig(data=[], blocks=1, width=8).spec(),
                             torch.device("cpu"))
    assert state.optimizer_g.defaults["fused"] and state.optimizer_d.defaults["fused"]
    finals = []
    for fused in (None, True):
        torch.manual_seed(0)
        d = Discriminator(32)
        opt = torch.optim.Adam(d.parameters(), lr=1e-4, fused=fused)
        g = torch.Generator().manual_seed(1)
        for _ in range(10):
            for p in d.parameters():
                p.grad = torch.randn(p.shape, generator=g) * 1e-3
            opt.step()
        finals.append(torch.cat([p.detach().flatten() for p in d.parameters()]))
    torch.manual_seed(0)
    start = torch.cat([p.detach().flatten() for p in Discriminator(32).parameters()])
    assert (finals[0] - start).abs().max() > 1e-4  # the steps moved the weights
    assert (finals[0] - finals[1]).abs().max() < 1e-6
