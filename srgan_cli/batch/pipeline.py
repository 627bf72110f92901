"""The file-batch pipeline: :func:`upscale_files` runs an
:class:`~srgan_cli.inference.upscale.Upscaler` over many :class:`FileJob` (input file,
output file), decoding the next image and encoding the previous one on their own threads
while the model runs, and yields one :class:`FileOutcome` per job, in order. Errors are
per file and never stop the batch; outputs are written atomically; a file's output that
exists is skipped or refused, never half of each. :func:`compressed_inputs_note` is the
batch's notice about low-quality JPEG inputs.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srgan_cli.distribution.registry import real_model_for
from srgan_cli.errors import ImageError, SrganError
from srgan_cli.files import remove_temporaries
from srgan_cli.imageio import imaging
from srgan_cli.inference.runner import EventCallback, TileCallback
from srgan_cli.inference.upscale import Upscaler, UpscaleResult, input_notes
from srgan_cli.model import Model


def upscale_files(up: Upscaler, jobs: Iterable[FileJob], *, overwrite: bool = False,
                  skip_existing: bool = False, fmt: str | None = None, quality: int = 95,
                  strip_metadata: bool = False,
                  max_pixels: int = imaging.DEFAULT_MAX_PIXELS, png_level: int = imaging.DEFAULT_PNG_LEVEL,
                  on_start: Callable[[Path], None] | None = None,
                  on_tile: TileCallback | None = None,
                  on_event: EventCallback | None = None,
                  overlap: bool = True) -> Iterator[FileOutcome]:
    """Upscale many files; yields one :class:`FileOutcome` per job, in job order.

    With ``overlap`` a reader thread decodes the next image and a writer thread
    encodes and writes the previous one while this thread runs the model on the
    current one (at most one image ahead and one behind). On the CPU, outputs of
    ``TRIM_AFTER_BYTES`` or more are written before the next image starts, so large
    images peak at about the memory of one image (plus the next one's decoded input).
    Errors are per file (``status == "error"``) and never stop the batch: an
    unexpected exception while one file is processed becomes that file's error.
    Each output is written atomically; temporary files that an earlier, killed run
    left beside these outputs are removed first. After a KeyboardInterrupt the jobs
    whose writes are under way are finished and yielded, then it is raised again.
    Whether an output exists is checked before decoding and again just before
    writing, so two jobs with the same output behave as they would one after the
    other. ``on_start``, ``on_tile`` and ``on_event`` are called on this thread.
    """
    if overwrite and skip_existing:
        raise SrganError("--overwrite and --skip-existing contradict each other: use one")
    call = _FilesCall(overwrite=overwrite, skip_existing=skip_existing, fmt=fmt,
                      quality=quality, strip_metadata=strip_metadata,
                      max_pixels=max_pixels, png_level=png_level, on_start=on_start,
                      on_tile=on_tile, on_event=on_event)
    jobs = list(jobs)
    remove_temporaries(job.dst for job in jobs if job.dst is not None)
    if not overlap:
        for job in jobs:
            pending = _file_job(up, job, _done(call.read, job), call,
                                     lambda *a: _done(call.write, *a))
            yield _outcome(*pending)
        return
    yield from _overlapped(up, jobs, call)

def _overlapped(up: Upscaler, jobs: list[FileJob], call: _FilesCall) -> Iterator[FileOutcome]:
    """:func:`upscale_files` with ``overlap``: reads one job ahead on a reader thread,
    writes one job behind on a writer thread (large outputs on this one)."""
    reader = ThreadPoolExecutor(1, thread_name_prefix="srgan-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="srgan-write")
    try:
        ahead = reader.submit(call.read, jobs[0]) if jobs else None
        queued: deque = deque()  # (job, seconds, result | error | None, write future)

        def submit_write(job: FileJob, planes: np.ndarray, info: dict) -> Future:
            if up._large_output(planes):
                # A large image is written here, after the earlier writes and before
                # the next image's activations exist: its encoder's copy must not add
                # to them (the peak-memory bound of docs/memory.md holds per image).
                for q in queued:
                    if q[3] is not None:
                        q[3].exception()  # wait; its result is reported in order later
                return _done(call.write, job, planes, info)
            return writer.submit(call.write, job, planes, info)

        for i, job in enumerate(jobs):
            decoded = ahead
            if i + 1 < len(jobs):  # decode the next image while this one computes
                ahead = reader.submit(call.read, jobs[i + 1])
            queued.append(_file_job(up, job, decoded, call, submit_write))
            # Report finished jobs in order; keep at most one write in flight.
            while queued and (queued[0][3] is None or queued[0][3].done()
                              or len(queued) > 1):
                yield _outcome(*queued.popleft())
        while queued:
            yield _outcome(*queued.popleft())
    except KeyboardInterrupt:  # here, or thrown in at a yield by the caller
        reader.shutdown(wait=False, cancel_futures=True)
        while queued:  # the images being written are finished, and reported
            yield _outcome(*queued.popleft())
        raise
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)

def _file_job(up: Upscaler, job: FileJob, decoded: Future, call: _FilesCall, submit_write):
    """Model step of one file job: (job, seconds so far, result | error | None, write)."""
    try:
        d, secs = decoded.result()
        if d is not _SKIP:
            up.check_output_size(job.src, d.size, call.max_pixels)
    except Exception as e:  # noqa: BLE001 - any failure is this file's error
        return job, 0.0, _as_error(job.src, e), None
    if d is _SKIP:
        return job, 0.0, None, None
    if call.on_start:
        call.on_start(job.src)
    if call.on_event:
        for note in input_notes(job.src, d, job.dst, call.fmt):
            call.on_event(note)
    t = time.perf_counter()
    try:
        planes, tile, retries = up.upscale_decoded(d, call.on_tile, call.on_event)
    except Exception as e:  # noqa: BLE001 - any failure is this file's error
        return job, secs + time.perf_counter() - t, _as_error(job.src, e), None
    secs += time.perf_counter() - t
    res = UpscaleResult(job.src, job.dst, d.size, (planes.shape[1], planes.shape[0]), tile,
                        retries)
    return job, secs, res, submit_write(job, planes, {} if call.strip_metadata else d.info)


@dataclass(frozen=True)

class FileJob:
    """One input of :func:`upscale_files`; ``error`` reports a job that could
    not even be planned (e.g. no output name) in its place in the order;
    ``skip_existing`` skips this job when its output exists (as the call's own flag does
    for every job)."""

    src: Path
    dst: Path | None
    error: SrganError | None = None
    skip_existing: bool = False


@dataclass(frozen=True)
class FileOutcome:
    src: Path
    dst: Path | None
    status: str  # "ok", "skipped" or "error"
    result: UpscaleResult | None = None
    error: SrganError | None = None
    seconds: float = 0.0  # this file's decode + model + encode time (they overlap between files)


_SKIP = object()


@dataclass(frozen=True)
class _FilesCall:
    """The options of one :func:`upscale_files` call: how its files are read
    and written, and its callbacks."""

    overwrite: bool
    skip_existing: bool
    fmt: str | None
    quality: int
    strip_metadata: bool
    max_pixels: int
    png_level: int
    on_start: Callable[[Path], None] | None
    on_tile: TileCallback | None
    on_event: EventCallback | None

    def _existing(self, job: FileJob, exists: bool) -> bool:
        """Whether ``job`` is skipped because its output exists; raises when it exists and
        may be neither skipped nor overwritten. ``exists`` is one look at the disk, so an
        output that appears meanwhile is skipped or refused, never half of each."""
        if exists and (self.skip_existing or job.skip_existing):
            return True
        if exists and not self.overwrite:
            raise SrganError(f"{job.dst}: already exists (use --overwrite)")
        return False

    def read(self, job: FileJob):
        """(decoded image or ``_SKIP``, seconds); raises the job's planned error."""
        t = time.perf_counter()
        if job.error is not None:
            raise job.error
        exists = job.dst.exists()
        if exists and (self.skip_existing or job.skip_existing):
            return _SKIP, 0.0
        imaging.output_format(job.dst, self.fmt)  # fail before the expensive part
        self._existing(job, exists)
        d = imaging.read_image(job.src, max_pixels=self.max_pixels)
        return d, time.perf_counter() - t

    def write(self, job: FileJob, planes: np.ndarray, info: dict):
        """(None or ``_SKIP`` when the output appeared meanwhile, seconds)."""
        t = time.perf_counter()
        if self._existing(job, job.dst.exists()):  # written meanwhile, e.g. by an earlier job
            return _SKIP, 0.0
        imaging.write_image(job.dst, planes, fmt=self.fmt, quality=self.quality, info=info,
                            png_level=self.png_level)
        return None, time.perf_counter() - t



def compressed_inputs_note(sources: Iterable[str | os.PathLike], model: Model,
                           threshold: int = imaging.LOW_JPEG_QUALITY) -> str | None:
    """The notice for a batch whose inputs include JPEGs saved at low quality (estimated
    from their quantisation tables, :func:`srgan_cli.imageio.imaging.jpeg_quality`, below
    ``threshold``), whose compression blocks a model trained on clean LR magnifies: the
    first such file, how many there are, and the registered model trained for real-world
    photos to use instead (:func:`srgan_cli.distribution.registry.real_model_for`). None when there is no
    such input, when no registered model was trained with a real degradation (nothing to
    suggest), when ``model`` itself was, or when it is a community model (a file
    without srgan's metadata, which may be one). Only files named as JPEGs are opened,
    and only their headers; this is done once for the whole batch."""
    if model.degradation != "clean" or model.bare:
        return None  # a real model already, or a community model: how it was trained is unknown
    try:
        real = real_model_for(model.stage)
    except SrganError:  # an unreadable registry is not this notice's to report
        return None
    if real is None:
        return None
    low = []
    for src in map(Path, sources):
        q = imaging.file_jpeg_quality(src) if src.suffix.lower() in imaging.JPEG_SUFFIXES else None
        if q is not None and q < threshold:
            low.append((src, q))
    if not low:
        return None
    src, q = low[0]
    which = (f"{src}: saved as JPEG at quality ~{q}" if len(low) == 1 else
             f"{len(low)} inputs were saved as JPEG below quality {threshold} ({src}: ~{q})")
    return (f"{which}, whose blocks this model magnifies; the {real.name!r} model is "
            f"trained for compressed photos (--model {real.name})")


def _done(fn, *args) -> Future:
    """Run ``fn`` now; its result or exception in a completed Future."""
    f: Future = Future()
    try:
        f.set_result(fn(*args))
    except BaseException as e:  # noqa: BLE001 - handed on through the Future
        f.set_exception(e)
    return f


def _outcome(job: FileJob, secs: float, res, wrote: Future | None) -> FileOutcome:
    if isinstance(res, SrganError):
        return FileOutcome(job.src, job.dst, "error", error=res, seconds=secs)
    if res is None:
        return FileOutcome(job.src, job.dst, "skipped")
    try:
        flag, wsecs = wrote.result()
    except Exception as e:  # noqa: BLE001 - any failure is this file's error
        return FileOutcome(job.src, job.dst, "error", error=_as_error(job.src, e), seconds=secs)
    if flag is _SKIP:
        return FileOutcome(job.src, job.dst, "skipped")
    return FileOutcome(job.src, job.dst, "ok", result=res, seconds=secs + wsecs)


def _as_error(src: Path, e: Exception) -> SrganError:
    """``e`` as one file's one-line error: our own errors as they are, anything else
    (a bug, a library's unexpected exception) named by its type."""
    if isinstance(e, SrganError):
        return e
    text = " ".join(str(e).split())
    return ImageError(f"{src}: unexpected {type(e).__name__}" + (f": {text}" if text else ""))


__all__ = ["FileJob", "FileOutcome", "compressed_inputs_note", "upscale_files"]
