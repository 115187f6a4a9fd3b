"""audio.wav: 16 kHz mono int16 PCM whose header is kept current, so a crash leaves a playable file."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import IO, Final

AUDIO_RATE_HZ: Final = 16000
WAV_HEADER_BYTES: Final = 44


def fix_wav_header(path: Path, *, rate_hz: int = AUDIO_RATE_HZ) -> float:
    """Rewrite a 16-bit mono WAV header to match the bytes on disk; the audio's length in s."""
    size = path.stat().st_size
    data_bytes = max(0, size - WAV_HEADER_BYTES) // 2 * 2
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate_hz,
        rate_hz * 2,
        2,
        16,
        b"data",
        data_bytes,
    )
    with open(path, "r+b") as handle:
        if size < WAV_HEADER_BYTES:
            handle.truncate(WAV_HEADER_BYTES)
        handle.seek(0)
        handle.write(header)
    return data_bytes / 2 / rate_hz


class WavWriter:
    """16-bit mono PCM appended to a WAV whose header is rewritten at every flush."""

    def __init__(self, path: Path, *, rate_hz: int = AUDIO_RATE_HZ) -> None:
        self.path, self.rate_hz = path, rate_hz
        self._handle: IO[bytes] = open(path, "wb", buffering=0)
        self._handle.write(b"\0" * WAV_HEADER_BYTES)
        self.samples = 0
        fix_wav_header(path, rate_hz=rate_hz)

    def write(self, pcm: bytes) -> None:
        """Append samples."""
        self._handle.write(pcm[: len(pcm) // 2 * 2])
        self.samples += len(pcm) // 2

    def flush(self) -> None:
        """Make the header match the samples written so far."""
        fix_wav_header(self.path, rate_hz=self.rate_hz)

    def close(self) -> None:
        """Fix the header and close."""
        if not self._handle.closed:
            self._handle.close()
            fix_wav_header(self.path, rate_hz=self.rate_hz)
