"""Start the desktop app: the QApplication, the main window, the event loop."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Final

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from facial_emotion import __version__
from facial_emotion.gui.window import APPLICATION, ORGANIZATION, MainWindow

log = logging.getLogger(__name__)

MIN_PYTHON: Final[tuple[int, int]] = (3, 12)
"""With PySide6 6.12 on Python 3.11 every QPainter call that returns nothing takes a reference
off ``None``; painting frees it within minutes ("none_dealloc", exit 134). From 3.12 ``None`` is
immortal."""
EXIT_UNSUPPORTED: Final[int] = 3


def unsupported_python(version: tuple[int, ...] = tuple(sys.version_info)) -> str | None:
    """Why the window must not open on this interpreter (None when it may)."""
    if tuple(version[:2]) >= MIN_PYTHON:
        return None
    running = ".".join(str(part) for part in version[:3])
    need = ".".join(map(str, MIN_PYTHON))
    return (
        f"facial-emotion's window needs Python {need} or newer; this is Python {running}.\n"
        f"With PySide6 on Python {running} painting the window frees None and the app aborts within minutes "
        "(Fatal Python error: none_dealloc).\n"
        f"Fix: run ./install.sh, which makes .venv with Python {need} or 3.13 (replacing an older one), "
        "then start the app with .venv/bin/python main.py. The command-line tools (analyze, record, ...) "
        "are not affected."
    )


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
    """Open the window on args.source (camera, video, image or folder) with args.settings; the exit code.

    On an unsupported Python it says why and returns 3 without opening anything. SIGTERM, like
    Ctrl+C, closes the window as Quit does (a recording is finished) and the exit code is 0.
    """
    refusal = unsupported_python()
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return EXIT_UNSUPPORTED
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

    # Ctrl+C in the terminal and SIGTERM (kill, a session manager, a lab script) close the window like
    # the Quit action: recording finished, settings kept, exit 0. Python sees signals only between Qt
    # events, hence the timer.
    def close_on_signal(signum: int, _frame: object) -> None:
        log.info("%s: closing the window", signal.Signals(signum).name)
        window.close()

    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, close_on_signal) for signum in stops}
    wakeup = QTimer()
    wakeup.timeout.connect(lambda: None)
    wakeup.start(200)
    code = app.exec()
    wakeup.stop()
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return int(code)
