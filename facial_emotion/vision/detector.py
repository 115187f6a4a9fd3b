"""Face detection with dlib's HOG frontal face detector, run on a downscaled frame."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import cv2
import numpy as np

from facial_emotion.types import Box

log = logging.getLogger(__name__)


class FaceDetector(Protocol):
    """Finds faces in a BGR or gray frame and returns their boxes in frame pixels."""

    def detect(self, gray: np.ndarray) -> tuple[Box, ...]:
        """Boxes of the faces in a grayscale image, largest first."""
        ...


class HogFaceDetector:
    """dlib's HOG + linear SVM frontal face detector.

    The frame is downscaled so its width is at most ``max_width_px`` before detection
    (the main speed lever: HOG cost grows with the pixel count), and boxes are mapped
    back to full-frame pixels. ``upsample`` doubles the image that many times inside
    dlib to find faces smaller than about 80 px.
    """

    def __init__(self, *, max_width_px: int | None = 320, upsample: int = 0) -> None:
        import dlib

        self._detector: Any = dlib.get_frontal_face_detector()
        self.max_width_px = max_width_px
        self.upsample = upsample

    def detect(self, gray: np.ndarray) -> tuple[Box, ...]:
        """Boxes of the faces in a grayscale image, largest first."""
        height, width = gray.shape[:2]
        scale = 1.0
        small = gray
        if self.max_width_px and width > self.max_width_px:
            scale = self.max_width_px / width
            small = cv2.resize(gray, (self.max_width_px, round(height * scale)), interpolation=cv2.INTER_AREA)
        rects = self._detector(small, self.upsample)
        boxes = [
            Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1).scaled(1.0 / scale).clipped(width, height)
            for r in rects
        ]
        boxes = [b for b in boxes if b.area > 0]
        return tuple(sorted(boxes, key=lambda b: b.area, reverse=True))
