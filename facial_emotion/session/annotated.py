"""``analyze``'s annotated output: a fragmented ``annotated.mp4`` for videos, image files for stills."""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

from facial_emotion.session.files import ANNOTATED_STEM, ANNOTATED_VIDEO_FILE
from facial_emotion.session.video_map import IndexSlots
from facial_emotion.sources import FrameSource, ImageFolderSource, ImageSource
from facial_emotion.types import FrameResult

log = logging.getLogger(__name__)


class AnnotatedOutput:
    """Where annotated frames go: a fragmented .mp4 for videos, image files for stills.

    The video goes through the recorder's ``ffmpeg`` writer (a fragment a second), so
    a full disk or a kill leaves a file that plays up to its last fragment. Frames the
    source skipped repeat the next image (``IndexSlots``), so video frame n is still
    input frame n; ``place`` says which video frames a result will take, for its rows.
    """

    def __init__(self, out_dir: Path, source: FrameSource) -> None:
        self.source = source
        self.out_dir = out_dir
        self._writer: Any = None
        self._slots = IndexSlots()
        self.path: Path | None = None
        self.frames = 0

    @property
    def is_video(self) -> bool:
        """True when the output is a video (not image files)."""
        return not isinstance(self.source, ImageSource | ImageFolderSource)

    def place(self, result: FrameResult) -> tuple[int, int] | None:
        """The first video frame that will show result and how many in a row; None for stills.

        Call it once per result, before ``write``.
        """
        if not self.is_video:
            return None
        return self._slots.place(result.frame.index)

    def write(self, result: FrameResult, placed: tuple[int, int] | None = None) -> None:
        """Write one annotated frame where ``place`` put it (OSError when it cannot be written)."""
        image = result.annotated if result.annotated is not None else result.frame.image
        if isinstance(self.source, ImageSource):
            self.path = self.out_dir / f"{ANNOTATED_STEM}{Path(self.source.name).suffix or '.png'}"
            _imwrite(self.path, image)
        elif isinstance(self.source, ImageFolderSource):
            self.path = self.out_dir / ANNOTATED_STEM
            self.path.mkdir(exist_ok=True)
            current = self.source.current_path
            _imwrite(self.path / (current.name if current else f"{result.frame.index:06d}.png"), image)
        else:
            if self._writer is None:
                self._open(image)
            _, repeats = placed if placed is not None else self._slots.place(result.frame.index)
            import cv2

            if isinstance(self._writer, cv2.VideoWriter):
                for _ in range(repeats):
                    self._writer.write(image)
            else:
                self._writer.write(image, repeats)
            self.frames += repeats
            return
        self.frames += 1

    def _open(self, image: Any) -> None:
        import cv2

        from facial_emotion.session.video import VideoPipeWriter

        self.path = self.out_dir / ANNOTATED_VIDEO_FILE
        height, width = image.shape[:2]
        fps = self.source.fps or 30.0
        try:
            self._writer = VideoPipeWriter(self.path, width=width, height=height, fps=fps)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            log.warning("%s; writing a plain mp4 with OpenCV instead", exc.strerror or exc)
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            if not self._writer.isOpened():
                raise OSError(f"cannot write video {self.path}") from exc

    def close(self) -> None:
        """Finish the video file so it plays (OSError when its end could not be written)."""
        import cv2

        writer, self._writer = self._writer, None
        if writer is None:
            return
        if isinstance(writer, cv2.VideoWriter):
            writer.release()
            return
        writer.close()  # raises OSError when ffmpeg could not write the end of the file


def _imwrite(path: Path, image: Any) -> None:
    import cv2

    if not cv2.imwrite(str(path), image):
        path.unlink(missing_ok=True)
        raise OSError(errno.EIO, f"cannot write image {path} (is the disk full?)")
