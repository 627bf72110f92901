import math

import numpy as np
import pytest

from srgan_cli.bench.metrics import psnr, rgb_to_y


def test_identical_images_give_infinite_psnr():
    a = np.random.default_rng(0).integers(0, 256, (20, 20, 3)).astype(np.uint8)
    assert psnr(a, a) == math.inf


def test_known_noise_level_on_luma():
    rng = np.random.default_rng(1)
    a = np.full((40, 40, 3), 128.0)
    b = a + rng.choice([-4.0, 4.0], size=(40, 40, 1))  # equal shift on R,G,B
    # Y changes by 4 * (65.481 + 128.553 + 24.966) / 255 = 4 * 0.858824
    expected = 10 * math.log10(255**2 / (4 * 219.0 / 255) ** 2)
    assert psnr(a, b) == pytest.approx(expected, abs=1e-6)


def test_grayscale_compared_on_raw_values_and_border_crop():
    a = np.zeros((20, 20))
    b = np.zeros((20, 20))
    b[:4, :] = 255  # only inside the 4-px border
    assert psnr(a, b, crop_border=4) == math.inf
    assert psnr(a, b, crop_border=0) == pytest.approx(10 * math.log10(255**2 / (255**2 * 0.2)))
    b[10, 10] = 10
    assert psnr(a, b, crop_border=4) == pytest.approx(10 * math.log10(255**2 / (100 / 144)))


def test_bt601_luma_range():
    assert rgb_to_y(np.array([0, 0, 0])) == pytest.approx(16.0)
    assert rgb_to_y(np.array([255, 255, 255])) == pytest.approx(235.0)


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError):
        psnr(np.zeros((8, 8)), np.zeros((8, 9)))


# --------------------------------------------------------------------------- SSIM

from srgan_cli.bench.metrics import _integer_gaussian_taps, ssim, ssim_daala  # noqa: E402


def test_daala_taps_are_integer_symmetric_and_sum_to_256():
    taps = _integer_gaussian_taps(1.5, 1000)  # H = 256
    assert len(taps) == 9 and taps.sum() == 256 and np.all(taps == taps[::-1])
    assert np.all(taps == np.round(taps))
    assert len(_integer_gaussian_taps(30.0, 5)) == 9  # capped by the image size


def _brute_force_daala(a, b):
    """Direct per-pixel evaluation: in-image taps only, tap-weighted mean."""
    h, w = a.shape
    t = _integer_gaussian_taps(h * 1.5 / 256, min(h, w))
    r = len(t) // 2
    num = den = 0.0
    for y in range(h):
        for x in range(w):
            m = dict(w=0.0, mx=0.0, my=0.0, x2=0.0, y2=0.0, xy=0.0)
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w:
                        k = t[dy + r] * t[dx + r]
                        s, d = a[yy, xx], b[yy, xx]
                        m["w"] += k; m["mx"] += k * s; m["my"] += k * d
                        m["x2"] += k * s * s; m["y2"] += k * d * d; m["xy"] += k * s * d
            W = m["w"]
            c1, c2 = (2.55**2) * W * W, (7.65**2) * W * W
            mxy = m["mx"] * m["my"]
            v = ((2 * mxy + c1) * (2 * (m["xy"] * W - mxy) + c2)
                 / ((m["mx"] ** 2 + m["my"] ** 2 + c1)
                    * (m["x2"] * W - m["mx"] ** 2 + m["y2"] * W - m["my"] ** 2 + c2)))
            num += W * v
            den += W
    return num / den


def test_daala_ssim_matches_a_direct_evaluation():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (20, 12)).astype(float)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    # H = 20 gives sigma 0.117: a 1-tap window; use a taller image for a real window
    tall_a = rng.integers(0, 256, (520, 9)).astype(float)
    tall_b = np.clip(tall_a + rng.normal(0, 25, tall_a.shape), 0, 255)
    assert ssim_daala(a, b) == pytest.approx(_brute_force_daala(a, b), rel=1e-9)
    sub_a, sub_b = tall_a[:, :9], tall_b[:, :9]
    assert ssim_daala(sub_a, sub_b) == pytest.approx(_brute_force_daala(sub_a, sub_b), rel=1e-9)


@pytest.mark.parametrize("method", ["daala", "standard"])
def test_ssim_identity_and_monotonic_in_noise(method):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    assert ssim(img, img, method=method) == pytest.approx(1.0)
    scores = [ssim(img, np.clip(img + rng.normal(0, s, img.shape), 0, 255), method=method)
              for s in (2, 10, 40)]
    assert scores[0] > scores[1] > scores[2]


def test_ssim_grayscale_and_unknown_method():
    a = np.random.default_rng(1).integers(0, 256, (40, 40)).astype(float)
    assert ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ssim(a, a, method="msssim")
