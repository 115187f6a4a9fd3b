"""The files of one recording, written by the recorder thread only (``SessionWriter``).

- ``video.mp4`` (and ``video_clean.mp4``): raw frames piped to ``ffmpeg`` as fragmented
  mp4 at a constant rate; a gap in the input repeats an image (``video_map.RateSlots``);
- ``frames.csv``: the columns of ``analyze`` with the video frame of each row, one
  unbuffered write per frame, so a crash never leaves half a row; its times never go
  back (see ``SessionClock``);
- ``audio.wav``: 16 kHz mono int16, header kept current at every flush;
- ``transcript.jsonl``: one final utterance per line;
- ``markers.csv``: one row per marker dropped while recording (made at the first one).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
from pathlib import Path
from typing import Any, Final

from facial_emotion.session.audio import AUDIO_RATE_HZ, WavWriter
from facial_emotion.session.files import (
    AUDIO_FILE,
    CLEAN_VIDEO_FILE,
    FRAMES_FILE,
    MARKERS_FILE,
    TRANSCRIPT_FILE,
    VIDEO_FILE,
)
from facial_emotion.session.markers import Marker, MarkerWriter
from facial_emotion.session.tables import FrameTableWriter
from facial_emotion.session.transcript import TranscriptWriter
from facial_emotion.session.video import VideoPipeWriter
from facial_emotion.session.video_map import RateSlots, estimate_fps
from facial_emotion.types import FrameResult, Utterance

log = logging.getLogger(__name__)

FPS_PROBE_FRAMES: Final = 8
"""Frames (and their rows) buffered to estimate the rate when the source does not say."""
MAX_AUDIO_GAP_S: Final = 10.0


class SessionClock:
    """Keeps a recording's frame index and time monotonic whatever the input does.

    The engine sends session time that never goes back, with ``pass_index`` counting
    loops and source changes. Should a frame still come with an index or time that goes
    back (a loop the engine did not mark), this clock shifts it to one frame step after
    the last frame written and starts a new pass.
    """

    def __init__(self, fps: float | None = None) -> None:
        self._step_ms = 1000.0 / fps if fps else None
        self._last: tuple[int, float] | None = None  # index and time as written
        self._offset_index = 0
        self._offset_ms = 0.0
        self._extra_passes = 0
        self._last_input_pass = 0

    def __call__(self, result: FrameResult) -> FrameResult:
        """The result with its frame's index, time and pass made monotonic."""
        frame = result.frame
        index = frame.index + self._offset_index
        t_ms = frame.timestamp_ms + self._offset_ms
        new_pass = frame.pass_index != self._last_input_pass
        if self._last is not None:
            last_index, last_ms = self._last
            step_ms = self._step_ms or 1000.0 / 30.0
            if t_ms < last_ms:
                self._offset_ms += last_ms + step_ms - t_ms
                t_ms = last_ms + step_ms
                if not new_pass:  # the input went back without saying so: a pass of our own
                    self._extra_passes += 1
            elif self._step_ms is None and t_ms > last_ms:
                self._step_ms = min(t_ms - last_ms, 1000.0)
            if index <= last_index:
                self._offset_index += last_index + 1 - index
                index = last_index + 1
        self._last_input_pass = frame.pass_index
        pass_index = frame.pass_index + self._extra_passes
        self._last = (index, t_ms)
        if (index, t_ms, pass_index) == (frame.index, frame.timestamp_ms, frame.pass_index):
            return result
        frame = dataclasses.replace(frame, index=index, timestamp_ms=t_ms, pass_index=pass_index)
        return dataclasses.replace(result, frame=frame)

    def session_ms(self, t_ms: float) -> float:
        """A time of the input (a marker's) on the written frames' time, shifted as the last frame was."""
        return t_ms + self._offset_ms


class SessionWriter:
    """Owns the files of one session folder; every method runs on the recorder thread."""

    def __init__(self, folder: Path, *, fps: float | None = None, clean_video: bool = False) -> None:
        self.folder, self.fps, self.clean_video = folder, fps, clean_video
        self._table = FrameTableWriter(folder / FRAMES_FILE)
        self._transcript = TranscriptWriter(folder / TRANSCRIPT_FILE)
        self._clock = SessionClock(fps)
        self._videos: dict[str, VideoPipeWriter] = {}
        self._slots: RateSlots | None = None
        self._pending: list[FrameResult] = []
        self._wav: WavWriter | None = None
        self._markers: MarkerWriter | None = None
        self.frames = self.repeated = 0
        self.first_frame_ms: float | None = None
        self.last_frame_ms: float | None = None
        self.first_audio_ms: float | None = None
        self.video_error: str | None = None

    @property
    def rows(self) -> int:
        """Rows written to frames.csv."""
        return self._table.rows

    @property
    def utterances(self) -> int:
        """Lines written to transcript.jsonl."""
        return self._transcript.utterances

    def write_result(self, result: FrameResult) -> None:
        """One frame: its rows and images at once, or once the rate is known."""
        result = self._clock(result)
        if self.first_frame_ms is None:
            self.first_frame_ms = result.frame.timestamp_ms
        self.last_frame_ms = result.frame.timestamp_ms
        self._pending.append(result)
        if self.fps is None and len(self._pending) < FPS_PROBE_FRAMES:
            self.frames += 1
            return
        self._write_pending()
        self.frames += 1

    def _write_pending(self) -> None:
        if self.fps is None:
            self.fps = estimate_fps([r.frame.timestamp_ms for r in self._pending])
        pending, self._pending = self._pending, []
        for result in pending:
            self._write_frame(result)

    def _write_frame(self, result: FrameResult) -> None:
        """Rows with the video frames that show them, then the images (a gap repeats one)."""
        assert self.fps is not None
        first = repeats = None
        if self.video_error is None:
            if not self._videos:
                self._open_videos(result)
            if self._videos:
                if self._slots is None:
                    self._slots = RateSlots(self.fps)
                first, repeats = self._slots.place(result.frame.timestamp_ms)
        self._table.write(result, video_frame=first, video_repeats=repeats)
        if repeats is None:
            return
        self.repeated += repeats - 1
        image = result.annotated if result.annotated is not None else result.frame.image
        self._videos["annotated"].write(image, repeats)
        if "clean" in self._videos:
            self._videos["clean"].write(result.frame.image, repeats)

    def _open_videos(self, result: FrameResult) -> None:
        assert self.fps is not None
        height, width = result.frame.image.shape[:2]
        try:
            self._videos["annotated"] = VideoPipeWriter(
                self.folder / VIDEO_FILE, width=width, height=height, fps=self.fps
            )
            if self.clean_video:
                path = self.folder / CLEAN_VIDEO_FILE
                self._videos["clean"] = VideoPipeWriter(path, width=width, height=height, fps=self.fps)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            self.video_error = exc.strerror or str(exc)
            log.error("%s", self.video_error)

    def write_audio(self, pcm: bytes, t_ms: float) -> None:
        """Append PCM; a gap in the chunks' times is filled with silence to keep sync."""
        if self._wav is None:
            self._wav = WavWriter(self.folder / AUDIO_FILE)
            self.first_audio_ms = t_ms
        assert self.first_audio_ms is not None
        due = round((t_ms - self.first_audio_ms) * AUDIO_RATE_HZ / 1000.0)
        gap = due - self._wav.samples
        if AUDIO_RATE_HZ // 10 < gap <= MAX_AUDIO_GAP_S * AUDIO_RATE_HZ:
            self._wav.write(b"\0\0" * gap)
        self._wav.write(pcm)

    def write_utterance(self, utterance: Utterance) -> None:
        """Append one line to transcript.jsonl."""
        self._transcript.write(utterance)

    def write_marker(self, marker: Marker) -> None:
        """Append one row to markers.csv, on the time of the frames written."""
        if self._markers is None:
            self._markers = MarkerWriter(self.folder / MARKERS_FILE)
        self._markers.write(dataclasses.replace(marker, time_ms=self._clock.session_ms(marker.time_ms)))

    def flush(self) -> None:
        """Rows and lines are written unbuffered: make them durable, keep the WAV header current."""
        if self._wav is not None:
            self._wav.flush()
        if self._markers is not None:
            self._markers.flush()
        self._table.flush()
        self._transcript.flush()

    def close(self) -> None:
        """Write what is buffered and close every file; raises the first error after trying all."""
        first: OSError | None = None
        try:
            if self._pending:
                self._write_pending()
        except OSError as exc:
            first = exc
        closers = [*(v.close for v in self._videos.values()), self._table.close, self._transcript.close]
        if self._wav is not None:
            closers.append(self._wav.close)
        if self._markers is not None:
            closers.append(self._markers.close)
        for close in closers:
            try:
                close()
            except OSError as exc:
                first = first or exc
        if first is not None:
            raise first

    def data_span_s(self) -> float | None:
        """Session time the written frames cover, one frame step included (None before any frame)."""
        if self.first_frame_ms is None or self.last_frame_ms is None:
            return None
        step_ms = 1000.0 / self.fps if self.fps else 0.0
        return (self.last_frame_ms - self.first_frame_ms + step_ms) / 1000.0

    def counts(self) -> dict[str, Any]:
        """What was written, as ``SessionInfo`` fields."""
        video = self._videos.get("annotated")
        return {
            "frames_written": self.frames,
            "rows": self.rows,
            "fps": self.fps,
            "video_frames": video.frames if video else 0,
            "video_frames_repeated": self.repeated,
            "video_size": video.size if video else None,
            "video_codec": video.encoder if video else None,
            "video_error": self.video_error,
            "utterances": self.utterances,
            "audio_samples": self._wav.samples if self._wav else 0,
            "first_frame_ms": self.first_frame_ms,
            "first_audio_ms": self.first_audio_ms,
        }
