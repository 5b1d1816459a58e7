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


# ---------------------------------------------------------------------------
# Stroke files and digits told apart by their strokes


def ellipse(centre_x, centre_y, radius_x, radius_y, points=40):
    angles = np.linspace(0, 2 * np.pi, points)
    return np.stack([centre_x + radius_x * np.cos(angles), centre_y + radius_y * np.sin(angles)], axis=1).tolist()


FOUR = [[[45, 60], [32, 150], [105, 150]], [[92, 60], [92, 222]]]  # an open 4 in two strokes
ONE = [[[170, 60], [170, 222]]]
FIVE_BAR_LAST = [[[62, 60], [56, 132], [104, 120], [124, 162], [104, 212], [50, 206]], [[62, 60], [132, 60]]]
SEVEN_BAR_LAST = [[[40, 60], [120, 60], [70, 220]], [[60, 140], [112, 140]]]


def plain(*strokes_lists, brush=16, width=280):
    return {"width": width, "height": 280, "brush": brush, "strokes": [s for group in strokes_lists for s in group]}


def digit_groups(payload):
    drawing = strokes.parse_drawing(payload)
    boxes = [strokes.stroke_box(stroke, drawing.brush) for stroke in drawing.strokes]
    import segmentation

    return segmentation.group_boxes(boxes)


def test_strokes_are_grouped_into_digits_by_geometry():
    assert digit_groups(plain(FOUR, ONE)) == [[0, 1], [2]]  # a two-stroke 4 beside a 1
    assert digit_groups(plain(FIVE_BAR_LAST)) == [[0, 1]]  # a 5 whose bar comes last
    assert digit_groups(plain(SEVEN_BAR_LAST)) == [[0, 1]]  # a crossed 7, the bar drawn last
    # Touching 00: the loops' inked boxes overlap by a few pixels, yet each stroke stays its own digit.
    touching = plain([ellipse(80, 140, 36, 60), ellipse(151, 140, 36, 60)])
    assert digit_groups(touching) == [[0], [1]]


def test_stroke_files_are_read_as_their_digits(recognizer):
    assert recognizer.recognize_strokes(plain(FOUR, ONE)).text == "41"
    assert recognizer.recognize_strokes(plain(FIVE_BAR_LAST)).text == "5"
    touching = recognizer.recognize_strokes(plain([ellipse(80, 140, 36, 60), ellipse(151, 140, 36, 60)]))
    assert touching.text == "00" and touching.split_by == "strokes"
    assert [box[0] for box in (digit.box for digit in touching.digits)] == sorted(
        box[0] for box in (digit.box for digit in touching.digits)
    )


def test_a_stroke_within_another_strokes_width_is_never_cut_off_as_a_digit():
    # Boxes (x0, y0, x1, y1): a loop 40-120 wide, a slash 70-90 inside its width, a 1 beside it at 150-160.
    boxes = [(40, 60, 120, 220), (70, 40, 90, 240), (150, 60, 160, 220)]
    units, group_of = [0, 1, 2], {0: 0, 1: 0, 2: 1}
    assert strokes._inside_neighbour(units, 1, group_of, boxes)  # the slash lies within the loop's width
    side_by_side = [(40, 60, 100, 220), (95, 60, 150, 220)]  # touching digits overlap a little, nothing more
    assert not strokes._inside_neighbour([0, 1], 1, {0: 0, 1: 0}, side_by_side)


def test_a_slashed_zero_is_one_digit(recognizer):
    # A zero and a slash across it, drawn after it and a little longer: alone, the slash reads as a confident 1.
    slash = [[150, 60], [90, 220]]
    result = recognizer.recognize_strokes(plain([ellipse(120, 140, 36, 60), slash]))
    assert len(result.digits) == 1 and result.text == "0"


def test_touching_digits_from_strokes_match_each_digit_drawn_alone(recognizer):
    """Reading touching digits by strokes gives each digit exactly the image it gets when drawn by itself."""
    left, right = ellipse(80, 140, 36, 60), ellipse(151, 140, 36, 60)
    together = recognizer.recognize_strokes(plain([left, right]))
    alone = recognizer.recognize_strokes(plain([right]))
    np.testing.assert_allclose(together.digits[1].image, alone.digits[0].image)


def test_canvas_json_data_paths_are_read_like_plain_strokes():
    """The canvas's Path objects (M, Q, L commands) give the points they pass through."""
    objects = {
        "objects": [
            {"type": "Path", "strokeWidth": 12, "path": [["M", 10, 20], ["Q", 10, 20, 30, 40], ["L", 50, 60]]},
            {"type": "rect", "left": 0},  # not a stroke: skipped
        ]
    }
    drawing = strokes.parse_drawing(objects, width=280, height=280)
    assert drawing.brush == 12 and len(drawing.strokes) == 1 and (drawing.width, drawing.height) == (280, 280)
    points = drawing.strokes[0]
    np.testing.assert_allclose(points[0], [10, 20])
    np.testing.assert_allclose(points[-1], [50, 60])
    np.testing.assert_allclose(points[strokes.CURVE_STEPS], [30, 40])  # the quadratic ends where it should
    curve = strokes.parse_drawing({"objects": [{"type": "path", "path": [["M", 0, 0], ["Q", 10, 0, 10, 10]]}]})
    # Half way along a quadratic Bezier: (P0 + 2 P1 + P2) / 4 (CURVE_STEPS is even, so t = 1/2 is sampled).
    assert strokes.CURVE_STEPS % 2 == 0
    assert any(np.allclose(point, [7.5, 2.5]) for point in curve.strokes[0])


def test_a_saved_drawing_reads_back_exactly():
    drawing = strokes.parse_drawing(plain(FOUR, ONE, brush=18))
    again = strokes.parse_drawing(drawing.to_json())
    assert (again.width, again.height, again.brush) == (280, 280, 18)
    for first, second in zip(drawing.strokes, again.strokes):
        np.testing.assert_allclose(first, second, atol=0.005)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\xff\xfe not json", "not a JSON stroke file"),
        ("[1, 2]", "JSON object"),
        ({"lines": []}, "needs 'strokes'"),
        ({"strokes": "abc"}, "'strokes' must be a list"),
        ({"strokes": [[[1, 2], [3]]]}, r"stroke 1, point 2: expected \[x, y\]"),
        ({"strokes": [[[1, float("nan")]]]}, "finite number"),
        ({"strokes": [[[1, 2]]], "brush": -3}, "'brush' must be between"),
        ({"strokes": [[[1, 2]]], "width": 1e9, "height": 10}, "1-10000 px"),
        ({"strokes": [[[0, 0]]] * (strokes.MAX_STROKES + 1)}, "at most 500"),
        ({"objects": [{"type": "path", "path": [["A", 1, 2, 3]]}]}, "cannot read the path command"),
    ],
)
def test_bad_stroke_files_are_refused_with_the_reason(payload, message):
    with pytest.raises(strokes.StrokeError, match=message):
        strokes.parse_drawing(payload)


def test_points_off_the_canvas_are_held_at_its_edge_and_empty_drawings_read_nothing(recognizer):
    drawing = strokes.parse_drawing({"width": 100, "height": 100, "strokes": [[[-50, 20], [150, 20]]]})
    assert drawing.strokes[0].min() >= 0 and drawing.strokes[0].max() <= 100
    assert recognizer.recognize_strokes({"width": 280, "height": 280, "strokes": []}).status == "empty"


def test_a_flag_rises_from_the_lower_left_to_the_stem_top_then_the_pen_goes_down():
    stem = np.array([[100.0, 240.0], [100.0, 140.0], [100.0, 40.0]])  # a 1 drawn upwards
    rng = np.random.default_rng(0)
    for _ in range(50):
        (flagged,) = strokes.with_flag([stem], rng)
        flag, down = flagged[: len(flagged) - 3], flagged[len(flagged) - 3 :]
        np.testing.assert_allclose(down, stem[::-1])  # the stem, now top to bottom, is kept as it was
        start = flag[0]
        rise = np.degrees(np.arctan2(start[1] - 40.0, 100.0 - start[0]))  # y down: a rise to the top is positive
        length = np.hypot(100.0 - start[0], start[1] - 40.0)
        assert start[0] < 100.0 and strokes.FLAG_ANGLE_DEGREES[0] - 1 <= rise <= strokes.FLAG_ANGLE_DEGREES[1] + 1
        assert 200 * strokes.FLAG_LENGTH[0] - 1e-6 <= length <= 200 * strokes.FLAG_LENGTH[1] + 1e-6
