"""Summaries of a session by segment and face: between markers, per pass, or over a selection.

A segment runs from a marker to the next (before the first marker it is ``start``;
the last runs to the end), or over one pass of the source, or over the whole session;
a selection (``start_ms``/``end_ms``) clips them. Every row of frames.csv falls into
exactly one marker segment. Per face (``track_id``) and segment: the frames it was
seen in and the seconds from its first to its last (one frame step added), the mean
of each emotion probability, the share of its frames each emotion was on top, the
blinks it made (increments of its ``blinks`` counter) per minute of those seconds,
and its mean mood. Speech is the scene's, not a face's: each word counts where its
middle falls (an utterance without word times, where its own middle falls), and the
sentiment is the mean of the utterances that said those words; every face row of a
segment repeats them, and a segment without a face still has a row.

Times are session time as stored (monotonic in today's recordings; tables of the first
release that go back at a loop are split by ``by="passes"``, not by markers).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from facial_emotion.session.load import Session
from facial_emotion.session.markers import Marker
from facial_emotion.types import EMOTIONS, Utterance

SegmentBy = Literal["markers", "passes"] | None
BY_CHOICES: Final[tuple[str, ...]] = ("markers", "passes", "none")
"""The ``--by`` words of the command line ("none": one segment)."""
START_LABEL: Final = "start"
"""The segment before the first marker."""
DEFAULT_STEP_MS: Final = 1000.0 / 30.0

SEGMENT_COLUMNS: Final[tuple[str, ...]] = (
    "session",
    "participant",
    "condition",
    "segment",
    "label",
    "origin",
    "start_ms",
    "end_ms",
    "track_id",
    "frames",
    "seconds",
    *(f"p_{e}" for e in EMOTIONS),
    *(f"top_{e}" for e in EMOTIONS),
    "blinks",
    "blinks_per_min",
    "mood",
    "words",
    "sentiment",
)
"""The CSV columns: the session and its study metadata on every row, so sessions concatenate."""


@dataclass(frozen=True, slots=True)
class FaceSummary:
    """One face over one segment; None where the signal was not recorded (emotions or mood off)."""

    track_id: int | None
    """The face's track; None in the row of a segment in which no face was seen."""
    frames: int
    seconds: float
    emotion_means: tuple[float, ...] | None
    """The mean probability of each of EMOTIONS."""
    top_shares: tuple[float, ...] | None
    """The share (0..1) of the face's frames each of EMOTIONS was the most probable."""
    blinks: int
    blinks_per_min: float | None
    mood: float | None


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """One segment: where it runs, the faces in it, and what was said."""

    number: int
    """1, 2, ... in time order."""
    label: str
    origin: str
    """The marker's origin ("live", "review"), or "start", "pass", "session", "selection"."""
    start_ms: float
    end_ms: float
    faces: tuple[FaceSummary, ...]
    words: int
    sentiment: float | None

    @property
    def seconds(self) -> float:
        """The segment's length in seconds."""
        return max(0.0, self.end_ms - self.start_ms) / 1000.0


@dataclass(frozen=True, slots=True)
class SegmentTable:
    """The summaries of one session's segments, with what identifies the session in a study."""

    session: str
    participant: str | None
    condition: str | None
    by: SegmentBy
    segments: tuple[SegmentSummary, ...]

    def to_rows(self) -> list[dict[str, str]]:
        """One row per face per segment, keyed by SEGMENT_COLUMNS, as CSV text ("" where unknown)."""
        rows = []
        for seg in self.segments:
            for face in seg.faces:
                row = {
                    "session": self.session,
                    "participant": self.participant or "",
                    "condition": self.condition or "",
                    "segment": str(seg.number),
                    "label": seg.label,
                    "origin": seg.origin,
                    "start_ms": f"{seg.start_ms:.1f}",
                    "end_ms": f"{seg.end_ms:.1f}",
                    "track_id": "" if face.track_id is None else str(face.track_id),
                    "frames": str(face.frames),
                    "seconds": f"{face.seconds:.3f}",
                    "blinks": str(face.blinks),
                    "blinks_per_min": _fmt(face.blinks_per_min, 2),
                    "mood": _fmt(face.mood),
                    "words": str(seg.words),
                    "sentiment": _fmt(seg.sentiment),
                }
                for i, e in enumerate(EMOTIONS):
                    row[f"p_{e}"] = _fmt(face.emotion_means[i] if face.emotion_means else None)
                    row[f"top_{e}"] = _fmt(face.top_shares[i] if face.top_shares else None)
                rows.append({name: row[name] for name in SEGMENT_COLUMNS})
        return rows

    def to_csv(self) -> str:
        """The rows as CSV text with a header line."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=SEGMENT_COLUMNS)
        writer.writeheader()
        writer.writerows(self.to_rows())
        return buf.getvalue()


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def by_choice(word: str) -> SegmentBy:
    """The ``by`` of a command-line word (one of BY_CHOICES)."""
    if word not in BY_CHOICES:
        raise ValueError(f"segments are by {', '.join(BY_CHOICES)}, not {word!r}")
    return None if word == "none" else word  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class _Span:
    label: str
    origin: str
    start_ms: float
    end_ms: float
    rows: np.ndarray
    """Which rows of the table are in it (bool)."""
    speech: tuple[float, float]
    """The times whose words count in it (the first and last marker segments run open-ended)."""


def frame_step_ms(session: Session) -> float:
    """The time between two frames: from the session's frame rate, else from the rows' times."""
    if session.info.fps:
        return 1000.0 / session.info.fps
    times = np.unique(session.frames["timestamp_ms"])
    steps = np.diff(times)
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else DEFAULT_STEP_MS


def _marker_spans(markers: Sequence[Marker], t: np.ndarray, first_ms: float, end_ms: float) -> list[_Span]:
    ordered = sorted(markers, key=lambda m: m.time_ms)
    cuts = np.asarray([m.time_ms for m in ordered], dtype=float)
    which = np.searchsorted(cuts, t, side="right")  # 0: before the first marker
    bounds = [first_ms, *cuts.tolist(), max(end_ms, *cuts.tolist(), first_ms)]
    spans = []
    for k in range(len(ordered) + 1):
        rows = which == k
        if k == 0 and ordered and bounds[1] <= first_ms and not rows.any():
            continue  # the first marker is at the start: no "start" segment
        label, origin = (START_LABEL, "start") if k == 0 else (ordered[k - 1].label, ordered[k - 1].origin)
        speech = (-math.inf if k == 0 else bounds[k], math.inf if k == len(ordered) else bounds[k + 1])
        spans.append(_Span(label, origin, bounds[k], max(bounds[k], bounds[k + 1]), rows, speech))
    return spans


def _pass_spans(passes: np.ndarray, t: np.ndarray, step_ms: float) -> list[_Span]:
    _, first = np.unique(passes, return_index=True)
    spans = []
    for p in passes[np.sort(first)].tolist():
        rows = passes == p
        start, end = float(t[rows].min()), float(t[rows].max()) + step_ms
        spans.append(_Span(f"pass {p}", "pass", start, end, rows, (start, end)))
    return spans


def _clip(span: _Span, t: np.ndarray, start_ms: float, end_ms: float, label: str | None) -> _Span | None:
    lo, hi = max(span.start_ms, start_ms), min(span.end_ms, end_ms)
    if lo >= hi:
        return None
    rows = span.rows & (t >= start_ms) & (t < end_ms)
    speech = (max(span.speech[0], start_ms), min(span.speech[1], end_ms))
    return _Span(label or span.label, "selection" if label else span.origin, lo, hi, rows, speech)


def blink_increments(track_ids: np.ndarray, blinks: np.ndarray) -> np.ndarray:
    """Per row, the blinks its face made since its previous row (a counter that restarts counts from 0)."""
    out = np.zeros(blinks.size, dtype=np.int64)
    last: dict[int, int] = {}
    for i, (tid, count) in enumerate(zip(track_ids.tolist(), blinks.tolist(), strict=True)):
        prev = last.get(tid)
        if prev is not None:
            out[i] = count - prev if count >= prev else count
        last[tid] = count
    return out


def _face(session: Session, rows: np.ndarray, track_id: int, step_ms: float, increments: np.ndarray) -> FaceSummary:
    table = session.frames
    times = table["timestamp_ms"][rows]
    seconds = (float(times.max() - times.min()) + step_ms) / 1000.0
    probs = np.stack([table[f"p_{e}"][rows] for e in EMOTIONS], axis=1)
    probs = probs[~np.isnan(probs).any(axis=1)]
    tops = table["emotion"][rows]
    tops = tops[tops != ""]
    moods = table["mood"][rows]
    moods = moods[~np.isnan(moods)]
    blinks = int(increments[rows].sum())
    return FaceSummary(
        track_id=track_id,
        frames=int(rows.sum()),
        seconds=seconds,
        emotion_means=tuple(float(v) for v in probs.mean(axis=0)) if len(probs) else None,
        top_shares=tuple(float(np.mean(tops == e)) for e in EMOTIONS) if tops.size else None,
        blinks=blinks,
        blinks_per_min=blinks / seconds * 60.0 if seconds > 0 else None,
        mood=float(moods.mean()) if moods.size else None,
    )


def _speech(utterances: Sequence[Utterance], lo_ms: float, hi_ms: float) -> tuple[int, float | None]:
    words, moods = 0, []
    for u in utterances:
        if u.words:
            said = sum(1 for w in u.words if lo_ms <= (w.start_ms + w.end_ms) / 2 < hi_ms)
        else:
            said = len(u.text.split()) if lo_ms <= (u.start_ms + u.end_ms) / 2 < hi_ms else 0
        if said:
            words += said
            if u.sentiment is not None:
                moods.append(u.sentiment.compound)
    return words, (float(np.mean(moods)) if moods else None)


def segments(
    session: Session, by: SegmentBy = "markers", *, start_ms: float | None = None, end_ms: float | None = None
) -> SegmentTable:
    """The session's segments (by its markers, its passes, or one for None), per face; a selection clips them."""
    if by not in ("markers", "passes", None):
        raise ValueError(f"segments are by 'markers', 'passes' or None, not {by!r}")
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise ValueError(f"a selection ends after it starts ({start_ms} ms .. {end_ms} ms)")
    table, info = session.frames, session.info
    t, track_ids = table["timestamp_ms"], table["track_id"]
    step_ms = frame_step_ms(session)
    first_ms = float(t.min()) if len(table) else 0.0
    if info.first_frame_ms is not None:
        first_ms = min(first_ms, info.first_frame_ms) if len(table) else info.first_frame_ms
    last_ms = float(t.max()) + step_ms if len(table) else first_ms
    if by == "markers":
        spans = _marker_spans(session.markers, t, first_ms, last_ms)
    elif by == "passes":
        spans = _pass_spans(table["pass"], t, step_ms)
    else:
        spans = [_Span("session", "session", first_ms, last_ms, np.ones(len(table), bool), (-math.inf, math.inf))]
    if start_ms is not None or end_ms is not None:
        lo = -math.inf if start_ms is None else start_ms
        hi = math.inf if end_ms is None else end_ms
        label = "selection" if by is None else None
        spans = [c for s in spans if (c := _clip(s, t, lo, hi, label)) is not None]
    increments = blink_increments(track_ids, table["blinks"])
    summaries = []
    for number, span in enumerate(spans, start=1):
        faces = tuple(
            _face(session, span.rows & (track_ids == tid), tid, step_ms, increments)
            for tid in np.unique(track_ids[span.rows]).tolist()
        )
        if not faces:
            faces = (FaceSummary(None, 0, 0.0, None, None, 0, None, None),)
        words, sentiment = _speech(session.transcript, *span.speech)
        summaries.append(
            SegmentSummary(number, span.label, span.origin, span.start_ms, span.end_ms, faces, words, sentiment)
        )
    return SegmentTable(info.name or session.folder.name, info.participant, info.condition, by, tuple(summaries))
