"""The dev-set generator: thinning, brush drawing, canvas forms, numbers, photos, determinism."""

import cv2
import numpy as np
import pytest

import datasets
import strokes
from benchmarks import devset


@pytest.fixture(scope="module")
def test_set(mnist_dir):
    _, (images, labels) = datasets.load_mnist(mnist_dir)
    return images, labels


def ring_digit():
    """A hand-made '0': a white ring on black, 28x28 uint8 like MNIST."""
    image = np.zeros((28, 28), np.uint8)
    cv2.ellipse(image, (14, 14), (6, 9), 0, 0, 360, 255, thickness=3)
    return image


def reference_zhang_suen(mask):
    """Zhang and Suen's thinning written pixel by pixel, as in their 1984 paper."""
    image = np.pad(mask.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            removals = []
            for row in range(1, image.shape[0] - 1):
                for column in range(1, image.shape[1] - 1):
                    if not image[row, column]:
                        continue
                    p2, p3, p4 = image[row - 1, column], image[row - 1, column + 1], image[row, column + 1]
                    p5, p6, p7 = image[row + 1, column + 1], image[row + 1, column], image[row + 1, column - 1]
                    p8, p9 = image[row, column - 1], image[row - 1, column - 1]
                    ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
                    transitions = sum(ring[k] == 0 and ring[k + 1] == 1 for k in range(8))
                    if step == 0:
                        sides = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
                    else:
                        sides = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
                    if 2 <= sum(ring[:8]) <= 6 and transitions == 1 and sides:
                        removals.append((row, column))
            for row, column in removals:
                image[row, column] = 0
            changed = changed or bool(removals)
    return image[1:-1, 1:-1].astype(bool)


def test_skeleton_of_a_thick_bar_is_its_middle_line():
    bar = np.zeros((11, 40), bool)
    bar[1:10, 2:38] = True
    skeleton = devset.skeletonise(bar)
    assert set(np.nonzero(skeleton)[0]) == {5}  # the bar's middle row only
    assert skeleton[5, 10:30].all()


def test_skeletonise_matches_the_pixel_by_pixel_algorithm(test_set):
    images, _ = test_set
    for image in images[:8]:
        mask = image > 127
        np.testing.assert_array_equal(devset.skeletonise(mask), reference_zhang_suen(mask))


def test_brush_draws_a_round_stroke_of_its_width():
    skeleton = np.zeros((5, 20), bool)
    skeleton[2, 5:16] = True  # a horizontal line from column 5 to 15
    canvas = np.zeros((100, 200), np.uint8)
    ink = devset.draw_with_brush(canvas, skeleton, brush=9, scale=10, origin=np.array([20.0, 20.0]))
    rows, columns = np.nonzero(ink > 127)
    # The line runs from x = 70 to 170 at y = 40; round caps add half the brush at each end.
    assert abs(columns.min() - (70 - 4.5)) <= 1 and abs(columns.max() - (170 + 4.5)) <= 1
    assert abs(rows.min() - (40 - 4.5)) <= 1 and abs(rows.max() - (40 + 4.5)) <= 1


def test_canvas_forms_hold_the_same_drawing():
    forms = {form: devset.make_canvas_digit(ring_digit(), np.random.default_rng(3), form) for form in strokes.FORMS}
    for canvas in forms.values():
        assert canvas.shape == (280, 280, 4) and canvas.dtype == np.uint8
    ink = forms["transparent"][..., 3]
    assert (forms["transparent"][..., :3] == 0).all()  # black ink, the colour lives in the alpha
    np.testing.assert_array_equal(forms["white_on_black"][..., 0], ink)
    np.testing.assert_array_equal(forms["black_on_white"][..., 0], 255 - ink)
    assert (forms["white_on_black"][..., 3] == 255).all() and (forms["black_on_white"][..., 3] == 255).all()


@pytest.mark.parametrize("brush_range", [devset.BRUSH, devset.THIN_PEN, devset.THICK_MARKER])
def test_canvas_digit_is_fully_inside_and_sized_like_a_drawing(test_set, brush_range):
    images, _ = test_set
    rng = np.random.default_rng(4)
    for image in images[:20]:
        ink = devset.make_canvas_digit(image, rng, brush_range=brush_range)[..., 3]
        assert ink[0].max() == ink[-1].max() == ink[:, 0].max() == ink[:, -1].max() == 0
        rows = np.flatnonzero(ink.max(axis=1) > 127)
        height = rows[-1] - rows[0] + 1
        assert 0.3 * 280 - 3 <= height <= 0.9 * 280 + 3


def test_number_digits_stand_apart_unless_they_touch():
    digits = np.stack([ring_digit()] * 4)
    for touch_probability, expected_runs in ((0.0, 4), (1.0, 1)):
        canvas = devset.make_number(digits, np.random.default_rng(5), touch_probability=touch_probability)
        assert canvas.shape[0] == 280 and canvas.shape[1] >= 560
        ink_columns = (canvas[..., 3] > 0).any(axis=0).astype(np.int8)
        runs = int((np.diff(ink_columns) == 1).sum())  # the canvas edge is empty, so each run starts once
        assert runs == expected_runs


def test_photos_are_light_paper_or_a_dark_board_with_a_contrasting_digit():
    paper = devset.make_photo(ring_digit(), np.random.default_rng(6))
    board = devset.make_photo(ring_digit(), np.random.default_rng(6), inverted=True)
    for photo in (paper, board):
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8
        assert 240 <= photo.shape[0] <= 480 and 240 <= photo.shape[1] <= 480
    paper_grey, board_grey = paper.mean(axis=2), board.mean(axis=2)
    assert np.median(paper_grey) > 127 and np.percentile(paper_grey, 0.5) < np.median(paper_grey) - 50
    assert np.median(board_grey) < 127 and np.percentile(board_grey, 99.5) > np.median(board_grey) + 50


def test_seeds_way_resizes_the_whole_canvas_white_on_black():
    ink = np.zeros((280, 280), np.uint8)
    ink[100:200, 30:130] = 255  # a square covering 28x28 pixels 10..19 and 3..12
    expected = np.zeros((28, 28), np.float32)
    expected[10:20, 3:13] = 1
    for form in strokes.FORMS:
        np.testing.assert_allclose(devset.seeds_way(devset.canvas_form(ink, form))[..., 0], expected, atol=1e-6)


def test_samples_are_deterministic_and_labelled(test_set):
    images, labels = test_set
    first = devset.condition_samples("numbers", images, labels, 5, seed=11)
    again = devset.condition_samples("numbers", images, labels, 5, seed=11)
    other = devset.condition_samples("numbers", images, labels, 5, seed=12)
    for (image, text), (image_again, text_again) in zip(first, again):
        assert text == text_again and text.isdigit() and 2 <= len(text) <= 6
        np.testing.assert_array_equal(image, image_again)
    assert [text for _, text in first] != [text for _, text in other]


def test_pen_numbers_place_one_writer_s_digits_left_to_right():
    bar = [np.array([[0.0, 0.0], [0.0, 40.0]])]  # a one-stroke 1
    ring = [np.array([[10 * np.cos(t), 20 + 20 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 30)])]
    for touch_probability, expected_runs in ((0.0, 3), (1.0, 1)):
        canvas = devset.make_pen_number([bar, ring, bar], np.random.default_rng(2), touch_probability=touch_probability)
        assert canvas.shape[0] == 280 and canvas.shape[1] >= 560
        ink_columns = (canvas[..., 3] > 0).any(axis=0).astype(np.int8)
        assert int((np.diff(ink_columns) == 1).sum()) == expected_runs
    canvas = devset.make_pen_number([bar, ring, bar], np.random.default_rng(2), touch_probability=0.0)
    columns = (canvas[..., 3] > 127).any(axis=0)
    widths = np.diff(np.flatnonzero(np.diff(columns.astype(np.int8)) != 0))[::2]
    assert widths[1] > 2 * max(widths[0], widths[2])  # bar, ring, bar in that order: the ring is widest


@pytest.fixture(scope="module")
def pen_writers(mnist_dir):
    return devset.load_pen_writers(mnist_dir.parent)


def test_pen_conditions_use_only_validation_writers(pen_writers, test_set):
    import datasets

    held_out = datasets.unipen_validation_writers(pen_writers.digits)
    assert set(pen_writers.samples_by_writer) == held_out
    for indices in pen_writers.samples_by_writer.values():
        assert set(pen_writers.digits.writers[indices]) <= held_out
    images, labels = test_set
    first = devset.condition_samples("pen numbers", images, labels, 4, 11, pen_writers)
    again = devset.condition_samples("pen numbers", images, labels, 4, 11, pen_writers)
    for (image, text), (image_again, text_again) in zip(first, again):
        assert text == text_again and text.isdigit() and 2 <= len(text) <= 6
        np.testing.assert_array_equal(image, image_again)
    single = devset.condition_samples("pen white on black", images, labels, 3, 11, pen_writers)
    for image, text in single:
        assert image.shape == (280, 280, 4) and len(text) == 1 and image[..., 3].min() == 255


def test_stroke_conditions_are_the_pixel_conditions_own_drawings(pen_writers, test_set):
    """'..., strokes' and '..., pixels' number conditions hold the very same drawings, as strokes and as pixels."""
    images, labels = test_set
    as_strokes = devset.condition_samples("pen numbers touching, strokes", images, labels, 3, 5, pen_writers)
    as_pixels = devset.condition_samples("pen numbers touching, pixels", images, labels, 3, 5, pen_writers)
    for (drawing, text), (canvas, same_text) in zip(as_strokes, as_pixels):
        assert text == same_text
        np.testing.assert_array_equal(devset.drawing_canvas(drawing), canvas)
        # Touching: neighbouring digits' inked boxes are between 8 px overlapping and just touching.
        assert canvas.shape[1] >= 560 and len(drawing.strokes) >= len(text)
