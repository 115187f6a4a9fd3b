"""Grad-CAM heat maps of the emotion model's top class, of the very crop the app classifies.

TensorFlow lives here (training/): the live path imports this module only when the user
turns the class activation map overlay on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facial_emotion.annotate import overlay_heatmap
from facial_emotion.types import EMOTIONS

__all__ = ["CamError", "GradCamExplainer", "app_face", "explain_image_file", "overlay_heatmap"]

log = logging.getLogger(__name__)

CAM_LAYER = "last_conv"
"""The layer our training names for Grad-CAM; other models fall back to their last 4-D output."""


class CamError(ValueError):
    """An image cannot be read or explained."""


def _feature_layer(model: Any) -> Any:
    try:
        return model.get_layer(CAM_LAYER)
    except ValueError:
        pass
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None)
        if shape is not None and len(layer.output.shape) == 4 and layer.output.shape[1] > 1:
            return layer
    raise CamError(f"model {model.name} has no convolutional feature map for Grad-CAM")


class GradCamExplainer:
    """Grad-CAM for the top class of each face: where the model looked to decide."""

    def __init__(self, model_path: Path) -> None:
        import keras
        import tensorflow as tf

        from facial_emotion.training.runtime import load_keras_model

        self.path = Path(model_path)
        self.model = load_keras_model(self.path)
        feature = _feature_layer(self.model)
        grad_model = keras.Model(self.model.inputs, [feature.output, self.model.output])

        @tf.function(input_signature=[tf.TensorSpec([None, 48, 48, 1], tf.float32)], reduce_retracing=True)
        def cams(batch: Any) -> Any:
            with tf.GradientTape() as tape:
                maps, probs = grad_model(batch, training=False)
                top = tf.argmax(probs, axis=1)
                score = tf.gather(probs, top, axis=1, batch_dims=1)
            grads = tape.gradient(score, maps)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            heat = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))
            return heat, probs

        self._cams = cams

    def explain_with_probabilities(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,48,48) heat maps in [0,1] and the (N,7) probabilities they explain."""
        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (48, 48):
            raise CamError(f"faces must be (N, 48, 48), got {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, 48, 48), np.float32), np.zeros((0, len(EMOTIONS)), np.float32)
        heat, probs = self._cams(faces[..., None].astype(np.float32))
        heat = np.asarray(heat, dtype=np.float32)
        out = np.empty((len(faces), 48, 48), dtype=np.float32)
        for i, h in enumerate(heat):
            up = cv2.resize(h, (48, 48), interpolation=cv2.INTER_CUBIC)
            up = np.maximum(up, 0.0)
            peak = float(up.max())
            out[i] = up / peak if peak > 1e-12 else 0.0
        return np.clip(out, 0.0, 1.0), np.asarray(probs, dtype=np.float32)

    def explain(self, faces: np.ndarray) -> np.ndarray:
        """(N,48,48) float32 heat maps in [0,1] for each (48,48) uint8 face's top class."""
        return self.explain_with_probabilities(faces)[0]


def app_face(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The 48x48 crop the app classifies for the largest face of an image, and its box.

    The same stages as the app's for a still: the HOG detector with the still-image rule
    (``Settings.for_stills``), the 68 landmarks, and ``face_input``, so what is explained
    is exactly what is classified. A small image with no face found (a FER2013-sized crop)
    is one face filling the frame.
    """
    from facial_emotion.settings import Settings
    from facial_emotion.types import Box
    from facial_emotion.vision.align import face_input
    from facial_emotion.vision.detector import HogFaceDetector
    from facial_emotion.vision.landmarks import DlibLandmarkPredictor

    h, w = image.shape[:2]
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    stills = Settings().for_stills()
    boxes = HogFaceDetector(max_width_px=stills.detection.width_px, upsample=stills.detection.upsample).detect(gray)
    if boxes:
        box = max(boxes, key=lambda b: b.area).clipped(w, h)
    else:
        if max(h, w) > 160:
            log.warning("no face found; explaining the whole image as one face")
        box = Box(0, 0, w, h)
    points = DlibLandmarkPredictor("68").predict(gray, box) if boxes or max(h, w) <= 160 else None
    return face_input(gray, box, points), (box.left, box.top, box.right, box.bottom)


def explain_image_file(image_path: Path, out_path: Path, *, model_path: Path) -> tuple[str, float]:
    """Write a Grad-CAM overlay over the (largest) face of an image; return (emotion, probability)."""
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise CamError(f"{image_path}: not a readable image")
    explainer = GradCamExplainer(model_path)
    face, (left, top, right, bottom) = app_face(image)
    face_bgr = image[top:bottom, left:right]
    heat, probs = explainer.explain_with_probabilities(face[None])
    best = int(probs[0].argmax())
    shown = image.copy()
    shown[top:bottom, left:right] = overlay_heatmap(face_bgr, heat[0])
    if min(shown.shape[:2]) < 192:  # enlarge small face crops so the map is visible
        scale = 192 / min(shown.shape[:2])
        shown = cv2.resize(shown, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        left, top, right, bottom = (round(v * scale) for v in (left, top, right, bottom))
    else:
        cv2.rectangle(shown, (left, top), (right - 1, bottom - 1), (255, 255, 255), 1)
    label = f"{EMOTIONS[best]} {probs[0, best]:.2f}"
    org = (left + 4, max(top - 6, 18)) if top > 24 else (left + 4, top + 18)
    cv2.putText(shown, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(shown, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_path), shown):
        raise CamError(f"{out_path}: cannot write the image (use a .png or .jpg name)")
    return EMOTIONS[best], float(probs[0, best])
