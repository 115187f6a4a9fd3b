"""A video file's sound track handed on as playback reaches it, on session time.

The app plays a video's frames at their own rate; its sound is decoded by FFmpeg and given,
chunk by chunk, to a sink (the recorder) once the picture has reached that point, shifted
onto session time. A loop (the file's clock going back) starts the track again, so a
recording that spans passes holds the sound of every pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from facial_emotion.speech.audio import AudioError, VideoAudioSource

log = logging.getLogger(__name__)

AudioSink = Callable[[bytes, float], None]


class FileSound:
    """Feeds the sound of ``path`` to ``sink(chunk, session_ms)`` up to the playback position."""

    def __init__(self, path: str, sink: AudioSink) -> None:
        self.path = path
        self.sink = sink
        self.failed: str | None = None
        self._source: VideoAudioSource | None = None
        self._chunks: Iterator[tuple[bytes, float]] | None = None
        self._pending: tuple[bytes, float] | None = None
        self._last_ms: float | None = None

    def feed(self, source_ms: float, offset_ms: float) -> None:
        """Hand on every chunk that starts at or before ``source_ms`` (the file's clock)."""
        if self.failed is not None:
            return
        if self._last_ms is not None and source_ms < self._last_ms:
            self.close()  # the video looped: its sound starts again
        self._last_ms = source_ms
        try:
            if self._chunks is None:
                self._source = VideoAudioSource(self.path)
                self._chunks = self._source.chunks()
            while True:
                if self._pending is None:
                    self._pending = next(self._chunks, None)
                    if self._pending is None:
                        return
                data, t_ms = self._pending
                if t_ms > source_ms:
                    return
                self.sink(data, t_ms + offset_ms)
                self._pending = None
        except AudioError as exc:
            self.failed = str(exc)
            log.warning("the sound of %s is not recorded: %s", self.path, exc)
            self.close()

    def close(self) -> None:
        """Stop decoding (FFmpeg ends); a later feed starts from the beginning."""
        if self._source is not None:
            self._source.close()
        if self._chunks is not None:
            self._chunks.close()
        self._source = self._chunks = None
        self._pending = None
        self._last_ms = None
