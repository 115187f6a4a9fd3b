"""session.json on disk: its one writer (atomic; in place on a full disk) and a lenient reader."""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from typing import Final

from facial_emotion.atomic import write_text_atomic
from facial_emotion.session.files import SESSION_FILE
from facial_emotion.session.schema import SessionInfo

log = logging.getLogger(__name__)

SESSION_RESERVE_BYTES: Final = 16384
"""session.json is first written this long (JSON, then spaces), so that on a full disk
the reason the recording stopped can still be written over it in place."""
ESSENTIAL_KEYS: Final = (
    "format",
    "name",
    "kind",
    "started_at",
    "finished",
    "recovered",
    "stop_reason",
    "error",
    "duration_s",
)
"""What a full disk leaves room for when nothing longer fits: how the session ended."""


def write_session_info(folder: Path, info: SessionInfo, *, reserve_bytes: int = 0) -> None:
    """Write session.json atomically; on a full disk, over the old file in place.

    ``reserve_bytes`` pads the file with spaces (still valid JSON) so that a later
    in-place write has room. In place, the full text is written when it fits, else a
    compact one, else only the keys that say how the session ended.
    """
    path = folder / SESSION_FILE
    data = info.to_json()
    text = json.dumps(data, indent=2, default=str) + "\n"
    try:
        write_text_atomic(path, text + " " * max(0, reserve_bytes - len(text.encode())))
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        error = exc
    essential = {k: data.get(k) for k in ESSENTIAL_KEYS}
    candidates = (text, json.dumps(data, default=str) + "\n", json.dumps(essential) + "\n")
    try:
        with open(path, "r+b") as handle:
            room = handle.seek(0, os.SEEK_END)
            for candidate in candidates:
                encoded = candidate.encode()
                if len(encoded) <= room:
                    handle.seek(0)
                    handle.write(encoded + b" " * (room - len(encoded)))  # the same blocks: no new space
                    handle.flush()
                    os.fsync(handle.fileno())
                    log.warning("disk full: wrote %s in place", path)
                    return
    except OSError:
        pass
    raise error


def read_info(folder: Path) -> SessionInfo | None:
    """The folder's session.json; None when it is missing, unreadable or not a JSON object.

    For recovery and the recorder, which carry on without it; ``load_session`` says why instead.
    """
    try:
        data = json.loads((folder / SESSION_FILE).read_text())
        return SessionInfo.from_json(data)
    except (OSError, ValueError):
        return None
