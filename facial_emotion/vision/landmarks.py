"""Facial landmarks with dlib's shape predictors (68 or 5 points)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np

from facial_emotion.types import Box

LandmarkModel = Literal["68", "5"]

# Index ranges in the 68-point iBUG layout.
RIGHT_EYE_68: Final[slice] = slice(36, 42)  # subject's right eye, image left
LEFT_EYE_68: Final[slice] = slice(42, 48)
# 5-point model: 0-1 one eye's corners, 2-3 the other's, 4 the nose base.
RIGHT_EYE_5: Final[slice] = slice(2, 4)
LEFT_EYE_5: Final[slice] = slice(0, 2)


PREDICTOR_FILES: Final[dict[str, str]] = {
    "68": "shape_predictor_68_face_landmarks.dat",
    "5": "shape_predictor_5_face_landmarks.dat",
}


def face_models_dir() -> Path:
    """The face-recognition-models package's model folder, found without importing it.

    (Importing that package needs pkg_resources, which new setuptools no longer ship.)
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return Path("face-recognition-models-is-not-installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def predictor_path(model: LandmarkModel) -> Path:
    """Path of dlib's predictor file as shipped by the face-recognition-models package."""
    return face_models_dir() / PREDICTOR_FILES[model]


class LandmarkPredictor(Protocol):
    """Fits landmarks inside a face box."""

    n_points: int

    def predict(self, gray: np.ndarray, box: Box) -> np.ndarray:
        """An (n_points, 2) float32 array of landmark positions in frame pixels."""
        ...


class DlibLandmarkPredictor:
    """dlib's ensemble-of-regression-trees shape predictor (68 or 5 points)."""

    def __init__(self, model: LandmarkModel = "68", *, path: Path | None = None) -> None:
        import dlib

        file = path or predictor_path(model)
        if not file.is_file():
            raise FileNotFoundError(f"landmark model {file} is missing: reinstall the face-recognition-models package")
        self._predictor: Any = dlib.shape_predictor(str(file))
        self._dlib = dlib
        self.n_points = 68 if model == "68" else 5

    def predict(self, gray: np.ndarray, box: Box) -> np.ndarray:
        """An (n_points, 2) float32 array of landmark positions in frame pixels."""
        rect = self._dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)
        shape = self._predictor(gray, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def eye_centers(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye, image-right eye) centres from 68 or 5 landmarks."""
    if len(landmarks) == 68:
        return landmarks[RIGHT_EYE_68].mean(axis=0), landmarks[LEFT_EYE_68].mean(axis=0)
    if len(landmarks) == 5:
        return landmarks[RIGHT_EYE_5].mean(axis=0), landmarks[LEFT_EYE_5].mean(axis=0)
    raise ValueError(f"expected 68 or 5 landmarks, got {len(landmarks)}")
