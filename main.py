"""Run the facial-emotion app: ``python main.py`` opens the window (subcommands as the CLI)."""

from __future__ import annotations

from facial_emotion.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
