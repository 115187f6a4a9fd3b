"""Recording a live session to a folder named by its start time.

The engine calls ``SessionRecorder.add_result`` on its inference thread for every
frame; that only puts the result on a bounded queue (a full queue counts a dropped
frame, the live view never waits). One recorder thread does every write: the
annotated (and optionally clean) video through an ``ffmpeg`` pipe as fragmented mp4
that stays playable up to a crash, ``frames.csv`` a frame at a time, ``audio.wav``,
``transcript.jsonl``. A write error (a full disk) stops the recording with a message
and keeps what was written, and ``session.json`` says why (``stop_reason``);
``stop()`` finishes the folder (see ``session.finish``).

``start()`` creates the folder at once with an exclusive ``mkdir`` (``-2``, ``-3``, …
on a collision), so two recorders started in the same second, in one process or
two, never share a folder.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from facial_emotion.session.finish import finish_session
from facial_emotion.session.info import SESSION_RESERVE_BYTES, write_session_info
from facial_emotion.session.mark import mark_active, write_mark
from facial_emotion.session.markers import Marker
from facial_emotion.session.schema import (
    STOP_DISK_FULL,
    STOP_WRITE_ERROR,
    ModelNames,
    SessionInfo,
    library_versions,
    study_text,
)
from facial_emotion.session.writers import SessionWriter
from facial_emotion.settings import Settings
from facial_emotion.types import FrameResult, Utterance

log = logging.getLogger(__name__)

QUEUE_FRAMES: Final = 64
QUEUE_BYTES: Final = 384 * 2**20
AUX_QUEUE_ITEMS: Final = 4096
FLUSH_EVERY_S: Final = 1.0
MIN_FREE_BYTES: Final = 64 * 2**20
"""Below this much free space the recording stops before the disk is full."""
MAX_NAME_SUFFIX: Final = 1000

WriterFactory = Callable[..., SessionWriter]


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """What the status bar shows about a recording."""

    written: int
    dropped: int
    error: str | None
    elapsed_s: float
    recording: bool
    queued_bytes: int = 0
    """Image bytes waiting for the writer now (bounded: a full queue drops frames)."""


def session_name(when: datetime | None = None) -> str:
    """A folder name from a start time, e.g. ``2026-11-24_08-15-02``."""
    return (when or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")


class SessionRecorder:
    """Records results, audio and utterances into one session folder on its own thread."""

    def __init__(
        self,
        root: Path,
        *,
        settings: Settings | None = None,
        clean_video: bool | None = None,
        fps: float | None = None,
        source_name: str = "",
        on_error: Callable[[str], None] | None = None,
        queue_frames: int = QUEUE_FRAMES,
        min_free_bytes: int = MIN_FREE_BYTES,
        writer_factory: WriterFactory = SessionWriter,
        lossless: bool = False,
        participant: str | None = None,
        condition: str | None = None,
    ) -> None:
        """``participant`` and ``condition`` go into session.json (``study_text``: ValueError if too long)."""
        self.root = Path(root).expanduser()
        self.participant = study_text(participant, "participant")
        self.condition = study_text(condition, "condition")
        self.settings = settings or Settings()
        self.clean_video = self.settings.record_clean_video if clean_video is None else clean_video
        self.fps = fps
        self.source_name = source_name
        self.on_error = on_error
        self.min_free_bytes = min_free_bytes
        self.lossless = lossless
        """Wait for the writer instead of dropping (headless runs of files; never live)."""
        self._writer_factory = writer_factory
        self._frames: queue.Queue[FrameResult] = queue.Queue(maxsize=queue_frames)
        self._aux: queue.Queue[tuple[str, Any, float]] = queue.Queue(maxsize=AUX_QUEUE_ITEMS)
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        self._accepting = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.folder: Path | None = None
        self.info = SessionInfo()
        """What session.json says; replaced (never changed in place) under ``_info_lock``."""
        self._info_lock = threading.Lock()
        self.received = 0
        self.written = 0
        self.dropped = 0
        self.aux_dropped = 0
        self.error: str | None = None
        self._t0 = 0.0
        self._t_end: float | None = None
        self._opened = False
        self._created = False

    # -- any thread ------------------------------------------------------------------

    def start(self, *, extra_info: dict[str, Any] | None = None) -> Path:
        """Begin a session; returns its folder, created here with its ``.recording`` mark.

        ``extra_info`` sets more ``SessionInfo`` fields (``realtime``, ``engine_dropped``...;
        a key that is not a field raises TypeError). A folder that cannot be created (no
        permission, read-only media) does not raise: ``error`` says why at once, and the
        recorder thread ends without writing.
        """
        if self._thread is not None:
            raise RuntimeError("this recorder has already been started")
        if extra_info:
            dataclasses.replace(SessionInfo(), **extra_info)  # a key that is no field raises before a folder is made
        now = datetime.now().astimezone()
        folder = self.root / session_name(now)
        failure: str | None = None
        try:
            folder = self._create_folder(session_name(now))
        except OSError as exc:
            failure = f"cannot create a session folder in {self.root}: {exc.strerror or exc}"
            folder = self.folder or folder  # the one made before the marker failed, if any
        self.folder = folder
        mark_active(folder, True)
        self.info = dataclasses.replace(
            SessionInfo(
                name=folder.name,
                kind="recording",
                started_at=now.isoformat(timespec="seconds"),
                started_epoch_s=round(time.time(), 3),
                source=self.source_name,
                participant=self.participant,
                condition=self.condition,
                clean_video=self.clean_video,
                models=ModelNames.of(self.settings),
                versions=library_versions(),
                settings=self.settings,
                pid=os.getpid(),
            ),
            **(extra_info or {}),
        )
        self._t0 = time.monotonic()
        if failure is not None:
            self._fail(failure, STOP_WRITE_ERROR)
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="fe-recorder", daemon=True)
        self._thread.start()
        return folder

    def add_result(self, result: FrameResult) -> None:
        """Queue one frame for writing; never blocks (a full queue counts a drop) unless lossless."""
        if not self._accepting:
            return
        self.received += 1
        size = self._size(result)
        with self._bytes_lock:
            if self._queued_bytes + size > QUEUE_BYTES and not self.lossless:
                self.dropped += 1
                return
            self._queued_bytes += size
        while True:
            try:
                self._frames.put(result, timeout=0.1) if self.lossless else self._frames.put_nowait(result)
                return
            except queue.Full:
                if self.lossless and self._accepting:
                    continue
                with self._bytes_lock:
                    self._queued_bytes -= size
                self.dropped += 1
                return

    def _size(self, result: FrameResult) -> int:
        return result.frame.image.nbytes * (2 if self.clean_video and result.annotated is not None else 1)

    def add_audio(self, chunk: bytes, t_ms: float) -> None:
        """Queue 16 kHz mono int16 PCM that starts at t_ms on the shared clock."""
        self._put_aux("audio", chunk, t_ms)

    def add_utterance(self, utterance: Utterance) -> None:
        """Queue a recognised utterance for transcript.jsonl (partial ones are skipped)."""
        if getattr(utterance, "final", True):
            self._put_aux("utterance", utterance, 0.0)

    def add_marker(self, marker: Marker) -> None:
        """Queue a marker for markers.csv; any thread, never blocks."""
        self._put_aux("marker", marker, marker.time_ms)

    def _put_aux(self, kind: str, payload: Any, t_ms: float) -> None:
        if not self._accepting:
            return
        try:
            self._aux.put_nowait((kind, payload, t_ms))
        except queue.Full:
            self.aux_dropped += 1

    def stats(self) -> RecorderStats:
        """Counters for the status bar."""
        end = self._t_end if self._t_end is not None else time.monotonic()
        return RecorderStats(
            written=self.written,
            dropped=self.dropped,
            error=self.error,
            elapsed_s=(end - self._t0) if self._thread is not None else 0.0,
            recording=self._accepting,
            queued_bytes=self._queued_bytes,
        )

    @property
    def done(self) -> bool:
        """True once the folder is finished (or the thread has ended)."""
        return self._thread is not None and not self._thread.is_alive()

    def request_stop(self, *, extra_info: dict[str, Any] | None = None) -> None:
        """Ask the recorder to finish; returns at once (the folder is finished on its thread)."""
        if extra_info:
            self._update_info(**extra_info)
        self._accepting = False
        if self._t_end is None:
            self._t_end = time.monotonic()
        self._stop.set()

    def stop(self, *, timeout_s: float = 60.0, extra_info: dict[str, Any] | None = None) -> Path:
        """Write everything queued, finish the folder (video, report, session.json); its path."""
        if self._thread is None or self.folder is None:
            raise RuntimeError("the recorder was not started")
        self.request_stop(extra_info=extra_info)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("recorder still finishing %s after %.0f s", self.folder, timeout_s)
        return self.folder

    def _update_info(self, **changes: Any) -> SessionInfo:
        with self._info_lock:
            self.info = dataclasses.replace(self.info, **changes)
            return self.info

    # -- recorder thread ----------------------------------------------------------------

    def _create_folder(self, name: str) -> Path:
        """mkdir the session folder exclusively (a suffix on collision) and mark it as ours."""
        self.root.mkdir(parents=True, exist_ok=True)
        for n in range(1, MAX_NAME_SUFFIX):
            folder = self.root / (name if n == 1 else f"{name}-{n}")
            try:
                os.mkdir(folder, 0o700)
            except FileExistsError:
                continue
            self.folder, self._created = folder, True
            folder.chmod(0o700)  # the umask may have cleared bits; sessions are private
            write_mark(folder)
            return folder
        raise OSError(errno.EEXIST, f"{MAX_NAME_SUFFIX} sessions named {name} already exist")

    def _fail(self, message: str, reason: str = STOP_WRITE_ERROR) -> None:
        if self.error is None:
            self.error = message
            self._update_info(error=message, stop_reason=reason)
            log.error("recording stopped: %s", message)
            self._accepting = False
            if self._t_end is None:
                self._t_end = time.monotonic()
            if self.folder is not None and self._opened:
                try:  # the reason is on disk now, even if finishing fails or is killed
                    write_session_info(self.folder, self.info)
                except OSError as exc:
                    log.error("cannot note the error in %s: %s", self.folder, exc.strerror or exc)
            if self.on_error is not None:
                try:
                    self.on_error(message)
                except Exception:
                    log.exception("recording error callback failed")

    def _open(self, folder: Path) -> SessionWriter:
        write_session_info(folder, self.info, reserve_bytes=SESSION_RESERVE_BYTES)
        self._opened = True
        return self._writer_factory(folder, fps=self.fps, clean_video=self.clean_video)

    def _run(self) -> None:
        assert self.folder is not None
        folder = self.folder
        writer: SessionWriter | None = None
        if self.error is None:
            try:
                writer = self._open(folder)
            except OSError as exc:
                self._fail(f"cannot write the session folder {folder}: {exc.strerror or exc}", self._reason(exc))
        last_flush = time.monotonic()
        while writer is not None:
            try:
                self._drain_aux(writer)
                try:
                    result = self._frames.get(timeout=0.1)
                except queue.Empty:
                    result = None
                if result is not None:
                    with self._bytes_lock:
                        self._queued_bytes -= self._size(result)
                    if self.error is None:
                        writer.write_result(result)
                        self.written += 1
                if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                    last_flush = time.monotonic()
                    writer.flush()
                    self._check_space(folder)
            except OSError as exc:
                self._fail(self._describe(exc), self._reason(exc))
            if (self._stop.is_set() and self._frames.empty()) or self.error is not None:
                self._drain_aux(writer, quiet=True)
                break
        self._finish(folder, writer)

    def _drain_aux(self, writer: SessionWriter, *, quiet: bool = False) -> None:
        while True:
            try:
                kind, payload, t_ms = self._aux.get_nowait()
            except queue.Empty:
                return
            if self.error is not None:
                continue
            try:
                if kind == "audio":
                    writer.write_audio(payload, t_ms)
                elif kind == "marker":
                    writer.write_marker(payload)
                else:
                    writer.write_utterance(payload)
            except OSError as exc:
                if not quiet:
                    raise
                self._fail(self._describe(exc), self._reason(exc))

    def _check_space(self, folder: Path) -> None:
        free = shutil.disk_usage(folder).free
        if free < self.min_free_bytes:
            raise OSError(errno.ENOSPC, f"only {free // 2**20} MiB left on the disk")

    @staticmethod
    def _reason(exc: OSError) -> str:
        return STOP_DISK_FULL if exc.errno in (errno.ENOSPC, errno.EDQUOT) else STOP_WRITE_ERROR

    def _describe(self, exc: OSError) -> str:
        if exc.errno == errno.ENOSPC:
            return f"the disk is full ({exc.strerror or exc}); everything up to now is kept in {self.folder}"
        return f"cannot write the recording to {self.folder}: {exc.strerror or exc}"

    def _finish(self, folder: Path, writer: SessionWriter | None) -> None:
        """Close the files and finish the folder; every step is tried despite earlier errors."""
        self._accepting = False
        if self._t_end is None:
            self._t_end = time.monotonic()
        if writer is not None:
            try:
                writer.close()
            except OSError as exc:
                self._fail(self._describe(exc), self._reason(exc))
            self._update_info(**writer.counts())
        # The session time the data covers: a file recorded faster than real time (record's
        # default) lasts as long as its frames say, not as long as the recording ran.
        span_s = writer.data_span_s() if writer is not None else None
        info = self._update_info(
            duration_s=round(span_s if span_s is not None else self._t_end - self._t0, 3),
            frames_received=self.received,
            frames_dropped=self.dropped,
            aux_dropped=self.aux_dropped,
            error=self.error,
        )
        try:
            if self._created and folder.is_dir():  # never a folder this recorder did not make
                info = finish_session(folder, info)
        except OSError as exc:
            log.error("cannot finish %s (the next start will): %s", folder, exc)
        finally:
            with self._info_lock:
                self.info = info
            mark_active(folder, False)
