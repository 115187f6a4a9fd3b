"""The Record menu on a bare window over a live session: click record, frames flow, stop, the folder is done."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QMainWindow, QToolBar

from facial_emotion.gui.recording_controls import RecordingControls
from facial_emotion.live import LiveSession
from facial_emotion.settings import Settings
from facial_emotion.sources import SyntheticSource


def _polled(window: QMainWindow, live: LiveSession) -> QTimer:
    """What the main window does: poll the session from a timer, which publishes its events."""
    timer = QTimer(window)
    timer.timeout.connect(live.poll)
    timer.start(20)
    return timer


def _video_frames(path: Path, count: int) -> list:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def test_record_button_records_a_session(qtbot, shared_data: Path, tmp_path: Path, no_thread_leak: None) -> None:
    frames = _video_frames(shared_data / "faces-pyfeat" / "single_face.mp4", 40)
    live = LiveSession(Settings(emotion=None, record_dir=str(tmp_path)))
    live.open(SyntheticSource(frames, fps=30.0, live=True, name="camera (synthetic)"))
    window = QMainWindow()
    qtbot.addWidget(window)
    controller = RecordingControls(window, live, window.menuBar().addMenu("&Record"))
    _polled(window, live)
    window.show()

    menus = [a.text() for a in window.menuBar().actions()]
    assert "&Record" in menus
    toolbar = window.findChildren(QToolBar)[0]
    button = toolbar.widgetForAction(controller.actions.toggle)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert controller.recording
    qtbot.waitUntil(lambda: controller.actions.toggle.text() == "Stop recording", timeout=2000)
    qtbot.waitUntil(lambda: controller.indicator.isVisible(), timeout=2000)
    assert controller.indicator.text().startswith("● REC 00:0")
    labels = window.statusBar().findChildren(QLabel)
    assert controller.indicator in labels

    processed = 0
    while live.engine.step() is not None:
        processed += 1
    qtbot.wait(300)  # a few timer ticks while recording
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert not controller.recording
    qtbot.waitUntil(lambda: not controller.indicator.isVisible(), timeout=2000)
    with qtbot.waitSignal(controller.session_finished, timeout=30000) as finished:
        pass
    folder = Path(finished.args[0])
    assert folder.parent == tmp_path
    info = json.loads((folder / "session.json").read_text())
    assert info["finished"] is True and info["frames_written"] + info["frames_dropped"] == processed == 40
    cap = cv2.VideoCapture(str(folder / "video.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= info["frames_written"] > 0
    cap.release()
    assert (folder / "frames.csv").read_text().count("\n") > 30
    assert "data:image/png;base64," in (folder / "report.html").read_text()
    controller.shutdown()
    live.close()


def test_install_recovers_a_crashed_session_and_reports_it(qtbot, tmp_path: Path, no_thread_leak: None) -> None:
    crashed = tmp_path / "2026-11-24_08-15-02"
    crashed.mkdir()
    (crashed / "frames.csv").write_text("frame,timestamp_ms\n0,0.0\n1,33")  # cut mid-line
    (crashed / ".recording").write_text("999999999\n")  # a process that no longer exists
    (crashed / "session.json").write_text(json.dumps({"finished": False, "started_epoch_s": 0}))
    live = LiveSession(Settings(emotion=None, record_dir=str(tmp_path)))
    window = QMainWindow()
    qtbot.addWidget(window)
    window.addToolBar("Main")
    controller = RecordingControls(window, live, window.menuBar().addMenu("&Record"))
    _polled(window, live)
    live.start()  # starting the session recovers what an earlier crash left
    assert len(window.findChildren(QToolBar)) == 1, "the window's own toolbar gets the button"
    qtbot.waitUntil(lambda: "Recovered 1" in window.statusBar().currentMessage(), timeout=20000)
    info = json.loads((crashed / "session.json").read_text())
    assert info["finished"] is True and info["recovered"] is True
    assert (crashed / "frames.csv").read_text() == "frame,timestamp_ms\n0,0.0\n"
    controller.shutdown()
    live.close()


def test_clean_video_toggle_is_stored_in_the_settings(qtbot, tmp_path: Path) -> None:
    live = LiveSession(Settings(emotion=None, record_dir=str(tmp_path)))
    window = QMainWindow()
    qtbot.addWidget(window)
    controller = RecordingControls(window, live, window.menuBar().addMenu("&Record"))
    _polled(window, live)
    controller.actions.clean_video.trigger()
    assert live.settings.record_clean_video is True
    live.update(record_clean_video=False)
    qtbot.waitUntil(lambda: not controller.actions.clean_video.isChecked(), timeout=2000)
    controller.shutdown()
    live.close()
