"""Changing a finished session folder in review: its markers and its study metadata.

Markers are added (origin ``review``), renamed and deleted by rewriting markers.csv
atomically; participant and condition are changed in session.json, written the same
way. A folder that a running program still records into (``mark.is_active``) is
refused with ``SessionBusyError``, and one that cannot be written raises an OSError
that says why before anything is changed. The report is not rebuilt here
(``report.build_report`` does it; ``facial-emotion session-info`` calls both).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path

from facial_emotion.session.files import FRAMES_FILE, MARKERS_FILE, SESSION_FILE
from facial_emotion.session.info import write_session_info
from facial_emotion.session.load import SessionError
from facial_emotion.session.mark import is_active
from facial_emotion.session.markers import ORIGIN_REVIEW, Marker, clean_label, read_markers, write_markers
from facial_emotion.session.recovery import check_writable
from facial_emotion.session.schema import SessionInfo, study_text

log = logging.getLogger(__name__)


class SessionBusyError(SessionError):
    """The folder is being recorded (or finished) by a running program: it cannot be changed now."""


def editable_folder(path: str | Path) -> Path:
    """The session folder, checked: a session, not being recorded, writable; raises when it is not.

    SessionError (or SessionBusyError) for a folder that is no session or is busy; an
    OSError from ``check_writable`` for one that cannot be written.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise SessionError(folder, "not a folder" if not folder.exists() else "a file, not a session folder")
    if is_active(folder):  # before its files: a recording just started may not have written them yet
        raise SessionBusyError(folder, "it is being recorded by a running program; change it once it is finished")
    if not (folder / FRAMES_FILE).is_file() and not (folder / SESSION_FILE).is_file():
        raise SessionError(folder, f"not a session folder (no {FRAMES_FILE} or {SESSION_FILE})")
    check_writable(folder)
    return folder


def _markers(folder: Path) -> tuple[Marker, ...]:
    try:
        return read_markers(folder / MARKERS_FILE)
    except OSError as exc:
        raise SessionError(folder / MARKERS_FILE, f"cannot read it: {exc.strerror or exc}") from exc


def _find(markers: tuple[Marker, ...], marker: Marker, folder: Path) -> int:
    try:
        return markers.index(marker)
    except ValueError:
        at = f"{marker.time_ms / 1000.0:.1f} s"
        raise SessionError(folder / MARKERS_FILE, f"has no marker {marker.label!r} at {at}") from None


def add_marker(path: str | Path, time_ms: float, label: str = "") -> Marker:
    """Add a marker (origin ``review``) at a session time; the marker as stored."""
    folder = editable_folder(path)
    if not math.isfinite(time_ms):
        raise ValueError(f"a marker's time must be a number of ms, not {time_ms!r}")
    marker = Marker(round(float(time_ms), 1), clean_label(label), ORIGIN_REVIEW)
    write_markers(folder / MARKERS_FILE, (*_markers(folder), marker))
    return marker


def rename_marker(path: str | Path, marker: Marker, label: str) -> Marker:
    """Give a marker (as read from the folder) a new label, keeping its time and who made it; the new one."""
    folder = editable_folder(path)
    markers = list(_markers(folder))
    at = _find(tuple(markers), marker, folder)
    markers[at] = renamed = dataclasses.replace(marker, label=clean_label(label))
    write_markers(folder / MARKERS_FILE, tuple(markers))
    return renamed


def delete_marker(path: str | Path, marker: Marker) -> None:
    """Remove a marker (as read from the folder)."""
    folder = editable_folder(path)
    markers = list(_markers(folder))
    del markers[_find(tuple(markers), marker, folder)]
    write_markers(folder / MARKERS_FILE, tuple(markers))


def read_session_info(folder: Path) -> SessionInfo:
    """The folder's session.json; SessionError when it is missing or damaged."""
    path = folder / SESSION_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SessionError(path, "missing: this folder has no session information to change") from None
    except OSError as exc:
        raise SessionError(path, f"cannot read it: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise SessionError(path, f"damaged JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SessionError(path, f"damaged: a JSON {type(data).__name__}, not an object")
    return SessionInfo.from_json(data)


def set_study_info(path: str | Path, *, participant: str | None = None, condition: str | None = None) -> SessionInfo:
    """Change the participant id and condition in session.json; None keeps one, "" clears it; the new info.

    ValueError for a text that is too long (``study_text``).
    """
    folder = editable_folder(path)
    info = read_session_info(folder)
    changes = {}
    if participant is not None:
        changes["participant"] = study_text(participant, "participant")
    if condition is not None:
        changes["condition"] = study_text(condition, "condition")
    if not changes:
        return info
    info = dataclasses.replace(info, **changes)
    write_session_info(folder, info)
    log.info("%s: participant %r, condition %r", folder, info.participant, info.condition)
    return info
