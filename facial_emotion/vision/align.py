"""Alignment: rotate the eyes level, scale by eye distance, crop 48x48 like FER2013."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Final

import cv2
import numpy as np

from facial_emotion.paths import ASSETS_DIR
from facial_emotion.types import Box
from facial_emotion.vision.landmarks import eye_centers

FACE_SIZE_PX: Final[int] = 48
TEMPLATE_FILE: Final = ASSETS_DIR / "fer2013_landmark_template.json"


@lru_cache(maxsize=1)
def fer_eye_template() -> tuple[np.ndarray, np.ndarray]:
    """Where FER2013 faces have their (image-left, image-right) eye centres, in 48x48 pixels."""
    landmarks = np.array(json.loads(TEMPLATE_FILE.read_text())["landmarks"], dtype=np.float64)
    return landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)


def alignment_matrix(landmarks: np.ndarray, *, size_px: int = FACE_SIZE_PX) -> np.ndarray:
    """The 2x3 similarity transform that maps a face's eyes onto the FER2013 eye template."""
    src_left, src_right = (np.asarray(p, dtype=np.float64) for p in eye_centers(landmarks))
    dst_left, dst_right = fer_eye_template()
    dst_left = dst_left * size_px / FACE_SIZE_PX
    dst_right = dst_right * size_px / FACE_SIZE_PX
    src_vec = src_right - src_left
    dst_vec = dst_right - dst_left
    src_dist = float(np.hypot(*src_vec))
    if src_dist < 1e-3:
        raise ValueError("eyes coincide: cannot align")
    scale = float(np.hypot(*dst_vec)) / src_dist
    angle = np.arctan2(dst_vec[1], dst_vec[0]) - np.arctan2(src_vec[1], src_vec[0])
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    src_mid = (src_left + src_right) / 2.0
    dst_mid = (dst_left + dst_right) / 2.0
    shift = dst_mid - rot @ src_mid
    return np.hstack([rot, shift[:, None]])


def align_face(gray: np.ndarray, landmarks: np.ndarray, *, size_px: int = FACE_SIZE_PX) -> np.ndarray:
    """A size_px x size_px uint8 grayscale crop, eyes level and framed like FER2013."""
    # Warp at a multiple of the target size, then area-downsample: a plain bilinear warp
    # of a 250 px face to 48 px aliases, and the classifier never saw aliasing in training.
    eye_dist = float(np.hypot(*np.subtract(*eye_centers(landmarks))))
    _, template_right = fer_eye_template()
    factor = int(np.clip(round(eye_dist / (template_right[0] - fer_eye_template()[0][0])), 1, 4))
    big = size_px * factor
    matrix = alignment_matrix(landmarks, size_px=big)
    warped = cv2.warpAffine(gray, matrix, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if factor == 1:
        return warped
    return cv2.resize(warped, (size_px, size_px), interpolation=cv2.INTER_AREA)


def crop_box_face(gray: np.ndarray, box: Box, *, size_px: int = FACE_SIZE_PX) -> np.ndarray:
    """A size_px x size_px crop of the box itself, for when no landmarks are available to align with."""
    height, width = gray.shape[:2]
    b = box.clipped(width, height)
    if b.area == 0:
        return np.zeros((size_px, size_px), dtype=np.uint8)
    return cv2.resize(gray[b.top : b.bottom, b.left : b.right], (size_px, size_px), interpolation=cv2.INTER_AREA)


def face_input(gray: np.ndarray, box: Box, landmarks: np.ndarray | None) -> np.ndarray:
    """The one way a frame and a face become the classifier's 48x48 uint8 input.

    Aligned on the eyes when there are landmarks (68 or 5 points), else the box resized;
    the app, ``analyze``, ``explain`` and the benchmarks all go through here.
    """
    if landmarks is not None:
        try:
            return align_face(gray, landmarks)
        except ValueError:
            pass
    return crop_box_face(gray, box)
