"""Typed errors raised by the library; the CLI turns them into one-line messages."""


class SrganError(Exception):
    """Base class for all errors this package raises on purpose."""


class WeightsError(SrganError):
    """A weights file is missing, not safetensors, or does not match the architecture."""


class ImageError(SrganError):
    """An image could not be read or written."""


class TrainError(SrganError):
    """Training cannot start or continue."""
