"""Recording under real bad inputs: concurrent starts, crashes, reused PIDs, no permission,
read-only media, a full disk, a camera index that is also a folder, looped sources.

Permission errors need a process that file modes stop. These tests run as root, and
chmod does not stop root, so the commands run either as ``nobody`` (where that user
can run this Python) or as root without the capabilities that bypass file modes
(``setpriv --bounding-set=-dac_override,-dac_read_search,-fowner``). Read-only media
is a read-only bind mount, a full disk a small tmpfs; both need root.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from facial_emotion import recording
from facial_emotion.recording import SessionRecorder
from facial_emotion.recording_cli import resolve_source
from facial_emotion.session.files import RECORDING_MARK_FILE
from facial_emotion.session.info import read_info
from facial_emotion.session.mark import is_active, process_start_time, write_mark
from facial_emotion.session.recovery import find_unfinished, is_unfinished, recover_all, recover_session
from facial_emotion.session.schema import STOP_CRASHED, STOP_DISK_FULL, STOP_REQUESTED, SessionInfo
from facial_emotion.session.tables import FRAME_COLUMNS
from facial_emotion.session.writers import SessionWriter
from facial_emotion.types import Box, EmotionScores, Face, Frame, FrameResult

REPO = Path(__file__).resolve().parent.parent
FIXED_NAME = "2026-11-24_08-15-02"


def read_session(folder: Path) -> SessionInfo:
    """The folder's session.json, which must be there."""
    info = read_info(folder)
    assert info is not None, f"no readable session.json in {folder}"
    return info


def _cli(args: list[str], *, prefix: tuple[str, ...] = (), cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLCONFIGDIR": str(Path(os.environ["FACIAL_EMOTION_HOME"]))}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "facial_emotion", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The error line the user sees; fails on a traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _crashed_session(folder: Path, *, times_ms: list[float], started_ago_s: float = 35.6) -> Path:
    """A session folder as a SIGKILL leaves it: rows, a marker of a dead process, finished false."""
    folder.mkdir(parents=True)
    with open(folder / "frames.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "timestamp_ms", "track_id", "left", "top", "right", "bottom", "blinks"])
        for i, t_ms in enumerate(times_ms):
            writer.writerow([i, f"{t_ms:.1f}", 1, 0, 0, 10, 10, 0])
    (folder / RECORDING_MARK_FILE).write_text(f"{_dead_pid()}\n")
    info = {"name": folder.name, "finished": False, "started_epoch_s": time.time() - started_ago_s}
    (folder / "session.json").write_text(json.dumps(info))
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[str, float]]:
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _face_result(index: int, t_ms: float, pass_index: int = 0, value: int = 80) -> FrameResult:
    image = np.full((48, 64, 3), value, np.uint8)
    face = Face(Box(1, 1, 20, 20), 1, emotion=EmotionScores((0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1)))
    return FrameResult(Frame(image, index, t_ms, pass_index), (face,))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _first_frame_mean(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    ok, image = cap.read()
    cap.release()
    assert ok, path
    return float(image.mean())


# -- fault 3: concurrent starts ---------------------------------------------------------------


def test_recorders_started_at_once_in_threads_each_get_their_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording, "session_name", lambda when=None: FIXED_NAME)  # all collide
    count = 8
    barrier = threading.Barrier(count)
    folders: dict[int, Path] = {}
    recorders = [SessionRecorder(tmp_path, fps=10.0, lossless=True) for _ in range(count)]

    def start(i: int) -> None:
        barrier.wait()
        folders[i] = recorders[i].start()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, recorder in enumerate(recorders):
        for k in range(5):
            recorder.add_result(FrameResult(Frame(np.full((48, 64, 3), 20 + 25 * i, np.uint8), k, k * 100.0)))
    for recorder in recorders:
        recorder.stop()

    assert len(set(folders.values())) == count
    assert {f.name for f in folders.values()} == {FIXED_NAME, *(f"{FIXED_NAME}-{n}" for n in range(2, count + 1))}
    for i, folder in folders.items():
        info = read_session(folder)
        assert info.finished is True and info.recovered is False and info.error is None
        assert info.stop_reason == STOP_REQUESTED
        assert not (folder / RECORDING_MARK_FILE).exists()
        assert abs(_first_frame_mean(folder / "video.mp4") - (20 + 25 * i)) < 6, "each folder holds its own video"


_PROCESS_SNIPPET = """
import sys, time
import numpy as np
from pathlib import Path
from facial_emotion import recording
from facial_emotion.session.recovery import recover_all
from facial_emotion.types import Frame, FrameResult
root, value, at = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
recording.session_name = lambda when=None: "2026-11-24_08-15-02"
time.sleep(max(0.0, at - time.time()))
recovered = recover_all(root)  # as `record` does before it starts
recorder = recording.SessionRecorder(root, fps=10.0, lossless=True)
folder = recorder.start()
for k in range(15):
    recorder.add_result(FrameResult(Frame(np.full((48, 64, 3), value, np.uint8), k, k * 100.0)))
    time.sleep(0.02)
recorder.stop()
print(folder, len(recovered))
"""


def test_record_processes_started_at_once_never_share_or_finish_each_others_folder(tmp_path: Path) -> None:
    count = 4
    at = time.time() + 3.0  # every process imports first, then all start in the same instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_SNIPPET, str(tmp_path), str(30 + 60 * i), str(at)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    results = [out.split() for out, _ in outputs]
    folders = [Path(r[0]) for r in results]
    assert len(set(folders)) == count, folders
    assert all(r[1] == "0" for r in results), "no process recovered a folder another was recording"
    for i, folder in enumerate(folders):
        info = read_session(folder)
        assert info.finished is True and info.recovered is False
        assert info.frames_written == 15
        assert abs(_first_frame_mean(folder / "video.mp4") - (30 + 60 * i)) < 6
    assert not find_unfinished(tmp_path)


# -- fault 7: the duration of a recovered session ---------------------------------------------


def test_recovered_duration_is_the_time_the_rows_cover_not_the_wait(tmp_path: Path) -> None:
    folder = _crashed_session(tmp_path / "s", times_ms=[1000.0 + 41.7 * i for i in range(214)])  # 8.9 s
    info = recover_session(folder)
    assert info.duration_s == pytest.approx(8.9, abs=0.05)
    assert read_session(folder).duration_s == pytest.approx(8.9, abs=0.05)
    assert info.recovered is True and info.stop_reason == STOP_CRASHED


def test_recovered_duration_of_an_old_looped_table_adds_up_the_passes(tmp_path: Path) -> None:
    one_pass = [33.3 * i for i in range(300)]  # 9.97 s, then the clock went back to 0 twice
    folder = _crashed_session(tmp_path / "s", times_ms=one_pass * 3)
    assert recover_session(folder).duration_s == pytest.approx(3 * 9.9567, abs=0.05)


# -- fault 12: a marker whose PID was reused --------------------------------------------------


@pytest.fixture
def live_stranger() -> Iterator[int]:
    """A running process that is not a recorder (it holds a PID a marker may name)."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_marker_whose_pid_now_belongs_to_another_process_is_recovered(tmp_path: Path, live_stranger: int) -> None:
    folder = _crashed_session(tmp_path / "s", times_ms=[0.0, 40.0, 80.0])
    started = process_start_time(live_stranger)
    assert started is not None
    kind, _, value = started.partition(":")
    (folder / RECORDING_MARK_FILE).write_text(f"{live_stranger} {kind}:{int(float(value)) - 5}\n")  # started earlier
    assert not is_active(folder) and is_unfinished(folder)
    assert recover_all(tmp_path) == [folder]
    assert read_session(folder).finished is True and not (folder / RECORDING_MARK_FILE).exists()


def test_a_marker_of_a_live_recorder_and_an_old_marker_still_block_recovery(tmp_path: Path, live_stranger: int) -> None:
    folder = _crashed_session(tmp_path / "s", times_ms=[0.0, 40.0])
    (folder / RECORDING_MARK_FILE).write_text(f"{live_stranger} {process_start_time(live_stranger)}\n")
    assert is_active(folder) and not is_unfinished(folder)
    (folder / RECORDING_MARK_FILE).write_text(f"{live_stranger}\n")  # written before markers held the start time
    assert is_active(folder) and recover_all(tmp_path) == []
    write_mark(folder)  # this process's own marker names its start time
    pid, started = (folder / RECORDING_MARK_FILE).read_text().split()
    assert int(pid) == os.getpid() and started == process_start_time(os.getpid())


# -- fault 10: permissions, read-only media, a full disk ----------------------------------------


@functools.cache
def _unprivileged_prefix() -> tuple[str, ...] | None:
    """A command prefix under which file modes apply, or None when there is none here."""
    if os.geteuid() != 0:
        return ()
    candidates = []
    if shutil.which("setpriv"):
        candidates.append(("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
        caps = "-dac_override,-dac_read_search,-fowner"
        candidates.append(("setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"))
    probe = Path(os.environ["FACIAL_EMOTION_HOME"]).parent / "probe-locked"
    probe.mkdir(exist_ok=True)
    probe.chmod(0)
    try:
        for prefix in candidates:
            code = f"import os, facial_emotion; os.listdir({str(probe)!r})"
            proc = subprocess.run([*prefix, sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
            if proc.returncode != 0 and "PermissionError" in proc.stderr:
                return prefix
    finally:
        probe.chmod(0o700)
    return None


@pytest.fixture
def unprivileged() -> tuple[str, ...]:
    prefix = _unprivileged_prefix()
    if prefix is None:
        pytest.skip("no way to run a process that file modes stop (not root, and no setpriv here)")
    return prefix


@pytest.mark.parametrize("mode", [0o500, 0o000], ids=["unwritable", "unreadable"])
def test_record_into_a_folder_it_may_not_write_says_so_in_one_line(
    shared_data: Path, tmp_path: Path, unprivileged: tuple[str, ...], mode: int
) -> None:
    out = tmp_path / "sessions"
    out.mkdir()
    out.chmod(mode)
    try:
        proc = _cli(
            ["record", str(shared_data / "faces-pyfeat" / "single_face.jpg"), "--out", str(out)], prefix=unprivileged
        )
    finally:
        out.chmod(0o700)
    assert proc.returncode == 3, proc.stderr
    line = _one_error_line(proc)
    assert "cannot create a session folder" in line and "Permission denied" in line and str(out) in line
    assert list(out.iterdir()) == []


def test_report_of_a_session_it_may_not_read_says_so(tmp_path: Path, unprivileged: tuple[str, ...]) -> None:
    folder = _crashed_session(tmp_path / "s", times_ms=[0.0, 40.0])
    recover_session(folder)
    for locked in (folder, folder / "frames.csv"):
        locked.chmod(0)
        try:
            proc = _cli(["report", str(folder)], prefix=unprivileged)
        finally:
            locked.chmod(0o700 if locked.is_dir() else 0o600)
        assert proc.returncode == 2, proc.stderr
        line = _one_error_line(proc)
        assert "cannot read" in line and str(locked) in line


def test_report_into_a_folder_it_may_not_write_leaves_it_as_it_is(
    tmp_path: Path, unprivileged: tuple[str, ...]
) -> None:
    finished = _crashed_session(tmp_path / "done", times_ms=[0.0, 40.0])
    recover_session(finished)
    crashed = _crashed_session(tmp_path / "crashed", times_ms=[0.0, 40.0])
    for folder in (finished, crashed):
        before = _snapshot(folder)
        folder.chmod(0o500)
        try:
            proc = _cli(["report", str(folder)], prefix=unprivileged)
        finally:
            folder.chmod(0o700)
        assert proc.returncode == 3, proc.stderr
        line = _one_error_line(proc)
        assert "cannot write the report" in line and "no permission" in line
        assert _snapshot(folder) == before


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """tmp_path/media and a function that bind-mounts it read-only over itself (once it is filled)."""
    media = tmp_path / "media"
    media.mkdir()
    state: dict[str, bool] = {}

    def mount() -> None:
        for args in (["mount", "--bind", str(media), str(media)], ["mount", "-o", "remount,bind,ro", str(media)]):
            proc = subprocess.run(args, capture_output=True, text=True)
            if proc.returncode != 0:
                if state.get("mounted"):
                    subprocess.run(["umount", str(media)], check=False)
                pytest.skip(f"cannot make a read-only bind mount here: {proc.stderr.strip()}")
            state["mounted"] = True

    try:
        yield media, mount
    finally:
        if state.get("mounted"):
            subprocess.run(["umount", "-l", str(media)], check=False)


def test_recovery_on_read_only_media_says_so_and_changes_nothing(
    shared_data: Path, read_only: tuple[Path, Callable[[], None]]
) -> None:
    media, mount = read_only
    folder = _crashed_session(media / "crashed", times_ms=[0.0, 40.0, 80.0])
    before = _snapshot(folder)
    mount()
    proc = _cli(["report", str(folder)])
    assert proc.returncode == 3, proc.stderr
    line = _one_error_line(proc)
    assert "read-only media" in line and str(folder) in line
    assert recover_all(media) == [], "skipped with a log line, no exception"
    with pytest.raises(OSError, match="read-only media"):
        recover_session(folder)
    record = _cli(["record", str(shared_data / "faces-pyfeat" / "single_face.jpg"), "--out", str(media)])
    assert record.returncode == 3, record.stderr
    assert "Read-only file system" in _one_error_line(record)
    assert _snapshot(folder) == before


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_disk_that_fills_up_during_a_recording_leaves_the_reason_in_session_json(tiny_disk: Path) -> None:
    messages: list[str] = []
    recorder = SessionRecorder(tiny_disk, fps=25.0, min_free_bytes=0, on_error=messages.append, lossless=True)
    folder = recorder.start()
    rng = np.random.default_rng(0)
    faces = _face_result(0, 0.0).faces
    for k in range(2000):  # noise does not compress: the 1.5 MiB disk fills within seconds
        if recorder.error is not None:
            break
        image = rng.integers(0, 255, (240, 320, 3), np.uint8)
        recorder.add_result(FrameResult(Frame(image, k, k * 40.0), faces))
    recorder.stop()
    assert messages and "disk is full" in messages[0]
    info = json.loads((folder / "session.json").read_text())  # whole JSON, written in place
    assert info["stop_reason"] == STOP_DISK_FULL and "disk is full" in info["error"]
    assert info["finished"] is True, "finished despite the full disk, and it says why"
    assert not (folder / RECORDING_MARK_FILE).exists()
    lines = (folder / "frames.csv").read_text().splitlines()
    assert len(lines) > 1 and all(line.count(",") == len(FRAME_COLUMNS) - 1 for line in lines)


# -- fault 13: a number that is also a path ---------------------------------------------------


def test_a_source_that_is_an_existing_path_is_read_even_when_it_is_a_number(shared_data: Path, tmp_path: Path) -> None:
    (tmp_path / "2024").mkdir()
    shutil.copy(shared_data / "faces-pyfeat" / "single_face.jpg", tmp_path / "2024" / "a.jpg")
    proc = _cli(["record", "2024", "--out", str(tmp_path / "out"), "--no-emotion"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "reading the folder 2024 (not camera 2024)" in proc.stderr
    (folder,) = (tmp_path / "out").iterdir()
    info = read_session(folder)
    assert info.source == "2024" and info.frames_written == 1


def test_a_bare_number_without_such_a_path_is_a_camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_source("7") == ("7", "note: no file or folder named 7; opening camera 7")
    (tmp_path / "7").write_bytes(b"")
    spec, note = resolve_source("7")
    assert spec == Path("7") and "reading the file 7 (not camera 7)" in note
    assert resolve_source("clip.mp4") == ("clip.mp4", "")


# -- section 3: loops and source changes ------------------------------------------------------


def test_frames_of_a_looping_source_are_written_on_one_clock_with_their_pass(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path, fps=25.0)
    writer._open_videos = lambda result: None  # rows only: no encoder needed
    inputs = [_face_result(i, i * 40.0) for i in range(50)]  # 2 s
    inputs += [_face_result(i, i * 40.0) for i in range(50)]  # the video looped; the input did not say so
    inputs += [_face_result(i, i * 40.0, pass_index=1) for i in range(25)]  # a new source, marked
    for result in inputs:
        writer.write_result(result)
    writer.close()
    rows = _rows(tmp_path / "frames.csv")
    times = [float(r["timestamp_ms"]) for r in rows]
    frames = [int(r["frame"]) for r in rows]
    assert len(rows) == 125
    assert all(b > a for a, b in itertools.pairwise(times)), "time never goes back"
    assert all(b > a for a, b in itertools.pairwise(frames))
    assert times[-1] == pytest.approx(124 * 40.0)
    assert [r["pass"] for r in rows] == ["0"] * 50 + ["1"] * 50 + ["2"] * 25


def test_monotonic_input_with_passes_is_written_as_it_came(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path, fps=25.0)
    writer._open_videos = lambda result: None
    for i in range(60):
        writer.write_result(_face_result(i, 1000.0 + i * 40.0, pass_index=i // 20))
    writer.close()
    rows = _rows(tmp_path / "frames.csv")
    assert [float(r["timestamp_ms"]) for r in rows] == [1000.0 + i * 40.0 for i in range(60)]
    assert [int(r["pass"]) for r in rows] == [i // 20 for i in range(60)]
