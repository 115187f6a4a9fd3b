"""FER2013 readers on the real shared data: CSV, image folders, FER+ labels, augmentation."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from facial_emotion.paths import data_dir
from facial_emotion.training.data import (
    DataError,
    augment_batch,
    canonical_emotion,
    read_dataset,
    read_fer2013_csv,
    read_ferplus_labels,
    read_image_folder,
    to_gray48,
)
from facial_emotion.types import EMOTIONS

FER_CSV = data_dir() / "fer2013" / "fer2013.csv.gz"
FERPLUS_CSV = data_dir() / "fer2013" / "fer2013new.csv"
needs_fer = pytest.mark.skipif(not FER_CSV.is_file(), reason=f"shared FER2013 data missing ({FER_CSV})")


@pytest.fixture(scope="module")
def fer_all() -> object:
    """The whole FER2013 CSV, read once (about 5 s)."""
    if not FER_CSV.is_file():
        pytest.skip(f"shared FER2013 data missing ({FER_CSV})")
    return read_fer2013_csv(FER_CSV)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("anger", "angry"),
        ("Angry", "angry"),
        ("happiness", "happy"),
        ("sadness", "sad"),
        ("surprised", "surprise"),
        ("fearful", "fear"),
        ("disgusted", "disgust"),
        ("neutrality", "neutral"),
        ("3_happy", "happy"),
        ("contempt", None),
        ("unknown", None),
    ],
)
def test_folder_synonyms_map_to_fer_classes(name: str, expected: str | None) -> None:
    assert canonical_emotion(name) == expected


@needs_fer
def test_split_sizes_and_class_counts_match_the_official_figures(fer_all: object) -> None:
    official = {
        "Training": [3995, 436, 4097, 7215, 4830, 3171, 4965],
        "PublicTest": [467, 56, 496, 895, 653, 415, 607],
        "PrivateTest": [491, 55, 528, 879, 594, 416, 626],
    }
    for usage, counts in official.items():
        split = fer_all.select(usage)
        assert split.class_counts().tolist() == counts
    assert fer_all.images.shape == (35887, 48, 48) and fer_all.images.dtype == np.uint8
    assert fer_all.select("PublicTest").rows[0] == 28709
    assert fer_all.select("PrivateTest").rows[0] == 32298


@needs_fer
def test_plain_and_gzipped_csv_read_the_same(tmp_path: Path) -> None:
    with gzip.open(FER_CSV, "rt") as src:
        head = [next(src) for _ in range(61)]
    plain = tmp_path / "fer2013.csv"
    plain.write_text("".join(head))
    a = read_fer2013_csv(plain)
    b = read_fer2013_csv(FER_CSV, usages=("Training",), limit_per_usage=60)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)


@needs_fer
def test_csv_and_folder_readers_agree_on_the_same_images(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    faces = read_fer2013_csv(FER_CSV, usages=("PrivateTest",), limit_per_usage=70)
    folder_names = {
        "angry": "Anger",
        "disgust": "disgusted",
        "fear": "fearful",
        "happy": "happiness",
        "sad": "Sad",
        "surprise": "surprised",
        "neutral": "neutrality",
    }
    for i, (image, label) in enumerate(zip(faces.images, faces.labels, strict=True)):
        sub = tmp_path / folder_names[EMOTIONS[label]]
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"PrivateTest_{i:04d}.png"), image)
    (tmp_path / "contempt").mkdir()
    cv2.imwrite(str(tmp_path / "contempt" / "x.png"), faces.images[0])
    with caplog.at_level(logging.WARNING):
        read = read_image_folder(tmp_path)
    assert any("contempt" in r.getMessage() for r in caplog.records)
    assert len(read) == len(faces)
    assert _keyed(read.images, read.labels) == _keyed(faces.images, faces.labels)
    assert set(read.usage) == {"PrivateTest"}


def _keyed(images: np.ndarray, labels: np.ndarray) -> list[tuple[bytes, int]]:
    return sorted((img.tobytes(), int(lab)) for img, lab in zip(images, labels, strict=True))


def test_image_folder_converts_colour_and_size(tmp_path: Path) -> None:
    (tmp_path / "train" / "happy").mkdir(parents=True)
    (tmp_path / "test" / "sad").mkdir(parents=True)
    colour = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "train" / "happy" / "a.jpg"), colour)
    cv2.imwrite(str(tmp_path / "test" / "sad" / "PrivateTest_1.png"), colour[:, :, 0])
    faces = read_dataset(tmp_path)
    assert faces.images.shape == (2, 48, 48) and faces.images.dtype == np.uint8
    assert sorted(zip(faces.usage.tolist(), faces.labels.tolist(), strict=True)) == [
        ("PrivateTest", EMOTIONS.index("sad")),
        ("Training", EMOTIONS.index("happy")),
    ]
    assert to_gray48(np.zeros((10, 10, 4), np.uint8)).shape == (48, 48)


def test_bad_inputs_raise_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_fer2013_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="emotion,pixels,Usage"):
        read_fer2013_csv(bad)
    short = tmp_path / "short.csv"
    short.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    with pytest.raises(DataError, match="2304"):
        read_fer2013_csv(short)
    with pytest.raises(DataError, match="no images"):
        read_image_folder(tmp_path)


@needs_fer
@pytest.mark.skipif(not FERPLUS_CSV.is_file(), reason=f"FER+ labels missing ({FERPLUS_CSV})")
def test_ferplus_labels_line_up_with_fer2013(fer_all: object) -> None:
    soft = read_ferplus_labels(FERPLUS_CSV)
    assert soft.shape == (35887, 7)
    sums = soft.sum(axis=1)
    assert np.all((np.abs(sums - 1) < 1e-5) | (sums == 0))
    voted = sums > 0
    # A wrong column mapping would agree about 1 time in 7; the real labels agree most of the time.
    agreement = (soft[voted].argmax(axis=1) == fer_all.labels[voted]).mean()
    assert agreement > 0.6


@needs_fer
def test_augmentation_is_seeded_and_keeps_range() -> None:
    faces = read_fer2013_csv(FER_CSV, usages=("Training",), limit_per_usage=32).images
    a = augment_batch(faces, np.random.default_rng(5))
    b = augment_batch(faces, np.random.default_rng(5))
    assert a.shape == faces.shape and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 255
    assert np.abs(a - faces).mean() > 5  # it really changed the faces
