"""The main window: video view, face panel, emotion timeline, menus and status bar.

The window paints what its ``LiveSession`` publishes and forwards clicks to it: it never
calls a model, a camera or a file writer, and holds no pipeline state. A QTimer polls the
session (which publishes its events to the window and its controls) and paints the
newest result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMenu, QMessageBox, QToolBar

from facial_emotion.gui.about import about_text
from facial_emotion.gui.actions import SLOT_TITLES, Actions, Binding, build_actions, make_action, sync_bindings
from facial_emotion.gui.panel import FacePanel
from facial_emotion.gui.recording_controls import RecordingControls
from facial_emotion.gui.speech_controls import SpeechControls
from facial_emotion.gui.status import STALE_S, ElidingStatusBar, StatusReport
from facial_emotion.gui.timeline import EmotionTimeline
from facial_emotion.gui.video_view import VideoView
from facial_emotion.live import LiveSession
from facial_emotion.live.events import (
    CamerasListed,
    LiveEvent,
    ModelsChanged,
    SettingsChanged,
    SettingsNotSaved,
    SourceEnded,
    SourceFailed,
    SourceOpened,
    SourceOpening,
    SourceUnavailable,
)
from facial_emotion.registry import SLOTS
from facial_emotion.settings import Settings
from facial_emotion.sources import FrameSource
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

GUI_OVERLAYS: Final[frozenset[str]] = frozenset({"fps"})
"""Overlays the window paints itself (the rates, as the status bar says them), not the pipeline."""

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
        self.live = LiveSession(
            settings_path=settings_path,
            persist=True,
            realtime=realtime,
            record_dir=record_dir,
            viewer_overlays=GUI_OVERLAYS,
        )
        """The app's model: the window paints what it publishes and forwards clicks to it."""
        self.setWindowTitle("facial-emotion")
        self._last_result: FrameResult | None = None
        self.shown_result: FrameResult | None = None
        """The result whose picture the view shows; the Faces panel shows the same one."""
        self._stale_pass = -1
        """Results of this pass or earlier belong to the previous source and are not shown."""
        self._new_result_t = 0.0
        self._chart_t = self._status_t = 0.0
        self._closed = False

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
        self.live.subscribe(self._on_live_event)
        self.recording = RecordingControls(self, self.live, self.menu("record"))
        self.speech = SpeechControls(self, self.live, self.menu("speech"))
        self._keep_help_last()
        self._restore_geometry()

        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_timeout)
        self._timer.start(POLL_MS)
        self.live.start()
        if record_dir is not None:
            self.live.start_recording()
        self.view.show_message("Loading the models...")
        if self.live.settings_message:  # rare and worth a box: the user's choices were reset
            log.warning("%s", self.live.settings_message)
            box = QMessageBox(QMessageBox.Icon.Warning, "Settings reset", self.live.settings_message, parent=self)
            box.open()
        if source is not None:
            self.open_source(source)
        self.refresh_cameras(open_first=source is None)

    @property
    def settings(self) -> Settings:
        """The live session's current settings (menus read their check marks from them)."""
        return self.live.settings

    # -- building ----------------------------------------------------------------------------

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

    def _keep_help_last(self) -> None:
        help_menu = self.menu("help").menuAction()  # Help stays last whatever the controls added
        self.menuBar().removeAction(help_menu)
        self.menuBar().addAction(help_menu)

    # -- sources ---------------------------------------------------------------------------

    def open_source(self, source: str | FrameSource) -> None:
        """Open a camera index, file or folder, or play a ready source."""
        self.live.open(source)

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
        """List the cameras again (on a helper thread); optionally open the first one found."""
        self.live.list_cameras(open_first=open_first)

    def _on_cameras_listed(self, event: CamerasListed) -> None:
        menu = self.menu("source")
        for action in self._camera_actions:
            menu.removeAction(action)
        labels = [(f"Camera {i}", str(i)) for i in event.cameras] or [("No camera found", None)]
        self._camera_actions = []
        for label, spec in labels:
            action = make_action(
                self, label, enabled=spec is not None, on_triggered=lambda _=False, s=spec: self.open_source(s)
            )
            self._camera_actions.append(action)
        after = menu.actions()[menu.actions().index(self._camera_section) + 1]
        menu.insertActions(after, self._camera_actions)
        if event.open_first and not event.cameras and self.live.source_spec is None:
            self._show_no_source("No camera found.")

    def _show_no_source(self, headline: str) -> None:
        buttons: list[tuple[str, Callable[[], object]]] = [
            ("Open video file...", lambda: self.open_file_dialog("video")),
            ("Open image...", lambda: self.open_file_dialog("image")),
        ]
        last = self.settings.last_source
        if last and Path(last).exists():
            buttons.append((f"Reopen {Path(last).name}", lambda: self.open_source(last)))
        if self.live.cameras:
            buttons.append(("Use camera again", lambda: self.open_source(str(self.live.cameras[0]))))
        self.view.show_message(f"{headline}\nOpen a video file or an image to analyse it.", tuple(buttons))

    def set_paused(self, paused: bool) -> None:
        """Pause or resume reading the source; after the end of a video, play it again from the start."""
        again = self.live.source_ended and self.live.source_spec is not None
        self.live.set_paused(paused)
        self.actions.pause.setChecked(self.live.paused)
        if not again:
            self.statusBar().showMessage("Paused" if paused else "Playing", 2000)

    # -- settings --------------------------------------------------------------------------

    def apply_binding(self, binding: Binding, checked: bool) -> None:
        """A bound action was clicked: write its new state into the settings."""
        self.apply_settings(binding.write(self.settings, checked))

    def apply_settings(self, settings: Settings) -> None:
        """Make settings current (the live session applies and keeps them; menus follow its event)."""
        self.live.apply_settings(settings)
        sync_bindings(self.bindings, self.settings)  # a refused change puts the check mark back

    # -- polling ---------------------------------------------------------------------------

    def _on_timeout(self) -> None:
        self.live.poll()  # publishes to this window and its controls
        result = self.live.latest()
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
        self.panel.show_faces(result.faces, still=self.live.stills)
        self.timeline.add(result)

    def _show_rates(self, now: float) -> None:
        """The same measured rates in the status bar and, with the FPS overlay on, over the picture."""
        if self.live.stills:
            state = "still image"
        elif self.live.source_ended:
            state = "ended"
        elif self.live.paused:
            state = "paused"
        else:
            state = "playing"
        stale = now - self._new_result_t > STALE_S
        text = self.status.show_rates(self.live.stats(), self.view.shown_fps(), state=state, stale=stale)
        self.view.set_rates_text(text if "fps" in self.settings.overlays and not self.live.stills else "")

    def _on_live_event(self, event: LiveEvent) -> None:
        if isinstance(event, SettingsChanged):
            sync_bindings(self.bindings, event.settings)
            self.panel.set_detector_on(event.settings.detector is not None)
        elif isinstance(event, SettingsNotSaved):
            self.statusBar().showMessage(event.message, 10000)
        elif isinstance(event, CamerasListed):
            self._on_cameras_listed(event)
        elif isinstance(event, SourceOpening):
            self.statusBar().showMessage(f"Opening {event.spec}...")
        elif isinstance(event, SourceUnavailable):
            self.statusBar().showMessage(event.message, 15000)
            self._show_no_source(event.message)
        elif isinstance(event, SourceOpened):
            # Another source: its faces are new faces, their history and blinks start afresh.
            self._stale_pass = self.shown_result.frame.pass_index if self.shown_result is not None else -1
            self.panel.clear()
            self.timeline.reset()
            self.view.hide_message()
            self.setWindowTitle(f"facial-emotion — {event.name}")
            self.actions.pause.setChecked(self.live.paused)
            self.statusBar().showMessage(f"Playing {event.name}", 3000)
        elif isinstance(event, SourceEnded) and self.live.source_ended:
            again = "press Space to play it again, or tick Source ▸ Loop video"
            self.statusBar().showMessage(f"{event.name} ended: {again}", 15000)
        elif isinstance(event, SourceEnded) and not self.live.stills:
            self.statusBar().showMessage(f"{event.name} ended", 15000)
        elif isinstance(event, SourceFailed) and event.name == "pipeline":
            self.statusBar().showMessage(event.message, 10000)
            if self.view.frame_array() is None:  # nothing will ever be shown: say why where the picture would be
                self.view.show_message(event.message)
        elif isinstance(event, SourceFailed):
            self.statusBar().showMessage(event.message, 15000)
            self._show_no_source(f"{event.message}.\nChoose it again in the Source menu when it is back.")
            self.refresh_cameras()
        elif isinstance(event, ModelsChanged):
            self.status.show_models(event)

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
        """Stop the live session (recording finished, every thread within 2 s), keep settings and geometry."""
        if not self._closed:
            self._closed = True
            self._timer.stop()
            started = time.monotonic()
            self.speech.shutdown()
            self.recording.shutdown()
            self.live.close(timeout_s=2.0)
            for bar in self.findChildren(QToolBar):  # saveState needs a name on every toolbar
                bar.setObjectName(bar.objectName() or f"toolbar-{bar.windowTitle()}")
            store = QSettings(ORGANIZATION, APPLICATION)
            store.setValue("window/geometry", self.saveGeometry())
            store.setValue("window/state", self.saveState())
            log.info("closed in %.2f s", time.monotonic() - started)
        super().closeEvent(event)
