"""How the emotion model breaks: accuracy under noise, FGSM, blur, brightness and contrast shifts.

The seed study's protocol, for any model that takes (N,48,48,1) raw gray faces (0-255) and gives
(N,7) probabilities. Every perturbation works in gray levels on the 0-255 scale and is clipped
back into it; random ones draw from a generator seeded per (perturbation, level), so a figure
does not change when other levels are added. FGSM steps along the sign of the gradient of the
cross-entropy of the true label, taken once at the clean face (it does not depend on eps).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from facial_emotion.training.data import FaceSet
from facial_emotion.training.evaluate import confusion_matrix, predict_probabilities

log = logging.getLogger(__name__)


class Perturbation(StrEnum):
    """The ways a face is spoiled; each has one level axis."""

    NOISE = "noise"
    FGSM = "fgsm"
    SIGN_NOISE = "sign_noise"
    BLUR = "blur"
    BRIGHTNESS = "brightness"
    CONTRAST = "contrast"


TITLES: Final[dict[Perturbation, str]] = {
    Perturbation.NOISE: "Gaussian noise",
    Perturbation.FGSM: "FGSM adversarial step",
    Perturbation.SIGN_NOISE: "random sign noise (FGSM's control: same eps, random direction)",
    Perturbation.BLUR: "Gaussian blur",
    Perturbation.BRIGHTNESS: "brightness shift",
    Perturbation.CONTRAST: "contrast scaling about each face's mean",
}
LEVEL_NAMES: Final[dict[Perturbation, str]] = {
    Perturbation.NOISE: "sigma (gray levels)",
    Perturbation.FGSM: "eps (gray levels)",
    Perturbation.SIGN_NOISE: "eps (gray levels)",
    Perturbation.BLUR: "sigma (px)",
    Perturbation.BRIGHTNESS: "shift (gray levels)",
    Perturbation.CONTRAST: "factor",
}
IDENTITY_LEVEL: Final[dict[Perturbation, float]] = {
    Perturbation.NOISE: 0.0,
    Perturbation.FGSM: 0.0,
    Perturbation.SIGN_NOISE: 0.0,
    Perturbation.BLUR: 0.0,
    Perturbation.BRIGHTNESS: 0.0,
    Perturbation.CONTRAST: 1.0,
}
"""The level of each perturbation that leaves a face unchanged."""


@dataclass(frozen=True, slots=True)
class RobustnessOptions:
    """The levels to measure (the seed study's ranges by default), the seed and the batch size."""

    noise_sigmas: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 30.0, 50.0)
    fgsm_eps: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0)
    blur_sigmas: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
    brightness_shifts: tuple[float, ...] = (-60.0, -40.0, -20.0, 0.0, 20.0, 40.0, 60.0)
    contrast_factors: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    sign_noise: bool = True
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        for name in ("noise_sigmas", "fgsm_eps", "blur_sigmas"):
            if any(v < 0 for v in getattr(self, name)):
                raise ValueError(f"{name} must be >= 0")
        if any(v <= 0 for v in self.contrast_factors):
            raise ValueError("contrast_factors must be > 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")

    def levels(self, kind: Perturbation) -> tuple[float, ...]:
        """The levels measured for one perturbation (empty: not measured)."""
        return {
            Perturbation.NOISE: self.noise_sigmas,
            Perturbation.FGSM: self.fgsm_eps,
            Perturbation.SIGN_NOISE: self.fgsm_eps if self.sign_noise else (),
            Perturbation.BLUR: self.blur_sigmas,
            Perturbation.BRIGHTNESS: self.brightness_shifts,
            Perturbation.CONTRAST: self.contrast_factors,
        }[kind]


@dataclass(frozen=True, slots=True)
class RobustnessPoint:
    """Accuracy and macro recall (mean over classes present) at one level."""

    level: float
    accuracy: float
    macro_recall: float


@dataclass(frozen=True, slots=True)
class RobustnessCurve:
    """One perturbation's figures, level by level in the order measured."""

    kind: Perturbation
    points: tuple[RobustnessPoint, ...]

    def at(self, level: float) -> RobustnessPoint:
        """The point measured at ``level`` (KeyError if it was not)."""
        for point in self.points:
            if point.level == level:
                return point
        raise KeyError(f"{self.kind}: level {level} was not measured")


@dataclass(frozen=True, slots=True)
class RobustnessReport:
    """All curves for one model on one set of faces."""

    source_name: str
    model: str
    n: int
    clean_accuracy: float
    curves: tuple[RobustnessCurve, ...]
    seed: int
    seconds: float

    def curve(self, kind: Perturbation | str) -> RobustnessCurve:
        """The curve of one perturbation (KeyError if it was not measured)."""
        for curve in self.curves:
            if curve.kind == kind:
                return curve
        raise KeyError(f"{kind} was not measured")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures: per perturbation its levels, accuracy and macro recall (fractions)."""
        return {
            "source": self.source_name,
            "model": self.model,
            "n": self.n,
            "clean_accuracy": round(self.clean_accuracy, 5),
            "seed": self.seed,
            "seconds": round(self.seconds, 2),
            "perturbations": {
                str(c.kind): {
                    "title": TITLES[c.kind],
                    "level": LEVEL_NAMES[c.kind],
                    "levels": [p.level for p in c.points],
                    "accuracy": [round(p.accuracy, 5) for p in c.points],
                    "macro_recall": [round(p.macro_recall, 5) for p in c.points],
                }
                for c in self.curves
            },
        }

    def to_json(self) -> str:
        """The figures as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _as_float(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float32)


def add_gaussian_noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Faces plus zero-mean Gaussian noise of ``sigma`` gray levels, clipped to 0-255 (float32)."""
    x = _as_float(images)
    noise = rng.normal(0.0, 1.0, size=x.shape).astype(np.float32) * np.float32(sigma)
    return np.clip(x + noise, 0.0, 255.0)


def add_sign_noise(images: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    """Faces plus ±eps at every pixel, the sign drawn at random, clipped to 0-255 (float32)."""
    x = _as_float(images)
    signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=x.shape)
    return np.clip(x + np.float32(eps) * signs, 0.0, 255.0)


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Each face blurred with a Gaussian of ``sigma`` pixels (edges reflected); sigma 0 leaves it."""
    x = _as_float(images)
    if sigma == 0:
        return x.copy()
    return np.stack([cv2.GaussianBlur(face, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT_101) for face in x])


def shift_brightness(images: np.ndarray, shift: float) -> np.ndarray:
    """Faces with ``shift`` gray levels added, clipped to 0-255 (float32)."""
    return np.clip(_as_float(images) + np.float32(shift), 0.0, 255.0)


def scale_contrast(images: np.ndarray, factor: float) -> np.ndarray:
    """Faces stretched by ``factor`` about each face's mean gray level, clipped to 0-255 (float32)."""
    x = _as_float(images)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return np.clip((x - mean) * np.float32(factor) + mean, 0.0, 255.0)


def fgsm(images: np.ndarray, gradients: np.ndarray, eps: float) -> np.ndarray:
    """The fast gradient sign step: faces + eps * sign(loss gradient), clipped to 0-255 (float32)."""
    return np.clip(_as_float(images) + np.float32(eps) * np.sign(gradients).astype(np.float32), 0.0, 255.0)


def _logits_function(model: Any) -> Any:
    """A function from input batch to logits: exact for a final softmax Dense, log-probabilities otherwise."""
    import keras
    import tensorflow as tf

    last = model.layers[-1]
    if isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", "") == "softmax":
        # Logits before the softmax, so a saturated probability does not zero the gradient; float32
        # throughout, as a mixed_bfloat16 model's features are bfloat16 while its output layer is not.
        features = keras.Model(model.input, last.input)

        def logits(x: Any) -> Any:
            h = tf.cast(features(x, training=False), tf.float32)
            return tf.matmul(h, tf.cast(last.kernel, tf.float32)) + tf.cast(last.bias, tf.float32)

        return logits
    log.warning("%s does not end in a softmax Dense layer: gradients taken through log-probabilities", model.name)
    return lambda x: tf.math.log(tf.clip_by_value(model(x, training=False), 1e-12, 1.0))


def loss_gradients(model: Any, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """(N,48,48) gradient of each face's cross-entropy against its true label, per input gray level."""
    import tensorflow as tf

    logits_of = _logits_function(model)

    @tf.function(
        input_signature=[tf.TensorSpec([None, 48, 48, 1], tf.float32), tf.TensorSpec([None], tf.int64)],
        reduce_retracing=True,
    )
    def gradient(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits_of(x))
        return tape.gradient(loss, x)

    x = _as_float(images)[..., None]
    y = np.asarray(labels, dtype=np.int64)
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, len(x), batch_size):
        stop = start + batch_size
        out[start:stop] = gradient(tf.constant(x[start:stop]), tf.constant(y[start:stop])).numpy()
    return out[..., 0]


def saliency_maps(model: Any, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,48,48) input-gradient saliency in [0,1]: |d loss / d pixel|, lightly smoothed, per-face max 1."""
    magnitude = np.abs(loss_gradients(model, images, labels))
    smooth = gaussian_blur(magnitude, 1.0)
    peak = smooth.max(axis=(1, 2), keepdims=True)
    return np.divide(smooth, peak, out=np.zeros_like(smooth), where=peak > 0)


def penultimate_features(model: Any, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """(N,D) embeddings: the input of the model's last layer (the features its classifier reads)."""
    import keras

    features = keras.Model(model.input, model.layers[-1].input)
    x = _as_float(images)[..., None]
    return np.concatenate(
        [np.asarray(features(x[s : s + batch_size], training=False)) for s in range(0, len(x), batch_size)]
    ).astype(np.float32)


def _point(level: float, probs: np.ndarray, labels: np.ndarray) -> RobustnessPoint:
    matrix = confusion_matrix(labels, probs.argmax(axis=1))
    support = matrix.sum(axis=1)
    present = support > 0
    recall = np.diag(matrix)[present] / support[present]
    n = max(int(matrix.sum()), 1)
    return RobustnessPoint(float(level), float(np.trace(matrix) / n), float(recall.mean()) if present.any() else 0.0)


def measure_robustness(
    model: Any,
    faces: FaceSet,
    *,
    options: RobustnessOptions | None = None,
    source_name: str = "",
    model_name: str = "",
) -> RobustnessReport:
    """Accuracy and macro recall of a loaded model on ``faces`` under every perturbation in ``options``."""
    options = options or RobustnessOptions()
    if len(faces) == 0:
        raise ValueError("no faces to measure robustness on")
    start = time.perf_counter()
    images, labels = faces.images, faces.labels
    clean = _point(0.0, predict_probabilities(model, images, batch_size=options.batch_size), labels)
    gradients = loss_gradients(model, images, labels, batch_size=options.batch_size) if options.fgsm_eps else None
    curves = []
    for index, kind in enumerate(Perturbation):
        points = []
        for level_index, level in enumerate(options.levels(kind)):
            rng = np.random.default_rng([options.seed, index, level_index])
            if kind is Perturbation.NOISE:
                spoiled = add_gaussian_noise(images, level, rng)
            elif kind is Perturbation.FGSM:
                spoiled = fgsm(images, gradients, level)
            elif kind is Perturbation.SIGN_NOISE:
                spoiled = add_sign_noise(images, level, rng)
            elif kind is Perturbation.BLUR:
                spoiled = gaussian_blur(images, level)
            elif kind is Perturbation.BRIGHTNESS:
                spoiled = shift_brightness(images, level)
            else:
                spoiled = scale_contrast(images, level)
            probs = predict_probabilities(model, spoiled, batch_size=options.batch_size)
            points.append(_point(level, probs, labels))
            log.info("%s %s %g: accuracy %.4f", kind, LEVEL_NAMES[kind], level, points[-1].accuracy)
        if points:
            curves.append(RobustnessCurve(kind, tuple(points)))
    return RobustnessReport(
        source_name=source_name,
        model=model_name,
        n=len(faces),
        clean_accuracy=clean.accuracy,
        curves=tuple(curves),
        seed=options.seed,
        seconds=time.perf_counter() - start,
    )


def format_robustness(report: RobustnessReport) -> str:
    """One plain-text table per perturbation: level, accuracy, macro recall, change from clean."""
    lines = [
        f"robustness on {report.source_name}: {report.n} faces, clean accuracy {report.clean_accuracy:.2%}"
        f" (seed {report.seed})"
    ]
    for curve in report.curves:
        name = LEVEL_NAMES[curve.kind]
        lines += ["", f"{TITLES[curve.kind]}:", f"{name:>20} {'accuracy':>9} {'macro recall':>13} {'change':>8}"]
        for p in curve.points:
            change = (p.accuracy - report.clean_accuracy) * 100
            lines.append(f"{p.level:>20g} {p.accuracy:>9.2%} {p.macro_recall:>13.2%} {change:>+7.2f}pp")
    return "\n".join(lines)


def save_robustness(report: RobustnessReport, *, json_path: Path | None, record_path: Path | None) -> list[Path]:
    """Write the JSON and (if given) add the figures under ``robustness`` in a model's settings record."""
    from facial_emotion.atomic import write_json_atomic, write_text_atomic

    written = []
    if json_path is not None:
        json_path = Path(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_text_atomic(json_path, report.to_json(), mode=0o644))
    if record_path is not None:
        record_path = Path(record_path)
        data = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
        data.setdefault("robustness", {})[report.source_name] = report.to_dict()
        written.append(write_json_atomic(record_path, data, mode=0o644))
    return written
