"""summary.json of ``analyze --out``: its one writer (room kept from the start for a full disk)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

SUMMARY_RESERVE_BYTES: Final = 16 * 1024
"""Room kept for summary.json from the start, so that a full disk still gets one."""


class SummaryFile:
    """summary.json: a placeholder at the start (room kept), the real one at the end.

    Until the end it says ``complete: false`` (a killed run leaves that word). The end
    is written atomically; when the disk is full it goes into the room kept.
    """

    def __init__(self, path: Path, placeholder: dict[str, Any]) -> None:
        self.path = path
        text = (json.dumps(placeholder, indent=2) + "\n").encode()
        with open(path, "wb") as handle:
            handle.write(text + b" " * max(0, SUMMARY_RESERVE_BYTES - len(text)))

    def write(self, summary: dict[str, Any]) -> None:
        """Replace the placeholder with summary (the track table shortened if it must be)."""
        text = (json.dumps(summary, indent=2) + "\n").encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
            return
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if len(text) > SUMMARY_RESERVE_BYTES:
                short = {**summary, "tracks": {"omitted": f"{len(summary.get('tracks', {}))} tracks ({exc})"}}
                text = (json.dumps(short, indent=2) + "\n").encode()
            if len(text) > SUMMARY_RESERVE_BYTES:
                raise
        with open(self.path, "r+b") as handle:  # rewrites blocks the file already has
            handle.write(text)
            handle.truncate(len(text))
