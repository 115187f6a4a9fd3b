"""The ``facial-emotion`` command: the app by default, and headless subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from facial_emotion import __version__, recording_cli, summarize_cli
from facial_emotion.cli_settings import DEFAULTS, CommandError, bounded_int, settings_from_args
from facial_emotion.progress import ProgressBar
from facial_emotion.settings import DETECT_EVERY_RANGE, DETECT_WIDTH_RANGE, UPSAMPLE_RANGE
from facial_emotion.speech import cli as speech_cli
from facial_emotion.training import cli as training_cli


def _run_analyze(args: argparse.Namespace) -> int:
    from facial_emotion.analyze import AnalysisError, analyze
    from facial_emotion.paths import DEFAULT_EMOTION_MODEL

    settings = settings_from_args(args)
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
    if settings.emotion_model_path and "emotion" in summary["model_errors"]:
        print(f"error: {summary['model_errors']['emotion']}", file=sys.stderr)
        return 2
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="facial-emotion",
        description="Offline facial emotion recognition: run without a command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"facial-emotion {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--settings", metavar="FILE", help="settings file (default: the user's settings.json)")
    parser.add_argument("--source", help="for the app: camera index, video, image or folder to open")
    parser.add_argument("--record", metavar="DIR", help="for the app: start recording at once, into DIR")
    parser.add_argument("--mic", metavar="DEVICE", help="for the app: listen to this microphone (index or name)")
    parser.set_defaults(func=_run_gui)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("analyze", help="analyse a video, image or image folder headlessly")
    p.add_argument("input", help="video file, image, or folder of images")
    p.add_argument("--out", metavar="DIR", help="output folder (default: out/<input name>)")
    p.add_argument("--no-video", action="store_true", help="do not write the annotated video")
    p.add_argument(
        "--model",
        metavar="FILE",
        help="an emotion model (.keras with its LiteRT twin, or a .tflite) instead of the shipped one",
    )
    p.add_argument("--no-emotion", action="store_true", help="skip emotion classification")
    p.add_argument("--landmarks", choices=["68", "5", "off"], help="landmark model (default 68)")
    p.add_argument(
        "--detect-every",
        type=bounded_int("detect_every"),
        metavar="N",
        help="run the detector every N frames, {}-{} (default {})".format(
            *DETECT_EVERY_RANGE, DEFAULTS.detection.every
        ),
    )
    p.add_argument(
        "--detect-width",
        type=bounded_int("detect_width"),
        metavar="PX",
        help="detect on frames downscaled to this width, {}-{}, or 0 for full size (default {})".format(
            *DETECT_WIDTH_RANGE, DEFAULTS.detection.width_px or 0
        ),
    )
    p.add_argument(
        "--upsample",
        type=bounded_int("upsample"),
        metavar="N",
        help="dlib upsampling for small faces, {}-{} (default {})".format(*UPSAMPLE_RANGE, DEFAULTS.detection.upsample),
    )
    p.add_argument("--largest-only", action="store_true", help="keep only the largest face")
    p.add_argument("--smoothing", action="store_true", help="smooth emotions over time per face")
    p.add_argument("--no-speech", action="store_true", help="do not transcribe the sound track")
    p.add_argument(
        "--engine", default="auto", choices=["auto", "vosk", "pocketsphinx"], help="speech engine (default: auto)"
    )
    p.add_argument("--vosk-model", metavar="DIR", help="folder of a Vosk model (default: the downloaded one)")
    p.set_defaults(func=_run_analyze)

    g = sub.add_parser("gui", help="open the desktop app (the default)")
    g.add_argument("--source", default=argparse.SUPPRESS, help="camera index, video, image or folder to open")
    g.add_argument("--settings", metavar="FILE", default=argparse.SUPPRESS, help="settings file")
    g.add_argument("--record", metavar="DIR", default=argparse.SUPPRESS, help="start recording at once, into DIR")
    g.add_argument("--mic", metavar="DEVICE", default=argparse.SUPPRESS, help="listen to this microphone")
    g.set_defaults(func=_run_gui)
    for register in (training_cli.register, speech_cli.register, recording_cli.register, summarize_cli.register):
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``facial-emotion`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        # Before anything imports TensorFlow: its INFO and WARNING lines are noise to a user
        # (the absl lines that ignore this are filtered where the model is loaded).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
