"""Recovery: finding the session folders a crash left unfinished, and finishing them.

A folder is unfinished while its ``session.json`` lacks ``finished: true`` and no live
process holds its ``.recording`` mark (see ``mark``). Recovering one drops a
half-written last line of the text files, takes the duration from the rows (not from
the time until the recovery), and finishes it like a normal stop (``finish``) with
``recovered: true``. A folder on read-only media (or one this user may not write) is
left exactly as it is, with an error that says so.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import logging
import os
import time
from pathlib import Path

import numpy as np

from facial_emotion.session.files import FRAMES_FILE, MARKERS_FILE, RECORDING_MARK_FILE, TRANSCRIPT_FILE, VIDEO_FILE
from facial_emotion.session.finish import finish_session
from facial_emotion.session.frame_table import read_frame_rows
from facial_emotion.session.info import read_info
from facial_emotion.session.mark import is_active
from facial_emotion.session.schema import STOP_CRASHED, SessionInfo
from facial_emotion.session.video import video_duration_s

log = logging.getLogger(__name__)


def is_unfinished(folder: Path) -> bool:
    """True for a session folder that was never finished (and is not being recorded)."""
    try:
        if not folder.is_dir() or is_active(folder):
            return False
        if (folder / RECORDING_MARK_FILE).exists():
            return True
        info = read_info(folder)
        if info is not None and info.finished:
            return False
        return info is not None or (folder / FRAMES_FILE).exists() or (folder / VIDEO_FILE).exists()
    except OSError:  # a folder this user may not look into is none of ours to finish
        return False


def find_unfinished(root: Path) -> list[Path]:
    """Unfinished session folders directly under root, oldest first (none where root is unreadable)."""
    try:
        if not root.is_dir():
            return []
        children = list(root.iterdir())
    except OSError as exc:
        log.warning("cannot look for unfinished sessions in %s: %s", root, exc.strerror or exc)
        return []
    return sorted(p for p in children if is_unfinished(p))


def check_writable(folder: Path) -> None:
    """Raise an OSError that says why, when the folder cannot be changed (read-only media, no permission)."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    if read_only:
        raise OSError(errno.EROFS, "it is on read-only media; it was left as it is", str(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(errno.EACCES, "no permission to write there; it was left as it is", str(folder))


def trim_partial_line(path: Path) -> int:
    """Cut a half-written last line (a crash mid-write); the number of bytes removed."""
    if not path.is_file():
        return 0
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        back = min(size, 1 << 16)
        handle.seek(size - back)
        tail = handle.read(back)
        if tail.endswith(b"\n"):
            return 0
        cut = tail.rfind(b"\n")
        keep = size - back + cut + 1 if cut >= 0 else 0
        handle.truncate(keep)
        return size - keep


def duration_from_data(folder: Path) -> float:
    """After a crash: the session time that frames.csv covers (passes added up), in s.

    Times that go back (a looped video in files written before session time was
    monotonic) start a new pass; a pass adds its own span.
    """
    try:
        times_ms = read_frame_rows(folder / FRAMES_FILE)[0]["timestamp_ms"]
    except OSError:
        times_ms = np.zeros(0)
    total_ms = 0.0
    if times_ms.size:
        starts = np.concatenate([[0], np.flatnonzero(np.diff(times_ms) < 0) + 1, [times_ms.size]])
        total_ms = float(sum(times_ms[hi - 1] - times_ms[lo] for lo, hi in itertools.pairwise(starts)))
    if total_ms <= 0:  # no face was ever in a row: the video's own length
        return video_duration_s(folder / VIDEO_FILE)
    return round(total_ms / 1000.0, 3)


def recover_session(folder: Path) -> SessionInfo:
    """Finish a session left unfinished by a crash; its session.json says ``recovered: true``.

    Raises OSError (with the reason) and changes nothing when the folder cannot be written.
    """
    check_writable(folder)
    log.info("recovering unfinished session %s", folder)
    info = read_info(folder) or SessionInfo()
    errors = dict(info.finish_errors)
    for name in (FRAMES_FILE, TRANSCRIPT_FILE, MARKERS_FILE):
        try:
            if cut := trim_partial_line(folder / name):
                log.info("cut %d bytes of a half-written line from %s", cut, folder / name)
        except OSError as exc:
            errors[name] = str(exc)
    info = dataclasses.replace(
        info,
        name=info.name or folder.name,
        duration_s=info.duration_s or duration_from_data(folder),
        recovered=True,
        recovered_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        stop_reason=info.stop_reason or STOP_CRASHED,
        finish_errors=errors,
    )
    return finish_session(folder, info)


def recover_all(root: Path) -> list[Path]:
    """Recover every unfinished session under root; the folders that were recovered."""
    done = []
    for folder in find_unfinished(root):
        try:
            recover_session(folder)
            done.append(folder)
        except OSError as exc:
            log.error("cannot recover %s: %s", folder, exc.strerror or exc)
    return done
