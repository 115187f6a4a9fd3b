"""video.mp4 and video_clean.mp4: frames piped to ``ffmpeg`` as fragmented mp4, remuxed when finished.

Fragmented mp4 (a fragment a second) stays playable up to a crash, losing at most the
last second; finishing remuxes it into a normal mp4 with the sound muxed in.
"""

from __future__ import annotations

import collections
import errno
import functools
import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Final

import numpy as np

from facial_emotion.session.audio import WAV_HEADER_BYTES
from facial_emotion.session.schema import VideoFinish

log = logging.getLogger(__name__)

ENCODER_NICENESS: Final = 10
MAX_AUDIO_OFFSET_S: Final = 10.0
"""A larger gap between the first audio chunk and the first frame means unrelated clocks."""


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


def _ffmpeg(args: list[str], *, timeout_s: float = 600.0) -> str | None:
    """Run ffmpeg; None on success, else its last error line."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return "ffmpeg is not installed"
    try:
        proc = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return lines[-1] if lines else f"ffmpeg exited with {proc.returncode}"
    return None


def _replace_if_made(tmp: Path, target: Path, error: str | None) -> str | None:
    if error is None and tmp.is_file() and tmp.stat().st_size > 0:
        os.replace(tmp, target)
        return None
    tmp.unlink(missing_ok=True)
    return error or "ffmpeg wrote nothing"


def finish_video(path: Path, *, audio: Path | None = None, audio_offset_s: float = 0.0) -> VideoFinish:
    """Remux a fragmented mp4 into a normal one, muxing audio in when given.

    The original is replaced only after the new file is complete; when muxing the
    audio fails the video is remuxed alone, and when that fails too it stays as it was
    (a fragmented mp4 plays anyway).
    """
    if not path.is_file() or path.stat().st_size == 0:
        return VideoFinish(path.name, error="no video was written")
    tmp = path.with_name(f".{path.stem}.finishing.mp4")
    audio_error: str | None = None
    if audio is not None and audio.is_file() and audio.stat().st_size > WAV_HEADER_BYTES:
        offset = audio_offset_s if abs(audio_offset_s) <= MAX_AUDIO_OFFSET_S else 0.0
        args = ["-i", str(path), "-itsoffset", f"{offset:.3f}", "-i", str(audio), "-map", "0:v:0", "-map", "1:a:0"]
        args += ["-c:v", "copy", "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", str(tmp)]
        audio_error = _replace_if_made(tmp, path, _ffmpeg(args))
        if audio_error is None:
            return VideoFinish(path.name, audio=True, remuxed=True)
        log.warning("muxing audio into %s failed (%s); keeping the video without it", path, audio_error)
    error = _replace_if_made(tmp, path, _ffmpeg(["-i", str(path), "-c", "copy", "-movflags", "+faststart", str(tmp)]))
    return VideoFinish(path.name, remuxed=error is None, error=error, audio_error=audio_error)


def video_duration_s(path: Path) -> float:
    """The length of a video file by ffprobe, in s (0.0 when it cannot be told)."""
    exe = shutil.which("ffprobe")
    if exe is None or not path.is_file():
        return 0.0
    try:
        out = subprocess.run(
            [exe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        return round(max(0.0, float(out.strip() or 0.0)), 3)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return 0.0
