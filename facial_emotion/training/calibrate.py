"""Temperature scaling: probabilities that mean what they say, fitted on PublicTest.

The emotion model ends in ``Dense(7, softmax)``, so dividing its logits by a temperature T is
the same as dividing that layer's kernel and bias by T: the calibrated model is the same
graph with two arrays rescaled, loads with ``safe_mode`` and converts to TFLite unchanged,
and its top class (so its accuracy) is exactly the uncalibrated one's.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

log = logging.getLogger(__name__)

OUTPUT_LAYER: Final[str] = "emotion"
T_RANGE: Final[tuple[float, float]] = (0.05, 20.0)


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted temperature and the figures before and after it."""

    temperature: float
    fit_nll_before: float
    fit_nll_after: float


def _log_probs_at(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean NLL of the true labels under softmax(logits / temperature)."""
    logp = _log_probs_at(np.asarray(logits, dtype=np.float64), temperature)
    return float(-logp[np.arange(len(labels)), np.asarray(labels)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """The temperature in T_RANGE minimising NLL (golden-section search on log T; NLL is unimodal in it)."""
    logits = np.asarray(logits, dtype=np.float64)
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0

    def cost(log_t: float) -> float:
        return negative_log_likelihood(logits, labels, math.exp(log_t))

    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = cost(a), cost(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = cost(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = cost(b)
    temperature = math.exp((lo + hi) / 2.0)
    return Calibration(
        temperature=temperature,
        fit_nll_before=negative_log_likelihood(logits, labels, 1.0),
        fit_nll_after=negative_log_likelihood(logits, labels, temperature),
    )


def logits_from_probabilities(probs: np.ndarray) -> np.ndarray:
    """Logits up to a per-row constant (all softmax needs): the log of the probabilities."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))


def apply_temperature(model: Any, temperature: float) -> Any:
    """The same model with its output layer's kernel and bias divided by ``temperature`` (in place)."""
    layer = model.get_layer(OUTPUT_LAYER)
    if getattr(layer, "activation", None) is None or layer.activation.__name__ != "softmax":
        raise ValueError(f"layer {OUTPUT_LAYER!r} is not a softmax Dense layer: cannot fold a temperature in")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel / temperature, bias / temperature])
    return model


def calibrate_model(model_path: Path, out_path: Path, *, data: Path | None = None) -> Calibration:
    """Fit T on PublicTest for the model at ``model_path`` and save the calibrated model to ``out_path``."""
    import keras

    from facial_emotion.training.data import read_dataset
    from facial_emotion.training.evaluate import predict_probabilities
    from facial_emotion.training.train import _save_model_atomic, default_data_path

    faces = read_dataset(Path(data or default_data_path()), usages=("PublicTest",))
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    probs = predict_probabilities(model, faces.images)
    calibration = fit_temperature(logits_from_probabilities(probs), faces.labels)
    log.info(
        "temperature %.3f: PublicTest NLL %.4f -> %.4f",
        calibration.temperature,
        calibration.fit_nll_before,
        calibration.fit_nll_after,
    )
    _save_model_atomic(apply_temperature(model, calibration.temperature), Path(out_path))
    return calibration
