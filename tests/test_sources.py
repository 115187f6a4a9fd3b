"""Frame sources: files in order with timestamps, clear errors for bad input."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
import wave
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


def _clip(src: Path, out: Path, *args: str) -> Path:
    """A short re-encoded copy of src (ffmpeg), or skip without ffmpeg."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg is not installed (./install.sh installs it)")
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-frames:v", "48", "-c:v", "libx264", "-g", "12"]
    subprocess.run([*command, *args, str(out)], check=True, timeout=120)
    return out


def _read_all(source: VideoFileSource) -> list[int]:
    return [frame.index for frame in iter_frames(source)]


def test_damaged_packet_is_skipped_not_taken_as_the_end(shared_data: Path, tmp_path: Path) -> None:
    data = bytearray((shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4").read_bytes())
    data[445_011:449_011] = random.Random(0).randbytes(4000)  # one damaged stretch, about a quarter in
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data)
    source = VideoFileSource(damaged, verify=True)
    indices = _read_all(source)
    assert 0 < source.skipped <= 10 and len(indices) + source.skipped == 472
    assert indices[-1] == 471 and len(set(indices)) == len(indices)  # lost frames keep their places
    assert sum(b - a - 1 for a, b in itertools.pairwise(indices)) == source.skipped


def test_cut_ts_and_piped_mkv_are_found_out(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "faces-pyfeat" / "single_face.mp4"
    ts = _clip(src, tmp_path / "whole.ts")
    mkv = tmp_path / "whole.mkv"  # written to a pipe: no duration, no frame count in its header
    with open(mkv, "wb") as handle:
        command = ["ffmpeg", "-v", "error", "-i", str(ts), "-c", "copy", "-f", "matroska", "pipe:1"]
        subprocess.run(command, stdout=handle, check=True, timeout=60)
    for whole in (ts, mkv):
        source = VideoFileSource(whole, verify=True)
        assert len(_read_all(source)) == 48 == source.frame_count and source.skipped == 0
        cut = tmp_path / f"cut{whole.suffix}"
        data = whole.read_bytes()
        cut.write_bytes(data[: len(data) * 2 // 3 + 77])
        source = VideoFileSource(cut, verify=True)
        frames = []
        with pytest.raises(SourceTruncated, match=r"truncated|cut"):
            while (frame := source.read()) is not None:
                frames.append(frame)
        assert 10 < len(frames) < 48


def test_sound_file_is_named_as_sound_not_corrupt(tmp_path: Path) -> None:
    wav = tmp_path / "interview.wav"
    with wave.open(str(wav), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2")
        handle.writeframes(tone.tobytes())
    with pytest.raises(SourceError, match=r"has sound but no video.*facial-emotion transcribe") as caught:
        open_source(wav)
    assert "corrupt" not in str(caught.value)
