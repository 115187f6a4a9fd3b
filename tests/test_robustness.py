"""Robustness on real PublicTest faces with the shipped model: perturbations applied, FGSM adversarial, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facial_emotion.cli import main
from facial_emotion.paths import DEFAULT_EMOTION_MODEL, data_dir
from facial_emotion.training.data import FaceSet, read_fer2013_csv
from facial_emotion.training.robustness import (
    IDENTITY_LEVEL,
    TITLES,
    Perturbation,
    RobustnessOptions,
    RobustnessReport,
    add_gaussian_noise,
    add_sign_noise,
    fgsm,
    gaussian_blur,
    scale_contrast,
    shift_brightness,
)

FER_CSV = data_dir() / "fer2013" / "fer2013.csv.gz"
FACES = 200
needs_data = pytest.mark.skipif(not FER_CSV.is_file(), reason=f"shared FER2013 data missing ({FER_CSV})")
needs_model = pytest.mark.skipif(not DEFAULT_EMOTION_MODEL.is_file(), reason="shipped model missing")


@pytest.fixture(scope="module")
def public() -> FaceSet:
    """The first 200 PublicTest faces (development split: PrivateTest is for the final figures only)."""
    if not FER_CSV.is_file():
        pytest.skip("shared FER2013 data missing")
    return read_fer2013_csv(FER_CSV, usages=("PublicTest",), limit_per_usage=FACES)


@pytest.fixture(scope="module")
def model() -> Any:
    """The shipped Keras model."""
    from facial_emotion.training.runtime import load_keras_model

    return load_keras_model(DEFAULT_EMOTION_MODEL)


@pytest.fixture(scope="module")
def report(model: Any, public: FaceSet) -> RobustnessReport:
    """Every default perturbation measured once on the 200 faces."""
    from facial_emotion.training.robustness import measure_robustness

    return measure_robustness(model, public, source_name="PublicTest", model_name=DEFAULT_EMOTION_MODEL.name)


def test_perturbations_do_what_they_say_and_stay_in_range() -> None:
    gray = np.full((4, 48, 48), 128, np.uint8)
    face = np.tile(np.linspace(0, 255, 48, dtype=np.float32), (48, 1))[None]
    noisy = add_gaussian_noise(gray, 20.0, np.random.default_rng(0))
    assert noisy.dtype == np.float32 and abs(float(noisy.std()) - 20.0) < 0.5
    np.testing.assert_array_equal(noisy, add_gaussian_noise(gray, 20.0, np.random.default_rng(0)))
    assert add_gaussian_noise(gray, 500.0, np.random.default_rng(1)).min() == 0.0
    assert add_gaussian_noise(gray, 500.0, np.random.default_rng(1)).max() == 255.0
    signed = add_sign_noise(gray, 4.0, np.random.default_rng(0))
    assert set(np.unique(signed - 128.0)) == {-4.0, 4.0}
    np.testing.assert_array_equal(gaussian_blur(face, 0.0), face)
    assert gaussian_blur(face, 2.0)[0, :, 0].mean() > face[0, :, 0].mean() + 1  # the dark edge takes light in
    np.testing.assert_allclose(gaussian_blur(gray, 3.0), 128.0, atol=1e-4)
    np.testing.assert_array_equal(shift_brightness(gray, -60.0), 68.0)
    assert shift_brightness(face, 60.0).max() == 255.0
    stretched = scale_contrast(np.clip(face, 64, 192), 1.5)
    assert stretched.mean() == pytest.approx(np.clip(face, 64, 192).mean(), abs=1e-3)
    assert stretched.std() == pytest.approx(1.5 * np.clip(face, 64, 192).std(), rel=1e-3)
    gradients = np.random.default_rng(2).normal(size=face.shape)
    stepped = fgsm(face, gradients, 8.0)
    assert np.abs(stepped - face).max() == 8.0 and stepped.min() >= 0.0 and stepped.max() <= 255.0
    with pytest.raises(ValueError, match="contrast"):
        RobustnessOptions(contrast_factors=(0.0, 1.0))


@needs_data
@needs_model
@pytest.mark.slow
def test_unperturbed_levels_give_the_plain_evaluate_figures(
    model: Any, public: FaceSet, report: RobustnessReport
) -> None:
    from facial_emotion.training.evaluate import evaluate_faces

    plain = evaluate_faces(model, public).to_dict()
    assert report.n == FACES and report.clean_accuracy == pytest.approx(plain["accuracy"], abs=1e-5)
    for kind in Perturbation:
        point = report.curve(kind).at(IDENTITY_LEVEL[kind])
        assert point.accuracy == pytest.approx(plain["accuracy"], abs=1e-5), kind
        assert point.macro_recall == pytest.approx(plain["macro_recall"], abs=1e-5), kind


@needs_data
@needs_model
@pytest.mark.slow
def test_strong_perturbations_lower_accuracy(report: RobustnessReport) -> None:
    clean = report.clean_accuracy
    noise, attack = report.curve(Perturbation.NOISE), report.curve(Perturbation.FGSM)
    assert noise.at(50.0).accuracy < clean - 0.2
    assert attack.at(8.0).accuracy < clean - 0.3
    assert report.curve(Perturbation.BLUR).at(3.0).accuracy < clean - 0.1
    # more noise, fewer right: the curve falls (a point may tie its neighbour on 200 faces)
    assert noise.points[-1].accuracy < noise.points[2].accuracy < noise.points[0].accuracy


@needs_data
@needs_model
@pytest.mark.slow
def test_fgsm_hurts_more_than_random_signs_of_the_same_size(report: RobustnessReport) -> None:
    attack, control = report.curve(Perturbation.FGSM), report.curve(Perturbation.SIGN_NOISE)
    for eps in (1.0, 2.0, 4.0, 8.0):
        assert attack.at(eps).accuracy < control.at(eps).accuracy - 0.2, eps


@needs_data
@needs_model
@pytest.mark.slow
def test_report_json_holds_every_curve(report: RobustnessReport) -> None:
    data = json.loads(report.to_json())
    assert set(data["perturbations"]) == {str(k) for k in Perturbation}
    noise = data["perturbations"]["noise"]
    assert noise["levels"] == [0.0, 5.0, 10.0, 20.0, 30.0, 50.0]
    assert len(noise["accuracy"]) == len(noise["macro_recall"]) == 6
    assert data["n"] == FACES and data["source"] == "PublicTest"


@needs_data
@needs_model
@pytest.mark.slow
def test_evaluate_robustness_prints_the_tables_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", "--split", "PublicTest", "--limit", str(FACES), "--robustness"]
    assert main([*argv, "--json", str(tmp_path / "eval.json"), "--plot", str(tmp_path / "cm.png")]) == 0
    out = capsys.readouterr().out
    for title in TITLES.values():
        assert f"{title}:" in out
    assert f"robustness on PublicTest: {FACES} faces" in out
    plain = json.loads((tmp_path / "eval.json").read_text())
    robust = json.loads((tmp_path / "eval_robustness.json").read_text())
    assert robust["n"] == plain["n"] == FACES
    assert robust["perturbations"]["fgsm"]["accuracy"][0] == plain["accuracy"]
    assert robust["perturbations"]["fgsm"]["accuracy"][-1] < plain["accuracy"]

    small = tmp_path / "small.json"
    assert main(["evaluate", "--split", "PublicTest", "--limit", "20", "--robustness", "--out", str(small),
                 "--plot", str(tmp_path / "cm20.png")]) == 0  # fmt: skip
    assert json.loads(small.read_text())["n"] == 20
    assert f"wrote {small}" in capsys.readouterr().out


def test_gradients_and_embeddings_of_a_mixed_precision_model(public: FaceSet) -> None:
    """A mixed_bfloat16 model (``train --mixed-precision``) has bfloat16 features but a float32 output layer."""
    keras = pytest.importorskip("keras")
    from facial_emotion.training.model import build_xception
    from facial_emotion.training.robustness import loss_gradients, penultimate_features

    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_xception(stem_filters=4, block_filters=(8,), seed=3)
    finally:
        keras.mixed_precision.set_global_policy(before)
    gradients = loss_gradients(model, public.images[:8], public.labels[:8])
    assert gradients.shape == (8, 48, 48) and gradients.dtype == np.float32
    assert np.all(np.isfinite(gradients)) and np.abs(gradients).max() > 0
    features = penultimate_features(model, public.images[:8])
    assert features.dtype == np.float32 and features.shape[0] == 8


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--robustness", "--limit", "0"], "--limit"),
        (["--robustness", "--limit", "-5"], "--limit"),
        (["--out", "r.json"], "--robustness"),
        (["--robustness", "--tta"], "--tta"),
        (["--robustness", "--record", "--limit", "10"], "--record"),
    ],
)
def test_bad_evaluate_arguments_exit_2_with_one_line(
    extra: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--split", "PublicTest", *extra]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], captured.err
    assert captured.out == ""


@needs_data
def test_a_missing_model_with_robustness_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.keras"
    assert main(["evaluate", "--split", "PublicTest", "--robustness", "--model", str(missing)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "not found" in lines[0]


def test_importing_robustness_does_not_load_tensorflow() -> None:
    code = (
        "import sys, facial_emotion.training.robustness; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
