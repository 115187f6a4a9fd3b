"""Annotators: each draws one overlay with ``annotate(scene, result) -> scene``.

Style is set in ``__init__``; the scene is drawn on in place and returned. Which
overlays exist, with their menu labels and shortcuts, is the one table ``OVERLAYS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import cv2
import numpy as np

from facial_emotion.types import EMOTIONS, Face, FrameResult

BGR = tuple[int, int, int]

EMOTION_COLORS: Final[dict[str, BGR]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (0, 200, 255),
    "sad": (200, 110, 30),
    "surprise": (220, 220, 0),
    "neutral": (180, 180, 180),
}
BOX_COLOR: Final[BGR] = (80, 220, 80)
TEXT_COLOR: Final[BGR] = (255, 255, 255)
FONT: Final = cv2.FONT_HERSHEY_SIMPLEX


class Annotator(Protocol):
    """Draws one kind of overlay onto a BGR scene and returns it."""

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw onto scene (in place) and return it."""
        ...


def _label(scene: np.ndarray, text: str, x: int, y: int, color: BGR, scale: float = 0.5) -> None:
    """Text on a filled background so it reads on any picture."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    y = max(y, h + base)
    cv2.rectangle(scene, (x, y - h - base), (x + w + 4, y + base), color, cv2.FILLED)
    cv2.putText(scene, text, (x + 2, y), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)


class BoxAnnotator:
    """Face boxes with their track ids."""

    def __init__(self, color: BGR = BOX_COLOR, thickness: int = 2) -> None:
        self.color = color
        self.thickness = thickness

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw each face's box and '#id'."""
        for face in result.faces:
            b = face.box
            cv2.rectangle(scene, (b.left, b.top), (b.right - 1, b.bottom - 1), self.color, self.thickness)
            _label(scene, f"#{face.track_id}", b.left, b.bottom + 16, self.color, 0.45)
        return scene


class LandmarkAnnotator:
    """Landmark points."""

    def __init__(self, color: BGR = (0, 255, 255), radius: int = 1) -> None:
        self.color = color
        self.radius = radius

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw each face's landmarks as dots."""
        for face in result.faces:
            if face.landmarks is None:
                continue
            for x, y in face.landmarks.astype(int):
                cv2.circle(scene, (int(x), int(y)), self.radius, self.color, cv2.FILLED)
        return scene


class EmotionLabelAnnotator:
    """The top emotion and its probability above each box, coloured by emotion."""

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw 'happy 87%' above each classified face."""
        for face in result.faces:
            if face.emotion is None:
                continue
            top = face.emotion.top
            text = f"{top} {face.emotion.top_probability:.0%}"
            _label(scene, text, face.box.left, face.box.top - 4, EMOTION_COLORS[top], 0.6)
        return scene


class ProbabilityBarAnnotator:
    """Seven probability bars beside each box."""

    def __init__(self, width_px: int = 90, bar_height_px: int = 11) -> None:
        self.width_px = width_px
        self.bar_height_px = bar_height_px

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw a bar per emotion to the right of each box (left if no room)."""
        height, width = scene.shape[:2]
        for face in result.faces:
            if face.emotion is None:
                continue
            x = face.box.right + 6
            if x + self.width_px + 50 > width:
                x = max(0, face.box.left - self.width_px - 56)
            for i, (name, p) in enumerate(zip(EMOTIONS, face.emotion.probabilities, strict=True)):
                y = face.box.top + i * (self.bar_height_px + 3)
                if y + self.bar_height_px >= height:
                    break
                cv2.rectangle(scene, (x, y), (x + self.width_px, y + self.bar_height_px), (50, 50, 50), cv2.FILLED)
                fill = int(round(p * self.width_px))
                if fill > 0:
                    cv2.rectangle(scene, (x, y), (x + fill, y + self.bar_height_px), EMOTION_COLORS[name], cv2.FILLED)
                cv2.putText(
                    scene,
                    name[:3],
                    (x + self.width_px + 4, y + self.bar_height_px - 1),
                    FONT,
                    0.38,
                    TEXT_COLOR,
                    1,
                    cv2.LINE_AA,
                )
        return scene


class BlinkAnnotator:
    """Blink count and blinks per minute under each box."""

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw 'blinks 3 (12/min)' under each face with an EAR."""
        for face in result.faces:
            if face.ear is None:
                continue
            text = f"blinks {face.blinks} ({face.blinks_per_min:.0f}/min)"
            _label(scene, text, face.box.left + 40, face.box.bottom + 16, (255, 200, 120), 0.45)
        return scene


class MoodAnnotator:
    """The fused mood (face with speech) as a signed bar under each box."""

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw a -1..1 bar, green right for positive, red left for negative."""
        for face in result.faces:
            if face.mood is None:
                continue
            b = face.box
            y = b.bottom + 24
            mid = (b.left + b.right) // 2
            half = max(20, b.width // 2)
            cv2.rectangle(scene, (mid - half, y), (mid + half, y + 8), (60, 60, 60), cv2.FILLED)
            end = mid + int(round(face.mood * half))
            color = (60, 200, 60) if face.mood >= 0 else (60, 60, 220)
            cv2.rectangle(scene, (min(mid, end), y), (max(mid, end), y + 8), color, cv2.FILLED)
            cv2.line(scene, (mid, y - 2), (mid, y + 10), TEXT_COLOR, 1)
        return scene


class FpsAnnotator:
    """Processing frames per second in the top-left corner."""

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw 'FPS 42.0'."""
        _label(scene, f"FPS {result.fps:.1f}", 4, 18, (230, 230, 230), 0.5)
        return scene


@dataclass(frozen=True, slots=True)
class OverlaySpec:
    """One overlay: settings key, menu label, keyboard shortcut, and its annotator."""

    key: str
    label: str
    shortcut: str
    factory: Callable[[], Annotator]


OVERLAYS: Final[tuple[OverlaySpec, ...]] = (
    OverlaySpec("boxes", "Boxes and ids", "B", BoxAnnotator),
    OverlaySpec("landmarks", "Landmarks", "L", LandmarkAnnotator),
    OverlaySpec("emotion", "Emotion label", "E", EmotionLabelAnnotator),
    OverlaySpec("bars", "Probability bars", "P", ProbabilityBarAnnotator),
    OverlaySpec("blinks", "Blink counter", "K", BlinkAnnotator),
    OverlaySpec("mood", "Fused mood", "M", MoodAnnotator),
    OverlaySpec("fps", "FPS", "F", FpsAnnotator),
)
"""Drawing order is table order. The class activation map overlay is added by the app."""


def build_annotators(keys: tuple[str, ...] | frozenset[str]) -> list[Annotator]:
    """Annotators for the enabled overlay keys, in table order."""
    wanted = set(keys)
    return [spec.factory() for spec in OVERLAYS if spec.key in wanted]


def annotate_all(image: np.ndarray, result: FrameResult, annotators: list[Annotator]) -> np.ndarray:
    """A copy of image with every annotator applied."""
    scene = image.copy()
    for annotator in annotators:
        scene = annotator.annotate(scene, result)
    return scene


def face_color(face: Face) -> BGR:
    """The colour of a face's top emotion (box colour when unclassified)."""
    return EMOTION_COLORS[face.emotion.top] if face.emotion else BOX_COLOR
