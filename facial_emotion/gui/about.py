"""The About text: versions of the app and its libraries, and the licences of the models."""

from __future__ import annotations

import html
from importlib import metadata

from facial_emotion import __version__
from facial_emotion.registry import REGISTRY, ModelSpec

MODEL_LICENCES: dict[tuple[str, str], str] = {
    ("landmarks", "68"): "trained on the iBUG 300-W data set, whose licence excludes commercial use",
    ("landmarks", "5"): (
        "trained on dlib's own 5-point face landmark data set (CC0); the model is public domain: "
        "no restriction on commercial use"
    ),
}
"""Checked against dlib-models' README (github.com/davisking/dlib-models); they win over the registry's text."""

LICENCE_NOTES = (
    "dlib's 68-point landmark model was trained on the iBUG 300-W data set, whose licence excludes commercial use. "
    "The 5-point model was trained on dlib's own 5-point data set (CC0) and has no such restriction; "
    "dlib itself and its HOG detector are under the Boost Software License.",
    "FER2013 (emotion training data) is available for research under Kaggle's competition terms.",
)


def model_licence(spec: ModelSpec) -> str:
    """What may be done with a model, as the About box and the Models menu say it."""
    return MODEL_LICENCES.get((spec.slot, spec.key), spec.licence or "no licence given")


def _version(*distributions: str) -> str:
    """The installed version of the first distribution found (no import needed)."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def about_text() -> str:
    """Rich text for the About box."""
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    versions = [
        ("facial-emotion", __version__),
        ("Qt", f"{qVersion()} (PySide6 {pyside_version})"),
        ("pyqtgraph", _version("pyqtgraph")),
        ("dlib", _version("dlib", "dlib-bin")),
        ("TensorFlow", _version("tensorflow", "tensorflow-cpu")),
        ("Keras", _version("keras")),
        ("OpenCV", _version("opencv-python-headless", "opencv-python")),
    ]
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td></tr>" for n, v in versions)
    models = "".join(
        f"<li><b>{html.escape(s.display_name)}</b> ({s.slot}): {html.escape(model_licence(s))}</li>" for s in REGISTRY
    )
    notes = "".join(f"<p>{html.escape(note)}</p>" for note in LICENCE_NOTES)
    return (
        "<h3>facial-emotion</h3><p>Offline live facial emotion recognition.</p>"
        f"<table>{rows}</table><h4>Models</h4><ul>{models}</ul>{notes}"
    )
