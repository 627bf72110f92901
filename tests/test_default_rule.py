"""The default model follows the rule written in the README (issues 21 and 22):
``srgan_cli.bench.default_rule`` and ``scripts/choose_default.py``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from srgan_cli.bench.default_rule import candidates, choose, flat_error

SETS = ("set14", "set14+jpeg75", "set14+noise5")


def rows(method, lpips, grid5=2.0, grid14=3.0, lpips5=0.1, psnr=(30.0, 27.0)):
    out = [{"dataset": "set5", "method": method, "grid_excess": grid5, "lpips": lpips5,
            "psnr": psnr[0]}]
    out += [{"dataset": s, "method": method, "grid_excess": grid14, "lpips": v,
             "psnr": psnr[1] if s == "set14" else 24.0} for s, v in zip(SETS, lpips)]
    out.append({"dataset": "set14+clean", "method": method, "grid_excess": 0.0, "lpips": 9.0})
    return out


def measured(rs, flat, gan=()):
    return {n: dataclasses.replace(c, flat_error=flat[n], gan=n in gan)
            for n, c in candidates(rs).items()}


def test_the_lowest_mean_lpips_over_clean_and_degraded_set14_wins():
    rs = rows("a", (0.20, 0.40, 0.30)) + rows("b", (0.25, 0.30, 0.30))
    rs += [{"dataset": "set14", "method": "bicubic", "grid_excess": 0.0, "lpips": 0.01}]
    best, lines = choose(measured(rs, {"a": 1, "b": 2}))
    assert best == "b" and len(lines) == 2  # bicubic is not a candidate
    assert lines[0].startswith("b: mean Set14 LPIPS 0.2833 over 3 sets")  # set14+clean left out


def test_a_model_with_a_lattice_or_a_colour_shift_is_not_eligible_however_good_its_lpips():
    rs = rows("lattice", (0.1, 0.1, 0.1), grid14=19.2) + rows("bias", (0.1, 0.1, 0.1))
    rs += rows("plain", (0.3, 0.4, 0.5))
    best, lines = choose(measured(rs, {"lattice": 0, "bias": 7, "plain": 3}))
    assert best == "plain"
    assert any("lattice: " in l and "grid excess +19.2 dB on set14" in l for l in lines)
    assert any("bias: " in l and "7 levels off" in l for l in lines)


def test_a_gan_model_must_also_pass_the_release_gate_on_clean_set5_and_set14():
    rs = rows("short", (0.15, 0.3, 0.3), lpips5=0.1211) + rows("plain", (0.3, 0.5, 0.5))
    rs += rows("blurry", (0.19, 0.3, 0.3), lpips5=0.11, psnr=(29.3, 26.5))
    rs += rows("passes", (0.2, 0.35, 0.35), lpips5=0.114)
    best, lines = choose(measured(rs, dict.fromkeys(("short", "plain", "blurry", "passes"), 0),
                                  gan=("short", "blurry", "passes")))
    assert best == "passes"
    assert any(l.startswith("short: ") and "set5 LPIPS 0.1211 (gate 0.115)" in l for l in lines)
    assert any(l.startswith("blurry: ") and "set5 Y-PSNR 29.30 dB (gate 29.4)" in l
               for l in lines)
    # the same numbers from a model trained without a discriminator: no gate
    best, _ = choose(measured(rs, dict.fromkeys(("short", "plain", "blurry", "passes"), 0)))
    assert best == "short"
    # a stage nobody read is not eligible
    cands = measured(rs, dict.fromkeys(("short", "plain", "blurry", "passes"), 0))
    cands["short"] = dataclasses.replace(cands["short"], gan=None)
    assert "training stage not known" in cands["short"].reasons()


def test_models_measured_on_different_sets_are_refused():
    rs = rows("a", (0.2, 0.3, 0.3)) + rows("b", (0.2, 0.3, 0.3))[:-2]
    with pytest.raises(ValueError, match="not measured on the same Set14 sets"):
        choose(measured(rs, {"a": 0, "b": 0}))


def test_no_eligible_model_is_an_error_that_lists_why():
    with pytest.raises(ValueError, match="no model is eligible"):
        choose(measured(rows("a", (0.2, 0.3, 0.3), grid5=7.0), {"a": 0}))


def test_the_flat_colour_check_measures_the_largest_channel_error():
    assert flat_error(lambda a: np.repeat(np.repeat(a, 4, 0), 4, 1)) == 0
    assert flat_error(lambda a: np.clip(a.astype(int) + 5, 0, 255).astype(np.uint8)) == 5


def test_the_registered_default_is_the_rules_choice_over_the_committed_measurements():
    """weights/models.json's default is what scripts/choose_default.py chooses from the
    benchmark results in docs/results (the shipped models on clean and degraded Set14)."""
    results = REPO / "docs" / "results" / "default_rule_x4.json"
    if not results.is_file():
        pytest.skip(f"{results} not committed")
    from srgan_cli.distribution.registry import lookup, registry

    measured = {r["method"] for r in json.loads(results.read_text())}
    # every shipped x4 model is a candidate: a model left out could be the better default
    shipped = {n for n, e in registry().items()
               if e.spec.scale == 4 and (REPO / "weights" / e.filename).is_file()}
    assert shipped <= measured, f"not in {results.name}: {sorted(shipped - measured)}"
    for m in measured - {"bicubic"}:
        if not (REPO / "weights" / lookup(m).filename).is_file():
            pytest.skip(f"{m}: weights not shipped")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "choose_default.py"),
                        str(results), "--check"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "default by the rule: " in r.stdout
