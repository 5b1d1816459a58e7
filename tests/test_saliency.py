"""Occlusion saliency against hand-computed odds on a known linear model, and against a 7's bar."""

import json

import numpy as np
import pytest

import saliency
import strokes
from browser import SEVEN
from recognizer import DigitResult, Recognizer

# The linear model: softmax of z7 = FOR_SEVEN * (ink left of column 14) and z3 = FOR_THREE * (ink right of it).
FOR_SEVEN, FOR_THREE = 0.2, 0.05
SPLIT_COLUMN = 14
BAR_ROWS = 4  # a 20 px brush on the 280 px canvas is about 4 px wide once the digit is 20 px tall


@pytest.fixture(scope="module")
def linear_recognizer(tmp_path_factory):
    """A real Keras model whose log odds are linear in the ink, so every occlusion can be worked out by hand."""
    import keras

    model = keras.Sequential(
        [keras.Input(shape=(28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    left = np.zeros((28, 28), np.float32)
    left[:, :SPLIT_COLUMN] = 1
    weights = np.zeros((28 * 28, 10), np.float32)
    weights[:, 7] = FOR_SEVEN * left.ravel()
    weights[:, 3] = FOR_THREE * (1 - left).ravel()
    model.layers[-1].set_weights([weights, np.zeros(10, np.float32)])
    path = tmp_path_factory.mktemp("linear") / "linear.keras"
    model.save(path)
    return Recognizer(path, backend="keras")


def two_blobs():
    """Ink left and right of SPLIT_COLUMN, further from it than a patch reaches, with uneven levels."""
    image = np.zeros((28, 28), np.float32)
    image[5:13, 3:9] = 1.0
    image[7:10, 4:7] = 0.5
    image[15:23, 19:26] = 0.8
    image[18, 20:24] = 0.3
    return image


def digit_result(recognizer, image):
    probabilities = recognizer.probabilities(image[None, ..., None])[0]
    digit = int(np.argmax(probabilities))
    return DigitResult(digit, float(probabilities[digit]), tuple(map(float, probabilities)), (0, 0, 28, 28), image)


def test_linear_model_saliency_is_the_hand_computed_share_of_the_log_odds(linear_recognizer):
    """Hiding ink x on the left lowers z7 - z3 by FOR_SEVEN * x; on the right it raises it by FOR_THREE * x."""
    image = two_blobs()
    left, right = image[:, :SPLIT_COLUMN].sum(), image[:, SPLIT_COLUMN:].sum()
    logits = np.zeros(10)
    logits[7], logits[3] = FOR_SEVEN * left, FOR_THREE * right
    expected_probabilities = np.exp(logits) / np.exp(logits).sum()

    explanation = saliency.explain(linear_recognizer, digit_result(linear_recognizer, image))

    assert (explanation.digit, explanation.runner_up) == (7, 3)
    assert explanation.probability == pytest.approx(expected_probabilities[7], rel=1e-5)
    assert explanation.runner_up_probability == pytest.approx(expected_probabilities[3], rel=1e-5)
    expected = np.zeros((28, 28), np.float32)
    expected[:, :SPLIT_COLUMN] = FOR_SEVEN * image[:, :SPLIT_COLUMN]
    expected[:, SPLIT_COLUMN:] = -FOR_THREE * image[:, SPLIT_COLUMN:]
    np.testing.assert_allclose(explanation.saliency, expected, atol=2e-4)


def test_a_tie_with_the_answer_gives_another_digit_as_runner_up(linear_recognizer):
    """A non-digit read as uniform: every digit ties, and the runner-up is the first digit that is not the answer."""
    tied = DigitResult(3, 0.1, (0.1,) * 10, (0, 0, 28, 28), two_blobs())
    explanation = saliency.explain(linear_recognizer, tied)
    assert (explanation.digit, explanation.runner_up, explanation.runner_up_probability) == (3, 0, 0.1)


def test_odds_of_a_against_b_are_the_opposite_of_b_against_a(recognizer):
    image = two_blobs()
    forwards = saliency.occlusion(recognizer.probabilities, image, 4, versus=9)
    backwards = saliency.occlusion(recognizer.probabilities, image, 9, versus=4)
    np.testing.assert_allclose(forwards, -backwards, atol=1e-5)


def test_background_gets_no_saliency_and_an_empty_image_none(recognizer):
    image = two_blobs()
    assert not saliency.occlusion(recognizer.probabilities, image, 7)[image == 0].any()
    assert not saliency.occlusion(recognizer.probabilities, np.zeros((28, 28), np.float32), 7).any()


def drawn_seven(recognizer, bar_start_x):
    """What the model saw of a 7 drawn on the canvas whose bar starts at bar_start_x (the full bar: 75)."""
    path = [(bar_start_x, 62), *SEVEN[0][1:]]
    ink = strokes.draw_strokes([np.array(path, float)], strokes.CANVAS_SIZE, 20)
    return recognizer.recognize(strokes.canvas_form(ink, "black_on_white")).digits[0]


def bar_and_stem(image):
    """Masks of a 7's bar (its top BAR_ROWS rows of ink) and the lower half of its stem."""
    top = int(np.flatnonzero(image.max(axis=1) > 0.1)[0])
    bar, stem = np.zeros(image.shape, bool), np.zeros(image.shape, bool)
    bar[top : top + BAR_ROWS] = image[top : top + BAR_ROWS] > 0.1
    stem[16:] = image[16:] > 0.1
    return bar, stem


def test_hiding_the_bar_of_a_seven_turns_it_into_a_one(recognizer):
    """The known answer the saliency view builds on: without its bar a 7 is a 1."""
    seven = drawn_seven(recognizer, 75)
    assert seven.digit == 7
    bar, _ = bar_and_stem(seven.image)
    without_bar = np.where(bar, 0, seven.image).astype(np.float32)
    before, after = seven.probabilities, recognizer.probabilities(without_bar[None, ..., None])[0]
    assert after[7] < before[7] and after[1] > before[1]
    assert int(np.argmax(after)) == 1


def test_the_bar_is_what_makes_a_short_barred_seven_not_a_one(recognizer):
    """A 7 with a short bar, close to a 1: the bar carries its odds against the 1 far more than the stem."""
    seven = drawn_seven(recognizer, 160)
    assert seven.digit == 7
    bar, stem = bar_and_stem(seven.image)
    seven_against_one = saliency.occlusion(recognizer.probabilities, seven.image, 7, versus=1)
    assert seven_against_one[bar].mean() > 0
    assert seven_against_one[bar].mean() > 2 * seven_against_one[stem].mean()


def test_overlay_colours_ink_by_its_saliency():
    image = two_blobs()
    values = np.zeros((28, 28), np.float32)
    values[6, 4], values[16, 20] = 2.0, -1.0  # the strongest for, half as strong against
    picture = saliency.overlay(image, values)
    assert picture.shape == (28, 28, 3)
    np.testing.assert_allclose(picture[6, 4], saliency.SUPPORT_COLOUR * image[6, 4])
    half_against = 0.5 * saliency.NEUTRAL_SHARE + 0.5 * saliency.AGAINST_COLOUR
    np.testing.assert_allclose(picture[16, 20], half_against * image[16, 20], rtol=1e-6)
    np.testing.assert_allclose(picture[10, 5], saliency.NEUTRAL_SHARE * image[10, 5])  # no effect: grey ink
    assert not picture[image == 0].any()


@pytest.mark.parametrize(
    "image, digit, versus, message",
    [
        (np.zeros((27, 28)), 7, None, r"shape \(27, 28\)"),
        (np.full((28, 28), np.nan), 7, None, "NaN"),
        (np.zeros((28, 28)), 10, None, "from 0 to 9"),
        (np.zeros((28, 28)), 7, 7, "must differ"),
    ],
)
def test_bad_input_is_refused_with_the_reason(recognizer, image, digit, versus, message):
    with pytest.raises(saliency.SaliencyError, match=message):
        saliency.occlusion(recognizer.probabilities, image, digit, versus)
    assert issubclass(saliency.SaliencyError, ValueError)


def test_benchmark_reports_the_time_per_digit(tmp_path, mnist_dir):
    from benchmarks import saliency as benchmark

    benchmark.main(["--digits", "5", "--data-dir", str(mnist_dir.parent), "--results-dir", str(tmp_path)])
    figures = json.loads((tmp_path / "saliency.json").read_text())
    assert figures["digits"] >= 5 and figures["backend"] == "onnx"
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
    assert 1 < figures["images_read_per_digit"] <= len(saliency.PATCH_CORNERS) + 1
    assert f"| saliency per digit, p50 | {figures['p50_ms']:.1f} ms |" in (tmp_path / "saliency.md").read_text()
