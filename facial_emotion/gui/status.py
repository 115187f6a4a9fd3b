"""The status bar's permanent part: frame rates, dropped frames, and which models are active."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QLabel, QStatusBar

from facial_emotion.engine import EngineStats, ModelsChanged
from facial_emotion.registry import SLOTS, get_spec


class StatusReport:
    """Two labels in a status bar: rates, and the models of each slot (failures in red)."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.rates_label = QLabel(bar)
        self.models_label = QLabel(bar)
        bar.addPermanentWidget(self.rates_label)
        bar.addPermanentWidget(self.models_label)

    def show_rates(self, stats: EngineStats, shown_fps: float) -> None:
        """Capture, shown and processing rates and the dropped-frame count."""
        self.rates_label.setText(
            f"capture {stats.capture_fps:4.1f} fps · shown {shown_fps:4.1f} fps · "
            f"processing {stats.process_fps:4.1f} fps · dropped {stats.dropped}"
        )

    def show_models(self, event: ModelsChanged) -> None:
        """The model of each slot; a model that failed to load is named in red and its error shown."""
        parts, tips = [], []
        for slot in SLOTS:
            key = getattr(event.settings, slot)
            if slot in event.errors:
                parts.append(f"<span style='color:#d04040'>{slot} failed</span>")
                tips.append(f"{slot}: {event.errors[slot]}")
            else:
                parts.append(f"{slot} {html.escape(key or 'off')}")
                tips.append(f"{slot}: {get_spec(slot, key).display_name if key else 'off'}")
        self.models_label.setText("models: " + ", ".join(parts))
        self.models_label.setToolTip("\n".join(tips))
        if event.errors:
            errors = "; ".join(f"{slot}: {error}" for slot, error in event.errors.items())
            self.bar.showMessage(f"Model not loaded: {errors}", 15000)
