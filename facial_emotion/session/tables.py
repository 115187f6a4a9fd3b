"""The per-face-per-frame table (frames.csv) and its one writer, shared by ``analyze`` and the recorder.

``timestamp_ms`` is session time (monotonic); ``pass`` counts the loops of a video and
the source changes (0-based), so a reader can tell one pass from the next.
``video_frame`` is the first frame of ``video.mp4`` (and of ``video_clean.mp4``, written
with the same repeats) that shows the row's data frame, and ``video_repeats`` how many
video frames in a row show it (a gap in the input repeats an image to keep the video's
rate); both are empty where no video was written (stills, no encoder). They come last,
so readers by column name written for older tables keep working.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Final

from facial_emotion.session.appendfile import AppendOnlyFile
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
    "video_frame",
    "video_repeats",
)
VIDEO_COLUMNS: Final[tuple[str, ...]] = ("video_frame", "video_repeats")
"""The columns of the frame <-> video mapping (missing in tables of the first release)."""


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def frame_rows(
    result: FrameResult, *, video_frame: int | None = None, video_repeats: int | None = None
) -> list[dict[str, str | int]]:
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
        row["video_frame"] = "" if video_frame is None else video_frame
        row["video_repeats"] = "" if video_repeats is None else video_repeats
        rows.append(row)
    return rows


class FrameTableWriter:
    """frames.csv, each frame's rows written at once: a failed write is cut back to the last whole row.

    Unbuffered (one ``os.write`` a frame), so a crash never leaves half a row;
    ``flush`` makes the rows durable.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = AppendOnlyFile(path, (",".join(FRAME_COLUMNS) + "\r\n").encode())
        self.rows = 0

    def write(self, result: FrameResult, *, video_frame: int | None = None, video_repeats: int | None = None) -> int:
        """Append the rows of one frame, all or none; how many there were."""
        rows = frame_rows(result, video_frame=video_frame, video_repeats=video_repeats)
        if not rows:
            return 0
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=FRAME_COLUMNS).writerows(rows)
        self._file.append(buf.getvalue().encode())
        self.rows += len(rows)
        return len(rows)

    def flush(self) -> None:
        """Make the rows written so far durable (fsync)."""
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
