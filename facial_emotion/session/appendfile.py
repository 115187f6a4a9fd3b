"""A file appended to in whole records: unbuffered, and a failed append cut back to the last whole record.

``frames.csv``, ``transcript.jsonl`` and ``markers.csv`` are written this way, so a
crash (nothing buffered is lost) or a full disk (the partial record is removed) never
leaves half a line for a reader to trip on.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class AppendOnlyFile:
    """Records appended with ``os.write``; ``flush`` makes them durable (fsync)."""

    def __init__(self, path: Path, header: bytes = b"") -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._size = 0
        if header:
            self.append(header)

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._fd < 0

    def append(self, data: bytes) -> None:
        """Append one or more whole records, all or none (OSError when the disk refuses)."""
        if self._fd < 0:
            raise ValueError(f"{self.path} is closed")
        view, done = memoryview(data), 0
        try:
            while done < len(view):
                written = os.write(self._fd, view[done:])
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += written
        except OSError:
            if done:
                os.ftruncate(self._fd, self._size)
                os.lseek(self._fd, self._size, os.SEEK_SET)
            raise
        self._size += len(data)

    def flush(self) -> None:
        """Make what was appended durable (fsync)."""
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the file (what was appended is already with the OS)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
