"""The live session without Qt: speech, mood and recording driven as the window drives them."""

from __future__ import annotations

import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from facial_emotion.live import LiveSession
from facial_emotion.live.events import (
    MoodChanged,
    RecordingFinished,
    SettingsChanged,
    SourceOpened,
    SpeechHeard,
    SpeechStatus,
)
from facial_emotion.settings import Settings
from facial_emotion.sources import SyntheticSource, VideoFileSource

from .conftest import TALKING_DELAY_MS

VIDEO_FRAMES = 472
VIDEO_FPS = 23.976


def _poll_until(live: LiveSession, events: list, done, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        events.extend(live.poll())
        time.sleep(0.05)
    assert done(), [e for e in events if isinstance(e, SpeechStatus)]


def _statuses(events: list) -> list[str]:
    return [e.text for e in events if isinstance(e, SpeechStatus)]


def test_a_talking_video_gives_subtitles_a_transcript_and_a_mood(
    talking_video: Path, tiny_emotion_model: Path, no_thread_leak: None
) -> None:
    live = LiveSession(Settings(emotion_model_path=str(tiny_emotion_model)), realtime=False)
    seen: list = []
    live.subscribe(seen.append)
    live.set_listening(True)
    live.poll()
    assert live.settings.speech_on and any(isinstance(e, SettingsChanged) for e in seen)
    assert "waiting for a source" in _statuses(seen)[-1]
    live.open(VideoFileSource(talking_video))
    live.step()
    assert any(isinstance(e, SourceOpened) for e in seen)
    _poll_until(live, [], lambda: "utterance(s)" in _statuses(seen)[-1])
    moods = []
    for _ in range(300):
        result = live.step()
        moods.append((result.frame.timestamp_ms, result.faces[0].mood))
    heard = [e.utterance for e in seen if isinstance(e, SpeechHeard)]
    assert any("happy" in u.text and u.sentiment and u.sentiment.label == "positive" for u in heard), heard
    scene = [e.mood for e in seen if isinstance(e, MoodChanged)]
    assert scene[-1] is not None and scene[-1].label == "positive"
    before = [m for t, m in moods if t < TALKING_DELAY_MS]
    after = [m for t, m in moods if TALKING_DELAY_MS + 500 < t]
    assert None not in before and sum(after) / len(after) > sum(before) / len(before) + 0.1
    live.close()


def test_a_missing_microphone_is_reported_not_raised(no_thread_leak: None) -> None:
    live = LiveSession(Settings(emotion=None, speech_on=True, mic=987))
    seen: list = []
    live.subscribe(seen.append)
    live.open(SyntheticSource([np.zeros((48, 64, 3), np.uint8)] * 5, live=True, fps=30.0, name="camera 0"))
    live.step()
    _poll_until(live, seen, lambda: any("No speech" in t for t in _statuses(seen)), timeout_s=10)
    assert any(t.startswith("No speech: cannot open microphone") for t in _statuses(seen))
    live.close()


def test_a_looped_video_s_speech_and_sound_are_recorded_on_session_time(
    talking_video: Path, tmp_path: Path, no_thread_leak: None
) -> None:
    settings = Settings(emotion=None, loop_video=True, speech_on=True, overlays=())
    live = LiveSession(settings, realtime=False, record_dir=tmp_path)
    seen: list = []
    live.subscribe(seen.append)
    live.open(VideoFileSource(talking_video))
    live.step()
    _poll_until(live, [], lambda: "utterance(s)" in _statuses(seen)[-1])
    folder = live.start_recording(lossless=True, fps=VIDEO_FPS)
    passes = set()
    for _ in range(VIDEO_FRAMES * 2 + 30):  # two passes and a bit
        passes.add(live.step().frame.pass_index)
    live.stop_recording()
    live.close(recording_timeout_s=120)
    assert passes == {0, 1, 2}
    recorded_s = (VIDEO_FRAMES * 2 + 30) / VIDEO_FPS
    info = json.loads((folder / "session.json").read_text())
    assert info["duration_s"] == pytest.approx(recorded_s, abs=0.5), "the data's session time, not the wall clock's"
    said = [json.loads(line) for line in (folder / "transcript.jsonl").read_text().splitlines()]
    said = [u for u in said if u["text"]]
    assert len(said) >= 2, "the sentence of each pass is recorded"
    first, second = said[0], said[1]
    video_ms = VIDEO_FRAMES * 1000 / VIDEO_FPS
    assert TALKING_DELAY_MS - 1000 < first["start_ms"] < TALKING_DELAY_MS + 1000
    assert second["start_ms"] == pytest.approx(first["start_ms"] + video_ms, abs=200), "session time, not file time"
    with wave.open(str(folder / "audio.wav")) as audio:
        recorded_ms = audio.getnframes() * 1000 / audio.getframerate()
    assert recorded_ms > 1.5 * video_ms, "the sound of the passes recorded"
    assert any(isinstance(e, RecordingFinished) for e in seen) or (folder / "session.json").is_file()
