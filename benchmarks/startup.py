"""Start-up cost of `analyze` on one photo: LiteRT (today) against the Keras/TensorFlow path, paired.

Run: ``python benchmarks/startup.py [--runs 5] [--warmup 1] [--photo PATH] [--json FILE]``.

Each run is a fresh interpreter doing what ``facial-emotion analyze PHOTO --no-speech`` does.
Figures per runtime, as median (min-max) over the runs: the wall time from spawning the
process to its first annotated frame, the whole process's wall time, the peak RSS when
that frame is done and the process's peak RSS (``os.wait4``). The two runtimes alternate
(LiteRT, Keras, LiteRT, ...) and the Keras/LiteRT ratio is taken pair by pair, so a
machine whose speed drifts still gives a fair ratio. ``FACIAL_EMOTION_RUNTIME`` picks the
runtime in each child: ``litert`` (no fallback) or ``keras`` (the old TensorFlow path).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
RUNTIMES: Final = ("litert", "keras")
_T0_ENV: Final = "STARTUP_BENCH_T0"


@dataclass(frozen=True, slots=True)
class StartupRun:
    """One child process: its figures and what it had imported."""

    runtime: str
    first_frame_s: float
    process_s: float
    first_frame_rss_mb: float
    peak_rss_mb: float
    tensorflow_loaded: bool
    faces: int


def child(photo: Path, out: Path) -> int:
    """In the child: analyse the photo as `analyze --no-speech` does; print the figures as JSON."""
    import resource

    t0 = float(os.environ[_T0_ENV])
    seen: dict[str, float] = {}

    def probe(done: int, total: int | None) -> None:
        if "first_frame_s" not in seen:  # called once the first frame is processed and written annotated
            seen["first_frame_s"] = time.time() - t0
            seen["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    from facial_emotion.analyze import analyze
    from facial_emotion.settings import Settings

    summary = analyze(photo, out, settings=Settings(), write_video=True, progress=probe, speech=False)
    if summary.get("model_errors"):
        print(f"error: {summary['model_errors']}", file=sys.stderr)
        return 2
    report = {
        "first_frame_s": seen["first_frame_s"],
        "first_frame_rss_mb": seen["rss_mb"],
        "tensorflow_loaded": "tensorflow" in sys.modules,
        "faces": len(summary["tracks"]),
    }
    print(json.dumps(report))
    return 0


def spawn(runtime: str, photo: Path, scratch: Path) -> StartupRun:
    """One timed child process with the given runtime."""
    env = {**os.environ, "FACIAL_EMOTION_RUNTIME": runtime, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = Path(tempfile.mkdtemp(dir=scratch))
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        env[_T0_ENV] = repr(time.time())
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(photo), str(out)],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS, not the max over all children
        process_s = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        text, errors = stdout.read(), stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{runtime} run failed ({proc.returncode}): {errors.strip()[-2000:]}")
    figures = json.loads(text.strip().splitlines()[-1])
    return StartupRun(
        runtime=runtime,
        first_frame_s=figures["first_frame_s"],
        process_s=process_s,
        first_frame_rss_mb=figures["first_frame_rss_mb"],
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux: kilobytes
        tensorflow_loaded=figures["tensorflow_loaded"],
        faces=figures["faces"],
    )


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _line(label: str, values: dict[str, float], unit: str, digits: int) -> str:
    v = values
    return f"  {label:<26} {v['median']:>8.{digits}f} {unit}  ({v['min']:.{digits}f}-{v['max']:.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    """Print the paired start-up figures (and write them as JSON with --json)."""
    from facial_emotion.paths import data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="counted runs of each runtime (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted pairs first (default 1)")
    parser.add_argument("--photo", type=Path, default=data_dir() / "faces-pyfeat" / "single_face.jpg")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.photo.is_file():
        print(f"error: no photo at {args.photo} (give one with --photo)", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    runs: list[StartupRun] = []
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as scratch:
        for i in range(args.warmup + args.runs):
            pair = [spawn(runtime, args.photo, Path(scratch)) for runtime in RUNTIMES]
            if i >= args.warmup:
                runs.extend(pair)
    load_after = os.getloadavg()
    cpus = os.cpu_count()
    print(
        f"analyze {args.photo.name} (one photo, annotated, no speech): {args.runs} runs each after {args.warmup} "
        f"warm-up pair(s), {cpus} logical CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    results: dict[str, Any] = {"photo": str(args.photo), "runs": args.runs, "cpus": cpus, "load": load_before}
    by_runtime = {r: [run for run in runs if run.runtime == r] for r in RUNTIMES}
    for runtime, mine in by_runtime.items():
        figures = {
            "first_frame_s": spread([r.first_frame_s for r in mine]),
            "process_s": spread([r.process_s for r in mine]),
            "first_frame_rss_mb": spread([r.first_frame_rss_mb for r in mine]),
            "peak_rss_mb": spread([r.peak_rss_mb for r in mine]),
        }
        loaded = sorted({"yes" if r.tensorflow_loaded else "no" for r in mine})
        faces = sorted({r.faces for r in mine})
        print(f"{runtime}: TensorFlow imported: {'/'.join(loaded)}; face tracks found: {faces}")
        print(_line("first annotated frame", figures["first_frame_s"], "s", 2))
        print(_line("whole process", figures["process_s"], "s", 2))
        print(_line("RSS at first frame", figures["first_frame_rss_mb"], "MB", 0))
        print(_line("peak RSS of the process", figures["peak_rss_mb"], "MB", 0))
        results[runtime] = {"figures": figures, "runs": [asdict(r) for r in mine]}
    pairs = list(zip(by_runtime["keras"], by_runtime["litert"], strict=True))
    ratios = {
        "first_frame_s": spread([k.first_frame_s / lite.first_frame_s for k, lite in pairs]),
        "peak_rss_mb": spread([k.peak_rss_mb / lite.peak_rss_mb for k, lite in pairs]),
    }
    print("keras / litert, pair by pair:")
    print(_line("first annotated frame", ratios["first_frame_s"], "x", 2))
    print(_line("peak RSS of the process", ratios["peak_rss_mb"], "x", 2))
    results["ratios_keras_over_litert"] = ratios
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.exit(child(Path(sys.argv[2]), Path(sys.argv[3])))
    sys.exit(main())
