"""The ``facial-emotion`` command: the app by default, and headless subcommands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facial_emotion import __version__
from facial_emotion.progress import ProgressBar
from facial_emotion.settings import Settings, load_settings


def _settings_from_args(args: argparse.Namespace) -> Settings:
    settings, message = load_settings(Path(args.settings)) if args.settings else (Settings(), None)
    if message:
        print(f"warning: {message}", file=sys.stderr)
    changes: dict[str, Any] = {}
    if getattr(args, "model", None):
        changes["emotion_model_path"] = str(args.model)
    if getattr(args, "no_emotion", False):
        changes["emotion"] = None
    if getattr(args, "landmarks", None):
        changes["landmarks"] = None if args.landmarks == "off" else args.landmarks
    if getattr(args, "detect_every", None):
        changes["detect_every"] = args.detect_every
    if getattr(args, "detect_width", None) is not None:
        changes["detect_width_px"] = args.detect_width or None
    if getattr(args, "upsample", None) is not None:
        changes["upsample"] = args.upsample
    if getattr(args, "largest_only", False):
        changes["largest_only"] = True
    if getattr(args, "smoothing", False):
        changes["smoothing"] = True
    return settings.replace(**changes)


def _run_analyze(args: argparse.Namespace) -> int:
    from facial_emotion.analyze import AnalysisError, analyze
    from facial_emotion.paths import DEFAULT_EMOTION_MODEL

    settings = _settings_from_args(args)
    if settings.emotion and not settings.emotion_model_path and not DEFAULT_EMOTION_MODEL.is_file():
        print(
            f"note: no emotion model at {DEFAULT_EMOTION_MODEL}; emotions are off (give one with --model)",
            file=sys.stderr,
        )
        settings = settings.replace(emotion=None)
    out = Path(args.out) if args.out else Path("out") / Path(args.input).stem
    progress = ProgressBar(Path(args.input).name)
    try:
        summary = analyze(
            args.input,
            out,
            settings=settings,
            write_video=not args.no_video,
            progress=progress,
            speech=not args.no_speech,
            speech_engine=args.engine,
            vosk_model=args.vosk_model,
        )
    except AnalysisError as exc:
        progress.finish()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        progress.finish()
        print(f"error: cannot write results to {out}: {exc}", file=sys.stderr)
        return 3
    progress.finish()
    for name, error in summary["model_errors"].items():
        print(f"warning: {name} model off: {error}", file=sys.stderr)
    speech = summary["speech"]
    said = f"{speech['utterances']} utterance(s)" if not speech.get("error") else f"no speech ({speech['error']})"
    print(
        f"{summary['frames']} frames, {len(summary['tracks'])} face track(s), {summary['blinks']} blinks, {said}, "
        f"{summary['processing_fps']} fps -> {out}"
    )
    if not summary["complete"]:
        print(f"error: {summary['error']} (results up to there are kept in {out})", file=sys.stderr)
        return 4
    return 0


def _run_gui(args: argparse.Namespace) -> int:
    try:
        from facial_emotion.gui.app import run_app
    except ImportError as exc:
        print(f"error: the desktop app is not available: {exc}", file=sys.stderr)
        return 1
    return run_app(args)


def _optional_registrations() -> list[Callable[[Any], None]]:
    """Subcommands of the training and speech packages (absent ones are skipped)."""
    found = []
    for module in ("facial_emotion.training.cli", "facial_emotion.speech.cli", "facial_emotion.recording_cli"):
        try:
            found.append(__import__(module, fromlist=["register"]).register)
        except ImportError as exc:
            if not exc.name or not module.startswith(exc.name):
                raise
    return found


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="facial-emotion",
        description="Offline facial emotion recognition: run without a command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"facial-emotion {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--settings", help="settings file (default: the user's settings.json)")
    parser.add_argument("--source", help="for the app: camera index, video, image or folder to open")
    parser.add_argument("--record", metavar="DIR", help="for the app: start recording at once, into DIR")
    parser.add_argument("--mic", metavar="DEVICE", help="for the app: listen to this microphone (index or name)")
    parser.set_defaults(func=_run_gui)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("analyze", help="analyse a video, image or image folder headlessly")
    p.add_argument("input", help="video file, image, or folder of images")
    p.add_argument("--out", help="output folder (default: out/<input name>)")
    p.add_argument("--no-video", action="store_true", help="do not write the annotated video")
    p.add_argument("--model", help="a .keras emotion model to use instead of the shipped one")
    p.add_argument("--no-emotion", action="store_true", help="skip emotion classification")
    p.add_argument("--landmarks", choices=["68", "5", "off"], help="landmark model (default 68)")
    p.add_argument("--detect-every", type=int, help="run the detector every N frames (default 5)")
    p.add_argument("--detect-width", type=int, help="detect on frames downscaled to this width (0: full)")
    p.add_argument("--upsample", type=int, help="dlib upsampling for small faces (default 0)")
    p.add_argument("--largest-only", action="store_true", help="keep only the largest face")
    p.add_argument("--smoothing", action="store_true", help="smooth emotions over time per face")
    p.add_argument("--no-speech", action="store_true", help="do not transcribe the sound track")
    p.add_argument("--engine", default="auto", choices=["auto", "vosk", "pocketsphinx"], help="speech engine")
    p.add_argument("--vosk-model", help="folder of a Vosk model (default: the downloaded one)")
    p.set_defaults(func=_run_analyze)

    g = sub.add_parser("gui", help="open the desktop app (the default)")
    g.add_argument("--source", default=argparse.SUPPRESS, help="camera index, video, image or folder to open")
    g.add_argument("--settings", default=argparse.SUPPRESS, help="settings file")
    g.add_argument("--record", metavar="DIR", default=argparse.SUPPRESS, help="start recording at once, into DIR")
    g.add_argument("--mic", metavar="DEVICE", default=argparse.SUPPRESS, help="listen to this microphone")
    g.set_defaults(func=_run_gui)
    for register in _optional_registrations():
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``facial-emotion`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
