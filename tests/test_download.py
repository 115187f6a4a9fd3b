"""Model download against a local HTTP server: progress, checksums, unsafe archives, resuming."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import stat
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from facial_emotion.cli import main
from facial_emotion.speech import download
from facial_emotion.speech.download import DownloadError, SpeechModelSpec, download_model, git_blob_id

FOLDER = "vosk-model-small-en-us-0.15"
FILES = {
    "README": b"a tiny stand-in model\n",
    "am/final.mdl": bytes(range(256)) * 400,
    "conf/model.conf": b"--sample-frequency=16000\n",
    "graph/phones/word_boundary.int": b"1 nonword\n2 begin\n",
}


def blob(content: bytes) -> str:
    """git blob id of content."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class ModelServer(http.server.ThreadingHTTPServer):
    """Serves archives by path; can cut the first response mid-body and ignore Range."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.cut_first = False
        self.honour_range = True
        self.stall = False
        self.release = threading.Event()
        self.requests: list[str | None] = []

    def url(self, name: str) -> str:
        """The address of a served file."""
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


class Handler(http.server.BaseHTTPRequestHandler):
    """GET with optional Range; the first reply may stop halfway, or go silent."""

    server: ModelServer
    timeout = 5

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        """Serve a file, a byte range of it, or half of it then hang up."""
        body = self.server.files.get(self.path.lstrip("/"))
        range_header = self.headers.get("Range")
        self.server.requests.append(range_header)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if range_header and self.server.honour_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.server.stall:  # the first reply sends half, later ones nothing; then silence
            if len(self.server.requests) == 1:
                self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.server.release.wait(30)
            self.close_connection = True
            return
        if self.server.cut_first and len(self.server.requests) == 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server() -> Iterator[ModelServer]:
    """A local model server on 127.0.0.1, stopped after the test."""
    srv = ModelServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def test_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Registers vosk-small-en-us with a manifest of the tiny stand-in model; returns the manifest."""
    manifest = tmp_path / "test.manifest"
    manifest.write_text("".join(f"{blob(content)}  {name}\n" for name, content in FILES.items()))
    spec = SpeechModelSpec("vosk-small-en-us", "test model", "http://127.0.0.1:9/unused.zip", FOLDER, manifest)
    monkeypatch.setattr(download, "SPEECH_MODELS", (spec,))
    return manifest


def make_zip(path: Path, files: dict[str, bytes], *, prefix: str = f"{FOLDER}/") -> bytes:
    """A zip archive of files under prefix; its bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(prefix + name, content)
    return path.read_bytes()


def assert_nothing_installed(dest: Path) -> None:
    """No model folder, no partial download, no staging folder left."""
    assert not (dest / FOLDER).exists()
    assert not list(dest.glob("*.part"))
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


def test_git_blob_id_matches_git(tmp_path: Path) -> None:
    """The checksum is git's own blob id."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = tmp_path / "f.bin"
    path.write_bytes(FILES["am/final.mdl"])
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
    assert git_blob_id(path) == expected.stdout.strip()


def test_shipped_manifest_lists_the_vosk_model() -> None:
    """The repo's manifest has the 14 files of the official model, acoustic model included."""
    manifest = download.read_manifest(download.model_spec("vosk-small-en-us").manifest)
    assert len(manifest) == 14
    assert "am/final.mdl" in manifest
    assert all(len(b) == 40 for b in manifest.values())


def test_download_verifies_and_installs_with_progress(tmp_path: Path, server: ModelServer, test_model: Path) -> None:
    """A good archive is fetched with progress, verified file by file and moved into place."""
    server.files["m.zip"] = make_zip(tmp_path / "m.zip", FILES)
    dest = tmp_path / "models"
    seen: list[tuple[int, int | None]] = []
    folder = download_model(
        "vosk-small-en-us", dest=dest, url=server.url("m.zip"), progress=lambda d, t: seen.append((d, t))
    )
    assert folder == dest / FOLDER
    assert (folder / "am" / "final.mdl").read_bytes() == FILES["am/final.mdl"]
    assert seen[-1] == (len(server.files["m.zip"]), len(server.files["m.zip"]))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert not list(dest.glob("*.part"))
    assert download.is_vosk_model(folder)
    # a second call finds it installed and does not download again
    server.requests.clear()
    assert download_model("vosk-small-en-us", dest=dest, url=server.url("m.zip")) == folder
    assert server.requests == []


def test_corrupted_file_is_rejected_and_nothing_installed(
    tmp_path: Path, server: ModelServer, test_model: Path
) -> None:
    """One file differs from the manifest: an error naming it, and nothing is left behind."""
    bad = dict(FILES, **{"conf/model.conf": b"--sample-frequency=8000\n"})
    server.files["bad.zip"] = make_zip(tmp_path / "bad.zip", bad)
    dest = tmp_path / "models"
    with pytest.raises(DownloadError, match=r"conf/model.conf: checksum mismatch"):
        download_model("vosk-small-en-us", dest=dest, url=server.url("bad.zip"))
    assert_nothing_installed(dest)


def test_missing_file_is_rejected(tmp_path: Path, server: ModelServer, test_model: Path) -> None:
    """An archive without a manifest file fails verification."""
    server.files["short.zip"] = make_zip(tmp_path / "short.zip", {k: v for k, v in FILES.items() if k != "README"})
    with pytest.raises(DownloadError, match="README: missing"):
        download_model("vosk-small-en-us", dest=tmp_path / "models", url=server.url("short.zip"))
    assert_nothing_installed(tmp_path / "models")


@pytest.mark.parametrize("member", ["../evil.txt", f"{FOLDER}/../../evil.txt", "/tmp/evil.txt"])
def test_archive_escaping_the_folder_is_refused(
    tmp_path: Path, server: ModelServer, test_model: Path, member: str
) -> None:
    """Members with .. or absolute paths are refused before anything is written."""
    path = tmp_path / "evil.zip"
    make_zip(path, FILES)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(member, b"gotcha")
    server.files["evil.zip"] = path.read_bytes()
    dest = tmp_path / "deep" / "models"
    with pytest.raises(DownloadError, match="outside the model folder"):
        download_model("vosk-small-en-us", dest=dest, url=server.url("evil.zip"))
    assert not list(tmp_path.rglob("evil.txt"))
    assert_nothing_installed(dest)


def test_archive_with_symlink_is_refused(tmp_path: Path, server: ModelServer, test_model: Path) -> None:
    """A symbolic-link member is refused."""
    path = tmp_path / "link.zip"
    make_zip(path, FILES)
    with zipfile.ZipFile(path, "a") as archive:
        info = zipfile.ZipInfo(f"{FOLDER}/am/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    server.files["link.zip"] = path.read_bytes()
    with pytest.raises(DownloadError, match="symbolic link"):
        download_model("vosk-small-en-us", dest=tmp_path / "models", url=server.url("link.zip"))
    assert_nothing_installed(tmp_path / "models")


def test_interrupted_download_resumes_with_range(tmp_path: Path, server: ModelServer, test_model: Path) -> None:
    """The server hangs up halfway; the next request asks for the rest with Range and the model installs."""
    server.files["m.zip"] = make_zip(tmp_path / "m.zip", FILES)
    server.cut_first = True
    folder = download_model("vosk-small-en-us", dest=tmp_path / "models", url=server.url("m.zip"))
    half = len(server.files["m.zip"]) // 2
    assert server.requests == [None, f"bytes={half}-"]
    assert (folder / "README").read_bytes() == FILES["README"]


def test_interrupted_download_restarts_without_range_support(
    tmp_path: Path, server: ModelServer, test_model: Path
) -> None:
    """A server that ignores Range sends everything again; the part file is restarted, not appended to."""
    server.files["m.zip"] = make_zip(tmp_path / "m.zip", FILES)
    server.cut_first = True
    server.honour_range = False
    folder = download_model("vosk-small-en-us", dest=tmp_path / "models", url=server.url("m.zip"))
    assert len(server.requests) == 2
    assert (folder / "am" / "final.mdl").read_bytes() == FILES["am/final.mdl"]


def test_unreachable_server_fails_cleanly(tmp_path: Path, server: ModelServer, test_model: Path) -> None:
    """A 404 is one clear error, no retries, nothing installed."""
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_model("vosk-small-en-us", dest=tmp_path / "models", url=server.url("none.zip"), retries=1)
    assert_nothing_installed(tmp_path / "models")


def test_models_commands(
    tmp_path: Path, server: ModelServer, test_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`models list` says missing, `models download` installs, then `models list` says present."""
    assert main(["models", "list"]) == 0
    assert "missing" in capsys.readouterr().out
    server.files["m.zip"] = make_zip(tmp_path / "m.zip", FILES)
    assert main(["models", "download", "vosk-small-en-us", "--url", server.url("m.zip")]) == 0
    out = capsys.readouterr()
    assert "verified and installed" in out.out
    assert "vosk-small-en-us" in out.err  # the progress bar
    assert main(["models", "list"]) == 0
    assert "present" in capsys.readouterr().out.splitlines()[0]
    assert main(["models", "download", "no-such-model"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown model")


@pytest.mark.parametrize("honour_range", [True, False])
def test_silent_server_shows_the_stall_times_out_and_keeps_the_part(
    tmp_path: Path, server: ModelServer, test_model: Path, monkeypatch: pytest.MonkeyPatch, honour_range: bool
) -> None:
    """Half the archive, then silence: stalls are reported, two silent tries end it, the part resumes later.

    A server that ignores Range sends from the start again; the part file keeps its bytes all the same.
    """
    monkeypatch.setattr(download, "STALL_NOTICE_S", 0.5)
    server.files["m.zip"] = make_zip(tmp_path / "m.zip", FILES)
    half = len(server.files["m.zip"]) // 2
    server.stall = True
    server.honour_range = honour_range
    dest = tmp_path / "models"
    stalls: list[float] = []
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download_model("vosk-small-en-us", dest=dest, url=server.url("m.zip"), timeout_s=1.5, stalled=stalls.append)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "stalled: the server sent nothing for 1.5 s (2 tries)" in message, message
    part = dest / f"{FOLDER}.zip.part"
    assert f"kept in {part}; run the same command again to resume" in message, message
    assert part.stat().st_size == half
    assert server.requests == [None, f"bytes={half}-"]
    assert stalls and all(s >= 0.5 for s in stalls)
    assert elapsed < 8, elapsed
    assert not [t for t in threading.enumerate() if t.name == "fe-download-stall"]
    # the server is well again: the same call resumes from the part file and installs
    server.release.set()
    server.stall = False
    server.requests.clear()
    folder = download_model("vosk-small-en-us", dest=dest, url=server.url("m.zip"))
    assert server.requests == [f"bytes={half}-"]
    assert (folder / "am" / "final.mdl").read_bytes() == FILES["am/final.mdl"]


def test_models_download_command_says_it_stalled_and_how_to_resume(
    tmp_path: Path,
    server: ModelServer,
    test_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the user sees: the stall on the progress line, then one error naming the part file; exit 2."""
    monkeypatch.setattr(download, "STALL_NOTICE_S", 0.5)
    server.files["m.zip"] = make_zip(tmp_path / "m.zip", FILES)
    server.stall = True
    dest = tmp_path / "models"
    argv = ["models", "download", "vosk-small-en-us", "--url", server.url("m.zip"), "--dest", str(dest)]
    assert main([*argv, "--timeout", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "stalled, no data for 1 s" in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: download of ") and "stalled" in last, err
    assert "run the same command again to resume" in last and "Traceback" not in err
    server.release.set()
    server.stall = False
    assert main(argv) == 0
    assert "verified and installed" in capsys.readouterr().out


def test_models_download_timeout_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    """--timeout 0 or 1e6 is an argparse error (exit 2) with the allowed range."""
    for value in ("0", "1e6", "soon"):
        with pytest.raises(SystemExit) as caught:
            main(["models", "download", "vosk-small-en-us", "--timeout", value])
        assert caught.value.code == 2
        assert "argument --timeout: must be" in capsys.readouterr().err
