"""The headless ``facial-emotion analyze`` command on real videos and photos."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import pytest

from facial_emotion.cli import main


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
    assert session["finished"] and not session["recovered"] and session["frames"] == 72
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
