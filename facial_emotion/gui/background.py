"""Blocking calls the GUI has to start (open a camera or a file, list cameras), run on helper threads."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any


class BackgroundCalls:
    """Runs blocking calls on helper threads; results are collected by the GUI's timer."""

    def __init__(self) -> None:
        self._results: queue.SimpleQueue[tuple[str, int, Any, Exception | None]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, tag: str, ticket: int, fn: Callable[[], Any]) -> None:
        """Call fn on a helper thread; its result comes back from ``results`` with tag and ticket."""

        def run() -> None:
            try:
                self._results.put((tag, ticket, fn(), None))
            except Exception as exc:
                self._results.put((tag, ticket, None, exc))

        thread = threading.Thread(target=run, name=f"fe-gui-{tag}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def results(self) -> list[tuple[str, int, Any, Exception | None]]:
        """Every result that arrived since the last call."""
        out = []
        while not self._results.empty():
            out.append(self._results.get_nowait())
        return out

    def join(self, timeout_s: float) -> None:
        """Wait up to timeout_s for running calls."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
