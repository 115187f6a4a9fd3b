"""Emotion classification of aligned 48x48 faces with a Keras model, batched per frame."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facial_emotion.types import NUM_EMOTIONS, EmotionScores

log = logging.getLogger(__name__)

_EXPECTED = "expected (48, 48, 1) -> (7,): 48x48 gray faces in, 7 emotion probabilities out"
_NATIVE_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:. ]+\d+ \S+:\d+\] .*"  # absl INFO/WARNING lines (oneDNN, cpu_feature_guard)
    r"|To enable the following instructions: .*"  # second line of cpu_feature_guard's notice
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)$"
)
_NATIVE_LOCK = threading.RLock()


class ModelLoadError(RuntimeError):
    """A model file is missing, damaged or of the wrong shape; names the file and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot load emotion model {path}: {reason}")
        self.path = path
        self.reason = reason


class EmotionClassifier(Protocol):
    """Turns aligned faces into probabilities over the seven FER2013 emotions.

    ``classify`` takes every face of a frame at once, an (N, 48, 48) uint8 array, and
    returns an (N, 7) float32 array whose rows sum to 1, in ``EMOTIONS`` order. N may
    be 0, which returns an empty (0, 7) array.
    """

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """(N, 7) probabilities for (N, 48, 48) uint8 faces."""
        ...


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Drop TensorFlow's native INFO lines from stderr while loading (others are passed on).

    TensorFlow's C++ side logs through absl, which ignores ``TF_CPP_MIN_LOG_LEVEL``: every
    start printed the absl preamble, the oneDNN and CPU-feature notices (twice) and the
    XNNPACK line. While ``TF_CPP_MIN_LOG_LEVEL`` is 1 or more (the command sets 2), file
    descriptor 2 goes to a temporary file here and only the other lines are written back.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip() in ("", "0"):
        yield
        return
    with _NATIVE_LOCK, tempfile.TemporaryFile() as captured:
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to keep clean
            yield
            return
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not _NATIVE_NOISE.match(line.rstrip("\n")))
            if kept:
                os.write(2, kept.encode())


def import_tensorflow() -> Any:
    """The tensorflow module, imported (the first time) without its native log noise."""
    if "tensorflow" not in sys.modules:
        with quiet_native_logs():
            import keras  # noqa: F401  (imports TensorFlow too)
            import tensorflow  # noqa: F401
    import tensorflow as tf

    return tf


def _check_file(path: Path) -> None:
    """Raise ModelLoadError for what is plainly not a .keras file, before Keras sees it."""
    if path.is_dir():
        raise ModelLoadError(path, "it is a folder, not a .keras file")
    if not path.exists():
        raise ModelLoadError(path, "file not found")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelLoadError(path, f"cannot read it ({exc.strerror or exc})") from exc
    if size == 0:
        raise ModelLoadError(path, "the file is empty (0 bytes)")
    if path.suffix.lower() == ".tflite":
        raise ModelLoadError(path, "give the .keras file; its .tflite twin beside it is used by itself")
    if path.suffix.lower() in (".h5", ".hdf5"):
        return  # legacy HDF5: Keras says what is wrong with it
    try:
        if not zipfile.is_zipfile(path):
            raise ModelLoadError(
                path,
                f"not a .keras model: its {size} bytes are not a whole zip archive (cut short, damaged or not a model)",
            )
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise ModelLoadError(path, "not a .keras model (a zip archive without config.json)")
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelLoadError(path, f"the archive is damaged ({exc})") from exc
    if bad is not None:
        raise ModelLoadError(path, f"the archive is damaged ({bad} fails its checksum)")


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
    _check_file(path)
    import_tensorflow()
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # keras raises many types for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(path, f"Keras cannot read it: {reason}") from exc
    in_shape, out_shape = _shape(model.input_shape), _shape(model.output_shape)
    if in_shape != (48, 48, 1) or out_shape != (NUM_EMOTIONS,):
        raise ModelLoadError(path, f"it takes {in_shape} and gives {out_shape}; {_EXPECTED}")
    try:
        probe = np.asarray(model(np.zeros((2, 48, 48, 1), dtype=np.float32), training=False))
    except Exception as exc:  # a model that cannot run is as bad as one that cannot load
        raise ModelLoadError(path, f"it fails on a probe batch: {exc}") from exc
    if not (np.all(np.isfinite(probe)) and np.all(probe >= -1e-6) and np.allclose(probe.sum(axis=1), 1, atol=1e-3)):
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
        self.path = path
        self._model = load_keras_model(path)
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


def export_tflite(keras_path: Path, dest: Path | None = None) -> Path:
    """Convert a .keras emotion model to TFLite beside it (the fast CPU form); the new file's path."""
    model = load_keras_model(keras_path)
    tf = import_tensorflow()
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
        import warnings

        self.path = path
        tf = import_tensorflow()
        try:
            with warnings.catch_warnings(), quiet_native_logs():  # TF 2.21 warns that tf.lite moves to ai-edge-litert
                warnings.simplefilter("ignore", UserWarning)
                self._interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
                self._interpreter.allocate_tensors()  # the XNNPACK delegate is made (and logged) here
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(path, str(exc)) from exc
        detail_in = self._interpreter.get_input_details()[0]
        detail_out = self._interpreter.get_output_details()[0]
        in_shape = tuple(int(d) for d in detail_in["shape"][1:])
        out_shape = tuple(int(d) for d in detail_out["shape"][1:])
        if in_shape != (48, 48, 1) or out_shape != (NUM_EMOTIONS,):
            raise ModelLoadError(path, f"it takes {in_shape} and gives {out_shape}; {_EXPECTED}")
        self._in, self._out = detail_in["index"], detail_out["index"]
        self._batch = int(detail_in["shape"][0])

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
        """Drop the state of tracks not in keep (the pipeline passes the live tracks every frame)."""
        for tid in list(self._state):
            if tid not in keep:
                del self._state[tid]

    def __len__(self) -> int:
        """Tracks with a smoothed state."""
        return len(self._state)


def to_scores(probabilities: np.ndarray) -> EmotionScores:
    """Frozen scores from one row of probabilities."""
    return EmotionScores(tuple(float(p) for p in probabilities))
