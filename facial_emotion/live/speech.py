"""The speech channel of a live session: microphone or a video's sound track, mood fusion.

With a live source (a camera), the microphone is transcribed live on its own thread
(partials become subtitles, finals enter the transcript and the mood fusion) on the
clock the camera uses. With a video file, its own sound track is transcribed ahead on
a helper thread, and each utterance is shown when playback reaches it, on the video's
clock. Audio and utterances also go to the recording, on session time. Nothing here
blocks the caller: ``poll`` only collects what the threads made.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol

from facial_emotion.engine import SourceOpened
from facial_emotion.fusion import Mood, MoodFuser
from facial_emotion.live.events import (
    DownloadFinished,
    DownloadProgress,
    LiveEvent,
    MoodChanged,
    SpeechCleared,
    SpeechHeard,
    SpeechPartial,
    SpeechStatus,
)
from facial_emotion.settings import Settings
from facial_emotion.sources import clock_ms
from facial_emotion.speech.playback import FileSound
from facial_emotion.types import FrameResult, Utterance

log = logging.getLogger(__name__)

SUBTITLE_HOLD_MS: Final[float] = 1500.0
STOP_TIMEOUT_S: Final[float] = 1.0
OFF_TEXT: Final[str] = "Speech is off (Speech > Listen)"
WAITING_TEXT: Final[str] = "Speech is on: waiting for a source"


class SpeechSink(Protocol):
    """Where audio and final utterances go besides the screen (the recording)."""

    def add_audio(self, chunk: bytes, t_ms: float) -> None:
        """16 kHz mono int16 PCM starting at t_ms on session time."""
        ...

    def add_utterance(self, utterance: Utterance) -> None:
        """A final utterance on session time."""
        ...


class _TeeAudio:
    """An audio source that also hands every chunk to a sink (the recording)."""

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


class SpeechListener:
    """Transcribes what the session's source says and fuses it with the faces' emotions."""

    def __init__(self, fuser: MoodFuser, sink: SpeechSink, publish: Callable[[LiveEvent], None]) -> None:
        self.fuser = fuser
        self.sink = sink
        self._publish = publish
        self._settings = Settings()
        self._source: SourceOpened | None = None
        self._file_path: str | None = None
        self._transcriber: Any = None
        self._file_utterances: list[Utterance] = []
        self._file_shown = 0
        self._file_sound: FileSound | None = None
        self._ticket = 0
        self._done: queue.SimpleQueue[tuple[str, int, Any, str | None]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._mood: Mood | None = None
        self._subtitle_on = False
        self.status = OFF_TEXT

    # -- what the session tells it ------------------------------------------------------

    def configure(self, settings: Settings) -> None:
        """New settings: speech restarts when listening, the engine or the microphone changed."""
        old, self._settings = self._settings, settings
        keys = ("speech_on", "speech_engine", "mic")
        if any(getattr(old, k) != getattr(settings, k) for k in keys):
            self.restart()

    def source_opened(self, event: SourceOpened, path: str | None) -> None:
        """Another source plays (path: its file, None for a camera): speech starts afresh for it."""
        self._source, self._file_path = event, path
        self.fuser.clear()
        self.restart()

    @property
    def listening(self) -> bool:
        """True when the user switched speech on."""
        return self._settings.speech_on

    # -- running ------------------------------------------------------------------------

    def _set_status(self, text: str, *, active: bool = False) -> None:
        self.status = text
        self._publish(SpeechStatus(text, active))

    def stop(self) -> None:
        """Stop transcribing (the recogniser thread within a second)."""
        self._ticket += 1  # a file transcription still running is ignored when it ends
        if self._transcriber is not None:
            self._transcriber.stop(timeout_s=STOP_TIMEOUT_S)
            self._transcriber = None
        self._file_utterances = []
        self._file_shown = 0
        if self._file_sound is not None:
            self._file_sound.close()
            self._file_sound = None
        self._publish(SpeechPartial(""))

    def restart(self) -> None:
        """Stop, then start what the settings and the source call for."""
        self.stop()
        if not self.listening:
            self._set_status(OFF_TEXT)
        elif self._source is None:
            self._set_status(WAITING_TEXT)
        elif self._source.live:
            self._start_microphone()
        else:
            self._start_file(self._file_path)

    def _open_recognizer(self) -> Any:
        from facial_emotion.speech.recognizers import open_recognizer

        return open_recognizer(self._settings.speech_engine, None, partials=True)

    def _start_microphone(self) -> None:
        from facial_emotion.speech.audio import AudioError, MicrophoneAudioSource
        from facial_emotion.speech.transcribe import LiveTranscriber

        try:
            source: Any = MicrophoneAudioSource(self._settings.mic, clock=clock_ms)
        except AudioError as exc:
            self._set_status(f"No speech: {exc}")
            return
        self._transcriber = LiveTranscriber(
            _TeeAudio(source, self.sink.add_audio),
            open_recognizer_fn=self._open_recognizer,
            on_utterance=self._on_utterance_thread,
        )
        self._transcriber.start()
        self._set_status(f"Listening to {source.name}", active=True)

    def _on_utterance_thread(self, utterance: Utterance) -> None:
        """On the recogniser thread: finals go to the fuser and the recording (both thread-safe)."""
        if utterance.final:
            self.fuser.add_utterance(utterance)
            self.sink.add_utterance(utterance)

    def _start_file(self, path: str | None) -> None:
        if not path or not Path(path).is_file():
            self._set_status("Speech: this source has no sound track")
            return
        self._set_status(f"Transcribing the sound of {Path(path).name}...", active=True)
        ticket, engine = self._ticket, self._settings.speech_engine

        def work() -> None:
            from facial_emotion.speech.transcribe import TranscriptionError, transcribe_file

            try:
                self._done.put(("file", ticket, transcribe_file(path, engine=engine), None))
            except TranscriptionError as exc:
                self._done.put(("file", ticket, None, str(exc)))

        self._spawn(work, "speech-file")

    def _spawn(self, work: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=work, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _on_file_done(self, utterances: list[Utterance] | None, error: str | None) -> None:
        if error is not None:
            self._set_status(f"No speech: {error}")
            return
        self._file_utterances = sorted(utterances or [], key=lambda u: u.start_ms)
        if self._file_path:
            self._file_sound = FileSound(self._file_path, self.sink.add_audio)
        for utterance in self._file_utterances:
            self.fuser.add_utterance(utterance)  # each counts only from its start on the video's clock
        self._set_status(f"{len(self._file_utterances)} utterance(s) in the sound track")

    # -- the Vosk download ----------------------------------------------------------------

    def download_vosk_model(self) -> None:
        """Download the Vosk English model on a thread (the user asked: the only network access)."""

        def work() -> None:
            from facial_emotion.speech.download import DownloadError, download_model

            def progress(done: int, total: int | None) -> None:
                self._done.put(("progress", 0, (done, total), None))

            try:
                self._done.put(("download", 0, download_model("vosk-small-en-us", progress=progress), None))
            except DownloadError as exc:
                self._done.put(("download", 0, None, str(exc)))

        self._spawn(work, "speech-download")

    # -- polling --------------------------------------------------------------------------

    def poll(self, result: FrameResult | None) -> None:
        """Publish what the threads made; file subtitles and sound follow the newest frame."""
        while not self._done.empty():
            kind, ticket, value, error = self._done.get_nowait()
            if kind == "file" and ticket == self._ticket:
                self._on_file_done(value, error)
            elif kind == "progress":
                self._publish(DownloadProgress(*value))
            elif kind == "download":
                self._publish(DownloadFinished(value, error))
        t_ms = result.frame.source_timestamp_ms if result is not None else None
        offset_ms = result.frame.timestamp_ms - t_ms if result is not None and t_ms is not None else 0.0
        if self._transcriber is not None:
            partial, finals = self._transcriber.poll()
            for utterance in finals:
                self._publish(SpeechHeard(utterance))
            if partial is not None:
                self._publish(SpeechPartial(partial.text))
            if not self._transcriber.running and self._transcriber.error:
                self._set_status(f"Speech stopped: {self._transcriber.error}")
                self._transcriber = None
        elif self._file_utterances and t_ms is not None:
            self._follow_file(t_ms, offset_ms)
        if self._file_sound is not None and t_ms is not None:
            self._file_sound.feed(t_ms, offset_ms)
        mood = self.fuser.scene_mood(t_ms) if t_ms is not None and self.fuser.track_ids() else None
        if mood != self._mood:
            self._mood = mood
            self._publish(MoodChanged(mood))

    def _follow_file(self, t_ms: float, offset_ms: float) -> None:
        """Subtitles of a file follow its clock (the transcript was made ahead of playback).

        Each utterance, as playback reaches it, also goes to the recording on session time
        (``offset_ms``: session time minus the file's time in this pass), so a recording of
        a video file keeps what was said in it, pass after pass.
        """
        utterances = self._file_utterances
        while self._file_shown < len(utterances) and utterances[self._file_shown].start_ms <= t_ms:
            utterance = utterances[self._file_shown]
            self._publish(SpeechHeard(utterance))
            self._subtitle_on = True
            self.sink.add_utterance(
                dataclasses.replace(
                    utterance, start_ms=utterance.start_ms + offset_ms, end_ms=utterance.end_ms + offset_ms
                )
            )
            self._file_shown += 1
        held = self._file_shown and t_ms > utterances[self._file_shown - 1].end_ms + SUBTITLE_HOLD_MS
        if held and self._subtitle_on:
            self._subtitle_on = False
            self._publish(SpeechCleared(subtitle_only=True))
        if self._file_shown and t_ms < utterances[0].start_ms:  # the video looped
            self._file_shown = 0
            self._publish(SpeechCleared())

    def close(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop every thread of speech (helper threads get timeout_s)."""
        self.stop()
        for thread in self._threads:
            thread.join(timeout_s)
