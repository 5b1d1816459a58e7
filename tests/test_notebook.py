"""The exploration notebook runs top to bottom, offline, on quick settings, and shows the measured figures."""

import json
import re
import time

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "how_it_works.ipynb"
CELL_TIMEOUT = 180  # seconds: the whole notebook is meant to run in at most 3 minutes


@pytest.fixture(scope="module")
def executed(mnist_dir):
    """The notebook after a run in a fresh kernel, in memory: the committed file is never rewritten."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    started = time.perf_counter()
    client.execute()
    print(f"\nthe notebook ran in {time.perf_counter() - started:.0f} s")
    return notebook


def text_of(notebook):
    """Everything the notebook printed or displayed as text."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_every_code_cell_ran_without_an_error(executed):
    code_cells = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert code_cells and all(cell.execution_count for cell in code_cells)
    assert not [output for cell in code_cells for output in cell.outputs if output.output_type == "error"]


def test_it_shows_a_figure_for_each_part(executed):
    figures = sum(
        "image/png" in output.get("data", {}) for cell in executed.cells for output in cell.get("outputs", [])
    )
    # sources (4), augmentation (4), normalisation, curves, confusion, errors (2), noisy inputs, saliency, comparison
    assert figures >= 16


def test_quick_runs_of_both_recipes_beat_chance_by_far(executed):
    printed = text_of(executed)
    for name in ("quick model", "quick tutorial model"):
        found = re.search(rf"^{name}: MNIST test accuracy ([\d.]+)%", printed, re.MULTILINE)
        assert found, f"no accuracy printed for the {name}"
        assert 50 < float(found.group(1)) <= 100


def test_it_reports_the_shipped_figures_from_the_metrics_file(executed, model_path):
    metrics = json.loads(model_path.with_name(model_path.stem + ".metrics.json").read_text())
    test = metrics["mnist_test"]
    printed = text_of(executed)
    assert f"shipped model: MNIST test accuracy {test['accuracy']:.2%} ({test['errors']} errors)" in printed
    assert f"{test['errors']} errors in 10,000" in printed  # counted again by the notebook on the test set


def test_non_digits_are_not_read_as_digits(executed):
    printed = text_of(executed)
    table = next(part for part in printed.split("\n\n") if "a letter K" in part)
    for name in ("a letter K", "a scribble"):
        row = next(line for line in table.splitlines() if name in line)
        assert " ok " not in row, f"the shipped model was sure about {name}: {row}"
    assert re.search(r"empty page\s+empty", table)
