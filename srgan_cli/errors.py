"""Typed errors raised by the library; the CLI turns them into one-line messages."""


class SrganError(Exception):
    """Base class for all errors this package raises on purpose."""


class WeightsError(SrganError):
    """A weights file is missing, not safetensors, or does not match the architecture."""


class ImageError(SrganError):
    """An image could not be read or written."""


class TrainError(SrganError):
    """Training cannot start or continue."""


class ModelUnavailableError(WeightsError):
    """A model is not published yet, or not available locally and the Hub cannot serve it."""


class ChecksumError(WeightsError):
    """A weights file's sha256 differs from the one it must have; the file is refused."""


class ConvertError(WeightsError):
    """A foreign checkpoint cannot be converted (unknown layout, wrong shapes, pickled module)."""


class PublishError(SrganError):
    """Uploading a model to the Hub failed."""


class BenchmarkError(SrganError):
    """A benchmark cannot be run as asked (e.g. a model of a scale the benchmark lacks)."""


class ExportError(SrganError):
    """A model cannot be exported as asked (e.g. to ONNX: a missing optional package, an
    existing output file, a network the exporter cannot trace)."""
