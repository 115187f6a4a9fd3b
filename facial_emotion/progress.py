"""A one-line progress bar on stderr for the command line (frames or bytes)."""

from __future__ import annotations

import sys
import time
from typing import Literal

Unit = Literal["frames", "bytes"]


class ProgressBar:
    """Redraws one line on a terminal; elsewhere (CI, logs) prints a line every 10%."""

    def __init__(self, label: str, *, unit: Unit = "frames") -> None:
        self.label = label
        self.unit = unit
        self.tty = sys.stderr.isatty()
        self._last_step = -1
        self._t0: float | None = None  # set at the first report: loading models is not progress

    def _amount(self, done: int, total: int | None) -> str:
        if self.unit == "bytes":
            return f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        rate = (done - 1) / (now - self._t0) if done > 1 and now > self._t0 else 0.0
        return (f"{done}/{total}" if total else f"{done} frames") + f" {rate:5.1f} fps"

    def __call__(self, done: int, total: int | None) -> None:
        """Report that done of total items are finished."""
        if total:
            frac = min(done / total, 1.0)
            line = f"{self.label} [{'#' * int(frac * 30):<30}] {self._amount(done, total)}"
            step = int(frac * 10)
        else:
            line = f"{self.label} {self._amount(done, None)}"
            step = done // (5_000_000 if self.unit == "bytes" else 100)
        if self.tty:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        elif step != self._last_step:
            print(line, file=sys.stderr, flush=True)
        self._last_step = step

    def finish(self) -> None:
        """End the bar's line."""
        if self.tty:
            print(file=sys.stderr)
