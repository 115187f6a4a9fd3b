"""Temperature scaling: the fit recovers a known temperature, folding it in keeps the top class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facial_emotion.training.calibrate import (
    apply_temperature,
    fit_temperature,
    logits_from_probabilities,
)
from facial_emotion.training.evaluate import expected_calibration_error


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_fit_recovers_the_temperature_labels_were_drawn_with() -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(0.0, 3.0, size=(20000, 7))
    true_t = 2.5
    probs = _softmax(logits / true_t)
    labels = np.array([rng.choice(7, p=p) for p in probs])
    fit = fit_temperature(logits, labels)
    assert fit.temperature == pytest.approx(true_t, rel=0.06)
    assert fit.fit_nll_after < fit.fit_nll_before
    # the overconfident probabilities have a large ECE; the calibrated ones a small one
    before = expected_calibration_error(_softmax(logits), labels)
    after = expected_calibration_error(_softmax(logits / fit.temperature), labels)
    assert before > 0.15 and after < 0.02


def test_ece_is_zero_for_honest_probabilities_and_large_for_liars() -> None:
    probs = np.tile([0.7, 0.3, 0, 0, 0, 0, 0], (1000, 1))
    labels = np.array([0] * 700 + [1] * 300)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-9)
    assert expected_calibration_error(probs, np.ones(1000, int)) == pytest.approx(0.7)


def test_folding_keeps_the_top_class_and_scales_the_logits(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    from facial_emotion.training.model import build_xception

    model = build_xception(stem_filters=4, block_filters=(8,), seed=3)
    x = np.random.default_rng(1).uniform(0, 255, size=(16, 48, 48, 1)).astype(np.float32)
    before = np.asarray(model(x, training=False))
    apply_temperature(model, 3.0)
    path = tmp_path / "calibrated.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    after = np.asarray(loaded(x, training=False))
    np.testing.assert_array_equal(before.argmax(1), after.argmax(1))
    np.testing.assert_allclose(after, _softmax(logits_from_probabilities(before) / 3.0), atol=1e-5)


@pytest.mark.slow
def test_shipped_model_calibrated_on_publictest(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keras = pytest.importorskip("keras")
    from facial_emotion.cli import main
    from facial_emotion.paths import DEFAULT_EMOTION_MODEL
    from facial_emotion.training.data import read_dataset
    from facial_emotion.training.evaluate import predict_probabilities
    from facial_emotion.vision.classifier import load_emotion_classifier

    out = tmp_path / "calibrated.keras"
    argv = ["calibrate", "--model", str(DEFAULT_EMOTION_MODEL), "--out", str(out)]
    assert main([*argv, "--data", str(shared_data / "fer2013" / "fer2013.csv.gz")]) == 0
    printed = capsys.readouterr().out
    temperature = float(printed.split("temperature ")[1].split()[0])
    assert 0.3 < temperature < 5.0 and "LiteRT twin" in printed
    assert out.with_suffix(".tflite").is_file(), "the app's runtime gets the calibrated model too"
    faces = read_dataset(shared_data / "fer2013" / "fer2013.csv.gz", usages=("PublicTest",))
    raw = keras.saving.load_model(DEFAULT_EMOTION_MODEL, compile=False, safe_mode=True)
    cal = keras.saving.load_model(out, compile=False, safe_mode=True)
    p_raw, p_cal = predict_probabilities(raw, faces.images), predict_probabilities(cal, faces.images)
    assert (p_raw.argmax(1) == p_cal.argmax(1)).all()
    twin = load_emotion_classifier(out).classify(faces.images[:256])
    np.testing.assert_allclose(twin, p_cal[:256], atol=1e-4)
    # NLL is what the fit minimises; ECE is what the app's percentages promise (the shipped model,
    # trained with label smoothing, is already near 2%: calibration must keep it small)
    assert expected_calibration_error(p_cal, faces.labels) < 0.04
