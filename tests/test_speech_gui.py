"""The Speech menu and panel on a real (offscreen) window, with a video that talks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMainWindow

from facial_emotion.engine import Engine, SourceOpened
from facial_emotion.gui.speech_controls import install_speech
from facial_emotion.settings import Settings
from facial_emotion.sources import VideoFileSource
from facial_emotion.types import Utterance

from .conftest import TALKING_DELAY_MS


class Holder:
    """The window's settings, as the real window keeps them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def get(self) -> Settings:
        return self.settings

    def set(self, settings: Settings) -> None:
        self.settings = settings


def test_file_speech_gives_subtitles_transcript_and_mood(
    qtbot, talking_video: Path, tiny_emotion_model: Path, no_thread_leak: None
) -> None:
    holder = Holder(Settings(emotion_model_path=str(tiny_emotion_model), last_source=str(talking_video)))
    window = QMainWindow()
    qtbot.addWidget(window)
    window.mood_source = None
    engine = Engine(holder.settings, realtime=False)
    controller = install_speech(window, engine, holder.get, holder.set)
    assert window.mood_source is controller.fuser
    engine._factory = lambda s: __import__("facial_emotion.pipeline", fromlist=["Pipeline"]).Pipeline(
        s, mood=window.mood_source
    )
    assert not controller.listen_action.isChecked()
    controller.listen_action.trigger()
    assert holder.settings.speech_on is True, "the menu writes the setting"
    assert "waiting for a source" in controller.panel.status.text()
    window.source_info = SourceOpened("talking.mp4", False, 24.0, 472)
    qtbot.waitUntil(lambda: "utterance(s)" in controller.panel.status.text(), timeout=60_000)
    engine.open(VideoFileSource(talking_video))
    moods = []
    for _ in range(300):
        result = engine.step()
        controller._on_tick()
        moods.append((result.frame.timestamp_ms, result.faces[0].mood))
    history = [controller.panel.history.item(i).text() for i in range(controller.panel.history.count())]
    assert any("happy" in line and "positive" in line for line in history), history
    assert controller.panel.mood.text().startswith("Mood: <b>positive")
    before = [m for t, m in moods if t < TALKING_DELAY_MS]
    after = [m for t, m in moods if TALKING_DELAY_MS + 500 < t]
    assert None not in before and sum(after) / len(after) > sum(before) / len(before) + 0.1
    controller.shutdown()
    engine.stop()


def test_missing_microphone_is_reported_not_raised(qtbot, no_thread_leak: None) -> None:
    holder = Holder(Settings(emotion=None, speech_on=True, mic=987))
    window = QMainWindow()
    qtbot.addWidget(window)
    engine = Engine(holder.settings)
    controller = install_speech(window, engine, holder.get, holder.set)
    assert controller.listen_action.isChecked(), "the check mark is read from the settings"
    window.source_info = SourceOpened("camera 0", True, 30.0, None)
    deadline = time.monotonic() + 10
    while "No speech" not in controller.panel.status.text() and time.monotonic() < deadline:
        controller._on_tick()
        qtbot.wait(50)
    assert "No speech: cannot open microphone" in controller.panel.status.text()
    controller.shutdown()


class _Collector:
    """Collects what the speech controller hands the recorder (the real one writes it to disk)."""

    def __init__(self) -> None:
        self.audio: list[tuple[int, float]] = []
        self.utterances: list[Utterance] = []

    def add_audio(self, chunk: bytes, t_ms: float) -> None:
        self.audio.append((len(chunk), t_ms))

    def add_utterance(self, utterance: Utterance) -> None:
        self.utterances.append(utterance)


def test_a_looped_video_s_speech_and_sound_go_to_the_recording_on_session_time(
    qtbot, talking_video: Path, no_thread_leak: None
) -> None:
    holder = Holder(Settings(emotion=None, loop_video=True, speech_on=True, last_source=str(talking_video)))
    window = QMainWindow()
    qtbot.addWidget(window)
    collector = _Collector()
    window.extensions = [collector]
    engine = Engine(holder.settings, realtime=False)
    controller = install_speech(window, engine, holder.get, holder.set)
    window.source_info = SourceOpened("talking.mp4", False, 24.0, 472)
    qtbot.waitUntil(lambda: "utterance(s)" in controller.panel.status.text(), timeout=60_000)
    engine.open(VideoFileSource(talking_video))
    passes = set()
    for _ in range(472 * 2 + 30):  # two passes and a bit
        result = engine.step()
        passes.add(result.frame.pass_index)
        controller._on_tick()
    controller.shutdown()
    assert passes == {0, 1, 2}
    said = [u for u in collector.utterances if u.text]
    assert len(said) >= 2, "the sentence of each pass is recorded"
    first, second = said[0], said[1]
    assert TALKING_DELAY_MS - 1000 < first.start_ms < TALKING_DELAY_MS + 1000
    video_ms = 472 * 1000 / 23.976
    assert second.start_ms == pytest.approx(first.start_ms + video_ms, abs=200), "session time, not file time"
    times = [t for _, t in collector.audio]
    assert times == sorted(times), "the sound is handed on in session order"
    recorded_ms = sum(n for n, _ in collector.audio) / 32.0  # 16 kHz mono int16
    assert recorded_ms > 1.8 * video_ms, "the sound of both passes"
