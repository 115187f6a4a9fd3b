"""The Record menu, toolbar button and status-bar indicator of the main window.

Every file is written by the recorder's own thread: the GUI thread only starts and
stops recorders and, from a QTimer, shows the elapsed time, errors (a full disk) and
when a stopped session has been finished. Unfinished sessions of an earlier crash are
recovered on a background thread at install time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QToolBar

from facial_emotion.engine import Engine
from facial_emotion.paths import user_data_dir
from facial_emotion.recording import SessionRecorder
from facial_emotion.recovery import recover_all
from facial_emotion.settings import Settings
from facial_emotion.types import Utterance

log = logging.getLogger(__name__)

TICK_MS = 250
SHUTDOWN_TIMEOUT_S = 30.0


class RecordingActions(NamedTuple):
    """Every QAction of the Record menu."""

    toggle: QAction
    clean_video: QAction
    open_folder: QAction


def default_sessions_dir(settings: Settings) -> Path:
    """Where sessions go: the record_dir setting, else the user's data folder."""
    custom = settings.record_dir
    return Path(custom).expanduser() if custom else user_data_dir() / "sessions"


def _make_action(parent: QObject, text: str, *, shortcut: str | None = None, checkable: bool = False) -> QAction:
    action = QAction(text, parent)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    action.setCheckable(checkable)
    return action


def _format_elapsed(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class RecordingController(QObject):
    """Starts and stops session recordings of an engine for one window."""

    recording_changed = Signal(bool)
    session_finished = Signal(str)
    error_shown = Signal(str)

    def __init__(
        self,
        window: QMainWindow,
        engine: Engine,
        settings_getter: Callable[[], Settings],
        *,
        record_dir: Path | None = None,
        settings_setter: Callable[[Settings], None] | None = None,
    ) -> None:
        super().__init__(window)
        self.window, self.engine = window, engine
        self._settings_getter, self._settings_setter = settings_getter, settings_setter
        self._record_dir = Path(record_dir).expanduser() if record_dir else None
        self.recorder: SessionRecorder | None = None
        self._finishing: list[SessionRecorder] = []
        self._error_reported = False
        self._engine_dropped0 = 0
        self._clean_video = settings_getter().record_clean_video
        self._message_box: QMessageBox | None = None
        self.actions = RecordingActions(
            toggle=_make_action(self, "Start recording", shortcut="Ctrl+R"),
            clean_video=_make_action(self, "Keep clean video too", checkable=True),
            open_folder=_make_action(self, "Open sessions folder"),
        )
        self.actions.toggle.setToolTip("Record the session to disk (Ctrl+R)")
        self.actions.toggle.triggered.connect(self._on_toggle_triggered)
        self.actions.clean_video.toggled.connect(self._on_clean_video_toggled)
        self.actions.open_folder.triggered.connect(self._on_open_folder_triggered)
        self.indicator = QLabel()
        self.indicator.setStyleSheet("color: #d01010; font-weight: bold")
        self.indicator.hide()
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_tick)
        self._recovered: list[Path] = []
        self._recovery = threading.Thread(target=self._recover, name="fe-recovery", daemon=True)

    # -- building ------------------------------------------------------------------

    def install(self) -> None:
        """Add the menu, the toolbar button and the indicator; recover crashed sessions."""
        menu = self.window.menuBar().addMenu("&Record")
        menu.addAction(self.actions.toggle)
        menu.addAction(self.actions.clean_video)
        menu.addSeparator()
        menu.addAction(self.actions.open_folder)
        menu.aboutToShow.connect(self._sync_checks)
        toolbars = self.window.findChildren(QToolBar)
        toolbar = toolbars[0] if toolbars else self.window.addToolBar("Recording")
        toolbar.addAction(self.actions.toggle)
        self.window.statusBar().addPermanentWidget(self.indicator)
        self._sync_checks()
        self._recovery.start()
        self._timer.start()

    @property
    def sessions_dir(self) -> Path:
        """The folder that holds the sessions."""
        return self._record_dir or default_sessions_dir(self._settings_getter())

    @property
    def recording(self) -> bool:
        """True while a recording is running."""
        return self.recorder is not None

    @property
    def busy(self) -> bool:
        """True while recording, finishing a stopped session, or recovering old ones."""
        return self.recording or bool(self._finishing) or self._recovery.is_alive()

    # -- actions -------------------------------------------------------------------

    def start(self) -> Path | None:
        """Start recording into a new session folder; its path (None if already recording)."""
        if self.recorder is not None:
            return None
        settings = self._settings_getter()
        recorder = SessionRecorder(
            self.sessions_dir,
            settings=settings,
            clean_video=self._clean_video,
            source_name=settings.last_source or "",
        )
        self._engine_dropped0 = self.engine.stats().dropped
        folder = recorder.start()
        self.engine.add_listener(recorder.add_result)
        self.recorder = recorder
        self._error_reported = False
        self._update_ui()
        self.window.statusBar().showMessage(f"Recording to {folder}", 5000)
        self.recording_changed.emit(True)
        return folder

    def stop(self) -> Path | None:
        """Stop recording; the folder is finished in the background (see ``session_finished``)."""
        recorder = self.recorder
        if recorder is None:
            return None
        self.engine.remove_listener(recorder.add_result)
        dropped = self.engine.stats().dropped - self._engine_dropped0
        recorder.request_stop(extra_info={"engine_dropped": dropped})
        self.recorder = None
        self._finishing.append(recorder)
        self._update_ui()
        self.window.statusBar().showMessage(f"Finishing {recorder.folder} …")
        self.recording_changed.emit(False)
        return recorder.folder

    def add_audio(self, chunk: bytes, t_ms: float) -> None:
        """Microphone PCM (16 kHz mono int16) for the running recording; any thread, never blocks."""
        recorder = self.recorder
        if recorder is not None:
            recorder.add_audio(chunk, t_ms)

    def add_utterance(self, utterance: Utterance) -> None:
        """A recognised utterance for the running recording's transcript; any thread."""
        recorder = self.recorder
        if recorder is not None:
            recorder.add_utterance(utterance)

    def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Stop any recording and wait (bounded) for its folder to be finished."""
        self.stop()
        self._timer.stop()
        for recorder in self._finishing:
            recorder.stop(timeout_s=timeout_s)
        self._finishing = [r for r in self._finishing if not r.done]
        if self._recovery.is_alive():
            self._recovery.join(timeout_s)

    # -- slots ---------------------------------------------------------------------

    def _on_toggle_triggered(self) -> None:
        if self.recording:
            self.stop()
        else:
            self.start()

    def _on_clean_video_toggled(self, checked: bool) -> None:
        self._clean_video = checked
        if self._settings_setter is not None:
            self._settings_setter(self._settings_getter().replace(record_clean_video=checked))

    def _on_open_folder_triggered(self) -> None:
        folder = self.sessions_dir
        if not folder.is_dir():
            self._show_folder(f"No sessions yet: they will be saved in\n\n{folder}", folder)
            return
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):  # no file manager here
            self._show_folder(f"No file manager could open the sessions folder. It is\n\n{folder}", folder)

    def _show_folder(self, text: str, folder: Path) -> QMessageBox:
        """A box with the sessions folder's path, selectable so that it can be copied."""
        box = QMessageBox(QMessageBox.Icon.Information, "Sessions folder", text, parent=self.window)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setModal(False)
        box.open()
        self._message_box = box
        self.window.statusBar().showMessage(f"Sessions folder: {folder}", 10000)
        return box

    def _sync_checks(self) -> None:
        """The checkmark follows the settings when they say (the model, not the widget)."""
        self._clean_video = self._settings_getter().record_clean_video
        self.actions.clean_video.blockSignals(True)
        self.actions.clean_video.setChecked(self._clean_video)
        self.actions.clean_video.blockSignals(False)

    def _on_tick(self) -> None:
        recorder = self.recorder
        if recorder is not None:
            stats = recorder.stats()
            if stats.error is not None and not self._error_reported:
                self._error_reported = True
                self.stop()
                self._show_error(stats.error)
            else:
                text = f"● REC {_format_elapsed(stats.elapsed_s)}"
                self.indicator.setText(text + (f"  ({stats.dropped} dropped)" if stats.dropped else ""))
        for done in [r for r in self._finishing if r.done]:
            self._finishing.remove(done)
            self.window.statusBar().showMessage(f"Session saved to {done.folder}", 8000)
            self.session_finished.emit(str(done.folder))
        if self._recovered:
            found, self._recovered = self._recovered, []
            names = ", ".join(p.name for p in found)
            self.window.statusBar().showMessage(f"Recovered {len(found)} unfinished session(s): {names}", 10000)

    def _show_error(self, message: str) -> None:
        self.window.statusBar().showMessage(f"Recording stopped: {message}")
        box = QMessageBox(QMessageBox.Icon.Warning, "Recording stopped", message, parent=self.window)
        box.setModal(False)
        box.show()
        self._message_box = box
        self.error_shown.emit(message)

    def _update_ui(self) -> None:
        on = self.recorder is not None
        self.actions.toggle.setText("Stop recording" if on else "Start recording")
        self.actions.clean_video.setEnabled(not on)
        self.indicator.setVisible(on)
        if on:
            self.indicator.setText(f"● REC {_format_elapsed(0)}")

    def _recover(self) -> None:
        try:
            self._recovered = recover_all(self.sessions_dir)
        except OSError as exc:
            log.error("cannot look for unfinished sessions: %s", exc)


def install_recording(
    window: QMainWindow,
    engine: Engine,
    settings_getter: Callable[[], Settings],
    *,
    record_dir: Path | None = None,
    settings_setter: Callable[[Settings], None] | None = None,
    start: bool = False,
) -> RecordingController:
    """Give a main window recording: Record menu, toolbar button, indicator; start at once if asked."""
    controller = RecordingController(
        window, engine, settings_getter, record_dir=record_dir, settings_setter=settings_setter
    )
    controller.install()
    if start:
        controller.start()
    return controller
