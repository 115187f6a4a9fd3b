"""Speech in the window: the Speech menu, live subtitles, the transcript and the fused mood.

Everything that listens, transcribes and fuses is the live session's (``live.speech``);
this only shows what it publishes (``SpeechStatus``, ``SpeechPartial``, ``SpeechHeard``,
``MoodChanged``, the download's progress) and turns the menu's clicks into settings.
"""

from __future__ import annotations

import logging
from typing import Final

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QListWidget,
    QMainWindow,
    QMenu,
    QProgressDialog,
    QVBoxLayout,
    QWidget,
)

from facial_emotion.fusion import Mood
from facial_emotion.live import LiveSession
from facial_emotion.live.events import (
    DownloadFinished,
    DownloadProgress,
    LiveEvent,
    MoodChanged,
    SettingsChanged,
    SpeechCleared,
    SpeechHeard,
    SpeechPartial,
    SpeechStatus,
)
from facial_emotion.types import Utterance

log = logging.getLogger(__name__)

ENGINES: Final[tuple[tuple[str, str], ...]] = (
    ("auto", "Automatic (Vosk when downloaded, else PocketSphinx)"),
    ("vosk", "Vosk (download needed)"),
    ("pocketsphinx", "PocketSphinx (built in)"),
)
SENTIMENT_COLORS: Final[dict[str, str]] = {"positive": "#2e9e44", "neutral": "#777777", "negative": "#c83737"}
HISTORY_ITEMS: Final[int] = 200


class SpeechPanel(QWidget):
    """Subtitles, the scene's fused mood, and the recent transcript."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.subtitle = QLabel("")
        self.subtitle.setWordWrap(True)
        self.subtitle.setStyleSheet("font-size: 15px;")
        self.mood = QLabel("Mood: -")
        self.status = QLabel("Speech is off (Speech > Listen)")
        self.status.setStyleSheet("color: #777;")
        self.history = QListWidget()
        layout = QVBoxLayout(self)
        for widget in (self.status, self.subtitle, self.mood, self.history):
            layout.addWidget(widget)

    def show_partial(self, text: str) -> None:
        """A live, not yet final subtitle."""
        self.subtitle.setText(f"<i style='color:#888'>{text}</i>" if text else "")

    def show_final(self, utterance: Utterance) -> None:
        """A final utterance: as subtitle and at the top of the transcript, coloured by sentiment."""
        label = utterance.sentiment.label if utterance.sentiment else "neutral"
        score = utterance.sentiment.compound if utterance.sentiment else 0.0
        color = SENTIMENT_COLORS.get(label, "#777777")
        self.subtitle.setText(f"<span style='color:{color}'>{utterance.text}</span>")
        seconds = utterance.start_ms / 1000.0
        self.history.insertItem(0, f"{seconds:7.1f} s  [{label} {score:+.2f}]  {utterance.text}")
        while self.history.count() > HISTORY_ITEMS:
            self.history.takeItem(self.history.count() - 1)

    def show_mood(self, mood: Mood | None) -> None:
        """The scene's fused mood with both channels."""
        if mood is None:
            self.mood.setText("Mood: -")
            return
        face = "-" if mood.face_valence is None else f"{mood.face_valence:+.2f}"
        speech = "-" if mood.speech_valence is None else f"{mood.speech_valence:+.2f}"
        self.mood.setText(f"Mood: <b>{mood.label} {mood.score:+.2f}</b> (face {face}, speech {speech})")


class SpeechControls(QObject):
    """The speech menu and panel of one window, showing what its live session hears."""

    def __init__(self, window: QMainWindow, live: LiveSession, menu: QMenu) -> None:
        super().__init__(window)
        self.window = window
        self.live = live
        self.panel = SpeechPanel()
        self.panel.status.setText(live.speech.status)
        self.dock = QDockWidget("Speech", window)
        self.dock.setObjectName("dock-speech")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        timeline = window.findChild(QDockWidget, "dock-timeline")
        if timeline is not None:  # share the bottom with the chart as a tab rather than squeeze it
            window.tabifyDockWidget(timeline, self.dock)
            timeline.raise_()
        self._progress: QProgressDialog | None = None
        self._build_menu(menu)
        self._unsubscribe = live.subscribe(self._on_live_event)

    # -- menu -----------------------------------------------------------------------------

    def _build_menu(self, menu: QMenu) -> None:
        self.listen_action = QAction("&Listen (transcribe speech)", self, checkable=True)
        self.listen_action.setShortcut("Ctrl+T")
        self.listen_action.triggered.connect(self.live.set_listening)
        menu.addAction(self.listen_action)
        self.mic_menu = menu.addMenu("&Microphone")
        self.mic_menu.aboutToShow.connect(self._fill_mic_menu)
        self.engine_menu = menu.addMenu("Speech &engine")
        self.engine_group = QActionGroup(self)
        for key, label in ENGINES:
            action = QAction(label, self, checkable=True)
            action.setData(key)
            action.triggered.connect(lambda _=False, k=key: self.live.update(speech_engine=k))
            self.engine_group.addAction(action)
            self.engine_menu.addAction(action)
        self.download_action = QAction("&Download the Vosk English model (40 MB)...", self)
        self.download_action.triggered.connect(self._on_download)
        menu.addAction(self.download_action)
        self._sync_menu()

    def _sync_menu(self) -> None:
        """Check marks and enabled states, read from the settings and the disk."""
        from facial_emotion.speech.download import find_vosk_model

        have_vosk = find_vosk_model() is not None
        settings = self.live.settings
        for action in self.engine_group.actions():
            action.setChecked(action.data() == settings.speech_engine)
            if action.data() == "vosk":
                action.setEnabled(have_vosk)
                action.setToolTip("" if have_vosk else "Speech > Download the Vosk English model first")
        self.download_action.setEnabled(not have_vosk)
        self.listen_action.setChecked(settings.speech_on)

    def _fill_mic_menu(self) -> None:
        self.mic_menu.clear()
        group = QActionGroup(self.mic_menu)
        chosen = self.live.settings.mic
        try:
            from facial_emotion.speech.audio import list_microphones

            mics = [(None, "Default input"), *list_microphones()]
        except Exception as exc:  # no PortAudio, no sound server
            mics = []
            self.mic_menu.addAction(f"No microphones ({exc})").setEnabled(False)
        for index, name in mics:
            action = QAction(name, self.mic_menu, checkable=True)
            group.addAction(action)
            action.setChecked(index == chosen)
            action.triggered.connect(lambda _=False, i=index: self.live.update(mic=i))
            self.mic_menu.addAction(action)

    def _on_download(self) -> None:
        """Download the Vosk model (the user asked: the only network access) with a progress box."""
        self._progress = QProgressDialog("Downloading the Vosk English model...", "", 0, 0, self.window)
        self._progress.setCancelButton(None)
        self._progress.setWindowTitle("Speech model")
        self._progress.show()
        self.download_action.setEnabled(False)
        self.live.download_vosk_model()

    # -- what the session publishes -----------------------------------------------------------

    def _on_live_event(self, event: LiveEvent) -> None:
        if isinstance(event, SpeechStatus):
            self.panel.status.setText(event.text)
            if event.active:
                self.dock.raise_()
            if event.text.startswith("No speech: "):  # worth a line where the user looks
                self.window.statusBar().showMessage(f"Speech: {event.text.removeprefix('No speech: ')}", 8000)
        elif isinstance(event, SpeechPartial):
            self.panel.show_partial(event.text)
        elif isinstance(event, SpeechHeard):
            self.panel.show_final(event.utterance)
        elif isinstance(event, SpeechCleared):
            self.panel.subtitle.setText("")
            if not event.subtitle_only:
                self.panel.history.clear()
        elif isinstance(event, MoodChanged):
            self.panel.show_mood(event.mood)
        elif isinstance(event, SettingsChanged):
            self._sync_menu()
        elif isinstance(event, DownloadProgress):
            if self._progress is not None and event.total:
                self._progress.setMaximum(100)
                self._progress.setValue(int(100 * event.done / event.total))
        elif isinstance(event, DownloadFinished):
            if self._progress is not None:
                self._progress.close()
                self._progress = None
            failed = event.error is not None
            message = f"Download failed: {event.error}" if failed else f"Vosk model installed in {event.path}"
            self.window.statusBar().showMessage(message, 10000)
            self.panel.status.setText(message)
            self._sync_menu()

    def shutdown(self) -> None:
        """Stop listening to the session (its speech is stopped by the session)."""
        self._unsubscribe()
