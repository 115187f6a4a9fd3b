"""The per-face-per-frame table (frames.csv) shared by ``analyze`` and the recorder.

``timestamp_ms`` is session time (monotonic); ``pass`` counts the loops of a video and
the source changes (0-based), so a reader can tell one pass from the next.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Final

from facial_emotion.types import EMOTIONS, FrameResult

FRAME_COLUMNS: Final[tuple[str, ...]] = (
    "frame",
    "timestamp_ms",
    "pass",
    "track_id",
    "left",
    "top",
    "right",
    "bottom",
    *(f"p_{name}" for name in EMOTIONS),
    "emotion",
    "emotion_prob",
    "ear",
    "blinks",
    "mood",
)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def frame_rows(result: FrameResult) -> list[dict[str, str | int]]:
    """One row per face of a frame, keyed by FRAME_COLUMNS (empty strings where a stage was off)."""
    rows: list[dict[str, str | int]] = []
    for face in result.faces:
        b = face.box
        row: dict[str, str | int] = {
            "frame": result.frame.index,
            "timestamp_ms": f"{result.frame.timestamp_ms:.1f}",
            "pass": result.frame.pass_index,
            "track_id": face.track_id,
            "left": b.left,
            "top": b.top,
            "right": b.right,
            "bottom": b.bottom,
        }
        probs = face.emotion.probabilities if face.emotion else (None,) * len(EMOTIONS)
        for name, p in zip(EMOTIONS, probs, strict=True):
            row[f"p_{name}"] = _fmt(p)
        row["emotion"] = face.emotion.top if face.emotion else ""
        row["emotion_prob"] = _fmt(face.emotion.top_probability) if face.emotion else ""
        row["ear"] = _fmt(face.ear)
        row["blinks"] = face.blinks
        row["mood"] = _fmt(face.mood)
        rows.append(row)
    return rows


class FrameTableWriter:
    """Appends frame rows to a CSV file and flushes at least every ``flush_every_s`` seconds."""

    def __init__(self, path: Path, *, flush_every_s: float = 1.0) -> None:
        import time

        self._time = time.monotonic
        self.path = path
        self._handle: IO[str] = open(path, "w", newline="")
        self._writer = csv.DictWriter(self._handle, fieldnames=FRAME_COLUMNS)
        self._writer.writeheader()
        self._handle.flush()
        self._flush_every_s = flush_every_s
        self._last_flush = self._time()
        self.rows = 0

    def write(self, result: FrameResult) -> None:
        """Append the rows of one frame."""
        rows = frame_rows(result)
        self._writer.writerows(rows)
        self.rows += len(rows)
        if self._time() - self._last_flush >= self._flush_every_s:
            self.flush()

    def flush(self) -> None:
        """Push buffered rows to the OS."""
        self._handle.flush()
        self._last_flush = self._time()

    def close(self) -> None:
        """Flush and close."""
        if not self._handle.closed:
            self._handle.flush()
            self._handle.close()
