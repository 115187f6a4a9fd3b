"""Headless analysis of a video, an image or an image folder into frames.csv, video and summary."""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
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
from facial_emotion.tables import FRAME_COLUMNS, frame_rows
from facial_emotion.types import EMOTIONS, FrameResult, Utterance

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]
SUMMARY_RESERVE_BYTES = 16 * 1024
"""Room kept for summary.json from the start, so that a full disk still gets one."""
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


class AnnotatedOutput:
    """Where annotated frames go: a fragmented .mp4 for videos, image files for stills.

    The video goes through the recorder's ``ffmpeg`` writer (a fragment a second), so
    a full disk or a kill leaves a file that plays up to its last fragment. Frames the
    source skipped repeat the previous image, so video frame n is still input frame n.
    """

    def __init__(self, out_dir: Path, source: FrameSource) -> None:
        self.source = source
        self.out_dir = out_dir
        self._writer: Any = None
        self.path: Path | None = None
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        """Write one annotated frame (OSError when it cannot be written)."""
        image = result.annotated if result.annotated is not None else result.frame.image
        if isinstance(self.source, ImageSource):
            self.path = self.out_dir / f"annotated{Path(self.source.name).suffix or '.png'}"
            _imwrite(self.path, image)
        elif isinstance(self.source, ImageFolderSource):
            self.path = self.out_dir / "annotated"
            self.path.mkdir(exist_ok=True)
            current = self.source.current_path
            _imwrite(self.path / (current.name if current else f"{result.frame.index:06d}.png"), image)
        else:
            if self._writer is None:
                self._open(image)
            repeats = max(1, result.frame.index + 1 - self.frames)
            if isinstance(self._writer, cv2.VideoWriter):
                for _ in range(repeats):
                    self._writer.write(image)
            else:
                self._writer.write(image, repeats)
            self.frames += repeats
            return
        self.frames += 1

    def _open(self, image: Any) -> None:
        from facial_emotion.recording_files import VideoPipeWriter

        self.path = self.out_dir / "annotated.mp4"
        height, width = image.shape[:2]
        fps = self.source.fps or 30.0
        try:
            self._writer = VideoPipeWriter(self.path, width=width, height=height, fps=fps)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            log.warning("%s; writing a plain mp4 with OpenCV instead", exc.strerror or exc)
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            if not self._writer.isOpened():
                raise OSError(f"cannot write video {self.path}") from exc

    def close(self) -> None:
        """Finish the video file so it plays (OSError when its end could not be written)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if isinstance(writer, cv2.VideoWriter):
            writer.release()
            return
        writer.close()  # raises OSError when ffmpeg could not write the end of the file


def _imwrite(path: Path, image: Any) -> None:
    if not cv2.imwrite(str(path), image):
        path.unlink(missing_ok=True)
        raise OSError(errno.EIO, f"cannot write image {path} (is the disk full?)")


class WholeRowTable:
    """frames.csv, each frame's rows written at once: a failed write is cut back to the last whole row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._size = 0
        self.rows = 0
        self._append((",".join(FRAME_COLUMNS) + "\r\n").encode())

    def write(self, result: FrameResult) -> None:
        """Append the rows of one frame, all or none."""
        rows = frame_rows(result)
        if not rows:
            return
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=FRAME_COLUMNS).writerows(rows)
        self._append(buf.getvalue().encode())
        self.rows += len(rows)

    def _append(self, data: bytes) -> None:
        view, done = memoryview(data), 0
        try:
            while done < len(view):
                written = os.write(self._fd, view[done:])
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += written
        except OSError:
            if done:
                os.ftruncate(self._fd, self._size)
                os.lseek(self._fd, self._size, os.SEEK_SET)
            raise
        self._size += len(data)

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class SummaryFile:
    """summary.json: a placeholder at the start (room kept), the real one at the end.

    Until the end it says ``complete: false`` (a killed run leaves that word). The end
    is written atomically; when the disk is full it goes into the room kept.
    """

    def __init__(self, path: Path, placeholder: dict[str, Any]) -> None:
        self.path = path
        text = (json.dumps(placeholder, indent=2) + "\n").encode()
        with open(path, "wb") as handle:
            handle.write(text + b" " * max(0, SUMMARY_RESERVE_BYTES - len(text)))

    def write(self, summary: dict[str, Any]) -> None:
        """Replace the placeholder with summary (the track table shortened if it must be)."""
        text = (json.dumps(summary, indent=2) + "\n").encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
            return
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if len(text) > SUMMARY_RESERVE_BYTES:
                short = {**summary, "tracks": {"omitted": f"{len(summary.get('tracks', {}))} tracks ({exc})"}}
                text = (json.dumps(short, indent=2) + "\n").encode()
            if len(text) > SUMMARY_RESERVE_BYTES:
                raise
        with open(self.path, "r+b") as handle:  # rewrites blocks the file already has
            handle.write(text)
            handle.truncate(len(text))


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
        summary_file = SummaryFile(out_dir / "summary.json", placeholder)
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
    table: WholeRowTable | None = None
    video = AnnotatedOutput(out_dir, source) if write_video else None
    try:
        table = WholeRowTable(out_dir / "frames.csv")
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
            "frames_csv": "frames.csv",
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
        write_session_layout(out_dir, summary, settings, wall_s, report=stop is None)
    except OSError as exc:
        if stop is None:
            raise
        log.warning("could not write session.json in %s: %s", out_dir, exc)
    if stop is not None:
        raise stop
    return summary


def write_session_layout(
    out_dir: Path, summary: dict[str, Any], settings: Settings, wall_s: float, *, report: bool = True
) -> None:
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
    if not report:
        return
    try:
        from facial_emotion.report import build_report

        build_report(out_dir)
    except Exception as exc:  # the data files are what matter; say why the report is missing
        log.warning("could not build report.html in %s: %s", out_dir, exc)
