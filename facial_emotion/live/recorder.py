"""Recording in a live session: start, stop, finish in the background, recover earlier crashes.

Every file is written by the recorder's own thread; this part only starts and stops
recorders and, from ``poll``, publishes when a stopped session is finished, when a
recording stopped by itself (a full disk) and which crashed sessions were recovered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from facial_emotion.engine import Engine
from facial_emotion.live.events import (
    LiveEvent,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    RecordingStopped,
    SessionsRecovered,
)
from facial_emotion.paths import user_data_dir
from facial_emotion.recording import RecorderStats, SessionRecorder
from facial_emotion.session.markers import Marker
from facial_emotion.session.recovery import recover_all
from facial_emotion.settings import Settings
from facial_emotion.types import Utterance

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S: Final[float] = 30.0


def default_sessions_dir(settings: Settings) -> Path:
    """Where sessions go: the record_dir setting, else the user's data folder."""
    custom = settings.record_dir
    return Path(custom).expanduser() if custom else user_data_dir() / "sessions"


class RecordingControl:
    """Starts and stops session recordings of one engine; at most one records at a time."""

    def __init__(
        self,
        engine: Engine,
        settings_getter: Callable[[], Settings],
        publish: Callable[[LiveEvent], None],
        *,
        record_dir: Path | None = None,
    ) -> None:
        self.engine = engine
        self._settings = settings_getter
        self._publish = publish
        self._record_dir = Path(record_dir).expanduser() if record_dir else None
        self.recorder: SessionRecorder | None = None
        self._finishing: list[SessionRecorder] = []
        self._error_reported = False
        self._dropped0 = 0
        self._recovered: list[Path] | None = None
        self._recovery: threading.Thread | None = None

    @property
    def sessions_dir(self) -> Path:
        """The folder that holds the sessions."""
        return self._record_dir or default_sessions_dir(self._settings())

    @property
    def recording(self) -> bool:
        """True while a recording is running."""
        return self.recorder is not None

    @property
    def busy(self) -> bool:
        """True while recording, finishing a stopped session, or recovering old ones."""
        recovering = self._recovery is not None and self._recovery.is_alive()
        return self.recording or bool(self._finishing) or recovering

    def stats(self) -> RecorderStats | None:
        """The running recording's counters (None when not recording)."""
        return self.recorder.stats() if self.recorder is not None else None

    def recover_in_background(self) -> None:
        """Finish the sessions an earlier crash left unfinished, on a helper thread."""
        if self._recovery is not None:
            return

        def work() -> None:
            try:
                self._recovered = recover_all(self.sessions_dir)
            except OSError as exc:
                log.error("cannot look for unfinished sessions: %s", exc)
                self._recovered = []

        self._recovery = threading.Thread(target=work, name="fe-recovery", daemon=True)
        self._recovery.start()

    def start(self, **recorder_options: Any) -> Path | None:
        """Start recording into a new session folder; its path (None if already recording).

        ``recorder_options`` go to ``SessionRecorder`` (fps, lossless, participant,
        condition, ...) besides the session's settings, clean-video choice and source.
        """
        if self.recorder is not None:
            return None
        settings = self._settings()
        extra_info = recorder_options.pop("extra_info", None)
        recorder = SessionRecorder(
            self.sessions_dir,
            settings=settings,
            clean_video=recorder_options.pop("clean_video", settings.record_clean_video),
            source_name=recorder_options.pop("source_name", settings.last_source or ""),
            **recorder_options,
        )
        self._dropped0 = self.engine.stats().dropped
        folder = recorder.start(extra_info=extra_info)
        self.engine.add_listener(recorder.add_result)
        self.recorder = recorder
        self._error_reported = False
        self._publish(RecordingStarted(folder))
        return folder

    def stop(self, *, extra_info: dict[str, Any] | None = None) -> Path | None:
        """Stop recording; the folder is finished in the background (``RecordingFinished``)."""
        recorder = self.recorder
        if recorder is None:
            return None
        self.engine.remove_listener(recorder.add_result)
        dropped = self.engine.stats().dropped - self._dropped0
        recorder.request_stop(extra_info={"engine_dropped": dropped, **(extra_info or {})})
        self.recorder = None
        self._finishing.append(recorder)
        assert recorder.folder is not None
        self._publish(RecordingStopped(recorder.folder))
        return recorder.folder

    def add_audio(self, chunk: bytes, t_ms: float) -> None:
        """PCM (16 kHz mono int16) for the running recording; any thread, never blocks."""
        recorder = self.recorder
        if recorder is not None:
            recorder.add_audio(chunk, t_ms)

    def add_utterance(self, utterance: Utterance) -> None:
        """A recognised utterance for the running recording's transcript; any thread."""
        recorder = self.recorder
        if recorder is not None:
            recorder.add_utterance(utterance)

    def add_marker(self, marker: Marker) -> Path | None:
        """A marker for the running recording's markers.csv; any thread; its folder (None when not recording)."""
        recorder = self.recorder
        if recorder is None:
            return None
        recorder.add_marker(marker)
        return recorder.folder

    def poll(self) -> None:
        """Publish a recording that failed, folders that are finished, sessions recovered."""
        recorder = self.recorder
        if recorder is not None:
            error = recorder.stats().error
            if error is not None and not self._error_reported:
                self._error_reported = True
                self.stop()
                self._publish(RecordingFailed(error))
        for done in [r for r in self._finishing if r.done]:
            self._finishing.remove(done)
            assert done.folder is not None
            self._publish(RecordingFinished(done.folder))
        if self._recovered is not None and self._recovery is not None and not self._recovery.is_alive():
            found, self._recovered = self._recovered, None
            if found:
                self._publish(SessionsRecovered(tuple(found)))

    def close(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Stop any recording and wait (bounded) for its folder and any recovery to be finished."""
        self.stop()
        for recorder in self._finishing:
            recorder.stop(timeout_s=timeout_s)
        if self._recovery is not None and self._recovery.is_alive():
            self._recovery.join(timeout_s)
