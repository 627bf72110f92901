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
