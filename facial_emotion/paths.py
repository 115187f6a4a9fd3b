"""Where things live: the repo's assets and models, shared data, the user's folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent
ASSETS_DIR: Final[Path] = REPO_ROOT / "assets"
MODELS_DIR: Final[Path] = REPO_ROOT / "models"
DEFAULT_EMOTION_MODEL: Final[Path] = MODELS_DIR / "emotion_xception_fer2013.keras"


def data_dir() -> Path:
    """The shared data folder: $FACIAL_EMOTION_DATA, else ../shared/data beside the repo."""
    env = os.environ.get("FACIAL_EMOTION_DATA")
    if env:
        return Path(env).expanduser()
    return REPO_ROOT.parent / "shared" / "data"


def user_data_dir() -> Path:
    """Per-user data (downloaded models, sessions): $FACIAL_EMOTION_HOME or XDG data home."""
    env = os.environ.get("FACIAL_EMOTION_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "facial-emotion"


def user_config_dir() -> Path:
    """Per-user settings: $FACIAL_EMOTION_CONFIG or XDG config home."""
    env = os.environ.get("FACIAL_EMOTION_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "facial-emotion"
