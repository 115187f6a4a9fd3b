"""A real --quick training run on a FER2013 slice, resumed, then loaded, evaluated and explained."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from facial_emotion.paths import data_dir
from facial_emotion.training.data import read_fer2013_csv
from facial_emotion.types import EMOTIONS

FER_CSV = data_dir() / "fer2013" / "fer2013.csv.gz"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FER_CSV.is_file(), reason=f"shared FER2013 data missing ({FER_CSV})"),
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two quick epochs on 1,500 faces, interrupted after the first and resumed."""
    from facial_emotion.training.train import STATE_NAME, TrainConfig, train

    out = tmp_path_factory.mktemp("run")
    config = TrainConfig.quick(data=str(FER_CSV), epochs=2, train_limit=1500, val_limit=400)
    first = train(config, out, max_epochs_now=1, verbose=0)
    state_after_first = json.loads((out / STATE_NAME).read_text())
    second = train(config, out, resume=True, verbose=0)
    return {"out": out, "config": config, "first": first, "second": second, "state1": state_after_first}


def test_resume_continues_from_the_saved_epoch(quick_run: dict[str, Any]) -> None:
    import keras

    from facial_emotion.training.train import LAST_NAME, STATE_NAME, TrainingError, train

    assert quick_run["state1"]["epochs_done"] == 1
    state = json.loads((quick_run["out"] / STATE_NAME).read_text())
    assert state["epochs_done"] == 2
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert quick_run["second"].epochs_run == 2
    # The optimizer (and so the LR schedule) carried on rather than restarting.
    last = keras.saving.load_model(quick_run["out"] / LAST_NAME, compile=True, safe_mode=True)
    steps = int(np.ceil(1500 / quick_run["config"].batch_size))
    assert int(last.optimizer.iterations.numpy()) == 2 * steps
    with pytest.raises(TrainingError, match="--resume"):
        train(quick_run["config"], quick_run["out"], verbose=0)


def test_record_holds_the_exact_settings(quick_run: dict[str, Any]) -> None:
    from facial_emotion.training.train import config_from_dict

    record = json.loads(quick_run["second"].record_path.read_text())
    assert config_from_dict(record["config"]) == quick_run["config"]
    assert record["config"]["seed"] == 1337
    assert record["classes"] == list(EMOTIONS)
    assert record["best_epoch"] in (1, 2)
    assert record["best_publictest_accuracy"] == pytest.approx(
        max(h["val_accuracy"] for h in record["history"]), abs=1e-4
    )
    assert record["parameters"] > 1000 and "tensorflow" in record["versions"]


def test_saved_model_loads_safely_and_outputs_probabilities(quick_run: dict[str, Any]) -> None:
    import keras

    model = keras.saving.load_model(quick_run["second"].model_path, safe_mode=True)
    assert tuple(model.input_shape) == (None, 48, 48, 1)
    assert tuple(model.output_shape) == (None, 7)
    assert not any(layer.__class__.__name__ == "Lambda" for layer in model.layers)
    faces = read_fer2013_csv(FER_CSV, usages=("Training",), limit_per_usage=16).images
    probs = np.asarray(model(faces[..., None].astype(np.float32), training=False))
    assert probs.shape == (16, 7)
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def _cli(argv: list[str]) -> int:
    from facial_emotion.training.cli import register

    parser = argparse.ArgumentParser(prog="facial-emotion")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_evaluate_json_agrees_with_its_confusion_matrix(quick_run: dict[str, Any], tmp_path: Path) -> None:
    faces_csv = tmp_path / "slice.csv"
    faces = read_fer2013_csv(FER_CSV, usages=("PrivateTest",), limit_per_usage=300)
    with faces_csv.open("w") as handle:
        handle.write("emotion,pixels,Usage\n")
        for image, label in zip(faces.images, faces.labels, strict=True):
            handle.write(f"{label},{' '.join(map(str, image.ravel()))},PrivateTest\n")
    out_json, plot = tmp_path / "eval.json", tmp_path / "cm.png"
    model = str(quick_run["second"].model_path)
    assert (
        _cli(
            [
                "evaluate",
                "--data",
                str(faces_csv),
                "--model",
                model,
                "--json",
                str(out_json),
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    report = json.loads(out_json.read_text())
    confusion = np.array(report["confusion"])
    assert report["n"] == 300 == confusion.sum()
    assert report["accuracy"] == pytest.approx(np.trace(confusion) / 300, abs=1e-5)
    assert confusion.sum(axis=1).tolist() == np.bincount(faces.labels, minlength=7).tolist()
    for i, name in enumerate(EMOTIONS):
        n = confusion[i].sum()
        assert report["per_class"][name]["n"] == n
        assert report["per_class"][name]["recall"] == pytest.approx(confusion[i, i] / n if n else 0.0, abs=1e-5)
    assert cv2.imread(str(plot)) is not None

    assert _cli(["evaluate", "--data", str(faces_csv), "--model", model, "--tta", "--json", str(out_json)]) == 0
    tta = json.loads(out_json.read_text())
    assert tta["tta"] is True and tta["n"] == 300
    assert out_json.with_suffix(".png").is_file()


def test_cli_reports_bad_input_in_one_line(
    quick_run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(["evaluate", "--data", str(tmp_path / "nope.csv"), "--model", str(quick_run["second"].model_path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "nope.csv" in err[-1] and "Traceback" not in "".join(err)
    assert _cli(["evaluate", "--model", str(tmp_path / "none.keras")]) != 0
    assert _cli(["explain", str(tmp_path / "none.png"), "--model", str(quick_run["second"].model_path)]) != 0
    assert "Traceback" not in capsys.readouterr().err


def test_grad_cam_maps_are_normalised_and_written(quick_run: dict[str, Any], tmp_path: Path) -> None:
    from facial_emotion.training.explain import GradCamExplainer, overlay_heatmap

    explainer = GradCamExplainer(quick_run["second"].model_path)
    faces = read_fer2013_csv(FER_CSV, usages=("PublicTest",), limit_per_usage=8).images
    heat = explainer.explain(faces)
    assert heat.shape == (8, 48, 48) and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    assert explainer.explain(np.zeros((0, 48, 48), np.uint8)).shape == (0, 48, 48)
    scene = np.full((120, 90, 3), 128, np.uint8)
    blended = overlay_heatmap(scene, heat[0])
    assert blended.shape == scene.shape and blended.dtype == np.uint8

    face_png = tmp_path / "face.png"
    cv2.imwrite(str(face_png), faces[0])
    out = tmp_path / "cam.png"
    assert _cli(["explain", str(face_png), "--model", str(quick_run["second"].model_path), "--out", str(out)]) == 0
    written = cv2.imread(str(out))
    assert written is not None and min(written.shape[:2]) >= 192


def test_importing_training_does_not_load_tensorflow() -> None:
    code = (
        "import sys, facial_emotion.training, facial_emotion.training.cli, facial_emotion.training.train, "
        "facial_emotion.training.evaluate, facial_emotion.training.model, facial_emotion.training.explain; "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_train_command_quick_profile_exports_model_and_record(tmp_path: Path) -> None:
    export = tmp_path / "models" / "emotion.keras"
    argv = ["train", "--quick", "--data", str(FER_CSV), "--train-limit", "256", "--val-limit", "128",
            "--out", str(tmp_path / "run"), "--export", str(export)]  # fmt: skip
    assert _cli(argv) == 0
    record = json.loads(export.with_suffix(".json").read_text())
    assert record["model"] == "emotion.keras" and record["config"]["train_limit"] == 256
    assert record["train_faces"] == 256 and record["epochs_run"] == 1
    assert _cli(argv) != 0  # the run folder exists and --resume was not given
