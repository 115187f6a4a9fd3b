"""What a person sees in the real (offscreen) window: labels, stills, the chart, replay, rates, messages."""

# ruff: noqa: F811 (the window fixtures are test_gui's, imported by name)

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPointF
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from facial_emotion.annotate import FaceLabels, layout_labels
from facial_emotion.engine import SourceOpened
from facial_emotion.gui.about import about_text
from facial_emotion.gui.panel import DETECTOR_OFF, emotion_qcolor
from facial_emotion.gui.timeline import WINDOW_S, EmotionTimeline
from facial_emotion.gui.window import MainWindow
from facial_emotion.settings import DetectionOptions, Settings, load_settings, save_settings
from facial_emotion.types import EMOTIONS, Box, EmotionScores, Face, Frame, FrameResult

from .test_gui import _isolated_qsettings, make_window, settings_path  # noqa: F401 (fixtures)

WAIT_MS = 30_000
LABELLED = ("boxes", "emotion", "bars", "blinks", "mood", "fps")


def _settings(path: Path, **changes: object) -> Path:
    settings, _ = load_settings(path)
    save_settings(settings.replace(**changes), path)
    return path


def _rects(labels: FaceLabels) -> list[tuple[int, int, int, int]]:
    return [r for r in (labels.emotion, labels.track_id, labels.blinks, labels.mood, labels.bars) if r is not None]


def _meets(a: tuple[int, int, int, int], b: Box) -> bool:
    return a[0] < b.right and b.left < a[2] and a[1] < b.bottom and b.top < a[3]


def test_labels_and_bars_never_cover_another_face_in_the_group_photo(
    qtbot: QtBot, make_window: Callable[..., MainWindow], settings_path: Path, shared_data: Path
) -> None:
    photo = shared_data / "faces-pyfeat" / "multi_face.jpg"
    # full-size detection finds the group (the default detection width is another change's business)
    _settings(settings_path, overlays=LABELLED, detection=DetectionOptions(width_px=None), loop_video=False)
    window = make_window(str(photo))
    qtbot.waitUntil(lambda: window.shown_result is not None and len(window.shown_result.faces) >= 3, timeout=60_000)
    result = window.shown_result
    shown, raw = window.view.frame_array(), cv2.imread(str(photo))
    assert shown is not None and shown.shape == raw.shape
    faces = result.faces
    layout = layout_labels(faces, raw.shape[1], raw.shape[0])
    for i, labels in enumerate(layout):
        for j, other in enumerate(faces):
            if i != j:
                assert not any(_meets(r, other.box) for r in _rects(labels)), (i, j, labels, other.box)
    # what a person sees: inside every face box (less its own frame line) the photo is untouched
    for face in faces:
        b = face.box
        inside = (slice(b.top + 3, b.bottom - 3), slice(b.left + 3, b.right - 3))
        assert np.array_equal(shown[inside], raw[inside]), f"something is drawn over face #{face.track_id}"
    assert not np.array_equal(shown, raw), "the labels are drawn"
    drawn_bars = [labels.bars for labels in layout if labels.bars is not None]
    assert drawn_bars, "there is room for some bar blocks beside the faces"


def test_crowded_faces_get_no_bars_rather_than_covered_neighbours() -> None:
    p = tuple([1 / 7] * 7)
    faces = [
        Face(Box(10 + 62 * c, 10 + 70 * r, 60 + 62 * c, 60 + 70 * r), 10 * r + c, emotion=EmotionScores(p))
        for r in range(4)
        for c in range(8)
    ]
    layout = layout_labels(faces, 520, 300)
    for i, labels in enumerate(layout):
        for j, other in enumerate(faces):
            if i != j:
                assert not any(_meets(r, other.box) for r in _rects(labels)), (i, j)
    assert any(labels.bars is None for labels in layout), "no room: the bars stay in the Faces panel"


def test_a_still_photo_shows_no_blinks_and_no_frame_rate(
    qtbot: QtBot, make_window: Callable[..., MainWindow], settings_path: Path, shared_data: Path
) -> None:
    _settings(settings_path, overlays=LABELLED)
    window = make_window(str(shared_data / "faces-pyfeat" / "single_face.jpg"))
    qtbot.waitUntil(lambda: len(window.panel.cards) == 1, timeout=WAIT_MS)
    card = next(iter(window.panel.cards.values()))
    assert not card.blinks.isVisibleTo(window.panel), "no blink counter on a photo"
    assert "blinks" not in window.live.engine.settings.overlays and "fps" not in window.live.engine.settings.overlays
    qtbot.waitUntil(lambda: window.status.rates_label.text().startswith("still image"), timeout=WAIT_MS)
    assert "fps" not in window.status.rates_label.text() and window.view.rates_text() == ""


def _result(t_ms: float, probabilities: tuple[float, ...] | None) -> FrameResult:
    face = Face(Box(0, 0, 10, 10), 1, emotion=EmotionScores(probabilities) if probabilities else None)
    return FrameResult(Frame(np.zeros((4, 4, 3), np.uint8), int(t_ms // 40), t_ms), (face,))


def test_the_timeline_breaks_at_a_gap_and_its_legend_stays_off_the_data(qtbot: QtBot) -> None:
    timeline = EmotionTimeline()
    qtbot.addWidget(timeline)
    timeline.resize(900, 240)
    timeline.show()
    happy = tuple(0.9 if name == "happy" else 0.1 / 6 for name in EMOTIONS)
    steps = int(WINDOW_S * 25) + 50  # the plot is full
    gap = range(steps // 2 - 225, steps // 2)  # 9 s with the emotion model off
    for i in range(steps):
        timeline.add(_result(i * 40.0, None if i in gap else happy))
    timeline.select(1)
    seconds, probs = timeline.history.series(1)
    assert np.isnan(probs).any() and seconds[0] >= -WINDOW_S
    item = timeline.getPlotItem()
    qtbot.wait(50)
    picture = timeline.grab().toImage()
    ratio = picture.width() / timeline.width()
    want = emotion_qcolor("happy")

    def column_at(t_s: float) -> int:
        scene = item.vb.mapViewToScene(QPointF(t_s, 0.5))
        return int(timeline.mapFromScene(scene).x() * ratio)

    def happy_pixels(column: int) -> int:
        count = 0
        for y in range(picture.height()):
            c = picture.pixelColor(column, y)
            if abs(c.red() - want.red()) + abs(c.green() - want.green()) + abs(c.blue() - want.blue()) < 60:
                count += 1
        return count

    middle = (gap[0] * 40.0 + 4500.0 - (steps - 1) * 40.0) / 1000.0  # in the gap, seconds before now
    assert happy_pixels(column_at(middle)) == 0, "no line is drawn across the 9 s gap"
    assert happy_pixels(column_at(middle - 10)) > 0 and happy_pixels(column_at(middle + 10)) > 0, "curve outside it"
    assert not timeline.legend.sceneBoundingRect().intersects(item.vb.sceneBoundingRect()), "legend over the data"
    assert {label.text for _, label in timeline.legend.items} == set(EMOTIONS)


def test_an_ended_video_plays_again_with_space_and_with_loop(
    qtbot: QtBot, make_window: Callable[..., MainWindow], settings_path: Path, video: Path
) -> None:
    _settings(settings_path, loop_video=False)
    window = make_window(str(video))
    qtbot.waitUntil(lambda: "ended" in window.status.rates_label.text(), timeout=WAIT_MS)
    assert "Space" in window.statusBar().currentMessage()
    shown = window.view.frames_shown
    qtbot.wait(300)
    assert window.view.frames_shown == shown, "an ended video stands still"
    window.actions.pause.trigger()  # what Space does
    qtbot.waitUntil(lambda: window.view.frames_shown > shown + 5, timeout=WAIT_MS)
    assert not window.actions.pause.isChecked()
    qtbot.waitUntil(lambda: "ended" in window.status.rates_label.text(), timeout=WAIT_MS)
    shown = window.view.frames_shown
    window.actions.loop.trigger()  # ticking Loop after the end plays it again, and on
    assert window.settings.loop_video
    qtbot.waitUntil(lambda: window.view.frames_shown > shown + 80, timeout=WAIT_MS)  # 72 frames: it looped


def test_a_new_source_starts_with_an_empty_panel_and_timeline(
    qtbot: QtBot, make_window: Callable[..., MainWindow], video: Path, shared_data: Path
) -> None:
    window = make_window(str(video))
    qtbot.waitUntil(lambda: len(window.panel.cards) == 1 and window.timeline.points() > 5, timeout=WAIT_MS)
    old_pass = window.shown_result.frame.pass_index
    after_open: list[tuple[int, int]] = []

    def spy(event: object) -> None:  # subscribed after the window: sees what the window made of it
        if isinstance(event, SourceOpened):
            after_open.append((len(window.panel.cards), len(window.timeline.history.tracks)))

    window.live.subscribe(spy)
    window.open_source(str(shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4"))
    qtbot.waitUntil(lambda: bool(after_open), timeout=WAIT_MS)
    assert after_open[0] == (0, 0), "the last source's faces and history are gone at once"
    qtbot.waitUntil(
        lambda: window.shown_result.frame.pass_index > old_pass and bool(window.panel.cards), timeout=WAIT_MS
    )
    ids = {face.track_id for face in window.shown_result.faces}
    assert set(window.panel.cards) <= ids, "only the new source's faces have cards"


def test_the_faces_panel_and_the_picture_show_the_same_result(
    qtbot: QtBot, make_window: Callable[..., MainWindow], settings_path: Path, video: Path
) -> None:
    _settings(settings_path, overlays=("boxes", "emotion", "fps"))
    window = make_window(str(video))
    qtbot.waitUntil(lambda: len(window.panel.cards) == 1, timeout=WAIT_MS)
    for _ in range(25):
        qtbot.wait(40)
        result = window.shown_result
        assert result is not None and window.view.frame_array() is not None
        assert np.array_equal(window.view.frame_array(), result.annotated), "the view shows shown_result"
        for face in result.faces:
            card = window.panel.cards[face.track_id]
            assert card.bars.probabilities == face.emotion.probabilities
            assert f"{face.emotion.top} {face.emotion.top_probability:.0%}" in card.title.text()
    qtbot.waitUntil(lambda: "processing" in window.view.rates_text(), timeout=WAIT_MS)
    assert window.view.rates_text() == window.status.rates_label.text(), "overlay and status bar say the same"
    qtbot.wait(1500)
    rate = float(window.status.rates_label.text().split("processing")[1].split("fps")[0])
    assert 5 < rate < 40, "the measured rate of a 30 fps video, not the model's speed"
    window.actions.pause.trigger()
    qtbot.waitUntil(lambda: window.status.rates_label.text().startswith("paused"), timeout=2000)
    assert window.view.rates_text().startswith("paused")


def test_long_status_messages_fit_and_the_path_can_be_read_whole(
    qtbot: QtBot, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window()
    window.resize(900, 600)
    qtbot.wait(100)
    path = "/home/participant/facial-emotion/sessions/" + "very-long-folder-name/" * 6 + "2026-05-01_10-00-00"
    bar = window.statusBar()
    bar.showMessage(f"Session saved to {path}", 8000)
    shown = bar.shown_text()
    assert bar.fontMetrics().horizontalAdvance(shown) <= bar.message_width()
    assert shown.startswith("Session saved") and shown.endswith("10-00-00") and "…" in shown
    assert bar.currentMessage() == f"Session saved to {path}" and path in bar.toolTip()
    box = bar.show_full_message()
    assert path in box.text() and box.textInteractionFlags()
    box.close()


def test_with_the_detector_off_the_panel_says_so(
    qtbot: QtBot, make_window: Callable[..., MainWindow], settings_path: Path, video: Path
) -> None:
    _settings(settings_path, detector=None)
    window = make_window(str(video))
    qtbot.waitUntil(lambda: window.view.frames_shown > 5, timeout=WAIT_MS)
    assert window.panel.empty_text() == DETECTOR_OFF and "Face detector is off" in DETECTOR_OFF
    window.actions.models[("detector", "hog")].trigger()
    assert window.panel.empty_text() in ("No face in view.", "")


def test_listen_ticked_never_reads_speech_is_off(
    qtbot: QtBot, make_window: Callable[..., MainWindow], settings_path: Path
) -> None:
    window = make_window()
    speech = window.speech
    speech.listen_action.trigger()
    assert speech.listen_action.isChecked()
    assert "Speech is off" not in speech.panel.status.text()
    window.close()
    again = make_window()  # the saved choice: ticked, and the panel agrees
    speech = again.speech
    assert speech.listen_action.isChecked() and "Speech is off" not in speech.panel.status.text()


def test_about_and_the_readme_agree_on_the_landmark_licences() -> None:
    text = about_text()
    five = next(line for line in text.split("<li>") if line.startswith("<b>5-point"))
    sixty_eight = next(line for line in text.split("<li>") if line.startswith("<b>68-point"))
    assert "iBUG" not in five and "CC0" in five and "commercial" in five
    assert "iBUG 300-W" in sixty_eight and "commercial" in sixty_eight


def test_open_sessions_folder_without_a_file_manager_shows_the_path(
    qtbot: QtBot, make_window: Callable[..., MainWindow], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    window = make_window()
    recording = window.recording
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: False))
    recording.sessions_dir.mkdir(parents=True, exist_ok=True)
    recording.actions.open_folder.trigger()
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and str(recording.sessions_dir) in boxes[-1].text()
    assert boxes[-1].textInteractionFlags(), "the path can be selected and copied"
    boxes[-1].close()


@pytest.fixture
def video(shared_data: Path) -> Path:
    """The shared single-face video (72 frames, 30 fps)."""
    return shared_data / "faces-pyfeat" / "single_face.mp4"


def test_settings_used_here_exist() -> None:
    assert {"detection", "loop_video", "overlays", "detector"} <= set(Settings.__dataclass_fields__)
