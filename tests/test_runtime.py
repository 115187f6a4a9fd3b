"""The LiteRT runtime: no TensorFlow in the live path, the twin's checksum, export, and the Keras fallback."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facial_emotion.paths import DEFAULT_EMOTION_MODEL
from facial_emotion.registry import RUNTIME_ENV, get_spec
from facial_emotion.vision.classifier import (
    LiteRTEmotionClassifier,
    ModelLoadError,
    TwinUnavailableError,
    load_emotion_classifier,
    read_twin_record,
)

from .conftest import read_fer_rows

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = DEFAULT_EMOTION_MODEL


@pytest.fixture(autouse=True)
def _default_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RUNTIME_ENV, raising=False)


def _public_faces(shared_data: Path, n: int) -> np.ndarray:
    """PublicTest faces (PrivateTest is kept for the final evaluation)."""
    faces, _ = read_fer_rows(shared_data / "fer2013" / "fer2013.csv.gz", n, usage="PublicTest")
    return faces


def _copy_model(src: Path, folder: Path, *, suffixes: tuple[str, ...] = (".keras", ".tflite", ".json")) -> Path:
    """The model's files copied into folder (under the same stem); the copied .keras path."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in suffixes:
        if src.with_suffix(suffix).is_file():
            shutil.copy(src.with_suffix(suffix), folder / (src.stem + suffix))
    return folder / (src.stem + ".keras")


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _emotion_stage(path: Path) -> object:
    return get_spec("emotion", "fer2013").factory(path)


def test_analyze_runs_without_tensorflow_and_finds_the_happy_face(shared_data: Path, tmp_path: Path) -> None:
    """The real command on a photo in a fresh interpreter: face and emotion found, TensorFlow never imported."""
    out = tmp_path / "out"
    code = (
        "import json, sys\n"
        "from facial_emotion.cli import main\n"
        f"rc = main(['analyze', {str(shared_data / 'faces-pyfeat' / 'single_face.jpg')!r}, '--no-speech', "
        f"'--out', {str(out)!r}])\n"
        "print(json.dumps({'rc': rc, 'loaded': sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != RUNTIME_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "loaded": []}, proc.stderr
    with open(out / "frames.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["emotion"] == "happy" and float(row["emotion_prob"]) > 0.5, row
    left, top, right, bottom = (int(row[k]) for k in ("left", "top", "right", "bottom"))
    assert 100 < right - left < 400 and 100 < bottom - top < 400, row  # one face, a face's size
    assert (out / "annotated.jpg").stat().st_size > 0, "the annotated frame is written"


def test_live_pipeline_builds_without_tensorflow(shared_data: Path) -> None:
    """The pipeline the app's engine runs: its emotion stage is LiteRT on the shipped twin, no TensorFlow."""
    code = (
        "import sys, cv2\n"
        "from facial_emotion.pipeline import Pipeline\n"
        "from facial_emotion.settings import Settings\n"
        "from facial_emotion.types import Frame\n"
        "pipe = Pipeline(Settings().for_stills())\n"
        f"image = cv2.imread({str(shared_data / 'faces-pyfeat' / 'multi_face.jpg')!r})\n"
        "result = pipe.process(Frame(image, 0, 0.0))\n"
        "print(len(pipe.load_errors), sum(f.emotion is not None for f in result.faces),"
        " sorted(m for m in ('tensorflow', 'keras', 'ai_edge_litert') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != RUNTIME_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    errors, faces, loaded = proc.stdout.strip().splitlines()[-1].split(" ", 2)
    assert errors == "0" and int(faces) >= 2 and loaded == "['ai_edge_litert']", proc.stdout


def test_litert_answers_equal_keras_on_real_faces(shared_data: Path) -> None:
    """The shipped twin gives the Keras model's probabilities within 1e-4, at every batch size."""
    from facial_emotion.training.runtime import KerasEmotionClassifier

    faces = _public_faces(shared_data, 96)
    fast = load_emotion_classifier(SHIPPED)
    assert isinstance(fast, LiteRTEmotionClassifier)
    reference = KerasEmotionClassifier(SHIPPED).classify(faces)
    got = np.concatenate([fast.classify(faces[i : i + n]) for i, n in ((0, 1), (1, 32), (33, 5), (38, 58))])
    assert got.shape == (96, 7)
    np.testing.assert_allclose(got, reference, atol=1e-4)
    assert fast.classify(faces[:0]).shape == (0, 7)


def test_shipped_twin_matches_its_recorded_checksum() -> None:
    """models/…json carries the sha256 of the committed .tflite and of the .keras it came from."""
    record = read_twin_record(SHIPPED)
    assert record is not None and record.file == SHIPPED.with_suffix(".tflite").name
    twin = SHIPPED.with_suffix(".tflite").read_bytes()
    assert record.sha256 == hashlib.sha256(twin).hexdigest() and record.size_bytes == len(twin)
    assert record.keras_sha256 == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    assert record.precision == "float32"


def test_a_tampered_twin_is_refused_naming_it(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One flipped byte in the .tflite: a ModelLoadError naming the twin and `facial-emotion export`; exit 2."""
    from facial_emotion.cli import main

    model = _copy_model(SHIPPED, tmp_path / "m")
    twin = model.with_suffix(".tflite")
    _flip_byte(twin, twin.stat().st_size // 2)
    with pytest.raises(ModelLoadError, match="does not match the sha256 recorded at export") as caught:
        load_emotion_classifier(model)
    assert str(twin) in str(caught.value) and "facial-emotion export --model" in str(caught.value)
    assert not isinstance(caught.value, TwinUnavailableError), "a bad twin is refused, not replaced by Keras"
    photo = shared_data / "faces-pyfeat" / "single_face.jpg"
    out = tmp_path / "out"
    assert main(["analyze", str(photo), "--no-speech", "--out", str(out), "--model", str(model)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot load emotion model {model} (given with --model)")
    assert "does not match the sha256" in lines[0] and not out.exists()


def test_a_stale_twin_of_another_keras_file_is_refused(tiny_emotion_model: Path, tmp_path: Path) -> None:
    """A .keras file replaced after export (a retrain without export) no longer owns the twin beside it."""
    model = _copy_model(SHIPPED, tmp_path / "m")
    shutil.copy(tiny_emotion_model, model)
    with pytest.raises(ModelLoadError, match="exported from another version"):
        load_emotion_classifier(model)


def test_export_records_a_checksum_that_load_accepts(
    tiny_emotion_model: Path, shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No twin: the Keras runtime, with a log line. After export: LiteRT, the same answers, the JSON kept."""
    from facial_emotion.training.export import export_tflite
    from facial_emotion.training.runtime import KerasEmotionClassifier

    model = tmp_path / "mine.keras"
    shutil.copy(tiny_emotion_model, model)
    model.with_suffix(".json").write_text(json.dumps({"model": "mine.keras", "evaluation": {"PublicTest": 0.5}}))
    with pytest.raises(TwinUnavailableError, match=r"no mine\.tflite twin"):
        load_emotion_classifier(model)
    with caplog.at_level(logging.INFO, logger="facial_emotion.registry"):
        slow = _emotion_stage(model)
    assert isinstance(slow, KerasEmotionClassifier)
    assert "loading it with TensorFlow" in caplog.text

    done = export_tflite(model)
    assert done.tflite_path == model.with_suffix(".tflite") and done.max_difference <= 1e-4
    data = json.loads(model.with_suffix(".json").read_text())
    assert data["evaluation"] == {"PublicTest": 0.5}, "export keeps the model's other metadata"
    assert data["tflite"]["sha256"] == hashlib.sha256(done.tflite_path.read_bytes()).hexdigest()
    assert data["tflite"]["keras_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    fast = _emotion_stage(model)
    assert isinstance(fast, LiteRTEmotionClassifier)
    faces = _public_faces(shared_data, 6)
    reference = slow.classify(faces)
    for n in (1, 6, 3):  # the interpreter resizes to each frame's face count
        np.testing.assert_allclose(fast.classify(faces[:n]), reference[:n], atol=1e-4)


def test_export_command_writes_the_pair(tiny_emotion_model: Path, tmp_path: Path) -> None:
    """`facial-emotion export --model X.keras` writes X.tflite and its record in X.json (created)."""
    from facial_emotion.cli import main

    model = tmp_path / "cmd.keras"
    shutil.copy(tiny_emotion_model, model)
    assert main(["export", "--model", str(model)]) == 0
    assert json.loads(model.with_suffix(".json").read_text())["model"] == "cmd.keras"
    assert isinstance(load_emotion_classifier(model), LiteRTEmotionClassifier)
    assert main(["export", "--model", str(tmp_path / "nope.keras")]) == 2


def test_a_mixed_precision_model_is_exported_in_float32(shared_data: Path, tmp_path: Path) -> None:
    """A mixed_bfloat16 model is rebuilt in float32 before conversion: float32 in, same answers as its weights."""
    keras = pytest.importorskip("keras")
    from facial_emotion.training.export import export_tflite

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((48, 48, 1))
        x = keras.layers.Rescaling(1 / 255.0)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(x))
        outputs = keras.layers.Dense(7, activation="softmax", dtype="float32")(x)
        mixed = keras.Model(inputs, outputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    path = tmp_path / "mixed.keras"
    mixed.save(path)
    done = export_tflite(path)
    assert done.rebuilt_float32 and done.record.precision == "float32"
    fast = load_emotion_classifier(path)
    faces = _public_faces(shared_data, 16)
    got = fast.classify(faces)
    bf16 = np.asarray(mixed(faces[..., None].astype("float32"), training=False))
    np.testing.assert_allclose(got, bf16, atol=2e-2)  # bfloat16 keeps 3 significant digits


def test_a_tflite_given_directly_runs_and_is_checked_when_recorded(tmp_path: Path) -> None:
    """--model x.tflite: run as given without a record; with one, a mismatch is refused."""
    alone = tmp_path / "alone" / "model.tflite"
    alone.parent.mkdir()
    shutil.copy(SHIPPED.with_suffix(".tflite"), alone)
    assert isinstance(_emotion_stage(alone), LiteRTEmotionClassifier)
    model = _copy_model(SHIPPED, tmp_path / "pair")
    twin = model.with_suffix(".tflite")
    assert isinstance(_emotion_stage(twin), LiteRTEmotionClassifier)
    _flip_byte(twin, 100)
    with pytest.raises(ModelLoadError, match="does not match the sha256"):
        _emotion_stage(twin)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(ModelLoadError, match="LiteRT cannot read it"):
        _emotion_stage(junk)


def test_a_twin_without_a_record_falls_back_to_keras(tmp_path: Path) -> None:
    """A twin exported before checksums were recorded is not trusted: the Keras runtime runs the .keras file."""
    from facial_emotion.training.runtime import KerasEmotionClassifier

    model = _copy_model(SHIPPED, tmp_path / "old", suffixes=(".keras", ".tflite"))
    with pytest.raises(TwinUnavailableError, match="no checksum recorded"):
        load_emotion_classifier(model)
    assert isinstance(_emotion_stage(model), KerasEmotionClassifier)


def test_the_runtime_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FACIAL_EMOTION_RUNTIME: keras forces the old path, litert forbids it, anything else is an error."""
    from facial_emotion.training.runtime import KerasEmotionClassifier

    monkeypatch.setenv(RUNTIME_ENV, "keras")
    assert isinstance(_emotion_stage(SHIPPED), KerasEmotionClassifier)
    monkeypatch.setenv(RUNTIME_ENV, "litert")
    assert isinstance(_emotion_stage(SHIPPED), LiteRTEmotionClassifier)
    bare = _copy_model(SHIPPED, tmp_path / "bare", suffixes=(".keras",))
    with pytest.raises(TwinUnavailableError):
        _emotion_stage(bare)
    monkeypatch.setenv(RUNTIME_ENV, "tensorflow")
    with pytest.raises(ModelLoadError, match="must be one of auto, litert, keras"):
        _emotion_stage(SHIPPED)
