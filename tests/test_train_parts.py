"""The parts of the training loop on their own: the loss objects, their composition per
stage, the two steps, and TrainState's state_dict round trip."""

import contextlib
import io

import pytest
import torch

from srgan_cli.train.config import TrainConfig, adv_weight_at
from srgan_cli.train.losses import AdversarialLoss, PerceptualLoss, PixelLoss, generator_losses
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


def test_the_multi_layer_perceptual_loss_is_the_weighted_l1_of_pre_activation_taps():
    from srgan_cli.nets.vgg import MULTI_TAPS, VGGFeatures, content_loss

    torch.manual_seed(0)
    vgg = VGGFeatures("vgg-multi").eval()  # random weights: the loss's arithmetic
    sr, hr = _images(4, size=32).requires_grad_(True), _images(5, size=32)
    taps = vgg.taps((sr.detach() + 1) / 2)
    assert [t.shape[1] for t in taps] == [64, 128, 256, 512, 512]
    assert all((t < 0).any() for t in taps), "a tap read after its ReLU"
    with torch.no_grad():
        want = sum(w * (a - b).abs().mean() for w, a, b in
                   zip(MULTI_TAPS.values(), taps, vgg.taps((hr + 1) / 2)))
    value = content_loss(vgg, sr, hr)
    assert value.item() == pytest.approx(want.item(), rel=1e-5) and value > 0
    value.backward()
    assert sr.grad.abs().sum() > 0
    assert content_loss(vgg, hr, hr).item() == 0.0
    # the deepest tap is conv5_4 itself: the features end before its ReLU
    assert isinstance(vgg.features[-1], torch.nn.Conv2d) and len(vgg.features) == 35


def test_the_content_weight_scales_the_content_terms_gradient():
    grads = {}
    for w in (1.0, 0.25):
        cfg = TrainConfig(data=[], crop=32, blocks=1, width=8, content_weight=w,
                          precision="fp32", device="cpu", seed=0)
        torch.manual_seed(0)
        state = TrainState.build(cfg, cfg.spec(), torch.device("cpu"))
        nets = Nets(state.generator, None, contextlib.nullcontext())
        hr = _images(7)
        lr = torch.nn.functional.avg_pool2d((hr + 1) / 2, 4)
        _, terms, _ = generator_step(state, nets, generator_losses(cfg, None), (lr, hr), 0.0)
        grads[w] = [p.grad.clone() for p in state.generator.parameters()]
    for a, b in zip(grads[1.0], grads[0.25]):
        assert torch.allclose(b, 0.25 * a, rtol=1e-4, atol=1e-9)
    assert any(a.abs().sum() > 0 for a in grads[1.0])


def test_the_artifact_loss_weighs_noise_on_a_smooth_area_and_not_a_smooth_error():
    from srgan_cli.train.losses import ArtifactLoss

    g = torch.Generator().manual_seed(0)
    hr = torch.linspace(-0.5, 0.5, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32).clone()
    noisy = hr.clone()
    noisy[..., 8:24, 8:24] += 0.2 * torch.randn(1, 3, 16, 16, generator=g)
    shifted = hr + 0.1  # a uniform error: no texture HR lacks
    art = ArtifactLoss()
    w = art.weight(noisy, hr)
    assert w.shape == (1, 1, 32, 32)
    assert w[..., 12:20, 12:20].mean() > 100 * w[..., :4, :].mean()  # on the noise, not off
    assert art(shifted, hr).item() == pytest.approx(0.0, abs=1e-12)
    assert art(noisy, hr).item() > 0 and art(hr, hr).item() == 0.0
    noisy.requires_grad_(True)
    art(noisy, hr).backward()
    assert noisy.grad[..., 12:20, 12:20].abs().sum() > 0
    # with an EMA output: where SR is closer to HR than the EMA's, no weight
    ema = hr + 0.5 * (noisy.detach() - hr)  # the EMA has half the noise everywhere
    closer = hr + 0.25 * (noisy.detach() - hr)
    assert (art.weight(closer, hr, ema)[..., 8:24, 8:24] == 0).all()
    assert art(closer, hr, ema).item() == 0.0 < art(closer, hr).item()
    assert torch.equal(art.weight(noisy.detach(), hr, ema) > 0, w > 0)


def test_a_generator_step_with_the_artifact_loss_logs_it_and_reads_the_ema():
    cfg, state = _gan_state(0, artifact_weight=100.0)
    _step(cfg, state)  # the generator moves away from its EMA
    with_ema = _step(cfg, state)["l_g_artifact"]
    cfg2, state2 = _gan_state(0, artifact_weight=100.0)
    _step(cfg2, state2)
    state2.ema = None  # the same second step without the EMA's reference
    without = _step(cfg2, state2)["l_g_artifact"]
    assert 0 < with_ema < without  # the EMA zeroes the weight where SR is the closer


def test_the_teacher_loss_is_the_l1_to_a_frozen_teachers_output_and_trains_only_the_student():
    from srgan_cli.nets.generator import GeneratorSpec, SRResNet
    from srgan_cli.train.losses import TeacherLoss

    torch.manual_seed(0)
    teacher, student = SRResNet(GeneratorSpec(4, 1, 8)), SRResNet(GeneratorSpec(4, 1, 8))
    loss = TeacherLoss(teacher)
    lr = torch.rand(2, 3, 8, 8)
    sr = student(lr)
    value = loss(sr, lr)
    with torch.no_grad():
        want = (sr - teacher.eval()(lr)).abs().mean()
    assert value.item() == pytest.approx(want.item(), rel=1e-6) and value > 0
    value.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert loss(teacher(lr).detach(), lr).item() == 0.0
    from srgan_cli.nets.vgg import VGGFeatures

    content = PerceptualLoss(VGGFeatures("vgg22").eval())
    perceptual = TeacherLoss(teacher, "content", content)
    sr = student(lr)
    with torch.no_grad():
        assert perceptual(sr, lr).item() == pytest.approx(
            content(sr, teacher(lr)).item(), rel=1e-6)
    # fed the clean downscale of HR instead of the batch's (degraded) LR
    from srgan_cli.train.data import downscale

    hr = torch.rand(2, 3, 32, 32) * 2 - 1
    degraded = torch.rand(2, 3, 8, 8)
    clean = TeacherLoss(teacher, clean_input=True)
    with torch.no_grad():
        want = teacher(downscale((hr + 1) / 2, 4))
        assert torch.allclose(clean.target(degraded, hr), want)
        assert not torch.allclose(loss.target(degraded, hr), want)  # lr: the batch's LR
    with pytest.raises(ValueError, match="needs a perceptual content loss"):
        TeacherLoss(teacher, "content")
    with pytest.raises(ValueError, match="unknown teacher loss"):
        TeacherLoss(teacher, "l2")


def test_a_clean_only_teacher_term_covers_the_crops_made_by_the_clean_pipeline_alone():
    from srgan_cli.nets.generator import GeneratorSpec, SRResNet
    from srgan_cli.train.data import downscale
    from srgan_cli.train.degrade import Degrader, parse_degradation
    from srgan_cli.train.losses import TeacherLoss

    torch.manual_seed(0)
    teacher, student = SRResNet(GeneratorSpec(4, 1, 8)), SRResNet(GeneratorSpec(4, 1, 8))
    hr01 = torch.rand(8, 3, 32, 32)
    hr = hr01 * 2 - 1
    # the degrader's own mix: which crops came out clean is what the term must find
    deg = Degrader(parse_degradation("real,clean_prob=0.5"))
    lr = deg(hr01, 4, torch.Generator().manual_seed(3))
    truly_clean = torch.tensor([torch.equal(a, b) for a, b in zip(lr, downscale(hr01, 4))])
    assert 0 < int(truly_clean.sum()) < 8  # a mix, or the test proves nothing
    every, only = (TeacherLoss(teacher, clean_input=True),
                   TeacherLoss(teacher, clean_input=True, clean_only=True))
    assert torch.equal(only.clean_crops(lr, downscale(hr01, 4)), truly_clean)
    sr = student(lr)
    with torch.no_grad():
        per_crop = (sr - every.target(lr, hr)).abs().flatten(1).mean(1)
        want = (per_crop * truly_clean.float()).sum() / 8  # a clean crop weighs as under all
        assert every(sr, lr, hr).item() == pytest.approx(per_crop.mean().item(), rel=1e-5)
        assert only(sr, lr, hr).item() == pytest.approx(want.item(), rel=1e-5)
    # the degraded crops get no gradient from it; with no clean crop, the term is zero
    sr = student(lr).detach().requires_grad_(True)
    only(sr, lr, hr).backward()
    assert (sr.grad.flatten(1).abs().sum(1) > 0).tolist() == truly_clean.tolist()
    dirty = ~truly_clean
    assert only(sr[dirty], lr[dirty], hr[dirty]).item() == 0.0


def test_removing_phase_offsets_takes_a_lattice_off_and_leaves_a_smooth_image_alone():
    from srgan_cli.nets.delattice import remove_phase_offsets

    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(48.0), indexing="ij")
    # slow enough that a phase's offset from its neighbours (slope x 1 px) stays small
    smooth = torch.stack([torch.sin(yy / 40) / 2 + xx / 200, torch.cos(xx / 50), yy / 256])[None]
    lattice = torch.randn(1, 3, 4, 4).repeat(1, 1, 16, 12)  # locked to the 4-px grid
    lattice -= lattice.mean((2, 3), keepdim=True)  # (its mean would stay: it is not a lattice)
    window = 4
    out = remove_phase_offsets(smooth + lattice, window)
    inner = (..., slice(16, -16), slice(16, -16))
    assert (out - smooth)[inner].abs().max() < 0.04  # the lattice is gone
    assert lattice.abs().max() > 0.5
    assert (remove_phase_offsets(smooth, window) - smooth)[inner].abs().max() < 0.04
    # a remainder beyond the multiple of 4 is kept as it is
    odd = torch.rand(1, 3, 30, 31)
    assert torch.equal(remove_phase_offsets(odd, 4)[..., 28:, :], odd[..., 28:, :])


def test_a_delatticed_teacher_target_is_the_teachers_output_without_its_phase_offsets():
    from srgan_cli.nets.delattice import remove_phase_offsets
    from srgan_cli.nets.generator import GeneratorSpec, SRResNet
    from srgan_cli.train.losses import TeacherLoss

    torch.manual_seed(0)
    teacher = SRResNet(GeneratorSpec(4, 1, 8))
    lr = torch.rand(2, 3, 16, 16)
    plain, delattice = TeacherLoss(teacher), TeacherLoss(teacher, delattice=4)
    with torch.no_grad():
        raw = plain.target(lr)
        assert torch.allclose(delattice.target(lr), remove_phase_offsets(raw, 4))
        assert not torch.allclose(delattice.target(lr), raw, atol=1e-3)


def test_a_content_loss_distillation_shares_srs_vgg_pass_and_gives_the_same_terms():
    from srgan_cli.nets.generator import GeneratorSpec, SRResNet
    from srgan_cli.nets.vgg import VGGFeatures

    torch.manual_seed(0)
    cfg = TrainConfig(data=[], stage="gan", teacher="t", teacher_weight=1.0,
                      teacher_loss="content")
    losses = generator_losses(cfg, VGGFeatures("vgg22").eval(), SRResNet(GeneratorSpec(4, 1, 8)))
    assert losses.teacher.shares_content(losses.content)
    lr = torch.rand(2, 3, 8, 8)
    sr, hr = _images(8), _images(9)
    calls = []
    losses.content.vgg.register_forward_hook(lambda *a: calls.append(1))
    content, teacher = losses.content_terms(sr, hr, lr)
    assert len(calls) == 3  # SR once, HR, the teacher's output
    assert content.item() == pytest.approx(losses.content(sr, hr).item(), rel=1e-6)
    assert teacher.item() == pytest.approx(losses.teacher(sr, lr, hr).item(), rel=1e-6)


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
    sr, terms, fake = generator_step(state, nets, losses, (lr, hr), cfg.ema)
    terms.update(discriminator_step(state, nets, losses.adversarial, hr, sr, judged=fake))
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


# --------------------------------------------------------------------------- the shared D forward


def _shared_or_not_run(share: bool, iters: int = 4, adv_weight: float = 0.1,
                       grid_weight: float = 0.0, nets_of=None, data_seed: int = 20,
                       scaled: bool = False, gan_loss: str = "standard"):
    """``iters`` gan iterations of a tiny generator, discriminator and random VGG22 with the
    released recipe's generator loss (VGG content, adversarial on a warm-up ramp, L1; the
    grid term with ``grid_weight``), the discriminator step reusing the generator step's D
    forward on SR (``share``) or running its own; returns the logged terms of each
    iteration (floats), the state, and D's gradients before and after each generator step.
    ``scaled``: both grad scalers on (as fp16 training has them), the scale doubling every
    second step."""
    from srgan_cli.nets.vgg import VGGFeatures

    cfg, state = _gan_state(5, pixel_weight=0.5, grid_weight=grid_weight,
                            adv_weight=adv_weight, adv_warmup=2, batch=4, gan_loss=gan_loss)
    if scaled:
        state.scaler_g, state.scaler_d = (torch.amp.GradScaler("cpu", init_scale=2.0**10,
                                                               growth_interval=2)
                                          for _ in range(2))
    torch.manual_seed(6)
    losses = generator_losses(cfg, VGGFeatures("vgg22").eval())
    nets = (nets_of or (lambda st: Nets(st.generator, st.discriminator,
                                        contextlib.nullcontext())))(state)
    logs, d_grads = [], []
    for i in range(iters):
        hr = _images(data_seed + i, n=4)
        lr = torch.nn.functional.avg_pool2d((hr + 1) / 2, 4)
        before = [None if p.grad is None else p.grad.clone()
                  for p in state.discriminator.parameters()]
        sr, terms, fake = generator_step(state, nets, losses, (lr, hr), cfg.ema,
                                         share_d_forward=share)
        d_grads.append((before, [p.grad for p in state.discriminator.parameters()]))
        assert (fake is not None) == share
        terms.update(discriminator_step(state, nets, losses.adversarial, hr, sr, judged=fake))
        state.iteration += 1
        logs.append({k: float(v.detach()) for k, v in terms.items()})
    return logs, state, d_grads


def _assert_same_run(x: tuple, y: tuple, rtol: float = 1e-5) -> None:
    """The same logged terms and the same G, D and EMA weights, to ``rtol`` in fp32."""
    (logs_x, a, _), (logs_y, b, _) = x, y
    assert [d.keys() for d in logs_x] == [d.keys() for d in logs_y]
    for i, (u, v) in enumerate(zip(logs_x, logs_y)):
        for k in v:
            assert u[k] == pytest.approx(v[k], rel=rtol, abs=1e-7), (i, k)
    for name in ("generator", "discriminator", "ema"):
        params = dict(getattr(a, name).named_parameters())
        for k, v in getattr(b, name).named_parameters():
            torch.testing.assert_close(params[k], v, rtol=rtol, atol=1e-7,
                                       msg=lambda m: f"{name}.{k}: {m}")


def _flat(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_the_d_step_reusing_the_g_steps_d_forward_gives_the_same_losses_and_weights():
    shared, old = _shared_or_not_run(True), _shared_or_not_run(False)
    assert shared[0][0].keys() >= {"l_g_percep", "l_g_gan", "l_g_l1", "l_g_pix", "l_d",
                                   "l_d_real", "l_d_fake", "d_real", "d_fake"}
    _assert_same_run(shared, old)  # (bitwise equal on this CPU: the same ops in the same order)
    # ... where the adversarial term alone moves the weights by far more than that
    _, without, _ = _shared_or_not_run(False, adv_weight=0.0)
    g_old = _flat(old[1].generator)
    assert (g_old - _flat(without.generator)).abs().max() > 1e-3 * g_old.abs().max()
    # the generator's backward left D's gradients alone (None at first, then the D step's)
    for before, after in shared[2]:
        assert all((u is None and v is None) or torch.equal(u, v)
                   for u, v in zip(before, after))
    # BatchNorm's running statistics see the fake batch once per iteration, not twice
    bn = lambda st: next(m for m in st.discriminator.modules()
                         if isinstance(m, torch.nn.BatchNorm2d)).num_batches_tracked
    assert (int(bn(shared[1])), int(bn(old[1]))) == (2 * 4, 3 * 4)


def test_with_the_grid_term_too_the_shared_d_forward_changes_the_gradients_only_by_rounding():
    """Four terms meet at SR: summed in another order (the adversarial one first), so equal
    to rounding, not bitwise; Adam would turn that into +-lr steps of the conv biases
    before BatchNorm (whose gradient is zero but for rounding), so the first step's
    gradients are compared, and D's weights after it (the same SR: bitwise)."""
    (shared, a, _), (old, b, _) = (_shared_or_not_run(s, iters=1, grid_weight=0.01)
                                   for s in (True, False))
    assert shared[0]["l_g_grid"] > 0
    assert shared == old
    grads = [torch.cat([p.grad.flatten() for p in st.generator.parameters()]) for st in (a, b)]
    assert (grads[0] - grads[1]).abs().max() <= 1e-5 * grads[1].abs().max()
    assert torch.equal(_flat(a.discriminator), _flat(b.discriminator))


def test_with_the_grad_scalers_on_the_shared_d_forward_scales_and_steps_each_network_once():
    shared, old = _shared_or_not_run(True, scaled=True), _shared_or_not_run(False, scaled=True)
    _assert_same_run(shared, old)
    for name in ("scaler_g", "scaler_d"):
        assert getattr(shared[1], name).get_scale() == getattr(old[1], name).get_scale() == 2.0**12
    # scaling by powers of two is exact: as if unscaled (a gradient scaled twice, or not
    # unscaled, would not be)
    _assert_same_run(shared, _shared_or_not_run(True))


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    """Both paths in one of ``world`` gloo processes, the networks DDP-wrapped as the loop
    wraps them, each process on its own batches; D's all-reduces counted by a comm hook."""
    import os

    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = {}
        for share in (True, False):
            calls = [0]

            def counted(_, bucket):
                calls[0] += 1
                return allreduce_hook(None, bucket)

            def nets_of(st):
                d = DDP(st.discriminator)
                d.register_comm_hook(None, counted)
                return Nets(DDP(st.generator), d, contextlib.nullcontext(), distributed=True)

            logs, st, _ = _shared_or_not_run(share, iters=3, nets_of=nets_of,
                                             data_seed=20 + 100 * rank)
            result[share] = {"logs": logs, "g": _flat(st.generator), "d": _flat(st.discriminator),
                             "d_allreduces": calls[0]}
        torch.save(result, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_under_ddp_the_shared_d_forward_trains_the_same_and_averages_d_once(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for share in (True, False):  # the replicas stay identical: every gradient was averaged
        assert torch.equal(ranks[0][share]["g"], ranks[1][share]["g"])
        assert torch.equal(ranks[0][share]["d"], ranks[1][share]["d"])
    assert ranks[0][True]["logs"] != ranks[1][True]["logs"]  # on different batches
    for r in ranks:
        for i, (u, v) in enumerate(zip(r[True]["logs"], r[False]["logs"])):
            assert u.keys() == v.keys()
            for k in v:
                assert u[k] == pytest.approx(v[k], rel=1e-5, abs=1e-7), (i, k)
        for part in ("g", "d"):
            torch.testing.assert_close(r[True][part], r[False][part], rtol=1e-5, atol=1e-7)
        # the real and fake gradients summed, then one all-reduce per bucket and iteration
        assert r[True]["d_allreduces"] == r[False]["d_allreduces"] > 0


def test_the_flat_loss_sees_a_solid_colour_as_an_unbounded_image_does_at_inference():
    from srgan_cli.nets.generator import GeneratorSpec, SRResNet
    from srgan_cli.train.losses import FlatLoss

    torch.manual_seed(3)
    net = SRResNet(GeneratorSpec(blocks=2, width=8))
    for m in net.modules():  # BatchNorm statistics other than the initial ones
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    net.train()
    flat = FlatLoss(colours=3, seed=1)
    colours = flat.draw(7)
    with torch.no_grad():
        value = flat(net, 7)
        net.eval()
        big = net(colours[:, :, None, None].expand(-1, -1, 96, 96).contiguous())
    centre = big[:, :, 150:234, 150:234]  # 40 LR px and more from every border
    want = (centre - (colours * 2 - 1)[:, :, None, None]).abs().mean()
    assert value.item() == pytest.approx(want.item(), rel=1e-4) and value.item() > 0.01
    # the network is given back as it was: training mode, zero padding
    assert all(m.padding_mode == "zeros" for m in net.modules()
               if isinstance(m, torch.nn.Conv2d))
    # the same outputs, as 8-bit errors per colour
    from srgan_cli.train.losses import rgb_grid, solid_colour_errors

    levels = ((centre + 1) * 127.5).clamp(0, 255).round().mean((2, 3))
    want = (levels - (colours * 255).round()).abs().amax(1)
    got = solid_colour_errors(net, colours)
    assert torch.allclose(got.float(), want.float(), atol=1.0) and got.max() > 0
    grid = rgb_grid(3)
    assert grid.shape == (27, 3) and set((grid * 255).round().unique().tolist()) == {0, 128, 255}


def test_the_flat_loss_draws_8_bit_colours_per_iteration_saturated_ones_often():
    from srgan_cli.train.losses import FlatLoss

    flat = FlatLoss(colours=2000, seed=0)
    a, b = flat.draw(5), flat.draw(5)
    assert torch.equal(a, b) and not torch.equal(a, flat.draw(6))
    assert not torch.equal(a, FlatLoss(colours=2000, seed=1).draw(5))
    assert torch.equal(a * 255, (a * 255).round()) and a.min() >= 0 and a.max() <= 1
    edge = ((a < 0.1) | (a > 0.9)).float().mean().item()
    assert 0.35 < edge < 0.45  # arcsine: 2 asin(sqrt(0.1)) / (pi / 2) = 0.41; uniform 0.2


def test_a_step_with_the_flat_loss_logs_it_and_moves_solid_colours_towards_themselves():
    from srgan_cli.train.losses import FlatLoss

    cfg, state = _gan_state(4, flat_weight=1.0, adv_weight=0.0)
    losses = generator_losses(cfg, None)
    assert isinstance(losses.flat, FlatLoss) and losses.flat_weight == 1.0
    probe = FlatLoss(colours=64, seed=99)
    with torch.no_grad():
        before = probe(state.generator, 0).item()
    terms = [_step(cfg, state) for _ in range(15)]
    assert all("l_g_flat" in t for t in terms)
    with torch.no_grad():
        after = probe(state.generator, 0).item()
    assert after < 0.8 * before
    assert state.generator.training


def test_the_relativistic_loss_compares_each_batch_with_the_others_mean():
    from srgan_cli.train.losses import RelativisticAdversarialLoss

    ra, bce = RelativisticAdversarialLoss(), AdversarialLoss()
    real = torch.tensor([[2.0], [1.0], [0.5]], requires_grad=True)
    fake = torch.tensor([[-1.0], [0.0], [0.3]], requires_grad=True)
    l_real, l_fake = ra.discriminator_terms(real, fake)
    assert l_real.item() == pytest.approx(0.5 * bce(real - fake.mean(), True).item())
    assert l_fake.item() == pytest.approx(0.5 * bce(fake - real.mean(), False).item())
    # each side's mean is a constant: D's real term gives no gradient to the fake logits
    l_real.backward()
    assert fake.grad is None and real.grad is not None
    g = ra.generator_term(fake, real)
    want = 0.5 * (bce(real - fake.mean(), False) + bce(fake - real.mean(), True))
    assert g.item() == pytest.approx(want.item())
    real.grad = None
    g.backward()
    assert real.grad is None and fake.grad.abs().sum() > 0
    # a generator that fools D more scores lower; the paper's loss ignores the real batch
    assert ra.generator_term(fake + 3, real) < g
    assert bce.generator_term(fake, real).item() == bce(fake, True).item()
    with pytest.raises(ValueError, match="real batch"):
        ra.generator_term(fake)
    assert isinstance(generator_losses(TrainConfig(data=[], stage="gan", gan_loss="ragan"),
                                       torch.nn.Identity()).adversarial,
                      RelativisticAdversarialLoss)


def test_with_the_relativistic_loss_the_shared_d_forwards_train_as_separate_ones():
    shared = _shared_or_not_run(True, gan_loss="ragan")
    old = _shared_or_not_run(False, gan_loss="ragan")
    _assert_same_run(shared, old)
    standard = _shared_or_not_run(True)
    assert shared[0][-1]["l_g_gan"] != pytest.approx(standard[0][-1]["l_g_gan"], rel=1e-3)
    assert (_flat(shared[1].discriminator) - _flat(standard[1].discriminator)).abs().max() > 1e-4
    # the generator's backward left D's gradients alone, as with the paper's loss
    for before, after in shared[2]:
        assert all((u is None and v is None) or torch.equal(u, v)
                   for u, v in zip(before, after))


def test_an_unknown_gan_loss_is_refused_by_name():
    from srgan_cli.errors import TrainError

    with pytest.raises(TrainError, match="unknown GAN loss 'wgan'"):
        TrainConfig(data=[], stage="gan", gan_loss="wgan")


def test_weighted_adversarial_terms_weigh_each_crop_and_all_ones_is_the_plain_term():
    from srgan_cli.train.losses import AdversarialLoss, RelativisticAdversarialLoss

    torch.manual_seed(0)
    real = torch.randn(4, 1, 6, 6)
    for loss in (AdversarialLoss(), RelativisticAdversarialLoss()):
        fake = torch.randn(4, 1, 6, 6, requires_grad=True)
        plain = loss.generator_term(fake, real)
        ones = loss.generator_term(fake, real, torch.ones(4))
        assert ones.item() == pytest.approx(plain.item(), rel=1e-6)
        w = torch.tensor([1.0, 0.0, 1.0, 0.0])
        weighted = loss.generator_term(fake, real, w)
        weighted.backward()
        # the crops of weight 0 get no gradient but through the relativistic batch mean
        per = fake.grad.abs().flatten(1).sum(1)
        assert per[0] > 0 and per[2] > 0
        if loss.relativistic:  # through the mean alone: the same for each of its logits
            for i in (1, 3):
                assert torch.allclose(fake.grad[i], fake.grad[i].flatten()[0].expand_as(fake.grad[i]))
            assert fake.grad[0].std() > 0
        else:
            assert per[1] == 0 and per[3] == 0
        with torch.no_grad():  # each crop's own mean term, times its weight, over the batch
            f, r = (fake - real.mean(), real - fake.mean()) if loss.relativistic else (fake, None)
            per_crop = AdversarialLoss.per_crop(f, True)
            if r is not None:
                per_crop = 0.5 * (per_crop + AdversarialLoss.per_crop(r, False))
            assert weighted.item() == pytest.approx((per_crop * w).mean().item(), rel=1e-6)


def test_the_adversarial_weight_on_degraded_crops_finds_the_clean_ones():
    from srgan_cli.errors import TrainError
    from srgan_cli.train.data import downscale
    from srgan_cli.train.degrade import Degrader, parse_degradation

    hr01 = torch.rand(8, 3, 32, 32)
    lr = Degrader(parse_degradation("real,clean_prob=0.5"))(hr01, 4, torch.Generator().manual_seed(3))
    truly_clean = torch.tensor([torch.equal(a, b) for a, b in zip(lr, downscale(hr01, 4))])
    assert 0 < int(truly_clean.sum()) < 8
    cfg = TrainConfig(data=[], stage="gan", degradation="real", adv_degraded=0.25)
    losses = generator_losses(cfg, torch.nn.Identity())
    w = losses.adversarial_crop_weights(lr, hr01 * 2 - 1)
    assert torch.equal(w, torch.where(truly_clean, 1.0, 0.25))
    plain = generator_losses(TrainConfig(data=[], stage="gan"), torch.nn.Identity())
    assert plain.adversarial_crop_weights(lr, hr01 * 2 - 1) is None
    with pytest.raises(TrainError, match="--adv-degraded -1"):
        TrainConfig(data=[], stage="gan", adv_degraded=-1.0)
