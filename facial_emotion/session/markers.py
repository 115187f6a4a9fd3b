"""markers.csv: moments of a session marked by the user or by the program; its writers and its reader.

While recording, ``MarkerWriter`` appends a row per marker (the recorder's thread);
in review, ``write_markers`` rewrites the whole file atomically (``session.review``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from facial_emotion.atomic import write_text_atomic
from facial_emotion.session.appendfile import AppendOnlyFile
from facial_emotion.settings import MAX_MARKER_LABEL_CHARS

log = logging.getLogger(__name__)

MARKER_COLUMNS: Final[tuple[str, ...]] = ("time_ms", "label", "origin")
ORIGIN_LIVE: Final = "live"
"""A marker dropped while the session ran (live or in a replay)."""
ORIGIN_REVIEW: Final = "review"
"""A marker added to a finished session in review."""


@dataclass(frozen=True, slots=True)
class Marker:
    """A marked moment: session time in ms, what it says, and who set it (``ORIGIN_LIVE``, ``ORIGIN_REVIEW``)."""

    time_ms: float
    label: str
    origin: str = "user"


def clean_label(label: str) -> str:
    """A marker label as stored: one line, trimmed; ValueError when longer than MAX_MARKER_LABEL_CHARS."""
    if not isinstance(label, str):
        raise ValueError(f"a marker label must be a text, not {type(label).__name__}")
    text = " ".join("".join(c if c.isprintable() else " " for c in label).split())
    if len(text) > MAX_MARKER_LABEL_CHARS:
        raise ValueError(f"a marker label has at most {MAX_MARKER_LABEL_CHARS} characters ({len(text)} given)")
    return text


def _row(marker: Marker) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow([f"{marker.time_ms:.1f}", marker.label, marker.origin])
    return buf.getvalue()


class MarkerWriter:
    """Appends markers to markers.csv, a whole row at a time, unbuffered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = AppendOnlyFile(path, (",".join(MARKER_COLUMNS) + "\r\n").encode())
        self.markers = 0

    def write(self, marker: Marker) -> None:
        """Append one marker."""
        self._file.append(_row(marker).encode("utf-8"))
        self.markers += 1

    def flush(self) -> None:
        """Make the markers written so far durable (fsync)."""
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def read_markers(path: Path) -> tuple[Marker, ...]:
    """The markers of a markers.csv in time order, damaged rows skipped; empty when there is no file.

    Raises OSError when the file is there but cannot be read.
    """
    if not path.exists():
        return ()
    out = []
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.DictReader(handle):
            try:
                time_ms = float(row.get("time_ms") or "")
            except ValueError:
                continue
            if math.isfinite(time_ms):
                out.append(Marker(time_ms, row.get("label") or "", row.get("origin") or ""))
    return tuple(sorted(out, key=lambda m: m.time_ms))


def write_markers(path: Path, markers: tuple[Marker, ...]) -> Path:
    """Replace markers.csv with these markers in time order, atomically (a reader sees old or new)."""
    rows = "".join(_row(m) for m in sorted(markers, key=lambda m: m.time_ms))
    return write_text_atomic(path, ",".join(MARKER_COLUMNS) + "\r\n" + rows, mode=0o644)
