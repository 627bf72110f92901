"""srgan: photo-realistic 4x single-image super-resolution (SRResNet / SRGAN).

The Python API: ``srgan_cli.load(name_or_path)`` returns a :class:`~srgan_cli.model.Model`
(the network, its facts and provenance; ``model.upscale(image)``), and
``srgan_cli.Upscaler`` upscales images and files with one. torch is imported lazily so the
command line starts fast. ``srgan_cli.__version__`` is the installed package's version
(from its metadata; pyproject.toml is the one place it is written).
"""

__all__ = ["Model", "Upscaler", "__version__", "load"]


def __getattr__(name: str):
    if name == "Upscaler":
        from srgan_cli.inference.upscale import Upscaler

        return Upscaler
    if name == "load":
        from srgan_cli.api import load

        return load
    if name == "Model":
        from srgan_cli.model import Model

        return Model
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("srgan")
        except PackageNotFoundError:  # imported from a checkout that was never installed
            return "unknown (not installed)"
    raise AttributeError(name)
