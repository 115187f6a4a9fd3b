"""How fast the real window paints: painted and processing FPS, dropped frames, with every overlay on.

Plays each shared video at its own rate (looping) in the main window on the offscreen
platform until a fixed number of frames was captured, and prints the figures. The target
is that the window keeps the video's own rate (24-30 FPS).

    python benchmarks/gui.py [--frames 300] [--model path.keras]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VIDEOS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")


def run(video: Path, model: str, frames: int, work: Path) -> dict[str, float]:
    """Play one video in the window until frames were captured; the figures."""
    from PySide6.QtWidgets import QApplication

    from facial_emotion.gui.actions import OVERLAY_ROWS
    from facial_emotion.gui.window import MainWindow
    from facial_emotion.settings import Settings, save_settings

    path = work / f"{video.stem}.json"
    overlays = tuple(row.key for row in OVERLAY_ROWS)
    save_settings(Settings(overlays=overlays, emotion_model_path=model, loop_video=True), path)
    window = MainWindow(path, source=str(video))
    window.resize(1280, 800)
    window.show()
    app = QApplication.instance()
    assert app is not None
    while window.live.stats().processed < 5:  # models loaded, playing
        app.processEvents()
        time.sleep(0.002)
    start = time.monotonic()
    stats0, painted0, shown0 = window.live.stats(), window.view.frames_painted, window.view.frames_shown
    latencies: list[float] = []
    last = None
    while window.live.stats().captured - stats0.captured < frames:
        app.processEvents()
        result = window.live.latest()
        if result is not None and result is not last:
            last = result
            latencies.append(result.latency_ms)
        time.sleep(0.002)
    elapsed = time.monotonic() - start
    stats = window.live.stats()
    source_fps = window.live.source_info.fps if window.live.source_info is not None else None
    window.close()
    return {
        "source_fps": source_fps or 0.0,
        "captured": stats.captured - stats0.captured,
        "processed": stats.processed - stats0.processed,
        "dropped": stats.dropped - stats0.dropped,
        "painted_fps": (window.view.frames_painted - painted0) / elapsed,
        "shown_fps": (window.view.frames_shown - shown0) / elapsed,
        "processing_fps": (stats.processed - stats0.processed) / elapsed,
        "latency_ms": sorted(latencies)[len(latencies) // 2] if latencies else 0.0,
    }


def main() -> int:
    """Benchmark every shared video and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames to capture per video")
    parser.add_argument("--model", help="emotion model (.keras); default: the shipped one")
    args = parser.parse_args()

    from PySide6.QtCore import QSettings

    from facial_emotion.gui.app import ensure_application
    from facial_emotion.paths import DEFAULT_EMOTION_MODEL, data_dir

    work = Path(tempfile.mkdtemp(prefix="fe-bench-gui-"))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(work / "qsettings"))
    model = args.model or str(DEFAULT_EMOTION_MODEL)
    if not Path(model).is_file():
        print(f"error: no emotion model at {model}: pass --model", file=sys.stderr)
        return 2
    ensure_application()
    print(f"{os.cpu_count()} cores, every overlay on, model {Path(model).name}, {args.frames} frames per video")
    print(f"{'video':28} {'src fps':>7} {'painted':>8} {'shown':>6} {'process':>8} {'dropped':>8} {'latency':>8}")
    for name in VIDEOS:
        video = data_dir() / "faces-pyfeat" / name
        if not video.is_file():
            print(f"{name:28} missing")
            continue
        r = run(video, model, args.frames, work)
        print(
            f"{name:28} {r['source_fps']:7.1f} {r['painted_fps']:8.1f} {r['shown_fps']:6.1f} "
            f"{r['processing_fps']:8.1f} {int(r['dropped']):5d}/{int(r['captured']):<3d} {r['latency_ms']:6.1f}ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
