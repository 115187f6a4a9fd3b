"""Frozen data that flows through the pipeline: frames, faces, results, utterances."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

EMOTIONS: Final[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The seven FER2013 classes, in the dataset's label order (0..6)."""

NUM_EMOTIONS: Final[int] = len(EMOTIONS)


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in pixels of the full frame; right and bottom are exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.right - self.left

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.bottom - self.top

    @property
    def area(self) -> int:
        """Area in square pixels (0 for an empty box)."""
        return max(0, self.width) * max(0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) in pixels."""
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box."""
        ix = max(0, min(self.right, other.right) - max(self.left, other.left))
        iy = max(0, min(self.bottom, other.bottom) - max(self.top, other.top))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def scaled(self, factor: float) -> Box:
        """The box with every coordinate multiplied by factor."""
        return Box(
            round(self.left * factor),
            round(self.top * factor),
            round(self.right * factor),
            round(self.bottom * factor),
        )

    def clipped(self, width: int, height: int) -> Box:
        """The box clipped to an image of the given size."""
        return Box(
            min(max(self.left, 0), width),
            min(max(self.top, 0), height),
            min(max(self.right, 0), width),
            min(max(self.bottom, 0), height),
        )


@dataclass(frozen=True, slots=True)
class EmotionScores:
    """Probabilities over EMOTIONS (sum to 1)."""

    probabilities: tuple[float, ...]

    @property
    def top(self) -> str:
        """Name of the most probable emotion."""
        return EMOTIONS[int(np.argmax(self.probabilities))]

    @property
    def top_probability(self) -> float:
        """Probability of the most probable emotion."""
        return float(max(self.probabilities))

    def as_dict(self) -> dict[str, float]:
        """Emotion name to probability."""
        return dict(zip(EMOTIONS, (float(p) for p in self.probabilities), strict=True))


@dataclass(frozen=True, slots=True)
class Frame:
    """One image, BGR uint8, with its place in the session and in its source.

    ``index`` and ``timestamp_ms`` are session position and time: the engine keeps them
    going up across loops of a video and source changes, and ``pass_index`` (0-based)
    goes up by one at each such pass. ``source_index`` and ``source_timestamp_ms`` are the
    frame's place in its own source (a video's position, a camera's shared clock): they
    go back to 0 when a video loops. A frame straight from a source has both the same
    (the source fields are filled from index and timestamp_ms when not given).
    """

    image: np.ndarray = field(repr=False)
    index: int
    timestamp_ms: float
    pass_index: int = 0
    source_index: int = -1
    """Index within the source; -1 (not given) means the same as ``index``."""
    source_timestamp_ms: float = -1.0
    """Time within the source in ms (a video's own clock); -1 (not given) means ``timestamp_ms``."""

    def __post_init__(self) -> None:
        if self.source_index < 0:
            object.__setattr__(self, "source_index", self.index)
        if self.source_timestamp_ms < 0:
            object.__setattr__(self, "source_timestamp_ms", self.timestamp_ms)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return (int(self.image.shape[1]), int(self.image.shape[0]))


@dataclass(frozen=True, slots=True)
class Face:
    """One tracked face in one frame.

    landmarks is an (N, 2) float array in frame pixels (68 or 5 points) or None when
    landmarks are off; emotion is None when the classifier is off; ear is the mean eye
    aspect ratio of both eyes (None without 68 landmarks).
    """

    box: Box
    track_id: int
    landmarks: np.ndarray | None = field(default=None, repr=False)
    emotion: EmotionScores | None = None
    ear: float | None = None
    blinks: int = 0
    blinks_per_min: float = 0.0
    detected: bool = True
    """True when the box came from the detector this frame, False when it was followed."""
    aligned: np.ndarray | None = field(default=None, repr=False)
    """The 48x48 uint8 grayscale crop the classifier saw, if any."""
    mood: float | None = None
    """Fused mood in [-1, 1] (face valence with speech), when fusion is on."""
    heatmap: np.ndarray | None = field(default=None, repr=False)
    """(48, 48) float32 in [0, 1]: where the classifier looked (Grad-CAM), while that overlay is on."""


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Milliseconds spent per pipeline stage for one frame."""

    detect_ms: float = 0.0
    landmarks_ms: float = 0.0
    align_ms: float = 0.0
    classify_ms: float = 0.0
    blink_ms: float = 0.0
    annotate_ms: float = 0.0
    cam_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything the pipeline knows about one frame."""

    frame: Frame
    faces: tuple[Face, ...] = ()
    annotated: np.ndarray | None = field(default=None, repr=False)
    latency_ms: float = 0.0
    times: StageTimes = StageTimes()
    fps: float = 0.0

    @property
    def blinks(self) -> int:
        """Total blinks counted so far over the faces in this frame."""
        return sum(face.blinks for face in self.faces)


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its times on the shared clock."""

    text: str
    start_ms: float
    end_ms: float
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Sentiment:
    """Sentiment of a piece of text: VADER compound in [-1, 1] and its label."""

    compound: float
    label: str  # "positive" | "neutral" | "negative"


@dataclass(frozen=True, slots=True)
class Utterance:
    """A recognised stretch of speech; final=False marks a live partial result."""

    text: str
    final: bool
    start_ms: float
    end_ms: float
    words: tuple[Word, ...] = ()
    sentiment: Sentiment | None = None
