"""Pen strokes drawn the way the app's canvas draws them.

    ink = draw_strokes(strokes, (280, 280), brush=20)        # uint8 ink map, 255 = ink
    canvas = canvas_form(ink, "transparent")                  # the RGBA array st_canvas returns
    placed, brush = place_strokes(strokes, rng)               # random size and position

A stroke is a (K, 2) array of (x, y) points, y pointing down, in drawing order.
The canvas (Fabric.js's pencil brush) paints each stroke as a path with round
caps and joins; cv2.polylines with LINE_AA and a thickness does the same.
Training, the dev set and the tests all draw pen data through this module, so
the model sees what the app will see.
"""

import cv2
import numpy as np

CANVAS_SIZE = (280, 280)  # (height, width) of the app's drawing canvas
FORMS = ("transparent", "white_on_black", "black_on_white")  # what the canvas can return
BRUSH = (8, 32)  # px, the canvas's usual stroke widths (the app's slider runs 6-40)
HEIGHT_FRACTION = (0.30, 0.90)  # how much of the canvas height one digit fills
# A person keeps a digit's loops open: with a brush wider than a fifth of the digit's
# height even people cannot read it, so big brushes come with big digits.
MAX_BRUSH_PER_HEIGHT = 0.2
EDGE_MARGIN = 2  # px kept free at the canvas edge: antialiasing reaches a pixel past the brush
SUBPIXEL_BITS = 4  # cv2 drawing at 1/16 px so that scaled coordinates are not rounded


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


def place_strokes(strokes, rng, canvas_size=CANVAS_SIZE, brush_range=BRUSH, height_fraction=HEIGHT_FRACTION):
    """The strokes scaled and moved to a random size and place fully inside the canvas, and the brush.

    Sizes are set by the digit's height, as people write: a 1 stays narrow.
    """
    canvas_height, canvas_width = canvas_size
    brush, drawn_height = brush_and_height(rng, brush_range, canvas_height - 2 * EDGE_MARGIN, height_fraction)
    left, top, width, height = strokes_box(strokes)
    scale = (drawn_height - brush) / max(height, width / 4, 1e-6)  # a flat dash is sized by its length
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
