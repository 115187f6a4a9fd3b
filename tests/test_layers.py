"""Layering contracts: Qt only in gui/, heavy libraries only inside functions, quick imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "facial_emotion"
HEAVY = {"tensorflow", "keras", "dlib", "vosk", "sounddevice", "pocketsphinx", "vaderSentiment", "matplotlib"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _top_level_imports(path: Path) -> set[str]:
    """Root names imported at module level (not inside functions or classes' methods)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _all_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_heavy_libraries_are_imported_inside_functions(path: Path) -> None:
    assert not _top_level_imports(path) & HEAVY


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_gui_layer_imports_qt(path: Path) -> None:
    if "gui" in path.relative_to(PACKAGE).parts:
        return
    assert "PySide6" not in _all_imports(path) and "pyqtgraph" not in _all_imports(path)


def test_core_layers_do_not_import_the_gui() -> None:
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "gui" or rel.name in {"cli.py", "__main__.py"}:
            continue
        text = path.read_text()
        assert "facial_emotion.gui" not in text, f"{rel} reaches up into the GUI layer"


def test_importing_the_engine_is_quick_and_light() -> None:
    code = (
        "import sys, facial_emotion, facial_emotion.engine, facial_emotion.cli, facial_emotion.analyze;"
        "print(sorted(m for m in ('tensorflow', 'keras', 'dlib', 'vosk', 'PySide6') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
