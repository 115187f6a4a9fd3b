"""frames.csv read back: a numpy array per column, rows by frame and by track, and the video mapping."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from facial_emotion.session.tables import FRAME_COLUMNS, VIDEO_COLUMNS
from facial_emotion.session.video_map import VideoMap

log = logging.getLogger(__name__)

INT_COLUMNS: Final[frozenset[str]] = frozenset(
    {"frame", "pass", "track_id", "left", "top", "right", "bottom", "blinks", *VIDEO_COLUMNS}
)
"""int64 columns; an empty cell is -1 (``pass`` and ``blinks``: 0, as tables without them mean)."""
TEXT_COLUMNS: Final[frozenset[str]] = frozenset({"emotion"})
"""str columns; every other column is float64 with NaN where a cell is empty."""
REQUIRED_COLUMNS: Final[tuple[str, ...]] = ("frame", "timestamp_ms", "track_id")
"""A row without these is damaged and skipped."""
_ZERO_DEFAULT: Final = frozenset({"pass", "blinks"})


@dataclass(frozen=True, slots=True, eq=False)
class FrameTable:
    """The rows of frames.csv (one per face per frame) as columns named by FRAME_COLUMNS."""

    columns: Mapping[str, np.ndarray]
    present: frozenset[str]
    """The columns the file had (the others are filled with their empty value)."""
    video_map: VideoMap
    skipped_rows: int = 0
    """Damaged rows that were left out."""

    def __len__(self) -> int:
        return int(self.columns["frame"].size)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def data_frames(self) -> np.ndarray:
        """The data frames that have rows, in the order they were written."""
        frames = self.columns["frame"]
        _, first = np.unique(frames, return_index=True)
        return frames[np.sort(first)]

    def _select(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[mask] for name, values in self.columns.items()}

    def rows_for_frame(self, data_frame: int) -> dict[str, np.ndarray]:
        """The rows of one data frame (one per face seen in it; empty arrays for none)."""
        return self._select(self.columns["frame"] == data_frame)

    def track_ids(self) -> tuple[int, ...]:
        """The face tracks in the table, in order of their ids."""
        return tuple(int(t) for t in np.unique(self.columns["track_id"]))

    def track(self, track_id: int) -> dict[str, np.ndarray]:
        """One face's series: its rows, in time order."""
        return self._select(self.columns["track_id"] == track_id)

    @property
    def video_map_derived(self) -> bool:
        """True when the table did not store the mapping and it was rebuilt by the writer's rule."""
        return self.video_map.derived

    def video_frame_of(self, data_frame: int) -> int | None:
        """The first video frame that shows data_frame; None when it has no rows or no video frame.

        After a crash the video may end up to a second before the last rows.
        """
        return self.video_map.video_frame_of(data_frame)

    def data_frame_at(self, video_frame: int) -> int | None:
        """The data frame (with rows) that video_frame shows; None where it shows one without rows."""
        return self.video_map.data_frame_at(video_frame)


def _number(text: str | None) -> float:
    if text is None or text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_frame_rows(path: Path) -> tuple[dict[str, np.ndarray], frozenset[str], int]:
    """Columns, the columns present, and the damaged rows skipped, of a frames.csv.

    A missing file is an empty table; one that cannot be read raises OSError.
    """
    values: dict[str, list[float] | list[str]] = {name: [] for name in FRAME_COLUMNS}
    present: frozenset[str] = frozenset()
    skipped = 0
    if path.exists():
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.DictReader(handle)
            present = frozenset(reader.fieldnames or ()) & frozenset(FRAME_COLUMNS)
            for row in reader:
                if None in row or any(math.isnan(_number(row.get(name))) for name in REQUIRED_COLUMNS):
                    skipped += 1  # a line cut short, run together with another, or not numbers
                    continue
                for name in FRAME_COLUMNS:
                    cell = row.get(name)
                    if name in TEXT_COLUMNS:
                        values[name].append(cell or "")  # type: ignore[arg-type]
                    else:
                        values[name].append(_number(cell))  # type: ignore[arg-type]
    if skipped:
        log.info("%s: skipped %d damaged row(s)", path, skipped)
    columns: dict[str, np.ndarray] = {}
    for name, column in values.items():
        if name in TEXT_COLUMNS:
            columns[name] = np.asarray(column, dtype=str)
        elif name in INT_COLUMNS:
            array = np.asarray(column, dtype=float)
            array[np.isnan(array)] = 0 if name in _ZERO_DEFAULT else -1
            columns[name] = array.astype(np.int64)
        else:
            columns[name] = np.asarray(column, dtype=float)
    return columns, present, skipped


def stored_video_map(columns: Mapping[str, np.ndarray]) -> VideoMap:
    """The mapping the writer stored: each data frame's first row with a video frame."""
    frames, first, repeats = columns["frame"], columns["video_frame"], columns["video_repeats"]
    known = first >= 0
    _, at = np.unique(frames[known], return_index=True)
    at = np.sort(at)
    return VideoMap.build(frames[known][at], first[known][at], np.maximum(repeats[known][at], 1), derived=False)
