"""load_session: every kind of session folder read back, its rows aligned with its video frames."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facial_emotion.cli import main
from facial_emotion.engine import Engine
from facial_emotion.recording import SessionRecorder
from facial_emotion.session.files import FRAMES_FILE, MARKERS_FILE, SESSION_FILE, TRANSCRIPT_FILE
from facial_emotion.session.load import SessionError, load_session
from facial_emotion.session.markers import Marker, MarkerWriter
from facial_emotion.session.recovery import find_unfinished, recover_session
from facial_emotion.session.report import build_report
from facial_emotion.session.schema import SCHEMA_VERSION, ModelNames, SessionInfo, VideoFinish
from facial_emotion.session.tables import FRAME_COLUMNS
from facial_emotion.settings import Settings
from facial_emotion.sources import SyntheticSource
from facial_emotion.types import Box, EmotionScores, Face, Frame, FrameResult, Sentiment, Utterance, Word

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _decode(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def _source_frames(path: Path, count: int, *, every: int = 1) -> list[np.ndarray]:
    frames = _decode_some(path, count * every)
    return frames[::every][:count]


def _decode_some(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def _face(k: int) -> Face:
    return Face(Box(10 + k, 10, 90 + k, 90), 1, emotion=EmotionScores((0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1)))


def _copy_fixture(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    return folder


def _assert_map_consistent(session_frames, video_frames: int) -> None:
    """Every data frame with rows has video frames, in order, none shared, inside the video."""
    table = session_frames
    ends = -1
    for k in table.data_frames.tolist():
        v = table.video_frame_of(k)
        assert v is not None and v > ends, (k, v)
        assert table.data_frame_at(v) == k
        ends = v
    assert ends < video_frames


# -- folders written by today's code ------------------------------------------------------------


def test_a_recording_with_dropped_frames_maps_clean_video_frames_to_its_rows(shared_data: Path, tmp_path: Path) -> None:
    fps = 23.976
    step_ms = 1000.0 / fps
    images = _source_frames(shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4", 20, every=15)
    slots = [0, 1, 2, 3, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 19, 20, 24, 25, 26, 27]  # gaps: frames were dropped
    recorder = SessionRecorder(tmp_path, fps=fps, clean_video=True, lossless=True, source_name="camera 0")
    folder = recorder.start()
    for k, slot in enumerate(slots):
        recorder.add_result(FrameResult(Frame(images[k], k, slot * step_ms), (_face(k),)))
    recorder.stop()

    session = load_session(folder)
    assert session.info.finished and session.info.format == SCHEMA_VERSION and session.info.kind == "recording"
    assert session.clean_video == folder / "video_clean.mp4" and session.video == folder / "video.mp4"
    table = session.frames
    assert not table.video_map_derived and len(table) == len(slots)
    # a frame after a gap takes the gap's video frames: the first that shows it comes early
    expected = [0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 15, 16, 17, 18, 19, 20, 21, 25, 26, 27]
    assert [table.video_frame_of(k) for k in range(len(slots))] == expected
    decoded = _decode(session.clean_video)
    assert len(decoded) == session.info.video_frames == slots[-1] + 1
    _assert_map_consistent(table, len(decoded))
    for k in (1, 4, 5, 9, 10, 16, 18):
        v = table.video_frame_of(k)
        assert v is not None
        own = float(np.abs(decoded[v].astype(float) - images[k]).mean())
        others = [float(np.abs(decoded[v].astype(float) - images[j]).mean()) for j in (k - 1, k + 1)]
        assert own * 3 < min(others), f"data frame {k} at video frame {v}: {own:.1f} vs {others}"
        span = table.video_map.repeats[list(table.data_frames).index(k)]
        for w in range(v, v + int(span)):  # a gap is filled with repeats of the frame, all of them its image
            assert table.data_frame_at(w) == k
            assert float(np.abs(decoded[w].astype(float) - images[k]).mean()) < own + 2.0
    rows = table.rows_for_frame(4)
    assert rows["track_id"].tolist() == [1] and rows["left"].tolist() == [14]


def test_a_recording_from_the_record_command(shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "faces-pyfeat" / "single_face.mp4"
    cmd = [sys.executable, "-m", "facial_emotion", "record", str(video), "--out", str(tmp_path), "--no-emotion"]
    proc = subprocess.run([*cmd, "--clean-video"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    session = load_session(folder)
    info = session.info
    assert info.finished and not info.recovered and info.kind == "recording" and info.stop_reason == "stopped"
    assert info.frames_written == 72 and info.source == str(video) and info.realtime is False
    assert info.settings is not None and info.settings.emotion is None and info.models.detector == "hog"
    assert len(session.frames) == info.rows > 60 and not session.frames.video_map_derived
    assert session.video is not None and session.clean_video is not None
    assert len(_decode(session.video)) == len(_decode(session.clean_video)) == info.video_frames == 72
    assert [session.frames.video_frame_of(k) for k in session.frames.data_frames] == session.frames.data_frames.tolist()
    assert session.transcript == () and session.markers == ()


def test_a_recording_from_the_app_with_the_rate_unknown(shared_data: Path, tmp_path: Path) -> None:
    """The app's recorder (``live.recorder``) on a live source that does not say its rate."""
    from facial_emotion.live.recorder import RecordingControl

    frames = _decode_some(shared_data / "faces-pyfeat" / "single_face.mp4", 30)
    settings = Settings(emotion=None)
    engine = Engine(settings)
    engine.open(SyntheticSource(frames, fps=30.0, live=True, name="camera (synthetic)"))
    events: list[object] = []
    control = RecordingControl(engine, lambda: settings, events.append, record_dir=tmp_path)
    folder = control.start()
    assert folder is not None
    processed = 0
    while engine.step() is not None:
        processed += 1
    control.stop()
    control.close(timeout_s=60)
    engine.stop()

    session = load_session(folder)
    assert session.info.finished and session.info.frames_written == processed == 30
    assert session.info.fps == 30.0, "estimated from the first frames' times"
    table = session.frames
    assert len(table) > 20 and not table.video_map_derived
    assert table.video_frame_of(int(table.data_frames[0])) == 0, "the rows buffered while the rate was unknown"
    _assert_map_consistent(table, session.info.video_frames)


def test_an_analyze_out_folder_and_a_still(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "video"
    video = shared_data / "faces-pyfeat" / "single_face.mp4"
    assert main(["analyze", str(video), "--out", str(out), "--no-emotion", "--no-speech"]) == 0
    session = load_session(out)
    info = session.info
    assert info.kind == "analysis" and info.finished and info.complete and info.frames_written == 72
    assert info.format == SCHEMA_VERSION and info.fps == 30.0 and info.source == str(video)
    assert session.video == out / "video.mp4" and session.clean_video is None
    table = session.frames
    assert not table.video_map_derived and len(table) == 72
    assert all(table.video_frame_of(k) == k and table.data_frame_at(k) == k for k in range(72))
    assert len(_decode(session.video)) == 72

    still = tmp_path / "still"
    assert main(["analyze", str(shared_data / "faces-pyfeat" / "multi_face.jpg"), "--out", str(still)]) == 0
    session = load_session(still)
    assert len(session.frames) == 4 and session.video is None
    assert session.frames.video_frame_of(0) is None and session.frames.data_frame_at(0) is None


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


def test_a_recording_killed_midway_loads_before_and_after_recovery(shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4"
    cmd = [sys.executable, "-m", "facial_emotion", "record", str(video), "--out", str(tmp_path), "--no-emotion"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        folder = Path(proc.stdout.readline().split("recording to ", 1)[1].strip())
        table = folder / FRAMES_FILE
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not table.exists() or table.read_bytes().count(b"\n") < 60):
            time.sleep(0.05)
        encoders = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        for pid in encoders:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    crashed = load_session(folder)  # an unfinished folder reads too
    assert not crashed.info.finished and len(crashed.frames) >= 60 and crashed.frames.skipped_rows == 0
    assert find_unfinished(tmp_path) == [folder]

    info = recover_session(folder)
    session = load_session(folder)
    assert session.info == info and info.recovered and info.finished and info.stop_reason == "crashed"
    assert len(session.frames) >= len(crashed.frames) and not session.frames.video_map_derived
    playable = len(_decode(folder / "video.mp4"))
    last = session.frames.video_frame_of(int(session.frames.data_frames[-1]))
    assert last is not None and playable - 2 <= last + 1 <= playable + 2 * 24, "rows up to the video's end"


# -- the previous release's layout ------------------------------------------------------------


def test_a_recording_of_the_previous_release_loads_with_a_derived_mapping(tmp_path: Path) -> None:
    folder = _copy_fixture("session_v1_record", tmp_path)
    session = load_session(folder)
    info = session.info
    assert info.format == 1 and info.kind == "recording" and info.finished and info.fps == 10.0
    assert info.frames_written == 10 and info.rows == 9 and info.video_frames == 12 and info.engine_dropped == 2
    assert info.videos == (VideoFinish("video.mp4", audio=True, remuxed=True),) and info.realtime is False
    assert info.models == ModelNames("hog", "68", None, None) and info.settings == Settings(emotion=None)
    table = session.frames
    assert "video_frame" not in table.present and table.video_map_derived
    # 300 ms and 400 ms were dropped: frame 4 fills them; frame 7 had no face (no row)
    expected = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 7, 6: 8, 8: 10, 9: 11}
    assert {k: table.video_frame_of(k) for k in expected} == expected
    assert [table.data_frame_at(v) for v in range(12)] == [0, 1, 2, 3, 4, 4, 4, 5, 6, None, 8, 9]
    assert len(_decode(session.video)) == info.video_frames
    (said,) = session.transcript
    assert said == Utterance(
        "hello there",
        True,
        100.0,
        800.0,
        (Word("hello", 100.0, 400.0, 0.9), Word("there", 450.0, 800.0, 0.8)),
        Sentiment(0.0, "neutral"),
    )
    assert session.audio == folder / "audio.wav" and session.markers == ()
    assert "data:image/png;base64," in build_report(folder).read_text()


def test_an_analysis_of_the_previous_release_loads(tmp_path: Path) -> None:
    folder = _copy_fixture("session_v1_analyze", tmp_path)
    session = load_session(folder)
    info = session.info
    assert info.format == 1 and info.kind == "analysis" and info.frames_written == 6 and info.complete
    assert info.source == "clip.mp4" and info.processing_s is not None
    assert session.frames.video_map_derived and [session.frames.video_frame_of(k) for k in range(6)] == list(range(6))
    (folder / SESSION_FILE).unlink()  # older still: only analyze's summary.json
    info = load_session(folder).info
    assert info.kind == "analysis" and info.frames_written == 6 and info.source == "clip.mp4" and info.fps == 30.0


# -- the schema, the other files, and folders that are not sessions ---------------------------


def test_session_info_round_trips_and_reads_the_first_release_keys() -> None:
    info = SessionInfo(
        name="s",
        finished=True,
        stop_reason="disk full",
        models=ModelNames("hog", "68", "fer2013", "/m.keras"),
        versions={"numpy": "2"},
        settings=Settings(emotion=None, overlays=("boxes",)),
        video_size=(640, 360),
        videos=(VideoFinish("video.mp4", audio=True, remuxed=True),),
        finish_errors={"report.html": "no space"},
    )
    data = json.loads(json.dumps(info.to_json()))
    assert data["format"] == SCHEMA_VERSION and SessionInfo.from_json(data) == info
    old = SessionInfo.from_json({"format": 1, "kind": "analysis", "frames": 12, "dropped_frames": 3, "fps": "x"})
    assert (old.kind, old.format, old.frames_written, old.frames_dropped, old.fps) == ("analysis", 1, 12, 3, None)
    with pytest.raises(ValueError):
        SessionInfo.from_json([1, 2])  # type: ignore[arg-type]


def test_damaged_lines_are_skipped_and_markers_are_read(tmp_path: Path) -> None:
    folder = _copy_fixture("session_v1_record", tmp_path)
    with open(folder / FRAMES_FILE, "a") as handle:
        handle.write("10,1200.0,0,1,30,5\n")  # a row cut short by a crash, then garbage
        handle.write("eleven,x,0,1\n")
    with open(folder / TRANSCRIPT_FILE, "a") as handle:
        handle.write('{"text": "cut sho\n[1, 2]\n')
    writer = MarkerWriter(folder / MARKERS_FILE)
    writer.write(Marker(900.0, "laughs, loudly", "user"))
    writer.write(Marker(250.0, "start", "hotkey"))
    writer.close()
    session = load_session(folder)
    assert session.frames.skipped_rows == 1 and len(session.frames) == 10, "a short row keeps its fields"
    assert len(session.transcript) == 1
    assert session.markers == (Marker(250.0, "start", "hotkey"), Marker(900.0, "laughs, loudly", "user"))


def test_folders_that_are_not_sessions_say_why(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("x")
    cases = {tmp_path / "missing": "not a folder", tmp_path / "a-file": "not a session folder"}
    cases[tmp_path / "empty"] = "not a session folder"
    for path, reason in cases.items():
        with pytest.raises(SessionError, match=reason) as caught:
            load_session(path)
        assert caught.value.path == path
    damaged = _copy_fixture("session_v1_record", tmp_path)
    (damaged / SESSION_FILE).write_text('{"format": 1, "name": ')
    with pytest.raises(SessionError, match="damaged JSON") as caught:
        load_session(damaged)
    assert caught.value.path == damaged / SESSION_FILE
    (damaged / SESSION_FILE).write_text("[]")
    with pytest.raises(SessionError, match="not an object"):
        load_session(damaged)
    (damaged / SESSION_FILE).write_text("{}")
    (damaged / FRAMES_FILE).unlink()
    (damaged / FRAMES_FILE).mkdir()
    with pytest.raises(SessionError, match="cannot read") as caught:
        load_session(damaged)
    assert caught.value.path == damaged / FRAMES_FILE
    assert tuple(FRAME_COLUMNS[-2:]) == ("video_frame", "video_repeats")
