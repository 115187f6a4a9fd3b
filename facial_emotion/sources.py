"""Frame sources behind one protocol: camera, video file, image, image folder, synthetic."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, Protocol

import cv2
import numpy as np

from facial_emotion.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
CAMERA_FAILURES_BEFORE_ERROR: Final[int] = 10
FILE_FAILURES_BEFORE_END: Final[int] = 64
"""Unreadable packets in a row a video file may hold before the rest is taken as lost."""
PROBE_TIMEOUT_S: Final[float] = 120.0
AUDIO_SUFFIXES: Final = frozenset({".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma"})


_EPOCH_S: Final[float] = time.monotonic()


def clock_ms() -> float:
    """The shared live clock: monotonic ms since the app started (cameras and microphones use it)."""
    return (time.monotonic() - _EPOCH_S) * 1000.0


class SourceError(RuntimeError):
    """A source cannot be opened or stopped delivering; the message is for the user."""


class SourceTruncated(SourceError):
    """A file ended before the length its header promised (frames read so far are valid)."""


class FrameSource(Protocol):
    """Something that yields frames: ``read()`` gives the next Frame, or None at the end.

    ``live`` sources (cameras) deliver in real time and may drop frames; file sources
    are read in order. ``fps`` is the nominal rate (None when unknown), ``frame_count``
    the expected number of frames (None for live). ``read`` raises SourceError when the
    source breaks (camera unplugged, file cut short).
    """

    name: str
    live: bool
    fps: float | None
    frame_count: int | None

    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended."""
        ...

    def close(self) -> None:
        """Release the device or file."""
        ...


def _quiet_ffmpeg() -> None:
    """Silence FFmpeg's own log lines: a corrupt file is reported by us, once, in words."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    utils_logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if utils_logging is not None and hasattr(utils_logging, "setLogLevel"):
        utils_logging.setLogLevel(utils_logging.LOG_LEVEL_ERROR)


@dataclasses.dataclass(frozen=True, slots=True)
class StreamCheck:
    """What the demuxer (``ffprobe``) found in a video file, without decoding it."""

    packets: int | None
    """Video packets meant to be shown (edit-list discards left out): the true frame count."""
    problem: str | None
    """Why the file is cut or damaged, in words; None when the demuxer saw nothing wrong."""
    has_video: bool = True
    has_audio: bool = False


_DEMUXER_LINE: Final = re.compile(r"^\[(?P<tag>[^\]@]+?) @ [^\]]+\]\s*(?P<text>.*)$")
_CUT_WORDS: Final = ("ended prematurely", "partial file", "truncat", "end of file", "incomplete", "invalid data")


def _duration_s(value: str | None) -> float | None:
    """Seconds from ffprobe's ``12.345`` or a Matroska tag's ``00:00:12.345000000``."""
    if not value or value == "N/A":
        return None
    try:
        if ":" in value:
            h, m, sec = value.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        return float(value)
    except ValueError:
        return None


def judge_probe(path: Path, stdout: str, stderr: str) -> StreamCheck:
    """A StreamCheck from ffprobe's ``default`` output of packets, streams and format."""
    packets, kept, last_end, step = 0, 0, None, None
    durations: list[float] = []
    fields: dict[str, str] = {}
    codec_types: set[str] = set()
    for line in stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "codec_type":
            codec_types.add(value)
        elif key == "flags":  # one per video packet, after its pts_time and duration_time
            packets += 1
            if "D" not in value:
                kept += 1
                pts, dur = _duration_s(fields.get("pts_time")), _duration_s(fields.get("duration_time"))
                if pts is not None:
                    end = pts + (dur or 0.0)
                    last_end = end if last_end is None else max(last_end, end)
                step = dur or step
        elif key in ("duration", "TAG:DURATION") and fields.get("codec_type") == "video":
            if (seconds := _duration_s(value)) is not None:
                durations.append(seconds)
        fields[key] = value
        if key == "start_time" and fields.get("codec_type") == "video":
            fields["video_start"] = value
    problem = None
    for line in stderr.splitlines():
        match = _DEMUXER_LINE.match(line.strip())
        text = (match["text"] if match else line).strip()
        demuxer = match is not None and ("," in match["tag"] or match["tag"] in ("mpegts", "avi", "flv", "ogg"))
        if text and (demuxer or any(word in text.lower() for word in _CUT_WORDS)):
            problem = f"the file is cut or damaged ({text.rstrip('.')})"
            break
    fmt = fields.get("format_name", "")
    size = path.stat().st_size if path.is_file() else 0
    if problem is None and "mpegts" in fmt and size % 188 and size % 192:
        problem = "the file is cut off in the middle of a transport packet (truncated)"
    start = _duration_s(fields.get("video_start")) or 0.0
    if problem is None and durations and last_end is not None:
        expected_end = start + min(durations)
        slack = max(0.5, 3 * (step or 0.04))
        if last_end < expected_end - slack:
            problem = (
                f"the video stops at {last_end - start:.2f} s of the {expected_end - start:.2f} s "
                "its header promises (truncated)"
            )
    return StreamCheck(
        packets=kept if packets else None,
        problem=problem,
        has_video="video" in codec_types or packets > 0,
        has_audio="audio" in codec_types,
    )


class StreamProbe:
    """``ffprobe`` demuxing a file in the background while it is decoded; ``result()`` at the end.

    Headers only estimate a length (MPEG-TS) or have none (a Matroska file written to
    a pipe); the demuxer counts the packets and notices a file that ends mid-element.
    Without ffprobe every answer is "unknown".
    """

    def __init__(self, path: Path, *, video_only: bool = True) -> None:
        self.path = path
        self._proc: subprocess.Popen[bytes] | None = None
        exe = shutil.which("ffprobe")
        if exe is None:
            return
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        args = [exe, "-hide_banner", "-v", "error", "-of", "default=nw=1"]
        if video_only:
            args += ["-select_streams", "v:0", "-show_entries", "packet=pts_time,duration_time,flags"]
        args += ["-show_entries", "stream=codec_type,start_time,duration:stream_tags=DURATION"]
        args += ["-show_entries", "format=format_name", str(path)]
        try:
            self._proc = subprocess.Popen(args, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL)
        except OSError as exc:
            log.debug("ffprobe unavailable: %s", exc)
            self._proc = None

    def result(self, timeout_s: float = PROBE_TIMEOUT_S) -> StreamCheck | None:
        """Wait for ffprobe (killed past timeout_s); None when it could not tell."""
        if self._proc is None:
            return None
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.close()
            return None
        self._out.seek(0)
        self._err.seek(0)
        stdout = self._out.read().decode(errors="replace")
        stderr = self._err.read().decode(errors="replace")
        self.close()
        return judge_probe(self.path, stdout, stderr)

    def close(self) -> None:
        """Stop ffprobe if it still runs and drop its output."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
            self._out.close()
            self._err.close()


def _no_video_message(path: Path) -> str | None:
    """For a file that holds sound but no picture: what to do instead; None otherwise."""
    check = StreamProbe(path, video_only=False).result(timeout_s=20.0)
    sound_only = check.has_audio and not check.has_video if check else path.suffix.lower() in AUDIO_SUFFIXES
    if not sound_only:
        return None
    return f"{path} has sound but no video: to turn its speech into text, run `facial-emotion transcribe {path}`"


class VideoFileSource:
    """A video file read in order; timestamps are the frame's position in the file.

    An unreadable packet does not end the file: reading goes on past up to
    ``FILE_FAILURES_BEFORE_END`` failures in a row, and the frames lost count in
    ``skipped`` (the next frame keeps its place: its index counts the lost ones).
    With ``verify`` an ``ffprobe`` pass runs alongside and, at the end, tells a cut
    or damaged stream from a whole one (``SourceTruncated``) and the true frame count.
    """

    live = False

    def __init__(self, path: Path, *, verify: bool = False) -> None:
        _quiet_ffmpeg()
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} does not exist")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(
                _no_video_message(self.path)
                or f"cannot read {self.path}: not a video file, or the file is corrupt or truncated"
            )
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps <= 1000 and np.isfinite(fps) else None
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count: int | None = int(count) if np.isfinite(count) and 0 < count < 2**31 else None
        self.skipped = 0
        """Frames that could not be read and were passed over."""
        self._index = 0
        self._ended = False
        self._probe = StreamProbe(self.path) if verify else None
        first = self._next_image()
        if first is None:
            self.close()
            raise SourceError(
                _no_video_message(self.path) or f"cannot decode any frame of {self.path}: the file is corrupt or empty"
            )
        self._pending: np.ndarray | None = first

    def _next_image(self) -> np.ndarray | None:
        """The next decodable image, stepping over unreadable packets; None at the end."""
        failures = 0
        while not self._ended:
            try:
                ok, image = self._cap.read()
            except cv2.error as exc:  # a damaged stream can trip OpenCV's own checks
                log.debug("read failed in %s: %s", self.name, exc)
                ok, image = False, None
            if ok and image is not None and image.size:
                self._index += failures
                self.skipped += failures
                return image
            failures += 1
            at_end = self.frame_count is not None and self._index + failures >= self.frame_count
            if at_end or failures >= FILE_FAILURES_BEFORE_END:
                self._ended = True
        return None

    def read(self) -> Frame | None:
        """The next frame, None at the end; SourceTruncated if the file ends early or is damaged."""
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            image = self._next_image()
            if image is None:
                self._check_end()
                return None
        period_ms = 1000.0 / (self.fps or 30.0)
        frame = Frame(image, self._index, self._index * period_ms)
        self._index += 1
        return frame

    def _check_end(self) -> None:
        """At the end: raise SourceTruncated unless every frame the file holds was read."""
        check = self._probe.result() if self._probe is not None else None
        self._probe = None
        if check is not None and check.packets is not None:
            self.frame_count = check.packets
            slack = 0
        else:
            # Container headers estimate the count (no_face.mp4 says 98, holds 95).
            slack = max(3, round(0.04 * (self.frame_count or 0)))
        if check is not None and check.problem is not None:
            raise SourceTruncated(f"{self.name} ended after {self._index} frames: {check.problem}")
        if self.frame_count and self._index < self.frame_count - slack:
            raise SourceTruncated(
                f"{self.name} ended after {self._index} of {self.frame_count} frames: the file is truncated or damaged"
            )

    def rewind(self) -> None:
        """Start again from the first frame (for looping playback)."""
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._index = 0
        self.skipped = 0
        self._ended = False
        self._pending = None
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def close(self) -> None:
        """Release the file (and stop a verifying ffprobe)."""
        self._cap.release()
        if self._probe is not None:
            self._probe.close()
            self._probe = None


class CameraSource:
    """A live camera by index; timestamps come from the shared ``clock_ms`` (as microphone chunks do)."""

    live = True
    frame_count = None

    def __init__(self, index: int, *, width: int | None = 640, height: int | None = 480) -> None:
        _quiet_ffmpeg()
        self.index = index
        self.name = f"camera {index}"
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            raise SourceError(f"no camera at index {index} (is it connected, and free for this user?)")
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's queue would show stale frames
        if width and height:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        self._index = 0

    def read(self) -> Frame | None:
        """The next frame; SourceError when the camera stops delivering."""
        for _ in range(CAMERA_FAILURES_BEFORE_ERROR):
            ok, image = self._cap.read()
            if ok and image is not None:
                frame = Frame(image, self._index, clock_ms())
                self._index += 1
                return frame
            time.sleep(0.01)
        raise SourceError(f"{self.name} stopped delivering frames (unplugged or taken by another program)")

    def close(self) -> None:
        """Release the camera."""
        self._cap.release()


def read_image(path: Path) -> np.ndarray:
    """A BGR image from disk, or SourceError naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"cannot read image {path}: not an image or corrupt")
    return image


class ImageSource:
    """One still image as a one-frame source."""

    live = False
    stills = True
    fps = None
    frame_count = 1

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_file():
            raise SourceError(f"image {self.path} does not exist")
        self._image: np.ndarray | None = read_image(self.path)

    def read(self) -> Frame | None:
        """The image once, then None."""
        if self._image is None:
            return None
        frame, self._image = Frame(self._image, 0, 0.0), None
        return frame

    def close(self) -> None:
        """Nothing to release."""


class ImageFolderSource:
    """Every image in a folder, in name order; unreadable files are skipped with a warning."""

    live = False
    stills = True
    """Unrelated pictures: nothing is tracked from one to the next."""
    fps = None

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.name = self.folder.name
        if not self.folder.is_dir():
            raise SourceError(f"folder {self.folder} does not exist")
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(f"folder {self.folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.frame_count = len(self.paths)
        self.skipped: list[Path] = []
        self._next = 0
        self._index = 0

    @property
    def current_path(self) -> Path | None:
        """The file of the frame read last."""
        return self.paths[self._next - 1] if self._next else None

    def read(self) -> Frame | None:
        """The next readable image, or None after the last."""
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                image = read_image(path)
            except SourceError as exc:
                log.warning("%s; skipped", exc)
                self.skipped.append(path)
                continue
            frame = Frame(image, self._index, float(self._index))
            self._index += 1
            return frame
        return None

    def close(self) -> None:
        """Nothing to release."""


class SyntheticSource:
    """Frames from a list or a generator function, standing in for a camera or a file.

    ``fail_after`` makes ``read`` raise SourceError after that many frames, like a
    camera that is unplugged mid-session. A ``live`` one delivers at ``fps`` in real
    time, as a camera does.
    """

    def __init__(
        self,
        frames: list[np.ndarray] | Callable[[int], np.ndarray | None],
        *,
        fps: float | None = 30.0,
        live: bool = False,
        fail_after: int | None = None,
        name: str = "synthetic",
    ) -> None:
        self._frames = frames
        self.fps = fps
        self.live = live
        self.fail_after = fail_after
        self.name = name
        self.frame_count = len(frames) if isinstance(frames, list) else None
        self._index = 0
        self.closed = False
        self._t0: float | None = None

    def read(self) -> Frame | None:
        """The next frame, None at the end, SourceError past fail_after."""
        if self.live and self.fps:
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now
            due = self._t0 + self._index / self.fps
            if due > now:
                time.sleep(due - now)
        if self.fail_after is not None and self._index >= self.fail_after:
            raise SourceError(f"{self.name} stopped delivering frames")
        if isinstance(self._frames, list):
            image = self._frames[self._index] if self._index < len(self._frames) else None
        else:
            image = self._frames(self._index)
        if image is None:
            return None
        frame = Frame(image, self._index, self._index * 1000.0 / (self.fps or 30.0))
        self._index += 1
        return frame

    def close(self) -> None:
        """Mark closed."""
        self.closed = True


def open_source(spec: str | int | Path, *, verify: bool = False) -> FrameSource:
    """A source from a camera index, a video or image path, or a folder of images.

    ``verify`` has a video file checked by ``ffprobe`` as it is read (see VideoFileSource).
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return CameraSource(int(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        return ImageFolderSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoFileSource(path, verify=verify)


def iter_frames(source: FrameSource) -> Iterator[Frame]:
    """Every frame of a source until it ends (SourceError propagates)."""
    while (frame := source.read()) is not None:
        yield frame


def list_cameras(max_index: int = 4) -> list[int]:
    """Indices of the cameras that can be opened now (quietly tries 0..max_index-1)."""
    _quiet_ffmpeg()
    found = []
    for index in range(max_index):
        if not Path(f"/dev/video{index}").exists():
            continue
        cap = cv2.VideoCapture(index)
        if cap.isOpened():
            found.append(index)
        cap.release()
    return found
