"""Per-writer adaptation: a hand the base model misreads is read after a few examples, and nothing else changes."""

import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

import adaptation
import datasets
from conftest import ROOT

WRITER_SEED = 20261214  # one made-up writer's hand, the same on every run
EXAMPLES = 10  # the "10 examples"; here all of the writer's odd digit


def one_hand(shape, count, seed):
    """count copies of one digit shape as one hand writes it again and again: turned, sized, slanted, moved, thicker."""
    rng = np.random.default_rng(seed)
    copies = []
    for _ in range(count):
        matrix = cv2.getRotationMatrix2D((13.5, 13.5), rng.uniform(-12, 12), rng.uniform(0.85, 1.1))
        matrix[0, 1] += rng.uniform(-0.2, 0.2)
        matrix[:, 2] += rng.uniform(-1.5, 1.5, 2)
        copy = cv2.warpAffine(shape, matrix, (28, 28))
        if rng.random() < 0.5:
            copy = cv2.dilate(copy, np.ones((2, 2), np.uint8))
        copies.append(np.clip(copy, 0, 1))
    return np.stack(copies).astype(np.float32)


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    _, (images, labels) = datasets.load_mnist(mnist_dir)
    return images.astype(np.float32) / 255, labels.astype(np.int64)


@pytest.fixture(scope="module")
def mirrored_threes(mnist_test):
    """A writer who writes every 3 mirrored, as some children do: the base model reads it as 8 or 5, never 3."""
    images, labels = mnist_test
    shape = images[np.flatnonzero(labels == 3)[1]][:, ::-1].copy()
    return one_hand(shape, 40, WRITER_SEED)


def test_a_mirrored_hand_is_learned_and_other_digits_stay_as_they_were(recognizer, mirrored_threes, mnist_test):
    examples, others = mirrored_threes[:EXAMPLES], mirrored_threes[EXAMPLES:]
    base_threes = recognizer.probabilities(others[..., None]).argmax(axis=1) == 3
    assert base_threes.mean() <= 0.1, "the made-up hand is no longer one the base model misreads"
    mine = recognizer.personalised(examples, np.full(EXAMPLES, 3))
    assert (mine.probabilities(others[..., None]).argmax(axis=1) == 3).mean() >= 0.8
    images, labels = mnist_test
    normal = slice(0, 500)  # other people's ordinary digits, 8s among them: read exactly as often right
    base_right = recognizer.probabilities(images[normal, ..., None]).argmax(axis=1) == labels[normal]
    mine_right = mine.probabilities(images[normal, ..., None]).argmax(axis=1) == labels[normal]
    assert mine_right.sum() >= base_right.sum()


def test_no_examples_answer_exactly_as_the_base(recognizer, mnist_test):
    images, _ = mnist_test
    mine = recognizer.personalised(np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64))
    assert np.array_equal(mine.probabilities(images[:64, ..., None]), recognizer.probabilities(images[:64, ..., None]))
    picture = (images[0] * 255).astype(np.uint8)
    assert mine.recognize(picture).to_dict() == recognizer.recognize(picture).to_dict()
    assert recognizer.recognize(picture).personalised_examples == 0


def test_a_single_example_is_enough_and_is_said(recognizer, mirrored_threes):
    started = time.perf_counter()
    mine = recognizer.personalised(mirrored_threes[:1], [3])
    assert time.perf_counter() - started < 1.0
    assert mine.probabilities(mirrored_threes[:1, ..., None]).argmax() == 3  # its own example, at least
    picture = (mirrored_threes[0] * 255).astype(np.uint8)
    result = mine.recognize(picture)
    assert result.personalised_examples == 1 and result.to_dict()["personalised_examples"] == 1


def test_strokes_are_read_with_the_examples_too(recognizer, mirrored_threes):
    drawing = {"width": 280, "height": 280, "strokes": [[[100, 60], [180, 60], [180, 140], [100, 140]]]}
    result = recognizer.personalised(mirrored_threes[:3], [3, 3, 3], [None, None, None]).recognize_strokes(drawing)
    assert result.personalised_examples == 3 and result.views == ("image", "online")


@pytest.mark.parametrize(
    "images, labels, drawings, says",
    [
        (np.zeros((2, 28, 28)), [3, 10], None, "0-9"),
        (np.zeros((2, 28, 28)), [3, -1], None, "0-9"),
        (np.zeros((1, 28, 28)), [2.5], None, "whole digits"),
        (np.zeros((1, 28, 28)), ["3"], None, "whole digits"),
        (np.zeros((2, 27, 27)), [3, 4], None, "28x28"),
        (np.zeros((2, 28, 28)), [3], None, "need 2 labels"),
        (np.full((1, 28, 28), 255.0), [3], None, "[0, 1]"),
        (np.zeros((2, 28, 28)), [3, 4], [None], "drawings"),
        (np.zeros((1, 28, 28)), [3], ["not a drawing"], "strokes.Drawing"),
    ],
)
def test_bad_examples_are_refused_clearly(recognizer, images, labels, drawings, says):
    with pytest.raises(adaptation.ExampleError, match=None) as caught:
        recognizer.personalised(images, labels, drawings)
    assert isinstance(caught.value, ValueError) and says in str(caught.value)


def test_features_output_is_the_keras_models_last_layer_input(recognizer, model_path, mnist_test):
    """The reference: Keras's own Flatten output (the Dropout after it is the identity at inference)."""
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    flatten = next(layer for layer in model.layers if isinstance(layer, keras.layers.Flatten))
    reference = keras.Model(model.inputs[0], flatten.output)
    images, _ = mnist_test
    batch = images[:64, ..., None]
    probabilities, features = recognizer.embed(batch)
    expected = np.asarray(reference(batch, training=False))
    assert features.shape == expected.shape == (64, 2048)
    assert np.abs(features - expected).max() <= 1e-4 * np.abs(expected).max()
    weights, bias = model.layers[-1].get_weights()
    logits = expected @ weights + bias
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert np.allclose(probabilities, softmax / softmax.sum(axis=1, keepdims=True), atol=1e-5)


def write_pictures(folder, images):
    """Each 28x28 digit as a 140x140 black-on-white picture, as a scan or a phone photo would give it."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(images):
        big = cv2.resize((image * 255).astype(np.uint8), (140, 140), interpolation=cv2.INTER_CUBIC)
        paths.append(folder / f"{index:03d}.png")
        cv2.imwrite(str(paths[-1]), 255 - big)
    return paths


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "predict.py", *map(str, arguments)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def read_digits(output):
    return [line.rsplit(": ", 1)[1].split(" ")[0] for line in output.splitlines()]


def test_predict_reads_files_with_an_examples_folder(tmp_path, mirrored_threes):
    write_pictures(tmp_path / "mine" / "3", mirrored_threes[:EXAMPLES])
    files = write_pictures(tmp_path / "files", mirrored_threes[EXAMPLES : EXAMPLES + 10])
    base = run_cli(*files)
    adapted = run_cli("--examples", tmp_path / "mine", *files)
    assert adapted.returncode == 0, adapted.stderr
    assert read_digits(base.stdout).count("3") <= 1
    assert read_digits(adapted.stdout).count("3") >= 8
    assert f"the {EXAMPLES} examples" in adapted.stderr


def test_predict_says_what_is_wrong_with_an_examples_folder(tmp_path, mirrored_threes):
    picture = write_pictures(tmp_path / "files", mirrored_threes[:1])[0]
    (tmp_path / "flat").mkdir()
    write_pictures(tmp_path / "flat" / "notdigit", mirrored_threes[:1])
    (tmp_path / "broken" / "3").mkdir(parents=True)
    (tmp_path / "broken" / "3" / "bad.png").write_text("this is no picture")
    cases = {
        tmp_path / "missing": "not a folder",
        tmp_path / "flat": "no examples",
        tmp_path / "broken": "bad.png",
    }
    for folder, says in cases.items():
        result = run_cli("--examples", folder, picture)
        assert result.returncode == 2 and says in result.stderr, (folder, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == ""
    both = run_cli("--examples", tmp_path / "broken", "--profile", "token", picture)
    assert both.returncode == 2 and "not both" in both.stderr
