"""What recording costs: processing FPS with and without a recorder, and drops at the video's own rate.

    python benchmarks/recording.py [--model tiny.keras] [--clean-video] [VIDEO ...]

Runs the threaded engine over each video (default: the shared single_face.mp4 and
WolfgangLanger_Pexels.mp4) three times: as fast as it can without recording, as fast as
it can while recording (the recorder may drop, never slow the engine), and at the
video's own rate while recording (the live case: the figure to watch is drops).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from facial_emotion.engine import Engine, SourceEnded, SourceFailed
from facial_emotion.paths import DEFAULT_EMOTION_MODEL, data_dir
from facial_emotion.recording import SessionRecorder
from facial_emotion.settings import Settings
from facial_emotion.sources import VideoFileSource


def run_once(video: Path, settings: Settings, *, record_to: Path | None, realtime: bool, clean: bool) -> dict:
    """One pass over a video; frames, seconds, fps and drop counts."""
    source = VideoFileSource(video)
    engine = Engine(settings, realtime=realtime)
    engine.start()
    recorder = None
    if record_to is not None:
        recorder = SessionRecorder(record_to, settings=settings, fps=source.fps, clean_video=clean)
    # Wait for the models to load, so load time is not counted as processing time.
    engine.open(VideoFileSource(video))
    while engine.stats().processed == 0:
        time.sleep(0.01)
    engine.stop()
    engine = Engine(settings, realtime=realtime, pipeline_factory=lambda s, p=engine.pipeline: p)
    engine.start()
    if recorder is not None:
        recorder.start()
        engine.add_listener(recorder.add_result)
    t0 = time.perf_counter()
    engine.open(source)
    done = False
    while not done:
        events = engine.poll_events()
        done = any(isinstance(e, SourceEnded | SourceFailed) for e in events)
        time.sleep(0.01)
    while engine.stats().processed + engine.stats().dropped < engine.stats().captured:
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    stats = engine.stats()
    engine.stop()
    out = {"frames": stats.processed, "s": seconds, "fps": stats.processed / seconds, "engine_dropped": stats.dropped}
    if recorder is not None:
        t1 = time.perf_counter()
        recorder.stop()
        out.update(recorder_dropped=recorder.dropped, written=recorder.written, finish_s=time.perf_counter() - t1)
    return out


def main() -> int:
    """Print the figures for each video."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--model", help="a .keras emotion model (default: the shipped one, else emotions off)")
    parser.add_argument("--clean-video", action="store_true", help="also record the clean video")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    shared = data_dir() / "faces-pyfeat"
    videos = args.videos or [shared / "single_face.mp4", shared / "WolfgangLanger_Pexels.mp4"]
    if args.model:
        settings, emotion = Settings(emotion_model_path=args.model), args.model
    elif DEFAULT_EMOTION_MODEL.is_file():
        settings, emotion = Settings(), DEFAULT_EMOTION_MODEL.name
    else:
        settings, emotion = Settings(emotion=None), "off (no model; give --model)"
    print(f"emotion model: {emotion}; clean video: {args.clean_video}")
    with tempfile.TemporaryDirectory() as tmp:
        for video in videos:
            base = run_once(video, settings, record_to=None, realtime=False, clean=False)
            rec = run_once(video, settings, record_to=Path(tmp), realtime=False, clean=args.clean_video)
            live = run_once(video, settings, record_to=Path(tmp), realtime=True, clean=args.clean_video)
            cost = (1 - rec["fps"] / base["fps"]) * 100
            print(f"{video.name}: {base['frames']} frames")
            print(f"  processing, no recording : {base['fps']:6.1f} fps")
            print(
                f"  processing, recording    : {rec['fps']:6.1f} fps ({cost:+.1f}% cost), "
                f"recorder dropped {rec['recorder_dropped']}, finishing took {rec['finish_s']:.1f} s"
            )
            print(
                f"  at the video's own rate  : {live['fps']:6.1f} fps, engine dropped {live['engine_dropped']}, "
                f"recorder dropped {live['recorder_dropped']} of {live['frames']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
