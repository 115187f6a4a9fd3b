"""Audio sources behind one protocol: microphone, WAV file, the audio track of a video.

Every source yields ``(chunk_bytes, t_ms)``: 16 kHz mono signed 16-bit little-endian
samples and the time of the chunk's first sample on the clock shared with the video
frames (ms from the start of the file for files; the monotonic clock passed in for a
microphone).
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, Protocol

log = logging.getLogger(__name__)

SAMPLE_RATE: Final[int] = 16_000
SAMPLE_WIDTH: Final[int] = 2
BYTES_PER_MS: Final[float] = SAMPLE_RATE * SAMPLE_WIDTH / 1000.0
CHUNK_MS: Final[int] = 100
MIC_QUEUE_CHUNKS: Final[int] = 50
"""Five seconds of microphone audio may wait for the recogniser; older chunks are dropped."""


class AudioError(RuntimeError):
    """Audio cannot be opened or decoded; the message is for the user."""


class AudioSource(Protocol):
    """Something that yields audio: ``chunks()`` gives ``(bytes, t_ms)`` pairs until the end.

    Chunks are 16 kHz mono int16 (little-endian) and about CHUNK_MS long; ``t_ms`` is the
    time of the chunk's first sample on the shared clock. ``live`` sources (microphones)
    deliver in real time and may drop chunks when the consumer falls behind (``dropped``
    counts them); file sources deliver everything as fast as they are read. ``close`` stops
    the source and makes ``chunks()`` end; it may be called from another thread.
    """

    name: str
    live: bool
    dropped: int

    def chunks(self) -> Iterator[tuple[bytes, float]]:
        """Audio chunks and their start times in ms, until the source ends or is closed."""
        ...

    def close(self) -> None:
        """Release the device or file."""
        ...


def duration_ms(chunk: bytes) -> float:
    """Length in ms of a chunk of 16 kHz mono int16 audio."""
    return len(chunk) / BYTES_PER_MS


def monotonic_ms() -> float:
    """The default live clock: monotonic milliseconds."""
    return time.monotonic() * 1000.0


class WavAudioSource:
    """A 16 kHz mono 16-bit PCM WAV file, read with the standard library."""

    live = False

    def __init__(self, path: str | Path, *, chunk_ms: int = CHUNK_MS) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.dropped = 0
        self._chunk_frames = SAMPLE_RATE * chunk_ms // 1000
        self._closed = threading.Event()
        self._lock = threading.Lock()
        try:
            self._wav = wave.open(str(self.path), "rb")
        except (OSError, EOFError, wave.Error) as exc:
            raise AudioError(f"cannot read WAV file {self.path}: {exc}") from exc
        fmt = (self._wav.getframerate(), self._wav.getnchannels(), self._wav.getsampwidth())
        if fmt != (SAMPLE_RATE, 1, SAMPLE_WIDTH):
            self._wav.close()
            raise AudioError(
                f"{self.path} is {fmt[0]} Hz, {fmt[1]} channel(s), {8 * fmt[2]} bit; need 16 kHz mono 16 bit"
            )

    @staticmethod
    def accepts(path: str | Path) -> bool:
        """True when the file is a WAV this class reads directly (16 kHz, mono, 16 bit)."""
        try:
            with wave.open(str(path), "rb") as wav:
                return (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (SAMPLE_RATE, 1, 2)
        except (OSError, EOFError, wave.Error):
            return False

    def chunks(self) -> Iterator[tuple[bytes, float]]:
        """Chunks from the start of the file; t_ms counts samples from the file start."""
        position = 0
        while True:
            with self._lock:
                data = b"" if self._closed.is_set() else self._wav.readframes(self._chunk_frames)
            if not data:
                break
            yield data, position / BYTES_PER_MS
            position += len(data)
        self.close()

    def close(self) -> None:
        """Close the file (safe from another thread while chunks() runs)."""
        with self._lock:
            self._closed.set()
            self._wav.close()


def probe_audio(path: str | Path) -> dict[str, Any] | None:
    """The first audio stream of a media file as ffprobe reports it, or None when it has none."""
    if shutil.which("ffprobe") is None:
        raise AudioError("ffprobe (part of FFmpeg) is not installed; install the ffmpeg package")
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=index,codec_name,sample_rate,channels,start_time,duration",
        "-of",
        "json",
        str(path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "unknown format"
        raise AudioError(f"cannot read {path}: {reason}")
    streams = json.loads(proc.stdout or "{}").get("streams", [])
    return streams[0] if streams else None


class VideoAudioSource:
    """The first audio track of any file FFmpeg reads, decoded by the ffmpeg CLI to 16 kHz mono.

    Times start at the audio stream's own start time, so they match the video frames'
    times when both begin at zero (the usual case) and stay on the file's clock otherwise.
    """

    live = False

    def __init__(self, path: str | Path, *, chunk_ms: int = CHUNK_MS) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.dropped = 0
        if not self.path.is_file():
            raise AudioError(f"no such file: {self.path}")
        if shutil.which("ffmpeg") is None:
            raise AudioError("ffmpeg is not installed; install the ffmpeg package")
        stream = probe_audio(self.path)
        if stream is None:
            raise AudioError(f"{self.path} has no audio track")
        self.offset_ms = max(0.0, float(stream.get("start_time") or 0.0) * 1000.0)
        self._chunk_bytes = int(chunk_ms * BYTES_PER_MS)
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = threading.Event()

    def chunks(self) -> Iterator[tuple[bytes, float]]:
        """Decoded chunks; raises AudioError when FFmpeg fails before the end."""
        cmd = [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(self.path),
            "-map",
            "0:a:0",
            "-vn",
            "-ac",
            "1",
            "-ar",
            str(SAMPLE_RATE),
            "-f",
            "s16le",
            "-acodec",
            "pcm_s16le",
            "-",
        ]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._proc.stdout is not None
        position = 0
        try:
            while not self._closed.is_set():
                data = self._proc.stdout.read(self._chunk_bytes)
                if not data:
                    break
                yield data, self.offset_ms + position / BYTES_PER_MS
                position += len(data)
            if self._closed.is_set():
                return
            code = self._proc.wait(timeout=30)
            if code != 0:
                err = self._proc.stderr.read().decode(errors="replace").strip() if self._proc.stderr else ""
                raise AudioError(f"ffmpeg could not decode the audio of {self.path}: {err or f'exit {code}'}")
            if position == 0:
                raise AudioError(f"{self.path} has an audio track with no samples")
        finally:
            self.close()

    def close(self) -> None:
        """Stop FFmpeg."""
        self._closed.set()
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc is not None:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


class MicrophoneAudioSource:
    """A microphone via sounddevice; its callback only puts bytes on a bounded queue.

    ``device`` is an index or a (part of a) device name as sounddevice accepts it, None
    for the default input. ``clock`` returns the shared monotonic time in ms (the one the
    camera frames use); each chunk is stamped with clock() minus its duration when the
    callback receives it.
    """

    live = True

    def __init__(
        self,
        device: int | str | None = None,
        *,
        clock: Callable[[], float] = monotonic_ms,
        chunk_ms: int = CHUNK_MS,
        max_chunks: int = MIC_QUEUE_CHUNKS,
    ) -> None:
        import sounddevice

        self.name = f"microphone {device if device is not None else '(default)'}"
        self.dropped = 0
        self._clock = clock
        self._queue: queue.Queue[tuple[bytes, float] | None] = queue.Queue(maxsize=max_chunks)
        self._closed = threading.Event()
        try:
            self._stream = sounddevice.RawInputStream(
                samplerate=SAMPLE_RATE,
                blocksize=SAMPLE_RATE * chunk_ms // 1000,
                device=device,
                channels=1,
                dtype="int16",
                callback=self._on_audio,
            )
            self._stream.start()
        except Exception as exc:  # PortAudioError, ValueError for unknown devices
            raise AudioError(f"cannot open microphone {device!r}: {exc}") from exc

    def _on_audio(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        # Runs on PortAudio's thread: no logging, no blocking, only a bounded put.
        try:
            self._queue.put_nowait((bytes(indata), self._clock() - frames * 1000.0 / SAMPLE_RATE))
        except queue.Full:
            self.dropped += 1

    def chunks(self) -> Iterator[tuple[bytes, float]]:
        """Chunks as the microphone delivers them, until close()."""
        while not self._closed.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                break
            yield item

    def close(self) -> None:
        """Stop and close the stream; chunks() ends."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._stream.stop()
            self._stream.close()
        finally:
            if self.dropped:
                log.warning("microphone: %d audio chunks dropped (recogniser too slow)", self.dropped)


def list_microphones() -> list[tuple[int, str]]:
    """Input devices as (index, name)."""
    import sounddevice

    return [(i, str(d["name"])) for i, d in enumerate(sounddevice.query_devices()) if d["max_input_channels"] > 0]


def open_audio_file(path: str | Path, *, chunk_ms: int = CHUNK_MS) -> AudioSource:
    """A source for a WAV or video file: WAV in the native format directly, anything else via FFmpeg."""
    p = Path(path)
    if not p.is_file():
        raise AudioError(f"no such file: {p}")
    if p.suffix.lower() == ".wav" and WavAudioSource.accepts(p):
        return WavAudioSource(p, chunk_ms=chunk_ms)
    return VideoAudioSource(p, chunk_ms=chunk_ms)
