"""Speech models the user can download: the registry, finding, fetching, verifying, unpacking.

Nothing here touches the network unless ``download_model`` is called, which only the
``facial-emotion models download NAME`` command does.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from facial_emotion.paths import ASSETS_DIR, user_data_dir

log = logging.getLogger(__name__)

VOSK_MODEL_ENV: Final[str] = "FACIAL_EMOTION_VOSK_MODEL"
MAX_UNPACKED_BYTES: Final[int] = 2 * 1024**3
"""Refuse archives that claim to unpack to more than this (a zip bomb or the wrong file)."""
READ_BYTES: Final[int] = 256 * 1024
READ_TIMEOUT_S: Final[float] = 15.0
"""A try ends when the server sends nothing for this long (connecting included)."""
SILENT_TRIES: Final[int] = 2
"""The download gives up after this many tries that ended in silence (30 s by default)."""
STALL_NOTICE_S: Final[float] = 2.0
"""Silences longer than this are reported to ``stalled`` once a second."""
Progress = Callable[[int, int | None], None]
Stalled = Callable[[float], None]
"""Told the seconds since the last byte arrived, once a second while the server is silent."""


class DownloadError(RuntimeError):
    """A model could not be downloaded, verified or installed; the message is for the user."""


@dataclass(frozen=True, slots=True)
class SpeechModelSpec:
    """A downloadable speech model: where it comes from, the folder it lands in, its manifest."""

    key: str
    display_name: str
    url: str
    folder: str
    manifest: Path


SPEECH_MODELS: Final[tuple[SpeechModelSpec, ...]] = (
    SpeechModelSpec(
        key="vosk-small-en-us",
        display_name="Vosk small US English 0.15 (40 MB, Apache-2.0)",
        url="https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
        folder="vosk-model-small-en-us-0.15",
        manifest=ASSETS_DIR / "vosk-model-small-en-us.manifest",
    ),
)


def models_dir() -> Path:
    """Where downloaded speech models live: <user data>/models."""
    return user_data_dir() / "models"


def model_spec(key: str) -> SpeechModelSpec:
    """The registry entry for key."""
    for spec in SPEECH_MODELS:
        if spec.key == key:
            return spec
    raise DownloadError(f"unknown model {key!r}; known: {', '.join(s.key for s in SPEECH_MODELS)}")


def is_vosk_model(folder: Path) -> bool:
    """True when folder looks like a Vosk model (acoustic model and configuration present)."""
    return (folder / "am" / "final.mdl").is_file() or (folder / "final.mdl").is_file()


def find_vosk_model(explicit: str | Path | None = None) -> Path | None:
    """The Vosk model to use: explicit folder, else $FACIAL_EMOTION_VOSK_MODEL, else the downloaded one."""
    if explicit:
        folder = Path(explicit).expanduser()
        return folder if is_vosk_model(folder) else None
    env = os.environ.get(VOSK_MODEL_ENV)
    if env:
        folder = Path(env).expanduser()
        if is_vosk_model(folder):
            return folder
        log.warning("%s=%s is not a Vosk model folder; ignoring it", VOSK_MODEL_ENV, env)
    for spec in SPEECH_MODELS:
        folder = models_dir() / spec.folder
        if is_vosk_model(folder):
            return folder
    return None


def git_blob_id(path: Path) -> str:
    """The git blob id of a file (sha1 of b"blob <size>\\0" + content), as ``git hash-object`` gives."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as handle:
        while block := handle.read(READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    """Relative path to git blob id, from lines ``<blob id> <relative path>``."""
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            blob, name = line.split(maxsplit=1)
            entries[name.strip()] = blob.lower()
    return entries


def verify_folder(folder: Path, manifest: dict[str, str]) -> list[str]:
    """Problems found checking every manifest file in folder (empty when all match)."""
    problems = []
    for name, blob in manifest.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif git_blob_id(path) != blob:
            problems.append(f"{name}: checksum mismatch")
    return problems


class _StallWatch:
    """Calls ``stalled(seconds)`` once a second from a helper thread while no data arrives."""

    def __init__(self, stalled: Stalled | None) -> None:
        self._stalled = stalled
        self._last = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fe-download-stall", daemon=True)

    def __enter__(self) -> _StallWatch:
        if self._stalled is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def data(self) -> None:
        """Bytes (or a new connection) arrived just now."""
        self._last = time.monotonic()

    def _watch(self) -> None:
        assert self._stalled is not None
        while not self._done.wait(1.0):
            silent = time.monotonic() - self._last
            if silent >= STALL_NOTICE_S:
                self._stalled(silent)


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)


def _fetch(
    url: str,
    part: Path,
    progress: Progress | None,
    *,
    retries: int,
    timeout_s: float,
    stalled: Stalled | None = None,
    silent_tries: int = SILENT_TRIES,
) -> None:
    """Download url into part, resuming from its current size with HTTP Range after a cut.

    Every try waits at most timeout_s for the next byte; silences are reported to
    ``stalled``, and the download gives up after silent_tries tries ended silent.
    """
    attempt = 0
    silent = 0
    with _StallWatch(stalled) as watch:
        while True:
            have = part.stat().st_size if part.exists() else 0
            request = urllib.request.Request(url, headers={"User-Agent": "facial-emotion"})
            if have:
                request.add_header("Range", f"bytes={have}-")
            watch.data()
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    watch.data()
                    skip = 0
                    if have and response.status != 206:
                        # The server ignored Range and sends it all again: pass over the bytes the
                        # part file holds, so a silence now does not cost what was fetched before.
                        log.info("server does not resume; reading %s from the start", url)
                        skip, have = have, 0
                    length = response.headers.get("Content-Length")
                    total = have + int(length) if length and length.isdigit() else None
                    with part.open("ab") as out:
                        done = have + skip
                        if progress:
                            progress(done, total)
                        read = have
                        while block := response.read1(READ_BYTES):
                            watch.data()
                            fresh = block[max(0, skip - read) :]
                            read += len(block)
                            if fresh:
                                out.write(fresh)
                                out.flush()  # what arrived is on disk, to resume from
                                done += len(fresh)
                                if progress:
                                    progress(done, total)
                    if total is not None and done < total:
                        raise http.client.IncompleteRead(b"", total - done)
                    return
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and have:  # asked for bytes past the end: the part file is complete
                    return
                if exc.code < 500 or attempt >= retries:
                    raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                if _is_timeout(exc):
                    silent += 1
                    if silent >= silent_tries or attempt >= retries:
                        times = f" ({silent} tries)" if silent > 1 else ""
                        raise DownloadError(
                            f"download of {url} stalled: the server sent nothing for {timeout_s:g} s{times}"
                        ) from exc
                    log.info("no data for %g s; reconnecting", timeout_s)
                elif attempt >= retries:
                    raise DownloadError(f"download of {url} failed after {attempt + 1} tries: {exc}") from exc
                else:
                    log.info("download interrupted (%s); resuming", exc)
            attempt += 1
            time.sleep(min(0.2 * 2**attempt, 5.0))


def _safe_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's members, after refusing any that would land outside the target folder."""
    members = archive.infolist()
    total = 0
    for info in members:
        name = info.filename
        path = PurePosixPath(name)
        mode = info.external_attr >> 16
        if name.startswith(("/", "\\")) or "\\" in name or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
            raise DownloadError(f"archive refused: member {name!r} would be written outside the model folder")
        if stat.S_ISLNK(mode):
            raise DownloadError(f"archive refused: member {name!r} is a symbolic link")
        total += info.file_size
    if total > MAX_UNPACKED_BYTES:
        raise DownloadError(f"archive refused: it would unpack to {total / 1e9:.1f} GB")
    return members


def unpack_zip(archive_path: Path, target: Path) -> None:
    """Unpack a zip archive into target (which must exist), refusing unsafe members."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = _safe_members(archive)
            root = target.resolve()
            for info in members:
                dest = (target / info.filename).resolve()
                if root != dest and root not in dest.parents:
                    raise DownloadError(f"archive refused: member {info.filename!r} escapes the model folder")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, READ_BYTES)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise DownloadError(f"the downloaded file is not a valid zip archive: {exc}") from exc


def _model_root(unpacked: Path, folder: str) -> Path:
    """The folder inside the unpacked archive that holds the model files."""
    inner = unpacked / folder
    if inner.is_dir():
        return inner
    entries = list(unpacked.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else unpacked


def download_model(
    key: str,
    *,
    dest: str | Path | None = None,
    url: str | None = None,
    progress: Progress | None = None,
    stalled: Stalled | None = None,
    retries: int = 3,
    timeout_s: float | None = None,
    silent_tries: int = SILENT_TRIES,
) -> Path:
    """Download, verify and install the model key; returns its folder (already there: no download).

    The archive is fetched to ``<dest>/<folder>.zip.part`` (resumed after a cut), unpacked into
    a temporary folder beside the target, every manifest file checked, and only then moved
    into place. On any failure nothing is left installed. A download that fails on the way
    (a silent server: ``timeout_s`` per try, default READ_TIMEOUT_S, ``silent_tries`` such tries)
    keeps the part file, and the error says so: the same call resumes it.
    """
    spec = model_spec(key)
    root = Path(dest).expanduser() if dest else models_dir()
    target = root / spec.folder
    manifest = read_manifest(spec.manifest)
    if target.is_dir() and not verify_folder(target, manifest):
        log.info("%s is already installed in %s", key, target)
        return target
    root.mkdir(parents=True, exist_ok=True)
    part = root / f"{spec.folder}.zip.part"
    try:
        _fetch(
            url or spec.url,
            part,
            progress,
            retries=retries,
            timeout_s=READ_TIMEOUT_S if timeout_s is None else timeout_s,
            stalled=stalled,
            silent_tries=silent_tries,
        )
    except DownloadError as exc:
        kept = part.stat().st_size if part.is_file() else 0
        if kept:
            raise DownloadError(
                f"{exc}. The {kept / 1e6:.1f} MB received are kept in {part}; run the same command again to resume"
            ) from exc
        raise
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.folder}-", dir=root))
    try:
        unpack_zip(part, staging)
        model = _model_root(staging, spec.folder)
        problems = verify_folder(model, manifest)
        if problems:
            shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
            raise DownloadError(f"the downloaded {key} failed verification: {shown}")
        extra = [p for p in model.rglob("*") if p.is_file() and p.relative_to(model).as_posix() not in manifest]
        if extra:
            log.warning("%s: %d file(s) not in the manifest, kept: %s", key, len(extra), extra[0].name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(model, target)
    except DownloadError:
        part.unlink(missing_ok=True)  # a corrupt or unsafe archive is not worth resuming
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    part.unlink(missing_ok=True)
    return target


def model_status() -> list[tuple[SpeechModelSpec, Path, bool]]:
    """Each registered model with its install folder and whether it is present there."""
    return [(spec, models_dir() / spec.folder, is_vosk_model(models_dir() / spec.folder)) for spec in SPEECH_MODELS]
