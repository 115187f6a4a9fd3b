"""FER2013 readers (Kaggle CSV, image folders, FER+ labels) and batch augmentation."""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

import cv2
import numpy as np

from facial_emotion.types import EMOTIONS

log = logging.getLogger(__name__)

USAGES: Final[tuple[str, ...]] = ("Training", "PublicTest", "PrivateTest")
IMAGE_SUFFIXES: Final[frozenset[str]] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff"})

SYNONYMS: Final[dict[str, str]] = {
    "angry": "angry",
    "anger": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "neutrality": "neutral",
    "calm": "neutral",
}
"""Folder names people use for the FER2013 classes, lower-cased, mapped to ``EMOTIONS``."""

# FER+ column order in fer2013new.csv, and where each of our classes sits in it.
_FERPLUS_COLUMNS: Final[tuple[str, ...]] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
_FERPLUS_FOR: Final[dict[str, str]] = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}


class DataError(ValueError):
    """A data file or folder is missing or not in a form we can read."""


@dataclass(frozen=True, slots=True)
class FaceSet:
    """Faces with labels: images (N,48,48) uint8, labels (N,) int64 in EMOTIONS order, usage (N,) str."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    rows: np.ndarray
    """Source row index in the CSV (or -1 for images read from folders)."""

    def __len__(self) -> int:
        """Number of faces."""
        return int(self.labels.shape[0])

    def select(self, usage: str) -> FaceSet:
        """The faces of one split (Training, PublicTest or PrivateTest)."""
        keep = self.usage == usage
        return FaceSet(self.images[keep], self.labels[keep], self.usage[keep], self.rows[keep])

    def class_counts(self) -> np.ndarray:
        """(7,) number of faces per class."""
        return np.bincount(self.labels, minlength=len(EMOTIONS))


def canonical_emotion(name: str) -> str | None:
    """Map a folder name such as 'Anger' or 'happiness' to an EMOTIONS name, or None if unknown."""
    return SYNONYMS.get(name.strip().lower().replace("-", "_").split("_")[-1])


def to_gray48(image: np.ndarray) -> np.ndarray:
    """Convert any gray/BGR/BGRA image to a 48x48 uint8 gray face."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.ndim != 2:
        raise DataError(f"cannot read an image of shape {image.shape} as a face")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.shape != (48, 48):
        interp = cv2.INTER_AREA if min(image.shape) > 48 else cv2.INTER_LINEAR
        image = cv2.resize(image, (48, 48), interpolation=interp)
    return image


def _open_text(path: Path) -> TextIO:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def read_fer2013_csv(
    path: Path,
    *,
    usages: Sequence[str] = USAGES,
    limit_per_usage: int | None = None,
) -> FaceSet:
    """Read a Kaggle ``fer2013.csv`` (plain or gzipped): emotion,pixels,Usage."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    wanted = set(usages)
    unknown = wanted - set(USAGES)
    if unknown:
        raise DataError(f"unknown split(s) {sorted(unknown)}; choose from {', '.join(USAGES)}")
    images: list[np.ndarray] = []
    labels: list[int] = []
    usage: list[str] = []
    rows: list[int] = []
    taken = dict.fromkeys(USAGES, 0)
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            if header[:3] != ["emotion", "pixels", "Usage"]:
                raise DataError(f"{path}: expected a header 'emotion,pixels,Usage', got {','.join(header)[:60]!r}")
            for row_index, row in enumerate(reader):
                split = row[2].strip()
                if split not in wanted or (limit_per_usage is not None and taken[split] >= limit_per_usage):
                    continue
                pixels = np.fromstring(row[1], dtype=np.uint8, sep=" ")
                if pixels.size != 48 * 48:
                    raise DataError(f"{path}: row {row_index} has {pixels.size} pixels, expected 2304")
                images.append(pixels.reshape(48, 48))
                labels.append(int(row[0]))
                usage.append(split)
                rows.append(row_index)
                taken[split] += 1
    except (UnicodeDecodeError, gzip.BadGzipFile, csv.Error, IndexError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: not a FER2013 CSV ({exc})") from exc
    if not images:
        raise DataError(f"{path}: no rows for split(s) {', '.join(sorted(wanted))}")
    label_array = np.asarray(labels, dtype=np.int64)
    if label_array.min() < 0 or label_array.max() >= len(EMOTIONS):
        raise DataError(f"{path}: emotion codes must be 0..6")
    return FaceSet(np.stack(images), label_array, np.asarray(usage), np.asarray(rows, dtype=np.int64))


def _iter_images(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            yield path


def read_image_folder(root: Path, *, usage: str = "PrivateTest") -> FaceSet:
    """Read ``root/<emotion>/*.jpg``; unknown class folders are skipped with a warning.

    Files named ``Training_*``, ``PublicTest_*`` or ``PrivateTest_*`` (the Kaggle image-folder
    release) keep that split; other files get ``usage``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    images: list[np.ndarray] = []
    labels: list[int] = []
    usages: list[str] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        emotion = canonical_emotion(sub.name)
        if emotion is None:
            log.warning("skipping folder %s: %r is not one of the model's classes", sub, sub.name)
            continue
        for path in _iter_images(sub):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                log.warning("skipping unreadable image %s", path)
                continue
            images.append(to_gray48(image))
            labels.append(EMOTIONS.index(emotion))
            prefix = path.name.split("_", 1)[0]
            usages.append(prefix if prefix in USAGES else usage)
    if not images:
        raise DataError(f"{root}: no images in any emotion subfolder ({', '.join(EMOTIONS)})")
    n = len(images)
    return FaceSet(np.stack(images), np.asarray(labels, np.int64), np.asarray(usages), np.full(n, -1, dtype=np.int64))


def read_dataset(source: Path, *, usages: Sequence[str] = USAGES, limit_per_usage: int | None = None) -> FaceSet:
    """Read FER2013 from a CSV, or from a folder with train/ and test/ (or emotion subfolders)."""
    source = Path(source)
    if source.is_file():
        return read_fer2013_csv(source, usages=usages, limit_per_usage=limit_per_usage)
    if not source.is_dir():
        raise DataError(f"{source}: no such file or folder")
    parts = []
    if (source / "train").is_dir() or (source / "test").is_dir():
        if (source / "train").is_dir():
            parts.append(read_image_folder(source / "train", usage="Training"))
        if (source / "test").is_dir():
            parts.append(read_image_folder(source / "test", usage="PublicTest"))
    else:
        parts.append(read_image_folder(source))
    merged = FaceSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("images", "labels", "usage", "rows")))
    keep = np.isin(merged.usage, list(usages))
    if limit_per_usage is not None:
        for split in USAGES:
            idx = np.flatnonzero(keep & (merged.usage == split))
            keep[idx[limit_per_usage:]] = False
    return FaceSet(merged.images[keep], merged.labels[keep], merged.usage[keep], merged.rows[keep])


def read_ferplus_labels(path: Path) -> np.ndarray:
    """FER+ crowd votes as (N,7) distributions in EMOTIONS order; rows with no votes are all zero."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open("r", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(_FERPLUS_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: not a FER+ label file (missing {sorted(missing)})")
        votes = np.array([[float(row[_FERPLUS_FOR[e]]) for e in EMOTIONS] for row in reader], dtype=np.float32)
    total = votes.sum(axis=1, keepdims=True)
    return np.divide(votes, total, out=np.zeros_like(votes), where=total > 0)


def augment_batch(images: np.ndarray, rng: np.random.Generator, *, erase_p: float = 0.0) -> np.ndarray:
    """Random flip, shift, rotation, zoom, brightness and contrast for (N,48,48) uint8 faces -> float32.

    With ``erase_p`` > 0, that share of faces also gets one random rectangle (4-20% of the area)
    filled with noise (random erasing), as a hand, glasses or a shadow would cover it.
    """
    out = np.empty(images.shape, dtype=np.float32)
    for i, face in enumerate(images):
        angle = rng.uniform(-12.0, 12.0)
        scale = rng.uniform(0.9, 1.12)
        matrix = cv2.getRotationMatrix2D((23.5, 23.5), angle, scale)
        matrix[:, 2] += rng.uniform(-4.8, 4.8, size=2)  # up to 10% shift
        if rng.random() < 0.5:
            face = face[:, ::-1]
        warped = cv2.warpAffine(
            np.ascontiguousarray(face),
            matrix,
            (48, 48),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        ).astype(np.float32)
        contrast = rng.uniform(0.75, 1.25)
        brightness = rng.uniform(-25.0, 25.0)
        mean = warped.mean()
        out[i] = np.clip((warped - mean) * contrast + mean + brightness, 0.0, 255.0)
        if erase_p > 0 and rng.random() < erase_p:
            area = rng.uniform(0.04, 0.2) * 48 * 48
            aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
            h = int(min(47, max(4, round(np.sqrt(area * aspect)))))
            w = int(min(47, max(4, round(np.sqrt(area / aspect)))))
            y, x = int(rng.integers(0, 48 - h)), int(rng.integers(0, 48 - w))
            out[i, y : y + h, x : x + w] = rng.uniform(0.0, 255.0, size=(h, w))
    return out
