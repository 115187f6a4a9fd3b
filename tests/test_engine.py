"""The threaded engine: frames flow, sources switch, failures become events, threads stop."""

from __future__ import annotations

import itertools
import time
import typing
from pathlib import Path

import cv2
import numpy as np
import pytest

from facial_emotion.engine import Engine, ModelsChanged, SourceEnded, SourceFailed, SourceOpened
from facial_emotion.settings import Settings
from facial_emotion.sources import SyntheticSource, VideoFileSource


def _wait_for(engine: Engine, kind: type, timeout_s: float = 30.0) -> list[object]:
    events: list[object] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events += engine.poll_events()
        if any(isinstance(e, kind) for e in events):
            return events
        time.sleep(0.02)
    raise AssertionError(f"no {kind.__name__} within {timeout_s} s; got {events}")


def test_step_processes_a_file_synchronously(shared_data: Path, tiny_emotion_model: Path) -> None:
    engine = Engine(Settings(emotion_model_path=str(tiny_emotion_model)))
    engine.open(VideoFileSource(shared_data / "faces-pyfeat" / "single_face.mp4"))
    results = []
    while (result := engine.step()) is not None:
        results.append(result)
    assert len(results) == 72
    assert all(len(r.faces) == 1 and r.faces[0].emotion is not None for r in results)
    assert results[-1].annotated is not None and results[-1].annotated.shape == (360, 640, 3)
    events = engine.poll_events()
    assert isinstance(events[0], SourceOpened) and isinstance(events[-1], SourceEnded)


def test_threads_play_a_file_without_losing_frames(
    shared_data: Path, tiny_emotion_model: Path, no_thread_leak: None
) -> None:
    engine = Engine(Settings(emotion_model_path=str(tiny_emotion_model)), realtime=False)
    seen: list[int] = []
    engine.add_listener(lambda r: seen.append(r.frame.index))
    engine.start()
    try:
        engine.open(VideoFileSource(shared_data / "faces-pyfeat" / "single_face.mp4"))
        _wait_for(engine, SourceEnded)
        deadline = time.monotonic() + 10
        while len(seen) < 72 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        assert engine.stop(timeout_s=2.0)
    assert seen == list(range(72))
    assert engine.stats().dropped == 0


def test_live_source_drops_frames_instead_of_lagging(no_thread_leak: None) -> None:
    slow_pipeline_calls = []

    class SlowPipeline:
        load_errors: typing.ClassVar[dict[str, str]] = {}

        def process(self, frame):
            slow_pipeline_calls.append(frame.index)
            time.sleep(0.05)
            from facial_emotion.types import FrameResult

            return FrameResult(frame=frame)

        def reset(self) -> None:
            pass

        def configure(self, settings: Settings) -> None:
            pass

    images = [np.full((8, 8, 3), i % 255, np.uint8) for i in range(400)]
    engine = Engine(pipeline_factory=lambda s: SlowPipeline())  # type: ignore[arg-type,return-value]
    engine.start()
    try:
        # a camera at ~200 fps feeding a 20 fps consumer
        engine.open(SyntheticSource(lambda i: images[i] if i < 400 else None, live=True, fps=200))
        stream = _wait_for(engine, SourceOpened)
        deadline = time.monotonic() + 5
        while engine.stats().captured < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
            stream += engine.poll_events()
        stats = engine.stats()
    finally:
        assert engine.stop(timeout_s=2.0)
    assert stats.dropped > stats.processed
    # the consumer always takes the newest frame: indices jump
    assert max(b - a for a, b in itertools.pairwise(slow_pipeline_calls)) > 1


def test_unplugged_camera_is_an_event_and_a_new_source_works(
    shared_data: Path, tiny_emotion_model: Path, no_thread_leak: None
) -> None:
    frame = cv2.imread(str(shared_data / "faces-pyfeat" / "single_face.jpg"))
    engine = Engine(Settings(emotion_model_path=str(tiny_emotion_model)))
    engine.start()
    try:
        engine.open(SyntheticSource([frame] * 100, live=True, fail_after=20, fps=60, name="camera 0"))
        events = _wait_for(engine, SourceFailed)
        failed = next(e for e in events if isinstance(e, SourceFailed))
        assert failed.name == "camera 0" and "stopped delivering" in failed.message
        assert engine.latest() is not None and len(engine.latest().faces) == 1
        engine.open(SyntheticSource([frame] * 30, fps=60, name="again"))
        _wait_for(engine, SourceEnded)
    finally:
        assert engine.stop(timeout_s=2.0)


def test_switching_the_model_off_and_on_between_frames(shared_data: Path, tiny_emotion_model: Path) -> None:
    settings = Settings(emotion_model_path=str(tiny_emotion_model))
    engine = Engine(settings)
    engine.open(VideoFileSource(shared_data / "faces-pyfeat" / "single_face.mp4"))
    assert engine.step().faces[0].emotion is not None
    engine.configure(settings.replace(emotion=None))
    assert engine.step().faces[0].emotion is None
    engine.configure(settings)
    result = engine.step()
    assert result.faces[0].emotion is not None and result.frame.index == 2
    changes = [e for e in engine.poll_events() if isinstance(e, ModelsChanged)]
    assert [c.settings.emotion for c in changes] == ["fer2013", None, "fer2013"]


def test_a_missing_model_leaves_the_slot_off_with_a_reason(shared_data: Path, tmp_path: Path) -> None:
    engine = Engine(Settings(emotion_model_path=str(tmp_path / "gone.keras")))
    engine.open(VideoFileSource(shared_data / "faces-pyfeat" / "single_face.mp4"))
    result = engine.step()
    assert len(result.faces) == 1 and result.faces[0].emotion is None
    change = next(e for e in engine.poll_events() if isinstance(e, ModelsChanged))
    assert "not found" in change.errors["emotion"]


@pytest.mark.parametrize("paused", [True, False])
def test_pause_stops_reading(paused: bool, no_thread_leak: None) -> None:
    """Once the models are loaded (the engine reads nothing before), a paused engine reads nothing."""
    engine = Engine(Settings(landmarks=None, emotion=None), realtime=True)
    engine.pause(paused)
    engine.open(SyntheticSource([np.zeros((8, 8, 3), np.uint8)] * 1000, fps=100))
    engine.start()
    try:
        _wait_for(engine, ModelsChanged)  # the pipeline is built: reading could begin now
        time.sleep(0.5)
        if paused:
            assert engine.stats().captured == 0
            engine.pause(False)
        deadline = time.monotonic() + 10
        while engine.stats().captured < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.stats().captured >= 20, "playing reads the source"
    finally:
        assert engine.stop()


def test_still_images_are_each_analysed_afresh(shared_data: Path, tmp_path: Path) -> None:
    import shutil

    from facial_emotion.sources import ImageFolderSource

    folder = tmp_path / "stills"
    folder.mkdir()
    shutil.copy(shared_data / "faces-pyfeat" / "single_face.jpg", folder / "a.jpg")
    shutil.copy(shared_data / "faces-pyfeat" / "free-mountain-vector-01.jpg", folder / "b.jpg")
    shutil.copy(shared_data / "faces-pyfeat" / "single_face.jpg", folder / "c.jpg")
    engine = Engine(Settings(emotion=None))
    engine.open(ImageFolderSource(folder))
    faces = [engine.step().faces for _ in range(3)]
    assert [len(f) for f in faces] == [1, 0, 1], "no face is carried into the landscape"
    assert all(face.detected for f in faces for face in f)
