"""Stable track ids across frames by IoU matching, with a centroid fallback."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from facial_emotion.types import Box


@dataclass(slots=True)
class Track:
    """One face followed across frames."""

    track_id: int
    box: Box
    missed: int = 0
    hits: int = 1


class FaceTracker:
    """Assigns stable ids to face boxes.

    Boxes are matched greedily to existing tracks by IoU (at least ``iou_threshold``);
    a box that overlaps no track but whose centre lies within half a face width of a
    track's centre also matches (fast head movement between detections). A track that
    goes unmatched for more than ``max_missed`` updates is dropped; ids are never reused.
    """

    def __init__(self, *, iou_threshold: float = 0.3, max_missed: int = 2) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self._tracks: dict[int, Track] = {}
        self._next_id = 1

    @property
    def tracks(self) -> tuple[Track, ...]:
        """Live tracks, in id order."""
        return tuple(self._tracks[k] for k in sorted(self._tracks))

    def reset(self) -> None:
        """Forget every track (a new source); ids keep counting up."""
        self._tracks.clear()

    def update(self, boxes: Sequence[Box]) -> list[tuple[int, Box]]:
        """Match this frame's boxes to tracks; returns (track id, box) per input box, in order."""
        pairs: list[tuple[float, int, int]] = []
        for bi, box in enumerate(boxes):
            for tid, track in self._tracks.items():
                score = box.iou(track.box)
                if score < self.iou_threshold:
                    (bx, by), (tx, ty) = box.center, track.box.center
                    near = max(box.width, track.box.width) / 2.0
                    if (bx - tx) ** 2 + (by - ty) ** 2 > near**2:
                        continue
                    score = 0.0  # a centroid match ranks below every IoU match
                pairs.append((score, bi, tid))
        pairs.sort(key=lambda p: p[0], reverse=True)
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for _, bi, tid in pairs:
            if bi in assigned or tid in used_tracks:
                continue
            assigned[bi] = tid
            used_tracks.add(tid)
        for tid in list(self._tracks):
            if tid not in used_tracks:
                self._tracks[tid].missed += 1
                if self._tracks[tid].missed > self.max_missed:
                    del self._tracks[tid]
        out: list[tuple[int, Box]] = []
        for bi, box in enumerate(boxes):
            tid = assigned.get(bi)
            if tid is None:
                tid = self._next_id
                self._next_id += 1
                self._tracks[tid] = Track(tid, box)
            else:
                track = self._tracks[tid]
                track.box, track.missed, track.hits = box, 0, track.hits + 1
            out.append((tid, box))
        return out

    def move(self, track_id: int, box: Box) -> None:
        """Record a followed (not detected) position of a track."""
        if track_id in self._tracks:
            self._tracks[track_id].box = box
