"""Blink counting from the eye aspect ratio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facial_emotion.pipeline import Pipeline
from facial_emotion.settings import DetectionOptions, Settings
from facial_emotion.sources import VideoFileSource, iter_frames
from facial_emotion.vision.blinks import BlinkCounter, eye_aspect_ratio


def _feed(counter: BlinkCounter, ears: list[float], fps: float = 30.0) -> list[int]:
    return [i for i, e in enumerate(ears) if counter.update(e, e, i * 1000.0 / fps)]


def test_ear_of_open_and_closed_eye() -> None:
    open_eye = np.array([(0, 0), (3, -2), (7, -2), (10, 0), (7, 2), (3, 2)], float)
    closed = open_eye * [1, 0.1]
    assert abs(eye_aspect_ratio(open_eye) - 0.4) < 1e-6
    assert eye_aspect_ratio(closed) < 0.05


def test_counts_a_blink_and_its_rate() -> None:
    counter = BlinkCounter()
    ears = [0.3] * 20 + [0.1, 0.08, 0.12] + [0.3] * 10
    assert _feed(counter, ears) == [23]
    assert counter.count == 1


def test_long_closure_is_not_a_blink_and_one_frame_dips_count_once() -> None:
    counter = BlinkCounter()
    ears = [0.3] * 20 + [0.05] * 40 + [0.3] * 20  # eyes shut for 1.3 s
    assert _feed(counter, ears) == []
    counter = BlinkCounter(min_closed_frames=2)
    assert _feed(counter, [0.3] * 20 + [0.1] + [0.3] * 5) == [], "needs two closed frames"


def test_only_one_eye_closing_is_a_wink_not_a_blink() -> None:
    counter = BlinkCounter()
    for i in range(20):
        counter.update(0.3, 0.3, i * 33.0)
    for i in range(20, 24):
        counter.update(0.08, 0.3, i * 33.0)
    assert not counter.update(0.3, 0.3, 24 * 33.0)
    assert counter.count == 0


def test_baseline_adapts_to_narrow_eyes() -> None:
    # glasses or narrow eyes: open at 0.2 instead of 0.3; a blink goes down to 0.07
    counter = BlinkCounter()
    ears = [0.2] * 30 + [0.07, 0.06] + [0.2] * 10 + [0.07, 0.07] + [0.2] * 10
    assert len(_feed(counter, ears)) == 2
    assert abs(counter.baseline - 0.2) < 0.01


def test_blinks_per_minute() -> None:
    counter = BlinkCounter()
    ears = ([0.3] * 40 + [0.1, 0.1]) * 12  # a blink every 1.4 s at 30 fps
    _feed(counter, ears + [0.3] * 5)
    t_ms = (len(ears) + 4) * 1000.0 / 30
    assert counter.count >= 11
    assert 35 < counter.per_minute(t_ms) < 50


def test_the_one_visible_blink_in_single_face_video(shared_data: Path) -> None:
    # single_face.mp4 has one blink, frames 25-29 (checked by eye); nothing else closes the eyes
    pipeline = Pipeline(Settings(emotion=None, detection=DetectionOptions(every=1)), annotate=False)
    source = VideoFileSource(shared_data / "faces-pyfeat" / "single_face.mp4")
    counts = [pipeline.process(frame).faces[0].blinks for frame in iter_frames(source)]
    assert counts[-1] == 1
    assert 26 <= counts.index(1) <= 34


def test_rate_restarts_when_a_video_loops() -> None:
    counter = BlinkCounter()
    ears = ([0.3] * 40 + [0.1, 0.1]) * 12 + [0.3] * 5
    _feed(counter, ears)
    count = counter.count
    _feed(counter, [0.3] * 200)  # timestamps start again at 0
    assert counter.count == count, "the total is kept"
    assert counter.per_minute(200 * 1000.0 / 30) == 0.0, "no blink since the loop"
