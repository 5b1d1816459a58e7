"""Quick-mode training end to end, and the pieces of train.py checked against hand-made truth."""

import json
import subprocess
import sys

import numpy as np
import pytest

import mnist
import train
from recognizer import metrics_path_for
from conftest import ROOT


def test_quick_training_beats_chance_by_far(tmp_path, mnist_dir):
    output = tmp_path / "quick.keras"
    completed = subprocess.run(
        [sys.executable, "train.py", "--quick", "--data-dir", str(mnist_dir),
         "--output", str(output), "--verbose", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    metrics = json.loads(metrics_path_for(output).read_text())
    assert metrics["quick_mode"] and metrics["training_images"] == train.QUICK_TRAIN_SIZE
    assert len(metrics["mnist_test"]["confusion_matrix"]) == 10
    for figure in metrics["figures"]:
        assert (tmp_path / figure).stat().st_size > 1000  # recorded relative to the model's folder

    # An independent check: load the written file and score it ourselves.
    import keras

    model = keras.saving.load_model(output, compile=False)
    _, (test_images, test_labels) = mnist.load_mnist(mnist_dir)
    probabilities = np.asarray(model(train.to_model_input(test_images[:1000]), training=False))
    assert probabilities.shape == (1000, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    accuracy = (probabilities.argmax(axis=1) == test_labels[:1000]).mean()
    assert accuracy > 0.7, f"quick model accuracy {accuracy:.1%} is too close to chance (10%)"


def test_missing_data_gives_a_clear_error(tmp_path):
    completed = subprocess.run(
        [sys.executable, "train.py", "--quick", "--data-dir", str(tmp_path / "nowhere"), "--output",
         str(tmp_path / "model.keras")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode != 0
    assert "error: MNIST is not in" in completed.stderr and "Traceback" not in completed.stderr


def test_classification_metrics_on_a_known_confusion():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 1, 1, 1, 2, 0])
    metrics = train.classification_metrics(labels, predictions)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["errors"] == 2
    assert metrics["precision"]["0"] == pytest.approx(0.5)  # two predicted 0, one right
    assert metrics["recall"]["1"] == pytest.approx(1.0)
    assert metrics["recall"]["2"] == pytest.approx(0.5)
    assert metrics["confusion_matrix"][0][:3] == [1, 1, 0]
    assert metrics["precision"]["5"] == 0.0  # never predicted: no division by zero


def test_validation_split_is_disjoint_and_fixed():
    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1)
    labels = np.arange(100) % 10
    (train_images, _), (validation_images, _) = train.split_validation(images, labels, 20, seed=3)
    assert len(validation_images) == 20 and len(train_images) == 80
    assert not set(train_images.ravel()) & set(validation_images.ravel())
    (_, _), (again, _) = train.split_validation(images, labels, 20, seed=3)
    np.testing.assert_array_equal(validation_images, again)


def test_augmented_digits_stay_mnist_normalised(mnist_dir):
    """Augmented digits keep MNIST's framing: ink inside 28x28, centre of mass near (14, 14)."""
    (images, _), _ = mnist.load_mnist(mnist_dir)
    rng = np.random.default_rng(0)
    for image in images[:50]:
        digit = train.augment(image, rng)
        assert digit.shape == (28, 28) and digit.dtype == np.float32
        assert 0.0 <= digit.min() and digit.max() <= 1.0 and digit.max() > 0.5
        rows, columns = np.indices(digit.shape)
        centre = ((digit * rows).sum() / digit.sum(), (digit * columns).sum() / digit.sum())
        assert np.allclose(centre, (14, 14), atol=2.0)


def test_augmented_batches_are_reproducible(mnist_dir):
    (images, labels), _ = mnist.load_mnist(mnist_dir)
    first = train.AugmentedBatches(images[:64], labels[:64], batch_size=32, seed=5)[1]
    second = train.AugmentedBatches(images[:64], labels[:64], batch_size=32, seed=5)[1]
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[0].shape == (32, 28, 28, 1)
