"""Emotion classification of aligned 48x48 faces with the standalone LiteRT runtime, batched per frame.

The live path (the app, ``analyze``, ``record``) runs a model's ``.tflite`` twin here and
never imports TensorFlow or Keras. The twin is trusted only if its sha256 is the one that
``facial-emotion export`` recorded in the model's JSON beside it; the Keras runtime (for a
``.keras`` file without a twin) lives in ``facial_emotion.training.runtime``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from facial_emotion.types import NUM_EMOTIONS, EmotionScores

log = logging.getLogger(__name__)

EXPECTED: Final = "expected (48, 48, 1) -> (7,): 48x48 gray faces in, 7 emotion probabilities out"
TWIN_KEY: Final = "tflite"
"""The key of the twin's record in the model's metadata JSON."""
LITERT_THREADS: Final = 2

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


class TwinUnavailableError(ModelLoadError):
    """A .keras model has no .tflite twin with a recorded checksum: only the Keras runtime can run it."""


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
    """Drop the runtimes' native INFO lines from stderr while loading (others are passed on).

    TensorFlow's and LiteRT's C++ sides log through absl or straight to stderr, ignoring
    ``TF_CPP_MIN_LOG_LEVEL``: every start printed the absl preamble, the oneDNN and
    CPU-feature notices and the XNNPACK line. While ``TF_CPP_MIN_LOG_LEVEL`` is 1 or more
    (the command sets 2), file descriptor 2 goes to a temporary file here and only the
    other lines are written back.
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


def check_model_file(path: Path) -> None:
    """Raise ModelLoadError for what is plainly not a model file (a .keras must be a whole zip archive)."""
    if path.is_dir():
        raise ModelLoadError(path, f"it is a folder, not a {path.suffix or '.keras'} file")
    if not path.exists():
        raise ModelLoadError(path, "file not found")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelLoadError(path, f"cannot read it ({exc.strerror or exc})") from exc
    if size == 0:
        raise ModelLoadError(path, "the file is empty (0 bytes)")
    if path.suffix.lower() in (".tflite", ".h5", ".hdf5"):
        return  # LiteRT or Keras says what is wrong with these
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


def sha256_hex(data: bytes) -> str:
    """The sha256 of some bytes, as 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class TwinRecord:
    """What ``facial-emotion export`` recorded about a .tflite twin, under ``"tflite"`` in the model's JSON."""

    file: str
    sha256: str
    size_bytes: int
    keras_file: str
    keras_sha256: str
    precision: str = "float32"
    converter: str = ""
    exported: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TwinRecord:
        """The record from its JSON form; ValueError when a field is missing or of the wrong type."""
        try:
            record = cls(**{k: data[k] for k in cls.__slots__ if k in data})
        except TypeError as exc:
            raise ValueError(f"incomplete twin record: {exc}") from exc
        texts = (record.file, record.sha256, record.keras_file, record.keras_sha256)
        if not all(isinstance(t, str) for t in texts) or not isinstance(record.size_bytes, int):
            raise ValueError("twin record fields have the wrong types")
        return record

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


def record_path(model_path: Path) -> Path:
    """The metadata JSON of a model (``x.keras`` and ``x.tflite`` share ``x.json``)."""
    return Path(model_path).with_suffix(".json")


def read_twin_record(model_path: Path) -> TwinRecord | None:
    """The twin's record in the model's JSON, or None when there is none (or it cannot be read)."""
    path = record_path(model_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entry = data.get(TWIN_KEY) if isinstance(data, dict) else None
        return TwinRecord.from_dict(entry) if isinstance(entry, dict) else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read the twin record in %s: %s", path, exc)
        return None


class LiteRTEmotionClassifier:
    """A .tflite emotion model run by the standalone LiteRT interpreter (XNNPACK on CPU).

    About 0.6 ms a face here, with no TensorFlow in the process. The interpreter is
    resized when a frame's face count changes. Input pixels are raw 0-255 gray values
    as float32; the model scales them itself.
    """

    def __init__(self, path: Path, *, content: bytes | None = None, threads: int = LITERT_THREADS) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self._content = content if content is not None else _read(self.path)  # the interpreter borrows it
        try:
            with quiet_native_logs():
                self._interpreter = Interpreter(model_content=self._content, num_threads=threads)
                self._interpreter.allocate_tensors()  # the XNNPACK delegate is made (and logged) here
        except (ValueError, RuntimeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(self.path, f"LiteRT cannot read it: {reason}") from exc
        detail_in = self._interpreter.get_input_details()
        detail_out = self._interpreter.get_output_details()
        if len(detail_in) != 1 or len(detail_out) != 1:
            raise ModelLoadError(self.path, f"it has {len(detail_in)} inputs and {len(detail_out)} outputs; {EXPECTED}")
        in_shape = tuple(int(d) for d in detail_in[0]["shape"][1:])
        out_shape = tuple(int(d) for d in detail_out[0]["shape"][1:])
        if in_shape != (48, 48, 1) or out_shape != (NUM_EMOTIONS,):
            raise ModelLoadError(self.path, f"it takes {in_shape} and gives {out_shape}; {EXPECTED}")
        if detail_in[0]["dtype"] != np.float32:
            name = np.dtype(detail_in[0]["dtype"]).name
            raise ModelLoadError(self.path, f"it takes {name} input; export it again in float32")
        self._in, self._out = detail_in[0]["index"], detail_out[0]["index"]
        self._batch = int(detail_in[0]["shape"][0])
        try:
            probe = self.classify(np.zeros((2, 48, 48), dtype=np.uint8))
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(self.path, f"it fails on a probe batch: {exc}") from exc
        if not is_probabilities(probe):
            raise ModelLoadError(
                self.path, "its outputs are not probabilities (rows must sum to 1: end it with a softmax)"
            )

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


def is_probabilities(rows: np.ndarray) -> bool:
    """True when every row is finite, non-negative and sums to 1 (the output of a softmax)."""
    return bool(np.all(np.isfinite(rows)) and np.all(rows >= -1e-6) and np.allclose(np.sum(rows, axis=1), 1, atol=1e-3))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(path, f"cannot read it ({exc.strerror or exc})") from exc


def _export_hint(keras_path: Path) -> str:
    return f"run `facial-emotion export --model {keras_path}` to export it again"


def _verified_twin(keras_path: Path) -> tuple[Path, bytes]:
    """The .tflite twin of a .keras file and its bytes, once both match the checksums recorded at export."""
    twin = keras_path.with_suffix(".tflite")
    if not twin.is_file():
        raise TwinUnavailableError(keras_path, f"no {twin.name} twin beside it")
    record = read_twin_record(keras_path)
    if record is None or record.file != twin.name:
        raise TwinUnavailableError(
            keras_path, f"{twin.name} beside it has no checksum recorded in {record_path(keras_path).name}"
        )
    if sha256_hex(_read(keras_path)) != record.keras_sha256:
        raise ModelLoadError(
            keras_path,
            f"its twin {twin} was exported from another version of {keras_path.name} "
            f"(the sha256 recorded in {record_path(keras_path).name} differs); {_export_hint(keras_path)}",
        )
    content = _read(twin)
    if len(content) != record.size_bytes or sha256_hex(content) != record.sha256:
        raise ModelLoadError(
            keras_path,
            f"its twin {twin} does not match the sha256 recorded at export in {record_path(keras_path).name} "
            f"(damaged or replaced); {_export_hint(keras_path)}",
        )
    return twin, content


def load_emotion_classifier(path: Path) -> LiteRTEmotionClassifier:
    """A model run by LiteRT: a .keras file's verified .tflite twin, or a .tflite file itself.

    A .keras file must be sound and have a twin whose sha256 (and the .keras file's own)
    match what export recorded in the JSON beside them; a mismatch is a ModelLoadError
    saying to export again. Without such a twin, TwinUnavailableError says so (the registry
    then falls back to the Keras runtime). A .tflite given directly is checked against a
    record when its JSON has one, and otherwise run as given, with a note in the log.
    """
    path = Path(path)
    check_model_file(path)
    if path.suffix.lower() != ".tflite":
        twin, content = _verified_twin(path)
        classifier = LiteRTEmotionClassifier(twin, content=content)
        log.info("emotion model %s runs as its verified twin %s (LiteRT)", path.name, twin.name)
        return classifier
    content = _read(path)
    record = read_twin_record(path)
    if record is not None and record.file == path.name:
        if len(content) != record.size_bytes or sha256_hex(content) != record.sha256:
            raise ModelLoadError(
                path,
                f"it does not match the sha256 recorded at export in {record_path(path).name} (damaged or replaced); "
                f"{_export_hint(path.with_suffix('.keras'))}",
            )
    else:
        log.info("%s has no checksum recorded at export; running it as given", path)
    return LiteRTEmotionClassifier(path, content=content)


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
