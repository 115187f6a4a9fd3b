"""``python -m facial_emotion.training train|evaluate|explain ...``."""

from __future__ import annotations

import sys

from facial_emotion.training.cli import main

sys.exit(main())
