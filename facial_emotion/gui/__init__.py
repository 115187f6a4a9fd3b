"""The desktop app: the main window, its menus, panels and the bridge that polls the engine.

Only this package imports PySide6; everything below it (engine, pipeline, models) is Qt-free.
"""

from __future__ import annotations
