"""Emotion classification of aligned 48x48 faces with a Keras model, batched per frame."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facial_emotion.types import NUM_EMOTIONS, EmotionScores

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A model file is missing, unsafe or of the wrong shape."""


class EmotionClassifier(Protocol):
    """Turns aligned faces into probabilities over the seven FER2013 emotions.

    ``classify`` takes every face of a frame at once, an (N, 48, 48) uint8 array, and
    returns an (N, 7) float32 array whose rows sum to 1, in ``EMOTIONS`` order. N may
    be 0, which returns an empty (0, 7) array.
    """

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """(N, 7) probabilities for (N, 48, 48) uint8 faces."""
        ...


def load_keras_model(path: Path) -> Any:
    """Load a .keras file with safe_mode (no arbitrary code) or raise ModelLoadError."""
    if not path.is_file():
        raise ModelLoadError(f"emotion model {path} not found")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # keras raises many types for bad files
        raise ModelLoadError(f"cannot load emotion model {path}: {exc}") from exc
    in_shape = tuple(model.input_shape[1:])
    out_shape = tuple(model.output_shape[1:])
    if in_shape != (48, 48, 1) or out_shape != (NUM_EMOTIONS,):
        raise ModelLoadError(
            f"emotion model {path} takes {in_shape} and gives {out_shape}; expected (48, 48, 1) -> (7,)"
        )
    return model


class KerasEmotionClassifier:
    """A Keras model behind one compiled TensorFlow call per frame.

    ``Model.predict`` builds a data pipeline on every call (about 100 ms here), so the
    model is wrapped once in a ``tf.function`` with a batch-agnostic signature: every
    frame, whatever its face count, reuses the same traced graph. Input pixels are raw
    0-255 gray values; the model scales them itself.
    """

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        self.path = path
        self._model = load_keras_model(path)
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


def export_tflite(keras_path: Path, dest: Path | None = None) -> Path:
    """Convert a .keras emotion model to TFLite beside it (the fast CPU form); the new file's path."""
    import tensorflow as tf

    model = load_keras_model(keras_path)
    flat = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    out = dest or keras_path.with_suffix(".tflite")
    tmp = out.with_suffix(".tflite.tmp")
    tmp.write_bytes(flat)
    tmp.replace(out)
    return out


class TFLiteEmotionClassifier:
    """The same model as a TFLite flatbuffer run by TensorFlow's interpreter (XNNPACK on CPU).

    About 0.6 ms a face here against about 3 ms for the compiled Keras call. The
    interpreter is resized when a frame's face count changes.
    """

    def __init__(self, path: Path, *, threads: int = 2) -> None:
        import tensorflow as tf

        self.path = path
        import warnings

        try:
            with warnings.catch_warnings():  # TF 2.21 warns that tf.lite moves to ai-edge-litert
                warnings.simplefilter("ignore", UserWarning)
                self._interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load emotion model {path}: {exc}") from exc
        detail_in = self._interpreter.get_input_details()[0]
        detail_out = self._interpreter.get_output_details()[0]
        if tuple(detail_in["shape"][1:]) != (48, 48, 1) or tuple(detail_out["shape"][1:]) != (NUM_EMOTIONS,):
            raise ModelLoadError(f"emotion model {path} does not take 48x48x1 faces to 7 classes")
        self._in, self._out = detail_in["index"], detail_out["index"]
        self._batch = 0

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """(N, 7) probabilities for (N, 48, 48) uint8 faces."""
        n = len(faces)
        if n == 0:
            return np.zeros((0, NUM_EMOTIONS), dtype=np.float32)
        if n != self._batch:
            self._interpreter.resize_tensor_input(self._in, [n, 48, 48, 1])
            self._interpreter.allocate_tensors()
            self._batch = n
        self._interpreter.set_tensor(self._in, np.asarray(faces, dtype=np.float32)[..., None])
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._out), dtype=np.float32)


def load_emotion_classifier(path: Path) -> EmotionClassifier:
    """The fastest form of a model: its .tflite twin when it gives the same answers, else the .keras file.

    The .keras file is always loaded first (it must exist and load safely). The twin is
    used only if it agrees with it on a probe batch, so a stale or broken .tflite (say,
    left over from an earlier training) falls back to the compiled Keras call with a warning.
    """
    keras_classifier = KerasEmotionClassifier(path)
    twin = path.with_suffix(".tflite")
    if twin.is_file():
        try:
            fast = TFLiteEmotionClassifier(twin)
            probe = np.random.default_rng(0).integers(0, 256, (4, 48, 48), dtype=np.uint8)
            if np.allclose(fast.classify(probe), keras_classifier.classify(probe), atol=1e-3):
                return fast
            log.warning("%s disagrees with %s; using the Keras model", twin.name, path.name)
        except Exception as exc:  # the interpreter is optional: the Keras path always works
            log.warning("cannot use %s (%s); using the Keras model", twin, exc)
    return keras_classifier


class EmotionSmoother:
    """Exponential moving average of each track's probabilities (alpha = weight of the new frame)."""

    def __init__(self, alpha: float = 0.4) -> None:
        self.alpha = alpha
        self._state: dict[int, np.ndarray] = {}

    def smooth(self, track_id: int, probabilities: np.ndarray) -> np.ndarray:
        """The smoothed probabilities of a track after this frame."""
        prev = self._state.get(track_id)
        cur = probabilities if prev is None else self.alpha * probabilities + (1 - self.alpha) * prev
        self._state[track_id] = cur
        return cur

    def forget(self, keep: set[int]) -> None:
        """Drop the state of tracks not in keep."""
        for tid in list(self._state):
            if tid not in keep:
                del self._state[tid]


def to_scores(probabilities: np.ndarray) -> EmotionScores:
    """Frozen scores from one row of probabilities."""
    return EmotionScores(tuple(float(p) for p in probabilities))
