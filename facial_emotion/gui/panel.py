"""The side panel: per tracked face, its seven emotion probabilities, blinks and mood."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from facial_emotion.annotate import EMOTION_COLORS
from facial_emotion.types import EMOTIONS, Face

MAX_CARDS: Final[int] = 6
"""Faces beyond this many are not given a card (the video still shows them)."""
NO_FACE: Final[str] = "No face in view."
DETECTOR_OFF: Final[str] = "Face detector is off (Models ▸ Face detector)."


def emotion_qcolor(name: str) -> QColor:
    """The overlay colour of an emotion (BGR in the annotator) as a QColor."""
    b, g, r = EMOTION_COLORS[name]
    return QColor(r, g, b)


class EmotionBars(QWidget):
    """Seven horizontal bars with names and percentages, painted in one go."""

    ROW_PX: Final[int] = 18

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.probabilities: tuple[float, ...] | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.ROW_PX * len(EMOTIONS))

    def sizeHint(self) -> QSize:
        """Wide enough for a name, a bar and a percentage."""
        return QSize(220, self.ROW_PX * len(EMOTIONS))

    def set_probabilities(self, probabilities: tuple[float, ...] | None) -> None:
        """New values (None: the emotion model is off)."""
        if probabilities != self.probabilities:
            self.probabilities = probabilities
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Name, bar, percentage per emotion."""
        painter = QPainter(self)
        text_color = self.palette().windowText().color()
        name_w, pct_w = 62, 40
        bar_w = max(10, self.width() - name_w - pct_w - 8)
        for i, name in enumerate(EMOTIONS):
            y = i * self.ROW_PX
            painter.setPen(text_color)
            painter.drawText(0, y, name_w, self.ROW_PX, Qt.AlignmentFlag.AlignVCenter, name)
            painter.fillRect(name_w, y + 3, bar_w, self.ROW_PX - 6, QColor(70, 70, 70, 90))
            if self.probabilities is not None:
                p = float(self.probabilities[i])
                painter.fillRect(name_w, y + 3, round(p * bar_w), self.ROW_PX - 6, emotion_qcolor(name))
                painter.setPen(text_color)
                painter.drawText(
                    name_w + bar_w + 4,
                    y,
                    pct_w,
                    self.ROW_PX,
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                    f"{p:.0%}",
                )
        painter.end()


class FaceCard(QFrame):
    """One face: title, bars, blinks, mood. Clicking it selects the face."""

    clicked = Signal(int)

    def __init__(self, track_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.track_id = track_id
        self._selected = False
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.title = QLabel(self)
        self.bars = EmotionBars(self)
        self.blinks = QLabel(self)
        self.mood = QLabel(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        for widget in (self.title, self.bars, self.blinks, self.mood):
            layout.addWidget(widget)

    def show_face(self, face: Face, *, selected: bool, still: bool = False) -> None:
        """Fill the card from a face (blinks mean nothing on a still image: hidden)."""
        emotion = face.emotion
        top = f" — {emotion.top} {emotion.top_probability:.0%}" if emotion else " — emotion off"
        self.title.setText(f"<b>Face #{face.track_id}</b>{top}")
        self.bars.set_probabilities(emotion.probabilities if emotion else None)
        self.blinks.setVisible(not still)
        if face.ear is None:
            self.blinks.setText("Blinks: needs the 68-point landmarks")
        else:
            self.blinks.setText(f"Blinks: {face.blinks}  ({face.blinks_per_min:.1f}/min)")
        self.mood.setVisible(face.mood is not None)
        if face.mood is not None:
            self.mood.setText(f"Mood: {face.mood:+.2f}")
        if selected != self._selected:  # a style sheet change restyles the card: only when needed
            self._selected = selected
            self.setStyleSheet("FaceCard { border: 2px solid #3d8ee8; }" if selected else "")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Select this face."""
        self.clicked.emit(self.track_id)
        super().mousePressEvent(event)


class FacePanel(QScrollArea):
    """A card per tracked face; tells which face is selected for the timeline."""

    face_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setMinimumWidth(250)
        inner = QWidget(self)
        self._layout = QVBoxLayout(inner)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._empty = QLabel(NO_FACE, inner)
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._layout.addWidget(self._empty)
        self._layout.addStretch(1)
        self.setWidget(inner)
        self.cards: dict[int, FaceCard] = {}
        self.selected: int | None = None

    def empty_text(self) -> str:
        """What the panel says when it shows no face ('' while it shows faces)."""
        return self._empty.text() if not self.cards else ""

    def set_detector_on(self, on: bool) -> None:
        """With the detector off there can be no face: say so rather than 'No face in view'."""
        self._empty.setText(NO_FACE if on else DETECTOR_OFF)

    def clear(self) -> None:
        """Forget every card and the selection (a new source: its faces are new faces)."""
        for card in self.cards.values():
            card.deleteLater()
        self.cards.clear()
        self.selected = None
        self._empty.setVisible(True)

    def show_faces(self, faces: tuple[Face, ...], *, still: bool = False) -> None:
        """Update the cards for the faces of the frame shown now (still: an image, no blinks)."""
        shown = faces[:MAX_CARDS]
        ids = [face.track_id for face in shown]
        for track_id in list(self.cards):
            if track_id not in ids:
                self.cards.pop(track_id).deleteLater()
        if self.selected not in ids and ids:
            self._select(ids[0])
        for position, face in enumerate(shown):
            card = self.cards.get(face.track_id)
            if card is None:
                card = FaceCard(face.track_id, self.widget())
                card.clicked.connect(self._on_clicked)
                self.cards[face.track_id] = card
                self._layout.insertWidget(position, card)
            card.show_face(face, selected=face.track_id == self.selected, still=still)
        self._empty.setVisible(not shown)

    def _select(self, track_id: int) -> None:
        if track_id != self.selected:
            self.selected = track_id
            self.face_selected.emit(track_id)

    def _on_clicked(self, track_id: int) -> None:
        self._select(track_id)
