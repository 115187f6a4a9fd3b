"""The main window: video view, face panel, emotion timeline, menus and status bar.

The window never calls a model, a camera or a file writer itself: the engine's threads do,
and a QTimer polls the engine's newest result and events. Blocking calls the GUI must
start (opening a camera or a file, listing cameras) run on short-lived helper threads.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMenu, QMessageBox, QToolBar

from facial_emotion.engine import Engine, Event, ModelsChanged, SourceEnded, SourceFailed, SourceOpened
from facial_emotion.gui.about import about_text
from facial_emotion.gui.actions import SLOT_TITLES, Actions, Binding, build_actions, make_action, sync_bindings
from facial_emotion.gui.background import BackgroundCalls
from facial_emotion.gui.cam_overlay import CamAnnotator
from facial_emotion.gui.panel import FacePanel
from facial_emotion.gui.slideshow import as_slideshow
from facial_emotion.gui.status import STALE_S, ElidingStatusBar, StatusReport
from facial_emotion.gui.timeline import EmotionTimeline
from facial_emotion.gui.video_view import VideoView
from facial_emotion.pipeline import MoodSource, Pipeline
from facial_emotion.registry import SLOTS
from facial_emotion.settings import Settings, load_settings, save_settings
from facial_emotion.sources import FrameSource, list_cameras, open_source
from facial_emotion.types import FrameResult

log = logging.getLogger(__name__)

ORGANIZATION: Final[str] = "facial-emotion"
APPLICATION: Final[str] = "facial-emotion"
POLL_MS: Final[int] = 8
"""How often the engine is polled; a frame is painted only when it is new (the panel with it)."""
CHART_EVERY_S: Final[float] = 0.2
STATUS_EVERY_S: Final[float] = 0.5

MENUS: Final[tuple[tuple[str, str], ...]] = (
    ("source", "&Source"),
    ("models", "&Models"),
    ("overlays", "&Overlays"),
    ("view", "&View"),
    ("speech", "S&peech"),
    ("record", "&Record"),
    ("help", "&Help"),
)
"""Top-level menus in their order; a menu appears when something is put in it."""

EXTENSIONS: Final[tuple[tuple[str, str], ...]] = (
    ("facial_emotion.gui.recording_controls", "install_recording"),
    ("facial_emotion.gui.speech_controls", "install_speech"),
)
"""Optional controls: ``install(window, engine, settings_getter)`` returning an object with ``shutdown()``."""

GUI_OVERLAYS: Final[frozenset[str]] = frozenset({"fps"})
"""Overlays the window paints itself (the rates, as the status bar says them), not the pipeline."""
STILL_HIDDEN: Final[frozenset[str]] = frozenset({"blinks", "fps"})
"""Overlays that mean nothing on a still image (or a slideshow of them)."""

VIDEO_FILTER: Final[str] = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v);;All files (*)"
IMAGE_FILTER: Final[str] = "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp);;All files (*)"


class MainWindow(QMainWindow):
    """The app's window around one Engine."""

    def __init__(
        self,
        settings_path: Path | None = None,
        *,
        source: str | None = None,
        realtime: bool = True,
        record_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings_path = settings_path
        self.record_dir = record_dir
        """With --record DIR: recording starts at once, into DIR."""
        self.settings, settings_message = load_settings(settings_path)
        self.setWindowTitle("facial-emotion")
        self.cam = CamAnnotator()
        self._source_is_still = False
        self._stills = False
        """The source is a still image or a slideshow of them: no blinks, no frame rates."""
        self.engine = Engine(
            self._engine_settings(self.settings), pipeline_factory=self._make_pipeline, realtime=realtime
        )
        self._calls = BackgroundCalls()
        self._open_ticket = 0
        self._source_spec: str | None = None
        self._source_ended = False
        self._reopen_still = False
        self._last_result: FrameResult | None = None
        self.shown_result: FrameResult | None = None
        """The result whose picture the view shows; the Faces panel shows the same one."""
        self._stale_pass = -1
        """Results of this pass or earlier belong to the previous source and are not shown."""
        self._new_result_t = 0.0
        self._chart_t = self._status_t = 0.0
        self._closed = False
        self.cameras: list[int] = []
        self.source_info: SourceOpened | None = None
        """What the engine said of the source it plays."""
        self.extensions: list[object] = []
        self.mood_source: MoodSource | None = None
        """Fuses speech with faces; an extension sets it while installing (before the pipeline is built)."""

        self.view = VideoView(self)
        self.setCentralWidget(self.view)
        self.setStatusBar(ElidingStatusBar(self))
        self.panel = FacePanel(self)
        self.panel.set_detector_on(self.settings.detector is not None)
        self.timeline = EmotionTimeline(self)
        self.panel.face_selected.connect(self._on_face_selected)
        self._add_dock("faces", "Faces", self.panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock(
            "timeline", "Emotions over the last minute", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.status = StatusReport(self.statusBar())

        self._menus: dict[str, QMenu] = {}
        self.actions, self.bindings = build_actions(self, self, self.settings)
        self._build_menus(self.actions)
        sync_bindings(self.bindings, self.settings)
        self._install_extensions()
        self._restore_geometry()

        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_timeout)
        self._timer.start(POLL_MS)
        self.engine.start()
        self.view.show_message("Loading the models...")
        if settings_message:  # rare and worth a box: the user's choices were reset
            log.warning("%s", settings_message)
            box = QMessageBox(QMessageBox.Icon.Warning, "Settings reset", settings_message, parent=self)
            box.open()
        if source is not None:
            self.open_source(source)
        self.refresh_cameras(open_first=source is None)

    # -- building ----------------------------------------------------------------------------

    def _make_pipeline(self, settings: Settings) -> Pipeline:
        """Called by the engine on its inference thread."""
        pipeline = Pipeline(settings, extra_annotators=(self.cam,), mood=self.mood_source)
        self.cam.settings_getter = lambda: pipeline.settings
        return pipeline

    def _add_dock(self, name: str, title: str, widget: Any, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{name}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def menu(self, name: str, title: str | None = None) -> QMenu:
        """The top-level menu called name, made in its place in ``MENUS`` order when first asked for."""
        if name in self._menus:
            return self._menus[name]
        titles = dict(MENUS)
        order = [n for n, _ in MENUS]
        menu = QMenu(title or titles.get(name, name.title()), self)
        after = order[order.index(name) + 1 :] if name in order else []
        before = next((self._menus[n].menuAction() for n in after if n in self._menus), None)
        if before is None:
            self.menuBar().addMenu(menu)
        else:
            self.menuBar().insertMenu(before, menu)
        self._menus[name] = menu
        return menu

    def _build_menus(self, actions: Actions) -> None:
        source = self.menu("source")
        self._camera_section = source.addSection("Cameras")
        self._camera_actions: list[Any] = []
        source.addSeparator()
        for action in (actions.open_video, actions.open_image, actions.open_folder, actions.refresh_cameras):
            source.addAction(action)
        source.addSeparator()
        source.addActions([actions.pause, actions.loop])
        source.addSeparator()
        source.addAction(actions.quit)
        models = self.menu("models")
        models.setToolTipsVisible(True)
        for slot in SLOTS:
            sub = models.addMenu(SLOT_TITLES[slot])
            sub.setToolTipsVisible(True)
            sub.addActions([a for (s, _), a in actions.models.items() if s == slot])
        models.addSeparator()
        models.addActions([actions.smoothing, actions.small_faces])
        self.menu("overlays").addActions(list(actions.overlays.values()))
        self.menu("view").addActions([dock.toggleViewAction() for dock in self.findChildren(QDockWidget)])
        self.menu("help").addAction(actions.about)

    def _install_extensions(self) -> None:
        for module_name, function in EXTENSIONS:
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                if exc.name != module_name:
                    log.warning("%s cannot be loaded: %s", module_name, exc)
                continue
            install = getattr(module, function)
            kwargs: dict[str, Any] = {}
            parameters = inspect.signature(install).parameters
            if "settings_setter" in parameters:
                kwargs["settings_setter"] = self.apply_settings
            if self.record_dir is not None and "record_dir" in parameters:
                kwargs.update(record_dir=self.record_dir, start=True)
            try:
                self.extensions.append(install(self, self.engine, lambda: self.settings, **kwargs))
            except Exception:  # an optional feature must not keep the app from opening
                log.exception("%s.%s failed", module_name, function)
        help_menu = self.menu("help").menuAction()  # Help stays last whatever the extensions added
        self.menuBar().removeAction(help_menu)
        self.menuBar().addAction(help_menu)

    # -- sources ---------------------------------------------------------------------------

    def open_source(self, source: str | FrameSource) -> None:
        """Open a camera index, file or folder (on a helper thread), or hand a ready source to the engine."""
        self._open_ticket += 1
        if not isinstance(source, str):
            self._on_source_ready(source, None)
            return
        if not source.isdigit():
            source = str(Path(source).expanduser().resolve())  # last_source must work from any folder
        self.statusBar().showMessage(f"Opening {source}...")
        self._calls.submit("open", self._open_ticket, lambda: (as_slideshow(open_source(source)), source))

    def _on_source_ready(self, source: FrameSource, spec: str | None) -> None:
        self._source_spec = spec
        self._source_is_still = False  # known once the engine says SourceOpened
        self._source_ended = False
        stills = bool(getattr(source, "stills", False)) or (
            getattr(source, "frame_count", None) == 1 and not getattr(source, "live", False)
        )
        if stills != self._stills:  # before the first frame: a still never shows blinks or a frame rate
            self._stills = stills
            self.engine.configure(self._engine_settings(self.settings))
        self.engine.open(source)
        if spec is not None and not spec.isdigit() and spec != self.settings.last_source:
            self.apply_settings(self.settings.replace(last_source=spec))

    def open_file_dialog(self, kind: str) -> None:
        """Ask for a video, an image or a folder of images, and open it."""
        start = str(Path(self.settings.last_source).parent) if self.settings.last_source else ""
        if kind == "folder":
            path = QFileDialog.getExistingDirectory(self, "Open image folder", start)
        else:
            title, filters = ("Open video file", VIDEO_FILTER) if kind == "video" else ("Open image", IMAGE_FILTER)
            path, _ = QFileDialog.getOpenFileName(self, title, start, filters)
        if path:
            self.open_source(path)

    def refresh_cameras(self, *, open_first: bool = False) -> None:
        """List the cameras on a helper thread; optionally open the first one found."""
        self._calls.submit("cameras", int(open_first), list_cameras)

    def _on_cameras_listed(self, cameras: list[int], open_first: bool) -> None:
        self.cameras = cameras
        menu = self.menu("source")
        for action in self._camera_actions:
            menu.removeAction(action)
        labels = [(f"Camera {i}", str(i)) for i in cameras] or [("No camera found", None)]
        self._camera_actions = []
        for label, spec in labels:
            action = make_action(
                self, label, enabled=spec is not None, on_triggered=lambda _=False, s=spec: self.open_source(s)
            )
            self._camera_actions.append(action)
        after = menu.actions()[menu.actions().index(self._camera_section) + 1]
        menu.insertActions(after, self._camera_actions)
        if open_first and cameras and self._source_spec is None:
            self.open_source(str(cameras[0]))
        elif open_first and not cameras and self._source_spec is None:
            self._show_no_source("No camera found.")

    def _show_no_source(self, headline: str) -> None:
        buttons: list[tuple[str, Callable[[], object]]] = [
            ("Open video file...", lambda: self.open_file_dialog("video")),
            ("Open image...", lambda: self.open_file_dialog("image")),
        ]
        last = self.settings.last_source
        if last and Path(last).exists():
            buttons.append((f"Reopen {Path(last).name}", lambda: self.open_source(last)))
        if self.cameras:
            buttons.append(("Use camera again", lambda: self.open_source(str(self.cameras[0]))))
        self.view.show_message(f"{headline}\nOpen a video file or an image to analyse it.", tuple(buttons))

    def set_paused(self, paused: bool) -> None:
        """Pause or resume reading the source; after the end of a video, play it again from the start."""
        if self._source_ended and self._source_spec is not None:
            self.play_again()
            return
        self.engine.pause(paused)
        self.actions.pause.setChecked(self.engine.paused)
        self.statusBar().showMessage("Paused" if paused else "Playing", 2000)

    def play_again(self) -> None:
        """Open the source that ended again, playing from its start."""
        if self._source_spec is None:
            return
        self._source_ended = False
        self.engine.pause(False)
        self.actions.pause.setChecked(False)
        self.open_source(self._source_spec)

    # -- settings --------------------------------------------------------------------------

    def _engine_settings(self, settings: Settings) -> Settings:
        """The settings the engine gets: less what the window paints itself and what a still hides."""
        hidden = GUI_OVERLAYS | (STILL_HIDDEN if self._stills else frozenset())
        overlays = tuple(key for key in settings.overlays if key not in hidden)
        return settings if overlays == tuple(settings.overlays) else settings.replace(overlays=overlays)

    def apply_binding(self, binding: Binding, checked: bool) -> None:
        """A bound action was clicked: write its new state into the settings."""
        self.apply_settings(binding.write(self.settings, checked))

    def apply_settings(self, settings: Settings) -> None:
        """Make settings current: the engine applies them between frames, menus show them, the file keeps them."""
        changed = settings != self.settings
        loop_ticked = settings.loop_video and not self.settings.loop_video
        self.settings = settings
        sync_bindings(self.bindings, settings)
        self.panel.set_detector_on(settings.detector is not None)
        if not changed:
            return
        self.engine.configure(self._engine_settings(settings))
        self._save_settings()
        if loop_ticked and self._source_ended:  # Loop ticked after the end: play it again (and on)
            self.play_again()
        # A still image is analysed again once the engine has applied the new settings.
        self._reopen_still = self._source_is_still and self._source_spec is not None

    def _save_settings(self) -> None:
        try:
            save_settings(self.settings, self.settings_path)
        except OSError as exc:
            log.error("cannot save settings: %s", exc)
            self.statusBar().showMessage(f"Cannot save settings: {exc}", 10000)

    # -- polling ---------------------------------------------------------------------------

    def _on_timeout(self) -> None:
        for tag, ticket, value, error in self._calls.results():
            self._on_call_done(tag, ticket, value, error)
        for event in self.engine.poll_events():
            self._on_engine_event(event)
        result = self.engine.latest()
        now = time.monotonic()
        if result is not None and result is not self._last_result:
            self._last_result = result
            if result.frame.pass_index > self._stale_pass:  # not a late frame of the source before
                self._show_result(result)
                self._new_result_t = now
        if now - self._chart_t >= CHART_EVERY_S:
            self._chart_t = now
            self.timeline.refresh()
        if now - self._status_t >= STATUS_EVERY_S:
            self._status_t = now
            self._show_rates(now)

    def _show_result(self, result: FrameResult) -> None:
        """The picture and the Faces panel from one result, so that they always agree."""
        self.shown_result = result
        self.view.show_frame(result.annotated if result.annotated is not None else result.frame.image)
        self.panel.show_faces(result.faces, still=self._stills)
        self.timeline.add(result)

    def _show_rates(self, now: float) -> None:
        """The same measured rates in the status bar and, with the FPS overlay on, over the picture."""
        if self._stills:
            state = "still image"
        elif self._source_ended:
            state = "ended"
        elif self.engine.paused:
            state = "paused"
        else:
            state = "playing"
        stale = now - self._new_result_t > STALE_S
        text = self.status.show_rates(self.engine.stats(), self.view.shown_fps(), state=state, stale=stale)
        self.view.set_rates_text(text if "fps" in self.settings.overlays and not self._stills else "")

    def _on_call_done(self, tag: str, ticket: int, value: Any, error: Exception | None) -> None:
        if tag == "cameras":
            self._on_cameras_listed(value or [], bool(ticket))
            if error is not None:
                log.warning("cannot list cameras: %s", error)
        elif tag == "open" and error is not None:
            message = f"Cannot open it: {error}"
            self.statusBar().showMessage(message, 15000)
            if ticket == self._open_ticket:
                self._show_no_source(message)
        elif tag == "open":
            source, spec = value
            if ticket != self._open_ticket or self._closed:  # superseded by a later choice
                source.close()
            else:
                self._on_source_ready(source, spec)

    def _on_engine_event(self, event: Event) -> None:
        if isinstance(event, SourceOpened):
            self.source_info = event
            # Another source: its faces are new faces, their history and blinks start afresh.
            self._stale_pass = self.shown_result.frame.pass_index if self.shown_result is not None else -1
            self._source_ended = False
            self.panel.clear()
            self.timeline.reset()
            self._source_is_still = event.frame_count == 1 and not event.live
            self.view.hide_message()
            self.setWindowTitle(f"facial-emotion — {event.name}")
            self.actions.pause.setChecked(self.engine.paused)
            self.statusBar().showMessage(f"Playing {event.name}", 3000)
        elif isinstance(event, SourceEnded) and not self._source_is_still:
            self._source_ended = self._source_spec is not None
            again = "press Space to play it again, or tick Source ▸ Loop video" if self._source_ended else ""
            self.statusBar().showMessage(f"{event.name} ended" + (f": {again}" if again else ""), 15000)
        elif isinstance(event, SourceFailed) and event.name == "pipeline":
            self.statusBar().showMessage(event.message, 10000)
            if self.view.frame_array() is None:  # nothing will ever be shown: say why where the picture would be
                self.view.show_message(event.message)
        elif isinstance(event, SourceFailed):
            self._source_spec = None
            self.statusBar().showMessage(event.message, 15000)
            self._show_no_source(f"{event.message}.\nChoose it again in the Source menu when it is back.")
            self.refresh_cameras()
        elif isinstance(event, ModelsChanged):
            self.status.show_models(event)
            if self._reopen_still and event.settings == self._engine_settings(self.settings) and self._source_spec:
                self._reopen_still = False
                self.open_source(self._source_spec)

    def _on_face_selected(self, track_id: int) -> None:
        self.timeline.select(track_id)

    # -- help, geometry, closing -----------------------------------------------------------

    def show_about(self) -> None:
        """Versions and model licences."""
        QMessageBox.about(self, "About facial-emotion", about_text())

    def _restore_geometry(self) -> None:
        store = QSettings(ORGANIZATION, APPLICATION)
        geometry, state = store.value("window/geometry"), store.value("window/state")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1180, 760)
        if state is not None:
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the extensions and the engine (every thread within 2 s), keep settings and geometry."""
        if not self._closed:
            self._closed = True
            self._timer.stop()
            deadline = time.monotonic() + 2.0
            for extension in self.extensions:
                shutdown = getattr(extension, "shutdown", None)
                if callable(shutdown):
                    try:
                        shutdown()
                    except Exception:
                        log.exception("shutting down %r failed", extension)
            self.engine.stop(timeout_s=max(0.2, deadline - time.monotonic()))
            self._calls.join(max(0.0, deadline - time.monotonic()))
            for tag, _, value, _ in self._calls.results():
                if tag == "open" and value is not None:
                    value[0].close()
            for bar in self.findChildren(QToolBar):  # saveState needs a name on every toolbar
                bar.setObjectName(bar.objectName() or f"toolbar-{bar.windowTitle()}")
            store = QSettings(ORGANIZATION, APPLICATION)
            store.setValue("window/geometry", self.saveGeometry())
            store.setValue("window/state", self.saveState())
            self._save_settings()
            log.info("closed in %.2f s", 2.0 - (deadline - time.monotonic()))
        super().closeEvent(event)
