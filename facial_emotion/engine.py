"""The live engine: a capture thread and an inference thread around the pipeline.

Commands go in (open a source, change settings, pause); results and events come out.
The GUI polls ``latest()`` and ``poll_events()`` from a timer and never blocks on the
engine. Tests drive it synchronously with ``step()``.

Threads:
- capture: ``source.read()`` into a one-slot mailbox. For a live camera, or a file
  played at its own rate, a new frame overwrites one not yet taken (counted as
  dropped), so the view never lags behind; otherwise capture waits for inference.
- inference: the only thread that loads, calls or swaps models; applies settings
  between frames; publishes the newest FrameResult and calls listeners (which must
  not block: a recorder puts the result on its own bounded queue).

Session time (``SessionTime``): every frame leaves the engine with an index and a
``timestamp_ms`` that never go back, across loops of a video and source changes; each
loop or new source starts a new pass (``Frame.pass_index``), one frame interval after
the last frame, and nothing of the last pass (tracks, blink counts) carries over. The
source's own position stays in ``Frame.source_index`` and ``Frame.source_timestamp_ms``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from facial_emotion.clock import SessionTime
from facial_emotion.pipeline import Pipeline
from facial_emotion.settings import Settings
from facial_emotion.sources import FrameSource, SourceError
from facial_emotion.types import Frame, FrameResult

log = logging.getLogger(__name__)

ResultListener = Callable[[FrameResult], None]

LOAD_WAIT_S: Final[float] = 20.0
"""How long stop() waits for an inference thread that is still loading its models."""
MAX_EVENTS: Final[int] = 256
"""Events kept for ``poll_events``; when nobody polls, the oldest go first."""


@dataclass(frozen=True, slots=True)
class SourceOpened:
    """A source started delivering."""

    name: str
    live: bool
    fps: float | None
    frame_count: int | None


@dataclass(frozen=True, slots=True)
class SourceEnded:
    """A file reached its end."""

    name: str


@dataclass(frozen=True, slots=True)
class SourceFailed:
    """A source broke (camera unplugged, file cut short); message is for the user."""

    name: str
    message: str


@dataclass(frozen=True, slots=True)
class ModelsChanged:
    """Settings were applied; errors names the slots whose model failed to load."""

    settings: Settings
    errors: dict[str, str]


Event = SourceOpened | SourceEnded | SourceFailed | ModelsChanged


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Counters and rates for the status bar."""

    captured: int
    processed: int
    dropped: int
    capture_fps: float
    process_fps: float


class _Mailbox:
    """One slot. ``put`` either overwrites (counting a drop) or waits for the slot to empty."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Frame | None = None
        self.dropped = 0

    def put(self, item: Frame, *, overwrite: bool, stop: threading.Event) -> None:
        with self._cond:
            if not overwrite:
                while self._item is not None and not stop.is_set():
                    self._cond.wait(0.05)
            elif self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def clear(self) -> None:
        with self._cond:
            self._item = None
            self._cond.notify_all()


class _Rate:
    """Events per second over the last couple of seconds."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._times: deque[float] = deque()
        self._window_s = window_s

    def tick(self) -> None:
        now = time.monotonic()
        self._times.append(now)
        while self._times and now - self._times[0] > self._window_s:
            self._times.popleft()

    def value(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class Engine:
    """Runs a source through the pipeline on background threads (or step by step)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        pipeline_factory: Callable[[Settings], Pipeline] | None = None,
        realtime: bool = True,
    ) -> None:
        self._settings = settings or Settings()
        self._factory = pipeline_factory or (lambda s: Pipeline(s))
        self.realtime = realtime
        self.playback_speed = 1.0
        """How many times its own rate a file plays at (review and soak runs; 1 for live use)."""
        self.pipeline: Pipeline | None = None
        self._mailbox = _Mailbox()
        self._commands: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._listeners: list[ResultListener] = []
        self._lock = threading.Lock()
        self._source: FrameSource | None = None
        self._pending_source: FrameSource | None = None
        self._time = SessionTime()
        self._seen_pass = -1
        self._stills = False
        self._stills_detection = False
        self._latest: FrameResult | None = None
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stragglers: list[threading.Thread] = []
        self._captured = 0
        self._processed = 0
        self._capture_rate = _Rate()
        self._process_rate = _Rate()
        self._play_t0: float | None = None
        self._play_ms0 = 0.0

    # -- commands (any thread) ----------------------------------------------------------

    def open(self, source: FrameSource) -> None:
        """Switch to a new source; the old one is closed by the capture thread."""
        with self._lock:
            if self._pending_source is not None:
                self._pending_source.close()
            self._pending_source = source
        self._wake.set()

    def configure(self, settings: Settings) -> None:
        """Apply settings (models, overlays) between two frames."""
        self._commands.put(("configure", settings))
        self._wake.set()

    def pause(self, paused: bool = True) -> None:
        """Pause or resume reading the source."""
        if paused:
            self._paused.set()
        else:
            self._paused.clear()
            self._play_t0 = None
            self._wake.set()

    @property
    def paused(self) -> bool:
        """True while paused."""
        return self._paused.is_set()

    def add_listener(self, listener: ResultListener) -> None:
        """Call listener with every result, on the inference thread; it must not block."""
        self._listeners.append(listener)

    def remove_listener(self, listener: ResultListener) -> None:
        """Stop calling listener."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- outputs (any thread) -----------------------------------------------------------

    def latest(self) -> FrameResult | None:
        """The newest result, or None before the first."""
        return self._latest

    def poll_events(self) -> list[Event]:
        """Every event since the last call."""
        out = []
        while True:
            try:
                out.append(self._events.popleft())
            except IndexError:
                return out

    @property
    def settings(self) -> Settings:
        """The settings applied last."""
        return self._settings

    def stats(self) -> EngineStats:
        """Frame counters and rates."""
        return EngineStats(
            self._captured,
            self._processed,
            self._mailbox.dropped,
            self._capture_rate.value(),
            self._process_rate.value(),
        )

    # -- shared steps ---------------------------------------------------------------------

    def _ensure_pipeline(self) -> Pipeline:
        if self.pipeline is None:
            self.pipeline = self._factory(self._settings)
            self._events.append(ModelsChanged(self._settings, dict(self.pipeline.load_errors)))
        return self.pipeline

    def _apply_commands(self) -> None:
        pipeline = self._ensure_pipeline()
        latest: Settings | None = None
        while True:
            try:
                kind, payload = self._commands.get_nowait()
            except queue.Empty:
                break
            if kind == "configure":
                latest = payload
            elif kind == "stills" and payload != self._stills_detection:
                self._stills_detection = payload
                latest = latest or self._settings
        if latest is not None:
            self._settings = latest
            pipeline.configure(latest.for_stills() if self._stills_detection else latest)
            self._events.append(ModelsChanged(latest, dict(pipeline.load_errors)))

    def _swap_source(self) -> FrameSource | None:
        with self._lock:
            if self._pending_source is None:
                return self._source
            if self._source is not None:
                self._source.close()
            self._source, self._pending_source = self._pending_source, None
            self._play_t0 = None
        self._mailbox.clear()
        src = self._source
        self._time.begin_pass(live=src.live, fps=src.fps)
        self._stills = bool(getattr(src, "stills", False))
        # Photos get the still-image detection (Settings.for_stills), as in analyze; the
        # inference thread applies it before the first frame of this source.
        self._commands.put(("stills", self._stills))
        self._events.append(SourceOpened(src.name, src.live, src.fps, src.frame_count))
        return src

    def _read(self, source: FrameSource) -> Frame | None:
        """One frame from the source, on session time; events for end and failure; loops files if set."""
        try:
            frame = source.read()
            if frame is None and self._settings.loop_video and hasattr(source, "rewind"):
                source.rewind()
                self._play_t0 = None
                self._time.begin_pass(live=source.live, fps=source.fps)
                frame = source.read()
        except SourceError as exc:
            self._events.append(SourceFailed(source.name, str(exc)))
            self._drop_source(source)
            return None
        if frame is None:
            self._events.append(SourceEnded(source.name))
            self._drop_source(source)
            return None
        self._captured += 1
        self._capture_rate.tick()
        return self._time.stamp(frame)

    def _drop_source(self, source: FrameSource) -> None:
        with self._lock:
            if self._source is source:
                source.close()
                self._source = None

    def _process(self, frame: Frame) -> FrameResult:
        pipeline = self._ensure_pipeline()
        if frame.pass_index != self._seen_pass or self._stills:
            # A new source or a loop, or unrelated still images: no track, blink count or
            # smoothing carries over (track ids still never repeat within the session).
            pipeline.reset()
            self._seen_pass = frame.pass_index
        result = pipeline.process(frame)
        self._latest = result
        self._processed += 1
        self._process_rate.tick()
        for listener in list(self._listeners):
            try:
                listener(result)
            except Exception:  # a broken listener must not stop the stream
                log.exception("result listener failed")
        return result

    # -- synchronous use (tests, headless) ---------------------------------------------

    def step(self) -> FrameResult | None:
        """Read and process one frame on the calling thread; None when there is none."""
        if self._threads:
            raise RuntimeError("step() is for an engine that was not started")
        source = self._swap_source()
        self._apply_commands()
        if source is None:
            return None
        frame = self._read(source)
        if frame is None:
            return None
        return self._process(frame)

    # -- threads --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the capture and inference threads.

        Threads of an earlier run that outlived ``stop`` (a model still loading) are waited
        for first, so there is never more than one pair.
        """
        if self._threads:
            return
        for thread in self._stragglers:
            thread.join()
        self._stragglers = []
        # Each run has its own stop flag and ready flag: a late thread of the last run sees its own.
        self._stop = stop = threading.Event()
        self._ready = ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._capture_loop, args=(stop, ready), name="fe-capture", daemon=True),
            threading.Thread(target=self._inference_loop, args=(stop, ready), name="fe-inference", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 2.0, *, load_wait_s: float = LOAD_WAIT_S) -> bool:
        """Stop the threads and close the source; True when every thread ended in time.

        An inference thread still loading its models gets ``load_wait_s`` more to finish.
        """
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in self._threads if t.is_alive()]
        if alive and not self._ready.is_set():
            # Still loading the models (TensorFlow's import takes seconds): the inference
            # thread checks the stop flag as soon as the load returns, so wait for that.
            for thread in alive:
                thread.join(load_wait_s)
            alive = [t for t in alive if t.is_alive()]
        if alive:
            log.warning("threads still running after %.1f s: %s", timeout_s, [t.name for t in alive])
        self._stragglers += alive
        self._threads = []
        with self._lock:
            for src in (self._source, self._pending_source):
                if src is not None:
                    src.close()
            self._source = self._pending_source = None
        return not alive

    @property
    def running(self) -> bool:
        """True while the threads run."""
        return bool(self._threads)

    def _pace(self, source: FrameSource, frame: Frame, stop: threading.Event) -> None:
        """Sleep so a file plays at its own rate (live sources pace themselves)."""
        if source.live or not self.realtime or source.fps is None:
            return
        now = time.monotonic()
        if self._play_t0 is None:
            self._play_t0, self._play_ms0 = now, frame.timestamp_ms
            return
        speed = self.playback_speed if self.playback_speed > 0 else 1.0
        due = self._play_t0 + (frame.timestamp_ms - self._play_ms0) / 1000.0 / speed
        if due > now:
            stop.wait(due - now)
        elif now - due > 1.0:
            self._play_t0, self._play_ms0 = now, frame.timestamp_ms  # fell far behind: restart the clock

    def _capture_loop(self, stop: threading.Event, ready: threading.Event) -> None:
        # Loading the models takes seconds; playing meanwhile would only drop frames.
        while not ready.wait(0.05):
            if stop.is_set():
                return
        while not stop.is_set():
            source = self._swap_source()
            if source is None or self._paused.is_set():
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            frame = self._read(source)
            if frame is None:
                continue
            self._pace(source, frame, stop)
            overwrite = source.live or self.realtime
            self._mailbox.put(frame, overwrite=overwrite, stop=stop)

    def _inference_loop(self, stop: threading.Event, ready: threading.Event) -> None:
        try:
            self._ensure_pipeline()
        except Exception as exc:
            log.exception("cannot build the pipeline")
            self._events.append(SourceFailed("pipeline", f"cannot start the pipeline: {exc}"))
            return
        ready.set()
        while not stop.is_set():
            self._apply_commands()
            frame = self._mailbox.take(timeout=0.05)
            if frame is None or stop.is_set():
                continue
            self._apply_commands()  # settings sent while waiting apply to this very frame
            try:
                self._process(frame)
            except Exception as exc:  # keep the stream alive; say what happened
                log.exception("frame %d failed", frame.index)
                self._events.append(SourceFailed("pipeline", f"processing failed: {exc}"))
