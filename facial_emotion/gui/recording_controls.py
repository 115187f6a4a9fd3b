"""The Record menu, toolbar button and status-bar indicator of the main window.

Recording is the live session's (``live.recording``): this starts and stops it on a click
and shows what the session publishes (started, stopped, finished, failed, recovered);
a QTimer reads the running recording's elapsed time for the indicator.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final, NamedTuple

from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QMessageBox, QToolBar

from facial_emotion.live import LiveSession
from facial_emotion.live.events import (
    LiveEvent,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    RecordingStopped,
    SessionsRecovered,
    SettingsChanged,
)

log = logging.getLogger(__name__)

TICK_MS: Final[int] = 250


class RecordingActions(NamedTuple):
    """Every QAction of the Record menu."""

    toggle: QAction
    clean_video: QAction
    open_folder: QAction


def _make_action(parent: QObject, text: str, *, shortcut: str | None = None, checkable: bool = False) -> QAction:
    action = QAction(text, parent)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    action.setCheckable(checkable)
    return action


def format_elapsed(seconds: float) -> str:
    """Elapsed time as MM:SS, or H:MM:SS from an hour on."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class RecordingControls(QObject):
    """The Record menu, button and indicator of one window, over its live session's recording."""

    recording_changed = Signal(bool)
    session_finished = Signal(str)
    error_shown = Signal(str)

    def __init__(self, window: QMainWindow, live: LiveSession, menu: QMenu) -> None:
        super().__init__(window)
        self.window, self.live = window, live
        self._message_box: QMessageBox | None = None
        self.actions = RecordingActions(
            toggle=_make_action(self, "Start recording", shortcut="Ctrl+R"),
            clean_video=_make_action(self, "Keep clean video too", checkable=True),
            open_folder=_make_action(self, "Open sessions folder"),
        )
        self.actions.toggle.setToolTip("Record the session to disk (Ctrl+R)")
        self.actions.toggle.triggered.connect(self._on_toggle_triggered)
        self.actions.clean_video.triggered.connect(lambda on: self.live.update(record_clean_video=on))
        self.actions.open_folder.triggered.connect(self._on_open_folder_triggered)
        self.indicator = QLabel()
        self.indicator.setStyleSheet("color: #d01010; font-weight: bold")
        self.indicator.hide()
        menu.addAction(self.actions.toggle)
        menu.addAction(self.actions.clean_video)
        menu.addSeparator()
        menu.addAction(self.actions.open_folder)
        toolbars = window.findChildren(QToolBar)
        toolbar = toolbars[0] if toolbars else window.addToolBar("Recording")
        toolbar.addAction(self.actions.toggle)
        window.statusBar().addPermanentWidget(self.indicator)
        self._sync()
        self._unsubscribe = live.subscribe(self._on_live_event)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_tick)
        self._timer.start()

    @property
    def recording(self) -> bool:
        """True while a recording is running."""
        return self.live.recording.recording

    @property
    def sessions_dir(self) -> Path:
        """The folder that holds the sessions."""
        return self.live.recording.sessions_dir

    # -- slots ---------------------------------------------------------------------

    def _on_toggle_triggered(self) -> None:
        if self.recording:
            self.live.stop_recording()
        else:
            self.live.start_recording()

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

    def _sync(self) -> None:
        """Texts and check marks from the session (the model, not the widget)."""
        on = self.recording
        self.actions.toggle.setText("Stop recording" if on else "Start recording")
        self.actions.clean_video.setEnabled(not on)
        self.actions.clean_video.setChecked(self.live.settings.record_clean_video)
        self.indicator.setVisible(on)
        if on:
            self.indicator.setText(f"● REC {format_elapsed(0)}")

    def _on_tick(self) -> None:
        stats = self.live.recording_stats()
        if stats is not None and stats.error is None:
            text = f"● REC {format_elapsed(stats.elapsed_s)}"
            self.indicator.setText(text + (f"  ({stats.dropped} dropped)" if stats.dropped else ""))

    def _on_live_event(self, event: LiveEvent) -> None:
        if isinstance(event, RecordingStarted):
            self._sync()
            self.window.statusBar().showMessage(f"Recording to {event.folder}", 5000)
            self.recording_changed.emit(True)
        elif isinstance(event, RecordingStopped):
            self._sync()
            self.window.statusBar().showMessage(f"Finishing {event.folder} …")
            self.recording_changed.emit(False)
        elif isinstance(event, RecordingFinished):
            self.window.statusBar().showMessage(f"Session saved to {event.folder}", 8000)
            self.session_finished.emit(str(event.folder))
        elif isinstance(event, RecordingFailed):
            self._show_error(event.message)
        elif isinstance(event, SessionsRecovered):
            names = ", ".join(p.name for p in event.folders)
            message = f"Recovered {len(event.folders)} unfinished session(s): {names}"
            self.window.statusBar().showMessage(message, 10000)
        elif isinstance(event, SettingsChanged):
            self._sync()

    def _show_error(self, message: str) -> None:
        self.window.statusBar().showMessage(f"Recording stopped: {message}")
        box = QMessageBox(QMessageBox.Icon.Warning, "Recording stopped", message, parent=self.window)
        box.setModal(False)
        box.show()
        self._message_box = box
        self.error_shown.emit(message)

    def shutdown(self) -> None:
        """Stop showing the session (the session finishes its recording when it closes)."""
        self._timer.stop()
        self._unsubscribe()
