"""The Record menu on a bare main window: click record, frames flow, stop, the folder is complete."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMainWindow, QToolBar

from facial_emotion.engine import Engine
from facial_emotion.gui.recording_controls import install_recording
from facial_emotion.settings import Settings
from facial_emotion.sources import SyntheticSource


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
    settings = Settings(emotion=None, record_dir=str(tmp_path))
    engine = Engine(settings)
    engine.open(SyntheticSource(frames, fps=30.0, live=True, name="camera (synthetic)"))
    window = QMainWindow()
    qtbot.addWidget(window)
    controller = install_recording(window, engine, lambda: settings)
    window.show()
    qtbot.waitUntil(lambda: not controller.busy, timeout=10000)  # nothing to recover

    menus = [a.text() for a in window.menuBar().actions()]
    assert "&Record" in menus
    toolbar = window.findChildren(QToolBar)[0]
    button = toolbar.widgetForAction(controller.actions.toggle)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert controller.recording and controller.actions.toggle.text() == "Stop recording"
    qtbot.waitUntil(lambda: controller.indicator.isVisible(), timeout=2000)
    assert controller.indicator.text().startswith("● REC 00:0")
    labels = window.statusBar().findChildren(QLabel)
    assert controller.indicator in labels

    processed = 0
    while engine.step() is not None:
        processed += 1
    qtbot.wait(300)  # a few timer ticks while recording
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert not controller.recording and not controller.indicator.isVisible()
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
    controller.shutdown(timeout_s=10)
    engine.stop()


def test_install_recovers_a_crashed_session_and_reports_it(qtbot, tmp_path: Path, no_thread_leak: None) -> None:
    crashed = tmp_path / "2026-11-24_08-15-02"
    crashed.mkdir()
    (crashed / "frames.csv").write_text("frame,timestamp_ms\n0,0.0\n1,33")  # cut mid-line
    (crashed / ".recording").write_text("999999999\n")  # a process that no longer exists
    (crashed / "session.json").write_text(json.dumps({"finished": False, "started_epoch_s": 0}))
    settings = Settings(record_dir=str(tmp_path))
    window = QMainWindow()
    qtbot.addWidget(window)
    window.addToolBar("Main")
    controller = install_recording(window, Engine(settings), lambda: settings)
    assert len(window.findChildren(QToolBar)) == 1, "the window's own toolbar gets the button"
    qtbot.waitUntil(lambda: "Recovered 1" in window.statusBar().currentMessage(), timeout=20000)
    info = json.loads((crashed / "session.json").read_text())
    assert info["finished"] is True and info["recovered"] is True
    assert (crashed / "frames.csv").read_text() == "frame,timestamp_ms\n0,0.0\n"
    controller.shutdown(timeout_s=10)


def test_clean_video_toggle_is_stored_in_the_settings(qtbot, tmp_path: Path) -> None:
    store = {"settings": Settings(record_dir=str(tmp_path))}
    window = QMainWindow()
    qtbot.addWidget(window)
    controller = install_recording(
        window, Engine(store["settings"]), lambda: store["settings"], settings_setter=lambda s: store.update(settings=s)
    )
    controller.actions.clean_video.trigger()
    assert store["settings"].record_clean_video is True
    store["settings"] = store["settings"].replace(record_clean_video=False)
    controller._sync_checks()
    assert not controller.actions.clean_video.isChecked()
    controller.shutdown(timeout_s=10)
