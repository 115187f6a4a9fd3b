"""report.html: self-contained plots from frames.csv, transcript.jsonl and session.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from facial_emotion.report import blink_rate, build_report
from facial_emotion.tables import FRAME_COLUMNS, frame_rows
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
