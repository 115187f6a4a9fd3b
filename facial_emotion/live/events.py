"""What a live session tells its subscribers: typed, frozen events, published by ``LiveSession.poll``.

The engine's own events (a source opened, ended or failed; models applied) are passed on as
they are; the rest come from the session's parts: settings, speech, recording, markers, downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facial_emotion.engine import ModelsChanged, SourceEnded, SourceFailed, SourceOpened
from facial_emotion.fusion import Mood
from facial_emotion.session.markers import Marker
from facial_emotion.settings import Settings
from facial_emotion.types import Utterance

__all__ = [
    "CamerasListed",
    "DownloadFinished",
    "DownloadProgress",
    "LiveEvent",
    "MarkerAdded",
    "ModelsChanged",
    "MoodChanged",
    "RecordingFailed",
    "RecordingFinished",
    "RecordingStarted",
    "RecordingStopped",
    "SessionsRecovered",
    "SettingsChanged",
    "SettingsNotSaved",
    "SourceEnded",
    "SourceFailed",
    "SourceOpened",
    "SourceOpening",
    "SourceUnavailable",
    "SpeechCleared",
    "SpeechHeard",
    "SpeechPartial",
    "SpeechStatus",
]


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """New settings are current (menus read their check marks from them)."""

    settings: Settings


@dataclass(frozen=True, slots=True)
class SettingsNotSaved:
    """The settings file could not be written; message is for the user."""

    message: str


@dataclass(frozen=True, slots=True)
class SourceOpening:
    """A camera, file or folder is being opened (on a helper thread)."""

    spec: str


@dataclass(frozen=True, slots=True)
class SourceUnavailable:
    """What the user chose could not be opened; nothing plays in its place."""

    spec: str
    message: str


@dataclass(frozen=True, slots=True)
class CamerasListed:
    """The cameras found (indices); ``error`` says why listing failed; ``open_first`` as asked."""

    cameras: tuple[int, ...]
    error: str | None = None
    open_first: bool = False


@dataclass(frozen=True, slots=True)
class SpeechStatus:
    """What speech is doing, in a line; ``active`` while something is being transcribed."""

    text: str
    active: bool = False


@dataclass(frozen=True, slots=True)
class SpeechPartial:
    """A live, not yet final subtitle ("" clears it)."""

    text: str


@dataclass(frozen=True, slots=True)
class SpeechHeard:
    """A final utterance reached the present: a subtitle and a transcript line."""

    utterance: Utterance


@dataclass(frozen=True, slots=True)
class SpeechCleared:
    """The transcript starts afresh (a video looped); ``subtitle_only`` clears just the subtitle."""

    subtitle_only: bool = False


@dataclass(frozen=True, slots=True)
class MoodChanged:
    """The scene's fused mood (None when no face is fused)."""

    mood: Mood | None


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    """A recording began into folder."""

    folder: Path


@dataclass(frozen=True, slots=True)
class RecordingStopped:
    """A recording stopped; its folder is being finished in the background."""

    folder: Path


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    """A stopped recording's folder is complete (video, report, session.json)."""

    folder: Path


@dataclass(frozen=True, slots=True)
class RecordingFailed:
    """A recording stopped by itself (a full disk, no permission); message is for the user."""

    message: str


@dataclass(frozen=True, slots=True)
class MarkerAdded:
    """A marker was dropped at the newest frame; ``folder`` is the recording it went into (None: none ran)."""

    marker: Marker
    folder: Path | None = None


@dataclass(frozen=True, slots=True)
class SessionsRecovered:
    """Unfinished sessions of an earlier crash were finished."""

    folders: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """Bytes of the Vosk model downloaded so far (total None while unknown)."""

    done: int
    total: int | None


@dataclass(frozen=True, slots=True)
class DownloadFinished:
    """The Vosk download ended: its folder, or the error."""

    path: Path | None
    error: str | None


LiveEvent = (
    SettingsChanged
    | SettingsNotSaved
    | SourceOpening
    | SourceUnavailable
    | SourceOpened
    | SourceEnded
    | SourceFailed
    | ModelsChanged
    | CamerasListed
    | SpeechStatus
    | SpeechPartial
    | SpeechHeard
    | SpeechCleared
    | MoodChanged
    | RecordingStarted
    | RecordingStopped
    | RecordingFinished
    | RecordingFailed
    | MarkerAdded
    | SessionsRecovered
    | DownloadProgress
    | DownloadFinished
)
"""Every event a LiveSession publishes."""
