"""Alignment framing against FER2013, and the real Keras classifier (the LiteRT one: test_runtime.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facial_emotion.training.runtime import KerasEmotionClassifier
from facial_emotion.types import EMOTIONS
from facial_emotion.vision.align import align_face, fer_eye_template
from facial_emotion.vision.classifier import EmotionSmoother, ModelLoadError
from facial_emotion.vision.detector import HogFaceDetector
from facial_emotion.vision.landmarks import DlibLandmarkPredictor, eye_centers

from .conftest import read_fer_rows


def _aligned_faces(shared_data: Path) -> list[np.ndarray]:
    detector = HogFaceDetector(max_width_px=None, upsample=1)
    predictor = DlibLandmarkPredictor("68")
    faces = []
    names = [*sorted((shared_data / "faces-dlib").glob("*.jpg")), shared_data / "faces-pyfeat" / "multi_face.jpg"]
    for path in names:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        for box in detector.detect(gray):
            faces.append(align_face(gray, predictor.predict(gray, box)))
    return faces


def test_aligned_eyes_land_on_the_fer_template(shared_data: Path) -> None:
    gray = cv2.imread(str(shared_data / "faces-pyfeat" / "single_face.jpg"), cv2.IMREAD_GRAYSCALE)
    predictor = DlibLandmarkPredictor("68")
    box = HogFaceDetector(max_width_px=None).detect(gray)[0]
    # rotate the photo 15 degrees: alignment must bring the eyes level again
    h, w = gray.shape
    rotated = cv2.warpAffine(gray, cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0), (w, h))
    for image in (gray, rotated):
        rbox = box if image is gray else HogFaceDetector(max_width_px=None, upsample=1).detect(image)[0]
        face = align_face(image, predictor.predict(image, rbox))
        assert face.shape == (48, 48) and face.dtype == np.uint8
        # refit landmarks on the aligned face (upscaled) and compare the eyes with the template
        big = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
        from facial_emotion.types import Box

        left, right = eye_centers(predictor.predict(big, Box(8, 8, 184, 184)) / 4.0)
        want_left, want_right = fer_eye_template()
        assert np.linalg.norm(left - want_left) < 2.5 and np.linalg.norm(right - want_right) < 2.5


def test_mean_aligned_face_matches_mean_fer_face(shared_data: Path) -> None:
    aligned = _aligned_faces(shared_data)
    assert len(aligned) >= 40
    fer, _ = read_fer_rows(shared_data / "fer2013" / "fer2013.csv.gz", 3000)
    ours = np.mean(aligned, axis=0)
    theirs = fer.mean(axis=0)
    corr = np.corrcoef(ours.ravel(), theirs.ravel())[0, 1]
    # a crop shifted by 6 px, or twice too loose, gives a visibly lower correlation
    shifted = np.roll(ours, 6, axis=0)
    loose = np.pad(cv2.resize(ours, (24, 24)), 12, mode="edge")
    assert corr > 0.85, corr
    assert corr > np.corrcoef(shifted.ravel(), theirs.ravel())[0, 1] + 0.05
    assert corr > np.corrcoef(loose.ravel(), theirs.ravel())[0, 1] + 0.05


def test_classifier_batches_all_faces(tiny_emotion_model: Path, shared_data: Path) -> None:
    classifier = KerasEmotionClassifier(tiny_emotion_model)
    faces, _ = read_fer_rows(shared_data / "fer2013" / "fer2013.csv.gz", 5, usage="PublicTest")
    probs = classifier.classify(faces)
    assert probs.shape == (5, len(EMOTIONS))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert classifier.classify(faces[:0]).shape == (0, 7)
    # a batch gives the same answer as one face at a time (same compiled function)
    one = np.concatenate([classifier.classify(faces[i : i + 1]) for i in range(5)])
    assert np.allclose(one, probs, atol=1e-5)
    reference = classifier.model(faces[..., None].astype("float32"), training=False)
    assert np.allclose(np.asarray(reference), probs, atol=1e-5)


def test_classifier_rejects_missing_and_wrong_models(tmp_path: Path) -> None:
    import keras

    with pytest.raises(ModelLoadError, match="not found"):
        KerasEmotionClassifier(tmp_path / "nope.keras")
    inputs = keras.Input((64, 64, 3))
    wrong = keras.Model(inputs, keras.layers.Dense(7)(keras.layers.Flatten()(inputs)))
    wrong.save(tmp_path / "wrong.keras")
    with pytest.raises(ModelLoadError, match="expected"):
        KerasEmotionClassifier(tmp_path / "wrong.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="cannot load"):
        KerasEmotionClassifier(tmp_path / "junk.keras")


def test_safe_mode_refuses_code_in_model_files(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    with pytest.raises(ModelLoadError, match="cannot load"):
        KerasEmotionClassifier(tmp_path / "lambda.keras")


def test_smoother_averages_per_track() -> None:
    smoother = EmotionSmoother(alpha=0.5)
    a = np.eye(7)[3]
    b = np.eye(7)[0]
    assert np.allclose(smoother.smooth(1, a), a)
    assert np.allclose(smoother.smooth(1, b), 0.5 * a + 0.5 * b)
    assert np.allclose(smoother.smooth(2, b), b), "tracks are independent"
    smoother.forget({2})
    assert np.allclose(smoother.smooth(1, b), b)


def make_bad_models(folder: Path) -> list[tuple[Path, str]]:
    """Real bad model files, each with the reason the loader must give; built here, at test time."""
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.keras"
    empty.write_bytes(b"")
    noise = folder / "random.keras"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    shipped = Path(__file__).resolve().parents[1] / "models" / "emotion_xception_fer2013.keras"
    truncated = folder / "truncated.keras"
    truncated.write_bytes(shipped.read_bytes()[: shipped.stat().st_size // 2])
    inputs = keras.Input((32, 32, 1))
    small = folder / "input32.keras"
    keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs))).save(small)
    inputs = keras.Input((48, 48, 1))
    five = folder / "five_outputs.keras"
    keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs))).save(five)
    logits = folder / "no_softmax.keras"
    keras.Model(inputs, keras.layers.Dense(7)(keras.layers.Flatten()(inputs))).save(logits)
    directory = folder / "a_folder.keras"
    directory.mkdir()
    return [
        (empty, "the file is empty"),
        (noise, "not a whole zip archive"),
        (truncated, "not a whole zip archive"),
        (small, r"it takes \(32, 32, 1\)"),
        (five, r"gives \(5,\)"),
        (logits, "not probabilities"),
        (directory, "is a folder"),
    ]


def test_bad_model_files_name_the_file_and_the_real_reason(tmp_path: Path) -> None:
    """Each bad file gives its own reason and its own path: never "File not found" for a file that exists."""
    for path, reason in make_bad_models(tmp_path):
        with pytest.raises(ModelLoadError, match=reason) as caught:
            KerasEmotionClassifier(path)
        message = str(caught.value)
        assert caught.value.path == path, message
        assert message.startswith(f"cannot load emotion model {path}: "), message
        assert "not found" not in message.lower() and "fer2013" not in message, message


def test_native_log_noise_is_dropped_and_other_lines_kept(capfd: pytest.CaptureFixture[str]) -> None:
    """TensorFlow's absl INFO lines go; anything else written to fd 2 meanwhile is passed on."""
    import os

    from facial_emotion.vision.classifier import quiet_native_logs

    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") != "0"  # conftest (and the command) set it
    with quiet_native_logs():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1796161390.113242    7871 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"E0000 00:00:1.0 12 op.cc:1] a real error\nsomething else\n")
    assert capfd.readouterr().err == "E0000 00:00:1.0 12 op.cc:1] a real error\nsomething else\n"
