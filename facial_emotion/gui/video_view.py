"""The central view: paints the newest annotated frame, or a message with buttons when there is none."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """A QImage sharing a contiguous BGR (or gray) uint8 array; keep the array alive while it is used."""
    height, width = image.shape[:2]
    if image.ndim == 2:
        return QImage(image.data, width, height, image.strides[0], QImage.Format.Format_Grayscale8)
    return QImage(image.data, width, height, image.strides[0], QImage.Format.Format_BGR888)


class VideoView(QWidget):
    """Paints one frame scaled to fit, keeping its aspect ratio; shows a message when told to."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._array: np.ndarray | None = None
        self._image: QImage | None = None
        self.frames_shown = 0
        """Frames handed to the view."""
        self.frames_painted = 0
        """Paint events that drew a frame."""
        self._shown_times: deque[float] = deque(maxlen=60)
        self._rates = ""

        self._message = QLabel(self)
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)
        self._message.setStyleSheet("color: #e0e0e0; font-size: 15px;")
        self._layout = QVBoxLayout(self)
        self._layout.addStretch(1)
        self._layout.addWidget(self._message)
        self._button_row = QWidget(self)
        self._layout.addWidget(self._button_row)
        self._layout.addStretch(1)
        self._button_widgets: list[QPushButton] = []

    def sizeHint(self) -> QSize:
        """640x360, the size of a typical webcam frame."""
        return QSize(640, 360)

    # -- frames -------------------------------------------------------------------------

    def show_frame(self, image: np.ndarray) -> None:
        """Show a BGR frame (the message, if any, stays over it)."""
        self._array = np.ascontiguousarray(image)
        self._image = bgr_to_qimage(self._array)
        self.frames_shown += 1
        self._shown_times.append(time.monotonic())
        self.update()

    def frame_array(self) -> np.ndarray | None:
        """The frame shown now (BGR), or None."""
        return self._array

    def shown_fps(self) -> float:
        """Frames shown per second over the last 60 frames."""
        times = self._shown_times
        if len(times) < 2 or times[-1] <= times[0] or time.monotonic() - times[-1] > 1.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def clear_frame(self) -> None:
        """Forget the frame (the view shows only the message)."""
        self._array = None
        self._image = None
        self.update()

    def set_rates_text(self, text: str) -> None:
        """The rates drawn over the picture's top-left corner ('' for none: the FPS overlay is off)."""
        if text != self._rates:
            self._rates = text
            self.update()

    def rates_text(self) -> str:
        """The rates drawn over the picture now ('' when none)."""
        return self._rates if self._image is not None else ""

    # -- message ------------------------------------------------------------------------

    def show_message(self, text: str, buttons: tuple[tuple[str, Callable[[], object]], ...] = ()) -> None:
        """Show a message, with (label, callback) buttons under it; an empty text hides it."""
        row = QWidget(self)
        line = QHBoxLayout(row)
        line.addStretch(1)
        self._button_widgets = []
        for label, callback in buttons:
            button = QPushButton(label, row)
            button.clicked.connect(callback)
            line.addWidget(button)
            self._button_widgets.append(button)
        line.addStretch(1)
        self._layout.replaceWidget(self._button_row, row)
        self._button_row.deleteLater()
        self._button_row = row
        self._message.setText(text)
        self._message.setVisible(bool(text))
        row.setVisible(bool(text) and bool(buttons))
        self.update()

    def hide_message(self) -> None:
        """Remove the message and its buttons."""
        self.show_message("")

    def message(self) -> str:
        """The message shown now ('' when none)."""
        return self._message.text() if self._message.isVisible() else ""

    def message_buttons(self) -> list[QPushButton]:
        """The buttons under the message."""
        return list(self._button_widgets)

    # -- painting -----------------------------------------------------------------------

    def target_rect(self) -> QRect:
        """Where the frame is drawn: centred, scaled to fit."""
        if self._image is None:
            return QRect()
        size = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) // 2
        y = (self.height() - size.height()) // 2
        return QRect(x, y, size.width(), size.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        """Black background, then the frame scaled to fit."""
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(20, 20, 20))
        if self._image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            target = self.target_rect()
            painter.drawImage(target, self._image)
            if self._rates:
                metrics = painter.fontMetrics()
                box = metrics.boundingRect(self._rates).adjusted(-4, -2, 4, 2)
                box.moveTopLeft(target.topLeft() + QPoint(4, 4))
                painter.fillRect(box, QColor(0, 0, 0, 170))
                painter.setPen(QColor(235, 235, 235))
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self._rates)
            if self._message.isVisible():
                painter.fillRect(self.rect(), QColor(0, 0, 0, 150))
            self.frames_painted += 1
        painter.end()
