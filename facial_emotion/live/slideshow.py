"""A folder of images played as a slideshow in a live session (one image per interval)."""

from __future__ import annotations

from typing import Final

from facial_emotion.sources import FrameSource, ImageFolderSource
from facial_emotion.types import Frame

SLIDE_S: Final[float] = 1.0


class SlideshowSource:
    """Wraps a source whose frames carry no real time, giving them one ``SLIDE_S`` apart.

    The engine plays a file at its own rate and, in real time, keeps only the newest frame;
    a folder read as fast as possible would flash by and leave only its last image.
    """

    live = False
    stills = True

    def __init__(self, inner: FrameSource, slide_s: float = SLIDE_S) -> None:
        self.inner = inner
        self.name = inner.name
        self.fps = 1.0 / slide_s
        self.frame_count = inner.frame_count

    def read(self) -> Frame | None:
        """The next image, stamped at its place in the slideshow."""
        frame = self.inner.read()
        if frame is None:
            return None
        return Frame(frame.image, frame.index, frame.index * 1000.0 / self.fps)

    def rewind(self) -> None:
        """Start again from the first image (for Loop video)."""
        rewind = getattr(self.inner, "rewind", None)
        if rewind is not None:
            rewind()
        elif isinstance(self.inner, ImageFolderSource):
            self.inner.close()
            self.inner = ImageFolderSource(self.inner.folder)

    def close(self) -> None:
        """Close the wrapped source."""
        self.inner.close()


def as_slideshow(source: FrameSource) -> FrameSource:
    """A folder of images as a slideshow; any other source unchanged."""
    return SlideshowSource(source) if isinstance(source, ImageFolderSource) else source
