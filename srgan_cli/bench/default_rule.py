"""The rule that chooses the default model (issues 21 and 22), as code.

Among the measured models, the **eligible** ones show no lattice and keep flat colours:

- grid excess at most :data:`GRID_BOUND` dB on Set5 and on Set14 (their own LR images), the
  lattice issue's bound;
- a 64x64 solid image in each of :data:`FLAT_COLOURS`, upscaled with the default border in
  fp32 (the benchmark's precision, so the choice is the same on every CPU), comes back within :data:`FLAT_LEVELS` levels of its colour everywhere, corners included (a GAN's
  colour bias or texture on flat areas fails it);
- a photo-realistic model (trained with a discriminator: its file's stage is ``gan``) also
  passes the lattice issue's release gate on the clean sets, fp32: LPIPS at most
  :data:`GAN_GATE_LPIPS` and Y-PSNR at least :data:`GAN_GATE_PSNR` (the paper's SRGAN row)
  on Set5 and Set14. Until one does, the default is not a GAN model.

The default is the eligible model with the lowest **mean LPIPS over Set14, clean and
degraded together**: the dataset's own LR and every ``set14+SPEC`` set of the benchmark
results, ``set14+clean`` left out (it repeats the dataset's own LR). Every candidate must
have been measured on the same sets. Baselines (bicubic...) are not candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID_BOUND = 6.0
FLAT_LEVELS = 3
FLAT_COLOURS = ((20, 180, 240), (128, 128, 128), (250, 5, 90))
BASELINES = ("bicubic", "bilinear", "nearest", "lanczos")
# issue 21's release gate for a photo-realistic model (clean LR, fp32)
GAN_GATE_LPIPS = {"set5": 0.115, "set14": 0.205}
GAN_GATE_PSNR = {"set5": 29.40, "set14": 26.02}


@dataclass(frozen=True)
class Candidate:
    """One model's facts for the rule."""

    name: str
    grid: dict[str, float]  # 'set5' / 'set14' -> grid excess (dB)
    lpips: dict[str, float]  # Set14 set name -> LPIPS
    flat_error: int | None = None  # largest error on the solid colours (levels); None: unmeasured
    clean: dict[str, dict[str, float]] | None = None  # 'set5' / 'set14' -> psnr, lpips
    gan: bool | None = None  # trained with a discriminator (its stage); None: not known

    @property
    def mean_lpips(self) -> float:
        return float(np.mean(list(self.lpips.values())))

    def reasons(self) -> list[str]:
        """Why the model is not eligible (empty: eligible)."""
        out = [f"grid excess {self.grid[s]:+.1f} dB on {s} (bound {GRID_BOUND:g})"
               for s in ("set5", "set14") if self.grid.get(s, np.inf) > GRID_BOUND]
        out += [f"no grid excess measured on {s}" for s in ("set5", "set14")
                if s not in self.grid]
        if self.flat_error is None:
            out.append("flat colours not measured")
        elif self.flat_error > FLAT_LEVELS:
            out.append(f"a solid colour comes back {self.flat_error} levels off "
                       f"(bound {FLAT_LEVELS})")
        if self.gan is None:
            out.append("training stage not known")
        elif self.gan:
            out += self._gate_reasons()
        return out

    def _gate_reasons(self) -> list[str]:
        out = []
        for s in ("set5", "set14"):
            got = (self.clean or {}).get(s, {})
            if got.get("lpips") is None or got.get("psnr") is None:
                out.append(f"a GAN model without clean {s} PSNR and LPIPS")
                continue
            if got["lpips"] > GAN_GATE_LPIPS[s]:
                out.append(f"a GAN model short of the release gate: {s} LPIPS "
                           f"{got['lpips']:.4f} (gate {GAN_GATE_LPIPS[s]:g})")
            if got["psnr"] < GAN_GATE_PSNR[s]:
                out.append(f"a GAN model short of the release gate: {s} Y-PSNR "
                           f"{got['psnr']:.2f} dB (gate {GAN_GATE_PSNR[s]:g})")
        return out


def candidates(rows: list[dict]) -> dict[str, Candidate]:
    """Candidates from benchmark JSON rows (``srgan benchmark --json``, several files'
    rows together; a later row for the same set and model replaces an earlier one)."""
    grid: dict[str, dict[str, float]] = {}
    lpips: dict[str, dict[str, float]] = {}
    clean: dict[str, dict[str, dict[str, float]]] = {}
    for r in rows:
        m, ds = r["method"], r["dataset"].lower()
        if m in BASELINES:
            continue
        if ds in ("set5", "set14") and r.get("grid_excess") is not None:
            grid.setdefault(m, {})[ds] = float(r["grid_excess"])
        if ds in ("set5", "set14"):
            clean.setdefault(m, {})[ds] = {k: float(r[k]) for k in ("psnr", "lpips")
                                           if r.get(k) is not None}
        if (ds == "set14" or ds.startswith("set14+")) and ds != "set14+clean" \
                and r.get("lpips") is not None:
            lpips.setdefault(m, {})[ds] = float(r["lpips"])
    return {m: Candidate(m, grid.get(m, {}), lpips[m], clean=clean.get(m, {})) for m in lpips}


def flat_error(upscale, colours=FLAT_COLOURS, size: int = 64) -> int:
    """Largest channel error (levels) over the outputs of ``upscale`` (a function of an
    (H, W, 3) uint8 array returning one) on solid ``size`` x ``size`` images."""
    worst = 0
    for c in colours:
        img = np.empty((size, size, 3), np.uint8)
        img[:] = c
        out = np.asarray(upscale(img)).astype(int)
        worst = max(worst, int(np.abs(out - np.array(c)).max()))
    return worst


def choose(cands: dict[str, Candidate]) -> tuple[str, list[str]]:
    """The default model's name and the lines that explain the choice. Raises ValueError
    when no candidate is eligible or the candidates were measured on different sets."""
    sets = {frozenset(c.lpips) for c in cands.values()}
    if len(sets) != 1:
        common = frozenset.intersection(*sets)
        raise ValueError("the models were not measured on the same Set14 sets; common: "
                         + (", ".join(sorted(common)) or "none"))
    lines = []
    for c in sorted(cands.values(), key=lambda c: c.mean_lpips):
        why = c.reasons()
        lines.append(f"{c.name}: mean Set14 LPIPS {c.mean_lpips:.4f} over {len(c.lpips)} sets; "
                     + ("eligible" if not why else "not eligible: " + "; ".join(why)))
    eligible = [c for c in cands.values() if not c.reasons()]
    if not eligible:
        raise ValueError("no model is eligible:\n" + "\n".join(lines))
    best = min(eligible, key=lambda c: c.mean_lpips)
    return best.name, lines
