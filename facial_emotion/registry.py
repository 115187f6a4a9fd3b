"""The registry of models: what each slot can hold, where its files are, how to load it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from facial_emotion.paths import DEFAULT_EMOTION_MODEL
from facial_emotion.vision.landmarks import predictor_path

log = logging.getLogger(__name__)

Slot = Literal["detector", "landmarks", "emotion"]
SLOTS: Final[tuple[Slot, ...]] = ("detector", "landmarks", "emotion")
RUNTIME_ENV: Final = "FACIAL_EMOTION_RUNTIME"
"""Hidden switch for benchmarks and tests: ``auto`` (default), ``litert`` (never Keras) or ``keras`` (always)."""
RUNTIMES: Final[tuple[str, ...]] = ("auto", "litert", "keras")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One choice for a slot; factory builds the stage (heavy imports happen there)."""

    key: str
    slot: Slot
    display_name: str
    files: Callable[[], tuple[Path, ...]]
    factory: Callable[[Path | None], Any]
    how_to_get: str
    licence: str = ""

    def missing_files(self) -> tuple[Path, ...]:
        """Files this model needs that are not on disk."""
        return tuple(p for p in self.files() if not p.is_file())

    @property
    def available(self) -> bool:
        """True when every file is present."""
        return not self.missing_files()


def _hog(_: Path | None) -> Any:
    from facial_emotion.vision.detector import HogFaceDetector

    return HogFaceDetector()


def _landmarks(model: Literal["68", "5"]) -> Callable[[Path | None], Any]:
    def build(_: Path | None) -> Any:
        from facial_emotion.vision.landmarks import DlibLandmarkPredictor

        return DlibLandmarkPredictor(model)

    return build


def _keras_runtime(path: Path, why: str) -> Any:
    """The Keras runtime for a model LiteRT cannot run (imports TensorFlow: seconds and hundreds of MB)."""
    from facial_emotion.vision.classifier import ModelLoadError

    try:
        from facial_emotion.training.runtime import KerasEmotionClassifier, import_tensorflow

        import_tensorflow()
    except ImportError as exc:
        raise ModelLoadError(path, f"{why}, and the Keras runtime needs TensorFlow ({exc})") from exc
    log.info("emotion model %s: %s; loading it with TensorFlow (slower start)", path, why)
    return KerasEmotionClassifier(path)


def _emotion(path: Path | None) -> Any:
    """The emotion stage: LiteRT on the model's verified twin; Keras only for a .keras file without one."""
    from facial_emotion.vision.classifier import ModelLoadError, TwinUnavailableError, load_emotion_classifier

    model = path or DEFAULT_EMOTION_MODEL
    runtime = os.environ.get(RUNTIME_ENV, "auto").strip().lower() or "auto"
    if runtime not in RUNTIMES:
        raise ModelLoadError(model, f"{RUNTIME_ENV} must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if runtime == "keras":
        return _keras_runtime(model, f"{RUNTIME_ENV}=keras")
    try:
        return load_emotion_classifier(model)
    except TwinUnavailableError as exc:
        if runtime == "litert":
            raise
        return _keras_runtime(model, exc.reason)


_DLIB_HOW: Final = "install the face-recognition-models package (pip install face-recognition-models)"
_IBUG: Final = "dlib landmark model trained on iBUG 300-W: no commercial use"

REGISTRY: Final[tuple[ModelSpec, ...]] = (
    ModelSpec("hog", "detector", "dlib HOG", lambda: (), _hog, "part of dlib", "dlib: Boost Software License"),
    ModelSpec(
        "68",
        "landmarks",
        "68-point (dlib)",
        lambda: (predictor_path("68"),),
        _landmarks("68"),
        _DLIB_HOW,
        _IBUG,
    ),
    ModelSpec(
        "5",
        "landmarks",
        "5-point (dlib, lighter; no blinks)",
        lambda: (predictor_path("5"),),
        _landmarks("5"),
        _DLIB_HOW,
        _IBUG,
    ),
    ModelSpec(
        "fer2013",
        "emotion",
        "Our FER2013 Xception",
        lambda: (DEFAULT_EMOTION_MODEL,),
        _emotion,
        "the model ships in models/; retrain with `facial-emotion train`",
        "trained on FER2013 (Kaggle research terms)",
    ),
)

DEFAULTS: Final[dict[Slot, str | None]] = {"detector": "hog", "landmarks": "68", "emotion": "fer2013"}


def specs_for(slot: Slot) -> tuple[ModelSpec, ...]:
    """Every registered choice for a slot, in menu order."""
    return tuple(s for s in REGISTRY if s.slot == slot)


def get_spec(slot: Slot, key: str) -> ModelSpec:
    """The spec of a slot's choice, or KeyError naming the valid keys."""
    for spec in specs_for(slot):
        if spec.key == key:
            return spec
    valid = ", ".join(s.key for s in specs_for(slot))
    raise KeyError(f"no {slot} model {key!r}; choose one of: {valid}")
