"""Fused CPU kernels, built on first use with the system's C compiler (`amx`: AMX-BF16; `simd`:
AVX2-FMA fp32; the SRResNet forms in `fused` and `fused_fp32`), and `choice`, the one place that
decides which runs a prepared network.
"""
