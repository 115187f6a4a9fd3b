"""Fuzzing ``analyze`` with damaged copies of real videos and photos (fixed seed, runs in CI).

Each mutated file goes through the real ``analyze`` (in process, one shared pipeline)
and must end in a summary that tells the truth about completeness, or in a clear
AnalysisError; never another exception, never a hang. A few go through the command.
"""

from __future__ import annotations

import csv
import faulthandler
import json
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from facial_emotion.analyze import AnalysisError, analyze
from facial_emotion.pipeline import Pipeline
from facial_emotion.settings import Settings

SEED = 11
CLIP_FRAMES = 10
CASES_PER_VIDEO = 55
CASES_PER_IMAGE = 40
CASE_LIMIT_S = 30
CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta", b"moof", b"traf"})


def _boxes(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[tuple[int, int, bytes]]:
    """(offset, size, type) of the MP4 boxes in data[start:end], containers opened."""
    end = len(data) if end is None else end
    found, pos = [], start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8 or pos + size > end:
            break
        found.append((pos, size, kind))
        if kind in CONTAINERS and depth < 6:
            found += _boxes(data, pos + 8, pos + size, depth + 1)
        pos += size
    return found


def _segments(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of the JPEG marker segments before the scan data."""
    found, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        size = 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        found.append((pos, size))
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        pos += size
    return found


def _flip(data: bytearray, rnd: random.Random) -> str:
    for _ in range(rnd.choice((1, 4, 32))):
        data[rnd.randrange(len(data))] ^= rnd.randrange(1, 256)
    return "flip"


def _zero(data: bytearray, rnd: random.Random) -> str:
    size = rnd.choice((16, 512, 4096))
    at = rnd.randrange(len(data))
    data[at : at + size] = bytes(len(data[at : at + size]))
    return "zero"


def _cut(data: bytearray, rnd: random.Random) -> str:
    del data[rnd.randrange(1, len(data)) :]
    return "cut"


def _behead(data: bytearray, rnd: random.Random) -> str:
    del data[: rnd.randrange(1, len(data) // 2)]
    return "behead"


def _splice(data: bytearray, rnd: random.Random) -> str:
    at, size = rnd.randrange(len(data)), rnd.randrange(1, 2048)
    if rnd.random() < 0.5:
        del data[at : at + size]
    else:
        data[at:at] = data[at : at + size]
    return "splice"


def _atoms(data: bytearray, rnd: random.Random) -> str:
    boxes = _boxes(bytes(data))
    if len(boxes) < 2:
        return _flip(data, rnd)
    action = rnd.choice(("swap", "zero", "size", "type"))
    if action == "swap":
        top = [b for b in boxes if b[0] + b[1] <= len(data) and not any(o < b[0] < o + s for o, s, _ in boxes)]
        if len(top) >= 2:
            (a, sa, _), (b, sb, _) = sorted(rnd.sample(top, 2))
            data[a : b + sb] = data[b : b + sb] + data[a + sa : b] + data[a : a + sa]
    elif action == "zero":
        offset, size, _ = rnd.choice(boxes)
        data[offset + 8 : offset + size] = bytes(size - 8)
    elif action == "size":
        offset, _, _ = rnd.choice(boxes)
        data[offset : offset + 4] = struct.pack(">I", rnd.choice((0, 1, 7, rnd.randrange(2**32))))
    else:
        offset, _, _ = rnd.choice(boxes)
        data[offset + 4 : offset + 8] = rnd.randbytes(4)
    return f"atom-{action}"


def _jpeg_segments(data: bytearray, rnd: random.Random) -> str:
    segments = _segments(bytes(data))
    if len(segments) < 2:
        return _flip(data, rnd)
    action = rnd.choice(("swap", "zero", "drop"))
    if action == "swap":
        (a, sa), (b, sb) = sorted(rnd.sample(segments, 2))
        data[a : b + sb] = data[b : b + sb] + data[a + sa : b] + data[a : a + sa]
    elif action == "zero":
        offset, size = rnd.choice(segments)
        data[offset + 4 : offset + size] = bytes(max(0, size - 4))
    else:
        offset, size = rnd.choice(segments)
        del data[offset : offset + size]
    return f"segment-{action}"


Mutation = Callable[[bytearray, random.Random], str]
COMMON: tuple[Mutation, ...] = (_flip, _zero, _cut, _behead, _splice)


@pytest.fixture(scope="module")
def seeds(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int | None]]:
    """Small real inputs: short clips in four containers and two downscaled photos, with frame counts."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg is not installed (./install.sh installs it)")
    folder = tmp_path_factory.mktemp("seeds")
    faces = shared_data / "faces-pyfeat"
    encode = ["-frames:v", str(CLIP_FRAMES), "-vf", "scale=320:180", "-c:v", "libx264", "-g", "4", "-c:a", "aac"]
    made: dict[str, tuple[Path, int | None]] = {}
    for name, extra in (
        ("fast.mp4", ["-movflags", "+faststart"]),
        ("tail.mov", []),
        ("clip.ts", ["-f", "mpegts"]),
    ):
        command = ["ffmpeg", "-v", "error", "-y", "-i", str(faces / "single_face.mp4"), *encode, *extra]
        subprocess.run([*command, str(folder / name)], check=True, timeout=60)
        made[name] = (folder / name, CLIP_FRAMES)
    with open(folder / "piped.mkv", "wb") as handle:
        command = ["ffmpeg", "-v", "error", "-i", str(folder / "fast.mp4"), "-c", "copy", "-f", "matroska", "pipe:1"]
        subprocess.run(command, stdout=handle, check=True, timeout=60)
    made["piped.mkv"] = (folder / "piped.mkv", CLIP_FRAMES)
    for name, width in (("single_face.jpg", 320), ("multi_face.jpg", 480)):
        command = ["ffmpeg", "-v", "error", "-y", "-i", str(faces / name), "-vf", f"scale={width}:-2", "-q:v", "4"]
        subprocess.run([*command, str(folder / name)], check=True, timeout=60)
        made[name] = (folder / name, 1)
    return made


def _cases(seeds: dict[str, tuple[Path, int | None]]) -> list[tuple[str, bytes, str, int | None]]:
    """(name, mutated bytes, what was done, frames of the original) for every case."""
    rnd = random.Random(SEED)
    cases = []
    for name, (path, frames) in sorted(seeds.items()):
        original = path.read_bytes()
        image = name.endswith(".jpg")
        kinds = COMMON + ((_jpeg_segments,) * 2 if image else (_atoms,) * 2 if name[-4:] in (".mp4", ".mov") else ())
        for number in range(CASES_PER_IMAGE if image else CASES_PER_VIDEO):
            data = bytearray(original)
            done = rnd.choice(kinds)(data, rnd)
            if rnd.random() < 0.2:  # now and then two faults in one file
                done += "+" + rnd.choice(kinds)(data, rnd)
            cases.append((f"{number:02d}-{done}-{name}", bytes(data), done, frames))
    return cases


def _check_summary(out: Path, done: str, original_frames: int | None, name: str) -> dict:
    """What summary.json must say given frames.csv and the damage done."""
    summary = json.loads((out / "summary.json").read_text())
    assert isinstance(summary["complete"], bool) and (summary["error"] is None) == summary["complete"]
    with open(out / "frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(None not in row and None not in row.values() for row in rows), "a half-written row"
    assert len(rows) == summary["rows"]
    frames = {int(row["frame"]) for row in rows}
    assert len(frames) <= summary["frames"]
    if frames:
        assert max(frames) < summary["frames"] + summary["frames_skipped"]
    if summary["frames_skipped"]:
        assert not summary["complete"]
    if summary["complete"]:
        expected = summary["frames_expected"]
        assert expected is None or summary["frames"] == expected
        if done == "cut" and not name.endswith(".jpg"):  # a cut file that says it is whole lost nothing
            assert summary["frames"] == original_frames
    video = summary["outputs"]["video_frames"]
    assert video is None or video == summary["frames"] + summary["frames_skipped"]
    return summary


def test_mutated_inputs_end_honestly(
    seeds: dict[str, tuple[Path, int | None]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facial_emotion.session.report

    monkeypatch.setattr(
        facial_emotion.session.report, "build_report", lambda folder, **_: None
    )  # not what is fuzzed here
    pipeline = Pipeline(Settings().replace(emotion=None))
    outcomes: dict[str, int] = {"rejected": 0, "complete": 0, "incomplete": 0}
    for name, data, done, frames in _cases(seeds):
        path = tmp_path / name
        path.write_bytes(data)
        out = tmp_path / f"out-{name}"
        faulthandler.dump_traceback_later(CASE_LIMIT_S, exit=True)  # a hang fails the run, with stacks
        try:
            summary = analyze(path, out, settings=pipeline.settings, pipeline=pipeline, speech=False)
        except AnalysisError as exc:
            assert str(exc), name
            outcomes["rejected"] += 1
            if (out / "summary.json").is_file():
                assert json.loads((out / "summary.json").read_text())["complete"] is False, name
            continue
        finally:
            faulthandler.cancel_dump_traceback_later()
        try:
            _check_summary(out, done, frames, name)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}\n{(out / 'summary.json').read_text()}") from exc
        outcomes["complete" if summary["complete"] else "incomplete"] += 1
        path.unlink()
        shutil.rmtree(out)
    assert min(outcomes.values()) > 0, outcomes  # the mutations reach every outcome


def test_mutated_inputs_on_the_command_line(seeds: dict[str, tuple[Path, int | None]], tmp_path: Path) -> None:
    cases = _cases(seeds)
    chosen = random.Random(SEED).sample(cases, 5) + [c for c in cases if c[2] == "cut"][:1]
    for name, data, _done, _frames in chosen:
        path = tmp_path / name
        path.write_bytes(data)
        out = tmp_path / f"out-{name}"
        command = [sys.executable, "-m", "facial_emotion", "analyze", str(path), "--out", str(out)]
        proc = subprocess.run([*command, "--no-emotion", "--no-speech"], capture_output=True, text=True, timeout=120)
        assert "Traceback" not in proc.stderr, (name, proc.stderr)
        assert proc.returncode in (0, 2, 4), (name, proc.returncode, proc.stderr)
        if proc.returncode == 2:
            assert "error:" in proc.stderr
            continue
        summary = json.loads((out / "summary.json").read_text())
        assert summary["complete"] == (proc.returncode == 0), (name, proc.stderr)
