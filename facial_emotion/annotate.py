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


# -- where each face's labels go -------------------------------------------------------------

Rect = tuple[int, int, int, int]
"""left, top, right, bottom in pixels; right and bottom exclusive."""

EMOTION_SCALE: Final[float] = 0.6
SMALL_SCALE: Final[float] = 0.45
BAR_WIDTH_PX: Final[int] = 90
BAR_HEIGHT_PX: Final[int] = 11
BAR_GAP_PX: Final[int] = 3
BAR_NAME_SCALE: Final[float] = 0.38
MOOD_HEIGHT_PX: Final[int] = 13
_GAP: Final[int] = 2


def _text_size(template: str, scale: float) -> tuple[int, int]:
    """The size of a label's filled background, as ``_label`` draws it."""
    (w, h), base = cv2.getTextSize(template, FONT, scale, 1)
    return w + 4, h + 2 * base


def bars_size(width_px: int = BAR_WIDTH_PX, bar_height_px: int = BAR_HEIGHT_PX) -> tuple[int, int]:
    """Width and height of one face's block of seven bars with their names."""
    name_w = cv2.getTextSize("sur", FONT, BAR_NAME_SCALE, 1)[0][0]
    return width_px + 4 + name_w + 2, len(EMOTIONS) * (bar_height_px + BAR_GAP_PX) - BAR_GAP_PX + 2


@dataclass(frozen=True, slots=True)
class FaceLabels:
    """Where one face's labels are drawn: none of them covers another face or another label.

    A label that fits nowhere, not even inside its own box, is None and not drawn (the Faces
    panel shows everything); so are bars that fit nowhere beside the face.
    """

    emotion: Rect | None
    track_id: Rect | None
    blinks: Rect | None
    mood: Rect | None
    bars: Rect | None


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place(
    size: tuple[int, int],
    candidates: list[tuple[int, int]],
    blocked: list[Rect],
    frame: tuple[int, int],
) -> Rect | None:
    """The first candidate top-left (moved into the frame sideways) whose rect meets nothing blocked."""
    w, h = size
    width, height = frame
    for x, y in candidates:
        x = min(max(0, x), max(0, width - w))
        rect = (x, y, x + w, y + h)
        if y < 0 or y + h > height:
            continue
        if not any(_overlaps(rect, other) for other in blocked):
            return rect
    return None


def _inside(size: tuple[int, int], box: Rect, *, bottom: bool, frame: tuple[int, int]) -> Rect:
    """The last resort: a rect inside the face's own box (it covers only that face)."""
    w, h = size
    x = min(max(0, box[0] + _GAP), max(0, frame[0] - w))
    y = box[3] - h - _GAP if bottom else box[1] + _GAP
    y = min(max(0, y), max(0, frame[1] - h))
    return (x, y, x + w, y + h)


def layout_labels(
    faces: tuple[Face, ...] | list[Face], width: int, height: int, *, bars: tuple[int, int] | None = None
) -> tuple[FaceLabels, ...]:
    """Rects for every face's labels (aligned with faces), so that no label or bar block covers another face.

    Only what a face has takes room (an emotion label and bars when classified, blinks with an
    eye measure, mood when fused). Sizes come from the widest text each label can show, so
    the layout holds still while the numbers change. Emotion and id labels are placed first
    (all faces), then the bar blocks (one with no free place is left out), then blinks and
    mood (inside the box when nowhere else).
    """
    frame = (width, height)
    boxes: list[Rect] = [(f.box.left, f.box.top, f.box.right, f.box.bottom) for f in faces]
    placed: list[Rect] = []
    emotion_size = _text_size("surprise 100%", EMOTION_SCALE)
    id_size = _text_size("#9999", SMALL_SCALE)
    blinks_size = _text_size("blinks 999 (99/min)", SMALL_SCALE)
    bar_block = bars or bars_size()

    def blocked_for(i: int, *, own: bool = True) -> list[Rect]:
        others = [box for j, box in enumerate(boxes) if j != i or own]
        return others + placed

    hidden: set[Rect] = set()

    def put(
        i: int, size: tuple[int, int], candidates: list[tuple[int, int]], *, bottom: bool, want: bool = True
    ) -> Rect:
        """A free rect for the label; else one inside its own box; else the inside one, marked hidden."""
        if not want:  # the face has nothing to show there: take no room (the rect only anchors the next)
            x, y = candidates[0]
            rect = (x, y, x + size[0], y + size[1]) if y >= 0 else _inside(size, boxes[i], bottom=bottom, frame=frame)
            hidden.add(rect)
            return rect
        rect = _place(size, candidates, blocked_for(i), frame)
        if rect is None:  # nowhere outside the box: inside it, if it fits there and covers no other label
            inside = _inside(size, boxes[i], bottom=bottom, frame=frame)
            box = boxes[i]
            fits = box[0] <= inside[0] and inside[2] <= box[2] and box[1] <= inside[1] and inside[3] <= box[3]
            rect = _place(size, [(inside[0], inside[1])], blocked_for(i, own=False), frame) if fits else None
            if rect is None:
                hidden.add(inside)
                return inside  # kept for the geometry of the next labels, never drawn
        placed.append(rect)
        return rect

    def shown(rect: Rect) -> Rect | None:
        return None if rect in hidden else rect

    emotion: list[Rect] = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        w, h = emotion_size
        candidates = [
            (x0, y0 - h - _GAP),
            (x1 - w, y0 - h - _GAP),
            (x0 - w - _GAP, y0),
            (x1 + _GAP, y0),
            (x0, y1 + _GAP),
        ]
        emotion.append(put(i, emotion_size, candidates, bottom=False, want=faces[i].emotion is not None))
    ids: list[Rect] = []
    for i, (x0, _, x1, y1) in enumerate(boxes):
        w, h = id_size
        candidates = [(x0, y1 + _GAP), (x1 - w, y1 + _GAP), (x0 - w - _GAP, y1 - h), (x1 + _GAP, y1 - h)]
        candidates.append((x0, emotion[i][1] - h - _GAP))
        ids.append(put(i, id_size, candidates, bottom=True))
    bar_rects: list[Rect | None] = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        w, h = bar_block
        if faces[i].emotion is None:
            bar_rects.append(None)
            continue
        mine = [emotion[i], ids[i], boxes[i]]
        below, above = max(m[3] for m in mine), min(m[1] for m in mine)
        candidates = [(x1 + 6, y0), (x0 - w - 6, y0), (x1 + 6, y1 - h), (x0 - w - 6, y1 - h), (x0, below + _GAP)]
        candidates.append((x0, above - h - _GAP))
        rect = _place(bar_block, candidates, blocked_for(i), frame)
        if rect is not None:
            placed.append(rect)
        bar_rects.append(rect)
    blinks: list[Rect] = []
    for i, (x0, _, x1, y1) in enumerate(boxes):
        w, h = blinks_size
        row = ids[i]
        candidates = [(row[2] + _GAP, row[1]), (x0, row[3] + _GAP), (row[0] - w - _GAP, row[1])]
        candidates += [(x1 + _GAP, y1 - h), (x0 - w - _GAP, y1 - h), (x0, emotion[i][1] - h - _GAP)]
        blinks.append(put(i, blinks_size, candidates, bottom=True, want=faces[i].ear is not None))
    moods: list[Rect] = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        size = (max(40, x1 - x0), MOOD_HEIGHT_PX)
        below = max(ids[i][3], blinks[i][3]) if ids[i][1] >= y1 else y1
        above = min(emotion[i][1], ids[i][1], blinks[i][1], y0)
        candidates = [(x0 + (x1 - x0 - size[0]) // 2, below + _GAP), (x0, above - size[1] - _GAP)]
        moods.append(put(i, size, candidates, bottom=True, want=faces[i].mood is not None))
    return tuple(
        FaceLabels(shown(emotion[i]), shown(ids[i]), shown(blinks[i]), shown(moods[i]), bar_rects[i])
        for i in range(len(boxes))
    )


def _label_in(scene: np.ndarray, text: str, rect: Rect, color: BGR, scale: float) -> None:
    """A label whose background starts at rect's top-left."""
    (_, h), base = cv2.getTextSize(text, FONT, scale, 1)
    _label(scene, text, rect[0], rect[1] + h + base, color, scale)


class BoxAnnotator:
    """Face boxes with their track ids."""

    def __init__(self, color: BGR = BOX_COLOR, thickness: int = 2) -> None:
        self.color = color
        self.thickness = thickness

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw each face's box and '#id'."""
        layout = layout_labels(result.faces, scene.shape[1], scene.shape[0])
        for face, where in zip(result.faces, layout, strict=True):
            b = face.box
            cv2.rectangle(scene, (b.left, b.top), (b.right - 1, b.bottom - 1), self.color, self.thickness)
            if where.track_id is not None:
                _label_in(scene, f"#{face.track_id}", where.track_id, self.color, SMALL_SCALE)
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
        """Draw 'happy 87%' above each classified face (or where it covers no other face)."""
        layout = layout_labels(result.faces, scene.shape[1], scene.shape[0])
        for face, where in zip(result.faces, layout, strict=True):
            if face.emotion is None or where.emotion is None:
                continue
            top = face.emotion.top
            text = f"{top} {face.emotion.top_probability:.0%}"
            _label_in(scene, text, where.emotion, EMOTION_COLORS[top], EMOTION_SCALE)
        return scene


class ProbabilityBarAnnotator:
    """Seven probability bars beside each box, where they cover no other face (else only in the panel)."""

    def __init__(self, width_px: int = BAR_WIDTH_PX, bar_height_px: int = BAR_HEIGHT_PX) -> None:
        self.width_px = width_px
        self.bar_height_px = bar_height_px

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw a bar per emotion beside each box, in the place ``layout_labels`` found free."""
        height, width = scene.shape[:2]
        size = bars_size(self.width_px, self.bar_height_px)
        layout = layout_labels(result.faces, width, height, bars=size)
        for face, where in zip(result.faces, layout, strict=True):
            if face.emotion is None or where.bars is None:
                continue
            x, top = where.bars[0], where.bars[1] + 1
            for i, (name, p) in enumerate(zip(EMOTIONS, face.emotion.probabilities, strict=True)):
                y = top + i * (self.bar_height_px + BAR_GAP_PX)
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
                    BAR_NAME_SCALE,
                    TEXT_COLOR,
                    1,
                    cv2.LINE_AA,
                )
        return scene


class BlinkAnnotator:
    """Blink count and blinks per minute under each box."""

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw 'blinks 3 (12/min)' under each face with an EAR."""
        layout = layout_labels(result.faces, scene.shape[1], scene.shape[0])
        for face, where in zip(result.faces, layout, strict=True):
            if face.ear is None or where.blinks is None:
                continue
            text = f"blinks {face.blinks} ({face.blinks_per_min:.0f}/min)"
            _label_in(scene, text, where.blinks, (255, 200, 120), SMALL_SCALE)
        return scene


class MoodAnnotator:
    """The fused mood (face with speech) as a signed bar under each box."""

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Draw a -1..1 bar, green right for positive, red left for negative."""
        layout = layout_labels(result.faces, scene.shape[1], scene.shape[0])
        for face, where in zip(result.faces, layout, strict=True):
            if face.mood is None or where.mood is None:
                continue
            left, top, right, _ = where.mood
            y = top + 2
            mid = (left + right) // 2
            half = (right - left) // 2 - 1
            cv2.rectangle(scene, (mid - half, y), (mid + half, y + 8), (60, 60, 60), cv2.FILLED)
            end = mid + int(round(face.mood * half))
            color = (60, 200, 60) if face.mood >= 0 else (60, 60, 220)
            cv2.rectangle(scene, (min(mid, end), y), (max(mid, end), y + 8), color, cv2.FILLED)
            cv2.line(scene, (mid, y - 2), (mid, y + 10), TEXT_COLOR, 1)
        return scene


def overlay_heatmap(image_bgr: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a JET-coloured heat map (resized to the image) over a BGR (or gray) image."""
    if image_bgr.ndim == 2:
        image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    h, w = image_bgr.shape[:2]
    heat_u8 = np.clip(cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC), 0, 1) * 255
    colour = cv2.applyColorMap(heat_u8.astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(image_bgr, 1.0 - alpha, colour, alpha, 0.0)


class HeatmapAnnotator:
    """Each face's class activation map (``Face.heatmap``) blended into its box."""

    def __init__(self, alpha: float = 0.4) -> None:
        self.alpha = alpha

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Blend the heat map of every face that has one into its box."""
        height, width = scene.shape[:2]
        for face in result.faces:
            box = face.box.clipped(width, height)
            if face.heatmap is None or box.width < 2 or box.height < 2:
                continue
            region = scene[box.top : box.bottom, box.left : box.right]
            scene[box.top : box.bottom, box.left : box.right] = overlay_heatmap(region, face.heatmap, self.alpha)
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
    OverlaySpec("cam", "Class activation map", "C", HeatmapAnnotator),
)
"""Drawing order is table order; so is the Overlays menu's."""


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
