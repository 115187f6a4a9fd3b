"""Session recording: what is written, what survives a SIGKILL, and a full disk."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facial_emotion.engine import Engine
from facial_emotion.recording import SessionRecorder
from facial_emotion.recording_cli import feed_pcm, read_pcm16k
from facial_emotion.session.info import read_info
from facial_emotion.session.recovery import find_unfinished
from facial_emotion.session.schema import SessionInfo
from facial_emotion.session.tables import FRAME_COLUMNS
from facial_emotion.session.video_map import estimate_fps
from facial_emotion.session.writers import SessionWriter
from facial_emotion.settings import Settings
from facial_emotion.sources import VideoFileSource
from facial_emotion.types import Frame, FrameResult, Sentiment, Utterance, Word

REPO = Path(__file__).resolve().parent.parent


def read_session(folder: Path) -> SessionInfo:
    """The folder's session.json, which must be there."""
    info = read_info(folder)
    assert info is not None, f"no readable session.json in {folder}"
    return info


def count_frames(path: Path) -> int:
    """Frames cv2 can decode from a video file."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def csv_lines(path: Path) -> list[list[str]]:
    """Every line of a CSV file, header first."""
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def audio_streams(path: Path) -> list[str]:
    """Codec names of the audio streams in a media file."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def test_records_a_video_file_with_rows_sound_transcript_and_report(
    shared_data: Path, tiny_emotion_model: Path, tmp_path: Path
) -> None:
    video = shared_data / "faces-pyfeat" / "single_face.mp4"
    settings = Settings(emotion_model_path=str(tiny_emotion_model))
    source = VideoFileSource(video)
    engine = Engine(settings, realtime=False)
    engine.open(source)
    recorder = SessionRecorder(tmp_path, settings=settings, fps=source.fps, source_name=video.name, lossless=True)
    folder = recorder.start()
    engine.add_listener(recorder.add_result)
    feed_pcm(recorder, read_pcm16k(video))
    words = (Word("what", 100.0, 300.0, 0.9), Word("a", 300.0, 350.0), Word("lovely", 350.0, 800.0))
    recorder.add_utterance(Utterance("what a lovely", False, 100.0, 600.0))  # a partial: not kept
    recorder.add_utterance(Utterance("what a lovely day", True, 100.0, 1200.0, words, Sentiment(0.6, "positive")))
    faces_seen = processed = 0
    while (result := engine.step()) is not None:
        processed += 1
        faces_seen += len(result.faces)
    assert recorder.stop() == folder

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert count_frames(folder / "video.mp4") == processed == 72
    assert audio_streams(folder / "video.mp4") == ["aac"]
    lines = csv_lines(folder / "frames.csv")
    assert tuple(lines[0]) == FRAME_COLUMNS
    assert len(lines) - 1 == faces_seen > 60
    assert {row[FRAME_COLUMNS.index("emotion")] for row in lines[1:]} - {""}, "emotions are in the table"
    transcript = [json.loads(line) for line in (folder / "transcript.jsonl").read_text().splitlines()]
    assert [u["text"] for u in transcript] == ["what a lovely day"]
    assert [w["text"] for w in transcript[0]["words"]] == ["what", "a", "lovely"]
    info = read_session(folder)
    assert info.finished is True and info.recovered is False and info.error is None
    assert info.frames_written == 72 and info.frames_dropped == 0
    assert info.models.emotion_model_path == str(tiny_emotion_model)
    assert info.audio_s is not None and 2.0 < info.audio_s < 2.8  # the clip's 2.4 s of sound
    report = (folder / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 5
    assert "http://" not in report and "https://" not in report
    assert not find_unfinished(tmp_path)


def test_gaps_in_a_live_stream_keep_the_video_in_time(tmp_path: Path) -> None:
    image = np.full((121, 161, 3), 90, np.uint8)  # odd sizes are padded for yuv420p
    recorder = SessionRecorder(tmp_path, fps=10.0, lossless=True)
    folder = recorder.start()
    for index, t_ms in enumerate([0, 100, 200, 500, 600]):  # frames at 300 and 400 ms were dropped
        recorder.add_result(FrameResult(Frame(image, index, float(t_ms))))
    recorder.stop()
    assert count_frames(folder / "video.mp4") == 7
    assert len(csv_lines(folder / "frames.csv")) == 1  # no faces, just the header


def test_frame_rate_is_estimated_from_timestamps_despite_drops() -> None:
    steps = [0, 41.7, 83.4, 166.8, 208.5, 250.2, 291.9, 333.6]
    assert estimate_fps(steps) == 23.976
    assert estimate_fps([0.0]) == 30.0


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def test_sigkill_midway_keeps_playable_video_and_whole_rows_then_recovers(shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4"
    cmd = [sys.executable, "-m", "facial_emotion", "record", str(video), "--out", str(tmp_path), "--no-emotion"]
    cmd += ["--audio", str(video)]  # its own sound, as a microphone would give it
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        folder = Path(proc.stdout.readline().split("recording to ", 1)[1].strip())
        table = folder / "frames.csv"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not table.exists() or table.read_bytes().count(b"\n") < 100):
            time.sleep(0.05)
        encoders = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the recorder and its ffmpeg die together: nothing is closed
        for pid in encoders:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    lines = csv_lines(table)
    assert tuple(lines[0]) == FRAME_COLUMNS
    assert all(len(line) == len(FRAME_COLUMNS) for line in lines[1:])
    written = len({line[0] for line in lines[1:]})
    assert 90 <= written < 472, "killed midway"
    frames = count_frames(folder / "video.mp4")
    print(f"SIGKILL after {written} frames written: {frames} playable")
    assert written - 2 * 24 <= frames <= written + 1, f"{frames} frames playable of {written} written"
    assert find_unfinished(tmp_path) == [folder]

    report = subprocess.run(
        [sys.executable, "-m", "facial_emotion", "report", str(folder)], cwd=REPO, capture_output=True, text=True
    )
    assert report.returncode == 0, report.stderr
    info = read_session(folder)
    assert info.finished is True and info.recovered is True
    times_ms = [float(line[1]) for line in csv_lines(table)[1:]]
    assert info.duration_s == pytest.approx((max(times_ms) - min(times_ms)) / 1000, abs=0.01), "the rows' time"
    assert info.duration_s <= frames / 24 + 2.0, "not the time until the recovery"
    assert count_frames(folder / "video.mp4") == frames
    assert audio_streams(folder / "video.mp4") == ["aac"] and info.audio_s is not None and info.audio_s > 1.0
    assert "data:image/png;base64," in (folder / "report.html").read_text()
    assert not (folder / ".recording").exists() and not find_unfinished(tmp_path)


class FullDiskWriter(SessionWriter):
    """A session writer whose disk fills up after some frames."""

    fail_at = 20

    def write_result(self, result: FrameResult) -> None:
        if self.frames == self.fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().write_result(result)


def test_full_disk_stops_recording_keeps_files_and_the_engine_runs(shared_data: Path, tmp_path: Path) -> None:
    source = VideoFileSource(shared_data / "faces-pyfeat" / "single_face.mp4")
    engine = Engine(Settings(emotion=None), realtime=False)
    engine.open(source)
    messages: list[str] = []
    recorder = SessionRecorder(
        tmp_path, fps=source.fps, on_error=messages.append, writer_factory=FullDiskWriter, lossless=True
    )
    folder = recorder.start()
    engine.add_listener(recorder.add_result)
    results = [engine.step() for _ in range(40)]
    deadline = time.monotonic() + 30
    while not recorder.done and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder.done and not recorder.stats().recording
    assert messages and "disk is full" in messages[0] and str(folder) in messages[0]
    after = [engine.step() for _ in range(20)]
    assert all(r is not None for r in results + after), "the live view keeps running"
    assert count_frames(folder / "video.mp4") == 20
    lines = csv_lines(folder / "frames.csv")
    assert {int(line[0]) for line in lines[1:]} == set(range(20))
    info = read_session(folder)
    assert info.finished is True and info.error is not None and "disk is full" in info.error
    assert info.stop_reason == "disk full"
    assert recorder.stop() == folder  # stopping a failed recording is harmless


def test_record_command_rejects_a_missing_source(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "facial_emotion", "record", str(tmp_path / "nope.mp4"), "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_report_command_needs_a_session_folder(tmp_path: Path) -> None:
    for target, expected in ((tmp_path / "missing", "not a folder"), (tmp_path, "no frames.csv")):
        proc = subprocess.run(
            [sys.executable, "-m", "facial_emotion", "report", str(target)], cwd=REPO, capture_output=True, text=True
        )
        assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr


def test_importing_the_recorder_loads_no_heavy_library() -> None:
    code = (
        "import sys, facial_emotion.recording, facial_emotion.session.recovery, facial_emotion.session.report, "
        "facial_emotion.recording_cli; "
        "print(sorted(m for m in ('tensorflow', 'matplotlib', 'PySide6', 'dlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
