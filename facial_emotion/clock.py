"""Session time: frame indices and times that never go back, across loops and source changes."""

from __future__ import annotations

import dataclasses
from typing import Final

from facial_emotion.types import Frame

DEFAULT_FRAME_MS: Final[float] = 1000.0 / 30.0
"""The frame interval assumed between two passes when the source gives no rate."""


class SessionTime:
    """Turns each source's own frame positions into session positions that never go back.

    Within a pass (one play of a source from its start to its end or a loop) the session
    index and time are the source's plus a constant offset, so
    ``timestamp_ms - source_timestamp_ms`` is the same for every frame of a pass. A new
    pass (``begin_pass``: another source, a loop) starts one frame interval after the
    last frame, ``pass_index`` one up; a source whose own clock goes back by itself starts
    one too. A live source (camera) keeps its own clock, the one the microphone uses,
    whenever that is ahead of the session already. Used by one thread at a time.
    """

    def __init__(self) -> None:
        self.pass_index = 0
        self._offset_index = 0
        self._offset_ms = 0.0
        self._last: Frame | None = None
        self._frame_ms = DEFAULT_FRAME_MS
        self._pending: tuple[bool, float | None] | None = (False, None)

    def begin_pass(self, *, live: bool, fps: float | None) -> None:
        """The next frame starts a new pass (of a source that is live or not, at fps)."""
        self._pending = (live, fps)

    def stamp(self, frame: Frame) -> Frame:
        """The frame (as its source gave it) with session index, time and pass."""
        last = self._last
        went_back = last is not None and (
            frame.source_timestamp_ms < last.source_timestamp_ms or frame.source_index < last.source_index
        )
        if self._pending is not None or went_back:
            live, fps = self._pending if self._pending is not None else (False, None)
            self._pending = None
            if last is not None:
                self.pass_index += 1
                due_ms = last.timestamp_ms + self._frame_ms
                keep_own_clock = live and frame.source_timestamp_ms >= due_ms
                self._offset_ms = 0.0 if keep_own_clock else due_ms - frame.source_timestamp_ms
                self._offset_index = last.index + 1 - frame.source_index
            if fps:
                self._frame_ms = 1000.0 / fps
        elif last is not None and 0.0 < frame.source_timestamp_ms - last.source_timestamp_ms <= 1000.0:
            self._frame_ms = frame.source_timestamp_ms - last.source_timestamp_ms
        stamped = dataclasses.replace(
            frame,
            index=frame.source_index + self._offset_index,
            timestamp_ms=frame.source_timestamp_ms + self._offset_ms,
            pass_index=self.pass_index,
        )
        self._last = stamped
        return stamped
