"""Speech subcommands: ``transcribe``, ``listen``, ``models list`` and ``models download NAME``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from facial_emotion.progress import ProgressBar
from facial_emotion.speech.download import READ_TIMEOUT_S
from facial_emotion.speech.recognizers import ENGINES


def _ms(value: float) -> str:
    """mm:ss.mmm for a time in ms."""
    minutes, ms = divmod(max(0, round(value)), 60_000)
    return f"{minutes:02d}:{ms / 1000:06.3f}"


def _run_transcribe(args: argparse.Namespace) -> int:
    from facial_emotion.speech.transcribe import TranscriptionError, transcribe_file, utterance_to_json

    try:
        utterances = transcribe_file(args.file, engine=args.engine, vosk_model=args.vosk_model)
    except TranscriptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([utterance_to_json(u) for u in utterances], indent=2))
        return 0
    if not utterances:
        print("no speech recognised", file=sys.stderr)
    for u in utterances:
        sentiment = f"{u.sentiment.label} {u.sentiment.compound:+.2f}" if u.sentiment else ""
        print(f"[{_ms(u.start_ms)} - {_ms(u.end_ms)}] {u.text}  ({sentiment})")
        print("    " + " ".join(f"{w.text}@{w.start_ms / 1000:.2f}s({w.confidence:.2f})" for w in u.words))
    return 0


def _run_listen(args: argparse.Namespace) -> int:
    from facial_emotion.speech.audio import AudioError, MicrophoneAudioSource, list_microphones
    from facial_emotion.speech.recognizers import open_recognizer
    from facial_emotion.speech.transcribe import LiveTranscriber

    if args.list:
        for index, name in list_microphones():
            print(f"{index}: {name}")
        return 0
    device: int | str | None = int(args.mic) if args.mic and args.mic.isdigit() else args.mic
    try:
        source = MicrophoneAudioSource(device)
    except AudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    listener = LiveTranscriber(source, open_recognizer_fn=lambda: open_recognizer(args.engine, args.vosk_model))
    listener.start()
    deadline = time.monotonic() + args.seconds if args.seconds else None
    shown = ""
    try:
        while listener.running and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
            partial, finals = listener.poll()
            for u in finals:
                label = f"{u.sentiment.label} {u.sentiment.compound:+.2f}" if u.sentiment else ""
                print(f"\r{u.text}  ({label})" + " " * max(0, len(shown) - len(u.text)), flush=True)
                shown = ""
            if partial is not None and partial.text != shown:
                shown = partial.text
                print(f"\r… {shown}", end="", flush=True)
    finally:
        listener.stop()
    if listener.error:
        print(f"error: {listener.error}", file=sys.stderr)
        return 2
    return 0


def _run_models_list(args: argparse.Namespace) -> int:
    from facial_emotion.speech.download import VOSK_MODEL_ENV, find_vosk_model, model_status

    for spec, folder, present in model_status():
        state = "present" if present else f"missing (facial-emotion models download {spec.key})"
        print(f"{spec.key:20s} {state:48s} {folder}\n{'':20s} {spec.display_name}")
    chosen = find_vosk_model()
    print("pocketsphinx         present (bundled US English model)")
    print(
        f"speech engine (auto): {'vosk, model ' + str(chosen) if chosen else 'pocketsphinx'}"
        f" (a model folder can be given with --vosk-model or ${VOSK_MODEL_ENV})"
    )
    return 0


class DownloadProgress:
    """The byte progress bar, which also says "stalled, no data for N s" while the server is silent.

    On a terminal the stall replaces the bar's line every second; elsewhere (logs, CI) a
    line is printed when the stall starts and every 5 s after.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = ProgressBar(label, unit="bytes")
        self._lock = threading.Lock()
        self._done, self._total = 0, None
        self._stall_width = 0
        self._stall_shown_s = -1.0

    def __call__(self, done: int, total: int | None) -> None:
        """Bytes received so far (called by the download)."""
        with self._lock:
            self._done, self._total = done, total
            if self._stall_width and self.bar.tty:
                print("\r" + " " * self._stall_width, end="", file=sys.stderr)
            self._stall_width, self._stall_shown_s = 0, -1.0
            self.bar(done, total)

    def stalled(self, seconds: float) -> None:
        """The server has sent nothing for seconds (called once a second from a helper thread)."""
        with self._lock:
            have = f"{self._done / 1e6:.1f}" + (f"/{self._total / 1e6:.1f}" if self._total else "")
            line = f"{self.label} {have} MB  stalled, no data for {seconds:.0f} s"
            if self.bar.tty:
                print("\r" + line.ljust(self._stall_width), end="", file=sys.stderr, flush=True)
                self._stall_width = max(self._stall_width, len(line))
            elif self._stall_shown_s < 0 or seconds - self._stall_shown_s >= 5:
                print(line, file=sys.stderr, flush=True)
                self._stall_shown_s = seconds

    def finish(self) -> None:
        """End the bar's line."""
        self.bar.finish()


def _run_models_download(args: argparse.Namespace) -> int:
    from facial_emotion.speech.download import DownloadError, download_model, model_spec

    try:
        spec = model_spec(args.name)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = DownloadProgress(spec.key)
    try:
        folder = download_model(
            spec.key,
            dest=args.dest,
            url=args.url,
            progress=progress,
            stalled=progress.stalled,
            timeout_s=args.timeout,
        )
    except DownloadError as exc:
        progress.finish()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        progress.finish()
        print(f"error: cannot write the model: {exc}", file=sys.stderr)
        return 3
    progress.finish()
    print(f"{spec.key}: verified and installed in {folder}")
    return 0


def _seconds(text: str) -> float:
    """An argparse type: seconds from 1 to 600."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not 1 <= value <= 600:
        raise argparse.ArgumentTypeError(f"must be from 1 to 600 seconds; got {text}")
    return value


def _models_help(parser: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def register(subparsers: Any) -> None:
    """Add the speech subcommands to the main parser's subparsers."""
    p = subparsers.add_parser("transcribe", help="transcribe a WAV or video file with word times and sentiment")
    p.add_argument("file", help="WAV file, or a video/audio file with an audio track")
    p.add_argument("--json", action="store_true", help="print a JSON list of utterances")
    p.add_argument("--engine", choices=ENGINES, default="auto", help="speech engine (default: auto)")
    p.add_argument(
        "--vosk-model",
        metavar="DIR",
        help="a Vosk model folder (default: $FACIAL_EMOTION_VOSK_MODEL or the downloaded one)",
    )
    p.set_defaults(func=_run_transcribe)

    p = subparsers.add_parser("listen", help="live subtitles and sentiment from a microphone")
    p.add_argument("--mic", help="input device index or name (default: the system's)")
    p.add_argument("--list", action="store_true", help="list input devices and exit")
    p.add_argument("--engine", choices=ENGINES, default="auto", help="speech engine (default: auto)")
    p.add_argument("--vosk-model", metavar="DIR", help="a Vosk model folder")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: Ctrl+C)")
    p.set_defaults(func=_run_listen)

    models = subparsers.add_parser("models", help="list or download speech models")
    models.set_defaults(func=_models_help(models))
    actions = models.add_subparsers(dest="models_action", metavar="ACTION")
    a = actions.add_parser("list", help="show the speech models and whether they are present")
    a.set_defaults(func=_run_models_list)
    a = actions.add_parser("download", help="download, verify and install a speech model")
    a.add_argument("name", help="model name, e.g. vosk-small-en-us")
    a.add_argument("--dest", metavar="DIR", help="install under this folder (default: the user data folder)")
    a.add_argument("--url", help="download from this URL instead of the official one")
    a.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help=f"give up a try when the server sends nothing for this long, 1-600 (default {READ_TIMEOUT_S:g})",
    )
    a.set_defaults(func=_run_models_download)
