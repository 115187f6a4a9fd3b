"""``analyze`` on a video with real speech: transcript on the video's clock, fused mood column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from facial_emotion.cli import main

from .conftest import TALKING_DELAY_MS as DELAY_MS


def test_analyze_writes_aligned_transcript_and_mood(
    talking_video: Path, tmp_path: Path, tiny_emotion_model: Path
) -> None:
    out = tmp_path / "out"
    assert (
        main(
            [
                "analyze",
                str(talking_video),
                "--out",
                str(out),
                "--model",
                str(tiny_emotion_model),
                "--engine",
                "pocketsphinx",
                "--no-video",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    words = [w for u in lines for w in u["words"]]
    said = {w["text"] for w in words}
    assert {"happy", "wonderful"} & said, said
    assert DELAY_MS - 300 <= words[0]["start_ms"] <= DELAY_MS + 800
    assert all(u["sentiment"] > 0.3 and u["label"] == "positive" for u in lines if "happy" in u["text"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["speech"]["utterances"] == len(lines) >= 1
    with open(out / "frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == summary["frames"] == 472
    assert all(r["mood"] != "" for r in rows)
    start = lines[0]["start_ms"]
    before = [float(r["mood"]) for r in rows if float(r["timestamp_ms"]) < start]
    after = [float(r["mood"]) for r in rows if start + 500 <= float(r["timestamp_ms"]) <= start + 4000]
    # positive words pull the fused mood up from the face-only level before them
    assert sum(after) / len(after) > sum(before) / len(before) + 0.1
