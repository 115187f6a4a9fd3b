"""``load_session(path)``: any session folder read back, its rows aligned with its video frames.

It reads what the recorder (``record``, the app) and ``analyze --out`` write now, a
folder finished after a crash, and the first release's layout (session.json format 1,
frames.csv without the video columns, or only an ``analyze`` summary.json). Where the
table did not store the frame <-> video mapping it is rebuilt by the writer's rule,
and the frame table says so (``video_map_derived``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facial_emotion.session.files import (
    ANNOTATED_VIDEO_FILE,
    AUDIO_FILE,
    CLEAN_VIDEO_FILE,
    FRAMES_FILE,
    MARKERS_FILE,
    SESSION_FILE,
    SUMMARY_FILE,
    TRANSCRIPT_FILE,
    VIDEO_FILE,
)
from facial_emotion.session.frame_table import FrameTable, read_frame_rows, stored_video_map
from facial_emotion.session.markers import Marker, read_markers
from facial_emotion.session.schema import SessionInfo
from facial_emotion.session.tables import VIDEO_COLUMNS
from facial_emotion.session.transcript import read_transcript
from facial_emotion.session.video_map import VideoMap, derive_index_map, derive_rate_map, estimate_fps
from facial_emotion.types import Utterance


class SessionError(Exception):
    """A folder that cannot be read as a session; ``path`` is the file or folder, ``reason`` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True, eq=False)
class Session:
    """One session folder read back: what it was, its rows, what was said and marked, its videos."""

    folder: Path
    info: SessionInfo
    frames: FrameTable
    transcript: tuple[Utterance, ...]
    markers: tuple[Marker, ...]
    video: Path | None
    """The annotated video (``video.mp4``, else an analysis's ``annotated.mp4``), if any."""
    clean_video: Path | None
    """The video without overlays, if it was recorded; it has the same frames as ``video``."""
    audio: Path | None


def _read_json(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SessionError(path, f"cannot read it: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SessionError(path, f"damaged JSON ({exc})") from exc


def _read_info(folder: Path) -> SessionInfo:
    """session.json; an analyze folder of the first release may hold only summary.json."""
    for name in (SESSION_FILE, SUMMARY_FILE):
        path = folder / name
        if path.is_file():
            data = _read_json(path)
            if not isinstance(data, dict):
                raise SessionError(path, f"damaged: a JSON {type(data).__name__}, not an object")
            info = SessionInfo.from_json(data)
            return info if info.name else dataclasses.replace(info, name=folder.name)
    if (folder / FRAMES_FILE).is_file():  # a recording killed before it wrote anything else
        return SessionInfo(name=folder.name, format=0)
    raise SessionError(folder, f"not a session folder (no {SESSION_FILE}, {SUMMARY_FILE} or {FRAMES_FILE})")


def _video_map(columns: dict[str, np.ndarray], present: frozenset[str], info: SessionInfo) -> VideoMap:
    if set(VIDEO_COLUMNS) <= present:
        return stored_video_map(columns)
    frames, times = columns["frame"], columns["timestamp_ms"]
    if frames.size == 0:
        return VideoMap.empty()
    _, at = np.unique(frames, return_index=True)
    at = np.sort(at)  # each data frame's first row, in the order written
    if info.kind == "analysis":
        return derive_index_map(frames[at].tolist())
    fps = info.fps or estimate_fps(times[at].tolist())
    return derive_rate_map(frames[at].tolist(), times[at].tolist(), fps=fps, first_frame_ms=info.first_frame_ms)


def _existing(folder: Path, *names: str) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def load_session(path: str | Path, *, info: SessionInfo | None = None) -> Session:
    """Read a session folder; raises SessionError (with the path and why) when it cannot.

    ``info`` replaces the folder's session.json (a folder being finished, whose final
    info is not on disk yet).
    """
    folder = Path(path).expanduser()
    try:
        if not folder.is_dir():
            raise SessionError(folder, "not a folder" if not folder.exists() else "a file, not a session folder")
        if not os.access(folder, os.R_OK | os.X_OK):
            raise SessionError(folder, "cannot read it: permission denied")
        if info is None:
            info = _read_info(folder)
        try:
            columns, present, skipped = read_frame_rows(folder / FRAMES_FILE)
        except OSError as exc:
            raise SessionError(folder / FRAMES_FILE, f"cannot read it: {exc.strerror or exc}") from exc
        video = _existing(folder, VIDEO_FILE, ANNOTATED_VIDEO_FILE)
        video_map = _video_map(columns, present, info) if video is not None else VideoMap.empty()
        frames = FrameTable(columns, present, video_map, skipped)
        try:
            transcript = read_transcript(folder / TRANSCRIPT_FILE)
        except OSError as exc:
            raise SessionError(folder / TRANSCRIPT_FILE, f"cannot read it: {exc.strerror or exc}") from exc
        try:
            markers = read_markers(folder / MARKERS_FILE)
        except OSError as exc:
            raise SessionError(folder / MARKERS_FILE, f"cannot read it: {exc.strerror or exc}") from exc
    except PermissionError as exc:  # a folder this user may not look into
        raise SessionError(folder, f"cannot read it: {exc.strerror or exc}") from exc
    return Session(
        folder=folder,
        info=info,
        frames=frames,
        transcript=transcript,
        markers=markers,
        video=video,
        clean_video=_existing(folder, CLEAN_VIDEO_FILE),
        audio=_existing(folder, AUDIO_FILE),
    )
