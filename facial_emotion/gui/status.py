"""The status bar: messages that fit (elided, the full text a tooltip or a click away), rates and models."""

from __future__ import annotations

import html
import time
from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtGui import QMouseEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QMessageBox, QStatusBar, QWidget

from facial_emotion.engine import EngineStats, ModelsChanged
from facial_emotion.registry import SLOTS, get_spec

STALE_S: Final[float] = 1.0
"""A rate whose last frame is older than this reads 0 (the engine's own rate does not decay)."""


class ElidingStatusBar(QStatusBar):
    """A status bar whose messages are elided in the middle to fit (a path keeps its end).

    The full text is the tooltip, ``currentMessage()`` and, on a click, a box whose text can
    be selected and copied.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._shown = ""
        self._until: float | None = None
        self._permanent: list[QWidget] = []
        self.message_box: QMessageBox | None = None
        """The box opened by clicking an elided message (kept so it is not collected)."""

    def addPermanentWidget(self, widget: QWidget, stretch: int = 0) -> None:
        """As QStatusBar's; the widget's width is kept free of messages."""
        self._permanent.append(widget)
        super().addPermanentWidget(widget, stretch)

    def showMessage(self, text: str, timeout: int = 0) -> None:
        """Show text for timeout ms (0: until the next), elided in the middle when it does not fit."""
        self._full = text
        self._until = time.monotonic() + timeout / 1000.0 if timeout > 0 else None
        self._show(timeout)

    def currentMessage(self) -> str:
        """The full text of the message shown now ('' when none)."""
        shown = super().currentMessage()
        return self._full if shown and shown == self._shown else shown

    def shown_text(self) -> str:
        """The message as drawn (elided when it does not fit)."""
        return super().currentMessage()

    def message_width(self) -> int:
        """Pixels the message may take: the bar less its permanent widgets."""
        taken = sum(w.width() + 8 for w in self._permanent if w.isVisible())
        return max(40, self.width() - taken - 24)

    def _show(self, timeout: int) -> None:
        metrics = self.fontMetrics()
        self._shown = metrics.elidedText(self._full, Qt.TextElideMode.ElideMiddle, self.message_width())
        self.setToolTip(self._full if self._shown != self._full else "")
        super().showMessage(self._shown, timeout)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Elide the message shown now again for the new width."""
        super().resizeEvent(event)
        if self._full and super().currentMessage() == self._shown:
            left = 0 if self._until is None else max(1, round((self._until - time.monotonic()) * 1000))
            self._show(left)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """A click on an elided message shows all of it, selectable."""
        super().mouseReleaseEvent(event)
        if self._full and self.shown_text() == self._shown and self._shown != self._full:
            self.show_full_message()

    def show_full_message(self) -> QMessageBox:
        """A box with the full message, its text selectable (a path can be copied)."""
        box = QMessageBox(QMessageBox.Icon.Information, "Message", self._full, parent=self.window())
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setModal(False)
        box.open()
        self.message_box = box
        return box


class StatusReport:
    """Two labels in a status bar: rates, and the models of each slot (failures in red)."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.rates_label = QLabel(bar)
        self.models_label = QLabel(bar)
        bar.addPermanentWidget(self.rates_label)
        bar.addPermanentWidget(self.models_label)
        self.rates = ""
        """What the rates label says; the video's FPS overlay says the same."""

    def show_rates(self, stats: EngineStats, shown_fps: float, *, state: str = "playing", stale: bool = False) -> str:
        """The measured rates (state 'paused', 'ended' or 'still image' replaces them); the text shown."""
        if state == "playing":
            processing = 0.0 if stale else stats.process_fps
            text = f"shown {shown_fps:4.1f} fps · processing {processing:4.1f} fps · dropped {stats.dropped}"
        else:
            text = f"{state} · dropped {stats.dropped}"
        self.rates = text
        self.rates_label.setText(text)
        self.rates_label.setToolTip(
            "shown: frames painted per second; processing: frames analysed per second; "
            f"capture: {stats.capture_fps:.1f} fps read from the source"
        )
        return text

    def show_models(self, event: ModelsChanged) -> None:
        """The model of each slot; a model that failed to load is named in red and its error shown."""
        parts, tips = [], []
        for slot in SLOTS:
            key = getattr(event.settings, slot)
            if slot in event.errors:
                parts.append(f"<span style='color:#d04040'>{slot} failed</span>")
                tips.append(f"{slot}: {event.errors[slot]}")
            else:
                parts.append(f"{slot} {html.escape(key or 'off')}")
                tips.append(f"{slot}: {get_spec(slot, key).display_name if key else 'off'}")
        self.models_label.setText("models: " + ", ".join(parts))
        self.models_label.setToolTip("\n".join(tips))
        if event.errors:
            errors = "; ".join(f"{slot}: {error}" for slot, error in event.errors.items())
            self.bar.showMessage(f"Model not loaded: {errors}", 15000)
