"""The names of the files in a session folder; every other module takes them from here."""

from __future__ import annotations

from typing import Final

SESSION_FILE: Final = "session.json"
"""What the session was (``SessionInfo``): written at the start, again when it ends."""
FRAMES_FILE: Final = "frames.csv"
"""A row per face per frame (``tables.FRAME_COLUMNS``)."""
TRANSCRIPT_FILE: Final = "transcript.jsonl"
"""One final utterance per line."""
MARKERS_FILE: Final = "markers.csv"
"""Moments the user marked: time_ms, label, origin."""
AUDIO_FILE: Final = "audio.wav"
VIDEO_FILE: Final = "video.mp4"
"""The annotated video (for ``analyze --out``, a hard link to ``annotated.mp4``)."""
CLEAN_VIDEO_FILE: Final = "video_clean.mp4"
"""The video without overlays, written with the same frame repeats as ``video.mp4``."""
ANNOTATED_VIDEO_FILE: Final = "annotated.mp4"
"""``analyze`` of a video: the annotated frames."""
ANNOTATED_STEM: Final = "annotated"
"""``analyze`` of a still: ``annotated.<ext>``; of an image folder: the folder ``annotated/``."""
SUMMARY_FILE: Final = "summary.json"
"""``analyze``'s own summary (tracks, speech, outputs)."""
REPORT_FILE: Final = "report.html"
RECORDING_MARK_FILE: Final = ".recording"
"""Names the process recording into the folder (its PID and start time) until it is finished."""
