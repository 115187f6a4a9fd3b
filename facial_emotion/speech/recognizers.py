"""Speech recognisers behind one protocol: Vosk (primary) and PocketSphinx (offline fallback)."""

from __future__ import annotations

import bisect
import functools
import json
import logging
import re
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from facial_emotion.speech.audio import SAMPLE_RATE, duration_ms
from facial_emotion.types import Utterance, Word

log = logging.getLogger(__name__)

Engine = Literal["auto", "vosk", "pocketsphinx"]
ENGINES: Final[tuple[str, ...]] = ("auto", "vosk", "pocketsphinx")
PARTIAL_EVERY_MS: Final[float] = 300.0
"""How often the PocketSphinx recogniser publishes a partial result while speech goes on."""
POCKETSPHINX_OPTIONS: Final[dict[str, Any]] = {"fwdflat": False, "bestpath": True}
"""Skip the second (flat-lexicon) pass: about half the CPU for a few points of word error rate."""
_FILLER = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+)$")


class RecognizerError(RuntimeError):
    """A recogniser cannot be opened; the message is for the user."""


class Recognizer(Protocol):
    """Streaming speech to text: ``accept`` audio, get partial and final utterances back.

    ``accept(chunk, t_ms)`` takes 16 kHz mono int16 bytes whose first sample is at
    ``t_ms`` on the shared clock and returns what became known: zero or more
    ``Utterance(final=False)`` partials (live subtitles, each replacing the previous one)
    and ``Utterance(final=True)`` results with word times on the same clock. ``finish()``
    flushes the speech still open at the end of the stream. Utterances carry no
    sentiment; the caller scores them. One recogniser serves one stream at a time and is
    not thread-safe: one ASR thread owns it.
    """

    name: str

    def accept(self, chunk: bytes, t_ms: float) -> tuple[Utterance, ...]:
        """Feed audio; the partials and finals it produced."""
        ...

    def finish(self) -> tuple[Utterance, ...]:
        """End the stream; the last finals."""
        ...


class StreamClock:
    """Maps ms of audio fed to a recogniser onto the shared clock, across gaps and drops."""

    def __init__(self) -> None:
        self._stream: list[float] = []
        self._shared: list[float] = []
        self.fed_ms = 0.0

    def feed(self, chunk: bytes, t_ms: float) -> None:
        """Note that chunk, starting at t_ms, is the next audio fed."""
        if not self._stream or abs(self.to_shared(self.fed_ms) - t_ms) > 1.0:
            self._stream.append(self.fed_ms)
            self._shared.append(t_ms)
            if len(self._stream) > 4096:  # a long live session with many drops: forget the oldest
                del self._stream[:2048], self._shared[:2048]
        self.fed_ms += duration_ms(chunk)

    def to_shared(self, stream_ms: float) -> float:
        """The shared-clock time of a point of the fed audio."""
        if not self._stream:
            return stream_ms
        i = max(0, bisect.bisect_right(self._stream, stream_ms) - 1)
        return self._shared[i] + (stream_ms - self._stream[i])


def _utterance(words: list[Word], *, final: bool, text: str | None = None) -> Utterance:
    return Utterance(
        text=text if text is not None else " ".join(w.text for w in words),
        final=final,
        start_ms=words[0].start_ms,
        end_ms=words[-1].end_ms,
        words=tuple(words),
    )


@functools.lru_cache(maxsize=2)
def _vosk_model(model_dir: Path) -> Any:
    """A loaded Vosk model, shared by the recognisers that use it (loading takes seconds; it is read-only)."""
    import vosk

    vosk.SetLogLevel(-1)
    try:
        return vosk.Model(str(model_dir))
    except Exception as exc:  # vosk raises a bare Exception when loading fails
        raise RecognizerError(f"cannot load the Vosk model in {model_dir}: {exc}") from exc


class VoskRecognizer:
    """Vosk (Kaldi) streaming recogniser with word times; needs a model folder."""

    name = "vosk"

    def __init__(self, model_dir: str | Path) -> None:
        import vosk

        self.model_dir = Path(model_dir).resolve()
        self._model = _vosk_model(self.model_dir)
        self._rec = vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        self._rec.SetWords(True)
        self._rec.SetPartialWords(True)
        self._clock = StreamClock()
        self._last_partial = ""

    def _final(self, result_json: str) -> tuple[Utterance, ...]:
        result = json.loads(result_json)
        self._last_partial = ""
        words = [
            Word(
                w["word"],
                self._clock.to_shared(w["start"] * 1000.0),
                self._clock.to_shared(w["end"] * 1000.0),
                float(w.get("conf", 1.0)),
            )
            for w in result.get("result", [])
        ]
        return (_utterance(words, final=True, text=result.get("text") or None),) if words else ()

    def accept(self, chunk: bytes, t_ms: float) -> tuple[Utterance, ...]:
        """Feed audio; a final when Vosk's endpointer closed an utterance, else a changed partial."""
        self._clock.feed(chunk, t_ms)
        if self._rec.AcceptWaveform(chunk):
            return self._final(self._rec.Result())
        partial = json.loads(self._rec.PartialResult())
        text = partial.get("partial", "")
        if not text or text == self._last_partial:
            return ()
        self._last_partial = text
        pwords = partial.get("partial_result") or []
        end = self._clock.to_shared(self._clock.fed_ms)
        start = self._clock.to_shared(pwords[0]["start"] * 1000.0) if pwords else end
        words = tuple(
            Word(
                w["word"],
                self._clock.to_shared(w["start"] * 1000.0),
                self._clock.to_shared(w["end"] * 1000.0),
                float(w.get("conf", 1.0)),
            )
            for w in pwords
        )
        return (Utterance(text, False, start, end, words),)

    def finish(self) -> tuple[Utterance, ...]:
        """Flush the open utterance."""
        return self._final(self._rec.FinalResult())


class PocketSphinxRecognizer:
    """PocketSphinx with its bundled US English model; an endpointer cuts utterances.

    With ``partials`` (live use) each utterance is decoded as it arrives and partial results
    come out every PARTIAL_EVERY_MS. Without (files) the audio of an utterance is kept until
    the endpointer closes it and decoded in one go, which normalises it over the whole
    utterance: fewer errors on the first seconds of a stream, no partials.
    """

    name = "pocketsphinx"

    def __init__(self, *, partials: bool = True, **options: Any) -> None:
        import pocketsphinx

        config = {**POCKETSPHINX_OPTIONS, **options}
        try:
            self._decoder = pocketsphinx.Decoder(loglevel="FATAL", samprate=SAMPLE_RATE, **config)
            self._ep = pocketsphinx.Endpointer(sample_rate=SAMPLE_RATE)
        except (ValueError, RuntimeError) as exc:
            raise RecognizerError(f"cannot start PocketSphinx: {exc}") from exc
        self._frame_rate = int(self._decoder.config["frate"])
        self._clock = StreamClock()
        self._buffer = b""
        self._utt_start_ms = 0.0
        self._since_partial_ms = 0.0
        self._last_partial = ""
        self._partials = partials
        self._speech: list[bytes] = []
        self._in_utt = False

    def _words(self) -> list[Word]:
        ms_per_frame = 1000.0 / self._frame_rate
        words = []
        for seg in self._decoder.seg():
            if _FILLER.match(seg.word):
                continue
            text = re.sub(r"\(\d+\)$", "", seg.word)
            start = self._utt_start_ms + seg.start_frame * ms_per_frame
            end = self._utt_start_ms + (seg.end_frame + 1) * ms_per_frame
            conf = float(seg.prob) if 0.0 < seg.prob <= 1.0 else 1.0
            words.append(Word(text, self._clock.to_shared(start), self._clock.to_shared(end), conf))
        return words

    def _process(self, speech: bytes | None, out: list[Utterance]) -> None:
        if speech is None:
            return
        if not self._in_utt:
            self._decoder.start_utt()
            self._in_utt = True
            self._utt_start_ms = self._ep.speech_start * 1000.0
            self._since_partial_ms = 0.0
            self._last_partial = ""
        if not self._partials:
            self._speech.append(speech)
            if not self._ep.in_speech:
                self._decoder.process_raw(b"".join(self._speech), full_utt=True)
                self._speech.clear()
                self._end_utterance(out)
            return
        self._decoder.process_raw(speech)
        self._since_partial_ms += duration_ms(speech)
        if not self._ep.in_speech:
            self._end_utterance(out)
        elif self._since_partial_ms >= PARTIAL_EVERY_MS:
            self._since_partial_ms = 0.0
            hyp = self._decoder.hyp()
            words = self._words() if hyp is not None and hyp.hypstr != self._last_partial else []
            if words:
                self._last_partial = hyp.hypstr
                end = self._clock.to_shared(self._clock.fed_ms)
                out.append(Utterance(" ".join(w.text for w in words), False, words[0].start_ms, end, tuple(words)))

    def _end_utterance(self, out: list[Utterance]) -> None:
        self._decoder.end_utt()
        self._in_utt = False
        words = self._words()
        if words:
            out.append(_utterance(words, final=True))

    def accept(self, chunk: bytes, t_ms: float) -> tuple[Utterance, ...]:
        """Feed audio; finals when the endpointer sees speech end, partials every PARTIAL_EVERY_MS."""
        self._clock.feed(chunk, t_ms)
        data = self._buffer + chunk if self._buffer else chunk
        size = self._ep.frame_bytes
        out: list[Utterance] = []
        whole = len(data) - len(data) % size
        for offset in range(0, whole, size):
            self._process(self._ep.process(data[offset : offset + size]), out)
        self._buffer = data[whole:]
        return tuple(out)

    def finish(self) -> tuple[Utterance, ...]:
        """Flush the audio left in the endpointer and end the open utterance."""
        out: list[Utterance] = []
        if self._ep.in_speech or self._buffer:
            # end_stream needs at least one sample; it returns the speech the endpointer still holds
            self._process(self._ep.end_stream(self._buffer or bytes(2)), out)
        self._buffer = b""
        if self._speech:
            self._decoder.process_raw(b"".join(self._speech), full_utt=True)
            self._speech.clear()
        if self._in_utt:
            self._end_utterance(out)
        return tuple(out)


def open_recognizer(engine: str = "auto", vosk_model: str | Path | None = None, *, partials: bool = True) -> Recognizer:
    """A recogniser for engine; "auto" prefers Vosk and falls back to PocketSphinx with a logged reason.

    partials=False suits whole files: PocketSphinx then decodes each utterance in one go.
    """
    from facial_emotion.speech.download import find_vosk_model

    if engine not in ENGINES:
        raise RecognizerError(f"unknown speech engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine in ("auto", "vosk"):
        model = find_vosk_model(vosk_model)
        reason = ""
        if model is None:
            reason = (
                f"no Vosk model found{f' at {vosk_model}' if vosk_model else ''} "
                "(get one with: facial-emotion models download vosk-small-en-us)"
            )
        else:
            try:
                return VoskRecognizer(model)
            except ImportError:
                reason = "the vosk package is not installed"
            except RecognizerError as exc:
                reason = str(exc)
        if engine == "vosk":
            raise RecognizerError(reason)
        log.warning("speech: %s; using PocketSphinx instead", reason)
    try:
        return PocketSphinxRecognizer(partials=partials)
    except ImportError as exc:
        raise RecognizerError("no speech engine: install vosk (with a model) or pocketsphinx") from exc
