"""The class activation map overlay: where the emotion model looked, drawn over each face box.

It runs on the inference thread as one more annotator of the pipeline. The Grad-CAM code
(``facial_emotion.vision.cam``) is imported the first time the overlay is on; without it
the overlay switches itself off and says why once in the log.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from facial_emotion.paths import DEFAULT_EMOTION_MODEL
from facial_emotion.settings import Settings
from facial_emotion.types import FrameResult

log = logging.getLogger(__name__)

CAM_KEY: Final[str] = "cam"
CAM_MODULE: Final[str] = "facial_emotion.vision.cam"

CamFunctions = tuple[Callable[[Path], Any], Callable[..., np.ndarray]]
"""(explainer factory taking a model path, overlay_heatmap)."""


def cam_available() -> bool:
    """True when the Grad-CAM module is installed (checked without importing it)."""
    if CAM_MODULE in sys.modules:
        return True
    try:
        return importlib.util.find_spec(CAM_MODULE) is not None
    except (ImportError, ValueError):
        return False


def _import_cam() -> CamFunctions:
    from facial_emotion.vision.cam import GradCamExplainer, overlay_heatmap

    return GradCamExplainer, overlay_heatmap


class CamAnnotator:
    """Draws each face's Grad-CAM heat map into its box when the "cam" overlay is on."""

    def __init__(
        self,
        settings_getter: Callable[[], Settings] = Settings,
        *,
        alpha: float = 0.4,
        loader: Callable[[], CamFunctions] = _import_cam,
    ) -> None:
        self.settings_getter = settings_getter
        self.alpha = alpha
        self._loader = loader
        self._functions: CamFunctions | None = None
        self._explainers: dict[Path, Any] = {}
        self._failed_paths: set[Path] = set()
        self.unavailable: str | None = None
        """Why the overlay cannot be drawn (None while it can)."""

    def _explainer(self, path: Path) -> Any | None:
        if self._functions is None:
            try:
                self._functions = self._loader()
            except ImportError as exc:
                self.unavailable = f"class activation maps are not available: {exc}"
                log.warning("%s; the overlay is off", self.unavailable)
                return None
        if path in self._failed_paths:
            return None
        if path not in self._explainers:
            try:
                self._explainers[path] = self._functions[0](path)
            except Exception as exc:  # a missing or incompatible model must not stop the stream
                self._failed_paths.add(path)
                log.warning("no class activation map for %s: %s", path, exc)
                return None
        return self._explainers[path]

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        """Blend each classified face's heat map into its box."""
        settings = self.settings_getter()
        if self.unavailable or CAM_KEY not in settings.overlays or settings.emotion is None:
            return scene
        faces = [f for f in result.faces if f.aligned is not None and f.emotion is not None]
        if not faces:
            return scene
        path = Path(settings.emotion_model_path) if settings.emotion_model_path else DEFAULT_EMOTION_MODEL
        explainer = self._explainer(path)
        if explainer is None or self._functions is None:
            return scene
        overlay_heatmap = self._functions[1]
        heat = explainer.explain(np.stack([f.aligned for f in faces]))
        height, width = scene.shape[:2]
        for face, face_heat in zip(faces, heat, strict=True):
            box = face.box.clipped(width, height)
            if box.width < 2 or box.height < 2:
                continue
            region = scene[box.top : box.bottom, box.left : box.right]
            resized = cv2.resize(np.asarray(face_heat, np.float32), (box.width, box.height))
            scene[box.top : box.bottom, box.left : box.right] = overlay_heatmap(region, resized, alpha=self.alpha)
        return scene
