"""The recognition function on images whose answers are known: MNIST digits redrawn as canvases."""

import re

import cv2
import numpy as np
import pytest

import datasets
from recognizer import ModelError, Recognition, Recognizer


@pytest.fixture(scope="module")
def test_digits(mnist_dir, recognizer):
    """MNIST test digits (uint8 28x28) that the model reads right on their own, by label."""
    _, (images, labels) = datasets.load_mnist(mnist_dir)
    images, labels = images[:300], labels[:300]
    probabilities = recognizer.probabilities((images / 255.0).astype(np.float32)[..., None])
    right = probabilities.argmax(axis=1) == labels
    return {digit: images[right & (labels == digit)][:3] for digit in range(10)}


def canvas_of(digits, height=280, gap=20):
    """A transparent RGBA canvas with the digits drawn black, side by side, like the app's canvas."""
    scale = height * 0.7 / 28
    tiles = [cv2.resize(digit, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) for digit in digits]
    width = sum(tile.shape[1] for tile in tiles) + gap * (len(tiles) + 1)
    canvas = np.zeros((height, width, 4), np.uint8)
    x = gap
    for tile in tiles:
        top = (height - tile.shape[0]) // 2
        alpha = canvas[top : top + tile.shape[0], x : x + tile.shape[1], 3]
        np.maximum(alpha, tile, out=alpha)
        x += tile.shape[1] + gap
    return canvas


def test_each_digit_on_a_canvas(recognizer, test_digits):
    for digit, examples in test_digits.items():
        result = recognizer.recognize(canvas_of([examples[0]]))
        assert result.text == str(digit), f"expected {digit}, read {result.text!r}"
        assert len(result.digits[0].probabilities) == 10
        assert result.digits[0].image.shape == (28, 28)


def test_a_number_reads_left_to_right(recognizer, test_digits):
    number = [2, 0, 2, 6, 1]
    result = recognizer.recognize(canvas_of([test_digits[digit][1] for digit in number]))
    assert result.text == "20261"
    lefts = [digit.box[0] for digit in result.digits]
    assert lefts == sorted(lefts)


def test_blank_canvas_reads_nothing(recognizer):
    result = recognizer.recognize(np.zeros((280, 280, 4), np.uint8))
    assert result.status == "empty" and result.text == "" and result.confidence == 0.0
    assert "Nothing to read" in result.message


def test_batch_equals_one_by_one(recognizer, test_digits):
    canvases = [canvas_of([examples[2]]) for examples in test_digits.values()]
    together = recognizer.recognize_many(canvases)
    alone = [recognizer.recognize(canvas) for canvas in canvases]
    assert [result.text for result in together] == [result.text for result in alone]
    np.testing.assert_allclose(
        [result.confidence for result in together], [result.confidence for result in alone], rtol=1e-5
    )


def test_file_bytes_are_decoded(recognizer, test_digits):
    canvas = canvas_of([test_digits[7][0]])
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGBA2BGRA))
    assert recognizer.recognize(encoded.tobytes()).text == "7"


def test_to_dict_is_complete(recognizer, test_digits):
    result = recognizer.recognize(canvas_of([test_digits[3][0], test_digits[4][0]]))
    record = result.to_dict()
    assert record["text"] == "34" and record["status"] in ("ok", "uncertain")
    assert [digit["digit"] for digit in record["digits"]] == [3, 4]
    assert abs(sum(record["digits"][0]["probabilities"]) - 1) < 1e-3
    assert len(record["digits"][1]["box"]) == 4


def test_confidence_is_the_product_of_digit_confidences(recognizer, test_digits):
    result = recognizer.recognize(canvas_of([test_digits[5][0], test_digits[8][0]]))
    assert result.confidence == pytest.approx(result.digits[0].confidence * result.digits[1].confidence)
    assert isinstance(result, Recognition)


def test_missing_model_says_how_to_fix(tmp_path):
    with pytest.raises(ModelError, match="train.py"):
        Recognizer(tmp_path / "absent.keras")


def test_corrupt_model_says_how_to_fix(tmp_path):
    broken = tmp_path / "digit_model.keras"
    broken.write_bytes(b"not a keras archive")
    # Not the committed model: the fix names this file, not `git checkout`, which would not repair it.
    with pytest.raises(ModelError, match=f"{re.escape(str(broken))} is damaged or truncated.*train.py --output"):
        Recognizer(broken)


def test_wrong_batch_shape_is_refused(recognizer):
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\)"):
        recognizer.probabilities(np.zeros((2, 28, 28), np.float32))


def test_boxes_of_a_big_file_are_in_its_own_pixels(recognizer, test_digits):
    """A photo larger than the decoder's working size still gets boxes in the file's pixels."""
    page = np.full((2000, 3000), 255, np.uint8)
    digit = cv2.resize(test_digits[4][0], (600, 600), interpolation=cv2.INTER_CUBIC)
    page[700:1300, 1800:2400] = 255 - digit
    ok, encoded = cv2.imencode(".png", page)
    result = recognizer.recognize(encoded.tobytes())
    assert result.text == "4"
    x, y, width, height = result.digits[0].box
    rows, columns = np.nonzero(digit > 25)
    assert abs(x - (1800 + columns.min())) <= 8 and abs(y - (700 + rows.min())) <= 8
    assert abs(x + width - (1800 + columns.max())) <= 8 and abs(y + height - (700 + rows.max())) <= 8
