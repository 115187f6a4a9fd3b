"""Settings from a headless command's options, shared by every subcommand (analyze, record, ...)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from facial_emotion.settings import (
    DETECT_EVERY_RANGE,
    DETECT_WIDTH_RANGE,
    UPSAMPLE_RANGE,
    Settings,
    load_settings,
)

INT_OPTION_BOUNDS: Final[dict[str, tuple[int, int, str]]] = {
    "detect_every": (*DETECT_EVERY_RANGE, "frames"),
    "detect_width": (*DETECT_WIDTH_RANGE, "pixels, or 0 for full size"),
    "upsample": (*UPSAMPLE_RANGE, "(each step doubles the image: memory and time grow fourfold)"),
}
"""The settings' bounds of the numeric detection options (detect_width also takes 0), and their unit."""


DEFAULTS: Final = Settings()
"""Every setting at its default (the help texts quote them)."""


class CommandError(Exception):
    """A command cannot run as asked; the message is for the user, code is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def bounded_int(name: str) -> Callable[[str], int]:
    """An argparse type: a whole number within INT_OPTION_BOUNDS[name] (detect_width also takes 0)."""
    low, high, unit = INT_OPTION_BOUNDS[name]

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if not (low <= value <= high or (name == "detect_width" and value == 0)):
            raise argparse.ArgumentTypeError(f"must be from {low} to {high} {unit}; got {value}")
        return value

    return parse


def check_emotion_model(settings: Settings, origin: str) -> None:
    """Load an explicitly chosen emotion model once, so a bad file stops the command with its reason.

    The registry's model needs no check (a missing one only turns emotions off, with a note);
    a file the user named and that cannot load is an error: exit 2 naming the file.
    """
    if settings.emotion is None or not settings.emotion_model_path:
        return
    from facial_emotion.registry import get_spec
    from facial_emotion.vision.classifier import ModelLoadError

    try:  # the loader the pipeline uses: LiteRT on a verified twin, Keras only without one
        get_spec("emotion", settings.emotion).factory(Path(settings.emotion_model_path))
    except ModelLoadError as exc:
        raise CommandError(f"cannot load emotion model {exc.path} (given with {origin}): {exc.reason}") from exc


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings file with the command's options applied; a named emotion model must load.

    Raises CommandError when ``--model`` (or the settings file's model) cannot be loaded.
    """
    settings, message = load_settings(Path(args.settings)) if args.settings else (Settings(), None)
    if message:
        print(f"warning: {message}", file=sys.stderr)
    origin = f"the settings file {args.settings}" if args.settings else "the settings"
    changes: dict[str, Any] = {}
    detection: dict[str, Any] = {}
    if getattr(args, "model", None):
        changes["emotion_model_path"] = str(Path(args.model).expanduser())
        origin = "--model"
    if getattr(args, "no_emotion", False):
        changes["emotion"] = None
    if getattr(args, "landmarks", None):
        changes["landmarks"] = None if args.landmarks == "off" else args.landmarks
    if getattr(args, "detect_every", None):
        detection["every"] = args.detect_every
    if getattr(args, "detect_width", None) is not None:
        detection["width_px"] = args.detect_width or None
    if getattr(args, "upsample", None) is not None:
        detection["upsample"] = args.upsample
    if getattr(args, "largest_only", False):
        detection["largest_only"] = True
    settings = settings.replace(**changes).with_detection(**detection)
    if getattr(args, "smoothing", False):
        settings = settings.with_classifier(smoothing=True)
    check_emotion_model(settings, origin)
    return settings
