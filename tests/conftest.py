"""Shared fixtures: the shared data folder, a tiny real emotion model, thread-leak checks."""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from facial_emotion.paths import data_dir


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings, downloads and sessions of a test never touch the real home folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("FACIAL_EMOTION_HOME", str(home / "data"))
    monkeypatch.setenv("FACIAL_EMOTION_CONFIG", str(home / "config"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder, or skip when this machine lacks it."""
    root = data_dir()
    if not (root / "faces-pyfeat").is_dir():
        pytest.skip(f"shared data not found at {root} (set FACIAL_EMOTION_DATA)")
    return root


def read_fer_rows(path: Path, rows: int, usage: str = "Training") -> tuple[np.ndarray, np.ndarray]:
    """The first rows of one FER2013 split as (N, 48, 48) uint8 faces and int labels."""
    faces, labels = [], []
    with gzip.open(path, "rt", newline="") as handle:
        for record in csv.DictReader(handle):
            if record["Usage"] != usage:
                continue
            faces.append(np.array(record["pixels"].split(), dtype=np.uint8).reshape(48, 48))
            labels.append(int(record["emotion"]))
            if len(faces) >= rows:
                break
    return np.stack(faces), np.array(labels)


@pytest.fixture(scope="session")
def tiny_emotion_model(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real CNN trained for two epochs on 2,000 FER2013 faces, saved as .keras."""
    import keras

    faces, labels = read_fer_rows(shared_data / "fer2013" / "fer2013.csv.gz", 2000)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(faces[..., None].astype("float32"), labels, epochs=2, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    """Fail the test if it leaves a thread running that was not there before."""
    before = set(threading.enumerate())
    yield
    deadline = threading.Event()
    for _ in range(40):
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        deadline.wait(0.05)
    pytest.fail(f"threads left running: {[t.name for t in leaked]}")


TALKING_SENTENCE = "I am very happy. This is a wonderful day and I love it."
TALKING_DELAY_MS = 6000


@pytest.fixture(scope="session")
def talking_video(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """WolfgangLanger_Pexels.mp4 (19.7 s, silent track) with a flite sentence from 6 s on."""
    for tool in ("flite", "ffmpeg"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (./install.sh installs it)")
    folder = tmp_path_factory.mktemp("talking")
    wav = folder / "said.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", TALKING_SENTENCE, "-o", str(wav)], check=True, timeout=60)
    source = shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4"
    return mux_speech(source, wav, folder / "talking.mp4", delay_ms=TALKING_DELAY_MS, pad=True)


def mux_speech(video: Path, wav: Path, out: Path, *, delay_ms: int, pad: bool = False) -> Path:
    """The video with wav as its sound track, starting delay_ms in (pad: silence to the video's end)."""
    mix = f"[1:a]adelay={delay_ms}:all=1" + (",apad[a]" if pad else "[a]")
    length = ["-shortest"] if pad else []
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-i", str(wav), "-filter_complex", mix]
    command += ["-map", "0:v", "-map", "[a]", *length, "-c:v", "copy", "-c:a", "aac", str(out)]
    subprocess.run(command, check=True, timeout=120)
    return out
