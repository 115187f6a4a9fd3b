"""The Keras runtime: .keras files loaded safely with TensorFlow, for training, evaluation and Grad-CAM.

The live path runs the LiteRT twin (``facial_emotion.vision.classifier``); this runtime
serves a user's .keras file that has no twin yet (the registry imports it lazily then),
and everything that needs the Keras graph itself.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facial_emotion.types import NUM_EMOTIONS
from facial_emotion.vision.classifier import (
    EXPECTED,
    ModelLoadError,
    check_model_file,
    is_probabilities,
    quiet_native_logs,
)

log = logging.getLogger(__name__)


def import_tensorflow() -> Any:
    """The tensorflow module, imported (the first time) without its native log noise."""
    if "tensorflow" not in sys.modules:
        with quiet_native_logs():
            import keras  # noqa: F401  (imports TensorFlow too)
            import tensorflow  # noqa: F401
    import tensorflow as tf

    return tf


def _shape(shape: Any) -> tuple[Any, ...] | str:
    """A model's per-sample input or output shape, or a word for several."""
    if isinstance(shape, list):
        return f"{len(shape)} tensors" if len(shape) != 1 else _shape(shape[0])
    return tuple(shape[1:])


def load_keras_model(path: Path) -> Any:
    """Load a .keras file with safe_mode (no arbitrary code) or raise ModelLoadError.

    The model must take (N, 48, 48, 1) raw gray faces and give (N, 7) probabilities;
    a probe batch checks the latter (a model without a softmax is refused).
    """
    path = Path(path)
    check_model_file(path)
    if path.suffix.lower() == ".tflite":
        raise ModelLoadError(path, "a .tflite file runs with LiteRT, not Keras; give the .keras file it came from")
    import_tensorflow()
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # keras raises many types for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(path, f"Keras cannot read it: {reason}") from exc
    in_shape, out_shape = _shape(model.input_shape), _shape(model.output_shape)
    if in_shape != (48, 48, 1) or out_shape != (NUM_EMOTIONS,):
        raise ModelLoadError(path, f"it takes {in_shape} and gives {out_shape}; {EXPECTED}")
    try:
        probe = np.asarray(model(np.zeros((2, 48, 48, 1), dtype=np.float32), training=False))
    except Exception as exc:  # a model that cannot run is as bad as one that cannot load
        raise ModelLoadError(path, f"it fails on a probe batch: {exc}") from exc
    if not is_probabilities(probe):
        raise ModelLoadError(path, "its outputs are not probabilities (rows must sum to 1: end it with a softmax)")
    return model


class KerasEmotionClassifier:
    """A Keras model behind one compiled TensorFlow call per frame.

    ``Model.predict`` builds a data pipeline on every call (about 100 ms here), so the
    model is wrapped once in a ``tf.function`` with a batch-agnostic signature: every
    frame, whatever its face count, reuses the same traced graph. Input pixels are raw
    0-255 gray values; the model scales them itself.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._model = load_keras_model(self.path)
        tf = import_tensorflow()
        model = self._model

        @tf.function(input_signature=[tf.TensorSpec([None, 48, 48, 1], tf.float32)], reduce_retracing=True)
        def infer(batch: Any) -> Any:
            return model(batch, training=False)

        self._infer = infer
        self.classify(np.zeros((1, 48, 48), dtype=np.uint8))  # trace now, not on the first face

    @property
    def model(self) -> Any:
        """The underlying Keras model (for Grad-CAM and evaluation)."""
        return self._model

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """(N, 7) probabilities for (N, 48, 48) uint8 faces."""
        if len(faces) == 0:
            return np.zeros((0, NUM_EMOTIONS), dtype=np.float32)
        batch = np.asarray(faces, dtype=np.float32)[..., None]
        return np.asarray(self._infer(batch), dtype=np.float32)
