"""Evaluation: accuracy, per-class recall, confusion matrix, optional test-time augmentation."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from facial_emotion.training.data import FaceSet, read_fer2013_csv, read_image_folder
from facial_emotion.types import EMOTIONS, NUM_EMOTIONS

ECE_BINS: Final[int] = 15


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """ECE: the confidence-weighted gap between the top probability and accuracy, in equal-width bins."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """A confusion matrix (rows true class, columns predicted, EMOTIONS order) and how it was made."""

    source_name: str
    confusion: np.ndarray
    tta: bool
    seconds: float
    model: str = ""
    ece: float = float("nan")
    """Expected calibration error of the top probability (15 equal-width bins); NaN if not measured."""

    @property
    def n(self) -> int:
        """Number of faces evaluated."""
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        """Fraction of faces whose top class is the true one."""
        return float(np.trace(self.confusion) / max(self.n, 1))

    @property
    def per_class(self) -> dict[str, dict[str, float | int]]:
        """Recall, precision and support per class (NaN-free: empty classes get recall 0 and n 0)."""
        out: dict[str, dict[str, float | int]] = {}
        for i, name in enumerate(EMOTIONS):
            support = int(self.confusion[i].sum())
            predicted = int(self.confusion[:, i].sum())
            hit = int(self.confusion[i, i])
            out[name] = {
                "recall": hit / support if support else 0.0,
                "precision": hit / predicted if predicted else 0.0,
                "n": support,
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures: accuracy (fraction), per_class, confusion, n and context."""
        present = [c for c in self.per_class.values() if c["n"]]
        return {
            "source": self.source_name,
            "model": self.model,
            "tta": self.tta,
            "n": self.n,
            "accuracy": round(self.accuracy, 5),
            "macro_recall": round(float(np.mean([c["recall"] for c in present])) if present else 0.0, 5),
            "per_class": {
                k: {m: round(v, 5) if isinstance(v, float) else v for m, v in d.items()}
                for k, d in self.per_class.items()
            },
            "classes": list(EMOTIONS),
            "confusion": self.confusion.astype(int).tolist(),
            "ece": None if np.isnan(self.ece) else round(self.ece, 5),
            "seconds": round(self.seconds, 2),
        }


def tta_views(images: np.ndarray) -> list[np.ndarray]:
    """Test-time views of (N,48,48) faces: the face, its mirror, and 4-px corner/centre crops resized back."""
    flipped = images[:, :, ::-1]
    views = [images, flipped]
    for base in (images, flipped):
        for top, left in ((2, 2), (0, 0), (0, 4), (4, 0), (4, 4)):
            crop = base[:, top : top + 44, left : left + 44]
            views.append(np.stack([cv2.resize(np.ascontiguousarray(c), (48, 48)) for c in crop]))
    return views


def predict_probabilities(model: Any, images: np.ndarray, *, tta: bool = False, batch_size: int = 256) -> np.ndarray:
    """(N,7) class probabilities for (N,48,48) uint8 faces, averaged over TTA views if asked."""
    views = tta_views(images) if tta else [images]
    total = np.zeros((len(images), NUM_EMOTIONS), dtype=np.float64)
    for view in views:
        x = view[..., None].astype(np.float32)
        for start in range(0, len(x), batch_size):
            probs = model(x[start : start + batch_size], training=False)
            total[start : start + batch_size] += np.asarray(probs, dtype=np.float64)
    return (total / len(views)).astype(np.float32)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(7,7) counts, rows true class, columns predicted class."""
    matrix = np.zeros((NUM_EMOTIONS, NUM_EMOTIONS), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def evaluate_faces(
    model: Any, faces: FaceSet, *, tta: bool = False, source_name: str = "", model_name: str = ""
) -> EvaluationReport:
    """Evaluate a loaded model on a FaceSet."""
    start = time.perf_counter()
    probs = predict_probabilities(model, faces.images, tta=tta)

    matrix = confusion_matrix(faces.labels, probs.argmax(axis=1))
    ece = expected_calibration_error(probs, faces.labels) if len(faces) else float("nan")
    return EvaluationReport(source_name, matrix, tta, time.perf_counter() - start, model_name, ece)


def load_faces(
    *, data: Path | None = None, folder: Path | None = None, split: str = "PrivateTest", limit: int | None = None
) -> tuple[FaceSet, str]:
    """The faces of a CSV split (or an emotion-per-subfolder folder), the first ``limit`` only if given, and a name."""
    from facial_emotion.training.train import default_data_path

    if folder is not None:
        faces = read_image_folder(Path(folder))
        if limit is not None:
            faces = FaceSet(faces.images[:limit], faces.labels[:limit], faces.usage[:limit], faces.rows[:limit])
        return faces, Path(folder).name or "folder"
    path = Path(data) if data else default_data_path()
    return read_fer2013_csv(path, usages=(split,), limit_per_usage=limit), split


def evaluate_source(
    *,
    model_path: Path,
    data: Path | None = None,
    folder: Path | None = None,
    split: str = "PrivateTest",
    tta: bool = False,
    limit: int | None = None,
) -> EvaluationReport:
    """Load a model and evaluate it on a CSV split or an emotion-per-subfolder image folder."""
    from facial_emotion.training.runtime import load_keras_model

    model = load_keras_model(Path(model_path))
    faces, name = load_faces(data=data, folder=folder, split=split, limit=limit)
    log.info("evaluating %s on %d faces from %s%s", model_path, len(faces), name, " with TTA" if tta else "")
    return evaluate_faces(model, faces, tta=tta, source_name=name, model_name=Path(model_path).name)


def format_report(report: EvaluationReport) -> str:
    """A plain-text summary: accuracy, per-class recall and the confusion matrix."""
    lines = [
        f"{report.source_name}: {report.n} faces, accuracy {report.accuracy:.2%}"
        f"{' (TTA)' if report.tta else ''}, macro recall {report.to_dict()['macro_recall']:.2%}"
        + ("" if np.isnan(report.ece) else f", calibration error (ECE) {report.ece:.2%}"),
        "",
        f"{'class':<9} {'recall':>7} {'precision':>9} {'n':>6}",
    ]
    for name, stats in report.per_class.items():
        lines.append(f"{name:<9} {stats['recall']:>7.2%} {stats['precision']:>9.2%} {stats['n']:>6}")
    lines += [
        "",
        "confusion (rows true, columns predicted):",
        " " * 9 + "".join(f"{e[:7]:>8}" for e in EMOTIONS),
    ]
    for name, row in zip(EMOTIONS, report.confusion, strict=True):
        lines.append(f"{name:<9}" + "".join(f"{int(v):>8}" for v in row))
    return "\n".join(lines)


def plot_confusion(report: EvaluationReport, path: Path) -> Path:
    """Save the row-normalised confusion matrix, counts written in each cell, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    counts = report.confusion
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=120)
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of true class")
    ax.set_xticks(range(NUM_EMOTIONS), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(NUM_EMOTIONS), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(NUM_EMOTIONS):
        for j in range(NUM_EMOTIONS):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n{counts[i, j]}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    tta = " + TTA" if report.tta else ""
    ax.set_title(f"{report.source_name}{tta}: accuracy {report.accuracy:.2%} (n={report.n})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; records are meant to be shared
    os.replace(tmp, path)


def save_report(
    report: EvaluationReport,
    *,
    plot: Path | None,
    json_path: Path | None,
    record: bool = False,
    model_path: Path | None = None,
) -> list[Path]:
    """Write the PNG, the JSON and (if asked) the figures into the model's settings record."""
    written = []
    if plot is not None:
        written.append(plot_confusion(report, Path(plot)))
    if json_path is not None:
        _write_json(Path(json_path), report.to_dict())
        written.append(Path(json_path))
    if record and model_path is not None:
        record_path = Path(model_path).with_suffix(".json")
        data = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
        key = f"{report.source_name}{'_tta' if report.tta else ''}"
        data.setdefault("evaluation", {})[key] = report.to_dict()
        _write_json(record_path, data)
        written.append(record_path)
    return written
