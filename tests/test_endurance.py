"""Long sessions: per-track tables forget faces that left, memory stays flat, threads stay constant."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
import types
import typing
from pathlib import Path

import numpy as np
import pytest

from facial_emotion import pipeline as pipeline_module
from facial_emotion.engine import MAX_EVENTS, Engine, SourceEnded, SourceOpened
from facial_emotion.fusion import FACE_FORGET_MS, MoodFuser
from facial_emotion.pipeline import Pipeline
from facial_emotion.settings import ClassifierOptions, DetectionOptions, Settings
from facial_emotion.sources import SyntheticSource, VideoFileSource
from facial_emotion.types import Box, Frame, FrameResult, Utterance

FPS = 30.0
FACE_EVERY = 45
"""Frames per face in the synthetic stream: a new face (new track id) every 1.5 s."""


class _WanderingFaces:
    """A detector that sees one or two faces which jump elsewhere every FACE_EVERY frames."""

    def __init__(self) -> None:
        self.frame = 0

    def detect(self, gray: np.ndarray) -> tuple[Box, ...]:
        spot = self.frame // FACE_EVERY
        x = 10 + (spot * 37) % 100
        boxes = [Box(x, 10, x + 40, 50)]
        if spot % 3 == 0:  # now and then a second face joins
            boxes.append(Box(x, 60, x + 40, 100))
        return tuple(boxes) if spot % 5 != 4 else ()  # and now and then nobody is in view


class _EyesThatBlink:
    """68 points in the box whose eyes close for two frames every second."""

    def __init__(self, faces: _WanderingFaces) -> None:
        self.faces = faces
        rng = np.random.default_rng(0)
        self.unit = rng.uniform(0.1, 0.9, (68, 2)).astype(np.float32)
        eye = np.array([(0, 0), (0.3, -0.2), (0.7, -0.2), (1, 0), (0.7, 0.2), (0.3, 0.2)], np.float32)
        self.unit[36:42] = 0.3 + eye * 0.15
        self.unit[42:48] = [0.55, 0.3] + eye * 0.15

    def predict(self, gray: np.ndarray, box: Box) -> np.ndarray:
        points = self.unit.copy()
        if self.faces.frame % 30 in (0, 1):
            for eye in (slice(36, 42), slice(42, 48)):
                centre = points[eye].mean(axis=0)
                points[eye, 1] = centre[1] + (points[eye, 1] - centre[1]) * 0.1
        points[:, 0] = points[:, 0] * box.width + box.left
        points[:, 1] = points[:, 1] * box.height + box.top
        points[0], points[16] = (box.left, box.top), (box.right - 1, box.bottom - 1)  # span the box
        return points


class _Probabilities:
    def __init__(self) -> None:
        self.rng = np.random.default_rng(1)

    def classify(self, faces: np.ndarray) -> np.ndarray:
        p = self.rng.random((len(faces), 7)).astype(np.float32)
        return p / p.sum(axis=1, keepdims=True)


def _synthetic_pipeline(monkeypatch: pytest.MonkeyPatch) -> tuple[Pipeline, _WanderingFaces, MoodFuser]:
    faces = _WanderingFaces()
    fuser = MoodFuser()
    stages: dict[typing.Any, typing.Any] = {
        "detector": faces,
        "landmarks": _EyesThatBlink(faces),
        "emotion": _Probabilities(),
    }
    # The registry hands the pipeline these stand-ins instead of dlib and the classifier.
    monkeypatch.setattr(
        pipeline_module, "get_spec", lambda slot, key: types.SimpleNamespace(factory=lambda _path: stages[slot])
    )
    settings = Settings(classifier=ClassifierOptions(smoothing=True), detection=DetectionOptions(every=3))
    return Pipeline(settings, annotate=False, mood=fuser), faces, fuser


def _sizes(pipeline: Pipeline, fuser: MoodFuser) -> dict[str, int]:
    return {**pipeline.state_sizes(), "mood_tracks": len(fuser.track_ids())}


def test_per_track_tables_stay_bounded_over_many_faces(monkeypatch: pytest.MonkeyPatch) -> None:
    """4 simulated minutes, a new track every 1.5 s (150+ ids, some blinking): every table holds only
    the recent faces, and after a minute's warm-up Python memory does not grow."""
    pipeline, faces, fuser = _synthetic_pipeline(monkeypatch)
    image = np.full((120, 160, 3), 128, np.uint8)
    fuser.add_utterance(Utterance("fine", True, 0.0, 500.0))
    largest: dict[str, int] = {}
    ids: set[int] = set()
    blinks = 0
    frames, warm_up = int(4 * 60 * FPS), int(1 * 60 * FPS)
    start_bytes = 0
    for i in range(frames):
        faces.frame = i
        result = pipeline.process(Frame(image, i, i * 1000.0 / FPS))
        ids.update(face.track_id for face in result.faces)
        blinks = max([blinks, *(face.blinks for face in result.faces)])
        if i % 50 == 0:
            for key, value in _sizes(pipeline, fuser).items():
                largest[key] = max(largest.get(key, 0), value)
        if i == warm_up:
            tracemalloc.start()
        elif i == warm_up + FACE_EVERY * 20:  # what was made before tracing is not seen when freed
            gc.collect()
            start_bytes = tracemalloc.get_traced_memory()[0]
    gc.collect()
    grown_kb = (tracemalloc.get_traced_memory()[0] - start_bytes) / 1024
    tracemalloc.stop()
    assert len(ids) > 150, "the stream must keep bringing new track ids"
    assert blinks > 0, "the blink counters must be fed"
    faces_in_forget_window = 2 * FACE_FORGET_MS / (FACE_EVERY * 1000.0 / FPS) + 2
    assert largest["tracks"] <= 4 and largest["track_states"] <= 4 and largest["smoothing"] <= 4, largest
    assert largest["blink_samples"] <= 60 + 10, largest
    assert largest["mood_tracks"] <= faces_in_forget_window, largest
    assert grown_kb < 256, f"Python memory grew {grown_kb:.0f} KiB over 3 minutes of frames"


def test_mood_fuser_forgets_faces_of_a_pass_that_is_over() -> None:
    """A looping video's clock goes back: the last pass's faces neither weigh in nor stay."""
    from tests.test_fusion import HAPPY, SAD

    fuser = MoodFuser()
    for t in range(0, 20_000, 40):
        fuser.update_face(1, HAPPY, float(t))
    assert fuser.scene_mood(19_960.0).face_valence == pytest.approx(1.0)
    fuser.update_face(2, SAD, 0.0)  # pass two: a new track at 0 ms of the file
    assert fuser.track_ids() == (2,)
    assert fuser.scene_mood(0.0).face_valence == pytest.approx(-0.8)
    for tid in range(3, 2_000):  # faces come and go for an hour
        fuser.update_face(tid, HAPPY, tid * 2_000.0)
    assert len(fuser.track_ids()) <= FACE_FORGET_MS / 2_000.0 + 2


@pytest.mark.slow
def test_real_pipeline_over_many_passes_keeps_memory_flat(shared_data: Path, tiny_emotion_model: Path) -> None:
    """engine.step() over 8 passes of face_noface.mov and noface_face.mov (faces appear and leave)
    with emotions, smoothing and mood on: bounded tables, no Python memory growth after the warm-up."""
    fuser = MoodFuser()
    settings = Settings(
        emotion_model_path=str(tiny_emotion_model), classifier=ClassifierOptions(smoothing=True), loop_video=True
    )
    engine = Engine(settings, pipeline_factory=lambda s: Pipeline(s, mood=fuser))
    folder = shared_data / "faces-pyfeat"
    largest: dict[str, int] = {}
    passes: set[int] = set()
    ids: set[int] = set()
    traced: list[int] = []  # Python memory after each round, once tracing runs
    for round_ in range(4):
        for name in ("face_noface.mov", "noface_face.mov"):
            engine.open(VideoFileSource(folder / name))
            first = engine.step()
            assert first is not None
            pass_index = first.frame.pass_index
            result: FrameResult | None = first
            while result is not None and result.frame.pass_index == pass_index:
                passes.add(result.frame.pass_index)
                ids.update(face.track_id for face in result.faces)
                result = engine.step()
                assert engine.pipeline is not None
                for key, value in _sizes(engine.pipeline, fuser).items():
                    largest[key] = max(largest.get(key, 0), value)
        gc.collect()
        if round_ == 0:  # warm-up: models traced, caches filled
            tracemalloc.start()
        else:  # (measured from the end of round 1: what was allocated before tracing is not seen freed)
            traced.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    grown_kb = (traced[-1] - traced[0]) / 1024
    assert len(passes) >= 8 and len(ids) >= 8, (passes, ids)
    assert max(largest[k] for k in ("tracks", "track_states", "smoothing", "mood_tracks")) <= 3, largest
    assert largest["blink_samples"] <= 70, largest
    assert len(engine.poll_events()) <= MAX_EVENTS
    assert grown_kb < 256, f"Python memory grew {grown_kb:.0f} KiB over 4 passes ({traced})"


def _native_threads() -> int:
    """Threads of this process, native ones (FFmpeg, TensorFlow) included."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return threading.active_count()


class _Quick:
    load_errors: typing.ClassVar[dict[str, str]] = {}

    def process(self, frame: Frame) -> FrameResult:
        return FrameResult(frame=frame)

    def reset(self) -> None:
        pass

    def configure(self, settings: Settings) -> None:
        pass


def _wait(engine: Engine, kind: type, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(isinstance(e, kind) for e in engine.poll_events()):
            return
        time.sleep(0.005)
    raise AssertionError(f"no {kind.__name__} within {timeout_s} s")


def test_fifty_sources_in_a_row_leave_the_thread_count_where_it_was(shared_data: Path) -> None:
    video = shared_data / "faces-pyfeat" / "single_face.mp4"
    engine = Engine(pipeline_factory=lambda s: _Quick(), realtime=True)  # type: ignore[arg-type,return-value]
    VideoFileSource(video).close()  # warm up FFmpeg's own thread pools
    baseline, native_baseline = threading.active_count(), _native_threads()
    engine.start()
    try:
        for i in range(50):
            source = VideoFileSource(video) if i % 2 else SyntheticSource([np.zeros((8, 8, 3), np.uint8)] * 5)
            engine.open(source)
            _wait(engine, SourceOpened)
            assert threading.active_count() == baseline + 2, "one capture and one inference thread"
    finally:
        assert engine.stop(timeout_s=2.0)
    assert threading.active_count() == baseline
    assert _native_threads() <= native_baseline + 2, "no decoder threads left behind"


def test_fifty_start_stop_cycles_leave_no_thread(no_thread_leak: None) -> None:
    baseline = threading.active_count()
    engine = Engine(pipeline_factory=lambda s: _Quick(), realtime=False)  # type: ignore[arg-type,return-value]
    for _ in range(50):
        engine.start()
        engine.open(SyntheticSource([np.zeros((8, 8, 3), np.uint8)] * 3))
        _wait(engine, SourceEnded)
        assert engine.stop(timeout_s=2.0)
        assert threading.active_count() == baseline


def _slow_factory(settings: Settings) -> _Quick:
    """A pipeline whose models take a second to load."""
    time.sleep(1.0)
    return _Quick()


def test_a_restart_waits_for_a_thread_that_outlived_stop(no_thread_leak: None) -> None:
    """A model still loading when stop gives up: the next start does not run a second inference thread."""

    engine = Engine(pipeline_factory=_slow_factory)  # type: ignore[arg-type]
    baseline = threading.active_count()
    engine.start()
    assert not engine.stop(timeout_s=0.1, load_wait_s=0.0)
    engine.start()
    try:
        assert threading.active_count() == baseline + 2
        engine.open(SyntheticSource([np.zeros((8, 8, 3), np.uint8)] * 3))
        _wait(engine, SourceEnded)
    finally:
        assert engine.stop(timeout_s=3.0)
    assert threading.active_count() == baseline


def test_stop_while_the_models_load_waits_for_the_load_and_ends_clean(no_thread_leak: None) -> None:
    """A command that fails in its first second stops an engine still loading: no thread is left."""

    engine = Engine(pipeline_factory=_slow_factory)  # type: ignore[arg-type]
    baseline = threading.active_count()
    engine.start()
    assert engine.stop(timeout_s=0.1), "the load is waited for, then the thread ends"
    assert threading.active_count() == baseline
