"""Session time: monotonic across loops and source changes, each pass marked, nothing carried over."""

from __future__ import annotations

import itertools
import time
import typing
from pathlib import Path

import numpy as np
import pytest

from facial_emotion.clock import SessionTime
from facial_emotion.engine import Engine
from facial_emotion.settings import Settings
from facial_emotion.sources import SyntheticSource, VideoFileSource
from facial_emotion.types import Frame, FrameResult

IMAGE = np.zeros((8, 8, 3), np.uint8)


class _Clip(SyntheticSource):
    """A synthetic file that can be played again, as a video file can."""

    def rewind(self) -> None:
        self._index = 0


class _PassThrough:
    """A pipeline that only hands the frame back (the engine's own behaviour is under test)."""

    load_errors: typing.ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        self.resets = 0

    def process(self, frame: Frame) -> FrameResult:
        return FrameResult(frame=frame)

    def reset(self) -> None:
        self.resets += 1

    def configure(self, settings: Settings) -> None:
        pass


def _engine(**settings: typing.Any) -> tuple[Engine, _PassThrough]:
    pipeline = _PassThrough()
    engine = Engine(Settings(**settings), pipeline_factory=lambda s: pipeline)  # type: ignore[arg-type,return-value]
    return engine, pipeline


def _frames(engine: Engine, n: int) -> list[Frame]:
    out = []
    for _ in range(n):
        result = engine.step()
        assert result is not None
        out.append(result.frame)
    return out


def _assert_monotonic(frames: list[Frame]) -> None:
    assert [f.index for f in frames] == list(range(frames[0].index, frames[0].index + len(frames)))
    assert all(b.timestamp_ms > a.timestamp_ms for a, b in itertools.pairwise(frames))
    assert all(b.pass_index in (a.pass_index, a.pass_index + 1) for a, b in itertools.pairwise(frames))


def test_a_looped_video_and_a_new_source_continue_the_clock() -> None:
    """Three loops of a 10-frame file at 10 fps, then a 20 fps file: time goes on, passes 0..3."""
    engine, pipeline = _engine(loop_video=True)
    engine.open(_Clip([IMAGE] * 10, fps=10.0, name="a"))
    frames = _frames(engine, 30)
    engine.open(SyntheticSource([IMAGE] * 5, fps=20.0, name="b"))
    frames += _frames(engine, 5)
    _assert_monotonic(frames)
    assert [f.pass_index for f in frames] == [0] * 10 + [1] * 10 + [2] * 10 + [3] * 5
    assert [f.timestamp_ms for f in frames[:31]] == pytest.approx([100.0 * i for i in range(31)])
    assert [f.timestamp_ms for f in frames[30:]] == pytest.approx([3000.0 + 50.0 * i for i in range(5)])
    # the source's own place is kept: a video's clock restarts at each pass
    assert [f.source_index for f in frames] == list(range(10)) * 3 + list(range(5))
    assert [f.source_timestamp_ms for f in frames[:20]] == pytest.approx([100.0 * (i % 10) for i in range(20)])
    for _, group in itertools.groupby(frames, key=lambda f: f.pass_index):
        offsets = {round(f.timestamp_ms - f.source_timestamp_ms, 6) for f in group}
        assert len(offsets) == 1, "session time is the source's plus one offset per pass"
    assert pipeline.resets == 4, "each pass starts the pipeline afresh"


def test_a_camera_keeps_the_shared_clock_when_it_is_ahead() -> None:
    """A live source stamped on the shared clock stays on it (the microphone is on that clock)."""
    clock = SessionTime()
    clock.begin_pass(live=False, fps=25.0)
    file_frames = [clock.stamp(Frame(IMAGE, i, i * 40.0)) for i in range(25)]
    clock.begin_pass(live=True, fps=30.0)
    camera = [clock.stamp(Frame(IMAGE, i, 500_000.0 + i * 33.0)) for i in range(3)]
    assert [f.timestamp_ms for f in camera] == [500_000.0, 500_033.0, 500_066.0]
    assert [f.index for f in camera] == [25, 26, 27] and {f.pass_index for f in camera} == {1}
    # a camera whose clock is behind the session (a file played faster than real time) is shifted
    clock.begin_pass(live=True, fps=30.0)
    behind = clock.stamp(Frame(IMAGE, 0, 10.0))
    assert behind.timestamp_ms == pytest.approx(500_066.0 + 1000.0 / 30.0) and behind.pass_index == 2
    _assert_monotonic([*file_frames, *camera, behind])


def test_a_source_clock_that_goes_back_unasked_is_a_new_pass() -> None:
    clock = SessionTime()
    first = [clock.stamp(Frame(IMAGE, i, i * 40.0)) for i in range(5)]
    again = clock.stamp(Frame(IMAGE, 0, 0.0))
    assert again.pass_index == 1 and again.index == 5 and again.timestamp_ms == pytest.approx(200.0)
    _assert_monotonic([*first, again])


def test_sources_that_give_no_frame_do_not_count_as_passes() -> None:
    engine, _ = _engine()
    engine.open(SyntheticSource([IMAGE] * 3, fps=10.0))
    frames = _frames(engine, 3)
    assert engine.step() is None  # ended
    engine.open(SyntheticSource([], fps=10.0, name="empty"))
    assert engine.step() is None
    engine.open(SyntheticSource([IMAGE] * 2, fps=10.0))
    frames += _frames(engine, 2)
    assert [f.pass_index for f in frames] == [0, 0, 0, 1, 1]
    assert [f.timestamp_ms for f in frames] == pytest.approx([0, 100, 200, 300, 400])


def test_threads_deliver_session_time_across_loops(no_thread_leak: None) -> None:
    engine, _ = _engine(loop_video=True)
    engine.realtime = False
    seen: list[Frame] = []
    engine.add_listener(lambda r: seen.append(r.frame))
    engine.start()
    try:
        engine.open(_Clip([IMAGE] * 7, fps=30.0))
        deadline = time.monotonic() + 20
        while len(seen) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        assert engine.stop()
    assert len(seen) >= 50
    _assert_monotonic(seen)
    assert seen[49].pass_index == 7 and seen[49].source_index == 0


def test_blinks_and_tracks_start_afresh_each_pass_and_source(shared_data: Path) -> None:
    """single_face.mp4 blinks once (frame 33): each loop and each new source counts from 0 again,
    and track ids stay unique within the session."""
    engine = Engine(Settings(emotion=None, loop_video=True))
    video = shared_data / "faces-pyfeat" / "single_face.mp4"
    engine.open(VideoFileSource(video))
    results = [engine.step() for _ in range(72 * 2)]
    engine.open(VideoFileSource(video))
    results += [engine.step() for _ in range(40)]
    assert all(r is not None and len(r.faces) == 1 for r in results)
    by_pass: dict[int, list[FrameResult]] = {}
    for r in results:
        by_pass.setdefault(r.frame.pass_index, []).append(r)
    assert sorted(by_pass) == [0, 1, 2]
    ids = []
    for p, rs in by_pass.items():
        assert rs[0].faces[0].blinks == 0, f"pass {p} starts with blinks carried over"
        assert max(r.faces[0].blinks for r in rs) == 1, f"pass {p} counts its own blink"
        ids.append({face.track_id for r in rs for face in r.faces})
    assert ids[0].isdisjoint(ids[1]) and ids[1].isdisjoint(ids[2]), "an id never names two faces in a session"
    _assert_monotonic([r.frame for r in results])
