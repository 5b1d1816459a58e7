"""Pen strokes: read from stroke files, drawn the way the app's canvas draws them, split into digits.

    drawing = parse_drawing(json_text)                        # canvas json_data or the plain form
    prepared = prepare_drawing(drawing)                       # digits found from the strokes themselves
    ink = draw_strokes(strokes, (280, 280), brush=20)        # uint8 ink map, 255 = ink
    canvas = canvas_form(ink, "transparent")                  # the RGBA array st_canvas returns
    placed, brush = place_strokes(strokes, rng)               # random size and position

A stroke is a (K, 2) array of (x, y) points, y pointing down, in drawing order.
The canvas (Fabric.js's pencil brush) paints each stroke as a path with round
caps and joins; cv2.polylines with LINE_AA and a thickness does the same.
Training, the dev set and the tests all draw pen data through this module, so
the model sees what the app will see.

The plain stroke file is {"width": W, "height": H, "brush": B, "strokes":
[[[x, y], ...], ...]} in canvas pixels (brush optional); the canvas's own
json_data ({"objects": [{"type": "Path", "path": [["M", x, y], ["Q", ...], ...],
"strokeWidth": B}, ...]}) is read too.
"""

import json
import math
from dataclasses import dataclass

import cv2
import numpy as np

import preprocessing
import segmentation

CANVAS_SIZE = (280, 280)  # (height, width) of the app's drawing canvas
FORMS = ("transparent", "white_on_black", "black_on_white")  # what the canvas can return
BRUSH = (8, 32)  # px, the canvas's usual stroke widths (the app's slider runs 6-40)
HEIGHT_FRACTION = (0.30, 0.90)  # how much of the canvas height one digit fills
# A person keeps a digit's loops open: with a brush wider than a fifth of the digit's
# height even people cannot read it, so big brushes come with big digits.
MAX_BRUSH_PER_HEIGHT = 0.2
EDGE_MARGIN = 2  # px kept free at the canvas edge: antialiasing reaches a pixel past the brush
SUBPIXEL_BITS = 4  # cv2 drawing at 1/16 px so that scaled coordinates are not rounded

DEFAULT_BRUSH = 20  # px: the app's default brush, for stroke files that do not say theirs
MAX_STROKES = 500  # more strokes than this is not a handwritten number
MAX_POINTS = 200_000  # points in all strokes: a long, slow number has a few thousand
MAX_CANVAS_SIDE = 10_000  # px: no canvas is larger; a bigger width or height is a mistake
MAX_BRUSH = 400  # px
CURVE_STEPS = 4  # points per quadratic or cubic segment of a canvas path: smooth at any brush
STROKE_WORK_SIDE = preprocessing.WORK_SIDE  # larger drawings are scaled down to this before drawing digits


def strokes_box(strokes):
    """(left, top, width, height) of all the strokes' points."""
    points = np.concatenate([np.asarray(stroke, dtype=np.float64).reshape(-1, 2) for stroke in strokes])
    low, high = points.min(axis=0), points.max(axis=0)
    return low[0], low[1], high[0] - low[0], high[1] - low[1]


def transform_strokes(strokes, matrix):
    """The strokes under a 2x2 linear map (rotation, slant, aspect), as float64 arrays."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return [np.asarray(stroke, dtype=np.float64).reshape(-1, 2) @ matrix.T for stroke in strokes]


def draw_strokes(strokes, canvas_size, brush, ink=None):
    """Paint the strokes (canvas pixels) with a round antialiased brush into a uint8 ink map."""
    if ink is None:
        ink = np.zeros(canvas_size, dtype=np.uint8)
    scale = 1 << SUBPIXEL_BITS
    thickness = max(1, int(round(brush)))
    for stroke in strokes:
        points = np.round(np.asarray(stroke, dtype=np.float64).reshape(-1, 2) * scale).astype(np.int32)
        if len(points) == 0:
            continue
        if len(points) == 1 or not np.any(points != points[0]):
            # A tap: the canvas paints a dot as wide as the brush.
            centre = tuple(int(value) for value in points[0])
            cv2.circle(ink, centre, max(1, thickness * scale // 2), 255, -1, cv2.LINE_AA, SUBPIXEL_BITS)
        else:
            cv2.polylines(ink, [points], False, 255, thickness, cv2.LINE_AA, SUBPIXEL_BITS)
    return ink


def canvas_form(ink, form):
    """The RGBA array streamlit-drawable-canvas returns for a uint8 ink map in one of FORMS."""
    canvas = np.empty(ink.shape + (4,), dtype=np.uint8)
    if form == "transparent":  # its default: black strokes on a transparent background
        canvas[..., :3] = 0
        canvas[..., 3] = ink
    elif form == "white_on_black":
        canvas[..., :3] = ink[..., None]
        canvas[..., 3] = 255
    elif form == "black_on_white":
        canvas[..., :3] = 255 - ink[..., None]
        canvas[..., 3] = 255
    else:
        raise ValueError(f"form must be one of {FORMS}, not {form!r}")
    return canvas


def brush_and_height(rng, brush_range, available_height, height_fraction):
    """A brush width and a drawn digit height (brush included) that leave the digit's loops open."""
    brush = int(rng.integers(brush_range[0], brush_range[1] + 1))
    low, high = height_fraction[0] * available_height, height_fraction[1] * available_height
    low = min(max(low, brush / MAX_BRUSH_PER_HEIGHT), high)
    return brush, rng.uniform(low, high)


def digit_scale(box, drawn_height, brush):
    """The scale that draws strokes with this (left, top, width, height) box drawn_height tall, brush included.

    Sized by the height, as people write (a 1 stays narrow); a flat dash by its length.
    """
    _, _, width, height = box
    return (drawn_height - brush) / max(height, width / 4, 1e-6)


def place_strokes(strokes, rng, canvas_size=CANVAS_SIZE, brush_range=BRUSH, height_fraction=HEIGHT_FRACTION):
    """The strokes scaled and moved to a random size and place fully inside the canvas, and the brush.

    Sizes are set by the digit's height, as people write: a 1 stays narrow.
    """
    canvas_height, canvas_width = canvas_size
    brush, drawn_height = brush_and_height(rng, brush_range, canvas_height - 2 * EDGE_MARGIN, height_fraction)
    box = left, top, width, height = strokes_box(strokes)
    scale = digit_scale(box, drawn_height, brush)
    drawn_width = width * scale + brush
    room = canvas_width - 2 * EDGE_MARGIN
    if drawn_width > room:  # a wide digit on a narrow canvas: shrink it
        scale *= (room - brush) / max(drawn_width - brush, 1e-6)
        drawn_width = width * scale + brush
    drawn_height = height * scale + brush
    x = EDGE_MARGIN + rng.uniform(0, max(0.0, canvas_width - 2 * EDGE_MARGIN - drawn_width)) + brush / 2
    y = EDGE_MARGIN + rng.uniform(0, max(0.0, canvas_height - 2 * EDGE_MARGIN - drawn_height)) + brush / 2
    origin = np.array([x - scale * left, y - scale * top])
    return [origin + scale * np.asarray(stroke, dtype=np.float64).reshape(-1, 2) for stroke in strokes], brush


def random_linear_map(rng, max_rotation_degrees, max_shear, aspect_range):
    """A random 2x2 map that turns, slants and narrows or widens a digit, as hands differ."""
    angle = np.deg2rad(rng.uniform(-max_rotation_degrees, max_rotation_degrees))
    shear = rng.uniform(-max_shear, max_shear)
    aspect = np.exp(rng.uniform(*np.log(aspect_range)))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return rotation @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([aspect, 1.0])


# A flagged 1 (with_flag), as many Europeans write it: a 7's bar runs flat from the top left, the flag
# rises to the stem's top from the lower left.
FLAG_LENGTH = (0.2, 0.55)  # of the digit's height
FLAG_ANGLE_DEGREES = (20, 60)  # above the horizontal, rising towards the stem's top
FLAG_BEND = 0.1  # of the flag's length: a slightly curved flag
MIN_FLAG_HEIGHT = 1e-6  # a 1 that is a dot has no height: keep the flag's length finite


def with_flag(sample_strokes, rng):
    """A one-stroke 1 written with a flag: the pen rises from the lower left to the stem's top, then goes down."""
    stem = np.asarray(sample_strokes[0], dtype=np.float64)
    if stem[0, 1] > stem[-1, 1]:  # drawn upwards: the flag joins the end that is on top
        stem = stem[::-1]
    height = max(float(np.ptp(stem[:, 1])), MIN_FLAG_HEIGHT)
    length = rng.uniform(*FLAG_LENGTH) * height
    angle = np.deg2rad(rng.uniform(*FLAG_ANGLE_DEGREES))
    top = stem[0]
    start = top + length * np.array([-np.cos(angle), np.sin(angle)])
    bend = rng.uniform(-FLAG_BEND, FLAG_BEND) * length
    along = np.linspace(0, 1, int(rng.integers(5, 12)))[:-1, None]  # the last point, the stem's top, is the stem's
    flag = start + along * (top - start) + bend * 4 * along * (1 - along) * np.array([np.sin(angle), np.cos(angle)])
    return [np.vstack([flag, stem]), *sample_strokes[1:]]


# ---------------------------------------------------------------------------
# Stroke files


class StrokeError(ValueError):
    """A stroke file or payload that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Drawing:
    """Strokes in canvas pixels (y down, drawing order), the canvas size and the brush width."""

    width: float
    height: float
    brush: float
    strokes: tuple  # of float64 (K, 2) arrays

    def to_json(self):
        """The plain stroke file of this drawing: parse_drawing() reads it back exactly."""
        return json.dumps(
            {
                "width": self.width,
                "height": self.height,
                "brush": self.brush,
                "strokes": [[[round(float(x), 2), round(float(y), 2)] for x, y in stroke] for stroke in self.strokes],
            }
        )


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StrokeError(f"{what} must be a finite number, not {str(value)[:40]!r}")
    return float(value)


def _points(raw, what):
    """A (K, 2) float64 array from a list of [x, y] pairs."""
    if not isinstance(raw, list):
        raise StrokeError(f"{what} must be a list of [x, y] points")
    points = np.empty((len(raw), 2))
    for index, point in enumerate(raw):
        if not isinstance(point, (list, tuple)) or len(point) < 2:
            raise StrokeError(f"{what}, point {index + 1}: expected [x, y], got {str(point)[:40]}")
        points[index] = (
            _number(point[0], f"{what}, point {index + 1}: x"),
            _number(point[1], f"{what}, point {index + 1}: y"),
        )
    return points


def _path_points(path, what):
    """The points of a Fabric.js path (M, L, Q, C commands), curves sampled at CURVE_STEPS points."""
    if not isinstance(path, list):
        raise StrokeError(f"{what}: 'path' must be a list of commands")
    points, current = [], None
    steps = np.linspace(0, 1, CURVE_STEPS + 1)[1:, None]
    for command in path:
        if not isinstance(command, list) or not command or not isinstance(command[0], str):
            raise StrokeError(f"{what}: path commands look like ['M', x, y], not {str(command)[:40]}")
        letter, numbers = command[0].upper(), [_number(value, f"{what}: a path coordinate") for value in command[1:]]
        pairs = np.array(numbers).reshape(-1, 2) if len(numbers) % 2 == 0 else None
        if letter in ("M", "L") and pairs is not None and len(pairs) == 1:
            points.append(pairs)
            current = pairs[0]
        elif letter == "Q" and pairs is not None and len(pairs) == 2 and current is not None:
            control, end = pairs
            points.append((1 - steps) ** 2 * current + 2 * (1 - steps) * steps * control + steps**2 * end)
            current = end
        elif letter == "C" and pairs is not None and len(pairs) == 3 and current is not None:
            first, second, end = pairs
            points.append(
                (1 - steps) ** 3 * current
                + 3 * (1 - steps) ** 2 * steps * first
                + 3 * (1 - steps) * steps**2 * second
                + steps**3 * end
            )
            current = end
        elif letter == "Z":
            continue
        else:
            raise StrokeError(f"{what}: cannot read the path command {str(command)[:40]}")
    return np.concatenate(points) if points else np.zeros((0, 2))


def parse_drawing(data, width=None, height=None, brush=None):
    """A Drawing from a stroke file's text or bytes, or an already parsed dict.

    Reads the plain form and the canvas's json_data; width, height and brush fill
    in what the file does not say (the canvas's json_data has no size: the
    strokes' extent is used). Raises StrokeError saying what is wrong.
    """
    if isinstance(data, (bytes, bytearray, memoryview, str)):
        try:
            data = json.loads(bytes(data) if not isinstance(data, str) else data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise StrokeError(f"not a JSON stroke file ({type(error).__name__}: {str(error)[:80]})") from None
    if not isinstance(data, dict):
        raise StrokeError("a stroke file is a JSON object with 'strokes' (or the canvas's 'objects')")
    if "strokes" in data:
        raw_strokes = data["strokes"]
        if not isinstance(raw_strokes, list):
            raise StrokeError("'strokes' must be a list of strokes, each a list of [x, y] points")
        if len(raw_strokes) > MAX_STROKES:
            raise StrokeError(f"{len(raw_strokes)} strokes; at most {MAX_STROKES} are read")
        strokes = [_points(stroke, f"stroke {index + 1}") for index, stroke in enumerate(raw_strokes)]
        brush = data.get("brush", brush)
    elif "objects" in data:
        objects = data["objects"]
        if not isinstance(objects, list):
            raise StrokeError("'objects' must be the canvas's list of drawn objects")
        paths = [item for item in objects if isinstance(item, dict) and str(item.get("type", "")).lower() == "path"]
        if len(paths) > MAX_STROKES:
            raise StrokeError(f"{len(paths)} strokes; at most {MAX_STROKES} are read")
        strokes = [_path_points(item.get("path"), f"stroke {index + 1}") for index, item in enumerate(paths)]
        widths = [item.get("strokeWidth") for item in paths if item.get("strokeWidth") is not None]
        brush = widths[0] if widths else brush
    else:
        raise StrokeError(
            "a stroke file needs 'strokes' (a list of strokes of [x, y] points) or the canvas's 'objects'"
        )
    strokes = [stroke for stroke in strokes if len(stroke)]
    if sum(len(stroke) for stroke in strokes) > MAX_POINTS:
        raise StrokeError(f"more than {MAX_POINTS:,} points: too long for a handwritten number")
    brush = _number(DEFAULT_BRUSH if brush is None else brush, "'brush'")
    if not 0 < brush <= MAX_BRUSH:
        raise StrokeError(f"'brush' must be between 0 and {MAX_BRUSH} px, not {brush:g}")
    extent = max((float(stroke.max()) for stroke in strokes), default=0.0) + brush
    width = _number(data.get("width", width if width is not None else extent), "'width'")
    height = _number(data.get("height", height if height is not None else extent), "'height'")
    if not (0 < width <= MAX_CANVAS_SIDE and 0 < height <= MAX_CANVAS_SIDE):
        raise StrokeError(f"the canvas must be 1-{MAX_CANVAS_SIDE} px on each side, not {width:g}x{height:g}")
    # Points off the canvas are where the pen left it: held at its edge, as the canvas does.
    strokes = tuple(np.clip(stroke, 0, (width, height)) for stroke in strokes)
    return Drawing(width, height, brush, strokes)


def stroke_box(stroke, brush):
    """(x0, y0, x1, y1) of a stroke's ink: its points' box grown by half the brush."""
    low, high = stroke.min(axis=0) - brush / 2, stroke.max(axis=0) + brush / 2
    return low[0], low[1], high[0], high[1]


def prepare_drawing(drawing, read=None):
    """preprocessing.Prepared digits of a drawing, split by its strokes instead of its pixels.

    Strokes are grouped into digits with the grouping the ink's pieces get (a 4's two
    strokes, a 5's bar or a 7's cross-bar drawn last join the digit they overlap),
    but each stroke is its own piece even where it touches the next digit's ink:
    touching digits written as separate strokes come apart exactly. With read (the
    models: a function of (N, 28, 28, 1) digits and their N stroke lists giving (N, 10)
    probabilities), neighbouring, overlapping strokes are then regrouped where the
    models read another grouping as more probable (cutting a geometric group costs
    CUT_PENALTY, joining overlapping groups JOIN_PENALTY). Each digit is drawn alone
    and normalised as a canvas digit is.
    """
    empty = np.zeros((1, 1), np.uint8)
    if not drawing.strokes:
        return preprocessing.Prepared(np.zeros((0, 28, 28, 1), np.float32), (), empty, "strokes")
    # Very large canvases are drawn smaller, as the pixel path shrinks big images.
    scale = min(1.0, STROKE_WORK_SIDE / max(drawing.width, drawing.height))
    strokes = [stroke * scale for stroke in drawing.strokes]
    brush = max(drawing.brush * scale, 1.0)
    boxes = [stroke_box(stroke, brush) for stroke in strokes]
    groups = segmentation.group_boxes(boxes)
    doubtful = False
    if read is not None and len(strokes) > 1:
        groups, doubtful = _regroup(groups, strokes, boxes, brush, read)
    digits, digit_boxes, digit_strokes = [], [], []
    speck = max(
        preprocessing.MIN_DIGIT_SIDE * min(drawing.width, drawing.height) * scale, preprocessing.MIN_DIGIT_PIXELS
    )
    for group in groups:
        drawn = draw_group(group, strokes, boxes, brush, speck)
        if drawn is None:
            continue
        digit, (x0, y0, x1, y1) = drawn
        digits.append(digit)
        digit_strokes.append([drawing.strokes[index] for index in sorted(group)])  # in drawing order
        x0, y0, x1, y1 = (value / scale for value in (x0, y0, x1, y1))
        left, top = max(0, math.floor(x0)), max(0, math.floor(y0))
        right, bottom = min(math.ceil(x1), math.ceil(drawing.width)), min(math.ceil(y1), math.ceil(drawing.height))
        digit_boxes.append((left, top, right - left, bottom - top))
    stacked = np.stack(digits)[..., None] if digits else np.zeros((0, 28, 28, 1), np.float32)
    doubt = "cuts" if doubtful else None
    if doubt is None and preprocessing.has_small_digit([(w, h) for _, _, w, h in digit_boxes]):
        doubt = "small"
    return preprocessing.Prepared(stacked, tuple(digit_boxes), empty, "strokes", doubt, tuple(digit_strokes))


MAX_SPAN_STROKES = 4  # a digit has at most this many strokes (a 4 or a crossed 7 has 2-3)
# Joining strokes the geometry kept apart costs nothing, unlike cutting strokes it joined: an open
# 4's two strokes can stand apart like two digits, and each alone reads confidently as a 1 or a 6,
# so the joined digit need only be as likely as the two parts together. Two real digits joined read
# as "not sure" (the model is trained to give squeezed pairs uniform probabilities).
JOIN_PENALTY = 0.0
JOIN_GAP = 0.1  # of the digit height: groups further apart than this are separate digits, whatever the model says


def draw_group(group, strokes, boxes, brush, speck):
    """(28x28 digit, ink box) of some strokes drawn alone, or None for a speck or a dot."""
    x0 = min(boxes[index][0] for index in group)
    y0 = min(boxes[index][1] for index in group)
    x1 = max(boxes[index][2] for index in group)
    y1 = max(boxes[index][3] for index in group)
    if max(x1 - x0, y1 - y0) < speck:
        return None
    left, top = math.floor(x0), math.floor(y0)
    size = (math.ceil(y1) - top + 1, math.ceil(x1) - left + 1)
    ink = draw_strokes([strokes[index] - (left, top) for index in group], size, brush)
    try:
        return preprocessing.mnist_digit(ink), (x0, y0, x1, y1)
    except ValueError:  # only a dot
        return None


def _inside_neighbour(units, position, group_of, boxes):
    """Whether a cut of a group before units[position] would leave a stroke inside the other side's width.

    Digits stand side by side: a stroke that lies within another's left and right
    ends (a zero's slash, a 4's crossing stroke) belongs to its digit, however
    confidently it reads alone.
    """
    group = group_of[units[position]]
    before = [units[index] for index in range(position) if group_of[units[index]] == group]
    after = [units[index] for index in range(position, len(units)) if group_of[units[index]] == group]
    for inner, outer in ((after, before), (before, after)):
        left, right = min(boxes[index][0] for index in outer), max(boxes[index][2] for index in outer)
        if any(left <= boxes[index][0] and boxes[index][2] <= right for index in inner):
            return True
    return False


def _regroup(groups, strokes, boxes, brush, read):
    """The geometric groups revised by the model: (groups, whether another digit count is nearly as likely)."""
    # Units: the strokes, group by group left to right, and left to right inside a group,
    # so that every group and every pair of neighbouring groups is a run of units.
    units = [
        index
        for group in groups
        for index in sorted(group, key=lambda stroke: (boxes[stroke][0] + boxes[stroke][2]) / 2)
    ]
    group_of = {index: number for number, group in enumerate(groups) for index in group}
    extents = [(min(boxes[index][0] for index in group), max(boxes[index][2] for index in group)) for group in groups]
    digit_height = max(box[3] - box[1] for box in boxes)

    def may_join(first, last):
        """Whether units first..last-1 may be one digit: each group boundary inside is between overlapping groups."""
        for position in range(first + 1, last):
            left, right = group_of[units[position - 1]], group_of[units[position]]
            if left != right and extents[right][0] - extents[left][1] > JOIN_GAP * digit_height:
                return False  # digits with space between them are never joined
        return True

    spans, images, span_strokes = {}, [], []
    for start in range(len(units)):
        for end in range(start + 1, min(start + MAX_SPAN_STROKES, len(units)) + 1):
            if not may_join(start, end):
                break
            drawn = draw_group(units[start:end], strokes, boxes, brush, 0)
            if drawn is not None:
                spans[start, end] = len(images)
                images.append(drawn[0])
                span_strokes.append([strokes[index] for index in sorted(units[start:end])])
    if not images:
        return groups, False
    confidences = read(np.stack(images)[..., None], span_strokes).max(axis=1)

    def boundary_cost(position, cut):
        same_group = group_of[units[position - 1]] == group_of[units[position]]
        if same_group:
            if cut and _inside_neighbour(units, position, group_of, boxes):
                return -math.inf
            return preprocessing.CUT_PENALTY if cut else 0.0
        return 0.0 if cut else JOIN_PENALTY

    chosen, margin = segmentation.best_partition(
        len(units), {span: float(confidences[index]) for span, index in spans.items()}, boundary_cost
    )
    # The pixel cuts' threshold holds for strokes too: on the dev set's touching numbers from strokes,
    # a tenth of the right readings and a third of the wrong ones fall below it.
    return [sorted(units[start:end]) for start, end in chosen], margin < preprocessing.DOUBT_MARGIN
