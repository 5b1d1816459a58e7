"""The tutorial recipe: its input path, the committed model and its figures, training it, and the benchmark."""

import json

import numpy as np
import pytest

import comparison
import datasets
import train
from browser import mnist_test_set, paper_picture
from conftest import run_script
from recognizer import Recognizer, metrics_path_for

ALLOWED_BACKEND_FLIPS = 2  # ONNX and Keras agree within 1e-5: at most a near-tie or two may read differently


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return mnist_test_set(mnist_dir)


@pytest.fixture(scope="module")
def tutorial():
    return Recognizer(comparison.TUTORIAL_MODEL)


def test_plain_resize_of_an_enlarged_mnist_digit_gives_the_digit_back(mnist_test):
    """A 28x28 digit enlarged ten times on paper and shrunk back: the tutorial sees MNIST's own image."""
    images, _ = mnist_test
    seen = comparison.plain_resize(paper_picture([images[0]]))[..., 0]
    assert np.abs(seen - images[0] / 255).mean() < 0.02


def test_the_tutorial_reads_the_whole_canvas_as_one_digit(tutorial, mnist_test):
    images, _ = mnist_test
    picture = paper_picture([images[0], images[1]])
    recognition = comparison.read_plain(tutorial, picture)
    assert len(recognition.digits) == 1
    assert recognition.digits[0].box == (0, 0, picture.shape[1], picture.shape[0])


def test_a_small_digit_in_a_corner_stays_small_for_the_tutorial_and_is_centred_for_the_app(
    recognizer, tutorial, mnist_test
):
    images, labels = mnist_test
    page = np.full((280, 280, 4), 255, np.uint8)
    page[20:104, 20:104] = paper_picture([images[0]], scale=3)  # 84 px in the top-left corner
    plain = comparison.read_plain(tutorial, page).digits[0].image
    rows, columns = np.nonzero(plain > 0.2)
    assert rows.max() < 11 and columns.max() < 11  # a few grey pixels in the corner
    ours = recognizer.recognize(page).digits[0]
    assert ours.digit == labels[0]
    weights = ours.image[ours.image > 0]
    centre = (np.array(np.nonzero(ours.image > 0)) * weights).sum(axis=1) / weights.sum()
    np.testing.assert_allclose(centre, [14, 14], atol=1.0)  # MNIST puts the centre of mass at pixel (14, 14)


def test_the_committed_tutorial_model_is_one_convolution_and_its_figures_are_its_own(tutorial, mnist_test):
    import keras

    model = keras.saving.load_model(comparison.TUTORIAL_MODEL, compile=False)
    assert [type(layer).__name__ for layer in model.layers].count("Conv2D") == 1
    metrics = json.loads(metrics_path_for(comparison.TUTORIAL_MODEL).read_text())
    assert metrics["recipe"] == "tutorial" and not metrics["quick_mode"]
    assert metrics["parameters"] == model.count_params()
    assert metrics["model_file_bytes"] == comparison.TUTORIAL_MODEL.stat().st_size
    assert metrics["epochs_run"] == train.TUTORIAL_EPOCHS == len(metrics["history"]["loss"])
    assert tutorial.backend_name == "onnx"  # the committed export belongs to the committed .keras file
    images, labels = mnist_test
    errors = int((tutorial.probabilities(train.to_model_input(images)).argmax(axis=1) != labels).sum())
    assert abs(errors - metrics["mnist_test"]["errors"]) <= ALLOWED_BACKEND_FLIPS


def test_the_tutorial_recipe_trains_in_quick_mode(tmp_path, mnist_dir, mnist_test):
    output = tmp_path / "tutorial.keras"
    completed = run_script(
        "train.py",
        "--recipe",
        "tutorial",
        "--quick",
        "--data-dir",
        mnist_dir.parent,
        "--output",
        output,
        "--verbose",
        "0",
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    metrics = json.loads(metrics_path_for(output).read_text())
    assert metrics["recipe"] == "tutorial" and metrics["quick_mode"]
    assert metrics["training_images"] == train.QUICK_TRAIN_SIZE
    assert len(metrics["history"]["val_accuracy"]) == train.TUTORIAL_EPOCHS
    assert not (tmp_path / "reports").exists()  # no figures: the shipped model's reports/ stays its own
    images, labels = mnist_test
    accuracy = (
        Recognizer(output).probabilities(train.to_model_input(images[:1000])).argmax(axis=1) == labels[:1000]
    ).mean()
    assert accuracy > 0.8, f"the quick tutorial model reads only {accuracy:.1%} of 1,000 test digits"
    assert abs(accuracy - metrics["mnist_test"]["accuracy"]) < 0.05  # its 1,000 first against all 10,000


def test_the_comparison_benchmark_scores_every_reading(tmp_path, mnist_dir, model_path):
    from benchmarks import comparison as benchmark

    benchmark.main(
        ["--per-condition", "3", "--numbers", "2", "--data-dir", str(mnist_dir.parent), "--results-dir", str(tmp_path)]
    )
    summary = json.loads((tmp_path / "comparison.json").read_text())
    for name, path in (("shipped", model_path), ("tutorial", comparison.TUTORIAL_MODEL)):
        measured = json.loads(metrics_path_for(path).read_text())["mnist_test"]["accuracy"]
        assert summary["mnist_test"][name] == pytest.approx(measured, abs=ALLOWED_BACKEND_FLIPS / 10_000)
    for row in summary["conditions"].values():
        assert set(benchmark.READINGS) <= set(row) and all(0 <= row[key] <= 1 for key in benchmark.READINGS)
    numbers = [row for name, row in summary["conditions"].items() if "numbers" in name]
    assert numbers and all(row["tutorial"] == 0 for row in numbers)  # one digit per picture never reads a number
    assert isinstance(summary["ensemble_better"], bool)
    validation = summary["validation_writers_mean"]  # the decision's conditions: UNIPEN's validation writers only
    pen_rows = [row for name, row in summary["conditions"].items() if name.startswith("pen")]
    assert validation["app"] == pytest.approx(np.mean([row["app"] for row in pen_rows]))
    assert summary["ensemble_better"] == (
        validation["ensemble"] > validation["app"]
        and summary["mnist_validation"]["ensemble"] > summary["mnist_validation"]["shipped"]
    )
    assert "| mean over the conditions |" in (tmp_path / "comparison.md").read_text()


def test_the_comparison_benchmark_scores_the_validation_split_both_models_held_out(mnist_dir, model_path):
    from benchmarks import comparison as benchmark

    images, labels = benchmark.mnist_validation_set((model_path, comparison.TUTORIAL_MODEL), mnist_dir.parent)
    seed = json.loads(metrics_path_for(model_path).read_text())["seed"]
    train_set, _ = datasets.load_mnist(mnist_dir)
    order = np.random.default_rng(seed).permutation(len(train_set[0]))  # train.py's split, worked out again
    held_out = order[: datasets.MNIST_VALIDATION_SIZE]
    assert np.array_equal(images, train_set[0][held_out]) and np.array_equal(labels, train_set[1][held_out])


def test_the_comparison_benchmark_refuses_models_without_a_common_split(tmp_path, model_path):
    from benchmarks import comparison as benchmark

    unmeasured = tmp_path / "model.keras"  # no metrics file beside it: its validation split is unknown
    unmeasured.write_bytes(b"")
    with pytest.raises(ValueError, match="same training seed"):
        benchmark.mnist_validation_set((model_path, unmeasured))
