"""An hour-long session must not crash: painting keeps None alive, old Pythons are refused, SIGTERM is a clean stop.

With PySide6 6.12 on Python 3.11 every QPainter call that returns nothing took one reference
off ``None``; the window's painting freed it within minutes ("none_dealloc", exit 134). The
paint test below fails on that combination within seconds, before ``None`` reaches zero.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from facial_emotion.gui import app as app_module
from facial_emotion.gui.panel import FacePanel
from facial_emotion.gui.timeline import EmotionTimeline
from facial_emotion.gui.video_view import VideoView
from facial_emotion.types import EMOTIONS, Box, EmotionScores, Face, Frame, FrameResult

REPO = Path(__file__).resolve().parent.parent
IMMORTAL_AT_LEAST = 2**29
"""An immortal object's reference count (3.12+: 2**32 - 1 or 2**30 and up) is never this low otherwise."""
BATCHES = 20
"""Paint rounds; None's count is checked after each, so a leak fails long before None is freed."""
SLACK = 200
"""Ordinary ups and downs of None's count while Qt paints (a leaking build loses thousands per round)."""


def _faces(i: int, n: int = 3) -> tuple[Face, ...]:
    faces = []
    for k in range(n):
        p = np.full(len(EMOTIONS), 0.05)
        p[(i + k) % len(EMOTIONS)] = 0.7
        faces.append(Face(Box(20 + 70 * k, 20, 80 + 70 * k, 80), k + 1, emotion=EmotionScores(tuple(p / p.sum()))))
    return tuple(faces)


def test_the_interpreter_makes_none_immortal() -> None:
    assert sys.version_info >= (3, 12), (
        f"Python {sys.version.split()[0]}: the window needs 3.12+, where None is immortal; with PySide6 6.12 on "
        "3.11 painting takes references off None until the app aborts (none_dealloc). Run ./install.sh."
    )
    assert sys.getrefcount(None) >= IMMORTAL_AT_LEAST, "None is not immortal on this interpreter"


def test_painting_thousands_of_times_takes_nothing_off_none(qtbot: QtBot) -> None:
    view, panel, timeline = VideoView(), FacePanel(), EmotionTimeline()
    for widget in (view, panel, timeline):
        qtbot.addWidget(widget)
        widget.resize(640, 360)
        widget.show()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(4)]
    for i in range(600):  # a minute of history with three faces
        timeline.add(FrameResult(Frame(frames[0], i, i * 100.0), _faces(i)))
    timeline.select(1)
    view.set_rates_text("shown 24.0 fps · processing 24.0 fps · dropped 0")
    paints = 0
    start = sys.getrefcount(None)
    t0 = time.monotonic()
    for batch in range(BATCHES):
        for i in range(100):
            view.show_frame(frames[i % len(frames)])
            view.repaint()
            panel.show_faces(_faces(batch * 100 + i))
            for card in panel.cards.values():
                card.bars.repaint()
            paints += 1 + len(panel.cards)
        for _ in range(5):
            timeline.refresh()
            timeline.grab()
            paints += 1
        panel.grab()
        QApplication.processEvents()
        now = sys.getrefcount(None)
        assert now >= start - SLACK, (
            f"None lost {start - now} references in {paints} paints: this Python/PySide6 pair frees None while "
            f"painting and the window would abort within minutes (Python {sys.version.split()[0]}; needs 3.12+)"
        )
    assert paints >= 8000 and view.frames_painted >= 1500
    assert time.monotonic() - t0 < 120


def test_the_window_refuses_an_old_python_and_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = app_module.unsupported_python((3, 11, 7))
    assert message is not None and "3.11.7" in message and "none_dealloc" in message and "install.sh" in message
    assert app_module.unsupported_python((3, 12, 1)) is None and app_module.unsupported_python((3, 13, 0)) is None
    monkeypatch.setattr(app_module, "MIN_PYTHON", (99, 0))
    opened = []
    monkeypatch.setattr(app_module, "MainWindow", lambda *a, **k: opened.append(a))
    assert app_module.run_app(argparse.Namespace(source=None)) == 3
    err = capsys.readouterr().err
    assert "needs Python 99.0 or newer" in err and "./install.sh" in err
    assert not opened, "no window is made"


def test_sigterm_stops_the_app_cleanly_and_finishes_the_recording(tmp_path: Path, shared_data: Path) -> None:
    video = shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4"
    record = tmp_path / "sessions"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--source", str(video), "--record", str(record)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        frames = list(record.glob("*/frames*.csv"))
        while time.monotonic() < deadline and process.poll() is None:
            frames = list(record.glob("*/frames*.csv"))
            if frames and frames[0].stat().st_size > 2000:  # up, playing and recording
                break
            time.sleep(0.5)
        assert process.poll() is None, f"the app ended before SIGTERM: {process.communicate()}"
        assert frames, "the recording never started"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"exit {process.returncode}:\n{err[-3000:]}"
    assert "Traceback" not in err and "Fatal" not in err, err[-3000:]
    session = json.loads(next(record.glob("*/session.json")).read_text())
    assert session["finished"] is True, session
