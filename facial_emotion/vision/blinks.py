"""Blinks from the eye aspect ratio (EAR) of the 68 landmarks, per track."""

from __future__ import annotations

from collections import deque
from typing import Final

import numpy as np

from facial_emotion.vision.landmarks import LEFT_EYE_68, RIGHT_EYE_68

RATE_WINDOW_MS: Final[float] = 60_000.0


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """EAR of one eye's six landmarks (Soukupova and Cech 2016): heights over width."""
    p1, p2, p3, p4, p5, p6 = eye.astype(np.float64)
    width = np.linalg.norm(p1 - p4)
    if width < 1e-6:
        return 0.0
    return float((np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2.0 * width))


def eye_aspect_ratios(landmarks: np.ndarray) -> tuple[float, float]:
    """(image-left eye, image-right eye) EAR from 68 landmarks."""
    return eye_aspect_ratio(landmarks[RIGHT_EYE_68]), eye_aspect_ratio(landmarks[LEFT_EYE_68])


class BlinkCounter:
    """Counts blinks of one face from per-frame EARs.

    The open-eye level is a per-face baseline that adapts: the ``baseline_percentile``
    of the mean EAR over the last ``baseline_frames`` open-eye frames, so glasses,
    narrow eyes and a head that turns get their own level. Eyes count as closed when
    both EARs fall below ``close_ratio`` x baseline; a blink is counted when they stay
    closed for at least ``min_closed_frames`` frames and the mean EAR comes back above
    ``open_ratio`` x baseline within ``max_closed_ms`` (longer closures are not blinks).
    Nothing is counted until ``warmup_frames`` open frames have set a baseline, nor
    while the baseline is under ``min_baseline`` (eyes barely open or looking down, where
    landmark noise alone would look like blinks).
    """

    def __init__(
        self,
        *,
        close_ratio: float = 0.65,
        open_ratio: float = 0.75,
        min_closed_frames: int = 1,
        max_closed_ms: float = 700.0,
        baseline_frames: int = 60,
        baseline_percentile: float = 80.0,
        warmup_frames: int = 10,
        min_baseline: float = 0.18,
    ) -> None:
        self.close_ratio = close_ratio
        self.open_ratio = open_ratio
        self.min_closed_frames = min_closed_frames
        self.max_closed_ms = max_closed_ms
        self.baseline_percentile = baseline_percentile
        self.warmup_frames = warmup_frames
        self.min_baseline = min_baseline
        self.count = 0
        self._history: deque[float] = deque(maxlen=baseline_frames)
        self._baseline: float | None = None
        self._closed_frames = 0
        self._closing_since_ms: float | None = None
        self._first_ms: float | None = None
        self._last_ms: float | None = None
        self._blink_times: deque[float] = deque()

    @property
    def baseline(self) -> float | None:
        """The current open-eye EAR level, or None while warming up."""
        return self._baseline

    def update(self, left_ear: float, right_ear: float, t_ms: float) -> bool:
        """Feed one frame's EARs; True when this frame completes a blink."""
        if self._first_ms is None or (self._last_ms is not None and t_ms < self._last_ms):
            # first frame, or the clock went back (a looped video): the rate starts again
            self._first_ms = t_ms
            self._blink_times.clear()
        self._last_ms = t_ms
        mean = (left_ear + right_ear) / 2.0
        blinked = False
        if self._baseline is None:
            self._history.append(mean)
            if len(self._history) >= self.warmup_frames:
                self._baseline = float(np.percentile(self._history, self.baseline_percentile))
            return False
        closed = max(left_ear, right_ear) < self.close_ratio * self._baseline
        if closed:
            if self._closing_since_ms is None:
                self._closing_since_ms = t_ms
            self._closed_frames += 1
        elif self._closing_since_ms is not None:
            if mean > self.open_ratio * self._baseline:
                duration = t_ms - self._closing_since_ms
                blinked = (
                    self._closed_frames >= self.min_closed_frames
                    and duration <= self.max_closed_ms
                    and self._baseline >= self.min_baseline
                )
                self._closed_frames = 0
                self._closing_since_ms = None
            elif t_ms - self._closing_since_ms > self.max_closed_ms:
                # A long, slow closure (looking down, dozing): let the baseline follow it.
                self._closed_frames = 0
                self._closing_since_ms = None
        if self._closing_since_ms is None:
            self._history.append(mean)
            self._baseline = float(np.percentile(self._history, self.baseline_percentile))
        elif closed and t_ms - self._closing_since_ms > self.max_closed_ms:
            self._history.append(mean)
            self._baseline = float(np.percentile(self._history, self.baseline_percentile))
        if blinked:
            self.count += 1
            self._blink_times.append(t_ms)
        while self._blink_times and t_ms - self._blink_times[0] > RATE_WINDOW_MS:
            self._blink_times.popleft()
        return blinked

    def samples(self) -> int:
        """Values kept (baseline history and recent blink times); bounded whatever the session length."""
        return len(self._history) + len(self._blink_times)

    def per_minute(self, t_ms: float) -> float:
        """Blinks per minute over the last minute (or since the face appeared, if sooner)."""
        if self._first_ms is None:
            return 0.0
        span_ms = min(RATE_WINDOW_MS, max(t_ms - self._first_ms, 1.0))
        if span_ms < 5_000.0:
            return 0.0  # too short to call a rate
        recent = sum(1 for t in self._blink_times if t_ms - t <= RATE_WINDOW_MS)
        return recent * 60_000.0 / span_ms
