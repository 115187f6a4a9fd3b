"""The frame pipeline: ``process(frame) -> FrameResult``, synchronous, no threads.

Stages: detect (every N frames, on a downscaled frame) -> track ids -> landmarks
(which also follow faces between detections) -> align to 48x48 -> classify all faces
in one batch -> smooth -> blinks -> mood -> class activation maps (while that overlay
is on) -> annotate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from facial_emotion.annotate import annotate_all, build_annotators
from facial_emotion.paths import DEFAULT_EMOTION_MODEL
from facial_emotion.registry import Slot, get_spec
from facial_emotion.settings import Settings
from facial_emotion.types import Box, EmotionScores, Face, Frame, FrameResult, StageTimes
from facial_emotion.vision.align import face_input
from facial_emotion.vision.blinks import BlinkCounter, eye_aspect_ratios
from facial_emotion.vision.classifier import EmotionSmoother, to_scores
from facial_emotion.vision.tracker import FaceTracker

log = logging.getLogger(__name__)

CAM_KEY = "cam"
"""The overlay whose stage (Grad-CAM) runs only while it is on."""


class MoodSource(Protocol):
    """Fuses each face's emotions with other channels (speech) into a mood in [-1, 1].

    Times are the source's own clock (``Frame.source_timestamp_ms``): the one a video's
    transcript and a live microphone are on. It must forget tracks it no longer hears of
    by itself, and all of them on ``forget_faces``.
    """

    def update_face(self, track_id: int, scores: EmotionScores, t_ms: float) -> None:
        """Feed one face's emotion scores at a time on the shared clock."""
        ...

    def mood(self, track_id: int, t_ms: float) -> Any:
        """The fused mood of a track; an object with a float ``score``."""
        ...

    def forget_faces(self) -> None:
        """Drop every face track (the pipeline was reset: a new pass or an unrelated still)."""
        ...


@dataclass(slots=True)
class _TrackState:
    landmarks: np.ndarray | None = None
    box_from_landmarks: tuple[float, float, float, float] | None = None
    blinks: BlinkCounter = field(default_factory=BlinkCounter)


def _landmark_box_relation(box: Box, landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """The detector box relative to the landmarks' bounding box, in landmark-box units."""
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    return ((box.left - x0) / w, (box.top - y0) / h, (box.right - x1) / w, (box.bottom - y1) / h)


def _box_from_landmarks(landmarks: np.ndarray, rel: tuple[float, float, float, float]) -> Box:
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    return Box(round(x0 + rel[0] * w), round(y0 + rel[1] * h), round(x1 + rel[2] * w), round(y1 + rel[3] * h))


class Pipeline:
    """Turns frames into FrameResults; models come from the registry per Settings.

    Models are loaded once and cached, so switching a slot off and on again is cheap.
    ``configure`` may be called between frames to switch models, overlays or settings.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        annotate: bool = True,
        mood: MoodSource | None = None,
    ) -> None:
        self._cache: dict[tuple[str, str, str], Any] = {}
        self._explainers: dict[str, Any] = {}
        self._explainer: Any = None
        self.annotate = annotate
        self.mood = mood
        self.tracker = FaceTracker()
        self._states: dict[int, _TrackState] = {}
        self._smoother = EmotionSmoother()
        self._since_detect = 0
        self._fps_ema_ms: float | None = None
        self.settings = Settings()
        self.load_errors: dict[str, str] = {}
        """Why a slot's model (or the class activation maps, "cam") is off, by slot."""
        self._cam_errors: dict[str, str] = {}
        self.configure(settings or Settings())

    # -- configuration -------------------------------------------------------------

    def _stage(self, slot: Slot, key: str | None) -> Any:
        if key is None:
            return None
        path = (
            Path(self.settings.emotion_model_path) if slot == "emotion" and self.settings.emotion_model_path else None
        )
        cache_key = (slot, key, str(path))
        if cache_key not in self._cache:
            self._cache[cache_key] = get_spec(slot, key).factory(path)
        return self._cache[cache_key]

    def configure(self, settings: Settings) -> None:
        """Apply settings; a model that fails to load leaves its slot off and says why."""
        self.settings = settings
        self.load_errors = {}
        for slot in ("detector", "landmarks", "emotion"):
            try:
                setattr(self, f"_{slot}", self._stage(slot, getattr(settings, slot)))
            except Exception as exc:  # a missing or bad model must not stop the stream
                log.error("%s model %r unavailable: %s", slot, getattr(settings, slot), exc)
                self.load_errors[slot] = str(exc)
                setattr(self, f"_{slot}", None)
        if self._detector is not None and hasattr(self._detector, "max_width_px"):
            self._detector.max_width_px = settings.detection.width_px
            self._detector.upsample = settings.detection.upsample
        self._explainer = self._cam_stage(settings) if CAM_KEY in settings.overlays else None
        self._smoother.alpha = settings.classifier.smoothing_alpha
        self._annotators = build_annotators(settings.overlays) if self.annotate else []
        self._since_detect = 0  # re-detect after any change

    def _cam_stage(self, settings: Settings) -> Any:
        """The Grad-CAM explainer of the emotion model in use (loaded once per model file)."""
        if self._emotion is None:
            return None
        path = settings.emotion_model_path or str(DEFAULT_EMOTION_MODEL)
        if path not in self._explainers:
            try:
                # TensorFlow, only while the user looks at class activation maps: gradients
                # need the Keras model; the light runtime has none.
                from facial_emotion.training.explain import GradCamExplainer

                self._explainers[path] = GradCamExplainer(Path(path))
            except Exception as exc:  # no model file, no TensorFlow: the overlay says why, frames go on
                log.error("no class activation maps for %s: %s", path, exc)
                self._explainers[path] = None
                self._cam_errors[path] = f"class activation maps are not available: {exc}"
        if path in self._cam_errors:
            self.load_errors["cam"] = self._cam_errors[path]
        return self._explainers[path]

    @property
    def landmark_model(self) -> Any:
        """The landmark stage in use (None when off)."""
        return self._landmarks

    def reset(self) -> None:
        """Forget tracks and per-face state (call when the source changes or loops); ids keep counting."""
        self.tracker.reset()
        self._states.clear()
        self._smoother = EmotionSmoother(self.settings.classifier.smoothing_alpha)
        self._since_detect = 0
        self._fps_ema_ms = None
        if self.mood is not None:
            self.mood.forget_faces()

    def state_sizes(self) -> dict[str, int]:
        """Entries in every per-track table (for soak tests: each must stay bounded)."""
        return {
            "tracks": len(self.tracker.tracks),
            "track_states": len(self._states),
            "smoothing": len(self._smoother),
            "blink_samples": max((s.blinks.samples() for s in self._states.values()), default=0),
        }

    # -- processing ----------------------------------------------------------------

    def _detect_or_follow(self, gray: np.ndarray, t: dict[str, float]) -> list[tuple[int, Box, bool]]:
        landmarks = self._landmarks
        follow_ok = landmarks is not None and self.settings.detection.every > 1
        live = [tr for tr in self.tracker.tracks if tr.missed == 0]
        if follow_ok and live and self._since_detect < self.settings.detection.every:
            self._since_detect += 1
            out = []
            start = time.perf_counter()
            height, width = gray.shape[:2]
            for track in live:
                state = self._states.get(track.track_id)
                if state is None or state.box_from_landmarks is None:
                    continue
                points = landmarks.predict(gray, track.box)
                box = _box_from_landmarks(points, state.box_from_landmarks).clipped(width, height)
                if box.area == 0:
                    continue
                state.landmarks = points
                self.tracker.move(track.track_id, box)
                out.append((track.track_id, box, False))
            t["landmarks"] += (time.perf_counter() - start) * 1000
            return out
        start = time.perf_counter()
        boxes = self._detector.detect(gray) if self._detector is not None else ()
        if self.settings.detection.largest_only:
            boxes = boxes[:1]
        t["detect"] += (time.perf_counter() - start) * 1000
        self._since_detect = 1
        return [(tid, box, True) for tid, box in self.tracker.update(boxes)]

    def process(self, frame: Frame) -> FrameResult:
        """Everything about one frame: faces with ids, landmarks, emotions, blinks; annotated image."""
        started = time.perf_counter()
        t = {"detect": 0.0, "landmarks": 0.0, "align": 0.0, "classify": 0.0, "blink": 0.0, "annotate": 0.0, "cam": 0.0}
        image = frame.image
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self._detector is None and self.tracker.tracks:
            self.tracker.reset()  # nothing finds faces any more: no track lives on unseen
        placed = self._detect_or_follow(gray, t) if self._detector is not None else []
        alive = {tid for tid, _, _ in placed} | {tr.track_id for tr in self.tracker.tracks}
        for tid in list(self._states):
            if tid not in alive:
                del self._states[tid]
        self._smoother.forget(alive)

        points_list: list[np.ndarray | None] = []
        for tid, box, detected in placed:
            state = self._states.setdefault(tid, _TrackState())
            points = None
            if self._landmarks is not None:
                if detected:
                    s = time.perf_counter()
                    points = self._landmarks.predict(gray, box)
                    t["landmarks"] += (time.perf_counter() - s) * 1000
                    state.landmarks = points
                    state.box_from_landmarks = _landmark_box_relation(box, points)
                else:
                    points = state.landmarks
            points_list.append(points)

        s = time.perf_counter()
        aligned = [face_input(gray, box, points) for (_, box, _), points in zip(placed, points_list, strict=True)]
        t["align"] += (time.perf_counter() - s) * 1000

        probs = None
        if self._emotion is not None and aligned:
            s = time.perf_counter()
            probs = self._emotion.classify(np.stack(aligned))
            t["classify"] += (time.perf_counter() - s) * 1000

        heat = None
        if self._explainer is not None and probs is not None:
            s = time.perf_counter()
            heat = self._explainer.explain(np.stack(aligned))
            t["cam"] += (time.perf_counter() - s) * 1000

        faces: list[Face] = []
        for i, ((tid, box, detected), points) in enumerate(zip(placed, points_list, strict=True)):
            state = self._states[tid]
            scores = None
            if probs is not None:
                p = self._smoother.smooth(tid, probs[i]) if self.settings.classifier.smoothing else probs[i]
                scores = to_scores(p)
            ear = None
            s = time.perf_counter()
            if points is not None and len(points) == 68:
                left, right = eye_aspect_ratios(points)
                ear = (left + right) / 2.0
                state.blinks.update(left, right, frame.timestamp_ms)
            t["blink"] += (time.perf_counter() - s) * 1000
            mood = None
            if self.mood is not None and scores is not None:
                self.mood.update_face(tid, scores, frame.source_timestamp_ms)
                mood = float(self.mood.mood(tid, frame.source_timestamp_ms).score)
            faces.append(
                Face(
                    box=box,
                    track_id=tid,
                    landmarks=points,
                    emotion=scores,
                    ear=ear,
                    blinks=state.blinks.count,
                    blinks_per_min=state.blinks.per_minute(frame.timestamp_ms),
                    detected=detected,
                    aligned=aligned[i],
                    mood=mood,
                    heatmap=None if heat is None else heat[i],
                )
            )

        elapsed_ms = (time.perf_counter() - started) * 1000
        self._fps_ema_ms = elapsed_ms if self._fps_ema_ms is None else 0.9 * self._fps_ema_ms + 0.1 * elapsed_ms
        fps = 1000.0 / max(self._fps_ema_ms, 1e-3)
        result = FrameResult(frame=frame, faces=tuple(faces), fps=fps)
        annotated = None
        if self.annotate:
            s = time.perf_counter()
            annotated = annotate_all(image, result, self._annotators)
            t["annotate"] += (time.perf_counter() - s) * 1000
        latency = (time.perf_counter() - started) * 1000
        times = StageTimes(
            detect_ms=t["detect"],
            landmarks_ms=t["landmarks"],
            align_ms=t["align"],
            classify_ms=t["classify"],
            blink_ms=t["blink"],
            annotate_ms=t["annotate"],
            cam_ms=t["cam"],
        )
        return FrameResult(
            frame=frame, faces=tuple(faces), annotated=annotated, latency_ms=latency, times=times, fps=fps
        )
