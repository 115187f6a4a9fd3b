"""The files of one session folder, written by the recorder thread only.

- ``video.mp4`` (and ``video_clean.mp4``): raw BGR frames piped to ``ffmpeg``, which
  writes fragmented mp4 (a fragment a second), so a crash loses at most the last second;
- ``frames.csv``: the columns of ``analyze``, one unbuffered write per frame, so a
  crash never leaves half a row; its times never go back (see ``SessionClock``);
- ``audio.wav``: 16 kHz mono int16, header kept current at every flush;
- ``transcript.jsonl``: one final utterance per line.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import errno
import functools
import io
import json
import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from facial_emotion.recovery import (
    AUDIO_FILE,
    CLEAN_VIDEO_FILE,
    FRAMES_FILE,
    TRANSCRIPT_FILE,
    VIDEO_FILE,
    fix_wav_header,
)
from facial_emotion.tables import FRAME_COLUMNS, frame_rows
from facial_emotion.types import FrameResult, Utterance

log = logging.getLogger(__name__)

AUDIO_RATE_HZ: Final = 16000
FPS_PROBE_FRAMES: Final = 8
"""Frames buffered to estimate the rate when the source does not say."""
COMMON_FPS: Final = (10.0, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0)
MAX_AUDIO_GAP_S: Final = 10.0
ENCODER_NICENESS: Final = 10


@functools.cache
def video_encoder() -> str | None:
    """libx264 when this ffmpeg has it, else mpeg4; None without ffmpeg."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    try:
        listing = subprocess.run(
            [exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return "libx264" if " libx264 " in listing else "mpeg4"


def estimate_fps(timestamps_ms: list[float], default: float = 30.0) -> float:
    """The frame rate from timestamps (median step), snapped to a common rate within 3%."""
    steps = np.diff(np.asarray(timestamps_ms, dtype=float))
    steps = steps[steps > 0]
    if steps.size == 0:
        return default
    fps = 1000.0 / float(np.median(steps))
    if not 1.0 <= fps <= 240.0:
        return default
    near = min(COMMON_FPS, key=lambda c: abs(c - fps))
    return near if abs(near - fps) / near < 0.03 else round(fps, 3)


def utterance_json(utterance: Utterance) -> dict[str, Any]:
    """One utterance as JSON: the speech package's form when it exists, else the same fields."""
    try:
        from facial_emotion.speech.transcribe import utterance_to_json
    except ImportError:
        pass
    else:
        return utterance_to_json(utterance)
    s = utterance.sentiment
    return {
        "text": utterance.text,
        "start_ms": round(utterance.start_ms, 1),
        "end_ms": round(utterance.end_ms, 1),
        "words": [
            {"text": w.text, "start_ms": round(w.start_ms, 1), "end_ms": round(w.end_ms, 1), "conf": w.confidence}
            for w in utterance.words
        ],
        "sentiment": None if s is None else s.compound,
        "label": None if s is None else s.label,
    }


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


class VideoPipeWriter:
    """Frames of one size into an ``ffmpeg`` process writing fragmented mp4."""

    def __init__(self, path: Path, *, width: int, height: int, fps: float) -> None:
        encoder = video_encoder()
        if encoder is None:
            raise OSError(errno.ENOENT, "ffmpeg is not installed; no video is recorded")
        self.path, self.size, self.encoder = path, (width, height), encoder
        gop = max(1, round(fps))
        codec = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"]
        if encoder != "libx264":
            codec = ["-c:v", "mpeg4", "-q:v", "5"]
        # Frames go in as yuv420p converted by OpenCV (SIMD, no GIL): half the bytes of
        # BGR, and about a third less encoder CPU than ffmpeg's own conversion.
        self._even = (width + width % 2, height + height % 2)
        args = [shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostats"]
        args += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "{}x{}".format(*self._even), "-r", f"{fps:.3f}"]
        args += ["-i", "-", *codec, "-pix_fmt", "yuv420p", "-g", str(gop), "-threads", "1"]
        args += ["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000"]
        args += ["-f", "mp4", "-y", str(path)]
        # A session of its own: Ctrl+C in a terminal reaches us, and we close the pipe cleanly.
        self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, start_new_session=True
        )
        try:  # the live view comes first: the encoder gets the CPU that inference leaves
            os.setpriority(os.PRIO_PROCESS, self._proc.pid, ENCODER_NICENESS)
        except (AttributeError, OSError):
            pass
        self._errors: collections.deque[str] = collections.deque(maxlen=8)
        self._drain = threading.Thread(target=self._read_errors, name="fe-ffmpeg-log", daemon=True)
        self._drain.start()
        self.frames = 0
        self._resized_warned = False

    def _read_errors(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._errors.append(line.decode(errors="replace").strip())

    def write(self, image: np.ndarray, repeats: int = 1) -> None:
        """Append an image (resized if the source changed size) repeats times."""
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        import cv2

        if (image.shape[1], image.shape[0]) != self.size:
            if not self._resized_warned:
                log.warning("frame size changed to %s; scaling to %s", image.shape[1::-1], self.size)
                self._resized_warned = True
            image = cv2.resize(image, self.size)
        if self._even != self.size:
            image = cv2.copyMakeBorder(image, 0, self._even[1] - image.shape[0], 0, self._even[0] - image.shape[1], 0)
        data = memoryview(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)).cast("B")
        assert self._proc.stdin is not None
        try:
            for _ in range(repeats):
                self._proc.stdin.write(data)
                self.frames += 1
        except (BrokenPipeError, ValueError) as exc:
            raise self._error() from exc

    def _error(self) -> OSError:
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._drain.join(1.0)
        message = self._errors[-1] if self._errors else f"ffmpeg exited with {self._proc.returncode}"
        code = errno.ENOSPC if "space left" in message.lower() else errno.EIO
        return OSError(code, f"video encoder stopped: {message}")

    def close(self, timeout_s: float = 60.0) -> None:
        """End the stream and wait for ffmpeg to write its last fragment."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            rc = self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            rc = self._proc.wait()
        self._drain.join(1.0)
        # ffmpeg exits 0 when only closing the file failed (a full disk at the last fragment):
        # at its "error" log level any line it printed means the end of the file is missing.
        if rc != 0 or any(self._errors):
            raise self._error()


class WavWriter:
    """16-bit mono PCM appended to a WAV whose header is rewritten at every flush."""

    def __init__(self, path: Path, *, rate_hz: int = AUDIO_RATE_HZ) -> None:
        self.path, self.rate_hz = path, rate_hz
        self._handle: IO[bytes] = open(path, "wb", buffering=0)
        self._handle.write(b"\0" * 44)
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


def _open_text(path: Path, first_line: str = "") -> IO[bytes]:
    handle = open(path, "wb", buffering=0)
    if first_line:
        handle.write(first_line.encode())
    return handle


class SessionWriter:
    """Owns the files of one session folder; every method runs on the recorder thread."""

    def __init__(self, folder: Path, *, fps: float | None = None, clean_video: bool = False) -> None:
        self.folder, self.fps, self.clean_video = folder, fps, clean_video
        self._csv = _open_text(folder / FRAMES_FILE, ",".join(FRAME_COLUMNS) + "\r\n")
        self._transcript = _open_text(folder / TRANSCRIPT_FILE)
        self._clock = SessionClock(fps)
        self._videos: dict[str, VideoPipeWriter] = {}
        self._pending: list[FrameResult] = []
        self._wav: WavWriter | None = None
        self.frames = self.rows = self.repeated = self.utterances = 0
        self.first_frame_ms: float | None = None
        self.first_audio_ms: float | None = None
        self._anchor: tuple[float, int] = (0.0, 0)
        self.video_error: str | None = None

    def write_result(self, result: FrameResult) -> None:
        """One frame: its rows at once, its images once the rate is known."""
        result = self._clock(result)
        rows = frame_rows(result)
        if rows:
            buf = io.StringIO()
            csv.DictWriter(buf, fieldnames=FRAME_COLUMNS).writerows(rows)
            self._csv.write(buf.getvalue().encode())
            self.rows += len(rows)
        self.frames += 1
        if self.first_frame_ms is None:
            self.first_frame_ms = result.frame.timestamp_ms
        self._pending.append(result)
        if self.fps is None and len(self._pending) < FPS_PROBE_FRAMES:
            return
        self._write_pending()

    def _write_pending(self) -> None:
        if self.fps is None:
            self.fps = estimate_fps([r.frame.timestamp_ms for r in self._pending])
        pending, self._pending = self._pending, []
        for result in pending:
            self._write_video(result)

    def _write_video(self, result: FrameResult) -> None:
        """Constant rate from timestamps: a gap (dropped frames) repeats the last image."""
        assert self.fps is not None
        if self.video_error is not None:
            return
        if not self._videos:
            self._open_videos(result)
            if not self._videos:
                return
        video = self._videos["annotated"]
        t_ms = result.frame.timestamp_ms
        anchor_ms, anchor_frame = self._anchor
        slot = anchor_frame + round((t_ms - anchor_ms) * self.fps / 1000.0)
        if slot < video.frames - self.fps:  # the clock went back (new source, loop): restart it
            self._anchor, slot = (t_ms, video.frames), video.frames
        repeats = int(min(max(slot - video.frames + 1, 1), 2 * self.fps))
        self.repeated += repeats - 1
        image = result.annotated if result.annotated is not None else result.frame.image
        video.write(image, repeats)
        if "clean" in self._videos:
            self._videos["clean"].write(result.frame.image, repeats)

    def _open_videos(self, result: FrameResult) -> None:
        assert self.fps is not None
        height, width = result.frame.image.shape[:2]
        self._anchor = (result.frame.timestamp_ms, 0)
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
        line = json.dumps(utterance_json(utterance), ensure_ascii=False) + "\n"
        self._transcript.write(line.encode())
        self.utterances += 1

    def flush(self) -> None:
        """Rows and lines are written unbuffered; keep the WAV header current."""
        if self._wav is not None:
            self._wav.flush()
        for handle in (self._csv, self._transcript):
            os.fsync(handle.fileno())

    def close(self) -> None:
        """Write what is buffered and close every file; raises the first error after trying all."""
        first: OSError | None = None
        try:
            if self._pending:
                self._write_pending()
        except OSError as exc:
            first = exc
        closers = [*(v.close for v in self._videos.values()), self._csv.close, self._transcript.close]
        if self._wav is not None:
            closers.append(self._wav.close)
        for close in closers:
            try:
                close()
            except OSError as exc:
                first = first or exc
        if first is not None:
            raise first

    def counts(self) -> dict[str, Any]:
        """What was written, for session.json."""
        video = self._videos.get("annotated")
        return {
            "frames_written": self.frames,
            "rows": self.rows,
            "fps": self.fps,
            "video_frames": video.frames if video else 0,
            "video_frames_repeated": self.repeated,
            "video_size": list(video.size) if video else None,
            "video_codec": video.encoder if video else None,
            "video_error": self.video_error,
            "utterances": self.utterances,
            "audio_samples": self._wav.samples if self._wav else 0,
            "first_frame_ms": self.first_frame_ms,
            "first_audio_ms": self.first_audio_ms,
        }
