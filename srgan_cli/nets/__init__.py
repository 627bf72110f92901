"""Network architectures: one module per architecture."""

from srgan_cli.nets.generator import GeneratorSpec, SRResNet

__all__ = ["GeneratorSpec", "SRResNet"]
