"""Make docs/screenshot.png: the real window on WolfgangLanger_Pexels.mp4 with every overlay on.

Runs under X (starts ``Xvfb :99`` when DISPLAY is not set). Uses the shipped emotion model,
or ``--model``.

    python docs/make_screenshot.py [--model path.keras] [--out docs/screenshot.png]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

log = logging.getLogger("make_screenshot")
MAX_BYTES = 1_000_000


def start_display() -> subprocess.Popen[bytes] | None:
    """Start Xvfb on :99 when there is no display; the process to stop afterwards."""
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        raise SystemExit("no DISPLAY and no Xvfb: install xvfb or run under xvfb-run")
    server = subprocess.Popen(["Xvfb", ":99", "-screen", "0", "1400x900x24", "-nolisten", "tcp"])
    os.environ["DISPLAY"] = ":99"
    time.sleep(1.0)
    return server


def main() -> int:
    """Open the window, wait for faces, grab it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="emotion model (.keras) to use instead of the shipped one")
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    parser.add_argument("--seconds", type=float, default=25.0, help="play this long before grabbing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server = start_display()
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    try:
        return grab(args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(5)


def grab(args: argparse.Namespace) -> int:
    """Run the window and save the picture."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from facial_emotion.gui.actions import OVERLAY_ROWS
    from facial_emotion.gui.app import ensure_application
    from facial_emotion.gui.window import MainWindow
    from facial_emotion.paths import DEFAULT_EMOTION_MODEL, data_dir
    from facial_emotion.settings import Settings, save_settings

    video = data_dir() / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4"
    if not video.is_file():
        log.error("missing %s", video)
        return 1
    work = Path(tempfile.mkdtemp(prefix="fe-screenshot-"))
    model = args.model or str(DEFAULT_EMOTION_MODEL)
    if not Path(model).is_file():
        log.error("no emotion model at %s: pass --model", model)
        return 1
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(work / "qsettings"))
    settings_path = work / "settings.json"
    overlays = tuple(row.key for row in OVERLAY_ROWS)
    save_settings(Settings(overlays=overlays, emotion_model_path=model, loop_video=True), settings_path)

    app = ensure_application()
    window = MainWindow(settings_path, source=str(video))
    window.resize(1280, 800)
    window.show()
    deadline = time.monotonic() + 120
    started: float | None = None
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
        result = window.live.latest()
        if started is None and result is not None and result.faces and result.faces[0].emotion is not None:
            started = time.monotonic()
        if started is not None and time.monotonic() - started > args.seconds and result is not None and result.faces:
            break
    else:
        log.error("no face with emotions within two minutes")
        window.close()
        return 1
    for _ in range(20):  # let the panel and the chart catch up with the last frame
        app.processEvents()
        time.sleep(0.01)
    picture = window.grab()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(str(out), "PNG", 0)
    if out.stat().st_size > MAX_BYTES:
        picture.scaledToWidth(1000).save(str(out), "PNG", 0)
    stats = window.live.stats()
    window.close()
    QApplication.processEvents()
    log.info(
        "saved %s (%d bytes); processing %.1f fps, dropped %d, model %s",
        out,
        out.stat().st_size,
        stats.process_fps,
        stats.dropped,
        model,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
