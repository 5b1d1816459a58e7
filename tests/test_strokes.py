"""Drawing pen strokes as the canvas draws them, checked against geometry worked out by hand."""

import numpy as np
import pytest

import strokes


def test_a_line_is_painted_with_the_brush_width_and_round_caps():
    ink = strokes.draw_strokes([np.array([[40.0, 50.0], [160.0, 50.0]])], (100, 200), brush=20)
    column = ink[:, 100] > 127
    assert column.sum() == pytest.approx(20, abs=1)  # as wide as the brush
    assert np.flatnonzero(column).mean() == pytest.approx(50, abs=0.5)
    row = np.flatnonzero(ink[50] > 127)
    # Round caps reach half a brush past each end point.
    assert row.min() == pytest.approx(30, abs=1) and row.max() == pytest.approx(170, abs=1)
    assert ink[35, 32] < 128  # ...but the cap is round, not square: its corner stays empty


def test_a_tap_is_a_round_dot_as_wide_as_the_brush():
    ink = strokes.draw_strokes([np.array([[50.0, 50.0]]), np.array([[20.0, 20.0], [20.0, 20.0]])], (100, 100), 10)
    rows, columns = np.nonzero(ink[30:70, 30:70] > 127)
    assert np.ptp(rows) + 1 == pytest.approx(10, abs=1) and np.ptp(columns) + 1 == pytest.approx(10, abs=1)
    assert ink[20, 20] == 255  # a stroke that never moves is a dot too


@pytest.mark.parametrize("form", strokes.FORMS)
def test_canvas_forms_carry_the_ink(form):
    ink = np.zeros((4, 4), np.uint8)
    ink[1, 2] = 255
    canvas = strokes.canvas_form(ink, form)
    assert canvas.shape == (4, 4, 4) and canvas.dtype == np.uint8
    if form == "transparent":
        assert canvas[1, 2, 3] == 255 and canvas[0, 0, 3] == 0 and not canvas[..., :3].any()
    elif form == "white_on_black":
        assert canvas[1, 2, :3].tolist() == [255] * 3 and canvas[0, 0, :3].tolist() == [0] * 3
    else:
        assert canvas[1, 2, :3].tolist() == [0] * 3 and canvas[0, 0, :3].tolist() == [255] * 3
    with pytest.raises(ValueError, match="form must be one of"):
        strokes.canvas_form(ink, "purple")


def test_placed_digits_fit_inside_the_canvas_at_the_asked_height():
    rng = np.random.default_rng(3)
    seven = [np.array([[0.0, 0.0], [60.0, 0.0], [20.0, 100.0]])]
    for _ in range(50):
        placed, brush = strokes.place_strokes(seven, rng, (280, 280), (8, 32), (0.3, 0.9))
        left, top, width, height = strokes.strokes_box(placed)
        assert left - brush / 2 >= strokes.EDGE_MARGIN - 1e-6 and top - brush / 2 >= strokes.EDGE_MARGIN - 1e-6
        assert left + width + brush / 2 <= 280 - strokes.EDGE_MARGIN + 1e-6
        assert top + height + brush / 2 <= 280 - strokes.EDGE_MARGIN + 1e-6
        assert 0.3 * 276 - 1e-6 <= height + brush <= 0.9 * 276 + 1e-6
        assert width / height == pytest.approx(0.6)  # the shape is kept
        assert brush <= strokes.MAX_BRUSH_PER_HEIGHT * (height + brush) + 1e-6 or height + brush >= 0.9 * 276 - 1


def test_a_quarter_turn_and_a_slant_move_points_where_expected():
    turned = strokes.transform_strokes([np.array([[1.0, 0.0]])], [[0, -1], [1, 0]])
    np.testing.assert_allclose(turned[0], [[0.0, 1.0]])  # y points down: x turns into y
    rng = np.random.default_rng(0)
    linear = strokes.random_linear_map(rng, 0, 0, (1.0, 1.0))
    np.testing.assert_allclose(linear, np.eye(2))  # no turn, slant or stretch asked: none given
