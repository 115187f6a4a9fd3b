"""Data frame <-> video frame: where the writers put each frame, and the mapping read back.

A recorded video has a constant rate while its input does not: a gap (dropped frames)
repeats the next image until the video is back in time (``RateSlots``). ``analyze``
repeats an image for each frame its source skipped (``IndexSlots``), so its video
frame n is input frame n. The writers store what these placed in ``frames.csv``
(``video_frame``, ``video_repeats``); for tables written before that, ``derive_*``
replays the same rules over the rows, which is exact except next to frames that left
no row (no face) and came late.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

COMMON_FPS: Final = (10.0, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0)


def estimate_fps(timestamps_ms: Sequence[float], default: float = 30.0) -> float:
    """The frame rate from timestamps (median step), snapped to a common rate within 3%."""
    steps = np.diff(np.asarray(timestamps_ms, dtype=float))
    steps = steps[steps > 0]
    if steps.size == 0:
        return default
    fps = 1000.0 / float(np.median(steps))
    if not 1.0 <= fps <= 240.0:
        return default
    near = min(COMMON_FPS, key=lambda c: abs(c - fps))
    return near if abs(near - fps) / near < 0.03 else round(fps, 3)


class RateSlots:
    """The recorder's rule: a frame goes to the slot its time says; a gap repeats it (at most 2 s).

    The first frame placed is video frame 0. A time that goes back by more than a second
    of video (a new source) starts the clock again at the next free frame.
    """

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.frames = 0
        """Video frames placed so far."""
        self._anchor: tuple[float, int] | None = None

    def _slot(self, t_ms: float) -> int:
        if self._anchor is None:
            self._anchor = (t_ms, self.frames)
        anchor_ms, anchor_frame = self._anchor
        return anchor_frame + round((t_ms - anchor_ms) * self.fps / 1000.0)

    def place(self, t_ms: float) -> tuple[int, int]:
        """The first video frame that shows the frame at t_ms, and how many in a row show it."""
        slot = self._slot(t_ms)
        if slot < self.frames - self.fps:  # the clock went back (new source, loop): restart it
            self._anchor, slot = (t_ms, self.frames), self.frames
        repeats = int(min(max(slot - self.frames + 1, 1), 2 * self.fps))
        first = self.frames
        self.frames += repeats
        return first, repeats

    def start_at(self, t_ms: float) -> None:
        """Put video frame 0 at t_ms (the first frame written, when it left no row)."""
        if self._anchor is None:
            self._anchor = (t_ms, 0)

    def skip_to(self, t_ms: float) -> None:
        """Assume frames that left no row filled the video up to the slot of t_ms."""
        self.frames = max(self.frames, self._slot(t_ms))


class IndexSlots:
    """``analyze``'s rule: input frame n is video frame n; a skipped frame repeats the next image."""

    def __init__(self) -> None:
        self.frames = 0

    def place(self, index: int) -> tuple[int, int]:
        """The first video frame that shows input frame index, and how many in a row show it."""
        repeats = max(1, index + 1 - self.frames)
        first = self.frames
        self.frames += repeats
        return first, repeats

    def skip_to(self, index: int) -> None:
        """Assume frames that left no row filled the video up to index."""
        self.frames = max(self.frames, index)


@dataclass(frozen=True, slots=True, eq=False)
class VideoMap:
    """Which video frames show which data frame, for the data frames that have rows.

    ``derived`` is True when the table did not store the mapping (written before it
    did) and it was rebuilt by the writer's rule.
    """

    data_frames: np.ndarray
    first: np.ndarray
    repeats: np.ndarray
    derived: bool = False
    _index: Mapping[int, int] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, data_frames: Sequence[int], first: Sequence[int], repeats: Sequence[int], *, derived: bool
    ) -> VideoMap:
        """A map from parallel sequences in the order the frames were written."""
        frames = np.asarray(data_frames, dtype=np.int64)
        index: dict[int, int] = {}
        for i, k in enumerate(frames.tolist()):
            index.setdefault(k, i)  # a table of the first release may repeat an index (a loop)
        return cls(frames, np.asarray(first, dtype=np.int64), np.asarray(repeats, dtype=np.int64), derived, index)

    @classmethod
    def empty(cls) -> VideoMap:
        """No video, or no frame known to be in one."""
        return cls.build([], [], [], derived=False)

    def __len__(self) -> int:
        return int(self.data_frames.size)

    def video_frame_of(self, data_frame: int) -> int | None:
        """The first video frame that shows data_frame; None when it has no rows or no video frame."""
        i = self._index.get(int(data_frame))
        return None if i is None else int(self.first[i])

    def data_frame_at(self, video_frame: int) -> int | None:
        """The data frame (with rows) that video_frame shows; None for a frame without rows (no face)."""
        i = int(np.searchsorted(self.first, video_frame, side="right")) - 1
        if i < 0 or video_frame >= self.first[i] + self.repeats[i]:
            return None
        return int(self.data_frames[i])


def derive_rate_map(
    data_frames: Sequence[int], times_ms: Sequence[float], *, fps: float, first_frame_ms: float | None
) -> VideoMap:
    """The recorder's mapping replayed over a table's frames (first row of each, in file order)."""
    slots = RateSlots(fps)
    if first_frame_ms is not None:
        slots.start_at(first_frame_ms)
    return _replay(slots, data_frames, times_ms)


def derive_index_map(data_frames: Sequence[int]) -> VideoMap:
    """``analyze``'s mapping replayed over a table's frames."""
    return _replay(IndexSlots(), data_frames, data_frames)


def _replay(slots: Any, data_frames: Sequence[int], positions: Sequence[float]) -> VideoMap:
    """A writer's slot rule replayed over a table's frames; a gap in the frames skips ahead."""
    first, repeats = [], []
    previous: int | None = None
    for k, position in zip(data_frames, positions, strict=True):
        if previous is None or k != previous + 1:
            slots.skip_to(position)
        at, n = slots.place(position)
        first.append(at)
        repeats.append(n)
        previous = k
    return VideoMap.build(data_frames, first, repeats, derived=True)
