"""The app's own install on a fresh machine: requirements.txt alone, no TensorFlow, at most 700 MB.

A new virtual environment in a temporary folder gets requirements.txt from the package index
(pip's cache is not used, as on a fresh machine); then predict.py reads an MNIST test digit
there, and the app started from it answers a drawing in Chromium. The install time and the
size are printed (pytest -s). Slow (about a minute of downloads): marked `install`, run by
`./run.sh test` like every other test.
"""

import json
import os
import subprocess
import time
import venv
from pathlib import Path

import numpy as np
import pytest

from browser import (
    CHROMIUM,
    ROOT,
    SEVEN,
    AppServer,
    answer_locator,
    click_and_wait,
    draw_with_mouse,
    launch_chromium,
    mnist_test_set,
    open_app,
    paper_picture,
    png_bytes,
    readable_digit,
)
from recognizer import Recognizer

pytestmark = pytest.mark.install
MOST_MEGABYTES = 700
# As on a user's machine, Python writes the bytecode of what it imports (this one may be told not to).
WRITES_BYTECODE = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
INSTALL_TIMEOUT = 900  # seconds: a slow network, not a slow install, is what this allows for


def folder_megabytes(folder):
    """The size of the files under folder, in MB (10^6 bytes), links not followed."""
    files = (path for path in Path(folder).rglob("*") if path.is_file() and not path.is_symlink())
    return sum(path.lstat().st_size for path in files) / 1e6


@pytest.fixture(scope="module")
def app_environment(tmp_path_factory):
    """A fresh virtual environment with requirements.txt only: its python, size in MB and install seconds."""
    folder = tmp_path_factory.mktemp("app-venv")
    started = time.perf_counter()
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    # As run.sh installs it (--no-compile), without the cache a fresh machine lacks.
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "-r",
            ROOT / "requirements.txt",
        ],
        check=True,
        timeout=INSTALL_TIMEOUT,
    )
    seconds = time.perf_counter() - started
    megabytes = folder_megabytes(folder)
    print(f"\nrequirements.txt in a fresh virtual environment: {megabytes:.0f} MB, installed in {seconds:.0f} s")
    return python, megabytes, seconds


def test_the_app_install_is_small_and_has_no_tensorflow(app_environment):
    """Measured right after the install; the modules the app imports add their bytecode later (printed at the end)."""
    python, megabytes, _ = app_environment
    assert megabytes <= MOST_MEGABYTES
    look_up = "import importlib.util as util; print([name for name in ('tensorflow', 'keras') if util.find_spec(name)])"
    found = subprocess.run([python, "-c", look_up], capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]"


def test_predict_reads_a_digit_without_tensorflow(app_environment, tmp_path, mnist_dir, recognizer):
    python, _, _ = app_environment
    images, labels = mnist_test_set(mnist_dir)
    picture = tmp_path / "four.png"
    picture.write_bytes(png_bytes(paper_picture([readable_digit(recognizer, images, labels, 4)])))
    completed = subprocess.run(
        [python, "predict.py", "--json", str(picture)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=WRITES_BYTECODE,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["text"] == "4"  # MNIST's own label


def test_a_stale_export_without_tensorflow_says_how_to_fix_it(app_environment, tmp_path):
    """A .keras file whose ONNX export is missing: the app's install cannot read it, and says what to run."""
    python, _, _ = app_environment
    model = tmp_path / "digit_model.keras"
    model.write_bytes((ROOT / "digit_model.keras").read_bytes())  # no digit_model.onnx beside this copy
    picture = tmp_path / "blank.png"
    picture.write_bytes(png_bytes(np.full((28, 28, 4), 255, np.uint8)))  # never read: the model fails first
    completed = subprocess.run(
        [python, "predict.py", "--model", str(model), str(picture)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode != 0
    assert "digit_model.onnx is missing" in completed.stderr
    assert "requirements-train.txt" in completed.stderr and "python export.py" in completed.stderr
    assert "Traceback" not in completed.stderr


class FreshAppServer(AppServer):
    """`streamlit run app.py` with the fresh environment's python."""

    def __init__(self, python):
        super().__init__()
        self.python = python
        self.environment = dict(WRITES_BYTECODE)

    def command(self):
        return [str(self.python), *super().command()[1:]]


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}")
def test_the_app_runs_from_its_own_install(app_environment, model_path):
    from playwright.sync_api import sync_playwright

    python, _, _ = app_environment
    with FreshAppServer(python) as server, sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        page = open_app(chromium.new_context(viewport={"width": 1280, "height": 900}), server.url)
        draw_with_mouse(page, SEVEN)
        click_and_wait(page, ".st-key-predict")
        assert answer_locator(page).inner_text(timeout=30_000) == "7"
        assert page.locator('[data-testid="stException"]').count() == 0
        assert Recognizer(model_path).backend_name == "onnx"  # what made it work without TensorFlow
        chromium.close()
    print(f"\nthe app's environment after predict.py and the app ran: {folder_megabytes(python.parent.parent):.0f} MB")
    assert folder_megabytes(python.parent.parent) <= MOST_MEGABYTES
