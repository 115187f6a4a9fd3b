"""The data notebook runs top to bottom on the real shared data and draws its figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from facial_emotion.paths import REPO_ROOT, data_dir

NOTEBOOKS = REPO_ROOT / "notebooks"


@pytest.mark.slow
@pytest.mark.skipif(not (data_dir() / "fer2013" / "fer2013.csv.gz").is_file(), reason="shared FER2013 data missing")
def test_data_notebook_executes_and_plots() -> None:
    nbclient = pytest.importorskip("nbclient", reason="nbclient not installed (pip install -e .[test])")
    nbformat = pytest.importorskip("nbformat", reason="nbformat not installed (pip install -e .[test])")
    path: Path = NOTEBOOKS / "01_data.ipynb"
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError, with the cell's traceback, on any failing cell
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 2  # the class-balance chart and the sample faces
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "35887 faces" in text


@pytest.mark.slow
@pytest.mark.skipif(not (data_dir() / "fer2013" / "fer2013.csv.gz").is_file(), reason="shared FER2013 data missing")
def test_robustness_notebook_draws_curves_saliency_and_embeddings() -> None:
    """Run with a few PublicTest faces: the counts are overridden in a cell after the parameters cell."""
    nbclient = pytest.importorskip("nbclient", reason="nbclient not installed (pip install -e .[test])")
    nbformat = pytest.importorskip("nbformat", reason="nbformat not installed (pip install -e .[test])")
    notebook = nbformat.read(NOTEBOOKS / "04_robustness.ipynb", as_version=4)
    where = [i for i, c in enumerate(notebook.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(where) == 1, "the notebook needs one cell tagged 'parameters'"
    overrides = nbformat.v4.new_code_cell("FACES = 120\nSALIENCY_PER_CLASS = 2\nEMBED_FACES = 150")
    notebook.cells.insert(where[0] + 1, overrides)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 4  # the curves, the perturbed faces, one saliency grid per model, the embeddings
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "robustness on PublicTest: 120 faces" in text
    assert "FGSM adversarial step:" in text
