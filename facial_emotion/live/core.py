"""The live session: the app's model under the window, with no Qt in it.

``LiveSession`` owns the engine (and through it the pipeline, Grad-CAM included), the
mood fuser, the recording and the speech listener, and the current settings. Each user
action is one method (open a source, apply settings, pause, record, listen, mark). What
happens is published as typed events (``facial_emotion.live.events``) to any number of
subscribers: what a user action caused at once, what the threads did by ``poll()``,
which the window calls from its timer, ``record`` from its loop and tests directly;
``step()`` runs one frame synchronously for tests. Every method is called from that
one polling thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from facial_emotion.engine import Engine, EngineStats, Event, ModelsChanged, SourceEnded, SourceFailed, SourceOpened
from facial_emotion.fusion import MoodFuser
from facial_emotion.live.events import (
    CamerasListed,
    LiveEvent,
    MarkerAdded,
    SettingsChanged,
    SettingsNotSaved,
    SourceOpening,
    SourceUnavailable,
)
from facial_emotion.live.recorder import SHUTDOWN_TIMEOUT_S, RecordingControl
from facial_emotion.live.slideshow import as_slideshow
from facial_emotion.live.speech import SpeechListener
from facial_emotion.pipeline import Pipeline
from facial_emotion.recording import RecorderStats
from facial_emotion.session.markers import ORIGIN_LIVE, Marker, clean_label
from facial_emotion.settings import MAX_MARKER_PRESETS, Settings, load_settings, save_settings
from facial_emotion.sources import FrameSource, list_cameras, open_source
from facial_emotion.types import FrameResult

log = logging.getLogger(__name__)

Subscriber = Callable[[LiveEvent], None]

STILL_HIDDEN: Final[frozenset[str]] = frozenset({"blinks", "fps"})
"""Overlays that mean nothing on a still image (or a slideshow of them)."""
CLOSE_TIMEOUT_S: Final[float] = 2.0


class LiveSession:
    """One live session: a source through the pipeline, with speech, mood and recording."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        settings_path: Path | None = None,
        persist: bool = False,
        realtime: bool = True,
        record_dir: Path | None = None,
        viewer_overlays: frozenset[str] = frozenset(),
    ) -> None:
        """``persist``: keep settings in ``settings_path`` (None: the user's file) and load them from it.

        ``viewer_overlays`` are overlays the viewer paints itself (the window's frame rate),
        kept out of the pipeline's drawing.
        """
        self.settings_message: str | None = None
        """Why the settings file was reset, when it was (for the user)."""
        if persist:
            settings, self.settings_message = load_settings(settings_path)
        self.settings = settings or Settings()
        self._settings_path = settings_path
        self._persist = persist
        self._viewer_overlays = viewer_overlays
        self._subscribers: list[Subscriber] = []
        self._outbox: list[LiveEvent] = []
        self._publishing = False
        self._closed = False
        self.fuser = MoodFuser()
        self.stills = False
        """The source is a still image or a slideshow of them: no blinks, no frame rates."""
        self.engine = Engine(
            self.engine_settings(self.settings), pipeline_factory=self._make_pipeline, realtime=realtime
        )
        self.recording = RecordingControl(self.engine, lambda: self.settings, self._post, record_dir=record_dir)
        self.speech = SpeechListener(self.fuser, self.recording, self._post)
        self.speech.configure(self.settings)
        self.source_spec: str | None = None
        """What the playing source was opened from (a path or a camera number), if known."""
        self.source_info: SourceOpened | None = None
        self.source_ended = False
        self.cameras: tuple[int, ...] = ()
        self._source_path: str | None = None
        self._opening_spec = ""
        self._source_is_still = False
        self._reopen_still = False
        self._ticket = 0
        self._calls: queue.SimpleQueue[tuple[str, int, Any, Exception | None]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._markers: list[Marker] = []

    # -- subscribers ------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call subscriber with every event (from ``poll``, on the polling thread); returns an unsubscribe."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def _post(self, event: LiveEvent) -> None:
        """Queue an event; ``poll`` (or the user action that caused it) publishes it."""
        self._outbox.append(event)

    def _publish(self) -> list[LiveEvent]:
        """Hand every queued event to every subscriber, in order; the events published.

        A subscriber that acts on the session meanwhile only adds to the queue, which this
        same loop then empties: events keep their order and nothing is published twice.
        """
        if self._publishing:
            return []
        self._publishing = True
        published: list[LiveEvent] = []
        try:
            while self._outbox:
                events, self._outbox = self._outbox, []
                for event in events:
                    for subscriber in list(self._subscribers):
                        try:
                            subscriber(event)
                        except Exception:  # one broken view must not stop the others
                            log.exception("subscriber %r failed on %r", subscriber, event)
                published += events
        finally:
            self._publishing = False
        return published

    # -- building -----------------------------------------------------------------------

    def _make_pipeline(self, settings: Settings) -> Pipeline:
        """Called by the engine on its inference thread."""
        return Pipeline(settings, mood=self.fuser)

    def engine_settings(self, settings: Settings) -> Settings:
        """The settings the pipeline gets: less what the viewer paints itself and what a still hides."""
        hidden = self._viewer_overlays | (STILL_HIDDEN if self.stills else frozenset())
        overlays = tuple(key for key in settings.overlays if key not in hidden)
        return settings if overlays == tuple(settings.overlays) else settings.replace(overlays=overlays)

    def start(self, *, recover: bool = True) -> None:
        """Start the engine's threads; recover crashed sessions in the background when asked."""
        self.engine.start()
        if recover:
            self.recording.recover_in_background()

    # -- user actions -------------------------------------------------------------------

    def apply_settings(self, settings: Settings) -> None:
        """Make settings current: the engine applies them between frames, speech follows, the file keeps them."""
        if settings == self.settings:
            return
        loop_ticked = settings.loop_video and not self.settings.loop_video
        self.settings = settings
        self.engine.configure(self.engine_settings(settings))
        self.speech.configure(settings)
        self._save()
        self._post(SettingsChanged(settings))
        if loop_ticked and self.source_ended:  # Loop ticked after the end: play it again (and on)
            self.play_again()
        # A still image is analysed again once the engine has applied the new settings.
        self._reopen_still = self._source_is_still and self.source_spec is not None
        self._publish()

    def update(self, **changes: Any) -> None:
        """Apply the current settings with some fields changed."""
        self.apply_settings(self.settings.replace(**changes))

    def _save(self) -> None:
        if not self._persist:
            return
        try:
            save_settings(self.settings, self._settings_path)
        except OSError as exc:
            log.error("cannot save settings: %s", exc)
            self._post(SettingsNotSaved(f"Cannot save settings: {exc}"))

    def open(self, source: str | FrameSource) -> None:
        """Open a camera number, a file or a folder (on a helper thread), or play a ready source."""
        self._ticket += 1
        if not isinstance(source, str):
            self._play(source, None)
            return
        spec = source if source.isdigit() else str(Path(source).expanduser().resolve())
        self._opening_spec = spec
        self._post(SourceOpening(spec))
        self._submit("open", lambda: (as_slideshow(open_source(spec)), spec))
        self._publish()

    def list_cameras(self, *, open_first: bool = False) -> None:
        """Look for cameras on a helper thread (``CamerasListed``); optionally open the first one found."""
        self._submit("cameras", list_cameras, ticket=int(open_first))

    def set_paused(self, paused: bool) -> None:
        """Pause or resume reading the source; after the end of a video, play it again from the start."""
        if self.source_ended and self.source_spec is not None:
            self.play_again()
            return
        self.engine.pause(paused)

    @property
    def paused(self) -> bool:
        """True while paused."""
        return self.engine.paused

    def play_again(self) -> None:
        """Open the source that ended again, playing from its start."""
        if self.source_spec is None:
            return
        self.source_ended = False
        self.engine.pause(False)
        self.open(self.source_spec)

    def start_recording(self, **recorder_options: Any) -> Path | None:
        """Record the session into a new folder; its path (None when already recording)."""
        recorder_options.setdefault("source_name", self._source_label())
        folder = self.recording.start(**recorder_options)
        self._publish()
        return folder

    def _source_label(self) -> str:
        """What plays, for session.json: the file's path, ``camera N``, or the source's own name."""
        spec = self.source_spec
        if spec is not None:
            return f"camera {spec}" if spec.isdigit() else spec
        if self._source_path:
            return self._source_path
        return self.source_info.name if self.source_info is not None else ""

    def stop_recording(self, *, extra_info: dict[str, Any] | None = None) -> Path | None:
        """Stop recording; the folder is finished in the background (``RecordingFinished``)."""
        folder = self.recording.stop(extra_info=extra_info)
        self._publish()
        return folder

    def add_marker(self, label: str = "") -> Marker:
        """Mark the session time of the newest frame (0 before any); a running recording writes it.

        Published as ``MarkerAdded``; a label is one line of at most 80 characters
        (``clean_label``: ValueError when longer).
        """
        latest = self.engine.latest()
        t_ms = round(latest.frame.timestamp_ms, 1) if latest is not None else 0.0  # as markers.csv keeps it
        marker = Marker(t_ms, clean_label(label), ORIGIN_LIVE)
        self._markers.append(marker)
        self._post(MarkerAdded(marker, self.recording.add_marker(marker)))
        self._publish()
        return marker

    def add_preset_marker(self, n: int) -> Marker:
        """A marker labelled with the nth stimulus name of the settings (1-9; without one, the number)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_MARKER_PRESETS:
            raise ValueError(f"a preset marker is 1 to {MAX_MARKER_PRESETS}, not {n!r}")
        labels = self.settings.marker_labels
        return self.add_marker(labels[n - 1] if n <= len(labels) else str(n))

    @property
    def markers(self) -> tuple[Marker, ...]:
        """The markers dropped in this live session, in the order they were dropped."""
        return tuple(self._markers)

    def set_listening(self, on: bool) -> None:
        """Switch speech on or off."""
        self.update(speech_on=on)

    def download_vosk_model(self) -> None:
        """Download the Vosk English model (``DownloadProgress``, then ``DownloadFinished``)."""
        self.speech.download_vosk_model()

    # -- outputs --------------------------------------------------------------------------

    def latest(self) -> FrameResult | None:
        """The newest result, or None before the first."""
        return self.engine.latest()

    def stats(self) -> EngineStats:
        """The engine's frame counters and rates."""
        return self.engine.stats()

    def recording_stats(self) -> RecorderStats | None:
        """The running recording's counters (None when not recording)."""
        return self.recording.stats()

    def poll(self) -> list[LiveEvent]:
        """Collect what the threads did and publish it to every subscriber; the events, in order."""
        for tag, ticket, value, error in self._take_calls():
            self._on_call_done(tag, ticket, value, error)
        for event in self.engine.poll_events():
            self._on_engine_event(event)
        self.speech.poll(self.engine.latest())
        self.recording.poll()
        return self._publish()

    def step(self) -> FrameResult | None:
        """One frame through the engine on the calling thread, then ``poll`` (tests, headless)."""
        result = self.engine.step()
        self.poll()
        return result

    # -- what comes back --------------------------------------------------------------------

    def _submit(self, tag: str, fn: Callable[[], Any], *, ticket: int | None = None) -> None:
        ticket = self._ticket if ticket is None else ticket

        def run() -> None:
            try:
                self._calls.put((tag, ticket, fn(), None))
            except Exception as exc:
                self._calls.put((tag, ticket, None, exc))

        thread = threading.Thread(target=run, name=f"fe-live-{tag}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _take_calls(self) -> list[tuple[str, int, Any, Exception | None]]:
        out = []
        while not self._calls.empty():
            out.append(self._calls.get_nowait())
        return out

    def _on_call_done(self, tag: str, ticket: int, value: Any, error: Exception | None) -> None:
        if tag == "cameras":
            self.cameras = tuple(value or ())
            if error is not None:
                log.warning("cannot list cameras: %s", error)
            self._post(CamerasListed(self.cameras, None if error is None else str(error), bool(ticket)))
            if ticket and self.cameras and self.source_spec is None:
                self.open(str(self.cameras[0]))
        elif tag == "open" and error is not None:
            if ticket == self._ticket:
                self._post(SourceUnavailable(self._opening_spec, f"Cannot open it: {error}"))
        elif tag == "open":
            source, spec = value
            if ticket != self._ticket or self._closed:  # superseded by a later choice
                source.close()
            else:
                self._play(source, spec)

    def _play(self, source: FrameSource, spec: str | None) -> None:
        self.source_spec = spec
        self._source_is_still = False  # known once the engine says SourceOpened
        self.source_ended = False
        stills = bool(getattr(source, "stills", False)) or (
            getattr(source, "frame_count", None) == 1 and not getattr(source, "live", False)
        )
        if stills != self.stills:  # before the first frame: a still never shows blinks or a frame rate
            self.stills = stills
            self.engine.configure(self.engine_settings(self.settings))
        self._source_path = str(getattr(source, "path", "")) or (spec if spec and not spec.isdigit() else None)
        self.engine.open(source)
        if spec is not None and not spec.isdigit() and spec != self.settings.last_source:
            self.apply_settings(self.settings.replace(last_source=spec))

    def _on_engine_event(self, event: Event) -> None:
        if isinstance(event, SourceOpened):
            self.source_info = event
            self.source_ended = False
            self._source_is_still = event.frame_count == 1 and not event.live
            self.speech.source_opened(event, None if event.live else self._source_path)
        elif isinstance(event, SourceEnded) and not self._source_is_still:
            self.source_ended = self.source_spec is not None
        elif isinstance(event, SourceFailed) and event.name != "pipeline":
            self.source_spec = None
        elif isinstance(event, ModelsChanged):
            if self._reopen_still and event.settings == self.engine_settings(self.settings) and self.source_spec:
                self._reopen_still = False
                self.open(self.source_spec)
        self._post(event)

    # -- closing --------------------------------------------------------------------------

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S, *, recording_timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Stop speech, recording (its folder finished, within recording_timeout_s) and the engine.

        The engine's threads get timeout_s (after the recording); the settings are kept.
        """
        if self._closed:
            return
        self._closed = True
        self._subscribers.clear()
        self.speech.close()
        self.recording.close(recording_timeout_s)
        deadline = time.monotonic() + timeout_s
        self.engine.stop(timeout_s=max(0.2, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for tag, _, value, _ in self._take_calls():
            if tag == "open" and value is not None:
                value[0].close()
        self._save()
