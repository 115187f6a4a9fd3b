"""Audio to scored utterances: whole files for ``analyze``/``transcribe``, and a live ASR thread."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from facial_emotion.speech.audio import AudioError, AudioSource, open_audio_file
from facial_emotion.speech.recognizers import Recognizer, RecognizerError, open_recognizer
from facial_emotion.speech.sentiment import score_text, with_sentiment
from facial_emotion.types import Utterance

log = logging.getLogger(__name__)

MAX_PENDING_FINALS: Final[int] = 256
"""Finals the live thread keeps for a slow poller; the oldest go first."""


class TranscriptionError(RuntimeError):
    """A file cannot be transcribed (missing, no audio, undecodable, no engine); the message says why."""


def recognize(
    source: AudioSource, recognizer: Recognizer, *, on_utterance: Callable[[Utterance], None] | None = None
) -> list[Utterance]:
    """Run source through recognizer to the end; the finals, scored. Partials (scored) go to on_utterance."""
    finals: list[Utterance] = []

    def take(batch: Iterable[Utterance]) -> None:
        for utterance in batch:
            scored = with_sentiment(utterance)
            if scored.final:
                finals.append(scored)
            if on_utterance is not None:
                on_utterance(scored)

    try:
        for chunk, t_ms in source.chunks():
            take(recognizer.accept(chunk, t_ms))
        take(recognizer.finish())
    finally:
        source.close()
    return finals


def transcribe_file(path: str | Path, *, engine: str = "auto", vosk_model: str | Path | None = None) -> list[Utterance]:
    """The final utterances of a WAV or video file, with word times in ms from the file start and sentiment.

    Raises TranscriptionError with a one-line message when the file is missing, has no
    audio track, cannot be decoded, or no engine can be opened.
    """
    try:
        source = open_audio_file(path)  # first: a file without audio is reported before a model loads
        try:
            recognizer = open_recognizer(engine, vosk_model, partials=False)
        except RecognizerError:
            source.close()
            raise
        utterances = recognize(source, recognizer)
    except (AudioError, RecognizerError) as exc:
        raise TranscriptionError(str(exc)) from exc
    log.info("%s: %d utterance(s) with %s", Path(path).name, len(utterances), recognizer.name)
    return utterances


def utterance_to_json(utterance: Utterance) -> dict[str, Any]:
    """A JSON-ready dict: text, start_ms, end_ms, words [{text, start_ms, end_ms, conf}], sentiment, label."""
    sentiment = utterance.sentiment or score_text(utterance.text)
    return {
        "text": utterance.text,
        "final": utterance.final,
        "start_ms": round(utterance.start_ms, 1),
        "end_ms": round(utterance.end_ms, 1),
        "words": [
            {
                "text": w.text,
                "start_ms": round(w.start_ms, 1),
                "end_ms": round(w.end_ms, 1),
                "conf": round(w.confidence, 3),
            }
            for w in utterance.words
        ],
        "sentiment": sentiment.compound,
        "label": sentiment.label,
    }


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on lower-cased words."""
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(len(ref), 1)


class LiveTranscriber:
    """The ASR thread for live audio: reads a source, recognises, scores; the GUI polls the results.

    ``open_recognizer_fn`` runs on the thread (loading a model takes a while). The callback of
    the audio source only queues bytes; this thread does all the work. ``poll()`` returns the
    latest partial (None once it became final) and the finals since the last poll.
    """

    def __init__(
        self,
        source: AudioSource,
        *,
        open_recognizer_fn: Callable[[], Recognizer] | None = None,
        on_utterance: Callable[[Utterance], None] | None = None,
    ) -> None:
        self.source = source
        self._open = open_recognizer_fn or (lambda: open_recognizer("auto"))
        self._on_utterance = on_utterance
        self._lock = threading.Lock()
        self._partial: Utterance | None = None
        self._finals: collections.deque[Utterance] = collections.deque(maxlen=MAX_PENDING_FINALS)
        self._thread = threading.Thread(target=self._run, name="speech-asr", daemon=True)
        self.engine: str | None = None
        self.error: str | None = None

    def start(self) -> None:
        """Start the ASR thread."""
        self._thread.start()

    def _publish(self, utterance: Utterance) -> None:
        with self._lock:
            if utterance.final:
                self._finals.append(utterance)
                self._partial = None
            else:
                self._partial = utterance
        if self._on_utterance is not None:
            self._on_utterance(utterance)

    def _run(self) -> None:
        try:
            recognizer = self._open()
            self.engine = recognizer.name
            recognize(self.source, recognizer, on_utterance=self._publish)
        except (AudioError, RecognizerError) as exc:
            self.error = str(exc)
            log.error("speech stopped: %s", exc)
        except Exception as exc:  # keep the app alive; the error is shown, not raised on a thread
            self.error = f"speech stopped: {exc}"
            log.exception("speech thread failed")
        finally:
            self.source.close()

    def poll(self) -> tuple[Utterance | None, tuple[Utterance, ...]]:
        """The current partial (or None) and the finals since the last poll."""
        with self._lock:
            finals = tuple(self._finals)
            self._finals.clear()
            return self._partial, finals

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Close the source and wait up to timeout_s for the thread; True when it ended."""
        self.source.close()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()
