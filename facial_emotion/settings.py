"""User settings: one frozen dataclass, stored sparsely as JSON and written atomically."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from facial_emotion.atomic import write_text_atomic
from facial_emotion.paths import user_config_dir

log = logging.getLogger(__name__)

DEFAULT_OVERLAYS: Final[tuple[str, ...]] = ("boxes", "landmarks", "emotion", "bars", "blinks", "fps", "mood")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a user can switch: models per slot, overlays, detection trade-offs.

    A model slot holds a registry key, or None for off.
    """

    detector: str | None = "hog"
    landmarks: str | None = "68"
    emotion: str | None = "fer2013"
    smoothing: bool = False
    smoothing_alpha: float = 0.4
    detect_width_px: int | None = 320
    """Frames are downscaled to this width before detection (None: full size)."""
    upsample: int = 0
    detect_every: int = 5
    """Run the detector every N frames; faces are followed by their landmarks between."""
    largest_only: bool = False
    overlays: tuple[str, ...] = DEFAULT_OVERLAYS
    emotion_model_path: str | None = None
    """A .keras file that replaces the registry's emotion model (any compatible model)."""
    last_source: str | None = None
    loop_video: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    """Settings of later features (speech, recording) by name, kept through load and save."""

    def with_overlay(self, key: str, on: bool) -> Settings:
        """A copy with one overlay switched on or off."""
        keys = [k for k in self.overlays if k != key]
        if on:
            keys.append(key)
        return dataclasses.replace(self, overlays=tuple(keys))

    def replace(self, **changes: Any) -> Settings:
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)


def default_settings_path() -> Path:
    """The settings file in the user's config folder."""
    return user_config_dir() / "settings.json"


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """Only the fields that differ from the defaults (a sparse file survives new defaults)."""
    default = Settings()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if value != getattr(default, f.name):
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """Settings from a (sparse) dict; unknown keys are ignored with a warning."""
    if not isinstance(data, dict):
        raise ValueError("settings file must hold a JSON object")
    names = {f.name: f for f in dataclasses.fields(Settings)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            log.warning("ignoring unknown setting %r", key)
            continue
        kwargs[key] = tuple(value) if key == "overlays" else value
    return Settings(**kwargs)


def load_settings(path: Path | None = None) -> tuple[Settings, str | None]:
    """Settings from the file, and a message when it was unreadable and set aside.

    A missing file gives defaults silently. A corrupt one is renamed to
    ``settings.json.corrupt-<time>`` (so nothing the user had is lost) and defaults are used.
    """
    file = path or default_settings_path()
    try:
        text = file.read_text()
    except FileNotFoundError:
        return Settings(), None
    except OSError as exc:
        return Settings(), f"cannot read settings {file}: {exc}; using defaults"
    try:
        return settings_from_dict(json.loads(text)), None
    except (ValueError, TypeError) as exc:
        aside = file.with_name(f"{file.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(file, aside)
        except OSError:
            aside = file
        return Settings(), f"settings file {file} was unreadable ({exc}); kept as {aside.name}, using defaults"


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the sparse settings atomically (temporary file, fsync, rename)."""
    file = path or default_settings_path()
    file.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(settings_to_dict(settings), indent=2, sort_keys=True) + "\n"
    write_text_atomic(file, payload)
    return file
