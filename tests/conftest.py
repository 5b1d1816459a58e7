"""Shared test fixtures: where MNIST and the model are, and one recognizer per run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_script(script, *arguments, timeout=120):
    """`python script arguments...` in the project folder: the completed process, its output captured as text."""
    return subprocess.run(
        [sys.executable, script, *map(str, arguments)], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def mnist_dir():
    """The MNIST folder the loader would read by default; fails loudly when absent."""
    import datasets

    folder = datasets.resolve_data_dir()
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"MNIST is not in {folder}: set MNIST_DIR to the folder with the IDX .gz files")
    return folder


@pytest.fixture(scope="session")
def model_path():
    return ROOT / "digit_model.keras"


@pytest.fixture(scope="session")
def app_model(model_path):
    """The model the app tests run (browser.model_under_test)."""
    from browser import model_under_test

    return model_under_test(model_path)


@pytest.fixture
def use_app_model(monkeypatch, app_model):
    """The app under test reads app_model."""
    monkeypatch.setenv("DIGIT_MODEL", str(app_model))


@pytest.fixture(scope="session")
def recognizer(model_path):
    """The shipped model, loaded once for the whole test run."""
    from recognizer import Recognizer

    return Recognizer(model_path)
