"""Speech recognition on real audio: flite sentences, LibriVox recordings, a muxed video."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from facial_emotion.cli import main
from facial_emotion.speech.audio import (
    MicrophoneAudioSource,
    WavAudioSource,
    list_microphones,
    open_audio_file,
)
from facial_emotion.speech.download import find_vosk_model
from facial_emotion.speech.recognizers import PocketSphinxRecognizer, RecognizerError, open_recognizer
from facial_emotion.speech.transcribe import (
    LiveTranscriber,
    TranscriptionError,
    transcribe_file,
    utterance_to_json,
    word_error_rate,
)
from facial_emotion.types import Utterance

from .conftest import mux_speech

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SENTENCES = {
    "positive": "I am very happy. This is a wonderful day and I love it.",
    "negative": "I am very sad and angry. This is a terrible day.",
    "neutral": "The train leaves from the station at noon.",
    "short": "I am very happy today.",
}
WER_BOUND = 0.40
"""PocketSphinx (file mode) measured 0.296 over the 5 clips; the bound leaves a margin."""


def need(tool: str) -> None:
    """Skip when a command-line tool is missing."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test sentences spoken by flite's 16 kHz 'slt' voice, as WAV files."""
    need("flite")
    folder = tmp_path_factory.mktemp("flite")
    paths = {}
    for name, text in SENTENCES.items():
        paths[name] = folder / f"{name}.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(paths[name])], check=True, timeout=60)
    if not WavAudioSource.accepts(paths["positive"]):  # an older flite without 16 kHz voices
        for path in paths.values():
            resampled = path.with_suffix(".16k.wav")
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", str(path), "-ar", "16000", "-ac", "1", str(resampled)],
                check=True,
                timeout=60,
            )
            resampled.replace(path)
    return paths


def wav_ms(path: Path) -> float:
    """Length of a WAV file in ms."""
    source = open_audio_file(path)
    total = sum(len(chunk) for chunk, _ in source.chunks())
    return total / 32.0


@pytest.mark.parametrize(
    ("name", "words", "sign"),
    [
        ("positive", ["happy", "wonderful", "love"], 1),
        ("negative", ["sad", "angry", "terrible"], -1),
        ("neutral", ["station", "noon"], 0),
    ],
)
def test_sentence_words_and_sentiment(speech: dict[str, Path], name: str, words: list[str], sign: int) -> None:
    """PocketSphinx hears the key words; VADER gives the right sign; times lie inside the clip."""
    utterances = transcribe_file(speech[name], engine="pocketsphinx")
    text = " ".join(u.text for u in utterances)
    for word in words:
        assert word in text.split(), f"{word!r} not in {text!r}"
    compound = max((u.sentiment.compound for u in utterances if u.sentiment), key=abs)
    assert {1: compound >= 0.05, -1: compound <= -0.05, 0: abs(compound) < 0.05}[sign], compound
    length = wav_ms(speech[name])
    for u in utterances:
        assert u.final and u.words
        assert 0 <= u.start_ms <= u.words[0].start_ms < u.words[-1].end_ms <= u.end_ms <= length + 50
        assert all(a.end_ms <= b.start_ms + 1 for a, b in zip(u.words, u.words[1:], strict=False))


def test_librivox_word_error_rate() -> None:
    """Word error rate over Debian's LibriVox clips stays under the measured bound."""
    if not (LIBRIVOX / "transcription").is_file():
        pytest.skip("pocketsphinx-testdata is not installed (apt-get install pocketsphinx-testdata)")
    errors, words = 0.0, 0
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.match(r"<s>\s*(.*?)\s*</s>\s*\((.+)\)", line.strip())
        assert m, line
        reference, clip = m.groups()
        hypothesis = " ".join(u.text for u in transcribe_file(LIBRIVOX / f"{clip}.wav", engine="pocketsphinx"))
        errors += word_error_rate(reference, hypothesis) * len(reference.split())
        words += len(reference.split())
    assert words > 60
    assert errors / words <= WER_BOUND


def test_word_error_rate() -> None:
    """One substitution and one deletion in four words is 0.5."""
    assert word_error_rate("he was not ill", "he was nut") == 0.5
    assert word_error_rate("a b", "a b") == 0.0


def test_video_with_speech(speech: dict[str, Path], shared_data: Path, tmp_path: Path) -> None:
    """Speech muxed 400 ms into the shared video is found, with times on the video's clock."""
    need("ffmpeg")
    video = mux_speech(
        shared_data / "faces-pyfeat" / "single_face.mp4", speech["short"], tmp_path / "talking.mp4", delay_ms=400
    )
    utterances = transcribe_file(video, engine="pocketsphinx")
    words = [w for u in utterances for w in u.words]
    assert "happy" in [w.text for w in words]
    speech_ms = wav_ms(speech["short"])
    assert 250 <= words[0].start_ms <= 1000
    assert words[-1].end_ms <= 400 + speech_ms + 100
    assert words[-1].end_ms <= 2400 + 100  # inside the 2.4 s video


def test_file_without_audio(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A video without sound: a clear one-line error and a non-zero exit, no traceback."""
    need("ffmpeg")
    silent = tmp_path / "silent.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(shared_data / "faces-pyfeat" / "single_face.mp4"),
            "-an",
            "-c:v",
            "copy",
            str(silent),
        ],
        check=True,
        timeout=60,
    )
    with pytest.raises(TranscriptionError, match="no audio track"):
        transcribe_file(silent)
    assert main(["transcribe", str(silent)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {silent} has no audio track"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all")
    assert main(["transcribe", str(garbage)]) == 2
    assert main(["transcribe", str(tmp_path / "missing.wav")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_transcribe_command_json(speech: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """`transcribe --json` prints utterances with text, times, words and sentiment."""
    assert main(["transcribe", str(speech["negative"]), "--json", "--engine", "pocketsphinx"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data and {"text", "start_ms", "end_ms", "words", "sentiment", "label"} <= set(data[0])
    assert data[0]["label"] == "negative" and data[0]["sentiment"] < 0
    assert {"text", "start_ms", "end_ms", "conf"} == set(data[0]["words"][0])
    assert main(["transcribe", str(speech["negative"])]) == 0
    assert "negative" in capsys.readouterr().out


def test_live_recognizer_gives_partials_then_a_final(speech: dict[str, Path]) -> None:
    """Fed in 100 ms chunks on a clock starting at 5 s: partials come first, times follow the clock."""
    recognizer = PocketSphinxRecognizer(partials=True)
    results: list[Utterance] = []
    for chunk, t_ms in WavAudioSource(speech["positive"]).chunks():
        results += recognizer.accept(chunk, 5000.0 + t_ms)
    results += recognizer.finish()
    partials = [u for u in results if not u.final]
    finals = [u for u in results if u.final]
    assert partials and finals
    assert results.index(partials[0]) < results.index(finals[0])
    assert "happy" in " ".join(u.text for u in finals).split()
    assert all(u.start_ms >= 5000.0 for u in results)


def test_live_transcriber_thread(speech: dict[str, Path], no_thread_leak: None) -> None:
    """The ASR thread reads a source to its end; poll() hands over scored finals; stop() joins it."""
    seen: list[Utterance] = []
    listener = LiveTranscriber(
        WavAudioSource(speech["negative"]),
        open_recognizer_fn=lambda: open_recognizer("pocketsphinx"),
        on_utterance=seen.append,
    )
    listener.start()
    deadline = time.monotonic() + 30
    while listener.running and time.monotonic() < deadline:
        time.sleep(0.05)
    _, finals = listener.poll()
    assert listener.stop(timeout_s=5)
    assert listener.error is None and listener.engine == "pocketsphinx"
    assert finals and all(u.sentiment is not None for u in finals)
    assert any(u.sentiment.label == "negative" for u in finals if u.sentiment)
    assert any(not u.final for u in seen)
    assert utterance_to_json(finals[0])["label"] == finals[0].sentiment.label  # type: ignore[union-attr]


def test_auto_falls_back_to_pocketsphinx(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Without a Vosk model, auto picks PocketSphinx and says why; asking for Vosk is an error."""
    with caplog.at_level(logging.WARNING):
        recognizer = open_recognizer("auto", tmp_path / "no-model")
    assert recognizer.name == "pocketsphinx"
    assert "no Vosk model" in caplog.text and "models download vosk-small-en-us" in caplog.text
    with pytest.raises(RecognizerError, match="no Vosk model"):
        open_recognizer("vosk", tmp_path / "no-model")
    with pytest.raises(RecognizerError, match="unknown speech engine"):
        open_recognizer("whisper")


def test_importing_speech_loads_no_engine() -> None:
    """`import facial_emotion.speech.*` stays quick: no engine, audio or sentiment library is imported."""
    code = (
        "import sys, facial_emotion.speech.cli, facial_emotion.speech.transcribe, facial_emotion.fusion; "
        "print([m for m in ('vosk', 'pocketsphinx', 'sounddevice', 'vaderSentiment', 'PySide6') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def vosk_model() -> Path:
    """The Vosk model folder ($FACIAL_EMOTION_VOSK_MODEL or the user's downloaded one), or skip."""
    # the user data folder is isolated per test, so look where the real download would be
    home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "facial-emotion"
    candidates = [
        os.environ.get("FACIAL_EMOTION_VOSK_MODEL"),
        home / "models" / "vosk-model-small-en-us-0.15",
    ]
    model = next((m for c in candidates if c and (m := find_vosk_model(c))), None)
    if model is None:
        pytest.skip(
            "no Vosk model (run `facial-emotion models download vosk-small-en-us` or set FACIAL_EMOTION_VOSK_MODEL)"
        )
    return model


def test_vosk_transcribes_with_word_times(speech: dict[str, Path], vosk_model: Path) -> None:
    """Vosk hears the key words of the positive sentence, with confidences and times inside the clip."""
    utterances = transcribe_file(speech["positive"], engine="vosk", vosk_model=vosk_model)
    words = [w for u in utterances for w in u.words]
    assert {"happy", "wonderful"} <= {w.text for w in words}
    assert all(0 <= w.start_ms < w.end_ms <= wav_ms(speech["positive"]) + 50 for w in words)
    assert any(u.sentiment and u.sentiment.label == "positive" for u in utterances)


class FakeSoundDevice:
    """Stands in for the sounddevice module: a 'microphone' that plays a WAV file through the callback."""

    def __init__(self, wav: Path, pace_s: float) -> None:
        self.wav, self.pace_s = wav, pace_s

    def query_devices(self) -> list[dict[str, object]]:
        """One input device and one output device."""
        return [{"name": "fake mic", "max_input_channels": 1}, {"name": "speaker", "max_input_channels": 0}]

    def RawInputStream(self, **kwargs: object) -> FakeStream:
        """A stream that calls back with the WAV's blocks."""
        return FakeStream(self.wav, self.pace_s, **kwargs)


class FakeStream:
    """Calls the callback with blocks of the WAV from its own thread, like PortAudio."""

    def __init__(self, wav: Path, pace_s: float, *, blocksize: int, callback: Any, **_: object) -> None:
        self.blocks = [c for c, _ in WavAudioSource(wav, chunk_ms=blocksize // 16).chunks()]
        self.callback, self.pace_s = callback, pace_s
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._play, name="fake-portaudio")

    def _play(self) -> None:
        for block in self.blocks + [bytes(3200)] * 10:
            if self.stop_event.wait(self.pace_s):
                return
            self.callback(block, len(block) // 2, None, None)

    def start(self) -> None:
        """Start 'recording'."""
        self.thread.start()

    def stop(self) -> None:
        """Stop the callback thread."""
        self.stop_event.set()
        self.thread.join(5)

    def close(self) -> None:
        """Nothing to release."""


def test_microphone_source_queues_stamps_and_drops(
    speech: dict[str, Path], monkeypatch: pytest.MonkeyPatch, no_thread_leak: None
) -> None:
    """The callback only queues (bytes, t_ms) on the shared clock; a full queue drops and counts."""
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(speech["negative"], pace_s=0.0))
    clock = iter(range(1_000_000, 2_000_000, 100))
    mic = MicrophoneAudioSource(None, clock=lambda: float(next(clock)), max_chunks=5)
    time.sleep(0.5)  # nobody reads: the queue fills, the rest is dropped
    chunks = []
    for chunk, t_ms in mic.chunks():
        chunks.append((chunk, t_ms))
        if len(chunks) == 5:
            break
    mic.close()
    assert [t for _, t in chunks] == [1_000_000 + 100 * i - 100 for i in range(5)]
    assert mic.dropped > 0
    assert list_microphones() == [(0, "fake mic")]


def test_live_subtitles_from_a_microphone(
    speech: dict[str, Path], monkeypatch: pytest.MonkeyPatch, no_thread_leak: None
) -> None:
    """Microphone -> ASR thread: partial subtitles appear, then a scored final with the words."""
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(speech["positive"], pace_s=0.01))
    listener = LiveTranscriber(MicrophoneAudioSource(), open_recognizer_fn=lambda: open_recognizer("pocketsphinx"))
    listener.start()
    partials, finals = [], []
    deadline = time.monotonic() + 30
    while not finals and time.monotonic() < deadline:
        time.sleep(0.05)
        partial, new = listener.poll()
        partials += [partial] if partial else []
        finals += new
    assert listener.stop(timeout_s=5)
    assert partials and finals
    assert "happy" in finals[0].text.split() and finals[0].sentiment and finals[0].sentiment.label == "positive"
