"""Headless analysis of a video, an image or an image folder into frames.csv, video and summary."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facial_emotion import __version__
from facial_emotion.pipeline import Pipeline
from facial_emotion.session.annotated import AnnotatedOutput
from facial_emotion.session.files import (
    ANNOTATED_VIDEO_FILE,
    FRAMES_FILE,
    SUMMARY_FILE,
    TRANSCRIPT_FILE,
    VIDEO_FILE,
)
from facial_emotion.session.info import write_session_info
from facial_emotion.session.schema import ModelNames, SessionInfo, library_versions
from facial_emotion.session.summary import SummaryFile
from facial_emotion.session.tables import FrameTableWriter
from facial_emotion.session.transcript import TranscriptWriter
from facial_emotion.settings import Settings
from facial_emotion.sources import (
    ImageFolderSource,
    ImageSource,
    SourceError,
    VideoFileSource,
    open_source,
)
from facial_emotion.types import EMOTIONS, Utterance

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]
INTERRUPTED = "interrupted"


class AnalysisError(RuntimeError):
    """The input could not be analysed at all (nothing was written but the message)."""


@dataclasses.dataclass(slots=True)
class _TrackStats:
    frames: int = 0
    emotions: Counter[str] = dataclasses.field(default_factory=Counter)
    blinks: int = 0
    first_ms: float = 0.0
    last_ms: float = 0.0


def transcribe_into(
    input_path: Path, out_dir: Path, *, engine: str, vosk_model: str | None
) -> tuple[list[Utterance], dict[str, Any]]:
    """Transcribe the audio track into transcript.jsonl; the utterances and a summary of it.

    A file without sound, or no usable engine, gives no utterances and says why.
    """
    from facial_emotion.speech.transcribe import TranscriptionError, transcribe_file

    try:
        utterances = transcribe_file(input_path, engine=engine, vosk_model=vosk_model)
    except TranscriptionError as exc:
        return [], {"utterances": 0, "error": str(exc)}
    writer = TranscriptWriter(out_dir / TRANSCRIPT_FILE)
    try:
        for utterance in utterances:
            writer.write(utterance)
    finally:
        writer.close()
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
        source = open_source(Path(input_path), verify=True)
    except SourceError as exc:
        raise AnalysisError(str(exc)) from exc
    if source.live:
        source.close()
        raise AnalysisError("analyze works on files; open a camera in the app instead")
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(source, ImageSource | ImageFolderSource):
        settings = settings.for_stills()  # the same rule as the app's for stills
    try:
        placeholder = {"input": str(input_path), "version": __version__, "complete": False}
        placeholder["error"] = "the analysis did not finish (stopped, crashed, or still running)"
        summary_file = SummaryFile(out_dir / SUMMARY_FILE, placeholder)
    except OSError:
        source.close()
        raise
    speech_info: dict[str, Any] = {"utterances": 0, "error": "speech off"}
    fuser = None
    utterances: list[Utterance] = []
    if isinstance(source, VideoFileSource) and speech:
        try:
            utterances, speech_info = transcribe_into(
                Path(input_path), out_dir, engine=speech_engine, vosk_model=vosk_model
            )
        except KeyboardInterrupt:
            source.close()
            summary_file.write({**placeholder, "error": INTERRUPTED, "frames": 0, "frames_skipped": 0})
            raise
    if settings.emotion is not None:
        from facial_emotion.fusion import MoodFuser

        fuser = MoodFuser()
        for utterance in utterances:
            fuser.add_utterance(utterance)  # an utterance counts only from its start onwards
    pipe = pipeline or Pipeline(settings, annotate=write_video)
    pipe.mood = fuser
    pipe.reset()
    tracks: dict[int, _TrackStats] = defaultdict(_TrackStats)
    frames = 0
    error: str | None = None
    stop: BaseException | None = None  # raised again once summary.json is written
    started = time.perf_counter()
    processing_s = 0.0
    table: FrameTableWriter | None = None
    video = AnnotatedOutput(out_dir, source) if write_video else None
    try:
        table = FrameTableWriter(out_dir / FRAMES_FILE)
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
            placed = video.place(result) if video is not None else None
            first, repeats = placed if placed is not None else (None, None)
            table.write(result, video_frame=first, video_repeats=repeats)
            if video is not None:
                video.write(result, placed)
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
    except KeyboardInterrupt as exc:
        error, stop = INTERRUPTED, exc
    except OSError as exc:
        error, stop = f"cannot write results: {exc.strerror or exc}", exc
    finally:
        for close in (table.close if table else None, video.close if video else None, source.close):
            try:
                if close is not None:
                    close()
            except OSError as exc:
                if stop is None:
                    error, stop = f"cannot write results: {exc.strerror or exc}", exc
                log.error("while closing %s: %s", out_dir, exc)
    skipped = source.skipped if isinstance(source, VideoFileSource) else 0  # a folder lists its own
    if error is None and skipped:
        error = f"{skipped} unreadable frame(s) of {source.name} were skipped (damaged packets)"
    wall_s = time.perf_counter() - started
    summary = {
        "input": str(input_path),
        "version": __version__,
        "complete": error is None,
        "error": error,
        "frames": frames,
        "frames_skipped": skipped,
        "frames_expected": source.frame_count,
        "fps": source.fps,
        "rows": table.rows if table else 0,
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
            "frames_csv": FRAMES_FILE,
            "annotated": str(video.path.relative_to(out_dir)) if video and video.path else None,
            "video_frames": video.frames if video and video.path and video.path.suffix == ".mp4" else None,
        },
        "models": {"detector": settings.detector, "landmarks": settings.landmarks, "emotion": settings.emotion},
        "model_errors": dict(pipe.load_errors),
    }
    if isinstance(source, ImageFolderSource):
        summary["files"] = [p.name for p in source.paths if p not in source.skipped]
        summary["skipped_files"] = [p.name for p in source.skipped]
    summary_file.write(summary)
    try:
        write_session_layout(out_dir, summary, settings, wall_s, report=stop is None, frames_skipped=skipped)
    except OSError as exc:
        if stop is None:
            raise
        log.warning("could not write session.json in %s: %s", out_dir, exc)
    if stop is not None:
        raise stop
    return summary


def write_session_layout(
    out_dir: Path,
    summary: dict[str, Any],
    settings: Settings,
    wall_s: float,
    *,
    report: bool = True,
    frames_skipped: int = 0,
) -> SessionInfo:
    """Make the folder read like a recorded session: session.json, video.mp4, report.html.

    ``video.mp4`` is a hard link to ``annotated.mp4`` (one file on disk, two names).
    A report that cannot be built is a warning, not a failed analysis.
    """
    from datetime import datetime

    annotated = out_dir / ANNOTATED_VIDEO_FILE
    video = out_dir / VIDEO_FILE
    if annotated.is_file():
        video.unlink(missing_ok=True)
        try:
            os.link(annotated, video)
        except OSError:
            shutil.copyfile(annotated, video)
    fps = summary.get("fps")
    info = SessionInfo(
        name=out_dir.name,
        kind="analysis",
        started_at=datetime.now().isoformat(timespec="seconds"),
        finished=True,
        complete=summary["complete"],
        error=summary["error"],
        source=summary["input"],
        duration_s=(summary["frames"] / fps) if fps else None,
        fps=fps,
        frames_received=summary["frames"],
        frames_written=summary["frames"],
        frames_skipped=frames_skipped,
        rows=summary.get("rows", 0),
        video_frames=summary["outputs"].get("video_frames") or 0,
        utterances=summary.get("speech", {}).get("utterances", 0),
        processing_s=round(wall_s, 3),
        models=ModelNames.of(settings),
        versions=library_versions(),
        settings=settings,
    )
    write_session_info(out_dir, info)
    if report:
        try:
            from facial_emotion.session.report import build_report

            build_report(out_dir, info=info)
        except Exception as exc:  # the data files are what matter; say why the report is missing
            log.warning("could not build report.html in %s: %s", out_dir, exc)
    return info
