"""Layering: import-linter's contracts, heavy libraries only inside functions, quick and light imports."""

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


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_heavy_libraries_are_imported_inside_functions(path: Path) -> None:
    assert not _top_level_imports(path) & HEAVY


def test_the_layer_contracts_hold() -> None:
    """import-linter's contracts in setup.cfg: the layers, no Qt below gui/, no TensorFlow in the live path."""
    root = PACKAGE.parent
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_importing_the_engine_is_quick_and_light() -> None:
    code = (
        "import sys, facial_emotion, facial_emotion.engine, facial_emotion.cli, facial_emotion.analyze,"
        " facial_emotion.live;"
        "print(sorted(m for m in ('tensorflow', 'keras', 'dlib', 'vosk', 'PySide6') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
