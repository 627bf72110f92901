"""What ``srgan upscale`` counts: the outcomes of a batch (:class:`Tally`). Imports no
torch, so the command can report an interruption that comes while torch loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from srgan_cli.batch.pipeline import FileOutcome


@dataclass
class Tally:
    """The outcomes of a batch so far, counted; each one also as the JSON record that
    ``srgan upscale --json`` prints."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    mp_out: float = 0.0  # megapixels written

    @property
    def reported(self) -> int:
        return self.done + self.skipped + self.failed

    def add(self, o: FileOutcome) -> dict:
        record: dict = {"input": str(o.src)}
        if o.dst is not None:
            record["output"] = str(o.dst)
        if o.status == "skipped":
            self.skipped += 1
            record["status"] = "skipped"
        elif o.status == "error":
            self.failed += 1
            record.update(status="error", error=str(o.error))
        else:
            res = o.result
            self.done += 1
            self.mp_out += res.out_size[0] * res.out_size[1] / 1e6
            record.update(status="ok", in_size=list(res.in_size), out_size=list(res.out_size),
                          seconds=round(o.seconds, 3), tile=res.tile,
                          fp32_retries=res.fp32_retries)
        return record

    def summary(self, seconds: float) -> dict:
        return {"images": self.done, "skipped": self.skipped, "failed": self.failed,
                "megapixels_out": round(self.mp_out, 3), "seconds": round(seconds, 3),
                "mp_per_s": round(self.mp_out / seconds, 4) if seconds > 0 else None}
