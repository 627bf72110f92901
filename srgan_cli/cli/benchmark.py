"""``srgan benchmark``: quality on benchmark sets (the paper's protocol) or speed; the runs
are :mod:`srgan_cli.bench.run`'s, this module parses options and prints."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from srgan_cli.bench.metrics import SSIM_METHODS
from srgan_cli.cli.console import err, exit_on_error, fail, interrupts, print_table
from srgan_cli.cli.options import (
    benchmark_models,
    border_option,
    inference_options,
    model_option,
    parse_tile,
)


def _speed_benchmark(models, *, device, precision, kernels, size, tile, runs, baselines, gemm,
                     json_path, border):
    """``srgan benchmark --speed``: the timing table, GEMM rates and speed-up."""
    from srgan_cli.bench import run

    try:
        w, h = (int(v) for v in size.lower().split("x"))
        tile_n = parse_tile(tile)
    except (ValueError, click.BadParameter):
        fail(f"--size {size!r} / --tile {tile!r}: expected WxH and auto or a number", 2)
    with exit_on_error():
        timed = run.speed(models, (w, h), device=device, precision=precision, kernels=kernels,
                          tile=tile_n, runs=runs, baselines=baselines, gemm=gemm,
                          border=border, on_note=err.print)
    results, rates, fractions = timed.results, timed.rates, timed.fractions
    print_table(timed.table())
    if rates:
        Console().print(
            f"GEMM (2048^3) on {results[0].device}: "
            + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in rates.items()) + "; "
            + "; ".join(f"{r.label}: " + ("n/a" if f is None else
                                          f"{f:.0%} of the {r.precision} GEMM rate")
                        for r, f in zip(results, fractions)), soft_wrap=True)
    if timed.peak is not None:
        p = timed.peak
        Console().print(
            f"peak FMA ({p.threads} cores x FLOP/cycle from the CPU flags x {p.ghz:.2f} GHz "
            f"measured): " + ", ".join(f"{q} {p.gflops(q):.0f} GFLOP/s" for q in p.flop_per_cycle)
            + "; " + "; ".join(f"{r.label}: " + ("n/a" if f is None else
                                                f"{f:.0%} of the {r.precision} peak")
                               for r, f in zip(results, timed.peak_fractions)), soft_wrap=True)
    elif timed.peak_note:
        Console().print(timed.peak_note, soft_wrap=True)
    for base in results[1:]:
        if base.label.startswith("baseline"):
            name = base.label.removeprefix("baseline ")
            name = ("the eager fp32 baseline" if name == "eager-fp32"
                    else name.replace("openvino", "OpenVINO"))
            Console().print(f"speed-up over {name}: "
                            f"{results[0].mp_per_s_median / base.mp_per_s_median:.2f}x")
    if json_path:
        run.write_json(json_path, timed.as_json())


@click.command()
@click.argument("datasets", nargs=-1, required=False)
@model_option(several=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder holding <Name>/<Name>_HR/ and <Name>/<Name>_LR_x4/. Default: "
                   "$SRGAN_BENCHMARK_DIR, else ../shared/datasets/benchmark.")
@click.option("--source", type=click.Choice(["auto", "local", "hub"]), default="auto",
              show_default=True, help="auto: the data dir when it has the dataset, else the Hub "
              "(eugenesiow/<Name> dataset repos, cached).")
@inference_options
@click.option("--speed", is_flag=True, help="Measure speed instead of quality (no datasets).")
@click.option("--size", default="512x512", show_default=True, metavar="WxH",
              help="--speed: LR input size of the synthetic photo.")
@click.option("--tile", default="auto", show_default=True, help="--speed: as for upscale.")
@click.option("--runs", type=click.IntRange(1), default=5, show_default=True,
              help="--speed: timed runs (after one warm-up run).")
@click.option("--baseline", "baselines", multiple=True,
              type=click.Choice(["eager-fp32", "openvino"]),
              help="--speed: also time a plain eager fp32 model(x) on the same input "
              "(eager-fp32), or the same network through OpenVINO f32 with the latency hint "
              "on the whole image (openvino; needs the openvino package: srgan[openvino]). "
              "Repeatable.")
@click.option("--gemm/--no-gemm", default=True, show_default=True,
              help="--speed: also measure the device's matmul rate in each precision timed "
              "and the CPU's peak FMA rate (cores x FLOP per cycle from the CPU flags x a "
              "measured clock), as yardsticks for the paths run in it.")
@click.option("--ssim", "ssim_method", type=click.Choice(SSIM_METHODS), default=SSIM_METHODS[0],
              show_default=True, help="daala: the paper's SSIM (Gaussian sigma 1.5*H/256, "
              "in-image taps); standard: the common 11x11 sigma-1.5 SSIM.")
@click.option("--lpips/--no-lpips", "use_lpips", default=None,
              help="LPIPS (AlexNet, v0.1) on RGB. Default: on when its weights are found.")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="LPIPS weights (safetensors). Default: $SRGAN_LPIPS_WEIGHTS, else "
                   "../shared/weights/lpips-alexnet.safetensors.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the results as a JSON list of records.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the results as CSV (one row per dataset x method).")
@click.option("--save-images", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the SR outputs as DIR/<dataset>/<method>/<image>.png.")
@click.option("--compare", "compare_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Write side-by-side crops (HR | bicubic | each model) as PNGs.")
@border_option
@click.option("--realism", "realisms", type=click.FloatRange(0, 1), multiple=True, metavar="R",
              help="Score each GAN model blended with its parent SRResNet at realism R "
              "(repeatable; rows named 'MODEL R=0.5'); see upscale --realism.")
@click.option("--degrade", "degrades", multiple=True, metavar="SPEC",
              help="Score on LR remade from the HR images with degradations (repeatable; "
              "sets named 'set14+jpeg75'): jpegQ, noiseS (Gaussian sigma S/255 on the LR), "
              "blurS (Gaussian sigma S LR px before the bicubic downscale), clean (the "
              "downscale alone), joined by '+' (blur1+jpeg75); none: the dataset's own LR. "
              "docs/benchmarks.md says exactly how each is made.")
def benchmark(datasets, models, data_dir, source, device, precision, kernels, speed, size, tile, runs, baselines,
              gemm, ssim_method, use_lpips, lpips_weights, json_path, csv_path, save_images,
              compare_dir, border, realisms, degrades):
    """Score models on benchmark sets with the paper's protocol (x4).

    PSNR and SSIM on the BT.601 luma (Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255) after
    cropping 4 px from every border; grayscale images on their raw values. The paper's
    published numbers are shown beside ours.

    \b
    Examples:
      srgan benchmark set5 set14
      srgan benchmark set5 --model nearest --model bicubic --model weights/mine.safetensors
      srgan benchmark --speed --size 512x512 --baseline eager-fp32 --json speed.json
      srgan benchmark --speed --precision fp32 --baseline openvino --runs 3
    """
    if speed:
        try:
            with interrupts():
                return _speed_benchmark(models, device=device, precision=precision,
                                        kernels=kernels, size=size, tile=tile, runs=runs,
                                        baselines=baselines, gemm=gemm, json_path=json_path,
                                        border=border)
        except KeyboardInterrupt:
            fail("interrupted: no speed measured", code=130)
    done: list = []
    try:
        with interrupts():
            _quality_benchmark(datasets, models, done, data_dir=data_dir, source=source,
                               inference=dict(device=device, precision=precision,
                                              kernels=kernels, border=border),
                               ssim_method=ssim_method, use_lpips=use_lpips,
                               lpips_weights=lpips_weights, json_path=json_path,
                               csv_path=csv_path, save_images=save_images,
                               compare_dir=compare_dir, realisms=realisms,
                               degrades=degrades)
    except KeyboardInterrupt:
        fail(f"interrupted: {len(done)} result(s) (dataset x method) scored, shown above",
             code=130)


def _quality_benchmark(datasets, models, done: list, *, data_dir, source, inference: dict,
                       ssim_method, use_lpips, lpips_weights, json_path, csv_path,
                       save_images, compare_dir, realisms, degrades=()):
    """``srgan benchmark DATASETS``: the scores, a line each as they come (also appended
    to ``done``), then the table and the files asked for."""
    if not datasets:
        fail("name at least one dataset (set5, set14, bsd100, urban100), or use --speed", 2)
    from srgan_cli.bench import run
    from srgan_cli.bench.degraded import degraded_sets, parse_degrade

    with exit_on_error(2):
        for spec in degrades:
            parse_degrade(spec)
    models = benchmark_models(models)
    data_dir, explicit = run.data_dir(data_dir)
    if source == "local" and data_dir is None:
        fail("no benchmark data: pass --data-dir DIR (../shared/datasets/benchmark not found)")
    with exit_on_error():
        methods = run.methods(models, realisms, **inference, on_note=err.print)
        loaded = run.load_datasets(datasets, data_dir, source=source, explicit=explicit,
                                   on_note=err.print)
        if degrades:
            loaded = degraded_sets(loaded, list(degrades), run.SCALE)
        lpips_model = run.lpips_model(use_lpips, lpips_weights)

    def on_record(rec):
        done.append(rec)
        err.print(f"{rec.dataset} {rec.method}: PSNR {rec.psnr:.2f} dB, SSIM {rec.ssim:.4f}"
                  + (f", LPIPS {rec.lpips:.4f}" if rec.lpips is not None else "")
                  + (f", grid excess {rec.grid:+.1f} dB" if rec.grid is not None else "")
                  + f" ({rec.images} images)")

    with exit_on_error():
        records = run.score(loaded, methods, ssim_method=ssim_method, lpips=lpips_model,
                            save_images=save_images, compare_dir=compare_dir,
                            on_record=on_record)
    if compare_dir:
        err.print(f"comparison crops written to {compare_dir}")
    print_table(run.quality_table(records, methods, loaded, ssim_method,
                                  with_lpips=lpips_model is not None))
    if json_path:
        run.write_json(json_path, [r.as_dict() for r in records])
    if csv_path:
        run.write_csv(csv_path, records)
