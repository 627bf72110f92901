"""srgan: photo-realistic 4x single-image super-resolution (SRResNet / SRGAN).

``from srgan_cli import Upscaler`` is the Python API; torch is imported lazily so the
command line starts fast. ``srgan_cli.__version__`` is the installed package's version
(from its metadata; pyproject.toml is the one place it is written).
"""

__all__ = ["Upscaler", "__version__"]


def __getattr__(name: str):
    if name == "Upscaler":
        from srgan_cli.upscale import Upscaler

        return Upscaler
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("srgan")
        except PackageNotFoundError:  # imported from a checkout that was never installed
            return "unknown (not installed)"
    raise AttributeError(name)
