"""Grad-CAM heat maps of the emotion model's top class, and an overlay for the app."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facial_emotion.types import EMOTIONS

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

        from facial_emotion.vision.classifier import load_keras_model

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


def overlay_heatmap(image_bgr: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a JET-coloured heat map (resized to the image) over a BGR (or gray) image."""
    if image_bgr.ndim == 2:
        image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    h, w = image_bgr.shape[:2]
    heat_u8 = np.clip(cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC), 0, 1) * 255
    colour = cv2.applyColorMap(heat_u8.astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(image_bgr, 1.0 - alpha, colour, alpha, 0.0)


def _face_region(image: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the largest face found, or the whole image for a face crop."""
    h, w = image.shape[:2]
    if max(h, w) <= 160:  # already a face crop (FER2013-sized or close)
        return 0, 0, w, h
    from facial_emotion.vision.detector import HogFaceDetector

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    boxes = HogFaceDetector(max_width_px=640, upsample=1).detect(gray)
    if not boxes:
        log.warning("no face found; explaining the whole image as one face")
        return 0, 0, w, h
    box = boxes[0]
    pad = round(0.1 * box.width)  # FER2013 crops include a little forehead and chin
    return max(0, box.left - pad), max(0, box.top - pad), min(w, box.right + pad), min(h, box.bottom + pad)


def explain_image_file(image_path: Path, out_path: Path, *, model_path: Path) -> tuple[str, float]:
    """Write a Grad-CAM overlay over the (largest) face of an image; return (emotion, probability)."""
    from facial_emotion.training.data import to_gray48

    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise CamError(f"{image_path}: not a readable image")
    explainer = GradCamExplainer(model_path)
    left, top, right, bottom = _face_region(image)
    face_bgr = image[top:bottom, left:right]
    heat, probs = explainer.explain_with_probabilities(to_gray48(face_bgr)[None])
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
