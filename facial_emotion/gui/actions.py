"""Every QAction of the main window, made by one helper and kept in one typed NamedTuple.

Checkable actions that mirror a setting are ``Binding``s: their check state is always read
from the current ``Settings`` (never stored in the widget) and a click writes a new Settings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple, Protocol

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QWidget

from facial_emotion.annotate import OVERLAYS
from facial_emotion.gui.about import model_licence
from facial_emotion.registry import SLOTS, ModelSpec, Slot, specs_for
from facial_emotion.settings import Settings


class OverlayRow(NamedTuple):
    """One overlay menu entry: settings key, label and shortcut."""

    key: str
    label: str
    shortcut: str


OVERLAY_ROWS: Final[tuple[OverlayRow, ...]] = tuple(
    OverlayRow(spec.key, spec.label, spec.shortcut) for spec in OVERLAYS
)
"""The Overlays menu: the pipeline's table of overlays, in its order."""

SLOT_TITLES: Final[dict[Slot, str]] = {"detector": "Face detector", "landmarks": "Landmarks", "emotion": "Emotion"}


class Binding(NamedTuple):
    """A checkable action whose check state is read from Settings and written back to it."""

    action: QAction
    read: Callable[[Settings], bool]
    write: Callable[[Settings, bool], Settings]


class Actions(NamedTuple):
    """Every action of the main window."""

    open_video: QAction
    open_image: QAction
    open_folder: QAction
    refresh_cameras: QAction
    pause: QAction
    loop: QAction
    smoothing: QAction
    small_faces: QAction
    quit: QAction
    about: QAction
    overlays: dict[str, QAction]
    models: dict[tuple[Slot, str | None], QAction]


class ActionTarget(Protocol):
    """What the actions call on the window."""

    def open_file_dialog(self, kind: str) -> None:
        """Ask for a video, image or folder and open it."""
        ...

    def refresh_cameras(self) -> None:
        """List the cameras again."""
        ...

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the source."""
        ...

    def apply_binding(self, binding: Binding, checked: bool) -> None:
        """Write a bound action's new state into the settings."""
        ...

    def show_about(self) -> None:
        """Show the About box."""
        ...

    def close(self) -> bool:
        """Close the window."""
        ...


def make_action(
    parent: QWidget,
    text: str,
    *,
    on_triggered: Callable[..., object] | None = None,
    shortcut: str | QKeySequence.StandardKey | None = None,
    checkable: bool = False,
    tip: str | None = None,
    enabled: bool = True,
    group: QActionGroup | None = None,
) -> QAction:
    """The one place a QAction is made."""
    action = QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.setCheckable(checkable)
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    action.setEnabled(enabled)
    if group is not None:
        group.addAction(action)
    if on_triggered is not None:
        action.triggered.connect(on_triggered)
    return action


def model_usable(spec: ModelSpec, settings: Settings) -> bool:
    """True when the model's files are present (a custom emotion model file counts)."""
    if spec.slot == "emotion" and settings.emotion_model_path:
        return Path(settings.emotion_model_path).is_file()
    return spec.available


def _bind(target: ActionTarget, bindings: list[Binding], binding: Binding) -> QAction:
    binding.action.triggered.connect(lambda checked: target.apply_binding(binding, checked))
    bindings.append(binding)
    return binding.action


def _overlay_binding(parent: QWidget, row: OverlayRow) -> Binding:
    action = make_action(parent, row.label, shortcut=row.shortcut, checkable=True)
    return Binding(action, lambda s: row.key in s.overlays, lambda s, on: s.with_overlay(row.key, on))


def _model_binding(
    parent: QWidget, slot: Slot, spec: ModelSpec | None, settings: Settings, group: QActionGroup
) -> Binding:
    key = spec.key if spec else None
    usable = spec is None or model_usable(spec, settings)
    tip = None
    if spec is not None:
        tip = model_licence(spec) if usable else f"Not installed: {spec.how_to_get}"
    action = make_action(
        parent, spec.display_name if spec else "Off", checkable=True, tip=tip, enabled=usable, group=group
    )
    return Binding(action, lambda s: getattr(s, slot) == key, lambda s, _on: s.replace(**{slot: key}))


def build_actions(target: ActionTarget, parent: QWidget, settings: Settings) -> tuple[Actions, tuple[Binding, ...]]:
    """Every action, connected to target, and the bindings that mirror settings."""
    bindings: list[Binding] = []
    overlays = {row.key: _bind(target, bindings, _overlay_binding(parent, row)) for row in OVERLAY_ROWS}
    models: dict[tuple[Slot, str | None], QAction] = {}
    for slot in SLOTS:
        group = QActionGroup(parent)
        group.setExclusive(True)
        for spec in (*specs_for(slot), None):
            binding = _model_binding(parent, slot, spec, settings, group)
            models[(slot, spec.key if spec else None)] = _bind(target, bindings, binding)
    smoothing = make_action(parent, "Smooth emotions over time", checkable=True)
    smooth = Binding(smoothing, lambda s: s.classifier.smoothing, lambda s, on: s.with_classifier(smoothing=on))
    _bind(target, bindings, smooth)
    small_faces = make_action(
        parent, "Find small faces (full-size detection, slower)", checkable=True, tip="Detect on the full frame"
    )
    default_width = Settings().detection.width_px
    _bind(
        target,
        bindings,
        Binding(
            small_faces,
            lambda s: s.detection.width_px is None,
            lambda s, on: s.with_detection(width_px=None if on else default_width),
        ),
    )
    loop = make_action(parent, "Loop video", checkable=True)
    _bind(target, bindings, Binding(loop, lambda s: s.loop_video, lambda s, on: s.replace(loop_video=on)))
    actions = Actions(
        open_video=make_action(
            parent,
            "Open video file...",
            shortcut=QKeySequence.StandardKey.Open,
            on_triggered=lambda: target.open_file_dialog("video"),
        ),
        open_image=make_action(
            parent, "Open image...", shortcut="Ctrl+I", on_triggered=lambda: target.open_file_dialog("image")
        ),
        open_folder=make_action(
            parent,
            "Open image folder...",
            shortcut="Ctrl+Shift+O",
            on_triggered=lambda: target.open_file_dialog("folder"),
        ),
        refresh_cameras=make_action(parent, "Look for cameras again", on_triggered=lambda: target.refresh_cameras()),
        pause=make_action(
            parent, "Pause", shortcut="Space", checkable=True, on_triggered=lambda on: target.set_paused(on)
        ),
        loop=loop,
        smoothing=smoothing,
        small_faces=small_faces,
        quit=make_action(parent, "Quit", shortcut="Ctrl+Q", on_triggered=lambda: target.close()),
        about=make_action(parent, "About facial-emotion", on_triggered=lambda: target.show_about()),
        overlays=overlays,
        models=models,
    )
    return actions, tuple(bindings)


def sync_bindings(bindings: tuple[Binding, ...], settings: Settings) -> None:
    """Set every bound action's check state from settings.

    Handlers listen to ``triggered`` (a user's click), which ``setChecked`` does not emit, so
    nothing loops back; signals stay unblocked so exclusive groups keep track of their choice.
    """
    for binding in bindings:
        want = binding.read(settings)
        if binding.action.isChecked() != want:
            binding.action.setChecked(want)
