"""Builds the FER2013 landmark template that alignment maps faces onto.

FER2013 faces were cropped by a face detector and registered loosely. To crop live
faces the same way, we fit dlib's 68 landmarks on FER2013 training faces (upscaled
4x so that the detector and predictor work) and average them: the mean positions,
in 48x48 pixels, are where the aligner puts each face's eyes.

Run: ``python -m facial_emotion.vision.fer_template [--rows N]``; it writes
``assets/fer2013_landmark_template.json``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

import cv2
import numpy as np

from facial_emotion.paths import ASSETS_DIR, data_dir

TEMPLATE_PATH = ASSETS_DIR / "fer2013_landmark_template.json"
UPSCALE = 4


def read_training_faces(path: Path, rows: int) -> np.ndarray:
    """The first ``rows`` Training faces of fer2013.csv(.gz) as (N, 48, 48) uint8."""
    opener = gzip.open if path.suffix == ".gz" else open
    faces = []
    with opener(path, "rt", newline="") as handle:
        for record in csv.DictReader(handle):
            if record["Usage"] != "Training":
                continue
            faces.append(np.array(record["pixels"].split(), dtype=np.uint8).reshape(48, 48))
            if len(faces) >= rows:
                break
    return np.stack(faces)


def fit_template(faces: np.ndarray) -> tuple[np.ndarray, int]:
    """Mean 68-point landmarks in 48x48 coordinates over faces the detector finds."""
    from facial_emotion.vision.detector import HogFaceDetector
    from facial_emotion.vision.landmarks import DlibLandmarkPredictor

    detector = HogFaceDetector(max_width_px=None, upsample=0)
    predictor = DlibLandmarkPredictor("68")
    fitted = []
    for face in faces:
        big = cv2.resize(face, (48 * UPSCALE, 48 * UPSCALE), interpolation=cv2.INTER_CUBIC)
        boxes = detector.detect(big)
        if len(boxes) != 1:
            continue
        fitted.append(predictor.predict(big, boxes[0]) / UPSCALE)
    return np.mean(fitted, axis=0), len(fitted)


def main() -> int:
    """Fit the template on FER2013 training faces and write it to assets/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    args = parser.parse_args()
    faces = read_training_faces(data_dir() / "fer2013" / "fer2013.csv.gz", args.rows)
    template, used = fit_template(faces)
    TEMPLATE_PATH.write_text(
        json.dumps(
            {
                "source": "mean dlib 68-point landmarks of FER2013 Training faces (fer2013.csv.gz)",
                "faces_read": len(faces),
                "faces_fitted": used,
                "size_px": 48,
                "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in template],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"fitted {used} of {len(faces)} faces -> {TEMPLATE_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
