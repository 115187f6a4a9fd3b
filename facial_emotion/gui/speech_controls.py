"""Speech in the app: a Speech menu, live subtitles, the transcript and the fused mood.

With a camera, the microphone is transcribed live (partials become subtitles, finals
enter the transcript and the mood fusion) on the shared clock the camera uses. With a
video file, its own sound track is transcribed in the background and the subtitles
follow the video's clock. Audio and utterances also go to the recorder when one is
installed. Nothing here blocks the GUI thread: recognition runs on its own thread.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QObject, Qt, QTimer, Signal
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

from facial_emotion.engine import Engine
from facial_emotion.fusion import Mood, MoodFuser
from facial_emotion.settings import Settings
from facial_emotion.sources import clock_ms
from facial_emotion.speech.playback import FileSound
from facial_emotion.types import Utterance

log = logging.getLogger(__name__)

ENGINES: Final[tuple[tuple[str, str], ...]] = (
    ("auto", "Automatic (Vosk when downloaded, else PocketSphinx)"),
    ("vosk", "Vosk (download needed)"),
    ("pocketsphinx", "PocketSphinx (built in)"),
)
SENTIMENT_COLORS: Final[dict[str, str]] = {"positive": "#2e9e44", "neutral": "#777777", "negative": "#c83737"}
SUBTITLE_HOLD_MS: Final[float] = 1500.0
HISTORY_ITEMS: Final[int] = 200


class _TeeAudio:
    """An audio source that also hands every chunk to a sink (the recorder)."""

    def __init__(self, source: Any, sink: Callable[[bytes, float], None]) -> None:
        self.source = source
        self.sink = sink
        self.name = getattr(source, "name", "audio")

    def chunks(self) -> Any:
        """The source's chunks, each also given to the sink."""
        for chunk, t_ms in self.source.chunks():
            self.sink(chunk, t_ms)
            yield chunk, t_ms

    def close(self) -> None:
        """Close the source."""
        self.source.close()


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


class _Signals(QObject):
    """Cross-thread results, delivered on the GUI thread."""

    file_done = Signal(int, object, object)  # ticket, utterances, error
    download_progress = Signal(int, object)  # bytes done, total or None
    download_done = Signal(object, object)  # path, error


class SpeechController(QObject):
    """Owns the speech channel of one window: its menu, panel, recogniser thread and mood fuser."""

    def __init__(
        self,
        window: QMainWindow,
        engine: Engine,
        settings_getter: Callable[[], Settings],
        settings_setter: Callable[[Settings], None] | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.engine = engine
        self.settings_getter = settings_getter
        self.settings_setter = settings_setter
        self.fuser = MoodFuser()
        window.mood_source = self.fuser  # the window builds its pipeline with it
        self.recorder = next((e for e in getattr(window, "extensions", []) if hasattr(e, "add_audio")), None)
        self.panel = SpeechPanel()
        self.dock = QDockWidget("Speech", window)
        self.dock.setObjectName("dock-speech")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        timeline = window.findChild(QDockWidget, "dock-timeline")
        if timeline is not None:  # share the bottom with the chart as a tab rather than squeeze it
            window.tabifyDockWidget(timeline, self.dock)
            timeline.raise_()
        self._signals = _Signals()
        self._signals.file_done.connect(self._on_file_done)
        self._signals.download_progress.connect(self._on_download_progress)
        self._signals.download_done.connect(self._on_download_done)
        self._transcriber: Any = None
        self._file_utterances: list[Utterance] = []
        self._file_shown = 0
        self._file_sound: FileSound | None = None
        self._file_path: str | None = None
        self._ticket = 0
        self._source_info: object = None
        self._progress: QProgressDialog | None = None
        self._build_menu(window.menu("speech") if hasattr(window, "menu") else window.menuBar().addMenu("S&peech"))
        if self.listening:  # ticked from the saved settings: never "Speech is off" beside a tick
            self.panel.status.setText("Speech is on: waiting for a source")
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_tick)
        self._timer.start(100)

    # -- settings -------------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        if self.settings_setter is not None:
            self.settings_setter(self.settings_getter().replace(**changes))

    @property
    def listening(self) -> bool:
        """True when the user switched speech on."""
        return self.settings_getter().speech_on

    # -- menu -----------------------------------------------------------------------------

    def _build_menu(self, menu: QMenu) -> None:
        self.listen_action = QAction("&Listen (transcribe speech)", self, checkable=True)
        self.listen_action.setShortcut("Ctrl+T")
        self.listen_action.setChecked(self.listening)
        self.listen_action.toggled.connect(self._on_listen_toggled)
        menu.addAction(self.listen_action)
        self.mic_menu = menu.addMenu("&Microphone")
        self.mic_menu.aboutToShow.connect(self._fill_mic_menu)
        self.engine_menu = menu.addMenu("Speech &engine")
        self.engine_group = QActionGroup(self)
        for key, label in ENGINES:
            action = QAction(label, self, checkable=True)
            action.setData(key)
            action.triggered.connect(lambda _=False, k=key: self._on_engine_chosen(k))
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
        chosen = self.settings_getter().speech_engine
        for action in self.engine_group.actions():
            action.setChecked(action.data() == chosen)
            if action.data() == "vosk":
                action.setEnabled(have_vosk)
                action.setToolTip("" if have_vosk else "Speech > Download the Vosk English model first")
        self.download_action.setEnabled(not have_vosk)
        self.listen_action.setChecked(self.listening)

    def _fill_mic_menu(self) -> None:
        self.mic_menu.clear()
        group = QActionGroup(self.mic_menu)
        chosen = self.settings_getter().mic
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
            action.triggered.connect(lambda _=False, i=index: self._on_mic_chosen(i))
            self.mic_menu.addAction(action)

    def _on_listen_toggled(self, checked: bool) -> None:
        if checked != self.listening:
            self._set(speech_on=checked)
        self._restart()

    def _on_engine_chosen(self, key: str) -> None:
        self._set(speech_engine=key)
        self._restart()

    def _on_mic_chosen(self, index: int | None) -> None:
        self._set(mic=index)
        self._restart()

    # -- running --------------------------------------------------------------------------

    def _stop(self) -> None:
        self._ticket += 1  # a file transcription still running is ignored when it ends
        if self._transcriber is not None:
            self._transcriber.stop(timeout_s=1.0)
            self._transcriber = None
        self._file_utterances = []
        self._file_shown = 0
        if self._file_sound is not None:
            self._file_sound.close()
            self._file_sound = None
        self.panel.show_partial("")

    def _restart(self) -> None:
        self._stop()
        if not self.listening:
            self.panel.status.setText("Speech is off (Speech > Listen)")
            return
        info = getattr(self.window, "source_info", None)
        if info is None:
            self.panel.status.setText("Speech is on: waiting for a source")
        elif info.live:
            self._start_microphone()
        else:
            self._start_file(self.settings_getter().last_source)

    def _open_recognizer(self) -> Any:
        from facial_emotion.speech.recognizers import open_recognizer

        return open_recognizer(self.settings_getter().speech_engine, None, partials=True)

    def _start_microphone(self) -> None:
        from facial_emotion.speech.audio import AudioError, MicrophoneAudioSource
        from facial_emotion.speech.transcribe import LiveTranscriber

        try:
            source: Any = MicrophoneAudioSource(self.settings_getter().mic, clock=clock_ms)
        except AudioError as exc:
            self.panel.status.setText(f"No speech: {exc}")
            self.window.statusBar().showMessage(f"Speech: {exc}", 8000)
            return
        if self.recorder is not None:
            source = _TeeAudio(source, self.recorder.add_audio)
        self._transcriber = LiveTranscriber(
            source, open_recognizer_fn=self._open_recognizer, on_utterance=self._on_utterance_thread
        )
        self._transcriber.start()
        self.panel.status.setText(f"Listening to {source.name}")
        self.dock.raise_()

    def _on_utterance_thread(self, utterance: Utterance) -> None:
        """On the recogniser thread: finals go to the fuser and the recorder (both thread-safe)."""
        if utterance.final:
            self.fuser.add_utterance(utterance)
            if self.recorder is not None:
                self.recorder.add_utterance(utterance)

    def _start_file(self, path: str | None) -> None:
        if not path or not Path(path).is_file():
            self.panel.status.setText("Speech: this source has no sound track")
            return
        self._file_path = path
        self.panel.status.setText(f"Transcribing the sound of {Path(path).name}...")
        self.dock.raise_()
        ticket, engine = self._ticket, self.settings_getter().speech_engine

        def work() -> None:
            from facial_emotion.speech.transcribe import TranscriptionError, transcribe_file

            try:
                self._signals.file_done.emit(ticket, transcribe_file(path, engine=engine), None)
            except TranscriptionError as exc:
                self._signals.file_done.emit(ticket, None, str(exc))

        threading.Thread(target=work, name="speech-file", daemon=True).start()

    def _on_file_done(self, ticket: int, utterances: list[Utterance] | None, error: str | None) -> None:
        if ticket != self._ticket:
            return
        if error is not None:
            self.panel.status.setText(f"No speech: {error}")
            return
        self._file_utterances = sorted(utterances or [], key=lambda u: u.start_ms)
        if self.recorder is not None and self._file_path:
            self._file_sound = FileSound(self._file_path, self.recorder.add_audio)
        for utterance in self._file_utterances:
            self.fuser.add_utterance(utterance)  # each counts only from its start on the video's clock
        self.panel.status.setText(f"{len(self._file_utterances)} utterance(s) in the sound track")

    def _on_tick(self) -> None:
        if self.listen_action.isChecked() != self.listening:  # the settings changed elsewhere (--mic)
            self.listen_action.setChecked(self.listening)  # toggled: restarts speech to match
        info = getattr(self.window, "source_info", None)
        if info is not self._source_info:
            self._source_info = info
            self.fuser.clear()
            if self.listening:
                self._restart()
        result = self.engine.latest()
        t_ms = result.frame.source_timestamp_ms if result is not None else None
        if self._transcriber is not None:
            partial, finals = self._transcriber.poll()
            for utterance in finals:
                self.panel.show_final(utterance)
            if partial is not None:
                self.panel.show_partial(partial.text)
            if not self._transcriber.running and self._transcriber.error:
                self.panel.status.setText(f"Speech stopped: {self._transcriber.error}")
                self._transcriber = None
        elif self._file_utterances and t_ms is not None:
            self._show_file_subtitles(t_ms, result.frame.timestamp_ms - t_ms)
        if self._file_sound is not None and t_ms is not None:
            self._file_sound.feed(t_ms, result.frame.timestamp_ms - t_ms)
        self.panel.show_mood(self.fuser.scene_mood(t_ms) if t_ms is not None and self.fuser.track_ids() else None)

    def _show_file_subtitles(self, t_ms: float, offset_ms: float) -> None:
        """Subtitles of a file follow its clock (the transcript was made ahead of playback).

        Each utterance, as playback reaches it, also goes to the recording on session time
        (``offset_ms``: session time minus the file's time in this pass), so a recording of
        a video file keeps what was said in it, pass after pass.
        """
        while (
            self._file_shown < len(self._file_utterances) and self._file_utterances[self._file_shown].start_ms <= t_ms
        ):
            utterance = self._file_utterances[self._file_shown]
            self.panel.show_final(utterance)
            if self.recorder is not None:
                self.recorder.add_utterance(
                    dataclasses.replace(
                        utterance, start_ms=utterance.start_ms + offset_ms, end_ms=utterance.end_ms + offset_ms
                    )
                )
            self._file_shown += 1
        if self._file_shown and t_ms > self._file_utterances[self._file_shown - 1].end_ms + SUBTITLE_HOLD_MS:
            self.panel.subtitle.setText("")
        if self._file_shown and t_ms < self._file_utterances[0].start_ms:  # the video looped
            self._file_shown = 0
            self.panel.history.clear()

    # -- the Vosk download ------------------------------------------------------------------

    def _on_download(self) -> None:
        """Download the Vosk model on a thread (the user asked: the only network access)."""
        self._progress = QProgressDialog("Downloading the Vosk English model...", "", 0, 0, self.window)
        self._progress.setCancelButton(None)
        self._progress.setWindowTitle("Speech model")
        self._progress.show()
        self.download_action.setEnabled(False)

        def work() -> None:
            from facial_emotion.speech.download import DownloadError, download_model

            try:
                path = download_model("vosk-small-en-us", progress=self._signals.download_progress.emit)
                self._signals.download_done.emit(path, None)
            except DownloadError as exc:
                self._signals.download_done.emit(None, str(exc))

        threading.Thread(target=work, name="speech-download", daemon=True).start()

    def _on_download_progress(self, done: int, total: int | None) -> None:
        if self._progress is not None and total:
            self._progress.setMaximum(100)
            self._progress.setValue(int(100 * done / total))

    def _on_download_done(self, path: Path | None, error: str | None) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        message = f"Vosk model installed in {path}" if error is None else f"Download failed: {error}"
        self.window.statusBar().showMessage(message, 10000)
        self.panel.status.setText(message)
        self._sync_menu()

    def shutdown(self) -> None:
        """Stop the recogniser thread (within a second)."""
        self._timer.stop()
        self._stop()


def install_speech(
    window: QMainWindow,
    engine: Engine,
    settings_getter: Callable[[], Settings],
    settings_setter: Callable[[Settings], None] | None = None,
) -> SpeechController:
    """Add the Speech menu and panel to a window; the window calls ``shutdown()`` on close."""
    return SpeechController(window, engine, settings_getter, settings_setter)
