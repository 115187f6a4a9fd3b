"""Start the desktop app: the QApplication, the main window, the event loop."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from facial_emotion import __version__
from facial_emotion.gui.window import APPLICATION, ORGANIZATION, MainWindow

log = logging.getLogger(__name__)


def ensure_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication, made once with the app's names (QSettings uses them)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    return app  # type: ignore[return-value]


def run_app(args: argparse.Namespace) -> int:
    """Open the window on args.source (camera, video, image or folder) with args.settings; the exit code."""
    app = ensure_application()
    settings_path = Path(args.settings) if getattr(args, "settings", None) else None
    record = getattr(args, "record", None)
    window = MainWindow(
        settings_path, source=getattr(args, "source", None), record_dir=Path(record) if record else None
    )
    mic = getattr(args, "mic", None)
    if mic is not None:  # --mic: switch speech on with that device (the Speech menu shows it)
        device = int(mic) if str(mic).isdigit() else mic
        window.apply_settings(window.settings.replace(mic=device, speech_on=True))
    window.show()
    # Ctrl+C in the terminal closes the window like the Quit action (Python sees signals only between Qt events).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wakeup = QTimer()
    wakeup.timeout.connect(lambda: None)
    wakeup.start(200)
    code = app.exec()
    wakeup.stop()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return int(code)
