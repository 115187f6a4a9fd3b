"""``SessionInfo``: what ``session.json`` holds, one schema with a version number.

Version 2 is written by the recorder and by ``analyze --out`` alike. ``from_json``
also reads what older folders hold: version 1 as the recorder wrote it (its own keys
plus the writer's counts), version 1 as ``analyze`` wrote it (``kind: analysis``,
``frames``, ``dropped_frames``), and an ``analyze`` folder's ``summary.json`` where no
``session.json`` was written. A value of the wrong type is read as the field's default
(a damaged value loses that field, not the session). Keys this schema does not know
are not kept: every key today's and yesterday's writers put there has a field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from facial_emotion import __version__
from facial_emotion.settings import Settings, settings_from_dict

SCHEMA_VERSION: Final = 2
"""The ``format`` written into session.json now (files of the first release say 1)."""

SessionKind = Literal["recording", "analysis"]

# Why a recording ended (``stop_reason``).
STOP_REQUESTED: Final = "stopped"
STOP_DISK_FULL: Final = "disk full"
STOP_WRITE_ERROR: Final = "write error"
STOP_CRASHED: Final = "crashed"

MAX_STUDY_TEXT_CHARS: Final = 200
"""The longest participant id or condition."""


def study_text(value: str | None, what: str = "value") -> str | None:
    """A participant id or condition as stored: one line, trimmed, None for blank; ValueError if too long."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a text, not {type(value).__name__}")
    text = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    if len(text) > MAX_STUDY_TEXT_CHARS:
        raise ValueError(f"{what} has at most {MAX_STUDY_TEXT_CHARS} characters ({len(text)} given)")
    return text or None


def library_versions() -> dict[str, str]:
    """Versions of the libraries behind the models (read from metadata, nothing imported)."""
    from importlib import metadata

    out = {"facial-emotion": __version__}
    for dist in ("tensorflow-cpu", "tensorflow", "dlib", "dlib-bin", "opencv-python-headless", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class ModelNames:
    """The model in each slot (a registry key, None for off) and an emotion model file, if one replaced it."""

    detector: str | None = None
    landmarks: str | None = None
    emotion: str | None = None
    emotion_model_path: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> ModelNames:
        """The models the settings choose."""
        return cls(settings.detector, settings.landmarks, settings.emotion, settings.emotion_model_path)


@dataclass(frozen=True, slots=True)
class VideoFinish:
    """What finishing did to one video file: remuxed into a normal mp4, with the sound or not."""

    file: str
    audio: bool = False
    remuxed: bool = False
    error: str | None = None
    audio_error: str | None = None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What session.json holds: where the session came from, how it ended, what was written."""

    format: int = SCHEMA_VERSION
    """The schema version of the file this was read from (``to_json`` writes the current one)."""
    name: str = ""
    kind: SessionKind = "recording"
    started_at: str | None = None
    started_epoch_s: float | None = None
    finished: bool = False
    recovered: bool = False
    """Finished after a crash, at the next start or by ``facial-emotion report``."""
    recovered_at: str | None = None
    stop_reason: str | None = None
    """One of the ``STOP_*`` values (a recording); None while it runs and for an analysis."""
    error: str | None = None
    complete: bool | None = None
    """An analysis read its input to the end (None: a recording, where ``error`` says it)."""
    source: str = ""
    participant: str | None = None
    """The study's participant id (set when recording starts or in review; ``study_text``)."""
    condition: str | None = None
    """The study condition the session belongs to."""
    realtime: bool | None = None
    clean_video: bool = False
    models: ModelNames = ModelNames()
    versions: Mapping[str, str] = field(default_factory=dict)
    settings: Settings | None = None
    pid: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    """The video's constant frame rate."""
    first_frame_ms: float | None = None
    first_audio_ms: float | None = None
    frames_received: int = 0
    frames_written: int = 0
    frames_dropped: int = 0
    """Frames the recorder had no room for (its queue was full)."""
    frames_skipped: int = 0
    """Frames of an analysed file that could not be decoded (damaged packets)."""
    engine_captured: int = 0
    engine_dropped: int = 0
    aux_dropped: int = 0
    rows: int = 0
    video_frames: int = 0
    video_frames_repeated: int = 0
    video_size: tuple[int, int] | None = None
    video_codec: str | None = None
    video_error: str | None = None
    utterances: int = 0
    audio_samples: int = 0
    audio_s: float | None = None
    processing_s: float | None = None
    videos: tuple[VideoFinish, ...] = ()
    report: str | None = None
    finish_errors: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of session.json, in the current schema."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "format":
                value = SCHEMA_VERSION
            elif f.name == "models":
                value = dataclasses.asdict(value)
            elif f.name == "videos":
                value = [dataclasses.asdict(v) for v in value]
            elif f.name == "settings":
                value = None if value is None else _settings_json(value)
            elif f.name == "video_size":
                value = None if value is None else list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionInfo:
        """Read any session.json (version 1 or 2, recorder or analyze) or an analyze summary.json."""
        if not isinstance(data, Mapping):
            raise ValueError(f"session info must be a JSON object, not {type(data).__name__}")
        summary = "input" in data and "name" not in data  # an analyze summary.json
        kind: SessionKind = "analysis" if data.get("kind") == "analysis" or summary else "recording"
        versions = _str_map(data.get("versions"))
        if not versions and isinstance(data.get("version"), str):
            versions = {"facial-emotion": data["version"]}
        outputs = data.get("outputs") if isinstance(data.get("outputs"), Mapping) else {}
        return cls(
            name=_str(data.get("name")) or "",
            kind=kind,
            format=_int(data.get("format"), 1),
            started_at=_str(data.get("started_at")),
            started_epoch_s=_float(data.get("started_epoch_s")),
            finished=_bool(data.get("finished"), summary),
            recovered=_bool(data.get("recovered"), False),
            recovered_at=_str(data.get("recovered_at")),
            stop_reason=_str(data.get("stop_reason")),
            error=_str(data.get("error")),
            complete=_bool(data.get("complete"), None),
            source=_str(data.get("source")) or _str(data.get("input")) or "",
            participant=_str(data.get("participant")),
            condition=_str(data.get("condition")),
            realtime=_bool(data.get("realtime"), None),
            clean_video=_bool(data.get("clean_video"), False),
            models=_models(data.get("models")),
            versions=versions,
            settings=_settings(data.get("settings")),
            pid=_int(data.get("pid"), None),
            duration_s=_float(data.get("duration_s")),
            fps=_float(data.get("fps")),
            first_frame_ms=_float(data.get("first_frame_ms")),
            first_audio_ms=_float(data.get("first_audio_ms")),
            frames_received=_int(data.get("frames_received"), 0),
            frames_written=_int(_first(data, "frames_written", "frames"), 0),
            frames_dropped=_int(_first(data, "frames_dropped", "dropped_frames"), 0),
            frames_skipped=_int(data.get("frames_skipped"), 0),
            engine_captured=_int(data.get("engine_captured"), 0),
            engine_dropped=_int(data.get("engine_dropped"), 0),
            aux_dropped=_int(data.get("aux_dropped"), 0),
            rows=_int(data.get("rows"), 0),
            video_frames=_int(_first(data, "video_frames") or outputs.get("video_frames"), 0),
            video_frames_repeated=_int(data.get("video_frames_repeated"), 0),
            video_size=_size(data.get("video_size")),
            video_codec=_str(data.get("video_codec")),
            video_error=_str(data.get("video_error")),
            utterances=_int(_first(data, "utterances") or _nested(data, "speech", "utterances"), 0),
            audio_samples=_int(data.get("audio_samples"), 0),
            audio_s=_float(data.get("audio_s")),
            processing_s=_float(data.get("processing_s")),
            videos=_videos(data.get("videos")),
            report=_str(data.get("report")),
            finish_errors=_str_map(data.get("finish_errors")),
        )


def _settings_json(settings: Settings) -> dict[str, Any]:
    data = dataclasses.asdict(settings)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return None


def _nested(data: Mapping[str, Any], outer: str, key: str) -> Any:
    inner = data.get(outer)
    return inner.get(key) if isinstance(inner, Mapping) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: Any, default: Any) -> Any:
    return value if isinstance(value, bool) else default


def _int(value: Any, default: Any) -> Any:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _size(value: Any) -> tuple[int, int] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(_int(v, None) is not None for v in value):
        return (int(value[0]), int(value[1]))
    return None


def _models(value: Any) -> ModelNames:
    if not isinstance(value, Mapping):
        return ModelNames()
    return ModelNames(*(_str(value.get(f.name)) for f in dataclasses.fields(ModelNames)))


def _videos(value: Any) -> tuple[VideoFinish, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for item in value:
        if isinstance(item, Mapping) and isinstance(item.get("file"), str):
            out.append(
                VideoFinish(
                    file=item["file"],
                    audio=_bool(item.get("audio"), False),
                    remuxed=_bool(item.get("remuxed"), False),
                    error=_str(item.get("error")),
                    audio_error=_str(item.get("audio_error")),
                )
            )
    return tuple(out)


def _settings(value: Any) -> Settings | None:
    """The settings the session ran with; a value that is no longer valid is its default."""
    if not isinstance(value, Mapping):
        return None
    try:
        return settings_from_dict(dict(value))[0]
    except ValueError:
        return None
