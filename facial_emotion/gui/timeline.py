"""A live chart of the selected face's emotions over the last minute (pyqtgraph)."""

from __future__ import annotations

from collections import deque
from typing import Final

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from facial_emotion.gui.panel import emotion_qcolor
from facial_emotion.types import EMOTIONS, FrameResult

WINDOW_S: Final[float] = 60.0
LOOP_GAP_MS: Final[float] = 40.0


Sample = tuple[float, tuple[float, ...] | None]
"""(time in ms, probabilities); None marks a gap: a frame where the face was not classified."""


class EmotionHistory:
    """Per track, samples over the last WINDOW_S seconds of the source's clock, gaps marked."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_ms = window_s * 1000.0
        self.tracks: dict[int, deque[Sample]] = {}
        self.now_ms: float | None = None
        self._offset_ms = 0.0

    def clear(self) -> None:
        """Forget everything (a new source)."""
        self.tracks.clear()
        self.now_ms = None
        self._offset_ms = 0.0

    def add(self, result: FrameResult) -> None:
        """Record every classified face of a result; a face known before but missing or unclassified here
        gets a gap (the curve breaks rather than draw a line across); a clock that jumps back carries on."""
        t = result.frame.timestamp_ms + self._offset_ms
        if self.now_ms is not None and t < self.now_ms:
            self._offset_ms += self.now_ms - t + LOOP_GAP_MS
            t = result.frame.timestamp_ms + self._offset_ms
        self.now_ms = t
        classified = {face.track_id: face.emotion for face in result.faces if face.emotion is not None}
        for track_id, emotion in classified.items():
            self.tracks.setdefault(track_id, deque()).append((t, emotion.probabilities))
        for track_id, samples in self.tracks.items():
            if track_id not in classified and samples[-1][1] is not None:
                samples.append((t, None))
        oldest = t - self.window_ms
        for track_id in list(self.tracks):
            samples = self.tracks[track_id]
            while samples and (samples[0][0] < oldest or samples[0][1] is None):
                samples.popleft()
            if not samples:
                del self.tracks[track_id]

    def series(self, track_id: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Seconds before now (N,) and probabilities (N, 7) of one track (empty when unknown); NaN rows at gaps."""
        samples = self.tracks.get(track_id) if track_id is not None else None
        if not samples or self.now_ms is None:
            return np.zeros(0), np.zeros((0, len(EMOTIONS)))
        times = np.fromiter((s[0] for s in samples), float, len(samples))
        gap = (np.nan,) * len(EMOTIONS)
        probs = np.array([s[1] if s[1] is not None else gap for s in samples], dtype=float)
        return (times - self.now_ms) / 1000.0, probs


class EmotionTimeline(pg.PlotWidget):
    """Seven curves, one per emotion, for the selected face."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=None)
        self.history = EmotionHistory()
        self.track_id: int | None = None
        item = self.getPlotItem()
        item.setXRange(-WINDOW_S, 0, padding=0)
        item.setYRange(0, 1, padding=0.02)
        item.setLabel("bottom", "seconds")
        item.setLabel("left", "probability")
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        self.setMenuEnabled(False)
        # The legend sits in the title row above the plot, one line of seven: it never covers the data.
        self.legend = pg.LegendItem(colCount=len(EMOTIONS), labelTextSize="8pt", horSpacing=12, verSpacing=-6)
        self.legend.setBrush(pg.mkBrush(0, 0, 0, 0))
        item.layout.removeItem(item.titleLabel)
        item.titleLabel.hide()
        item.layout.addItem(self.legend, 0, 1, alignment=Qt.AlignmentFlag.AlignHCenter)
        self.curves = {
            name: item.plot([], [], pen=pg.mkPen(emotion_qcolor(name), width=2), connect="finite") for name in EMOTIONS
        }
        for name, curve in self.curves.items():
            self.legend.addItem(curve, name)
        self.setMinimumHeight(160)

    def add(self, result: FrameResult) -> None:
        """Record a result (drawing happens in refresh)."""
        self.history.add(result)

    def reset(self) -> None:
        """Forget the history (a new source). Not ``clear``: PlotWidget binds that to PlotItem.clear."""
        self.history.clear()
        self.refresh()

    def select(self, track_id: int | None) -> None:
        """Chart this face from now on."""
        self.track_id = track_id
        self.refresh()

    def refresh(self) -> None:
        """Redraw the curves from the history."""
        seconds, probs = self.history.series(self.track_id)
        for i, name in enumerate(EMOTIONS):
            self.curves[name].setData(seconds, probs[:, i] if len(probs) else np.zeros(0))

    def points(self) -> int:
        """Samples on screen for the selected face (0 when the curves are not in the plot)."""
        curve = self.curves[EMOTIONS[0]]
        if curve not in self.getPlotItem().listDataItems() or curve.xData is None:
            return 0
        return len(curve.xData)
