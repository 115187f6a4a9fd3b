"""The desktop app: the main window, its menus and panels over one LiveSession.

Only this package imports PySide6; everything below it (live session, engine, pipeline,
models) is Qt-free, as import-linter's contracts in setup.cfg check.
"""

from __future__ import annotations
