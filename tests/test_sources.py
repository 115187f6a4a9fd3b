"""Frame sources: files in order with timestamps, clear errors for bad input."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from facial_emotion.sources import (
    CameraSource,
    ImageFolderSource,
    ImageSource,
    SourceError,
    SourceTruncated,
    SyntheticSource,
    VideoFileSource,
    iter_frames,
    open_source,
)


def test_video_file_reads_every_frame_in_order(shared_data: Path) -> None:
    source = open_source(shared_data / "faces-pyfeat" / "single_face.mp4")
    assert isinstance(source, VideoFileSource) and not source.live
    frames = list(iter_frames(source))
    assert len(frames) == source.frame_count == 72
    assert [f.index for f in frames] == list(range(72))
    stamps = [f.timestamp_ms for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert abs(stamps[30] - 1000.0) < 1e-6  # 30 fps
    assert frames[0].size == (640, 360)


def test_truncated_video_keeps_frames_then_says_so(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    source = VideoFileSource(cut)
    frames = []
    with pytest.raises(SourceTruncated, match="truncated"):
        while (frame := source.read()) is not None:
            frames.append(frame)
    assert 100 < len(frames) < 472


def test_unreadable_videos_fail_clearly(shared_data: Path, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a video\n")
    with pytest.raises(SourceError, match="not a video file"):
        VideoFileSource(fake)
    head = tmp_path / "head.mp4"  # the index (moov) of this file is at the end: cut it off
    head.write_bytes((shared_data / "faces-pyfeat" / "single_face.mp4").read_bytes()[:50_000])
    with pytest.raises(SourceError):
        VideoFileSource(head)
    with pytest.raises(SourceError, match="does not exist"):
        open_source(tmp_path / "missing.mp4")


def test_missing_camera_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="no camera at index 57"):
        CameraSource(57)


def test_image_and_folder_sources(shared_data: Path, tmp_path: Path) -> None:
    image = open_source(shared_data / "faces-pyfeat" / "single_face.jpg")
    assert isinstance(image, ImageSource)
    assert image.read() is not None and image.read() is None
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("b.jpg", "a.jpg"):
        shutil.copy(shared_data / "faces-pyfeat" / "single_face.jpg", folder / name)
    (folder / "c.jpg").write_text("broken")
    (folder / "readme.txt").write_text("ignored")
    source = open_source(folder)
    assert isinstance(source, ImageFolderSource)
    frames = list(iter_frames(source))
    assert len(frames) == 2 and [p.name for p in source.skipped] == ["c.jpg"]
    with pytest.raises(SourceError, match="holds no images"):
        ImageFolderSource(_empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


def test_synthetic_source_stands_in_for_an_unplugged_camera() -> None:
    source = SyntheticSource([np.zeros((4, 4, 3), np.uint8)] * 10, live=True, fail_after=3)
    for _ in range(3):
        assert source.read() is not None
    with pytest.raises(SourceError, match="stopped delivering"):
        source.read()
