"""The committed model: its MNIST accuracy, its size, and the ONNX export that serves it."""

import json

import numpy as np
import pytest

import datasets
import train
import training_data
from recognizer import Recognizer, file_sha256, metrics_path_for, onnx_path_for

MIN_TEST_ACCURACY = 0.995  # the shipped model reaches 99.51%; a model below 99.5% is a regression


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    _, (images, labels) = datasets.load_mnist(mnist_dir)
    return train.to_model_input(images), labels


@pytest.fixture(scope="module")
def keras_recognizer(model_path):
    return Recognizer(model_path, backend="keras")


@pytest.fixture(scope="module")
def keras_predictions(keras_recognizer, mnist_test):
    """The .keras model's answers on the 10,000 test digits, computed once for the tests below."""
    images, _ = mnist_test
    return keras_recognizer.probabilities(images).argmax(axis=1)


def test_committed_model_accuracy_on_mnist_test(keras_predictions, mnist_test):
    _, labels = mnist_test
    accuracy = (keras_predictions == labels).mean()
    assert accuracy >= MIN_TEST_ACCURACY, f"MNIST test accuracy {accuracy:.4%}"


def test_cvl_validation_writers_score_as_the_metrics_file_says(mnist_dir, model_path):
    """Recomputed here, independently of train.py's run: CVL's 60 validation writers, read as uploads are."""
    cvl = datasets.load_cvl(mnist_dir.parent / "cvl")
    mask = datasets.cvl_validation(cvl)
    digits = np.stack([training_data.normalise_scan(image) for image in cvl.images[mask]])[..., None]
    accuracy = (Recognizer(model_path).probabilities(digits).argmax(axis=1) == cvl.labels[mask]).mean()
    recorded = json.loads(metrics_path_for(model_path).read_text())["validation"]["cvl"]
    assert recorded["writers"] == 60 and recorded["digits"] == mask.sum()
    # The metrics were written from uint8-rounded pools; the same digits unrounded may differ by a few.
    assert accuracy == pytest.approx(recorded["accuracy"], abs=0.002)


def test_model_contract_and_size(keras_recognizer, model_path):
    probabilities = keras_recognizer.probabilities(np.zeros((3, 28, 28, 1), np.float32))
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert model_path.stat().st_size <= 2_000_000


def test_metrics_file_matches_the_model(model_path, keras_predictions, mnist_test):
    metrics = json.loads(metrics_path_for(model_path).read_text())
    _, labels = mnist_test
    errors = int((keras_predictions != labels).sum())
    assert metrics["mnist_test"]["errors"] == errors
    assert metrics["model_file_bytes"] == model_path.stat().st_size


def test_onnx_export_is_current_and_matches_keras(model_path, recognizer, keras_recognizer, mnist_test):
    assert onnx_path_for(model_path).is_file(), "run `python export.py`"
    assert recognizer.backend_name == "onnx", "digit_model.onnx is stale: run `python export.py`"
    images, _ = mnist_test
    random_images = np.random.default_rng(1).random((500, 28, 28, 1), dtype=np.float32)
    for batch in (images[:2000], random_images):
        difference = np.abs(recognizer.probabilities(batch) - keras_recognizer.probabilities(batch)).max()
        assert difference <= 1e-5


def test_stale_export_is_not_used(tmp_path, model_path):
    """A .keras file that no longer matches its export falls back to Keras."""
    copied = tmp_path / "digit_model.keras"
    copied.write_bytes(model_path.read_bytes())
    onnx_path_for(copied).write_bytes(onnx_path_for(model_path).read_bytes())
    assert Recognizer(copied).backend_name == "onnx"
    import zipfile

    with zipfile.ZipFile(copied, "a") as archive:  # same weights, different bytes: the hash changes
        archive.writestr("note.txt", "changed")
    assert file_sha256(copied) != file_sha256(model_path)
    assert Recognizer(copied).backend_name == "keras"
