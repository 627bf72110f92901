"""Inference: running a loaded `Model` on images. `runner` (prepare, tile, redo in fp32, quantise),
`upscale` (the `Upscaler`: a runner that also loads by name, blends and runs files), exact
receptive-field `tiling`, the `device` and precision policy, the exact inference rewrites
(`rewrite`) and the fused CPU `kernels`.
"""
