"""The desktop app, run for real on the offscreen platform: frames are painted, menus drive the engine."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox
from pytestqt.qtbot import QtBot

from facial_emotion.annotate import HeatmapAnnotator
from facial_emotion.gui.about import about_text
from facial_emotion.gui.actions import OVERLAY_ROWS
from facial_emotion.gui.timeline import EmotionHistory
from facial_emotion.gui.window import MainWindow
from facial_emotion.live import core as live_module
from facial_emotion.live.core import STILL_HIDDEN
from facial_emotion.settings import Settings, load_settings, save_settings
from facial_emotion.sources import SyntheticSource
from facial_emotion.types import Box, EmotionScores, Face, Frame, FrameResult

WAIT_MS = 30_000


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path: Path) -> None:
    """Window geometry goes to the test's folder, not the user's."""
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))


@pytest.fixture
def video(shared_data: Path) -> Path:
    """The shared single-face video (72 frames, 30 fps)."""
    return shared_data / "faces-pyfeat" / "single_face.mp4"


@pytest.fixture
def settings_path(tmp_path: Path, tiny_emotion_model: Path) -> Path:
    """A settings file that uses the tiny real emotion model and loops videos."""
    path = tmp_path / "settings.json"
    save_settings(Settings(emotion_model_path=str(tiny_emotion_model), loop_video=True), path)
    return path


@pytest.fixture
def make_window(qtbot: QtBot, no_thread_leak: None, settings_path: Path) -> Iterator[Callable[..., MainWindow]]:
    """Open real main windows; every one is closed (and its threads checked) at the end."""
    windows: list[MainWindow] = []

    def make(source: str | None = None, path: Path = settings_path, record_dir: Path | None = None) -> MainWindow:
        window = MainWindow(path, source=source, record_dir=record_dir)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def _shown(window: MainWindow) -> np.ndarray:
    frame = window.view.frame_array()
    assert frame is not None
    return frame.copy()


def test_window_paints_the_video_with_faces_panel_and_timeline(
    qtbot: QtBot, make_window: Callable[..., MainWindow], video: Path
) -> None:
    window = make_window(str(video))
    qtbot.waitUntil(lambda: window.view.frames_painted >= 15 and len(window.panel.cards) == 1, timeout=WAIT_MS)
    first = _shown(window)
    assert first.shape == (360, 640, 3)
    shown = window.view.frames_shown
    qtbot.waitUntil(lambda: window.view.frames_shown >= shown + 10, timeout=WAIT_MS)
    assert not np.array_equal(first, _shown(window)), "the picture should move with the video"
    picture = window.view.grab().toImage()
    assert picture.width() > 300 and picture.pixelColor(picture.width() // 2, picture.height() // 2).value() > 0
    card = next(iter(window.panel.cards.values()))
    assert "%" in card.title.text() and card.bars.probabilities is not None
    assert abs(sum(card.bars.probabilities) - 1.0) < 1e-3
    assert card.blinks.text().startswith("Blinks: ")
    qtbot.waitUntil(lambda: window.timeline.points() > 5, timeout=WAIT_MS)
    assert "processing" in window.status.rates_label.text() and "dropped" in window.status.rates_label.text()
    assert "emotion fer2013" in window.status.models_label.text()
    assert window.view.message() == ""


def test_each_overlay_toggle_changes_what_is_drawn(
    qtbot: QtBot, make_window: Callable[..., MainWindow], shared_data: Path, settings_path: Path
) -> None:
    settings, _ = load_settings(settings_path)
    save_settings(settings.replace(overlays=()), settings_path)
    image_path = shared_data / "faces-pyfeat" / "single_face.jpg"
    window = make_window(str(image_path))
    raw = cv2.imread(str(image_path))
    qtbot.waitUntil(lambda: window.view.frame_array() is not None, timeout=WAIT_MS)
    assert np.array_equal(_shown(window), raw), "with every overlay off the picture is the photo itself"
    for row in OVERLAY_ROWS:
        action = window.actions.overlays[row.key]
        assert not action.isChecked(), row.key
        before = window.shown_result
        action.trigger()
        assert action.isChecked() and row.key in window.settings.overlays, row.key
        if row.key in STILL_HIDDEN:  # blinks and frame rates mean nothing on a photo: not drawn
            qtbot.waitUntil(lambda b=before: window.shown_result is not b, timeout=WAIT_MS)
            assert np.array_equal(_shown(window), raw) and window.view.rates_text() == "", row.key
        else:  # every other overlay draws something; the mood bar too (the speech controls fuse the face alone)
            qtbot.waitUntil(lambda: not np.array_equal(_shown(window), raw), timeout=WAIT_MS)
        action.trigger()
        assert not action.isChecked() and row.key not in window.settings.overlays, row.key
        qtbot.waitUntil(lambda: np.array_equal(_shown(window), raw), timeout=WAIT_MS)


def test_emotion_model_switches_off_and_on_while_frames_flow(
    qtbot: QtBot, make_window: Callable[..., MainWindow], video: Path
) -> None:
    window = make_window(str(video))

    def faces_have_emotion(expected: bool) -> bool:
        result = window.live.latest()
        return bool(result and result.faces) and all((f.emotion is not None) == expected for f in result.faces)

    qtbot.waitUntil(lambda: faces_have_emotion(True), timeout=WAIT_MS)
    off, on = window.actions.models[("emotion", None)], window.actions.models[("emotion", "fer2013")]
    assert on.isChecked() and not off.isChecked() and on.isEnabled()
    shown = window.view.frames_shown

    off.trigger()
    assert off.isChecked() and not on.isChecked() and window.settings.emotion is None
    qtbot.waitUntil(lambda: faces_have_emotion(False), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "emotion off" in window.status.models_label.text(), timeout=WAIT_MS)
    # the picture goes on meanwhile (painted on the window's next tick after the engine's result)
    qtbot.waitUntil(lambda: window.view.frames_shown > shown, timeout=WAIT_MS)
    shown = window.view.frames_shown

    on.trigger()
    assert on.isChecked() and window.settings.emotion == "fer2013"
    qtbot.waitUntil(lambda: faces_have_emotion(True), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.view.frames_shown > shown + 5, timeout=WAIT_MS)
    assert window.live.stats().dropped < window.live.stats().processed / 2


def test_pause_holds_the_picture_and_resume_plays_on(
    qtbot: QtBot, make_window: Callable[..., MainWindow], video: Path
) -> None:
    window = make_window(str(video))
    qtbot.waitUntil(lambda: window.view.frames_shown > 5, timeout=WAIT_MS)
    window.actions.pause.trigger()
    assert window.actions.pause.isChecked() and window.live.paused
    qtbot.wait(300)  # a frame already in flight may still arrive
    held = window.view.frames_shown
    qtbot.wait(500)
    assert window.view.frames_shown == held
    window.actions.pause.trigger()
    assert not window.actions.pause.isChecked()
    qtbot.waitUntil(lambda: window.view.frames_shown > held + 5, timeout=WAIT_MS)


def test_an_image_folder_plays_as_a_slideshow(
    qtbot: QtBot, make_window: Callable[..., MainWindow], shared_data: Path, settings_path: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    images = []
    for name in ("single_face.jpg", "multi_face.jpg"):
        (folder / name).write_bytes((shared_data / "faces-pyfeat" / name).read_bytes())
        images.append(cv2.imread(str(folder / name)))
    settings, _ = load_settings(settings_path)
    save_settings(settings.replace(overlays=(), loop_video=False), settings_path)
    window = make_window(str(folder))
    qtbot.waitUntil(lambda: window.view.frame_array() is not None, timeout=WAIT_MS)
    assert any(np.array_equal(_shown(window), image) for image in images)
    qtbot.waitUntil(lambda: np.array_equal(_shown(window), images[1]), timeout=WAIT_MS)
    assert window.live.stats().dropped == 0


def test_without_a_camera_the_view_says_so_and_offers_a_file(
    qtbot: QtBot, make_window: Callable[..., MainWindow], video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_module, "list_cameras", lambda: [])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(video), ""))
    window = make_window()
    qtbot.waitUntil(lambda: "No camera found" in window.view.message(), timeout=WAIT_MS)
    buttons = {b.text(): b for b in window.view.message_buttons()}
    assert "Open video file..." in buttons and "Open image..." in buttons
    assert [a.text() for a in window._camera_actions] == ["No camera found"]
    qtbot.mouseClick(buttons["Open video file..."], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.view.frames_painted > 5 and window.view.message() == "", timeout=WAIT_MS)
    assert window.settings.last_source == str(video)


def test_a_camera_that_disappears_is_reported_and_can_be_chosen_again(
    qtbot: QtBot, make_window: Callable[..., MainWindow], video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = cv2.VideoCapture(str(video))
    frames = [cap.read()[1] for _ in range(20)]
    cap.release()
    opened: list[SyntheticSource] = []

    def fake_open(spec: str) -> SyntheticSource:
        assert spec == "0"
        opened.append(SyntheticSource(frames, fps=30, live=True, fail_after=20, name="camera 0"))
        return opened[-1]

    monkeypatch.setattr(live_module, "list_cameras", lambda: [0])
    monkeypatch.setattr(live_module, "open_source", fake_open)
    window = make_window()
    qtbot.waitUntil(lambda: "stopped delivering" in window.view.message(), timeout=WAIT_MS)
    assert window.view.frames_shown > 0 and len(opened) == 1
    camera = next(a for a in window._camera_actions if a.text() == "Camera 0")
    assert camera.isEnabled()
    shown = window.view.frames_shown
    camera.trigger()
    qtbot.waitUntil(lambda: window.view.frames_shown > shown and len(opened) == 2, timeout=WAIT_MS)


def test_settings_and_geometry_survive_a_restart(
    qtbot: QtBot, make_window: Callable[..., MainWindow], video: Path, settings_path: Path
) -> None:
    first = make_window(str(video))
    qtbot.waitUntil(lambda: first.view.frames_painted > 0, timeout=WAIT_MS)
    first.actions.overlays["landmarks"].trigger()
    first.actions.smoothing.trigger()
    first.actions.small_faces.trigger()
    first.resize(720, 520)
    first.close()
    assert load_settings(settings_path)[0].classifier.smoothing

    second = make_window()
    assert not second.actions.overlays["landmarks"].isChecked()
    assert second.actions.overlays["boxes"].isChecked()
    assert second.actions.smoothing.isChecked() and second.actions.small_faces.isChecked()
    assert second.settings.detection.width_px is None
    assert "landmarks" not in second.settings.overlays
    assert (second.width(), second.height()) == (720, 520)
    assert second.settings.last_source == str(video)


def test_closing_stops_every_thread_within_two_seconds(
    qtbot: QtBot, make_window: Callable[..., MainWindow], video: Path
) -> None:
    window = make_window(str(video))
    qtbot.waitUntil(lambda: window.view.frames_painted > 5, timeout=WAIT_MS)
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 2.0
    assert not window.live.engine.running
    assert not [t.name for t in threading.enumerate() if t.name.startswith("fe-") and t.is_alive()]


def test_speech_and_record_menus_sit_in_order_and_go_quiet_on_close(
    make_window: Callable[..., MainWindow], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_module, "list_cameras", lambda: [])
    window = make_window()
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles.index("S&peech") == titles.index("&View") + 1 and titles[-1] == "&Help"
    assert titles.index("&Record") == titles.index("S&peech") + 1
    live, status = window.live, window.speech.panel.status
    before = status.text()
    window.close()
    heard: list[object] = []
    live.subscribe(heard.append)
    live.apply_settings(live.settings.replace(speech_on=True))
    live.poll()
    assert heard, "the session still says what it does"
    assert status.text() == before, "but a closed window no longer listens"


def test_unavailable_models_are_disabled_and_reported(
    qtbot: QtBot, make_window: Callable[..., MainWindow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_module, "list_cameras", lambda: [])
    path = tmp_path / "plain.json"
    save_settings(Settings(emotion_model_path=str(tmp_path / "missing.keras")), path)
    window = make_window(path=path)
    entry = window.actions.models[("emotion", "fer2013")]
    assert not entry.isEnabled() and "Not installed" in entry.toolTip()
    qtbot.waitUntil(lambda: "emotion failed" in window.status.models_label.text(), timeout=WAIT_MS)
    assert "missing.keras" in window.status.models_label.toolTip()
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    reset = make_window(path=corrupt)
    boxes = [b for b in reset.findChildren(QMessageBox) if "unreadable" in b.text()]
    assert boxes and boxes[0].isVisible()
    assert list(tmp_path.glob("corrupt.json.corrupt-*")), "the unreadable file is kept aside"
    boxes[0].accept()
    text = about_text()
    assert "TensorFlow" in text and "dlib" in text and "iBUG 300-W" in text and "commercial" in text


def _face_result(scene: np.ndarray) -> FrameResult:
    face = Face(
        box=Box(20, 10, 60, 50),
        track_id=1,
        emotion=EmotionScores((0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1)),
        aligned=np.full((48, 48), 128, np.uint8),
    )
    return FrameResult(frame=Frame(scene, 0, 0.0), faces=(face,))


def test_heatmap_annotator_draws_inside_each_box_only_where_a_face_has_a_map() -> None:
    scene = np.full((80, 100, 3), 100, np.uint8)
    mapped = _face_result(scene)
    face = mapped.faces[0]
    mapped = dataclasses.replace(mapped, faces=(dataclasses.replace(face, heatmap=np.ones((48, 48), np.float32)),))
    out = HeatmapAnnotator(alpha=0.5).annotate(scene.copy(), mapped)
    assert (out[10:50, 20:60] != 100).any(axis=2).all(), "the whole box is tinted"
    outside = np.ones(scene.shape[:2], bool)
    outside[10:50, 20:60] = False
    assert (out[outside] == 100).all()
    assert np.array_equal(HeatmapAnnotator().annotate(scene.copy(), _face_result(scene)), scene)


def test_the_timeline_carries_on_through_a_loop_and_forgets_after_a_minute() -> None:
    history = EmotionHistory(window_s=60.0)
    image = np.zeros((4, 4, 3), np.uint8)

    def result(t_ms: float, happy: float) -> FrameResult:
        scores = EmotionScores((0.0, 0.0, 0.0, happy, 0.0, 0.0, 1.0 - happy))
        return FrameResult(frame=Frame(image, 0, t_ms), faces=(Face(box=Box(0, 0, 2, 2), track_id=3, emotion=scores),))

    for t in range(0, 20_000, 1000):
        history.add(result(t, 0.2))
    history.add(result(0.0, 0.9))  # the video looped
    seconds, probs = history.series(3)
    assert len(seconds) == 21 and np.all(np.diff(seconds) > 0) and seconds[-1] == 0.0
    assert probs[-1, 3] == pytest.approx(0.9) and probs[0, 3] == pytest.approx(0.2)
    for t in range(1000, 70_000, 1000):
        history.add(result(t, 0.5))
    seconds, _ = history.series(3)
    assert seconds[0] >= -60.0 and history.series(99)[0].size == 0
    history.clear()
    assert history.series(3)[0].size == 0


def test_record_option_records_from_the_start(
    qtbot: QtBot, make_window: Callable[..., MainWindow], video: Path, tmp_path: Path
) -> None:
    sessions = tmp_path / "sessions"
    window = make_window(str(video), record_dir=sessions)
    # a few frames more than asked: under load the recorder may be a frame behind the painting when closed
    qtbot.waitUntil(lambda: window.view.frames_painted >= 26, timeout=WAIT_MS)
    window.close()
    (folder,) = [p for p in sessions.iterdir() if p.is_dir()]
    session = json.loads((folder / "session.json").read_text())
    assert session["finished"] and not session["recovered"] and session["frames_written"] >= 20
    cap = cv2.VideoCapture(str(folder / "video.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames >= 20
    assert (folder / "frames.csv").read_text().count("\n") >= 20
