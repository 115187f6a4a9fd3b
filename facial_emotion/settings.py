"""User settings: frozen dataclasses, validated field by field, stored sparsely as JSON, written atomically.

``Settings`` holds the app's choices, and each stage's own options as a frozen dataclass of
their own (MediaPipe Tasks style): ``DetectionOptions`` for the face detector,
``ClassifierOptions`` for the emotion classifier. Every field has a type and a range in a
rules table (``FIELD_RULES``, ``DETECTION_RULES``, ``CLASSIFIER_RULES``). Settings made in
code are checked on construction (a bad value there is a programming error: ``ValueError``);
a settings file is checked field by field on load, and a field that is wrong falls back to
its default with a warning while the rest of the file is kept. pydantic would do the same
checking, but costs an import of 50-100 ms at every start for 25 fields; the tables below
are the whole schema.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from facial_emotion.atomic import write_text_atomic
from facial_emotion.paths import user_config_dir

log = logging.getLogger(__name__)

DEFAULT_OVERLAYS: Final[tuple[str, ...]] = ("boxes", "landmarks", "emotion", "bars", "blinks", "fps", "mood")
SpeechEngine = Literal["auto", "vosk", "pocketsphinx"]
SPEECH_ENGINES: Final[tuple[str, ...]] = ("auto", "vosk", "pocketsphinx")
OVERLAY_KEYS: Final[tuple[str, ...]] = ("boxes", "landmarks", "emotion", "bars", "blinks", "mood", "fps", "cam")
"""Every overlay there is: the keys of annotate.OVERLAYS (a test keeps them in step)."""

UPSAMPLE_RANGE: Final[tuple[int, int]] = (0, 2)
"""dlib's upsampling steps: each doubles the image, so memory and time grow fourfold a step."""
DETECT_WIDTH_RANGE: Final[tuple[int, int]] = (160, 4096)
"""Width in pixels frames are downscaled to before detection (None: full size)."""
DETECT_EVERY_RANGE: Final[tuple[int, int]] = (1, 60)
"""Frames between two runs of the detector."""
SMOOTHING_ALPHA_RANGE: Final[tuple[float, float]] = (0.01, 1.0)
"""Weight of the newest frame in the per-face moving average of emotions."""
MAX_TEXT: Final[int] = 4096
MAX_MARKER_PRESETS: Final[int] = 9
"""Stimulus names that keys 1-9 drop as markers."""
MAX_MARKER_LABEL_CHARS: Final[int] = 80


def _check(options: Any, rules: dict[str, Callable[[Any], str]], prefix: str = "") -> None:
    for name, rule in rules.items():
        value = getattr(options, name)
        problem = rule(value)
        if problem:
            raise ValueError(f"setting {prefix}{name}={value!r}: {problem}")


@dataclass(frozen=True, slots=True)
class DetectionOptions:
    """How the face detector runs on a frame."""

    width_px: int | None = 320
    """Video frames are downscaled to this width before detection (None: full size)."""
    upsample: int = 0
    """dlib's upsampling steps, for small faces."""
    every: int = 5
    """Run the detector every N frames; faces are followed by their landmarks between."""
    largest_only: bool = False
    """Keep only the largest face."""

    def __post_init__(self) -> None:
        _check(self, DETECTION_RULES, "detection.")

    def replace(self, **changes: Any) -> DetectionOptions:
        """A copy with the given fields changed (checked like any new options)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ClassifierOptions:
    """How the emotion classifier's answers are used over time."""

    smoothing: bool = False
    """Smooth each face's probabilities over frames (an exponential moving average)."""
    smoothing_alpha: float = 0.4
    """Weight of the newest frame in that average."""

    def __post_init__(self) -> None:
        _check(self, CLASSIFIER_RULES, "classifier.")

    def replace(self, **changes: Any) -> ClassifierOptions:
        """A copy with the given fields changed (checked like any new options)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a user can switch: models per slot, each stage's options, overlays, speech, recording.

    A model slot holds a registry key, or None for off.
    """

    detector: str | None = "hog"
    landmarks: str | None = "68"
    emotion: str | None = "fer2013"
    detection: DetectionOptions = field(default_factory=lambda: DetectionOptions())
    classifier: ClassifierOptions = field(default_factory=lambda: ClassifierOptions())
    overlays: tuple[str, ...] = DEFAULT_OVERLAYS
    emotion_model_path: str | None = None
    """A .keras file that replaces the registry's emotion model (any compatible model)."""
    last_source: str | None = None
    loop_video: bool = False
    speech_on: bool = False
    """Listen: transcribe the microphone (a camera) or the file's sound track (a video)."""
    speech_engine: SpeechEngine = "auto"
    mic: int | str | None = None
    """Microphone: a device index or name; None for the system default."""
    record_dir: str | None = None
    """Where recorded sessions go; None for the user's data folder."""
    record_clean_video: bool = False
    """Record the video without overlays (they can be drawn again from the data)."""
    marker_labels: tuple[str, ...] = ()
    """Stimulus names, in order: key N drops a marker labelled with the Nth (at most 9)."""

    def __post_init__(self) -> None:
        _check(self, FIELD_RULES)

    def with_detection(self, **changes: Any) -> Settings:
        """A copy with some of the detector's options changed."""
        return dataclasses.replace(self, detection=self.detection.replace(**changes))

    def with_classifier(self, **changes: Any) -> Settings:
        """A copy with some of the classifier's options changed."""
        return dataclasses.replace(self, classifier=self.classifier.replace(**changes))

    def with_overlay(self, key: str, on: bool) -> Settings:
        """A copy with one overlay switched on or off."""
        keys = [k for k in self.overlays if k != key]
        if on:
            keys.append(key)
        return dataclasses.replace(self, overlays=tuple(keys))

    def replace(self, **changes: Any) -> Settings:
        """A copy with the given fields changed (checked like any new Settings)."""
        return dataclasses.replace(self, **changes)

    def for_stills(self) -> Settings:
        """The detection used for still images, in the app and in ``analyze`` alike.

        A still is looked at once, so it is worth the time (a few hundred ms a photo here):
        full resolution, one upsampling step and detection on every image, which finds the
        small faces of a group photo that the 320-px video setting misses (all 4 on the
        shared 4-person photo). A width the user chose is kept.
        """
        if self.detection.width_px != DEFAULT_DETECT_WIDTH_PX:
            return self
        return self.with_detection(width_px=None, upsample=max(self.detection.upsample, 1), every=1)


# -- the schema: one check per field, returning what is wrong or "" ------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(low: int, high: int, *, none_ok: bool = False) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value is None and none_ok:
            return ""
        if not _is_int(value):
            return "must be a whole number" + (" or null" if none_ok else "")
        return "" if low <= value <= high else f"must be between {low} and {high}"

    return check


def _float_in(low: float, high: float) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return "must be a number"
        return "" if low <= value <= high else f"must be between {low} and {high}"

    return check


def _bool(value: Any) -> str:
    return "" if isinstance(value, bool) else "must be true or false"


def _text(*, none_ok: bool) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value is None and none_ok:
            return ""
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT or "\0" in value:
            return "must be a non-empty text" + (" or null" if none_ok else "")
        return ""

    return check


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        return "" if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _overlays(value: Any) -> str:
    if not isinstance(value, tuple) or not all(isinstance(k, str) for k in value):
        return "must be a list of overlay names"
    unknown = [k for k in value if k not in OVERLAY_KEYS]
    if unknown:
        return f"has unknown overlay(s) {', '.join(map(repr, unknown))} (known: {', '.join(OVERLAY_KEYS)})"
    return "" if len(set(value)) == len(value) else "names an overlay twice"


def _marker_labels(value: Any) -> str:
    if not isinstance(value, tuple) or not all(isinstance(k, str) for k in value):
        return "must be a list of texts"
    if len(value) > MAX_MARKER_PRESETS:
        return f"may hold at most {MAX_MARKER_PRESETS} labels"
    for label in value:
        if not label.strip() or len(label) > MAX_MARKER_LABEL_CHARS or not label.isprintable():
            return f"must hold non-empty one-line texts of at most {MAX_MARKER_LABEL_CHARS} characters"
    return ""


def _known_overlays(value: Any, warnings: list[str]) -> Any:
    """A file's overlay list with unknown names (a typo, a later version's overlay) dropped, each named."""
    if not isinstance(value, list | tuple) or not all(isinstance(k, str) for k in value):
        return value  # the rule rejects it whole
    unknown = [k for k in value if k not in OVERLAY_KEYS]
    if unknown:
        names = ", ".join(json.dumps(k)[:40] for k in unknown)
        warnings.append(f"ignored unknown overlay(s) {names} in setting overlays")
    return tuple(dict.fromkeys(k for k in value if k in OVERLAY_KEYS))


def _mic(value: Any) -> str:
    if value is None or (isinstance(value, str) and 0 < len(value) <= 256):
        return ""
    return "" if _is_int(value) and 0 <= value < 4096 else "must be a device index, a device name or null"


def _instance_of(kind: type) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        return "" if isinstance(value, kind) else f"must be {kind.__name__}"

    return check


DETECTION_RULES: Final[dict[str, Callable[[Any], str]]] = {
    "width_px": _int_in(*DETECT_WIDTH_RANGE, none_ok=True),
    "upsample": _int_in(*UPSAMPLE_RANGE),
    "every": _int_in(*DETECT_EVERY_RANGE),
    "largest_only": _bool,
}
"""Type and range of every field of DetectionOptions."""
CLASSIFIER_RULES: Final[dict[str, Callable[[Any], str]]] = {
    "smoothing": _bool,
    "smoothing_alpha": _float_in(*SMOOTHING_ALPHA_RANGE),
}
"""Type and range of every field of ClassifierOptions."""
OPTIONS: Final[dict[str, tuple[type, dict[str, Callable[[Any], str]]]]] = {
    "detection": (DetectionOptions, DETECTION_RULES),
    "classifier": (ClassifierOptions, CLASSIFIER_RULES),
}
"""The stages' options inside Settings: their class and rules."""

FIELD_RULES: Final[dict[str, Callable[[Any], str]]] = {
    "detector": _text(none_ok=True),
    "landmarks": _text(none_ok=True),
    "emotion": _text(none_ok=True),
    "detection": _instance_of(DetectionOptions),
    "classifier": _instance_of(ClassifierOptions),
    "overlays": _overlays,
    "emotion_model_path": _text(none_ok=True),
    "last_source": _text(none_ok=True),
    "loop_video": _bool,
    "speech_on": _bool,
    "speech_engine": _one_of(SPEECH_ENGINES),
    "mic": _mic,
    "record_dir": _text(none_ok=True),
    "record_clean_video": _bool,
    "marker_labels": _marker_labels,
}
"""Type and range of every field of Settings (a test checks that none is left out)."""

DEFAULT_DETECT_WIDTH_PX: Final[int | None] = DetectionOptions().width_px
_LEGACY_EXTRA: Final[tuple[str, ...]] = ("speech_on", "speech_engine", "mic", "record_dir", "record_clean_video")
"""Keys of the untyped ``extra`` object of files written by 0.1; they are fields now."""
_LEGACY_FLAT: Final[dict[str, tuple[str, str]]] = {
    "detect_width_px": ("detection", "width_px"),
    "upsample": ("detection", "upsample"),
    "detect_every": ("detection", "every"),
    "largest_only": ("detection", "largest_only"),
    "smoothing": ("classifier", "smoothing"),
    "smoothing_alpha": ("classifier", "smoothing_alpha"),
}
"""Fields of files written before the stages had options of their own, and where they went."""


def default_settings_path() -> Path:
    """The settings file in the user's config folder."""
    return user_config_dir() / "settings.json"


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """Only the fields that differ from the defaults (a sparse file survives new defaults)."""
    default = Settings()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if value == getattr(default, f.name):
            continue
        if f.name in OPTIONS:
            kind, _ = OPTIONS[f.name]
            base = kind()
            out[f.name] = {
                g.name: getattr(value, g.name)
                for g in dataclasses.fields(kind)
                if getattr(value, g.name) != getattr(base, g.name)
            }
        else:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _options_from_dict(name: str, data: Any, warnings: list[str]) -> Any:
    """One stage's options from its (sparse) object, field by field, as Settings are."""
    kind, rules = OPTIONS[name]
    if not isinstance(data, dict):
        warnings.append(f"setting {name}={json.dumps(data)[:60]} must be an object; using the defaults")
        return kind()
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        rule = rules.get(key)
        if rule is None:
            warnings.append(f"ignored unknown setting {name}.{key}")
            continue
        problem = rule(value)
        if problem:
            default = getattr(kind(), key)
            warnings.append(f"setting {name}.{key}={json.dumps(value)[:60]} {problem}; using {default!r}")
            continue
        kwargs[key] = value
    return kind(**kwargs)


def settings_from_dict(data: Any) -> tuple[Settings, list[str]]:
    """Settings from a (sparse) dict, field by field, and a warning per value that was left out.

    An unknown key, a wrong type or an out-of-range value leaves that field at its default;
    the other fields are kept. Raises ValueError only when ``data`` is not a JSON object.
    """
    if not isinstance(data, dict):
        raise ValueError("settings file must hold a JSON object")
    data = dict(data)
    warnings: list[str] = []
    extra = data.pop("extra", None)
    if isinstance(extra, dict):  # files from 0.1 kept these in an untyped bag
        for key in _LEGACY_EXTRA:
            if key in extra and key not in data:
                data[key] = extra[key]
    elif extra is not None:
        warnings.append(f"ignored setting 'extra' ({type(extra).__name__}, not an object)")
    for old, (group, key) in _LEGACY_FLAT.items():  # files from before the stages' options
        if old in data:
            value = data.pop(old)
            nested = data.setdefault(group, {})
            if isinstance(nested, dict) and key not in nested:
                nested[key] = value
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in OPTIONS:
            kwargs[key] = _options_from_dict(key, value, warnings)
            continue
        rule = FIELD_RULES.get(key)
        if rule is None:
            warnings.append(f"ignored unknown setting {key!r}")
            continue
        if key == "overlays":
            value = _known_overlays(value, warnings)
        elif key == "marker_labels" and isinstance(value, list):
            value = tuple(value)  # JSON has lists; the field is a tuple
        problem = rule(value)
        if problem:
            warnings.append(f"setting {key}={json.dumps(value)[:60]} {problem}; using {getattr(Settings(), key)!r}")
            continue
        kwargs[key] = value
    for text in warnings:
        log.warning("%s", text)
    return Settings(**kwargs), warnings


def load_settings(path: Path | None = None) -> tuple[Settings, str | None]:
    """Settings from the file, and a message for the user when something in it was not used.

    A missing file gives defaults silently. A file that is not JSON text (bad bytes, not
    UTF-8, cut off, not an object) is renamed to ``settings.json.corrupt-<time>`` (nothing
    the user had is lost) and defaults are used. Wrong fields fall back one by one.
    """
    file = path or default_settings_path()
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return Settings(), None
    except OSError as exc:
        return Settings(), f"cannot read settings {file}: {exc.strerror or exc}; using defaults"
    try:
        settings, warnings = settings_from_dict(json.loads(raw.decode("utf-8")))
    except (ValueError, TypeError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        aside = file.with_name(f"{file.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(file, aside)
        except OSError:
            aside = file
        reason = str(exc)[:120]
        return Settings(), f"settings file {file} was unreadable ({reason}); kept as {aside.name}, using defaults"
    if warnings:
        return settings, f"settings file {file}: " + "; ".join(warnings)
    return settings, None


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the sparse settings atomically (temporary file, fsync, rename)."""
    file = path or default_settings_path()
    file.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(settings_to_dict(settings), indent=2, sort_keys=True) + "\n"
    write_text_atomic(file, payload)
    return file
