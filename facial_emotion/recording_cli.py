"""Subcommands ``record`` (headless session recording) and ``report`` (rebuild a session's report).

Exit codes: 0 done; 2 the input cannot be used (no such source, not a session folder,
a folder this user may not read); 3 the output cannot be written (no permission,
read-only media, a full disk); 4 the source failed while recording. Every error is
one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

AUDIO_CHUNK_MS = 100
EXIT_INPUT = 2
EXIT_OUTPUT = 3
EXIT_SOURCE = 4
RECORD_FINISH_TIMEOUT_S = 120.0
"""How long ``record`` waits at the end for its session folder to be finished (video remuxed)."""


def describe_os_error(exc: OSError) -> str:
    """An OSError as one line: what went wrong and the path it concerns."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "the disk is full"
    return f"{exc.filename}: {reason}" if exc.filename else reason


def resolve_source(spec: str) -> tuple[str | Path, str]:
    """What ``record SOURCE`` opens, and a note that says which it took.

    An existing file or folder is a path, even when its name is a number; a bare
    integer is a camera index only when no such path exists.
    """
    path = Path(spec).expanduser()
    try:
        exists = path.exists()
    except OSError:
        exists = False
    if exists:
        kind = "folder" if path.is_dir() else "file"
        if spec.strip().isdigit():
            return path, f"note: reading the {kind} {path} (not camera {spec.strip()})"
        return path, ""
    if spec.strip().isdigit():
        return spec.strip(), f"note: no file or folder named {spec.strip()}; opening camera {spec.strip()}"
    return spec, ""


def register(subparsers: Any) -> None:
    """Add ``record`` and ``report`` to the ``facial-emotion`` command."""
    p = subparsers.add_parser("record", help="record a session (video, frames.csv, report) from any source")
    p.add_argument("source", help="camera index, video file, image or folder")
    p.add_argument("--out", required=True, help="folder that holds the sessions (one subfolder per session)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: at the end of the source)")
    p.add_argument("--clean-video", action="store_true", help="also keep the video without overlays")
    p.add_argument("--realtime", action="store_true", help="play files at their own rate (may drop frames)")
    p.add_argument("--audio", help="audio (or video) file to record as the session's sound")
    p.add_argument(
        "--model", help="an emotion model (.keras with its LiteRT twin, or a .tflite) instead of the shipped one"
    )
    p.add_argument("--no-emotion", action="store_true", help="skip emotion classification")
    p.add_argument("--participant", metavar="P", help="the study's participant id, kept in session.json")
    p.add_argument("--condition", metavar="C", help="the study condition, kept in session.json")
    p.set_defaults(func=run_record)

    r = subparsers.add_parser("report", help="rebuild report.html of a session folder (finishing it after a crash)")
    r.add_argument("folder", help="a session folder (or an analyze --out folder)")
    r.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Recover the folder if it was left unfinished, else rebuild its report."""
    from facial_emotion.session.files import FRAMES_FILE, REPORT_FILE
    from facial_emotion.session.load import SessionError
    from facial_emotion.session.mark import is_active
    from facial_emotion.session.recovery import check_writable, is_unfinished, recover_session
    from facial_emotion.session.report import build_report

    folder = Path(args.folder).expanduser()
    try:
        if not folder.is_dir():
            print(f"error: {folder} is not a folder", file=sys.stderr)
            return EXIT_INPUT
        table = folder / FRAMES_FILE
        for path, mode in ((folder, os.R_OK | os.X_OK), (table, os.R_OK)):
            if os.path.exists(path) and not os.access(path, mode):
                print(f"error: cannot read {path}: permission denied", file=sys.stderr)
                return EXIT_INPUT
        if not table.is_file():
            print(f"error: {folder} holds no {FRAMES_FILE} (not a session folder)", file=sys.stderr)
            return EXIT_INPUT
        if is_active(folder):
            print(f"error: {folder} is being recorded by a running program", file=sys.stderr)
            return EXIT_INPUT
    except OSError as exc:
        print(f"error: cannot read {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_INPUT
    try:
        check_writable(folder)
    except OSError as exc:
        print(f"error: cannot write the report of {folder}: {exc.strerror}", file=sys.stderr)
        return EXIT_OUTPUT
    try:
        if is_unfinished(folder):
            info = recover_session(folder)
            print(f"recovered unfinished session {folder} ({info.duration_s or 0:.1f} s)")
            path = folder / (info.report or REPORT_FILE)
        else:
            path = build_report(folder)
    except SessionError as exc:
        print(f"error: cannot read the session: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        if exc.filename and os.path.exists(exc.filename) and not os.access(exc.filename, os.R_OK):
            print(f"error: cannot read {describe_os_error(exc)}", file=sys.stderr)
            return EXIT_INPUT
        print(f"error: cannot write the report: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_OUTPUT
    print(path)
    return 0


def read_pcm16k(path: Path) -> bytes:
    """The sound of any audio or video file as 16 kHz mono int16 PCM (via ffmpeg)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise OSError("ffmpeg is not installed")
    args = [exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path)]
    proc = subprocess.run(
        [*args, "-vn", "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
        capture_output=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise OSError(f"cannot read sound from {path}: {message[-1] if message else 'no audio track'}")
    return proc.stdout


def feed_pcm(recorder: Any, pcm: bytes, t0_ms: float = 0.0, *, start: int = 0, until_ms: float | None = None) -> int:
    """Hand PCM to a recorder in 100 ms chunks, like a microphone, up to until_ms; the next offset."""
    step = 16000 * 2 * AUDIO_CHUNK_MS // 1000
    offset = start
    while offset < len(pcm):
        t_ms = t0_ms + offset / 32.0  # 32 bytes per ms at 16 kHz, 16 bit
        if until_ms is not None and t_ms > until_ms:
            break
        recorder.add_audio(pcm[offset : offset + step], t_ms)
        offset += step
    return offset


def run_record(args: argparse.Namespace) -> int:
    """Record a source through a live session until it ends, --seconds pass, or Ctrl+C / SIGTERM."""
    from facial_emotion.cli_settings import settings_from_args
    from facial_emotion.live import LiveSession
    from facial_emotion.live.events import SourceEnded, SourceFailed
    from facial_emotion.paths import DEFAULT_EMOTION_MODEL
    from facial_emotion.session.recovery import recover_all
    from facial_emotion.session.schema import study_text
    from facial_emotion.sources import SourceError, open_source

    settings = settings_from_args(args).replace(speech_on=False)  # the sound is --audio's, as given
    if args.seconds is not None and args.seconds <= 0:
        print("error: --seconds must be positive", file=sys.stderr)
        return EXIT_INPUT
    try:
        study = {k: study_text(getattr(args, k, None), f"--{k}") for k in ("participant", "condition")}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    spec, note = resolve_source(str(args.source))
    if note:
        print(note, file=sys.stderr)
    try:
        source = open_source(spec)
        pcm = read_pcm16k(Path(args.audio)) if args.audio else None
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_INPUT
    if settings.emotion and not settings.emotion_model_path and not DEFAULT_EMOTION_MODEL.is_file():
        print(f"note: no emotion model at {DEFAULT_EMOTION_MODEL}; emotions are off", file=sys.stderr)
        settings = settings.replace(emotion=None)
    root = Path(args.out).expanduser()
    for folder in recover_all(root):
        print(f"recovered unfinished session {folder}", file=sys.stderr)
    realtime = bool(args.realtime or source.live)
    live = LiveSession(settings, realtime=realtime, record_dir=root)
    live.open(source)
    folder = live.start_recording(
        clean_video=args.clean_video,
        fps=source.fps,
        source_name=str(spec),
        lossless=not realtime,
        extra_info={"realtime": realtime},
        **study,
    )
    recorder = live.recording.recorder
    assert folder is not None and recorder is not None
    if recorder.error is not None:  # no folder (no permission, read-only media): nothing to run
        live.close(recording_timeout_s=RECORD_FINISH_TIMEOUT_S)
        print(f"error: {recorder.error}", file=sys.stderr)
        return EXIT_OUTPUT
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"recording to {folder}", flush=True)
    fed = 0
    live.start(recover=False)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    code = 0
    try:
        while not stop.is_set() and recorder.error is None:
            if deadline is not None and time.monotonic() >= deadline:
                break
            events = live.poll()
            failed = [e for e in events if isinstance(e, SourceFailed)]
            if failed:
                print(f"error: {failed[0].message}", file=sys.stderr)
                code = EXIT_SOURCE
                break
            if any(isinstance(e, SourceEnded) for e in events):
                _wait_processed(live.engine)
                break
            if pcm is not None and (latest := live.latest()) is not None:
                # The sound follows the pictures, as a live microphone's would.
                fed = feed_pcm(live.recording, pcm, start=fed, until_ms=latest.frame.timestamp_ms)
            stop.wait(0.05)
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    stats = live.stats()
    if pcm is not None and (latest := live.latest()) is not None:
        feed_pcm(live.recording, pcm, start=fed, until_ms=latest.frame.timestamp_ms + AUDIO_CHUNK_MS)
    live.stop_recording(extra_info={"engine_captured": stats.captured, "engine_dropped": stats.dropped})
    live.close(recording_timeout_s=RECORD_FINISH_TIMEOUT_S)
    if recorder.error:
        print(f"error: {recorder.error}", file=sys.stderr)
        code = EXIT_OUTPUT
    print(f"{recorder.written} frames ({recorder.dropped} dropped by the recorder) -> {folder}")
    return code


def _wait_processed(engine: Any, timeout_s: float = 10.0) -> None:
    """After the source ends, let the inference thread finish the frame it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = engine.stats()
        if stats.processed + stats.dropped >= stats.captured:
            return
        time.sleep(0.02)
