"""Annotators tested pixel-wise on synthetic scenes."""

from __future__ import annotations

import numpy as np

from facial_emotion.annotate import (
    EMOTION_COLORS,
    OVERLAYS,
    BlinkAnnotator,
    BoxAnnotator,
    EmotionLabelAnnotator,
    FpsAnnotator,
    LandmarkAnnotator,
    MoodAnnotator,
    ProbabilityBarAnnotator,
    annotate_all,
    build_annotators,
)
from facial_emotion.types import Box, EmotionScores, Face, Frame, FrameResult

BOX = Box(100, 80, 180, 160)


def _scene() -> np.ndarray:
    return np.zeros((240, 360, 3), dtype=np.uint8)


def _result(**face_kw: object) -> FrameResult:
    face = Face(box=BOX, track_id=7, **face_kw)
    return FrameResult(frame=Frame(_scene(), 0, 0.0), faces=(face,), fps=42.0)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.any(before != after, axis=2)


def test_box_is_drawn_on_its_edges_only() -> None:
    out = BoxAnnotator(color=(0, 255, 0), thickness=1).annotate(_scene(), _result())
    assert tuple(out[BOX.top, BOX.left + 10]) == (0, 255, 0)
    assert tuple(out[BOX.bottom - 1, BOX.right - 10]) == (0, 255, 0)
    assert tuple(out[BOX.top + 1 : BOX.bottom - 1, BOX.left + 1 : BOX.right - 1].reshape(-1, 3).max(0)) == (0, 0, 0)
    # the id label sits under the box
    assert _changed(_scene(), out)[BOX.bottom + 2 : BOX.bottom + 20, BOX.left : BOX.left + 30].any()


def test_landmarks_are_dots_where_the_points_are() -> None:
    points = np.array([[120.0, 100.0], [150.0, 130.0]])
    out = LandmarkAnnotator(color=(0, 0, 255), radius=1).annotate(_scene(), _result(landmarks=points))
    assert tuple(out[100, 120]) == (0, 0, 255) and tuple(out[130, 150]) == (0, 0, 255)
    assert _changed(_scene(), out).sum() <= 2 * 9


def test_emotion_label_and_bars_use_the_emotion_colour() -> None:
    happy = EmotionScores((0.0, 0.0, 0.0, 0.9, 0.05, 0.0, 0.05))
    label = EmotionLabelAnnotator().annotate(_scene(), _result(emotion=happy))
    above = label[BOX.top - 25 : BOX.top, BOX.left : BOX.left + 80].reshape(-1, 3)
    assert (above == EMOTION_COLORS["happy"]).all(axis=1).sum() > 100
    bars = ProbabilityBarAnnotator(width_px=90, bar_height_px=11).annotate(_scene(), _result(emotion=happy))
    happy_row = BOX.top + 3 * 14 + 5
    filled = (bars[happy_row, BOX.right + 6 : BOX.right + 97] == EMOTION_COLORS["happy"]).all(axis=1).sum()
    assert 78 <= filled <= 83  # 90% of 90 px
    angry_row = BOX.top + 5
    assert not (bars[angry_row, BOX.right + 6 : BOX.right + 97] == EMOTION_COLORS["angry"]).all(axis=1).any()


def test_unclassified_faces_get_no_label_or_bars() -> None:
    for annotator in (EmotionLabelAnnotator(), ProbabilityBarAnnotator(), BlinkAnnotator(), MoodAnnotator()):
        assert not _changed(_scene(), annotator.annotate(_scene(), _result())).any()


def test_blink_counter_fps_and_mood() -> None:
    blinks = BlinkAnnotator().annotate(_scene(), _result(ear=0.3, blinks=3))
    assert _changed(_scene(), blinks)[BOX.bottom : BOX.bottom + 22].any()
    fps = FpsAnnotator().annotate(_scene(), _result())
    changed = _changed(_scene(), fps)
    assert changed[:25, :100].any() and not changed[30:].any()
    positive = MoodAnnotator().annotate(_scene(), _result(mood=0.5))
    negative = MoodAnnotator().annotate(_scene(), _result(mood=-0.5))
    mid = (BOX.left + BOX.right) // 2
    y = BOX.bottom + 28
    assert tuple(positive[y, mid + 10]) == (60, 200, 60) and tuple(positive[y, mid - 10]) == (60, 60, 60)
    assert tuple(negative[y, mid - 10]) == (60, 60, 220)


def test_overlay_table_drives_which_annotators_run() -> None:
    keys = [spec.key for spec in OVERLAYS]
    assert len(set(keys)) == len(keys)
    assert len({spec.shortcut for spec in OVERLAYS}) == len(OVERLAYS)
    result = _result(emotion=EmotionScores((0.1,) * 6 + (0.4,)), ear=0.3)
    scene = _scene()
    nothing = annotate_all(scene, result, build_annotators(()))
    assert not _changed(scene, nothing).any()
    boxes_only = annotate_all(scene, result, build_annotators(("boxes",)))
    with_bars = annotate_all(scene, result, build_annotators(("boxes", "bars")))
    assert _changed(boxes_only, with_bars)[BOX.top : BOX.bottom, BOX.right + 6 :].any()
    assert not scene.any(), "annotate_all draws on a copy"
