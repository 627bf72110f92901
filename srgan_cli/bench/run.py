"""Benchmark runs as ``srgan benchmark`` makes them: where the data is, the methods scored,
scoring with saved images and comparison strips, the results as table rows, JSON and CSV;
and the speed benchmark. Never prints: progress goes to the callbacks given."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srgan_cli import paths
from srgan_cli.bench.datasets import Pair, has_dataset, load_dataset
from srgan_cli.bench.quality import BASELINES, PAPER, Record, baseline, compare_strip, evaluate
from srgan_cli.errors import BenchmarkError

SCALE = 4  # the paper's benchmarks, and the only scale scored
Note = Callable[[str], None]


def _ignore(_: str) -> None:
    pass


@dataclass
class Table:
    """A table for a person: a title, (header, right-aligned) columns and rows of text."""

    title: str
    columns: list[tuple[str, bool]]
    rows: list[list[str]] = field(default_factory=list)


def safe_name(method: str) -> str:
    """A folder/file-name-safe label for a method (model paths become their stem)."""
    name = Path(method).stem if ("/" in method or method.endswith(".safetensors")) else method
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def data_dir(given: Path | None) -> tuple[Path | None, bool]:
    """The folder holding the benchmark sets and whether the user named it (``given``, else
    ``$SRGAN_BENCHMARK_DIR``) or it is the default (``../shared/datasets/benchmark``; None
    when absent). Datasets missing from a default folder come from the Hub."""
    if given is not None:
        return given, True
    env = os.environ.get("SRGAN_BENCHMARK_DIR")
    if env:
        return Path(env), True
    shared = paths.shared_dir()
    return (shared / "datasets" / "benchmark" if shared else None), False


def methods(models: Iterable[str], realisms: Iterable[float] = (), *, device: str = "auto",
            precision: str = "auto", kernels: str = "auto", border: str | None = None,
            on_note: Note = _ignore) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Label -> LR-to-SR function for each model (baselines by name; each model once per
    realism, labelled 'MODEL R=0.5', when ``realisms`` are given). A model that is not x4
    raises :class:`BenchmarkError`. ``border``: as for :class:`Upscaler` (None: its
    default)."""
    from PIL import Image

    from srgan_cli.inference.upscale import Upscaler

    found = {}
    for m in models:
        if m in BASELINES:
            found[m] = baseline(m, SCALE)
            continue
        for r in realisms or (None,):
            label = m if r is None else f"{m} R={r:g}"
            up = Upscaler(m, device=device, precision=precision, kernels=kernels, realism=r,
                          **({} if border is None else {"border": border}))
            if up.kernels_note:
                on_note(f"{label}: {up.kernels_note}")
            if up.scale != SCALE:
                raise BenchmarkError(f"{m}: scale x{up.scale}; only x{SCALE} benchmarks are "
                                     "supported")
            found[label] = (lambda u: lambda lr: np.asarray(
                u.upscale_image(Image.fromarray(lr))))(up)
    return found


def load_datasets(names: Iterable[str], root: Path | None, *, source: str = "auto",
                  explicit: bool = False, on_note: Note = _ignore) -> dict[str, list[Pair]]:
    """Lower-cased name -> pairs. ``source``: 'local' reads ``root``; 'hub' fetches
    (cached); 'auto' reads ``root`` when it has the set or was named (``explicit``), else
    fetches."""
    from srgan_cli.bench.hubdata import REPOS, fetch_dataset

    loaded = {}
    for d in names:
        where = root
        if source == "hub" or (source == "auto" and not explicit and not has_dataset(root, d)):
            on_note(f"{d}: fetching from the Hub ({REPOS.get(d.lower(), '?')})")
            where = fetch_dataset(d, SCALE)
        loaded[d.lower()] = load_dataset(d, where, SCALE)
    return loaded


def lpips_model(use: bool | None, weights: Path | None):
    """The LPIPS network when asked for (``use``), or by default (None) when its weights
    are found; else None."""
    from srgan_cli.nets.lpips import LPIPS, default_weights

    if use or (use is None and (weights or default_weights())):
        return LPIPS.load(weights)
    return None


def score(loaded: dict[str, list[Pair]], scored: dict[str, Callable], *,
          ssim_method: str = "daala", lpips=None, save_images: Path | None = None,
          compare_dir: Path | None = None, on_record: Callable[[Record], None] | None = None
          ) -> list[Record]:
    """One record per dataset x method, in order. ``save_images``: each SR output as
    DIR/<dataset>/<method>/<image>.png; ``compare_dir``: a strip per image (HR | bicubic |
    each model) as DIR/<dataset>/<image>.png, bicubic run for it when not scored."""
    from PIL import Image

    extra = {"bicubic": baseline("bicubic", SCALE)} if compare_dir and "bicubic" not in scored \
        else {}
    records = []
    outputs: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for ds, pairs in loaded.items():
        for name, fn in {**scored, **extra}.items():
            def on_output(image, sr, ds=ds, name=name):
                if compare_dir:
                    outputs.setdefault((ds, image), {})[name] = sr
                if save_images and name in scored:
                    d = save_images / ds / safe_name(name)
                    d.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(sr).save(d / f"{image}.png")

            is_scored = name in scored
            rec = evaluate(ds, name, pairs, SCALE, fn, ssim_method=ssim_method,
                           lpips_model=lpips if is_scored else None, on_output=on_output)
            if not is_scored:
                continue
            records.append(rec)
            if on_record:
                on_record(rec)
    if compare_dir:
        write_comparisons(outputs, loaded, compare_dir)
    return records


def write_comparisons(outputs: dict[tuple[str, str], dict[str, np.ndarray]],
                      loaded: dict[str, list[Pair]], compare_dir: Path) -> None:
    """A strip per (dataset, image): HR, bicubic, then the other methods' outputs."""
    for (ds, image), panels in outputs.items():
        hr = next(p.hr for p in loaded[ds] if p.name == image)
        order = {"bicubic": panels["bicubic"],
                 **{k: v for k, v in panels.items() if k != "bicubic"}}
        d = compare_dir / ds
        d.mkdir(parents=True, exist_ok=True)
        compare_strip(hr, {(safe_name(k) if k not in BASELINES else k): v
                           for k, v in order.items()}).save(d / f"{image}.png")


def quality_table(records: list[Record], method_names: Iterable[str], datasets: Iterable[str],
                  ssim_method: str, with_lpips: bool) -> Table:
    """Methods down, dataset x metric across, the paper's Table 2 numbers in brackets; the
    grid excess (dB over the HR images) last for each dataset."""
    datasets = list(datasets)
    table = Table(f"x{SCALE}, Y channel, 4-px border crop, SSIM {ssim_method}; "
                  "the paper's Table 2 in brackets", [("method", False)])
    for ds in datasets:
        table.columns += [(f"{ds} PSNR", True), (f"{ds} SSIM", True)]
        if with_lpips:
            table.columns.append((f"{ds} LPIPS", True))
        table.columns.append((f"{ds} grid dB", True))
    for name in method_names:
        row = [name]
        for ds in datasets:
            rec = next(r for r in records if r.dataset == ds and r.method == name)
            paper = PAPER.get((ds, name))
            row.append(f"{rec.psnr:.2f}" + (f" [{paper[0]:.2f}]" if paper else ""))
            show_paper = paper and ssim_method == "daala"
            row.append(f"{rec.ssim:.4f}" + (f" [{paper[1]:.4f}]" if show_paper else ""))
            if with_lpips:
                row.append(f"{rec.lpips:.4f}")
            row.append("-" if rec.grid is None else f"{rec.grid:+.1f}")
        table.rows.append(row)
    return table


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_csv(path: Path, records: list[Record]) -> None:
    """One row per dataset x method."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "method", "scale", "psnr", "ssim", "ssim_method", "lpips",
                    "grid_excess", "images"])
        for r in records:
            w.writerow([r.dataset, r.method, r.scale, f"{r.psnr:.4f}", f"{r.ssim:.5f}",
                        r.ssim_method, "" if r.lpips is None else f"{r.lpips:.5f}",
                        "" if r.grid is None else f"{r.grid:.3f}", r.images])


# --------------------------------------------------------------------------- speed


@dataclass
class SpeedRun:
    """The paths timed, and the device's matmul rates they are compared with."""

    size: tuple[int, int]
    runs: int
    results: list  # of bench.speed.SpeedResult
    rates: dict[str, float]  # GEMM GFLOP/s by precision (empty without --gemm)
    extra: dict  # hardware, GEMM and peak rates, for the JSON
    peak: object = None  # bench.speed.Peak: the CPU's peak FMA rate (None: not known)
    peak_note: str | None = None  # why there is no peak FMA rate

    @property
    def fractions(self) -> list[float | None]:
        """Each path's GFLOP/s as a fraction of the GEMM rate of its precision."""
        from srgan_cli.bench.speed import gemm_fraction

        return [gemm_fraction(r.gflops, self.rates.get(r.precision)) for r in self.results]

    @property
    def peak_fractions(self) -> list[float | None]:
        """Each path's GFLOP/s as a fraction of the CPU's peak FMA rate in its precision."""
        from srgan_cli.bench.speed import peak_fraction

        return [peak_fraction(r.gflops, self.peak and self.peak.gflops(r.precision))
                for r in self.results]

    def table(self) -> Table:
        w, h = self.size
        fewer = sorted({r.runs for r in self.results if r.runs != self.runs})
        table = Table(f"speed: {w}x{h} input, median of {self.runs} runs after 1 warm-up"
                      + "".join(f" ({n} for the baseline, sized by time)" for n in fewer[:1]),
                      [(c, c not in ("path", "model")) for c in
                       ("path", "model", "device", "precision", "tile", "out MP/s (min-max)",
                        "GFLOP/s", "peak RSS MB", "CUDA peak MB")])
        for r in self.results:
            table.rows.append([
                r.label, r.model, r.device, r.precision, str(r.tile or "whole"),
                f"{r.mp_per_s_median:.3f} ({r.mp_per_s_min:.3f}-{r.mp_per_s_max:.3f})",
                "?" if r.gflops is None else f"{r.gflops:.0f}", f"{r.peak_rss_mb:.0f}",
                "-" if r.cuda_peak_mb is None else f"{r.cuda_peak_mb:.0f}"])
        return table

    def as_json(self) -> dict:
        records = [{**r.as_dict(), "gemm_gflops": self.rates.get(r.precision),
                    "gemm_fraction": f,
                    "peak_gflops": self.peak and self.peak.gflops(r.precision),
                    "peak_fraction": pf}
                   for r, f, pf in zip(self.results, self.fractions, self.peak_fractions)]
        return {"results": records, **self.extra}


def _baseline(up, rgb: np.ndarray, common: dict, on_note: Note):
    """The eager fp32 baseline's result, its timed runs sized by time (announced first)."""
    import torch

    from srgan_cli.bench.speed import BASELINE_BUDGET_S, baseline_plan, eager_fp32_baseline, measure
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(up.device)
    plain = up.model.net.to(up.device)  # as trained: BN unfolded
    runs, per_run = baseline_plan(plain, x, common["runs"])
    on_note(f"timing the eager fp32 baseline (whole image): about {per_run:.1f} s a run, "
            f"1 warm-up + {runs} timed run{'s' * (runs > 1)} (sized to {BASELINE_BUDGET_S:.0f} "
            f"s), about {per_run * (runs + 1):.0f} s in all...")
    return measure("baseline eager-fp32", eager_fp32_baseline(plain, x), precision="fp32",
                   tile=0, **{**common, "runs": runs})


def _openvino(up, rgb: np.ndarray, common: dict, on_note: Note):
    """The same network (as trained, fp32) through OpenVINO f32, latency hint, whole image."""
    import torch

    from srgan_cli.bench.speed import measure, openvino_baseline

    if up.device.type != "cpu":
        raise BenchmarkError(f"--baseline openvino runs on the CPU, not {up.device.type}")
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    plain = up.model.net.cpu()  # as trained: BN unfolded
    run, version = openvino_baseline(plain, x)
    on_note(f"timing OpenVINO {version.split('-')[0]} (f32, latency hint, "
            f"{torch.get_num_threads()} threads, whole image)...")
    return measure(f"baseline openvino {version.split('-')[0]} f32", run, precision="fp32",
                   tile=0, **common)


def speed(models: Iterable[str], size: tuple[int, int], *, device: str = "auto",
          precision: str = "auto", kernels: str = "auto", tile: int | None = None,
          runs: int = 5, baselines: Iterable[str] = (), gemm: bool = True,
          border: str | None = None, on_note: Note = _ignore) -> SpeedRun:
    """Time srgan's upscale path for each model (not the baselines; 'srresnet' when none)
    on a synthetic photo of ``size`` (LR, WxH), and with ``baselines`` ``eager-fp32`` a
    plain eager fp32 ``model(x)``, ``openvino`` the network through OpenVINO f32 (when the
    package is installed; BenchmarkError otherwise); with ``gemm`` also the device's matmul
    rates and the CPU's peak FMA rate."""
    import torch

    from srgan_cli.bench.speed import (
        gemm_rates,
        hardware,
        measure,
        openvino_reason,
        peak_fma,
        synthetic_photo,
    )

    if "openvino" in baselines and openvino_reason():
        raise BenchmarkError(openvino_reason())
    from srgan_cli.imageio.imaging import Decoded
    from srgan_cli.inference.upscale import Upscaler

    w, h = size
    names = [m for m in models if m not in BASELINES] or ["srresnet"]
    rgb = synthetic_photo(w, h)
    results = []
    for name in names:
        up = Upscaler(name, device=device, precision=precision, tile=tile, kernels=kernels,
                      **({} if border is None else {"border": border}))
        used = up.tile_for(h, w)
        common = dict(model=name, device=up.device, in_size=(w, h), scale=up.scale,
                      flops_per_px=up.model.facts.flops_per_lr_pixel, runs=runs)
        d = Decoded(rgb, None, "RGB")
        on_note(f"timing {name} ({up.precision}, {up.kernels} kernels, tile "
                f"{used or 'whole image'}) on {up.device}..."
                + (f" ({up.kernels_note})" if up.kernels_note else ""))
        results.append(measure(f"srgan upscale path ({up.kernels} kernels)",
                               lambda up=up, d=d: up.upscale_decoded(d),
                               precision=up.precision, tile=used,
                               **common))
        if "openvino" in baselines:
            results.append(_openvino(up, rgb, common, on_note))
        if "eager-fp32" in baselines:
            results.append(_baseline(up, rgb, common, on_note))
    dev = torch.device(results[0].device)
    extra = {"hardware": hardware(dev)}
    rates, peak, peak_note = {}, None, None
    if gemm:  # each path is compared with the matmul rate of the precision it runs in
        rates = gemm_rates(dev, [r.precision for r in results])
        extra["gemm_gflops"] = rates
        if "bf16" in rates:
            extra["bf16_gemm_gflops"] = rates["bf16"]
        peak, peak_note = peak_fma(dev, [r.precision for r in results])
        extra["peak_fma"] = peak.as_dict() if peak else {"unknown": peak_note}
    return SpeedRun((w, h), runs, results, rates, extra, peak, peak_note)
