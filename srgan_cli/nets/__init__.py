"""Network architectures: one module per architecture. The spec of ours
(:mod:`srgan_cli.nets.srresnet_spec`) imports without torch."""

__all__ = ["GeneratorSpec", "SRResNet"]


def __getattr__(name: str):
    if name in __all__:
        from srgan_cli.nets import generator

        return getattr(generator, name)
    raise AttributeError(name)
