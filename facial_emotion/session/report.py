"""``report.html`` for a session folder: one self-contained page with the plots embedded.

Reads the folder through ``load_session`` (any layout it reads); draws with matplotlib
(Agg, imported here only when a report is built) into base64 PNGs, so the page opens
offline with no other file and no external URL.

The time axis is session time: it runs across the loops of a video and the source
changes (the ``pass`` column), and a table written before session time was monotonic
(times that go back) is laid end to end the same way. Lines break where a pass ends
and where a face was not seen for a while, instead of joining across the gap. The page
ends with a section per segment between markers (``segments``) and the transcript.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from facial_emotion.session.files import REPORT_FILE
from facial_emotion.session.frame_table import FrameTable
from facial_emotion.session.load import load_session
from facial_emotion.session.schema import SessionInfo
from facial_emotion.session.segments import SegmentTable, segments
from facial_emotion.types import EMOTIONS, Utterance

log = logging.getLogger(__name__)

MAX_TRACKS: Final = 6
BLINK_WINDOW_S: Final = 30.0
MIN_BLINK_SPAN_S: Final = 10.0
"""Rates over shorter spans (the first seconds) are noise; they are spread over this much."""
MIN_GAP_S: Final = 1.0
"""A face unseen this long (or 5 frame steps, if longer) breaks its lines."""
DEFAULT_STEP_MS: Final = 1000.0 / 30.0
COLORS: Final[dict[str, str]] = {
    "angry": "#dc2828",
    "disgust": "#288c28",
    "fear": "#a03ca0",
    "happy": "#ffc800",
    "sad": "#1e6ec8",
    "surprise": "#00dcdc",
    "neutral": "#b4b4b4",
}


@dataclass(slots=True)
class _Track:
    t_s: list[float] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)
    p_t_s: list[float] = field(default_factory=list)
    p_passes: list[int] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)
    blinks: list[int] = field(default_factory=list)
    mood_t_s: list[float] = field(default_factory=list)
    mood_passes: list[int] = field(default_factory=list)
    mood: list[float] = field(default_factory=list)
    top: list[str] = field(default_factory=list)


class _SessionTime:
    """Session time from a table's times: one that goes back starts a new pass, laid after the last."""

    def __init__(self) -> None:
        self.last_raw_ms: float | None = None
        self.last_ms = 0.0
        self.offset_ms = 0.0
        self.step_ms = DEFAULT_STEP_MS
        self.extra_passes = 0
        self.last_pass = 0

    def __call__(self, raw_ms: float, pass_index: int) -> tuple[float, int]:
        if self.last_raw_ms is not None:
            if raw_ms < self.last_raw_ms:
                self.offset_ms = self.last_ms + self.step_ms - raw_ms
                if pass_index == self.last_pass:
                    self.extra_passes += 1
            elif raw_ms > self.last_raw_ms:
                self.step_ms = min(raw_ms - self.last_raw_ms, 1000.0)
        self.last_raw_ms, self.last_pass = raw_ms, pass_index
        self.last_ms = raw_ms + self.offset_ms
        return self.last_ms, pass_index + self.extra_passes


def tracks_of(table: FrameTable) -> tuple[dict[int, _Track], float | None]:
    """Per-track series of a frame table (session time in s from the first row), and that first time in ms."""
    tracks: dict[int, _Track] = defaultdict(_Track)
    t0: float | None = None
    clock = _SessionTime()
    probs_all = np.stack([table[f"p_{name}"] for name in EMOTIONS], axis=1) if len(table) else np.zeros((0, 7))
    with_probs = ~np.isnan(probs_all).any(axis=1)
    columns = (table["timestamp_ms"], table["track_id"], table["pass"], table["blinks"], table["mood"])
    for i, (raw_ms, tid, raw_pass, blinks, mood) in enumerate(zip(*columns, strict=True)):
        t_ms, pass_index = clock(float(raw_ms), int(raw_pass))
        t0 = t_ms if t0 is None else t0
        track = tracks[int(tid)]
        t_s = (t_ms - t0) / 1000.0
        track.t_s.append(t_s)
        track.passes.append(pass_index)
        track.blinks.append(int(blinks))
        if with_probs[i]:
            track.p_t_s.append(t_s)
            track.p_passes.append(pass_index)
            track.probs.append([float(p) for p in probs_all[i]])
            track.top.append(str(table["emotion"][i]))
        if not np.isnan(mood):
            track.mood_t_s.append(t_s)
            track.mood_passes.append(pass_index)
            track.mood.append(float(mood))
    return dict(tracks), t0


def segment_starts(t_s: np.ndarray, passes: np.ndarray, min_gap_s: float = MIN_GAP_S) -> np.ndarray:
    """Indices where a new stretch of a series begins: a new pass, or a gap in time (0 first)."""
    if t_s.size == 0:
        return np.zeros(0, dtype=int)
    steps = np.diff(t_s)
    positive = steps[steps > 0]
    gap_s = max(min_gap_s, 5 * float(np.median(positive))) if positive.size else min_gap_s
    breaks = (steps > gap_s) | (np.diff(passes) != 0)
    return np.concatenate([[0], np.flatnonzero(breaks) + 1])


def broken(t_s: np.ndarray, values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The series with a NaN between stretches, so that a plotted line breaks there (values: (..., n))."""
    cuts = starts[1:]
    if cuts.size == 0:
        return t_s, values
    t_out = np.insert(t_s.astype(float), cuts, np.nan)
    v_out = np.insert(values.astype(float), cuts, np.nan, axis=-1)
    return t_out, v_out


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _main_tracks(tracks: dict[int, _Track]) -> list[int]:
    return sorted(tracks, key=lambda tid: -len(tracks[tid].t_s))[:MAX_TRACKS]


def blink_rate(
    t_s: np.ndarray, blinks: np.ndarray, window_s: float = BLINK_WINDOW_S, passes: np.ndarray | None = None
) -> np.ndarray:
    """Blinks per minute over the last window_s seconds at each time (cumulative counts in).

    With ``passes``, each pass is counted on its own (a new source restarts the count).
    """
    if t_s.size == 0:
        return t_s.astype(float)
    if passes is not None and passes.size == t_s.size and np.any(np.diff(passes) != 0):
        bounds = [*np.flatnonzero(np.diff(passes) != 0) + 1, t_s.size]
        out, lo = [], 0
        for hi in bounds:
            out.append(blink_rate(t_s[lo:hi], blinks[lo:hi], window_s))
            lo = hi
        return np.concatenate(out)
    start = np.searchsorted(t_s, t_s - window_s)
    span = np.maximum(t_s - t_s[start], MIN_BLINK_SPAN_S)
    return np.maximum(blinks - blinks[start], 0) / span * 60.0


def _series(t_s: list[float], values: Any, passes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t_s, dtype=float)
    return broken(t, np.asarray(values, dtype=float), segment_starts(t, np.asarray(passes)))


def _plots(
    tracks: dict[int, _Track], utterances: Sequence[Utterance], t0_ms: float | None, marks: Sequence[tuple[float, str]]
) -> dict[str, str]:
    return {title: _png(fig) for title, fig in figures(tracks, utterances, t0_ms, marks).items()}


def figures(
    tracks: dict[int, _Track],
    utterances: Sequence[Utterance],
    t0_ms: float | None,
    marks: Sequence[tuple[float, str]] = (),
) -> dict[str, Any]:
    """The report's matplotlib figures by title, on the session's time axis.

    ``marks`` are the markers as (seconds on that axis, label): a dashed line each on
    every plot over time, labelled on the top one.
    """
    # Figure objects with the Agg canvas, not pyplot: no global backend, safe on any thread.
    from matplotlib.figure import Figure

    shown = _main_tracks(tracks)
    with_probs = [tid for tid in shown if tracks[tid].probs]
    out: dict[str, Any] = {}
    end_s = max((tr.t_s[-1] for tr in tracks.values() if tr.t_s), default=0.0)

    def time_axis(ax: Any, *, labelled: bool = True) -> None:
        ax.set_xlim(0.0, max(end_s, 1.0))
        ax.set_xlabel("time (s)")
        for at_s, label in marks:
            ax.axvline(at_s, color="#333333", lw=0.8, ls="--")
            if labelled and label:
                ax.annotate(label, (at_s, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                            textcoords="offset points", fontsize=7, color="#333333")  # fmt: skip

    rows = max(1, len(with_probs))
    fig = Figure(figsize=(9, 2.2 * rows))
    axes = fig.subplots(rows, 1, squeeze=False, sharex=True)
    for ax, tid in zip(axes[:, 0], with_probs, strict=False):
        tr = tracks[tid]
        t, probs = _series(tr.p_t_s, np.asarray(tr.probs).T, tr.p_passes)
        ax.stackplot(t, probs, labels=EMOTIONS, colors=[COLORS[e] for e in EMOTIONS])
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"face #{tid}")
    if not with_probs:
        axes[0, 0].text(0.5, 0.5, "No emotions recorded (no face, or emotions off)", ha="center", va="center")
    else:
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    for ax in axes[:-1, 0]:
        time_axis(ax, labelled=False)
    time_axis(axes[-1, 0])
    out["Emotion timeline per face"] = fig

    fig = Figure(figsize=(9, 3))
    ax = fig.subplots()
    width = 0.8 / max(1, len(with_probs))
    for i, tid in enumerate(with_probs):
        tops = tracks[tid].top
        shares = [tops.count(e) / max(1, len(tops)) * 100 for e in EMOTIONS]
        ax.bar(np.arange(len(EMOTIONS)) + i * width, shares, width, label=f"face #{tid}")
    ax.set_xticks(np.arange(len(EMOTIONS)) + 0.4 - width / 2, EMOTIONS)
    ax.set_ylabel("% of frames")
    if with_probs:
        ax.legend(fontsize=8)
    out["Emotion shares"] = fig

    fig = Figure(figsize=(9, 3))
    ax = fig.subplots()
    for tid in shown:
        tr = tracks[tid]
        passes = np.asarray(tr.passes)
        rate = blink_rate(np.asarray(tr.t_s), np.asarray(tr.blinks, dtype=float), passes=passes)
        ax.plot(*_series(tr.t_s, rate, tr.passes), label=f"face #{tid}")
    time_axis(ax)
    ax.set_ylabel(f"blinks/min ({BLINK_WINDOW_S:.0f} s window)")
    if shown:
        ax.legend(fontsize=8)
    out["Blink rate over time"] = fig

    fig = Figure(figsize=(9, 3))
    ax = fig.subplots()
    said = [u for u in utterances if u.sentiment is not None]
    if said:
        base = t0_ms if t0_ms is not None else said[0].start_ms
        t = [((u.start_ms + u.end_ms) / 2 - base) / 1000 for u in said]
        values = [u.sentiment.compound for u in said if u.sentiment is not None]
        ax.stem(t, values)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylim(-1.05, 1.05)
    else:
        ax.text(0.5, 0.5, "No speech recorded", ha="center", va="center", transform=ax.transAxes)
    time_axis(ax)
    ax.set_ylabel("sentiment (compound)")
    out["Speech sentiment over time"] = fig

    fig = Figure(figsize=(9, 3))
    ax = fig.subplots()
    moody = [tid for tid in shown if tracks[tid].mood]
    for tid in moody:
        tr = tracks[tid]
        ax.plot(*_series(tr.mood_t_s, tr.mood, tr.mood_passes), label=f"face #{tid}")
    if moody:
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "Fused mood was off", ha="center", va="center", transform=ax.transAxes)
    time_axis(ax)
    ax.set_ylabel("mood (-1 .. 1)")
    out["Fused mood"] = fig
    return out


def _summary_rows(info: SessionInfo, tracks: dict[int, _Track]) -> list[tuple[str, str]]:
    models = dataclasses.asdict(info.models)
    rows = [
        ("Started", info.started_at or "?"),
        ("Duration", f"{info.duration_s or 0:.1f} s"),
        ("Source", info.source or "?"),
        ("Participant", info.participant or "-"),
        ("Condition", info.condition or "-"),
        ("Frames written", str(info.frames_written)),
        ("Frames dropped (recorder / engine)", f"{info.frames_dropped} / {info.engine_dropped}"),
        ("Faces (tracks)", str(len(tracks))),
        ("Models", ", ".join(f"{k}: {v}" for k, v in models.items() if v)),
        ("Recovered after a crash", "yes" if info.recovered else "no"),
    ]
    if info.error:
        rows.append(("Stopped by an error", info.error))
    return rows


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _segment_sections(table: SegmentTable, base_ms: float) -> list[str]:
    """One section per segment: a row per face (means, the emotion most often on top, blinks, mood), speech."""
    esc = html.escape
    head = "".join(f"<th>{e}</th>" for e in EMOTIONS)
    parts = [f"<h2>Segments (by {esc(table.by or 'none')})</h2>"]
    for seg in table.segments:
        span = f"{(seg.start_ms - base_ms) / 1000:.1f}-{(seg.end_ms - base_ms) / 1000:.1f} s"
        parts += [
            '<section class="segment">',
            f"<h3>Segment {seg.number}: {esc(seg.label or '(no label)')} ({span}, {esc(seg.origin)})</h3>",
            f"<table><tr><th>face</th><th>frames</th><th>seconds</th>{head}"
            "<th>most often on top</th><th>blinks/min</th><th>mood</th></tr>",
        ]
        for face in seg.faces:
            means = face.emotion_means or (None,) * len(EMOTIONS)
            top = "-"
            if face.top_shares:
                share, name = max(zip(face.top_shares, EMOTIONS, strict=True))
                top = f"{name} ({share:.0%})"
            cells = [
                "no face" if face.track_id is None else f"#{face.track_id}",
                str(face.frames),
                f"{face.seconds:.1f}",
                *(_num(m) for m in means),
                top,
                _num(face.blinks_per_min, 1),
                _num(face.mood),
            ]
            parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
        parts += ["</table>", f"<p>Words said: {seg.words}; mean sentiment: {_num(seg.sentiment)}</p>", "</section>"]
    return parts


def build_report(session_dir: Path, *, info: SessionInfo | None = None) -> Path:
    """Write ``report.html`` into a session (or ``analyze --out``) folder; its path.

    ``info`` is the session's info when it is newer than its session.json (a folder
    being finished). Raises ``SessionError`` for a folder ``load_session`` cannot read.
    """
    folder = Path(session_dir)
    session = load_session(folder, info=info)
    tracks, t0_ms = tracks_of(session.frames)
    utterances = session.transcript
    first_ms = session.info.first_frame_ms
    base_ms = t0_ms if t0_ms is not None else 0.0  # the tracks' time axis starts at the first row
    marks = [((m.time_ms - base_ms) / 1000.0, m.label) for m in session.markers]
    plots = _plots(tracks, utterances, first_ms if first_ms is not None else t0_ms, marks)
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Session {esc(folder.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
        "table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>Session {esc(folder.name)}</h1>",
        "<table>",
        *(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _summary_rows(session.info, tracks)),
        "</table>",
    ]
    for title, png in plots.items():
        parts += [f"<h2>{esc(title)}</h2>", f'<img alt="{esc(title)}" src="data:image/png;base64,{png}">']
    parts += _segment_sections(segments(session, "markers"), t0_ms if t0_ms is not None else 0.0)
    parts.append("<h2>Transcript</h2>")
    if utterances:
        parts.append("<table><tr><th>time (s)</th><th>text</th><th>sentiment</th></tr>")
        base = t0_ms if t0_ms is not None else 0.0
        for u in utterances:
            start_s = (u.start_ms - base) / 1000.0
            label = u.sentiment.label if u.sentiment is not None else ""
            parts.append(f"<tr><td>{start_s:.1f}</td><td>{esc(u.text)}</td><td>{esc(label)}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No speech was recorded.</p>")
    parts.append("</body></html>\n")
    path = folder / REPORT_FILE
    tmp = folder / f".{REPORT_FILE}.tmp"
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
