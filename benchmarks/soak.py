"""Endurance: the real window on a looped video with every overlay, speech and recording on.

Opens the main window (offscreen unless DISPLAY/QT_QPA_PLATFORM say otherwise) on a shared
video set to loop, switches on every overlay, Listen (the video's sound track is transcribed
and its subtitles and mood follow the video) and Record, and keeps it running for a number of
session minutes. Every report interval it prints the process's RSS, the number of Python
objects the collector tracks, the thread count, `sys.getrefcount(None)`, frames captured,
processed and dropped, and the processing and painting rates. At the end it stops the
recording, checks the session folder (rows, monotonic time, passes) and prints the verdict:
RSS growth after the first 5 minutes under 50 MB, a constant thread count, no crash.

    python benchmarks/soak.py [--minutes 60] [--speed 1] [--video PATH] [--every-s 60]

``--speed N`` plays the file N times faster than its own rate (the session clock runs N times
faster than the wall clock): 60 session minutes at ``--speed 2`` take 30 minutes. Speed 1 is
what a lab sees. The exit code is 0 when every promise held, 1 when one did not.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RSS_GROWTH_LIMIT_MB = 50.0
WARM_UP_MIN = 5.0
FINISH_WAIT_S = 600.0
"""How long the soak waits, after stopping the recording, for its folder to be finished."""


def track_state(window: Any) -> int:
    """Entries in every per-track table of the pipeline and the mood fuser (must stay bounded)."""
    pipeline = window.live.engine.pipeline
    sizes = pipeline.state_sizes() if pipeline is not None else {}
    return sum(sizes.values()) + len(window.live.fuser.track_ids())


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def check_session(folder: Path) -> dict[str, object]:
    """What the recorded session folder holds, read back as a viewer would (``load_session``)."""
    from facial_emotion.session.load import SessionError, load_session

    out: dict[str, object] = {"folder": str(folder)}
    try:
        session = load_session(folder)
    except SessionError as exc:
        out["error"] = str(exc)
        return out
    times = session.frames["timestamp_ms"] if len(session.frames) else np.zeros(0)
    out["rows"] = len(session.frames)
    out["span_s"] = round(float(times[-1] - times[0]) / 1000.0, 1) if len(times) else 0.0
    out["monotonic"] = bool(np.all(np.diff(times) >= 0))
    out["passes"] = len(set(session.frames["pass"].tolist())) if len(times) else 0
    out["finished"] = session.info.finished
    out["duration_s"] = session.info.duration_s
    out["utterances"] = len(session.transcript)
    last = int(session.frames.data_frames[-1]) if len(times) else None
    out["last_row_in_video"] = last is not None and session.frames.video_frame_of(last) is not None
    out["video_mb"] = round(session.video.stat().st_size / 2**20, 1) if session.video else 0.0
    return out


def main() -> int:
    """Run the soak and print one line per interval, then the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="session minutes to run (default 60)")
    parser.add_argument("--speed", type=float, default=1.0, help="play the file this many times its rate")
    parser.add_argument("--video", type=Path, default=None, help="default: the shared WolfgangLanger video")
    parser.add_argument("--every-s", type=float, default=60.0, help="session seconds between report lines")
    parser.add_argument("--model", help="emotion model (.keras); default: the shipped one")
    parser.add_argument("--keep", action="store_true", help="keep the recorded session folder")
    args = parser.parse_args()
    if not 0.1 <= args.speed <= 8:
        parser.error("--speed must be between 0.1 and 8")

    from PySide6.QtCore import QSettings

    from facial_emotion.gui.actions import OVERLAY_ROWS
    from facial_emotion.gui.app import ensure_application
    from facial_emotion.gui.window import MainWindow
    from facial_emotion.live.events import RecordingFinished
    from facial_emotion.paths import data_dir
    from facial_emotion.settings import Settings, save_settings

    video = args.video or data_dir() / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4"
    if not video.is_file():
        print(f"error: no video at {video}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="fe-soak-"))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(work / "qsettings"))
    overlays = tuple(row.key for row in OVERLAY_ROWS)
    settings = Settings(overlays=overlays, loop_video=True, speech_on=True)
    if args.model:
        settings = settings.replace(emotion_model_path=args.model)
    settings_path = work / "settings.json"
    save_settings(settings, settings_path)
    sessions = work / "sessions"

    app = ensure_application()
    window = MainWindow(settings_path, source=str(video), record_dir=sessions)
    window.live.engine.playback_speed = args.speed
    window.resize(1280, 800)
    window.show()
    t_start = time.monotonic()
    while window.live.stats().processed < 5:
        app.processEvents()
        time.sleep(0.005)
        if time.monotonic() - t_start > 120:
            print("error: the window processed no frame in 2 minutes", file=sys.stderr)
            return 1
    print(
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {video.name} looped at {args.speed}x, "
        f"every overlay, speech and recording on; {args.minutes:g} session minutes",
        flush=True,
    )
    print(
        f"{'min':>5} {'wall':>6} {'RSS MB':>7} {'objects':>8} {'threads':>7} {'None refs':>10} "
        f"{'captured':>9} {'processed':>9} {'dropped':>8} {'proc fps':>8} {'paint fps':>9} {'state':>6} "
        f"{'rec q MB':>8}",
        flush=True,
    )
    t0 = time.monotonic()
    last_t, last_stats, last_painted = t0, window.live.stats(), window.view.frames_painted
    samples: list[dict[str, float]] = []
    next_report = args.every_s
    end_session_s = args.minutes * 60.0
    queue_peak_mb = 0.0
    while True:
        app.processEvents()
        time.sleep(0.004)
        recording = window.live.recording_stats()
        if recording is not None:  # the recorder's backlog: the bounded queue's high-water mark
            queue_peak_mb = max(queue_peak_mb, recording.queued_bytes / 2**20)
        now = time.monotonic()
        session_s = (now - t0) * args.speed
        if session_s < next_report and session_s < end_session_s:
            continue
        gc.collect()
        stats = window.live.stats()
        span = now - last_t
        sample = {
            "minute": session_s / 60.0,
            "wall_min": (now - t0) / 60.0,
            "rss_mb": rss_mb(),
            "objects": float(len(gc.get_objects())),
            "threads": float(threading.active_count()),
            "none_refs": float(sys.getrefcount(None)),
            "captured": float(stats.captured),
            "processed": float(stats.processed),
            "dropped": float(stats.dropped),
            "proc_fps": (stats.processed - last_stats.processed) / span,
            "paint_fps": (window.view.frames_painted - last_painted) / span,
            "track_state": float(track_state(window)),
            "queue_mb": queue_peak_mb,
        }
        samples.append(sample)
        print(
            f"{sample['minute']:5.1f} {sample['wall_min']:6.1f} {sample['rss_mb']:7.1f} {int(sample['objects']):8d} "
            f"{int(sample['threads']):7d} {int(sample['none_refs']):10d} {int(sample['captured']):9d} "
            f"{int(sample['processed']):9d} {int(sample['dropped']):8d} {sample['proc_fps']:8.1f} "
            f"{sample['paint_fps']:9.1f} {int(sample['track_state']):6d} {sample['queue_mb']:8.1f}",
            flush=True,
        )
        last_t, last_stats, last_painted = now, stats, window.view.frames_painted
        next_report += args.every_s
        if session_s >= end_session_s:
            break

    finished: list[Path] = []
    window.live.subscribe(lambda e: finished.append(e.folder) if isinstance(e, RecordingFinished) else None)
    folder = window.live.stop_recording()
    stop_t = time.monotonic()
    while folder is not None and folder not in finished and time.monotonic() - stop_t < FINISH_WAIT_S:
        app.processEvents()  # as a user waits for "Session saved" before quitting
        time.sleep(0.05)
    finish_s = time.monotonic() - stop_t
    window.close()
    app.processEvents()
    session = check_session(folder) if folder is not None else {"folder": None}

    after = [s for s in samples if s["minute"] >= WARM_UP_MIN] or samples[-1:]
    growth = after[-1]["rss_mb"] - after[0]["rss_mb"]
    threads = {int(s["threads"]) for s in samples}
    none_fell = any(b["none_refs"] < a["none_refs"] for a, b in itertools.pairwise(samples))
    captured = samples[-1]["captured"]
    dropped_share = samples[-1]["dropped"] / captured if captured else 0.0
    print()
    print(
        f"RSS: {samples[0]['rss_mb']:.0f} MB at minute {samples[0]['minute']:.0f}, "
        f"{after[0]['rss_mb']:.0f} MB at minute {after[0]['minute']:.0f}, {samples[-1]['rss_mb']:.0f} MB at the end: "
        f"growth after warm-up {growth:+.1f} MB (limit {RSS_GROWTH_LIMIT_MB:.0f})"
    )
    print(
        f"threads: {sorted(threads)}; objects {int(after[0]['objects'])} -> {int(samples[-1]['objects'])}; "
        f"None refcount {'fell' if none_fell else 'never fell'}"
    )
    print(
        f"frames: {int(captured)} captured, {int(samples[-1]['processed'])} processed, "
        f"{int(samples[-1]['dropped'])} dropped ({dropped_share:.1%}); "
        f"median processing {sorted(s['proc_fps'] for s in samples)[len(samples) // 2]:.1f} fps"
    )
    state_peak = max(int(s["track_state"]) for s in after)
    state_limit = 2 * max(int(s["track_state"]) for s in samples if s["minute"] < WARM_UP_MIN or s is after[0]) + 8
    print(f"per-track state: at most {state_peak} entries after warm-up (limit {state_limit})")
    print(
        f"recorder queue: at most {queue_peak_mb:.0f} MB of frames waiting; folder finished {finish_s:.1f} s after stop"
    )
    print(f"session: {json.dumps(session)}")
    ok = growth < RSS_GROWTH_LIMIT_MB and len(threads) == 1 and not none_fell and state_peak <= state_limit
    ok = ok and bool(session.get("rows")) and bool(session.get("monotonic")) and bool(session.get("last_row_in_video"))
    print("verdict:", "PASS" if ok else "FAIL")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
