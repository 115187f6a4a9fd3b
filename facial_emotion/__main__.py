"""``python -m facial_emotion``: the same as the ``facial-emotion`` command."""

from __future__ import annotations

from facial_emotion.cli import main

raise SystemExit(main())
