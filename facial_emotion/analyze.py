"""Headless analysis of a video, an image or an image folder into frames.csv, video and summary."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from facial_emotion import __version__
from facial_emotion.pipeline import Pipeline
from facial_emotion.settings import Settings
from facial_emotion.sources import (
    FrameSource,
    ImageFolderSource,
    ImageSource,
    SourceError,
    VideoFileSource,
    open_source,
)
from facial_emotion.tables import FrameTableWriter
from facial_emotion.types import EMOTIONS, FrameResult, Utterance

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]


class AnalysisError(RuntimeError):
    """The input could not be analysed at all (nothing was written but the message)."""


@dataclasses.dataclass(slots=True)
class _TrackStats:
    frames: int = 0
    emotions: Counter[str] = dataclasses.field(default_factory=Counter)
    blinks: int = 0
    first_ms: float = 0.0
    last_ms: float = 0.0


class AnnotatedOutput:
    """Where annotated frames go: an .mp4 for videos, image files for stills."""

    def __init__(self, out_dir: Path, source: FrameSource) -> None:
        self.source = source
        self.out_dir = out_dir
        self._writer: cv2.VideoWriter | None = None
        self.path: Path | None = None
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        """Write one annotated frame."""
        image = result.annotated if result.annotated is not None else result.frame.image
        if isinstance(self.source, ImageSource):
            self.path = self.out_dir / f"annotated{Path(self.source.name).suffix or '.png'}"
            cv2.imwrite(str(self.path), image)
        elif isinstance(self.source, ImageFolderSource):
            self.path = self.out_dir / "annotated"
            self.path.mkdir(exist_ok=True)
            current = self.source.current_path
            cv2.imwrite(str(self.path / (current.name if current else f"{result.frame.index:06d}.png")), image)
        else:
            if self._writer is None:
                self.path = self.out_dir / "annotated.mp4"
                height, width = image.shape[:2]
                fps = self.source.fps or 30.0
                self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                if not self._writer.isOpened():
                    raise OSError(f"cannot write video {self.path}")
            self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the video file so it plays."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def transcribe_into(
    input_path: Path, out_dir: Path, *, engine: str, vosk_model: str | None
) -> tuple[list[Utterance], dict[str, Any]]:
    """Transcribe the audio track into transcript.jsonl; the utterances and a summary of it.

    A file without sound, or no usable engine, gives no utterances and says why.
    """
    from facial_emotion.speech.transcribe import TranscriptionError, transcribe_file, utterance_to_json

    try:
        utterances = transcribe_file(input_path, engine=engine, vosk_model=vosk_model)
    except TranscriptionError as exc:
        return [], {"utterances": 0, "error": str(exc)}
    with open(out_dir / "transcript.jsonl", "w") as handle:
        for utterance in utterances:
            handle.write(json.dumps(utterance_to_json(utterance)) + "\n")
    return utterances, {"utterances": len(utterances), "error": None, "engine": engine}


def analyze(
    input_path: str | Path,
    out_dir: Path,
    *,
    settings: Settings | None = None,
    write_video: bool = True,
    progress: ProgressFn | None = None,
    pipeline: Pipeline | None = None,
    speech: bool = True,
    speech_engine: str = "auto",
    vosk_model: str | None = None,
) -> dict[str, Any]:
    """Analyse a file or folder; writes frames.csv, annotated output, summary.json and more.

    For a video with sound, the speech is transcribed first (``transcript.jsonl``) and
    fused with each face's emotions into the ``mood`` column. A source that breaks off
    midway keeps everything processed so far: the files are closed properly and
    summary.json says ``complete: false`` with the reason. Raises AnalysisError when
    the input cannot be opened at all.
    """
    settings = settings or Settings()
    try:
        source = open_source(Path(input_path))
    except SourceError as exc:
        raise AnalysisError(str(exc)) from exc
    if source.live:
        source.close()
        raise AnalysisError("analyze works on files; open a camera in the app instead")
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(source, ImageSource | ImageFolderSource) and settings.detect_width_px == Settings().detect_width_px:
        # Stills are analysed once, so spend the time: full resolution, small faces found too.
        settings = settings.replace(detect_width_px=None, upsample=1, detect_every=1)
    speech_info: dict[str, Any] = {"utterances": 0, "error": "speech off"}
    fuser = None
    if isinstance(source, VideoFileSource) and speech:
        utterances, speech_info = transcribe_into(
            Path(input_path), out_dir, engine=speech_engine, vosk_model=vosk_model
        )
    else:
        utterances = []
    if settings.emotion is not None:
        from facial_emotion.fusion import MoodFuser

        fuser = MoodFuser()
        for utterance in utterances:
            fuser.add_utterance(utterance)  # an utterance counts only from its start onwards
    pipe = pipeline or Pipeline(settings, annotate=write_video)
    pipe.mood = fuser
    pipe.reset()
    table = FrameTableWriter(out_dir / "frames.csv")
    video = AnnotatedOutput(out_dir, source) if write_video else None
    tracks: dict[int, _TrackStats] = defaultdict(_TrackStats)
    frames = 0
    error: str | None = None
    started = time.perf_counter()
    processing_s = 0.0
    try:
        while True:
            try:
                frame = source.read()
            except SourceError as exc:
                error = str(exc)
                break
            if frame is None:
                break
            t0 = time.perf_counter()
            result = pipe.process(frame)
            processing_s += time.perf_counter() - t0
            table.write(result)
            if video is not None:
                video.write(result)
            for face in result.faces:
                stats = tracks[face.track_id]
                if stats.frames == 0:
                    stats.first_ms = frame.timestamp_ms
                stats.frames += 1
                stats.last_ms = frame.timestamp_ms
                stats.blinks = face.blinks
                if face.emotion is not None:
                    stats.emotions[face.emotion.top] += 1
            frames += 1
            if progress is not None:
                progress(frames, source.frame_count)
    finally:
        table.close()
        if video is not None:
            video.close()
        source.close()
    wall_s = time.perf_counter() - started
    summary = {
        "input": str(input_path),
        "version": __version__,
        "complete": error is None,
        "error": error,
        "frames": frames,
        "frames_expected": source.frame_count,
        "fps": source.fps,
        "rows": table.rows,
        "processing_fps": round(frames / processing_s, 2) if processing_s > 0 else None,
        "wall_fps": round(frames / wall_s, 2) if wall_s > 0 else None,
        "tracks": {
            str(tid): {
                "frames": s.frames,
                "first_ms": round(s.first_ms, 1),
                "last_ms": round(s.last_ms, 1),
                "blinks": s.blinks,
                "emotion_shares": {
                    name: round(s.emotions[name] / max(sum(s.emotions.values()), 1), 4) for name in EMOTIONS
                }
                if s.emotions
                else {},
            }
            for tid, s in sorted(tracks.items())
        },
        "blinks": sum(s.blinks for s in tracks.values()),
        "speech": speech_info,
        "outputs": {
            "frames_csv": "frames.csv",
            "annotated": str(video.path.relative_to(out_dir)) if video and video.path else None,
        },
        "models": {"detector": settings.detector, "landmarks": settings.landmarks, "emotion": settings.emotion},
        "model_errors": dict(pipe.load_errors),
    }
    if isinstance(source, ImageFolderSource):
        summary["files"] = [p.name for p in source.paths if p not in source.skipped]
        summary["skipped_files"] = [p.name for p in source.skipped]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_session_layout(out_dir, summary, settings, wall_s)
    return summary


def write_session_layout(out_dir: Path, summary: dict[str, Any], settings: Settings, wall_s: float) -> None:
    """Make the folder read like a recorded session: session.json, video.mp4, report.html.

    ``video.mp4`` is a hard link to ``annotated.mp4`` (one file on disk, two names).
    A report that cannot be built is a warning, not a failed analysis.
    """
    from datetime import datetime

    from facial_emotion.recording import library_versions

    annotated = out_dir / "annotated.mp4"
    video = out_dir / "video.mp4"
    if annotated.is_file():
        video.unlink(missing_ok=True)
        try:
            os.link(annotated, video)
        except OSError:
            shutil.copyfile(annotated, video)
    duration_s = (summary["frames"] / summary["fps"]) if summary.get("fps") else None
    session = {
        "format": 1,
        "name": out_dir.name,
        "kind": "analysis",
        "started_at": datetime.now().isoformat(timespec="seconds"),
        "finished": True,
        "recovered": False,
        "complete": summary["complete"],
        "error": summary["error"],
        "source": summary["input"],
        "duration_s": duration_s,
        "frames": summary["frames"],
        "dropped_frames": 0,
        "processing_s": round(wall_s, 3),
        "models": summary["models"],
        "versions": library_versions(),
        "settings": dataclasses.asdict(settings),
    }
    (out_dir / "session.json").write_text(json.dumps(session, indent=2) + "\n")
    try:
        from facial_emotion.report import build_report

        build_report(out_dir)
    except Exception as exc:  # the data files are what matter; say why the report is missing
        log.warning("could not build report.html in %s: %s", out_dir, exc)
