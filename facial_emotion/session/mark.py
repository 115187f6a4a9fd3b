"""The ``.recording`` mark: which process is recording into a session folder.

It names the process (its PID and start time, so a PID that was reused by another
program does not count); a folder with a mark whose process is gone was left by a
crash. This process also keeps the folders it records in memory, so it never treats
its own as unfinished.
"""

from __future__ import annotations

import os
from pathlib import Path

from facial_emotion.atomic import write_text_atomic
from facial_emotion.session.files import RECORDING_MARK_FILE

_ACTIVE: set[Path] = set()
"""Session folders this process is recording now (never recovered under its feet)."""


def mark_active(folder: Path, active: bool) -> None:
    """Register or unregister a folder this process is writing."""
    (_ACTIVE.add if active else _ACTIVE.discard)(folder.resolve())


def write_mark(folder: Path) -> None:
    """Mark the folder as being recorded by this process (PID and its start time)."""
    pid = os.getpid()
    started = process_start_time(pid)
    write_text_atomic(folder / RECORDING_MARK_FILE, f"{pid} {started}\n" if started else f"{pid}\n")


def process_start_time(pid: int) -> str | None:
    """When a process started, as a token to compare (``proc:<ticks>`` or ``psutil:<s>``); None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return f"proc:{int(fields[19])}"  # field 22, counted after "pid (comm)"
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    try:
        return f"psutil:{psutil.Process(pid).create_time():.2f}"
    except (psutil.Error, OSError):
        return None


def _same_start(recorded: str, current: str | None) -> bool:
    """False only when both start times are known, of one kind, and differ."""
    kind, _, value = recorded.partition(":")
    if current is None or not current.startswith(f"{kind}:"):
        return True  # nothing to compare with: trust the PID, as markers without it do
    now = current.partition(":")[2]
    if kind == "psutil":
        try:
            return abs(float(value) - float(now)) < 1.0
        except ValueError:
            return True
    return value == now


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_active(folder: Path) -> bool:
    """True while this or another live process is recording into the folder.

    A marker's PID that is alive but started at another time than the marker says
    belongs to another program (a reused PID): the recorder is gone.
    """
    if folder.resolve() in _ACTIVE:
        return True
    try:
        parts = (folder / RECORDING_MARK_FILE).read_text().split()
        pid = int(parts[0])
    except (OSError, ValueError, IndexError):
        return False
    if pid == os.getpid() or not _pid_alive(pid):
        return False
    return len(parts) < 2 or _same_start(parts[1], process_start_time(pid))


def remove_mark(folder: Path) -> None:
    """Say the folder is finished: no process records into it any more."""
    (folder / RECORDING_MARK_FILE).unlink(missing_ok=True)
