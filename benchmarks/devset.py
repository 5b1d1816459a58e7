"""Accuracy on drawings like users make, next to the seeds' way, per condition.

    python -m benchmarks.devset                          # 500 digits per condition, 200 numbers
    python -m benchmarks.devset --per-condition 100 --model /tmp/q/digit_model.keras

The dev set is built at run time and never stored, from two sources. From the
MNIST test set: each digit is thinned to its skeleton and re-drawn with a round
brush on a canvas (the three forms streamlit-drawable-canvas can return), side
by side into multi-digit numbers, or as a photo of pen on paper. From UNIPEN's
validation writers (never trained on): their own pen strokes drawn on the canvas
as the app draws them, one digit or a number of 2-6 digits by one writer. For
every condition it reports our exact-text accuracy (Recognizer.recognize_many)
beside the seeds' way (the whole canvas in grey, resized to 28x28) fed to the
same model. Writes benchmarks/results/devset.md, devset.json and devset_examples.png.
"""

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

import datasets
import strokes as pen
from benchmarks import save_results
from comparison import plain_resize
from preprocessing import MNIST_SIZE
from recognizer import DEFAULT_MODEL, ModelError, Recognizer
from strokes import BRUSH, CANVAS_SIZE, EDGE_MARGIN, HEIGHT_FRACTION, SUBPIXEL_BITS, canvas_form

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
SEED = 20261121  # the same dev set on every run and machine
PER_CONDITION = 500  # digits per condition: about a minute for the whole run on 2 cores
NUMBERS = 200  # multi-digit numbers
RECOGNIZE_CHUNK = 100  # images per recognize_many call: bounds the memory of 280x280 inputs

NUMBER_CANVAS_SIZE = (280, 560)  # a wide canvas for numbers; widened when the digits need it
THIN_PEN = (1, 4)  # px, a fine pen
THICK_MARKER = (32, 40)  # px, a finger or a fat marker
SKELETON_UPSCALE = 4  # thin at 112x112 so that the scaled-up skeleton is smooth, not staircased

NUMBER_DIGITS = (2, 6)  # digits in a number
NUMBER_HEIGHT_FRACTION = (0.30, 0.60)  # of the canvas height
NUMBER_BRUSH = (8, 24)  # px
DIGIT_SIZE_VARIATION = 0.08  # neighbouring digits differ in height by up to this fraction
BASELINE_JITTER = 0.06  # of the digit height: people do not write on a ruled line
GAP_FRACTION = (0.05, 0.35)  # gap between neighbouring digits, of the digit height
TOUCH_PROBABILITY = 0.05  # a gap closes to nothing or a slight overlap of the digits' boxes
TOUCHING_GAP = (-8, 0)  # px between neighbouring digits' inked boxes: touching or overlapping
CLOSE_GAP = (0, 4)  # px: nearly touching, as quick writers leave them
NUMBER_MARGIN = 20  # px, least space between the outer digits and the canvas edge

PHOTO_SIDE = (240, 480)  # px, each side of a cropped photo
PHOTO_HEIGHT_FRACTION = (0.40, 0.80)  # of the photo height
PEN = (3, 10)  # px, a ballpoint or felt pen at that resolution
PAPER = (150, 245)  # grey level of grey to white paper
PEN_INK = (10, 80)  # grey level of dark ink
BOARD = (15, 70)  # grey level of a dark board (the inverted photo)
CHALK = (170, 240)  # grey level of light ink on it
ILLUMINATION = (0.15, 0.45)  # brightness falls by this fraction across the photo
PAPER_TINT = (0.90, 1.0)  # blue and green of warm light relative to red
BLUR_SIGMA = (0.5, 1.3)  # px, focus and camera shake
NOISE_SIGMA = (2.0, 8.0)  # grey levels of sensor noise
JPEG_QUALITY = (55, 90)  # what phones and messengers save

EXAMPLES_PER_CONDITION = 4
EXAMPLE_HEIGHT = 72  # px, each tile in the examples grid: keeps the PNG small


def _zhang_suen_tables():
    """For each of the 256 neighbourhoods, whether Zhang-Suen removes the centre in step 0 and step 1.

    Bit k of a neighbourhood is neighbour P(k+2): north, north-east, east, ... clockwise.
    """
    codes = np.arange(256)
    ring = [(codes >> bit) & 1 for bit in range(8)]
    north, east, south, west = ring[0], ring[2], ring[4], ring[6]
    neighbours = sum(ring)
    transitions = sum((ring[bit] == 0) & (ring[(bit + 1) % 8] == 1) for bit in range(8))
    removable = (neighbours >= 2) & (neighbours <= 6) & (transitions == 1)
    first = removable & (north * east * south == 0) & (east * south * west == 0)
    second = removable & (north * east * west == 0) & (north * south * west == 0)
    return first, second


ZHANG_SUEN_TABLES = _zhang_suen_tables()


def skeletonise(mask):
    """A one-pixel-wide skeleton of a binary mask (Zhang-Suen thinning, vectorised)."""
    skeleton = np.pad(np.asarray(mask, dtype=bool), 1).astype(np.uint8)
    while True:
        removed_any = False
        for removes in ZHANG_SUEN_TABLES:
            # Neighbours clockwise from north, as bits of one code per pixel.
            ring = (
                skeleton[:-2, 1:-1],
                skeleton[:-2, 2:],
                skeleton[1:-1, 2:],
                skeleton[2:, 2:],
                skeleton[2:, 1:-1],
                skeleton[2:, :-2],
                skeleton[1:-1, :-2],
                skeleton[:-2, :-2],
            )
            codes = sum(neighbour << bit for bit, neighbour in enumerate(ring))
            remove = (skeleton[1:-1, 1:-1] == 1) & removes[codes]
            if remove.any():
                skeleton[1:-1, 1:-1][remove] = 0
                removed_any = True
        if not removed_any:
            return skeleton[1:-1, 1:-1].astype(bool)


def digit_skeleton(image):
    """The skeleton of a uint8 28x28 MNIST digit, at SKELETON_UPSCALE times its size."""
    side = MNIST_SIZE * SKELETON_UPSCALE
    large = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
    return skeletonise(large > 127)


def skeleton_segments(skeleton):
    """(K, 2, 2) float (x, y) end points joining 8-connected skeleton pixels; lone pixels give dots."""
    rows, columns = np.nonzero(skeleton)
    padded = np.pad(skeleton, 1)
    segments, connected = [], np.zeros(rows.size, dtype=bool)
    # Four of the eight directions: each pair of neighbours is joined once.
    for row_step, column_step in ((0, 1), (1, 0), (1, 1), (1, -1)):
        has_neighbour = padded[rows + 1 + row_step, columns + 1 + column_step]
        starts = np.stack([columns, rows], axis=1)[has_neighbour]
        segments.append(np.stack([starts, starts + (column_step, row_step)], axis=1))
        connected |= has_neighbour
        connected |= padded[rows + 1 - row_step, columns + 1 - column_step]
    lone = np.stack([columns, rows], axis=1)[~connected]
    segments.append(np.stack([lone, lone], axis=1))
    return np.concatenate(segments).astype(np.float64)


def skeleton_box(skeleton):
    """(left, top, width, height) of the skeleton's pixel centres."""
    rows = np.flatnonzero(skeleton.any(axis=1))
    columns = np.flatnonzero(skeleton.any(axis=0))
    if rows.size == 0:
        raise ValueError("the skeleton is empty: the digit image holds no ink above half intensity")
    return columns[0], rows[0], columns[-1] - columns[0], rows[-1] - rows[0]


def draw_with_brush(ink, skeleton, brush, scale, origin):
    """Draw the skeleton into a uint8 ink canvas (ink = 255) with a round antialiased brush.

    Skeleton pixel (row, column) lands at origin + scale * (column, row); returns ink.
    """
    points = origin + scale * skeleton_segments(skeleton)
    fixed_point = np.round(points * (1 << SUBPIXEL_BITS)).astype(np.int32)
    cv2.polylines(
        ink,
        list(fixed_point),
        isClosed=False,
        color=255,
        thickness=int(brush),
        lineType=cv2.LINE_AA,
        shift=SUBPIXEL_BITS,
    )
    return ink


def _scale_for(skeleton, brush, drawn_height):
    """The skeleton's scale factor and its drawn (width, height) including the brush."""
    _, _, width, height = skeleton_box(skeleton)
    scale = (drawn_height - brush) / max(height, 1)
    return scale, (width * scale + brush, height * scale + brush)


def draw_digit_ink(image, rng, canvas_size=CANVAS_SIZE, brush_range=BRUSH, height_fraction=HEIGHT_FRACTION):
    """A uint8 ink map (ink = 255) of one MNIST digit re-drawn anywhere on a canvas, fully inside."""
    canvas_height, canvas_width = canvas_size
    skeleton = digit_skeleton(image)
    brush, drawn_height = pen.brush_and_height(rng, brush_range, canvas_height - 2 * EDGE_MARGIN, height_fraction)
    scale, (drawn_width, drawn_height) = _scale_for(skeleton, brush, drawn_height)
    if drawn_width > canvas_width - 2 * EDGE_MARGIN:  # a wide digit on a narrow canvas: shrink it
        shrink = (canvas_width - 2 * EDGE_MARGIN - brush) / (drawn_width - brush)
        scale *= shrink
        drawn_width, drawn_height = (drawn_width - brush) * shrink + brush, (drawn_height - brush) * shrink + brush
    # max(0, ...): a digit shrunk to the full width leaves no room, give or take rounding.
    left = EDGE_MARGIN + rng.uniform(0, max(0.0, canvas_width - 2 * EDGE_MARGIN - drawn_width))
    top = EDGE_MARGIN + rng.uniform(0, max(0.0, canvas_height - 2 * EDGE_MARGIN - drawn_height))
    skeleton_left, skeleton_top, _, _ = skeleton_box(skeleton)
    origin = np.array([left, top]) + brush / 2 - scale * np.array([skeleton_left, skeleton_top])
    ink = np.zeros(canvas_size, dtype=np.uint8)
    return draw_with_brush(ink, skeleton, brush, scale, origin)


def make_canvas_digit(image, rng, form="transparent", brush_range=BRUSH):
    """An RGBA 280x280 canvas drawing of one uint8 28x28 MNIST digit."""
    return canvas_form(draw_digit_ink(image, rng, brush_range=brush_range), form)


def make_number(images, rng, form="transparent", touch_probability=TOUCH_PROBABILITY):
    """An RGBA canvas (280 high, 560 or wider) with the digits drawn side by side, left to right."""
    canvas_height, canvas_width = NUMBER_CANVAS_SIZE
    brush = int(rng.integers(NUMBER_BRUSH[0], NUMBER_BRUSH[1] + 1))
    base_height = rng.uniform(*NUMBER_HEIGHT_FRACTION) * canvas_height
    skeletons = [digit_skeleton(image) for image in images]
    placements, cursor = [], 0.0
    for index, skeleton in enumerate(skeletons):
        drawn_height = base_height * (1 + rng.uniform(-DIGIT_SIZE_VARIATION, DIGIT_SIZE_VARIATION))
        scale, (drawn_width, drawn_height) = _scale_for(skeleton, brush, drawn_height)
        if index > 0:
            if rng.random() < touch_probability:
                cursor -= rng.uniform(0, 0.15) * brush
            else:
                cursor += rng.uniform(*GAP_FRACTION) * base_height
        bottom = rng.uniform(-BASELINE_JITTER, BASELINE_JITTER) * base_height  # relative to the baseline
        placements.append((skeleton, scale, cursor, bottom - drawn_height, bottom))
        cursor += drawn_width
    canvas_width = max(canvas_width, int(np.ceil((cursor + 2 * NUMBER_MARGIN) / 40)) * 40)
    left = rng.uniform(NUMBER_MARGIN, canvas_width - NUMBER_MARGIN - cursor)
    highest_top = min(top for _, _, _, top, _ in placements)
    lowest_bottom = max(bottom for _, _, _, _, bottom in placements)
    baseline = rng.uniform(NUMBER_MARGIN - highest_top, canvas_height - NUMBER_MARGIN - lowest_bottom)
    ink = np.zeros((canvas_height, canvas_width), dtype=np.uint8)
    for skeleton, scale, x, top, _ in placements:
        skeleton_left, skeleton_top, _, _ = skeleton_box(skeleton)
        corner = np.array([left + x, baseline + top]) + brush / 2
        draw_with_brush(ink, skeleton, brush, scale, corner - scale * np.array([skeleton_left, skeleton_top]))
    return canvas_form(ink, form)


def make_pen_digit(sample_strokes, rng, form="transparent", as_strokes=False):
    """An RGBA 280x280 canvas of one pen sample's own strokes, drawn as the app's canvas draws them.

    With as_strokes, the strokes.Drawing the canvas would report instead.
    """
    placed, brush = pen.place_strokes(sample_strokes, rng)
    drawing = pen.Drawing(float(CANVAS_SIZE[1]), float(CANVAS_SIZE[0]), float(brush), tuple(placed))
    return drawing if as_strokes else drawing_canvas(drawing, form)


def make_pen_number(
    samples, rng, form="transparent", touch_probability=TOUCH_PROBABILITY, gap_px=None, as_strokes=False
):
    """One writer's pen samples side by side on a canvas (280 high, 560 or wider), left to right.

    gap_px: a (low, high) range of pixels between neighbouring digits' inked boxes
    (negative: they overlap), instead of the usual spacing. Returns the RGBA canvas,
    or with as_strokes the strokes.Drawing the canvas would report.
    """
    canvas_height, canvas_width = NUMBER_CANVAS_SIZE
    brush = int(rng.integers(NUMBER_BRUSH[0], NUMBER_BRUSH[1] + 1))
    base_height = rng.uniform(*NUMBER_HEIGHT_FRACTION) * canvas_height
    placed, cursor = [], 0.0
    for index, sample in enumerate(samples):
        box = left, top, width, height = pen.strokes_box(sample)
        drawn_height = base_height * (1 + rng.uniform(-DIGIT_SIZE_VARIATION, DIGIT_SIZE_VARIATION))
        scale = pen.digit_scale(box, drawn_height, brush)
        drawn_width, drawn_height = width * scale + brush, height * scale + brush
        if index > 0:
            if gap_px is not None:
                cursor += rng.uniform(*gap_px)
            elif rng.random() < touch_probability:
                cursor -= rng.uniform(0, 0.15) * brush
            else:
                cursor += rng.uniform(*GAP_FRACTION) * base_height
        bottom = rng.uniform(-BASELINE_JITTER, BASELINE_JITTER) * base_height  # relative to the baseline
        origin = np.array([cursor + brush / 2 - scale * left, bottom - drawn_height + brush / 2 - scale * top])
        placed.append(
            ([origin + scale * np.asarray(stroke, np.float64) for stroke in sample], bottom - drawn_height, bottom)
        )
        cursor += drawn_width
    canvas_width = max(canvas_width, int(np.ceil((cursor + 2 * NUMBER_MARGIN) / 40)) * 40)
    left = rng.uniform(NUMBER_MARGIN, canvas_width - NUMBER_MARGIN - cursor)
    highest_top = min(top for _, top, _ in placed)
    lowest_bottom = max(bottom for _, _, bottom in placed)
    baseline = rng.uniform(NUMBER_MARGIN - highest_top, canvas_height - NUMBER_MARGIN - lowest_bottom)
    shift = np.array([left, baseline])
    drawing = pen.Drawing(
        float(canvas_width),
        float(canvas_height),
        float(brush),
        tuple(stroke + shift for sample_strokes, _, _ in placed for stroke in sample_strokes),
    )
    return drawing if as_strokes else drawing_canvas(drawing, form)


def drawing_canvas(drawing, form="transparent"):
    """The RGBA canvas of a strokes.Drawing, as streamlit-drawable-canvas would return it."""
    size = (round(drawing.height), round(drawing.width))
    return canvas_form(pen.draw_strokes(drawing.strokes, size, drawing.brush), form)


def make_photo(image, rng, inverted=False):
    """An RGB uint8 'photo' of the digit: pen on lit paper, or light ink on a dark board when inverted."""
    size = tuple(int(side) for side in rng.integers(PHOTO_SIDE[0], PHOTO_SIDE[1] + 1, size=2))
    ink = draw_digit_ink(image, rng, size, PEN, PHOTO_HEIGHT_FRACTION).astype(np.float32) / 255
    background, foreground = (BOARD, CHALK) if inverted else (PAPER, PEN_INK)
    background, foreground = rng.uniform(*background), rng.uniform(*foreground)
    grey = background + (foreground - background) * ink
    # Light falls off across the sheet in a random direction.
    height, width = size
    angle = rng.uniform(0, 2 * np.pi)
    along = (
        np.cos(angle) * np.linspace(0, 1, width, dtype=np.float32)[None, :]
        + np.sin(angle) * np.linspace(0, 1, height, dtype=np.float32)[:, None]
    )
    along = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    grey *= 1 - rng.uniform(*ILLUMINATION) * along
    tint = np.array([1.0, rng.uniform(*PAPER_TINT), rng.uniform(*PAPER_TINT)], dtype=np.float32)
    photo = cv2.GaussianBlur(grey[..., None] * tint, (0, 0), rng.uniform(*BLUR_SIGMA))
    photo += rng.uniform(*NOISE_SIGMA) * rng.standard_normal(photo.shape, dtype=np.float32)
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    _, encoded = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].copy()


# The seeds' way is the tutorial recipe's input path; the app's model comparison reads drawings with it too.
seeds_way = plain_resize


# Not digits: letters in the letter shapes no digit has, and smooth random scribbles. The right
# answer is to say so ('uncertain' or 'empty'), not to name a digit.
NON_DIGIT_LETTERS = "AEFHKMNRUVWXaefhkmnrtuvwx"
NON_DIGIT_FONTS = (cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)


def make_non_digit(rng):
    """A transparent canvas holding a letter or a scribble, drawn with a canvas brush."""
    ink = np.zeros(CANVAS_SIZE, np.uint8)
    brush = int(rng.integers(*BRUSH))
    if rng.random() < 0.5:
        letter = NON_DIGIT_LETTERS[rng.integers(len(NON_DIGIT_LETTERS))]
        font = NON_DIGIT_FONTS[rng.integers(len(NON_DIGIT_FONTS))]
        scale = cv2.getFontScaleFromHeight(font, int(rng.integers(120, 200)), brush // 3)
        (width, height), _ = cv2.getTextSize(letter, font, scale, brush // 3)
        origin = (max(5, (CANVAS_SIZE[1] - width) // 2), min(CANVAS_SIZE[0] - 10, (CANVAS_SIZE[0] + height) // 2))
        cv2.putText(ink, letter, origin, font, scale, 255, max(2, brush // 3), cv2.LINE_AA)
    else:
        # A Catmull-Rom curve through random points: a smooth loopy scribble, unlike a digit's strokes.
        points = rng.uniform(40, 240, (int(rng.integers(6, 10)), 2))
        steps = np.linspace(0, 1, 12)[:, None]
        curve = [
            0.5
            * (
                2 * p1
                + (p2 - p0) * steps
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * steps**2
                + (3 * p1 - p0 - 3 * p2 + p3) * steps**3
            )
            for p0, p1, p2, p3 in zip(points, points[1:], points[2:], points[3:])
        ]
        cv2.polylines(ink, [np.vstack(curve).astype(np.int32)], False, 255, brush, cv2.LINE_AA)
    return canvas_form(ink, "transparent")


# name -> (what it is, source, function(digits, rng) -> input). The source is 'mnist' (digits are
# MNIST test images), 'pen' (digits are stroke lists of one UNIPEN validation writer) or None.
CONDITIONS = {
    "canvas transparent": (
        "default canvas: black ink in alpha, brush 8-32 px",
        "mnist",
        lambda images, rng: make_canvas_digit(images[0], rng, "transparent"),
    ),
    "canvas white on black": (
        "opaque black background, white ink, brush 8-32 px",
        "mnist",
        lambda images, rng: make_canvas_digit(images[0], rng, "white_on_black"),
    ),
    "canvas black on white": (
        "opaque white background, black ink, brush 8-32 px",
        "mnist",
        lambda images, rng: make_canvas_digit(images[0], rng, "black_on_white"),
    ),
    "thin pen": (
        "transparent canvas, brush 1-4 px",
        "mnist",
        lambda images, rng: make_canvas_digit(images[0], rng, "transparent", THIN_PEN),
    ),
    "thick marker": (
        "transparent canvas, brush 32-40 px",
        "mnist",
        lambda images, rng: make_canvas_digit(images[0], rng, "transparent", THICK_MARKER),
    ),
    "paper photo": (
        "dark pen on lit grey/white paper, blur, noise, JPEG",
        "mnist",
        lambda images, rng: make_photo(images[0], rng),
    ),
    "inverted photo": (
        "light ink on a dark board, blur, noise, JPEG",
        "mnist",
        lambda images, rng: make_photo(images[0], rng, inverted=True),
    ),
    "numbers": (
        "2-6 digits side by side on a 560 px wide canvas, brush 8-24 px",
        "mnist",
        lambda images, rng: make_number(images, rng),
    ),
    "pen transparent": (
        "UNIPEN validation writers' strokes, default canvas, brush 8-32 px",
        "pen",
        lambda samples, rng: make_pen_digit(samples[0], rng, "transparent"),
    ),
    "pen white on black": (
        "UNIPEN validation writers' strokes, white on black, brush 8-32 px",
        "pen",
        lambda samples, rng: make_pen_digit(samples[0], rng, "white_on_black"),
    ),
    "pen black on white": (
        "UNIPEN validation writers' strokes, black on white, brush 8-32 px",
        "pen",
        lambda samples, rng: make_pen_digit(samples[0], rng, "black_on_white"),
    ),
    "pen strokes": (
        "UNIPEN validation writers' single digits read from their strokes (the canvas's json_data)",
        "pen",
        lambda samples, rng: make_pen_digit(samples[0], rng, as_strokes=True),
    ),
    "pen numbers": (
        "2-6 digits by one UNIPEN validation writer on a 560 px wide canvas, brush 8-24 px",
        "pen",
        lambda samples, rng: make_pen_number(samples, rng),
    ),
    "pen numbers, strokes": (
        "the same numbers read from their strokes (the canvas's json_data)",
        "pen",
        lambda samples, rng: make_pen_number(samples, rng, as_strokes=True),
    ),
    "pen numbers close, strokes": (
        "as pen numbers, 0-4 px between inked boxes, read from the strokes",
        "pen",
        lambda samples, rng: make_pen_number(samples, rng, gap_px=CLOSE_GAP, as_strokes=True),
    ),
    "pen numbers close, pixels": (
        "the same drawings as pixels (a PNG or an upload)",
        "pen",
        lambda samples, rng: make_pen_number(samples, rng, gap_px=CLOSE_GAP),
    ),
    "pen numbers touching, strokes": (
        "as pen numbers, -8-0 px between inked boxes, read from the strokes",
        "pen",
        lambda samples, rng: make_pen_number(samples, rng, gap_px=TOUCHING_GAP, as_strokes=True),
    ),
    "pen numbers touching, pixels": (
        "the same drawings as pixels (a PNG or an upload)",
        "pen",
        lambda samples, rng: make_pen_number(samples, rng, gap_px=TOUCHING_GAP),
    ),
    "not digits": (
        "letters and scribbles on the canvas; right = answered 'uncertain' or 'empty'",
        None,
        lambda images, rng: make_non_digit(rng),
    ),
}


@dataclass(frozen=True)
class PenWriters:
    """UNIPEN's validation writers (the ones train.py never trains on) and their samples."""

    digits: datasets.PenDigits
    samples_by_writer: dict  # writer id -> array of sample indices


def load_pen_writers(data_root=None):
    """The UNIPEN validation writers, split exactly as train.py splits them."""
    digits = datasets.load_unipen(Path(data_root) / "unipen" if data_root else None)
    held_out = datasets.unipen_validation_writers(digits)
    samples = {writer: np.flatnonzero(digits.writers == writer) for writer in sorted(held_out)}
    return PenWriters(digits, samples)


def condition_samples(name, images, labels, count, seed, pen_writers=None):
    """count (input, text) pairs of one condition; the same seed gives the same pairs."""
    # Strokes and pixels of one kind of number share their seed: the very same drawings.
    twin = "pen numbers" if name == "pen numbers, strokes" else name.replace(", strokes", ", pixels")
    rng = np.random.default_rng([seed, list(CONDITIONS).index(twin)])
    _, source, make = CONDITIONS[name]
    is_number = "numbers" in name
    samples = []
    for _ in range(count):
        length = int(rng.integers(NUMBER_DIGITS[0], NUMBER_DIGITS[1] + 1)) if is_number else 1
        if source == "pen":
            # A writer first, then their digits: every validation writer counts, not only the prolific.
            writers = [writer for writer, indices in pen_writers.samples_by_writer.items() if len(indices) >= length]
            writer = writers[rng.integers(len(writers))]
            indices = rng.choice(pen_writers.samples_by_writer[writer], size=length, replace=False)
            digits = [pen_writers.digits.strokes(index) for index in indices]
            text = "".join(str(pen_writers.digits.labels[index]) for index in indices)
        else:
            indices = rng.choice(len(images), size=length, replace=False)
            digits = images[indices]
            text = "" if source is None else "".join(str(labels[index]) for index in indices)
        samples.append((make(digits, rng), text))
    return samples


def evaluate(recognizer, samples):
    """Shares of right, uncertain and empty answers, ours and the seeds' way, on (input, text) pairs."""
    ours_right = ours_uncertain = ours_empty = right_when_ok = ok = several = 0
    seeds_right = 0
    for start in range(0, len(samples), RECOGNIZE_CHUNK):
        chunk = samples[start : start + RECOGNIZE_CHUNK]
        results = recognizer.recognize_many([image for image, _ in chunk])
        seeds_digits = recognizer.probabilities(np.stack([seeds_way(as_picture(image)) for image, _ in chunk])).argmax(
            axis=1
        )
        for result, seeds_digit, (_, text) in zip(results, seeds_digits, chunk):
            several += len(text) == 1 and len(result.digits) > 1
            # For a non-digit (text ''), the right answer is not to claim a digit.
            ours_right += result.status != "ok" if text == "" else result.text == text
            ours_uncertain += result.status == "uncertain"
            ours_empty += result.status == "empty"
            if result.status == "ok":
                ok += 1
                right_when_ok += result.text == text
            # One digit per image and no way to abstain: numbers and non-digits are never right.
            seeds_right += str(seeds_digit) == text
    count = len(samples)
    return {
        "count": count,
        "ours_accuracy": ours_right / count,
        "seeds_accuracy": seeds_right / count,
        "ours_uncertain": ours_uncertain / count,
        "ours_empty": ours_empty / count,
        "ours_accuracy_when_ok": right_when_ok / ok if ok else None,
        # Single digits read as two or more: over-segmentation (None for numbers and non-digits).
        "ours_split": several / count if all(len(text) == 1 for _, text in samples) else None,
    }


def as_picture(sample):
    """A sample as the pixels a picture of it has: strokes.Drawing samples are drawn on the canvas."""
    return drawing_canvas(sample) if isinstance(sample, pen.Drawing) else sample


def run_conditions(recognizer, images, labels, per_condition, numbers, seed, examples=None, pen_writers=None):
    """{condition: evaluate(...) result}; when examples is a dict, fills it with a few inputs each.

    The pen conditions are run only when pen_writers (load_pen_writers()) is given.
    """
    rows = {}
    for name, (description, source, _) in CONDITIONS.items():
        if source == "pen" and pen_writers is None:
            continue
        count = numbers if "numbers" in name else per_condition
        samples = condition_samples(name, images, labels, count, seed, pen_writers)
        rows[name] = {"description": description, **evaluate(recognizer, samples)}
        if examples is not None:
            examples[name] = [as_picture(image) for image, _ in samples[:EXAMPLES_PER_CONDITION]]
    return rows


def _percent(value):
    return "n/a" if value is None else f"{value:.1%}"


def markdown_table(rows):
    """The per-condition results as a markdown table."""
    lines = [
        "| condition | images | ours exact | seeds' way | ours uncertain | ours empty | ours right when sure "
        "| one digit read as several | what it is |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in rows.items():
        split = "" if row.get("ours_split") is None else _percent(row["ours_split"])
        lines.append(
            f"| {name} | {row['count']} | {_percent(row['ours_accuracy'])} | {_percent(row['seeds_accuracy'])} "
            f"| {_percent(row['ours_uncertain'])} | {_percent(row['ours_empty'])} "
            f"| {_percent(row['ours_accuracy_when_ok'])} | {split} | {row['description']} |"
        )
    return "\n".join(lines)


def _display_tile(image):
    """A BGR uint8 tile as the user sees the input: transparency over a light checkerboard."""
    image = np.asarray(image)
    if image.shape[2] == 4:
        rows, columns = np.indices(image.shape[:2])
        checker = np.where(((rows // 20 + columns // 20) % 2)[..., None] == 0, 255.0, 225.0)
        alpha = image[..., 3:] / 255.0
        image = (image[..., :3] * alpha + checker * (1 - alpha)).astype(np.uint8)
    width = round(image.shape[1] * EXAMPLE_HEIGHT / image.shape[0])
    tile = cv2.resize(image, (width, EXAMPLE_HEIGHT), interpolation=cv2.INTER_AREA)
    return cv2.copyMakeBorder(tile[..., ::-1], 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(90, 90, 90))


def save_examples(examples, path):
    """A PNG grid: one labelled row of example inputs per condition."""
    label_height, spacing = 18, 6
    rows = []
    for name, images in examples.items():
        tiles = [_display_tile(image) for image in images]
        strip = np.full((tiles[0].shape[0], spacing, 3), 255, np.uint8)
        row = np.hstack([part for tile in tiles for part in (tile, strip)])
        label = np.full((label_height, row.shape[1], 3), 255, np.uint8)
        cv2.putText(label, name, (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.vstack([label, row]))
    width = max(row.shape[1] for row in rows)
    grid = np.vstack(
        [
            cv2.copyMakeBorder(row, 0, 0, 0, width - row.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
            for row in rows
        ]
    )
    cv2.imwrite(str(path), grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def load_test_set(data_root=None):
    """MNIST's test images and labels from data_root/mnist, else $MNIST_DIR, else the default data root's."""
    _, test = datasets.load_mnist(datasets.mnist_folder(data_root))
    return test


def load_or_exit(data_root, model_path):
    """The test set and a Recognizer, or exit with the loaders' message instead of a traceback."""
    try:
        return load_test_set(data_root), Recognizer(model_path)
    except (datasets.DataError, ModelError) as error:
        raise SystemExit(f"error: {error}") from None


def parse_args(argv=None, parser=None):
    """The dev set's options, checked; parser: another benchmark's, with its own options added already."""
    parser = parser or argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--per-condition", type=int, default=PER_CONDITION, help="digits per single-digit condition")
    parser.add_argument("--numbers", type=int, default=NUMBERS, help="multi-digit numbers")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data root holding mnist/ and unipen/ (default: $DIGIT_DATA_DIR, then ../shared/data, "
        "then ./data; $MNIST_DIR overrides mnist/ alone)",
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.per_condition < 1 or args.numbers < 1:
        parser.error("--per-condition and --numbers must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    (images, labels), recognizer = load_or_exit(args.data_dir, args.model)
    try:
        pen_writers = load_pen_writers(args.data_dir)
    except datasets.DataError as error:
        raise SystemExit(f"error: {error}") from None
    examples = {}
    rows = run_conditions(
        recognizer, images, labels, args.per_condition, args.numbers, args.seed, examples, pen_writers
    )
    seconds = time.perf_counter() - started
    table = markdown_table(rows)
    print(table)
    settings = (
        f"Model `{args.model.name}` ({recognizer.backend_name} backend), seed {args.seed}, "
        f"{args.per_condition} digits per condition and {args.numbers} numbers per number condition from the "
        f"MNIST test set and {len(pen_writers.samples_by_writer)} UNIPEN validation writers, "
        f"built and scored in {seconds:.0f} s on {os.cpu_count()} CPU cores."
    )
    print(settings)
    markdown = (
        "# Dev-set accuracy\n\n"
        "Drawings made at run time by `python -m benchmarks.devset` from the MNIST test set (re-drawn skeletons) "
        "and from UNIPEN's validation writers (their own pen strokes, never trained on; *pen* rows). "
        "*Ours*: exact text from `Recognizer().recognize_many`. *Seeds' way*: the whole image in grey, "
        "resized to 28x28 with INTER_AREA, inverted when the background is light, then the same model "
        "(it reads one digit per image, so it never gets a number right). *Uncertain*/*empty*: share of "
        "our answers with that status; *right when sure*: accuracy of the answers with status 'ok'.\n\n"
        f"{table}\n\n{settings}\n"
    )
    summary = {
        "model": str(args.model),
        "backend": recognizer.backend_name,
        "seed": args.seed,
        "per_condition": args.per_condition,
        "numbers": args.numbers,
        "seconds": round(seconds, 1),
        "conditions": rows,
    }
    save_results(args.results_dir, "devset", markdown, summary)
    save_examples(examples, args.results_dir / "devset_examples.png")
    print(f"wrote {args.results_dir / 'devset.md'}, devset.json and devset_examples.png")


if __name__ == "__main__":
    main()
