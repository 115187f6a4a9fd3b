"""The headless ``facial-emotion analyze`` command on real videos and photos."""

from __future__ import annotations

import csv
import errno
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import pytest

from facial_emotion.analyze import analyze
from facial_emotion.cli import main
from facial_emotion.settings import Settings


def _frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_analyze_video_writes_consistent_outputs(shared_data: Path, tmp_path: Path, tiny_emotion_model: Path) -> None:
    out = tmp_path / "out"
    rc = main(
        [
            "analyze",
            str(shared_data / "faces-pyfeat" / "single_face.mp4"),
            "--out",
            str(out),
            "--model",
            str(tiny_emotion_model),
        ]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = _rows(out / "frames.csv")
    assert summary["complete"] and summary["frames"] == 72
    assert _frames(out / "annotated.mp4") == 72
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert abs(cap.get(cv2.CAP_PROP_FPS) - 30.0) < 0.01
    assert len(rows) == summary["rows"] == 72
    assert {r["frame"] for r in rows} == {str(i) for i in range(72)}
    ((track_id, track),) = summary["tracks"].items()
    assert track["frames"] == 72 and {r["track_id"] for r in rows} == {track_id}
    shares = Counter(r["emotion"] for r in rows)
    for name, share in track["emotion_shares"].items():
        assert abs(share - shares[name] / 72) < 1e-3
    assert sum(
        float(r[f"p_{e}"])
        for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
        for r in rows[:1]
    ) == pytest.approx(1.0, abs=1e-3)
    assert int(rows[-1]["blinks"]) == track["blinks"] == summary["blinks"]
    assert summary["processing_fps"] > 0
    # the same folder layout as a recorded session
    session = json.loads((out / "session.json").read_text())
    assert session["finished"] and not session["recovered"] and session["frames_written"] == 72
    assert (out / "video.mp4").stat().st_ino == (out / "annotated.mp4").stat().st_ino
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 3


def test_analyze_group_photo_and_folder(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "photo"
    assert (
        main(["analyze", str(shared_data / "faces-pyfeat" / "multi_face.jpg"), "--out", str(out), "--no-emotion"]) == 0
    )
    assert len(_rows(out / "frames.csv")) == 4
    assert (out / "annotated.jpg").is_file()
    out = tmp_path / "folder"
    assert main(["analyze", str(shared_data / "faces-dlib"), "--out", str(out), "--no-emotion", "--no-video"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 12 and "dogs.jpg" in summary["files"]
    dogs = summary["files"].index("dogs.jpg")
    assert not [r for r in _rows(out / "frames.csv") if r["frame"] == str(dogs)]


def test_analyze_face_free_video_has_no_rows(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "none"
    assert main(["analyze", str(shared_data / "faces-pyfeat" / "no_face.mp4"), "--out", str(out), "--no-emotion"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tracks"] == {} and summary["rows"] == 0
    assert _frames(out / "annotated.mp4") == summary["frames"] >= 95


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "facial_emotion", *args], capture_output=True, text=True, timeout=300)


def test_truncated_video_keeps_partial_results(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.5)])
    out = tmp_path / "out"
    proc = _cli("analyze", str(cut), "--out", str(out), "--no-emotion")
    assert proc.returncode == 4
    assert "truncated" in proc.stderr and "Traceback" not in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["complete"] and 50 < summary["frames"] < 472
    assert _frames(out / "annotated.mp4") == summary["frames"]
    assert len(_rows(out / "frames.csv")) == summary["rows"] > 0


def test_bad_inputs_fail_with_a_message(tmp_path: Path) -> None:
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not really a video")
    proc = _cli("analyze", str(fake), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "not a video file" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("analyze", str(tmp_path / "nothing.mp4"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def _no_emotion() -> Settings:
    return Settings().replace(emotion=None)


def _csv_is_whole(path: Path) -> list[dict[str, str]]:
    """The rows of frames.csv, asserting that none is cut short."""
    text = path.read_bytes().decode()
    assert text.endswith("\r\n")
    rows = _rows(path)
    assert all(None not in row and None not in row.values() for row in rows)
    return rows


def test_damaged_packet_does_not_end_the_analysis(shared_data: Path, tmp_path: Path) -> None:
    data = bytearray((shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4").read_bytes())
    data[445_011:449_011] = random.Random(0).randbytes(4000)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data)
    out = tmp_path / "out"
    summary = analyze(damaged, out, settings=_no_emotion(), speech=False)
    assert not summary["complete"] and "skipped" in summary["error"]
    assert 0 < summary["frames_skipped"] <= 10 and summary["frames"] + summary["frames_skipped"] == 472
    assert json.loads((out / "summary.json").read_text())["frames_skipped"] == summary["frames_skipped"]
    assert _frames(out / "annotated.mp4") == summary["outputs"]["video_frames"] == 472  # gaps keep their places
    assert len(_csv_is_whole(out / "frames.csv")) == summary["rows"] > 400


def test_full_disk_keeps_a_playable_video_whole_rows_and_a_summary(shared_data: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        out = disk / "out"
        with pytest.raises(OSError, match="No space left") as caught:
            analyze(
                shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4", out, settings=_no_emotion(), speech=False
            )
        assert caught.value.errno == errno.ENOSPC
        summary = json.loads((out / "summary.json").read_text())
        assert summary["complete"] is False and "No space left" in summary["error"]
        rows = _csv_is_whole(out / "frames.csv")
        assert len(rows) == summary["rows"] and 0 < summary["frames"] < 472
        probe = subprocess.run(["ffprobe", "-v", "error", str(out / "annotated.mp4")], capture_output=True, text=True)
        assert "moov atom not found" not in probe.stderr and probe.returncode == 0
        assert _frames(out / "annotated.mp4") > 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_ctrl_c_leaves_an_interrupted_summary(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "facial_emotion", "analyze", "--no-emotion", "--no-speech", "--out", str(out)]
    proc = subprocess.Popen(
        [*command, str(shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # wait until frames are being written
        if (out / "frames.csv").is_file() and len((out / "frames.csv").read_bytes().splitlines()) > 5:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["error"] == "interrupted" and 0 < summary["frames"] < 472
    assert len(_csv_is_whole(out / "frames.csv")) == summary["rows"]


def test_sound_file_and_cut_stream_on_the_command_line(shared_data: Path, tmp_path: Path) -> None:
    wav = tmp_path / "talk.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(wav)], check=True
    )
    proc = _cli("analyze", str(wav), "--out", str(tmp_path / "w"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no video" in proc.stderr and "facial-emotion transcribe" in proc.stderr and "corrupt" not in proc.stderr
    ts = tmp_path / "clip.ts"
    src = shared_data / "faces-pyfeat" / "single_face.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-c", "copy", "-f", "mpegts", str(ts)], check=True)
    cut = tmp_path / "cut.ts"
    cut.write_bytes(ts.read_bytes()[: ts.stat().st_size * 2 // 3 + 77])
    out = tmp_path / "ts"
    proc = _cli("analyze", str(cut), "--out", str(out), "--no-emotion", "--no-speech")
    assert proc.returncode == 4 and "truncated" in proc.stderr and "Traceback" not in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and 10 < summary["frames"] < 72
