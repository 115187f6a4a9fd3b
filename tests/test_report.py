"""report.html: self-contained plots from frames.csv, transcript.jsonl and session.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from facial_emotion.session.load import load_session
from facial_emotion.session.report import blink_rate, broken, build_report, figures, segment_starts, tracks_of
from facial_emotion.session.tables import FRAME_COLUMNS, frame_rows
from facial_emotion.types import Box, EmotionScores, Face, Frame, FrameResult


def _write_session(folder: Path, *, faces: bool = True, speech: bool = True) -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    lines = [",".join(FRAME_COLUMNS)]
    for i in range(300):  # 10 s at 30 fps, two faces; face 2 turns happy halfway
        found = []
        if faces:
            sad = (0.05, 0.05, 0.05, 0.05, 0.6, 0.1, 0.1)
            happy = (0.02, 0.02, 0.02, 0.8, 0.04, 0.05, 0.05)
            found = [
                Face(Box(0, 0, 10, 10), 1, emotion=EmotionScores(sad), blinks=i // 60, mood=-0.4),
                Face(Box(20, 0, 30, 10), 2, emotion=EmotionScores(happy if i > 150 else sad), blinks=i // 30),
            ]
        for row in frame_rows(FrameResult(Frame(image, i, 1000.0 + i * 33.3), tuple(found))):
            lines.append(",".join(str(row[c]) for c in FRAME_COLUMNS))
    (folder / "frames.csv").write_text("\n".join(lines) + "\n")
    utterances = [
        {"text": "I <love> this", "start_ms": 2000, "end_ms": 3000, "words": [], "sentiment": 0.7, "label": "positive"},
        {"text": "not great", "start_ms": 6000, "end_ms": 7000, "words": [], "sentiment": -0.5, "label": "negative"},
    ]
    (folder / "transcript.jsonl").write_text("".join(json.dumps(u) + "\n" for u in utterances) if speech else "")
    session = {"started_at": "2026-11-24T08:15:02+00:00", "duration_s": 10.0, "source": "camera 0", "finished": True}
    (folder / "session.json").write_text(json.dumps(session))


def _decoded_pngs(html: str) -> list[bytes]:
    import base64

    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def test_report_embeds_every_plot_and_the_transcript(tmp_path: Path) -> None:
    _write_session(tmp_path)
    html = build_report(tmp_path).read_text()
    pngs = _decoded_pngs(html)
    assert len(pngs) == 5 and all(p.startswith(b"\x89PNG") and len(p) > 5000 for p in pngs)
    for title in ("Emotion timeline per face", "Emotion shares", "Blink rate", "Speech sentiment", "Fused mood"):
        assert title in html
    assert "I &lt;love&gt; this" in html and "<love>" not in html
    assert "camera 0" in html and "10.0 s" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "nothing is fetched from the network"


def test_report_of_a_session_without_faces_or_speech_says_so(tmp_path: Path) -> None:
    _write_session(tmp_path, faces=False, speech=False)
    html = build_report(tmp_path).read_text()
    assert len(_decoded_pngs(html)) == 5
    assert "No speech was recorded" in html
    assert "Faces (tracks)</th><td>0<" in html


def test_report_of_an_analyze_folder_uses_its_summary(tmp_path: Path) -> None:
    _write_session(tmp_path, speech=False)
    (tmp_path / "session.json").unlink()
    (tmp_path / "transcript.jsonl").unlink()
    (tmp_path / "summary.json").write_text(json.dumps({"input": "clip.mp4", "frames": 300}))
    html = build_report(tmp_path).read_text()
    assert len(_decoded_pngs(html)) == 5 and "Faces (tracks)</th><td>2<" in html


def test_blink_rate_counts_blinks_per_minute_over_the_window() -> None:
    t_s = np.arange(0, 120, 1.0)
    blinks = np.floor(t_s / 4)  # one blink every 4 s = 15 per minute
    rate = blink_rate(t_s, blinks, window_s=30.0)
    assert np.allclose(rate[40:], 15.0, atol=2.1)
    assert rate[0] == 0.0


def _looped_table(folder: Path, *, monotonic: bool) -> None:
    """58.7 s: a 19.57 s video played three times; one blink every 4 s, counted per pass.

    monotonic=False is the table older recordings hold (times back at 0 on every loop,
    no pass column); True is what the recorder writes now.
    """
    image = np.zeros((4, 4, 3), np.uint8)
    columns = [c for c in FRAME_COLUMNS if monotonic or c != "pass"]
    lines = [",".join(columns)]
    per_pass = 587
    for k in range(3 * per_pass):
        p, i = divmod(k, per_pass)
        local_s = i / 30.0
        if 8.0 <= local_s < 10.0:
            continue  # the face left for 2 s in every pass
        t_ms = (k if monotonic else i) * 1000.0 / 30.0
        face = Face(
            Box(0, 0, 10, 10), 1, emotion=EmotionScores((0.1,) * 6 + (0.4,)), blinks=int(local_s // 4), mood=0.2
        )
        frame = Frame(image, k if monotonic else i, t_ms, p if monotonic else 0)
        for row in frame_rows(FrameResult(frame, (face,))):
            lines.append(",".join(str(row[c]) for c in columns))
    (folder / "frames.csv").write_text("\n".join(lines) + "\n")


def _line_breaks(y: np.ndarray) -> int:
    return int(np.isnan(np.asarray(y, dtype=float)).sum())


@pytest.mark.parametrize("monotonic", [True, False], ids=["pass-column", "old-table"])
def test_report_of_a_looped_session_runs_on_session_time_and_breaks_lines(tmp_path: Path, monotonic: bool) -> None:
    _looped_table(tmp_path, monotonic=monotonic)
    tracks, _ = tracks_of(load_session(tmp_path).frames)
    track = tracks[1]
    assert np.all(np.diff(track.t_s) > 0) and track.t_s[-1] == pytest.approx(58.63, abs=0.1)
    assert sorted(set(track.passes)) == [0, 1, 2]
    figs = figures(tracks, [], None)
    for title in ("Emotion timeline per face", "Blink rate over time", "Fused mood"):
        ax = figs[title].axes[-1]
        assert ax.get_xlim()[1] >= 58.6, f"{title}: the whole session on the axis"
    (blink_line,) = figs["Blink rate over time"].axes[0].get_lines()
    mood_line = figs["Fused mood"].axes[0].get_lines()[0]  # then the zero line
    assert _line_breaks(blink_line.get_ydata()) == _line_breaks(mood_line.get_ydata()) == 5  # 3 gaps + 2 passes
    rates = np.asarray(blink_line.get_ydata(), dtype=float)
    assert np.nanmax(rates) <= 16.0, "one blink every 4 s is 15 a minute, never 70"
    stack = figs["Emotion timeline per face"].axes[0].collections
    assert all(len(c.get_paths()) == 6 for c in stack), "the timeline breaks where the lines do"
    assert build_report(tmp_path).read_text().count("data:image/png;base64,") == 5


def test_segments_start_at_passes_and_gaps() -> None:
    t = np.array([0.0, 0.1, 0.2, 2.0, 2.1, 2.2, 2.3])
    passes = np.array([0, 0, 0, 0, 0, 1, 1])
    starts = segment_starts(t, passes)
    assert starts.tolist() == [0, 3, 5]
    bt, bv = broken(t, np.arange(7.0), starts)
    assert np.isnan(bt).sum() == 2 and np.isnan(bv).sum() == 2
