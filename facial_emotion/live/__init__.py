"""The live session under the window: engine, mood, speech and recording, with no Qt."""

from __future__ import annotations

from facial_emotion.live.core import LiveSession

__all__ = ["LiveSession"]
