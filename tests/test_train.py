"""Quick-mode training end to end, and the pieces of train.py and training_data.py checked against hand-made truth."""

import json

import numpy as np
import pytest

import datasets
import train
import training_data
from conftest import run_script
from recognizer import metrics_path_for


def test_quick_training_beats_chance_by_far(tmp_path, mnist_dir):
    output = tmp_path / "quick.keras"
    completed = run_script(
        "train.py", "--quick", "--data-dir", mnist_dir.parent, "--output", output, "--verbose", "0", timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    metrics = json.loads(metrics_path_for(output).read_text())
    assert metrics["quick_mode"] and metrics["training_images"] == train.QUICK_TRAIN_SIZE
    assert set(metrics["validation"]) == {"mnist", "unipen", "cvl"}
    for scored in metrics["validation"].values():
        assert 0.5 < scored["accuracy"] <= 1.0 and scored["digits"] > 0
    assert len(metrics["mnist_test"]["confusion_matrix"]) == 10
    for figure in metrics["figures"]:
        assert (tmp_path / figure).stat().st_size > 1000  # recorded relative to the model's folder

    # An independent check: load the written file and score it ourselves.
    import keras

    model = keras.saving.load_model(output, compile=False)
    _, (test_images, test_labels) = datasets.load_mnist(mnist_dir)
    probabilities = np.asarray(model(train.to_model_input(test_images[:1000]), training=False))
    assert probabilities.shape == (1000, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    accuracy = (probabilities.argmax(axis=1) == test_labels[:1000]).mean()
    assert accuracy > 0.7, f"quick model accuracy {accuracy:.1%} is too close to chance (10%)"


def test_missing_data_gives_a_clear_error(tmp_path):
    completed = run_script(
        "train.py", "--quick", "--data-dir", tmp_path / "nowhere", "--output", tmp_path / "model.keras"
    )
    assert completed.returncode != 0
    assert "error: MNIST is not in" in completed.stderr and "Traceback" not in completed.stderr


def test_missing_pen_data_names_the_file_and_the_fix(tmp_path, mnist_dir):
    """A data root with MNIST but no UNIPEN: the error names the missing file and where it comes from."""
    (tmp_path / "mnist").symlink_to(mnist_dir)
    completed = run_script("train.py", "--quick", "--data-dir", tmp_path, "--output", tmp_path / "m.keras")
    assert completed.returncode != 0 and "Traceback" not in completed.stderr
    assert "unipen_digits.npz is missing" in completed.stderr and "--data-dir" in completed.stderr


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
    (train_images, _), (validation_images, _) = datasets.split_validation(images, labels, 20, seed=3)
    assert len(validation_images) == 20 and len(train_images) == 80
    assert not set(train_images.ravel()) & set(validation_images.ravel())
    (_, _), (again, _) = datasets.split_validation(images, labels, 20, seed=3)
    np.testing.assert_array_equal(validation_images, again)


def test_augmented_digits_stay_mnist_normalised(mnist_dir):
    """Augmented digits keep MNIST's framing: ink inside 28x28, centre of mass near (14, 14)."""
    (images, _), _ = datasets.load_mnist(mnist_dir)
    rng = np.random.default_rng(0)
    for image in images[:50]:
        digit = training_data.augment(image, rng)
        assert digit.shape == (28, 28) and digit.dtype == np.float32
        assert digit.min() >= 0.0 and digit.max() <= 1.0 and digit.max() > 0.5
        rows, columns = np.indices(digit.shape)
        centre = ((digit * rows).sum() / digit.sum(), (digit * columns).sum() / digit.sum())
        assert np.allclose(centre, (14, 14), atol=2.0)


def test_augmented_batches_are_reproducible(mnist_dir):
    (images, labels), _ = datasets.load_mnist(mnist_dir)
    sources = {
        "a": (images[:64], labels[:64], 0.75, training_data.augment),
        "b": (images[64:96], labels[64:96], 0.25, training_data.jitter_pooled),
    }
    first = training_data.AugmentedBatches(sources, batch_size=32, steps=3, seed=5)[1]
    second = training_data.AugmentedBatches(sources, batch_size=32, steps=3, seed=5)[1]
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[0].shape == (32, 28, 28, 1)
    batches = training_data.AugmentedBatches(sources, batch_size=32, steps=3, seed=5)
    assert len(batches) == 3 and batches.counts == {"a": 24, "b": 8}  # the mixture weights, exactly


def test_batches_mix_sources_by_weight_and_add_uniform_non_digits():
    """Two sources of known digits (all 3s, all 8s) come in the weights' proportion; non-digits are uniform."""
    threes = np.zeros((10, 28, 28), np.uint8)
    eights = np.zeros((10, 28, 28), np.uint8)
    threes[:, 8:20, 10:18] = 255
    eights[:, 6:22, 9:19] = 255
    sources = {
        "threes": (threes, np.full(10, 3), 0.6, training_data.jitter_pooled),
        "eights": (eights, np.full(10, 8), 0.4, training_data.jitter_pooled),
    }
    non_digits = np.full((5, 28, 28), 128, np.uint8)
    images, targets = training_data.AugmentedBatches(sources, batch_size=50, steps=1, seed=1, non_digits=non_digits)[0]
    digit_targets = targets[targets.max(axis=1) > 0.5]
    assert (digit_targets.argmax(axis=1) == 3).sum() == 30 and (digit_targets.argmax(axis=1) == 8).sum() == 20
    uniform = targets[targets.max(axis=1) <= 0.5]
    assert len(uniform) == round(training_data.NON_DIGIT_FRACTION * 50)
    np.testing.assert_allclose(uniform, 0.1)
    assert len(images) == len(targets)


def test_pen_digits_are_drawn_and_read_as_the_app_reads_a_canvas():
    """A pen-drawn vertical stroke, through the app's own pipeline, is a centred upright bar like MNIST's 1."""
    stroke = [np.array([[50.0, 0.0], [50.0, 100.0]])]
    digit = training_data.draw_pen_digit(stroke, np.random.default_rng(0), vary=False, form="black_on_white")
    assert digit.shape == (28, 28)
    rows, columns = np.nonzero(digit > 0.5)
    assert rows.min() >= 3 and rows.max() <= 24 and rows.max() - rows.min() >= 17  # about 20 px tall
    assert columns.max() - columns.min() <= 8 and abs(columns.mean() - 14) < 1.5
    import strokes
    from preprocessing import prepare

    # The same drawing read by the app gives the very same 28x28 image.
    rng = np.random.default_rng(0)
    placed, brush = strokes.place_strokes(stroke, rng, brush_range=training_data.PEN_BRUSH)
    canvas = strokes.canvas_form(strokes.draw_strokes(placed, strokes.CANVAS_SIZE, brush), "black_on_white")
    np.testing.assert_allclose(prepare(canvas).digits[0, ..., 0], digit)


def test_scans_are_normalised_like_the_app_normalises_uploads(mnist_dir):
    """A 28x28 scan framed by bounding box (as CVL is) comes out with MNIST's centre of mass."""
    (images, _), _ = datasets.load_mnist(mnist_dir)
    for image in images[:20]:
        digit = training_data.normalise_scan(image)
        rows, columns = np.indices(digit.shape)
        centre = ((digit * rows).sum() / digit.sum(), (digit * columns).sum() / digit.sum())
        assert np.allclose(centre, (14, 14), atol=0.6)
        assert digit.max() == pytest.approx(1.0, abs=0.05)


def test_render_pool_is_reproducible_and_keeps_labels_in_step():
    sample = [np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0], [10.0, 20.0]])]  # a Z
    dot = [np.array([[5.0, 5.0]])]  # only a dot: no digit, dropped with its label
    items, labels = [sample, dot, sample], np.array([2, 7, 2])
    first = training_data.render_pool("pen", items, labels, seed=(1, 2), vary=True, workers=1)
    second = training_data.render_pool("pen", items, labels, seed=(1, 2), vary=True, workers=1)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1].tolist() == [2, 2] and first[0].shape == (2, 28, 28)


def test_touching_pen_pair_is_read_as_one_piece_holding_both_digits():
    """Two hooks written touching give one image wider than tall, fitted to MNIST's 20 px by its width."""
    hook = [np.array([[0.0, 0.0], [60.0, 0.0], [60.0, 100.0]])]  # a 7 without its slant: 0.6 times as wide as tall
    for rng_seed in range(5):
        pair = training_data.draw_pen_pair(hook, hook, np.random.default_rng(rng_seed))
        assert pair.shape == (28, 28)
        rows, columns = np.nonzero(pair > 0.5)
        assert 18 <= columns.max() - columns.min() <= 21  # the longer side is the width
        assert rows.max() - rows.min() <= 18
        # The gap is at most 0 px: the two digits' ink meets, so no column between them is empty.
        inked_columns = np.flatnonzero((pair > 0.1).any(axis=0))
        assert np.all(np.diff(inked_columns) == 1)


def test_flagged_pen_one_gets_its_flag_on_the_left_of_the_stem_top():
    """A flagged 1 has ink left of its stem in the top half and none there in the bottom half."""
    stem = [np.array([[50.0, 0.0], [50.0, 100.0]])]
    plain = training_data.draw_pen_digit(stem, np.random.default_rng(3), vary=False, form="white_on_black")
    flagged = training_data.draw_pen_digit(stem, np.random.default_rng(3), vary=False, form="white_on_black", flag=True)
    left_of_stem_top = (slice(3, 12), slice(0, 11))
    assert plain[left_of_stem_top].max() < 0.1
    assert flagged[left_of_stem_top].max() > 0.5
    assert flagged[18:, :9].max() < 0.1  # the flag rises from the lower left but starts above the foot
    pool, labels = training_data.render_pool("flagged pen", [stem], np.array([1]), seed=(1, 2), vary=False, workers=1)
    assert pool.shape == (1, 28, 28) and labels.tolist() == [1]
    assert pool[0, left_of_stem_top[0], left_of_stem_top[1]].max() > 128
