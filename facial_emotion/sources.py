"""Frame sources behind one protocol: camera, video file, image, image folder, synthetic."""

from __future__ import annotations

import logging
import os
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


class VideoFileSource:
    """A video file read in order; timestamps are the frame's position in the file."""

    live = False

    def __init__(self, path: Path) -> None:
        _quiet_ffmpeg()
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} does not exist")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise SourceError(f"cannot read {self.path}: not a video file, or the file is corrupt or truncated")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 and np.isfinite(fps) else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        self._index = 0
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"cannot decode any frame of {self.path}: the file is corrupt or empty")
        self._pending: np.ndarray | None = first

    def read(self) -> Frame | None:
        """The next frame, None at the end; SourceTruncated if the file ends early."""
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                # Container headers estimate the count (no_face.mp4 says 98, holds 95);
                # missing more than that slack means a cut or damaged file.
                slack = max(3, round(0.04 * (self.frame_count or 0)))
                if self.frame_count and self._index < self.frame_count - slack:
                    raise SourceTruncated(
                        f"{self.name} ended after {self._index} of {self.frame_count} frames: "
                        "the file is truncated or damaged"
                    )
                return None
        period_ms = 1000.0 / (self.fps or 30.0)
        frame = Frame(image, self._index, self._index * period_ms)
        self._index += 1
        return frame

    def rewind(self) -> None:
        """Start again from the first frame (for looping playback)."""
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._index = 0
        self._pending = None

    def close(self) -> None:
        """Release the file."""
        self._cap.release()


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


def open_source(spec: str | int | Path) -> FrameSource:
    """A source from a camera index, a video or image path, or a folder of images."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return CameraSource(int(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        return ImageFolderSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoFileSource(path)


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
