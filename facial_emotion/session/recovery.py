"""Finishing session folders: after a normal stop, and after a crash (found at the next start).

A folder is unfinished while its ``session.json`` lacks ``finished: true``; the
``.recording`` marker names the process that writes it (its PID and start time, so a
PID that was reused by another program does not count), so a session that another
running process is still recording is left alone. Finishing fixes the WAV header,
drops a half-written last line of the text files, remuxes the fragmented video into
a normal mp4 (with the audio, keeping the original until the new file is complete),
rebuilds the report and writes ``session.json``. A folder on read-only media (or one
this user may not write) is left exactly as it is, with an error that says so.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, Final

from facial_emotion.atomic import write_text_atomic

log = logging.getLogger(__name__)

SESSION_FILE: Final = "session.json"
MARKER_FILE: Final = ".recording"
VIDEO_FILE: Final = "video.mp4"
CLEAN_VIDEO_FILE: Final = "video_clean.mp4"
AUDIO_FILE: Final = "audio.wav"
FRAMES_FILE: Final = "frames.csv"
TRANSCRIPT_FILE: Final = "transcript.jsonl"
SESSION_RESERVE_BYTES: Final = 16384
"""session.json is first written this long (JSON, then spaces), so that on a full disk
the reason the recording stopped can still be written over it in place."""

# session.json keys for why a recording ended ("stop_reason") and their values.
STOP_REASON_KEY: Final = "stop_reason"
STOP_REQUESTED: Final = "stopped"
STOP_DISK_FULL: Final = "disk full"
STOP_WRITE_ERROR: Final = "write error"
STOP_CRASHED: Final = "crashed"
WAV_HEADER_BYTES: Final = 44
MAX_AUDIO_OFFSET_S: Final = 10.0
"""A larger gap between the first audio chunk and the first frame means unrelated clocks."""

_ACTIVE: set[Path] = set()
"""Session folders this process is recording now (never recovered under its feet)."""


def mark_active(folder: Path, active: bool) -> None:
    """Register or unregister a folder this process is writing."""
    (_ACTIVE.add if active else _ACTIVE.discard)(folder.resolve())


def read_session(folder: Path) -> dict[str, Any]:
    """The folder's session.json as a dict (empty when missing or unreadable)."""
    try:
        data = json.loads((folder / SESSION_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_session_info(folder: Path, info: dict[str, Any], *, reserve_bytes: int = 0) -> None:
    """Write session.json atomically; on a full disk, over the old file in place.

    ``reserve_bytes`` pads the file with spaces (still valid JSON) so that a later
    in-place write has room. In place, the full text is written when it fits, else a
    compact one, else only the keys that say how the session ended.
    """
    path = folder / SESSION_FILE
    text = json.dumps(info, indent=2, default=str) + "\n"
    try:
        write_text_atomic(path, text + " " * max(0, reserve_bytes - len(text.encode())))
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        error = exc
    keys = ("format", "name", "started_at", "finished", "recovered", STOP_REASON_KEY, "error", "duration_s")
    candidates = (text, json.dumps(info, default=str) + "\n", json.dumps({k: info.get(k) for k in keys}) + "\n")
    try:
        with open(path, "r+b") as handle:
            room = handle.seek(0, os.SEEK_END)
            for candidate in candidates:
                data = candidate.encode()
                if len(data) <= room:
                    handle.seek(0)
                    handle.write(data + b" " * (room - len(data)))  # the same blocks: no new space
                    handle.flush()
                    os.fsync(handle.fileno())
                    log.warning("disk full: wrote %s in place", path)
                    return
    except OSError:
        pass
    raise error


def write_marker(folder: Path) -> None:
    """Mark the folder as being recorded by this process (PID and its start time)."""
    pid = os.getpid()
    started = process_start_time(pid)
    write_text_atomic(folder / MARKER_FILE, f"{pid} {started}\n" if started else f"{pid}\n")


def process_start_time(pid: int) -> str | None:
    """When a process started, as a token to compare (``proc:<ticks>`` or ``psutil:<s>``); None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return f"proc:{int(fields[19])}"  # field 22, counted after "pid (comm)"
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    try:
        return f"psutil:{psutil.Process(pid).create_time():.2f}"
    except (psutil.Error, OSError):
        return None


def _same_start(recorded: str, current: str | None) -> bool:
    """False only when both start times are known, of one kind, and differ."""
    kind, _, value = recorded.partition(":")
    if current is None or not current.startswith(f"{kind}:"):
        return True  # nothing to compare with: trust the PID, as markers without it do
    now = current.partition(":")[2]
    if kind == "psutil":
        try:
            return abs(float(value) - float(now)) < 1.0
        except ValueError:
            return True
    return value == now


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_active(folder: Path) -> bool:
    """True while this or another live process is recording into the folder.

    A marker's PID that is alive but started at another time than the marker says
    belongs to another program (a reused PID): the recorder is gone.
    """
    if folder.resolve() in _ACTIVE:
        return True
    try:
        parts = (folder / MARKER_FILE).read_text().split()
        pid = int(parts[0])
    except (OSError, ValueError, IndexError):
        return False
    if pid == os.getpid() or not _pid_alive(pid):
        return False
    return len(parts) < 2 or _same_start(parts[1], process_start_time(pid))


def is_unfinished(folder: Path) -> bool:
    """True for a session folder that was never finished (and is not being recorded)."""
    try:
        if not folder.is_dir() or is_active(folder):
            return False
        if (folder / MARKER_FILE).exists():
            return True
        data = read_session(folder)
        if data.get("finished") is True:
            return False
        return bool(data) or (folder / FRAMES_FILE).exists() or (folder / VIDEO_FILE).exists()
    except OSError:  # a folder this user may not look into is none of ours to finish
        return False


def find_unfinished(root: Path) -> list[Path]:
    """Unfinished session folders directly under root, oldest first (none where root is unreadable)."""
    try:
        if not root.is_dir():
            return []
        children = list(root.iterdir())
    except OSError as exc:
        log.warning("cannot look for unfinished sessions in %s: %s", root, exc.strerror or exc)
        return []
    return sorted(p for p in children if is_unfinished(p))


def check_writable(folder: Path) -> None:
    """Raise an OSError that says why, when the folder cannot be changed (read-only media, no permission)."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    if read_only:
        raise OSError(errno.EROFS, "it is on read-only media; it was left as it is", str(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(errno.EACCES, "no permission to write there; it was left as it is", str(folder))


def fix_wav_header(path: Path, *, rate_hz: int = 16000) -> float:
    """Rewrite a 16-bit mono WAV header to match the bytes on disk; the audio's length in s."""
    size = path.stat().st_size
    data_bytes = max(0, size - WAV_HEADER_BYTES) // 2 * 2
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate_hz,
        rate_hz * 2,
        2,
        16,
        b"data",
        data_bytes,
    )
    with open(path, "r+b") as handle:
        if size < WAV_HEADER_BYTES:
            handle.truncate(WAV_HEADER_BYTES)
        handle.seek(0)
        handle.write(header)
    return data_bytes / 2 / rate_hz


def trim_partial_line(path: Path) -> int:
    """Cut a half-written last line (a crash mid-write); the number of bytes removed."""
    if not path.is_file():
        return 0
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        back = min(size, 1 << 16)
        handle.seek(size - back)
        tail = handle.read(back)
        if tail.endswith(b"\n"):
            return 0
        cut = tail.rfind(b"\n")
        keep = size - back + cut + 1 if cut >= 0 else 0
        handle.truncate(keep)
        return size - keep


def _ffmpeg(args: list[str], *, timeout_s: float = 600.0) -> str | None:
    """Run ffmpeg; None on success, else its last error line."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return "ffmpeg is not installed"
    try:
        proc = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return lines[-1] if lines else f"ffmpeg exited with {proc.returncode}"
    return None


def _replace_if_made(tmp: Path, target: Path, error: str | None) -> str | None:
    if error is None and tmp.is_file() and tmp.stat().st_size > 0:
        os.replace(tmp, target)
        return None
    tmp.unlink(missing_ok=True)
    return error or "ffmpeg wrote nothing"


def finish_video(path: Path, *, audio: Path | None = None, audio_offset_s: float = 0.0) -> dict[str, Any]:
    """Remux a fragmented mp4 into a normal one, muxing audio in when given.

    The original is replaced only after the new file is complete; when muxing the
    audio fails the video is remuxed alone, and when that fails too it stays as it was
    (a fragmented mp4 plays anyway).
    """
    out: dict[str, Any] = {"file": path.name, "audio": False, "remuxed": False, "error": None}
    if not path.is_file() or path.stat().st_size == 0:
        out["error"] = "no video was written"
        return out
    tmp = path.with_name(f".{path.stem}.finishing.mp4")
    if audio is not None and audio.is_file() and audio.stat().st_size > WAV_HEADER_BYTES:
        offset = audio_offset_s if abs(audio_offset_s) <= MAX_AUDIO_OFFSET_S else 0.0
        args = ["-i", str(path), "-itsoffset", f"{offset:.3f}", "-i", str(audio), "-map", "0:v:0", "-map", "1:a:0"]
        args += ["-c:v", "copy", "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", str(tmp)]
        error = _ffmpeg(args)
        error = _replace_if_made(tmp, path, error)
        if error is None:
            out.update(audio=True, remuxed=True)
            return out
        log.warning("muxing audio into %s failed (%s); keeping the video without it", path, error)
        out["audio_error"] = error
    error = _replace_if_made(tmp, path, _ffmpeg(["-i", str(path), "-c", "copy", "-movflags", "+faststart", str(tmp)]))
    out["remuxed"] = error is None
    out["error"] = error
    return out


def finish_session(folder: Path, info: dict[str, Any], *, recovered: bool) -> dict[str, Any]:
    """Close out a session folder: audio header, text tails, video, report, session.json.

    Every step is tried even when an earlier one fails (a full disk must not cost the
    files that are already there); the last step removes the ``.recording`` marker.
    """
    info = dict(info)
    errors: dict[str, str] = dict(info.get("finish_errors") or {})
    for name in (FRAMES_FILE, TRANSCRIPT_FILE):
        try:
            if cut := trim_partial_line(folder / name):
                log.info("cut %d bytes of a half-written line from %s", cut, folder / name)
        except OSError as exc:
            errors[name] = str(exc)
    if recovered and not info.get("duration_s"):
        info["duration_s"] = duration_from_data(folder)
    audio = folder / AUDIO_FILE
    if audio.is_file():
        try:
            info["audio_s"] = round(fix_wav_header(audio), 3)
        except OSError as exc:
            errors[AUDIO_FILE] = str(exc)
    offset_s = 0.0
    if info.get("first_audio_ms") is not None and info.get("first_frame_ms") is not None:
        offset_s = (float(info["first_audio_ms"]) - float(info["first_frame_ms"])) / 1000.0
    videos = []
    for name, with_audio in ((VIDEO_FILE, True), (CLEAN_VIDEO_FILE, False)):
        if (folder / name).exists():
            try:
                videos.append(finish_video(folder / name, audio=audio if with_audio else None, audio_offset_s=offset_s))
            except OSError as exc:
                errors[name] = str(exc)
    info["videos"] = videos
    info.update(finished=True, recovered=recovered or bool(info.get("recovered")))
    info.setdefault(STOP_REASON_KEY, STOP_CRASHED if recovered else STOP_REQUESTED)
    if recovered:
        info["recovered_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        from facial_emotion.report import REPORT_FILE, build_report

        info["report"] = build_report(folder, session=info).name
    except OSError as exc:  # a full disk or a read-only folder: say so in a line, keep the session
        log.error("cannot write the report of %s: %s", folder, exc.strerror or exc)
        errors[REPORT_FILE] = str(exc)
    except Exception as exc:  # a report that cannot be drawn must not lose the session
        log.exception("cannot build the report of %s", folder)
        errors[REPORT_FILE] = str(exc)
    info["finish_errors"] = errors
    write_session_info(folder, info)
    (folder / MARKER_FILE).unlink(missing_ok=True)
    return info


def duration_from_data(folder: Path) -> float:
    """After a crash: the session time that frames.csv covers (passes added up), in s.

    Times that go back (a looped video in files written before session time was
    monotonic) start a new pass; a pass adds its own span.
    """
    import csv

    total_ms = 0.0
    first = last = None
    try:
        with open(folder / FRAMES_FILE, newline="", errors="replace") as handle:
            for row in csv.DictReader(handle):
                try:
                    t_ms = float(row.get("timestamp_ms") or "")
                except ValueError:
                    continue  # a damaged line
                if last is not None and t_ms < last:
                    total_ms += last - first
                    first = t_ms
                first = t_ms if first is None else first
                last = t_ms
    except OSError:
        pass
    if first is not None and last is not None:
        total_ms += last - first
    if total_ms <= 0:  # no face was ever in a row: the video's own length
        return _video_duration_s(folder / VIDEO_FILE)
    return round(total_ms / 1000.0, 3)


def _video_duration_s(path: Path) -> float:
    exe = shutil.which("ffprobe")
    if exe is None or not path.is_file():
        return 0.0
    try:
        out = subprocess.run(
            [exe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        return round(max(0.0, float(out.strip() or 0.0)), 3)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return 0.0


def recover_session(folder: Path) -> dict[str, Any]:
    """Finish a session left unfinished by a crash; its session.json says ``recovered: true``.

    Raises OSError (with the reason) and changes nothing when the folder cannot be written.
    """
    check_writable(folder)
    info = read_session(folder)
    info.setdefault("name", folder.name)
    info.setdefault("error", None)
    log.info("recovering unfinished session %s", folder)
    return finish_session(folder, info, recovered=True)


def recover_all(root: Path) -> list[Path]:
    """Recover every unfinished session under root; the folders that were recovered."""
    done = []
    for folder in find_unfinished(root):
        try:
            recover_session(folder)
            done.append(folder)
        except OSError as exc:
            log.error("cannot recover %s: %s", folder, exc.strerror or exc)
    return done
