"""Speech speed and accuracy: real-time factor, word error rate, delay to a final result.

Run: .venv/bin/python benchmarks/speech.py [--vosk-model DIR] [--no-realtime] [--no-load]

Clips: the LibriVox recordings of Debian's pocketsphinx-testdata (5 clips, 26 s).
For each available engine it prints
- RTF: processing time / audio duration when the clip is fed as fast as possible in
  100 ms chunks (median over clips; target < 0.5), also as CPU time of the recognising
  thread (steadier on a shared machine), and the WER against ``transcription``;
- delay: with the clip fed in real time (100 ms chunks, paced, 1 s of silence after
  it), the time from the end of the last word to the final result (median and max);
- both again while a thread imitates the video pipeline's CPU load (dlib HOG face
  detection and OpenCV blur on a 640x360 frame of the shared video, in a loop).
Figures only, no asserts.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facial_emotion.paths import data_dir
from facial_emotion.speech.audio import CHUNK_MS, WavAudioSource, duration_ms
from facial_emotion.speech.download import find_vosk_model
from facial_emotion.speech.recognizers import PocketSphinxRecognizer, Recognizer, VoskRecognizer
from facial_emotion.speech.transcribe import word_error_rate
from facial_emotion.types import Utterance

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def clips() -> list[tuple[Path, str]]:
    """(wav, reference text) for each LibriVox clip."""
    refs = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.match(r"<s>\s*(.*?)\s*</s>\s*\((.+)\)", line.strip())
        if m:
            refs[m.group(2)] = m.group(1)
    return [(LIBRIVOX / f"{key}.wav", text) for key, text in sorted(refs.items())]


def read_chunks(path: Path) -> list[tuple[bytes, float]]:
    """The clip as 100 ms chunks with their times."""
    return list(WavAudioSource(path).chunks())


def run_fast(make: Callable[[], Recognizer], chunks: list[tuple[bytes, float]]) -> tuple[float, float, str]:
    """Wall and CPU seconds (of this thread) to recognise the chunks fed at once, and the final text."""
    recognizer = make()
    finals: list[Utterance] = []
    t0, c0 = time.perf_counter(), time.thread_time()
    for chunk, t_ms in chunks:
        finals += [u for u in recognizer.accept(chunk, t_ms) if u.final]
    finals += recognizer.finish()
    return time.perf_counter() - t0, time.thread_time() - c0, " ".join(u.text for u in finals)


def run_realtime(make: Callable[[], Recognizer], chunks: list[tuple[bytes, float]]) -> list[float]:
    """Feed chunks paced at real time plus 1 s of silence; ms from each final's last word to its arrival."""
    recognizer = make()
    end_ms = chunks[-1][1] + duration_ms(chunks[-1][0])
    silence = bytes(len(chunks[0][0]))
    padded = chunks + [(silence, end_ms + i * CHUNK_MS) for i in range(10)]
    delays = []
    t0 = time.perf_counter()
    for chunk, t_ms in padded:
        due = t0 + (t_ms + duration_ms(chunk)) / 1000.0  # the chunk exists once its last sample was spoken
        time.sleep(max(0.0, due - time.perf_counter()))
        for u in recognizer.accept(chunk, t_ms):
            if u.final:
                delays.append((time.perf_counter() - t0) * 1000.0 - u.end_ms)
    for u in recognizer.finish():
        delays.append((time.perf_counter() - t0) * 1000.0 - u.end_ms)
    return delays


@contextmanager
def video_load(enabled: bool) -> Iterator[list[int]]:
    """A thread doing OpenCV work like the video pipeline's while the block runs; yields [frames done]."""
    done = [0]
    if not enabled:
        yield done
        return
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    capture = cv2.VideoCapture(str(data_dir() / "faces-pyfeat" / "single_face.mp4"))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    try:
        import dlib

        detector = dlib.get_frontal_face_detector()
    except ImportError:
        detector = None
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            gray = cv2.cvtColor(cv2.GaussianBlur(frame, (5, 5), 0), cv2.COLOR_BGR2GRAY)
            if detector is not None:  # what the pipeline spends most of its time on
                detector(gray, 0)
            else:
                cv2.Canny(cv2.resize(gray, (1280, 720)), 50, 150)
            done[0] += 1

    thread = threading.Thread(target=work, name="video-load", daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(5)


def engines(vosk_model: str | None) -> list[tuple[str, Callable[[], Recognizer]]]:
    """The engines available here, by label."""
    found: list[tuple[str, Callable[[], Recognizer]]] = [
        ("pocketsphinx (file mode)", lambda: PocketSphinxRecognizer(partials=False)),
        ("pocketsphinx (live, partials)", lambda: PocketSphinxRecognizer(partials=True)),
    ]
    model = find_vosk_model(vosk_model)
    if model is not None:
        found.insert(0, ("vosk", lambda: VoskRecognizer(model)))
    else:
        print("vosk: no model found (facial-emotion models download vosk-small-en-us, or --vosk-model); skipped")
    return found


def main() -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vosk-model", help="a Vosk model folder")
    parser.add_argument("--no-realtime", action="store_true", help="skip the real-time delay runs")
    parser.add_argument("--no-load", action="store_true", help="skip the runs beside a CPU load")
    args = parser.parse_args()
    data = [(read_chunks(path), ref) for path, ref in clips()]
    audio_s = sum(sum(duration_ms(c) for c, _ in chunks) for chunks, _ in data) / 1000.0
    print(f"{len(data)} LibriVox clips, {audio_s:.1f} s of audio")
    for label, make in engines(args.vosk_model):
        t = time.perf_counter()
        make()
        print(f"\n{label}: opens in {time.perf_counter() - t:.2f} s")
        for loaded in (False, True) if not args.no_load else (False,):
            with video_load(loaded) as frames:
                t_load = time.perf_counter()
                rtfs, cpu_rtfs, errors, words = [], [], 0.0, 0
                for chunks, ref in data:
                    seconds, cpu_seconds, text = run_fast(make, chunks)
                    clip_s = sum(duration_ms(c) for c, _ in chunks) / 1000.0
                    rtfs.append(seconds / clip_s)
                    cpu_rtfs.append(cpu_seconds / clip_s)
                    errors += word_error_rate(ref, text) * len(ref.split())
                    words += len(ref.split())
                delays: list[float] = []
                if not args.no_realtime:
                    for chunks, _ in data:
                        delays += run_realtime(make, chunks)
                fps = frames[0] / (time.perf_counter() - t_load)
            where = f"beside video load ({fps:.0f} frames/s of dlib HOG work)" if loaded else "idle machine"
            rtf = f"RTF median {statistics.median(rtfs):.3f} (max {max(rtfs):.3f}, CPU-time RTF "
            rtf += f"{statistics.median(cpu_rtfs):.3f})"
            line = f"  {where}: {rtf}, WER {errors / words:.3f}"
            if delays:
                median, worst = statistics.median(delays), max(delays)
                line += f", end of speech -> final median {median:.0f} ms (max {worst:.0f})"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
