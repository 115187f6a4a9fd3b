"""Pipeline speed: per-stage median/p95 latency and end-to-end FPS, against a naive baseline.

Run: .venv/bin/python benchmarks/pipeline.py [--model PATH] [--repeats N]

Inputs: the shared single-face videos (640x360) and a 4-face input (multi_face.jpg
scaled to 640 px wide, as 120 frames with a slow pan so tracking has work to do).
Baseline, timed in the same run: dlib HOG on the full frame every frame, then
``model.predict`` per face (what a first version of such a tool does).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np

from facial_emotion.paths import DEFAULT_EMOTION_MODEL, data_dir
from facial_emotion.pipeline import Pipeline
from facial_emotion.settings import DetectionOptions, Settings
from facial_emotion.sources import VideoFileSource
from facial_emotion.types import Frame
from facial_emotion.vision.align import align_face
from facial_emotion.vision.blinks import eye_aspect_ratios


def p95(values: list[float]) -> float:
    """95th percentile."""
    return float(np.percentile(values, 95)) if values else 0.0


def load_video(path: Path) -> tuple[list[Frame], list[float]]:
    """All frames of a video and the time each read took (ms)."""
    source = VideoFileSource(path)
    frames, reads = [], []
    while True:
        t = time.perf_counter()
        frame = source.read()
        reads.append((time.perf_counter() - t) * 1000)
        if frame is None:
            break
        frames.append(frame)
    source.close()
    return frames, reads[:-1]


def four_faces() -> tuple[list[Frame], list[float]]:
    """120 frames of the 4-person photo at 640 px, panning 1 px per frame."""
    image = cv2.imread(str(data_dir() / "faces-pyfeat" / "multi_face.jpg"))
    image = cv2.resize(image, (700, round(image.shape[0] * 700 / image.shape[1])), interpolation=cv2.INTER_AREA)
    frames = [Frame(np.ascontiguousarray(image[:, i % 60 : i % 60 + 640]), i, i * 33.3) for i in range(120)]
    return frames, []


def run_ours(frames: list[Frame], settings: Settings, model: Path) -> dict[str, list[float]]:
    """Per-frame stage times of the pipeline with every stage and overlay on."""
    pipeline = Pipeline(settings.replace(emotion_model_path=str(model)))
    pipeline.process(frames[0])  # warm-up (graph tracing), not timed
    pipeline.reset()
    stages: dict[str, list[float]] = {k: [] for k in ("detect", "landmarks", "align", "classify", "blink", "annotate")}
    stages["total"] = []
    faces = 0
    for frame in frames:
        result = pipeline.process(frame)
        faces += len(result.faces)
        for key in stages:
            if key != "total":
                stages[key].append(getattr(result.times, f"{key}_ms"))
        stages["total"].append(result.latency_ms)
    stages["faces_per_frame"] = [faces / len(frames)]
    return stages


def run_naive(frames: list[Frame], model_path: Path) -> list[float]:
    """Per-frame latency of the naive way: full-frame HOG every frame, model.predict per face."""
    import dlib
    import keras

    from facial_emotion.vision.landmarks import DlibLandmarkPredictor

    detector = dlib.get_frontal_face_detector()
    predictor = DlibLandmarkPredictor("68")
    model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    model.predict(np.zeros((1, 48, 48, 1), np.float32), verbose=0)
    times = []
    for frame in frames:
        t = time.perf_counter()
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        for r in detector(gray, 0):
            from facial_emotion.types import Box

            points = predictor.predict(gray, Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1))
            face = align_face(gray, points)
            model.predict(face[None, ..., None].astype(np.float32), verbose=0)
            eye_aspect_ratios(points)
        times.append((time.perf_counter() - t) * 1000)
    return times


def main() -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_EMOTION_MODEL)
    parser.add_argument("--naive-frames", type=int, default=120, help="frames of each input for the slow baseline")
    args = parser.parse_args()
    if not args.model.is_file():
        print(f"no emotion model at {args.model}: train one or pass --model", file=sys.stderr)
        return 2
    print(f"model: {args.model} | cores: {os.cpu_count()} | all stages and overlays on")
    inputs = {
        "single_face.mp4 (640x360)": (load_video(data_dir() / "faces-pyfeat" / "single_face.mp4"), Settings()),
        "WolfgangLanger_Pexels.mp4 (640x360)": (
            load_video(data_dir() / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4"),
            Settings(),
        ),
        # four small faces in 640 px: detect at full width (320 px would make them too small for HOG)
        "4 faces (640x427, panning)": (four_faces(), Settings(detection=DetectionOptions(width_px=640))),
    }
    header = f"{'input':38} {'stage':10} {'median ms':>10} {'p95 ms':>8}"
    for name, ((frames, reads), settings) in inputs.items():
        stages = run_ours(frames, settings, args.model)
        total = stages.pop("total")
        faces = stages.pop("faces_per_frame")[0]
        read_med = statistics.median(reads) if reads else 0.0
        print(f"\n{name}: {len(frames)} frames, {faces:.2f} faces/frame")
        print(header)
        if reads:
            print(f"{'':38} {'read':10} {read_med:10.2f} {p95(reads):8.2f}")
        for stage, values in stages.items():
            print(f"{'':38} {stage:10} {statistics.median(values):10.2f} {p95(values):8.2f}")
        e2e_ms = [t + r for t, r in zip(total, reads, strict=False)] if reads else total
        ours_fps = 1000.0 * len(e2e_ms) / sum(e2e_ms)
        print(f"{'':38} {'process':10} {statistics.median(total):10.2f} {p95(total):8.2f}")
        naive = run_naive(frames[: args.naive_frames], args.model)
        naive_e2e = [t + r for t, r in zip(naive, reads, strict=False)] if reads else naive
        naive_fps = 1000.0 * len(naive_e2e) / sum(naive_e2e)
        print(
            f"  end-to-end: ours {ours_fps:6.1f} FPS | naive {naive_fps:6.1f} FPS "
            f"(median {statistics.median(naive):.1f} ms/frame) | ratio {ours_fps / naive_fps:4.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
