"""srgan: photo-realistic 4x single-image super-resolution (SRResNet / SRGAN).

``from srgan_cli import Upscaler`` is the Python API; torch is imported lazily so the
command line starts fast.
"""

__version__ = "0.1.0"
__all__ = ["Upscaler", "__version__"]


def __getattr__(name: str):
    if name == "Upscaler":
        from srgan_cli.upscale import Upscaler

        return Upscaler
    raise AttributeError(name)
