"""The online view: path features worked out by hand, the combination, and the shipped online model's known answers."""

import json

import numpy as np
import pytest

import online
import strokes
from conftest import run_script
from recognizer import DEFAULT_ONLINE_MODEL, Recognizer, metrics_path_for


def test_a_straight_stroke_is_resampled_evenly_with_its_direction():
    features = online.trajectory_features([np.array([[10.0, 0.0], [10.0, 100.0]])])  # a 1, drawn downwards
    assert features.shape == (online.POINTS, online.FEATURES) and features.dtype == np.float32
    np.testing.assert_allclose(features[:, 0], 0.0, atol=1e-6)  # centred: x is 0 all the way
    np.testing.assert_allclose(features[:, 1], np.linspace(-1, 1, online.POINTS), atol=1e-6)  # y down, scaled
    np.testing.assert_allclose(features[:, 2:4], np.tile([0.0, 1.0], (online.POINTS, 1)), atol=1e-6)
    np.testing.assert_allclose(features[:, 4], 1.0)  # the pen is down throughout


def test_a_pen_lift_is_marked_and_the_jump_is_travelled():
    # Two strokes 0-> 10 and 20 -> 30 along x: a third of the way is a jump with the pen up.
    features = online.trajectory_features([np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([[20.0, 0.0], [30.0, 0.0]])])
    x = (features[:, 0] + 1) * 15  # back to the original units
    pen_up = features[:, 4] == 0
    assert pen_up.any() and np.all((x[pen_up] >= 10 - 1e-6) & (x[pen_up] < 20 + 1e-6))
    assert np.all(features[~pen_up, 4] == 1)


def test_reversing_a_stroke_changes_the_online_view_but_not_the_picture():
    stroke = np.array([[50.0, 60.0], [120.0, 60.0], [80.0, 220.0]])  # a 7
    forward, backward = online.trajectory_features([stroke]), online.trajectory_features([stroke[::-1]])
    assert np.median(np.abs(forward[:, 2:4] + backward[::-1, 2:4])) < 0.1  # directions turn round (but at corners)
    assert np.abs(forward - backward).max() > 1.0
    # The picture is the same ink (antialiasing may differ by one grey level), so the image model sees the same.
    import preprocessing

    pictures = [strokes.draw_strokes([path], (280, 280), 16) for path in (stroke, stroke[::-1])]
    assert np.abs(pictures[0].astype(int) - pictures[1]).max() <= 1
    np.testing.assert_allclose(*[preprocessing.mnist_digit(picture) for picture in pictures], atol=0.01)


def test_combining_by_weight_against_a_hand_computation():
    image, pen = np.array([[0.6, 0.4]]), np.array([[0.2, 0.8]])
    np.testing.assert_allclose(online.combine(image, pen, 1.0), image, rtol=1e-6)
    np.testing.assert_allclose(online.combine(image, pen, 0.0), pen, rtol=1e-6)
    both = np.sqrt(image * pen)
    np.testing.assert_allclose(online.combine(image, pen, 0.5), both / both.sum(), rtol=1e-6)


def test_a_written_number_is_its_digits_side_by_side_in_writing_order():
    import train_online

    seven = [np.array([[0.0, 0.0], [60.0, 0.0], [30.0, 100.0]])]  # one stroke, 0.6 as wide as tall
    rng = np.random.default_rng(1)
    for _ in range(50):
        written = train_online.number_strokes([seven], rng)
        assert 2 <= len(written) <= 3
        for before, after in zip(written, written[1:]):
            height = np.ptp(after[:, 1])
            variation = train_online.NUMBER_HEIGHT_VARIATION
            assert 1 - variation - 1e-9 <= height <= 1 + variation + 1e-9  # every digit about one unit tall
            np.testing.assert_allclose(np.ptp(after[:, 0]), 0.6 * height)  # and not stretched
            gap = after[:, 0].min() - before[:, 0].max()
            assert train_online.NUMBER_GAP[0] - 1e-9 <= gap <= train_online.NUMBER_GAP[1] + 1e-9


@pytest.fixture(scope="module")
def shipped():
    if not DEFAULT_ONLINE_MODEL.is_file():
        pytest.fail(f"{DEFAULT_ONLINE_MODEL.name} is not committed: train it with `python train_online.py`")
    recognizer = Recognizer()
    assert recognizer.online_unavailable is None, recognizer.online_unavailable
    return recognizer


def test_a_flagged_1_and_a_7_are_told_apart_by_their_paths(shipped):
    """Nearly one picture: a 1 whose pen goes up its long flag then down, and a 7 along its flat bar then down.

    The 7's bar is half its height, as narrow as the narrowest tenth of UNIPEN's training 7s; a bar a
    third of the height or less reads as a 1 from its path since flagged 1s are trained (README).
    """
    one = [np.array([[60.0, 90.0], [110.0, 40.0], [110.0, 240.0]])]
    seven = [np.array([[45.0, 48.0], [142.0, 45.0], [112.0, 240.0]])]
    probabilities = shipped.online_probabilities([one, seven])
    assert probabilities[0].argmax() == 1 and probabilities[1].argmax() == 7


def test_a_number_read_as_one_digit_is_unsure(shipped):
    """Three digits' strokes side by side (1, 0, 7) must not be read as a confident single digit."""
    angles = np.linspace(0, 2 * np.pi, 40)
    one = np.array([[40.0, 40.0], [40.0, 200.0]])
    zero = np.stack([120 + 35 * np.sin(angles), 120 - 80 * np.cos(angles)], axis=1)
    seven = np.array([[180.0, 45.0], [250.0, 45.0], [205.0, 200.0]])
    number, single = shipped.online_probabilities([[one, zero, seven], [zero]])
    assert number.max() < 0.5 < single.max() and single.argmax() == 0


def test_a_slashed_zero_and_an_8_are_told_apart_by_their_paths(shipped):
    angles = np.linspace(0, 2 * np.pi, 60)
    loop = np.stack([140 + 45 * np.sin(angles), 140 - 90 * np.cos(angles)], axis=1)  # a 0, from the top
    slash = np.array([[185.0, 60.0], [95.0, 220.0]])
    turns = np.linspace(0, 2 * np.pi, 80)
    eight = np.stack([140 + 45 * np.sin(2 * turns), 140 - 90 * np.cos(turns)], axis=1)  # one continuous figure 8
    probabilities = shipped.online_probabilities([[loop, slash], [eight]])
    assert probabilities[0].argmax() == 0 and probabilities[1].argmax() == 8


def test_stroke_input_is_read_by_both_views_and_pixels_by_the_image_alone(shipped):
    drawing = {"width": 280, "height": 280, "brush": 16, "strokes": [[[110, 40], [110, 240]]]}
    by_strokes = shipped.recognize_strokes(drawing)
    assert by_strokes.views == ("image", "online") and by_strokes.to_dict()["views"] == ["image", "online"]
    picture = strokes.canvas_form(
        strokes.draw_strokes([np.array([[110.0, 40.0], [110.0, 240.0]])], (280, 280), 16), "transparent"
    )
    by_pixels = shipped.recognize(picture)
    assert by_pixels.views == ("image",) and by_pixels.text == by_strokes.text == "1"
    # The combined probabilities are the image's and the online model's, weighted as the metrics file says.
    image_only = Recognizer(online_model=None).recognize_strokes(drawing).digits[0].probabilities
    pen = shipped.online_probabilities([[np.array([[110.0, 40.0], [110.0, 240.0]])]])
    expected = online.combine(np.array([image_only]), pen, shipped.online_weight)[0]
    np.testing.assert_allclose(by_strokes.digits[0].probabilities, expected, rtol=1e-4, atol=1e-6)


def test_a_missing_or_stale_online_export_falls_back_to_the_image_alone(tmp_path):
    recognizer = Recognizer(online_model=tmp_path / "online_model.keras")
    assert recognizer.online_unavailable.startswith("online_model.keras is missing")
    result = recognizer.recognize_strokes({"width": 280, "height": 280, "strokes": [[[110, 40], [110, 240]]]})
    assert result.views == ("image",) and result.text == "1"


def test_quick_online_training_runs_end_to_end(tmp_path, mnist_dir):
    output = tmp_path / "online.keras"
    completed = run_script(
        "train_online.py", "--quick", "--data-dir", mnist_dir.parent, "--output", output, "--verbose", "0", timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    metrics = json.loads(metrics_path_for(output).read_text())
    assert metrics["quick_mode"] and 0.0 <= metrics["image_weight"] <= 1.0
    assert set(metrics["cross_fitted"]) == {"first_half", "second_half"}
    import keras

    model = keras.saving.load_model(output, compile=False)
    probabilities = np.asarray(model(online.trajectory_features([np.array([[0.0, 0.0], [0.0, 1.0]])])[None]))
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-5)
