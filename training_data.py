"""The training digits: every source drawn, normalised and augmented as the app would see it, then mixed.

    digit = draw_pen_digit(unipen_strokes, rng)   # a pen sample drawn on the canvas, read by prepare()
    digit = normalise_scan(cvl_image, rng)        # a 28x28 scan read as an upload would be
    digit = augment(mnist_image, rng)             # an MNIST digit turned, slanted, thinned or thickened
    images, labels = render_pool("pen", items, labels, seed, vary=True)       # many, in worker processes
    batches = AugmentedBatches(sources, batch_size, steps, seed, non_digits)  # what model.fit reads

Pen drawings and scans go through the app's own preprocessing (prepare, mnist_digit);
MNIST's images are augmented towards how people draw; render_non_digit makes the letters,
scribbles and squeezed pairs trained towards the uniform distribution (outlier exposure).
The same seed always gives the same digits and batches. train.py chooses the mixture and
runs the training.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keras is imported here: keep TensorFlow's start-up chatter out

import multiprocessing

import cv2
import keras
import numpy as np

import strokes as pen
from preprocessing import MNIST_SIZE, fit_to_mnist, mnist_digit, prepare

# Pen samples drawn on the canvas, and scans read as uploads.
PEN_MAX_ROTATION_DEGREES = 12  # the pen data is real handwriting: milder than MNIST's augmentation
PEN_MAX_SHEAR = 0.3
PEN_ASPECT_RANGE = (0.75, 1.3)
PEN_BRUSH = (4, 36)  # px on the 280 px canvas: thin pens to fingers (the app's slider runs 6-40)
PAIR_GAP = (-8, 0)  # px between two pen digits' inked boxes: touching or overlapping, as quick writers join them
CVL_UPSCALE = 4  # CVL's 28x28 scans are read at 112x112, like an uploaded scan, before normalising
RENDER_WORKERS = 2  # processes drawing the pen data before training: this machine's cores

# Augmentation: how people's drawings differ from MNIST after MNIST-style normalisation.
UNCHANGED_FRACTION = 0.15  # some images stay as MNIST wrote them, to keep its test accuracy
MAX_ROTATION_DEGREES = 15  # hand-held tilt of the whole digit
MAX_SHEAR = 0.35  # slanted handwriting leans by up to about 20 degrees
ASPECT_RANGE = (0.7, 1.35)  # narrow and wide writers; the longer side is refitted to 20 px
THICKNESS_OPS = (  # (probability, operation, kernel side) at twice MNIST's resolution
    (0.20, "erode", 3),  # thin pens
    (0.35, "none", 0),
    (0.30, "dilate", 3),  # thick markers and fingers
    (0.15, "dilate", 5),
)
# Resampling blurs strokes; this levels curve restores MNIST's share of saturated ink
# (about half of the ink pixels above 0.9, measured on 2,000 training images).
CONTRAST_GAIN, CONTRAST_OFFSET = 2.0, 0.3
JITTER_SCALE = (0.9, 1.05)  # segmentation and centring are never perfect
JITTER_SHIFT = 1.0  # pixels, in either direction

# Outlier exposure: scribbles, letters and squeezed digit pairs are trained towards the
# uniform distribution, so that the app can flag them as uncertain instead of guessing.
NON_DIGIT_FRACTION = 0.1  # of each batch; enough to learn "unsure" without costing MNIST accuracy
# Letters that no handwritten digit resembles (no O, I, S, Z, B, G, T, Y, C, q, y, ...).
NON_DIGIT_LETTERS = "AEFHKMNPRUVWXaefhkmnprtuvwx#%&@+=*"
LETTER_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC,
)


def _thickness_operation(rng):
    """Pick a stroke-thickness change according to THICKNESS_OPS."""
    probabilities = [probability for probability, _, _ in THICKNESS_OPS]
    _, operation, size = THICKNESS_OPS[rng.choice(len(THICKNESS_OPS), p=probabilities)]
    return operation, size


def augment(image, rng):
    """A float32 28x28 drawing-like variant of one uint8 MNIST image."""
    if rng.random() < UNCHANGED_FRACTION:
        return image.astype(np.float32) / 255.0
    # Work at twice the resolution so that one pixel of thickening is half an MNIST pixel.
    big = cv2.resize(image, (56, 56), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    linear = pen.random_linear_map(rng, MAX_ROTATION_DEGREES, MAX_SHEAR, ASPECT_RANGE)
    big = _warp_centred(big, linear, side=96)  # room for the transformed digit without clipping
    operation, size = _thickness_operation(rng)
    if operation != "none":
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        changed = cv2.erode(big, kernel) if operation == "erode" else cv2.dilate(big, kernel)
        if changed.max() > 0.5:  # eroding a faint thin digit can wipe it out
            big = changed
    digit = np.clip(CONTRAST_GAIN * fit_to_mnist(big) - CONTRAST_OFFSET, 0.0, 1.0)
    return jitter(digit, rng)


def _warp_centred(image, linear, side):
    """The image under a 2x2 linear map about its centre, on a side x side canvas."""
    height, width = image.shape
    offset = np.array([side / 2, side / 2]) - linear @ np.array([width / 2, height / 2])
    matrix = np.hstack([linear, offset[:, None]]).astype(np.float32)
    return cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR)


def jitter(digit, rng):
    """A float32 28x28 digit slightly rescaled and shifted: segmentation and centring are never perfect."""
    digit = np.asarray(digit, dtype=np.float32)
    scale = rng.uniform(*JITTER_SCALE)
    shift_x, shift_y = rng.uniform(-JITTER_SHIFT, JITTER_SHIFT, size=2)
    centre = MNIST_SIZE / 2
    jitter = np.float32([[scale, 0, centre * (1 - scale) + shift_x], [0, scale, centre * (1 - scale) + shift_y]])
    return cv2.warpAffine(digit, jitter, (MNIST_SIZE, MNIST_SIZE), flags=cv2.INTER_LINEAR)


def render_non_digit(rng, digit_images):
    """A uint8 28x28 MNIST-style image of something that is not one digit."""
    canvas = np.zeros((112, 112), np.uint8)
    kind = rng.integers(4)
    if kind == 0:  # a letter or symbol, in pen-like strokes
        thickness = int(rng.integers(1, 4))
        letter = NON_DIGIT_LETTERS[rng.integers(len(NON_DIGIT_LETTERS))]
        font = LETTER_FONTS[rng.integers(len(LETTER_FONTS))]
        cv2.putText(canvas, letter, (20, 88), font, 2.6, 255, thickness, cv2.LINE_AA)
    elif kind == 1:  # a scribble: enough random turns that it cannot pass for a digit
        thickness = int(rng.integers(3, 8))
        points = rng.uniform(0, 1, (int(rng.integers(7, 13)), 2))
        # Stretched to fill a square: a narrow scribble would look like a wobbly 1.
        points = 10 + 92 * (points - points.min(axis=0)) / np.ptp(points, axis=0)
        points = points.astype(np.int32)
        cv2.polylines(canvas, [points], False, 255, thickness, cv2.LINE_AA)
    elif kind == 2:  # a zigzag or a grid (no filled blobs: a thick-marker 0 can close up)
        thickness = int(rng.integers(3, 8))
        if rng.random() < 0.5:
            xs = np.linspace(10, 102, int(rng.integers(5, 9)))
            ys = np.where(np.arange(len(xs)) % 2, 20, 92) + rng.uniform(-8, 8, len(xs))
            cv2.polylines(canvas, [np.stack([xs, ys], 1).astype(np.int32)], False, 255, thickness)
        else:
            for position in np.linspace(20, 92, int(rng.integers(3, 5))):
                cv2.line(canvas, (int(position), 10), (int(position), 102), 255, thickness)
                cv2.line(canvas, (10, int(position)), (102, int(position)), 255, thickness)
    else:  # two digits squeezed into one box: a segmentation failure, not a digit
        left, right = digit_images[rng.integers(len(digit_images), size=2)]
        overlap = int(rng.integers(4, 10))
        pair = np.zeros((28, 56 - overlap), np.uint8)
        pair[:, :28] = left
        np.maximum(pair[:, 28 - overlap :], right, out=pair[:, 28 - overlap :])
        canvas = pair
    return (fit_to_mnist(canvas.astype(np.float32) / 255.0) * 255).astype(np.uint8)


def draw_pen_digit(sample_strokes, rng, vary=True, form=None, flag=False):
    """A float32 28x28 digit of a pen sample drawn on the canvas and read by the app's pipeline.

    vary: slant, turn and stretch the strokes first (training); form: the canvas
    form, random when None; flag: give a one-stroke 1 a flag (strokes.with_flag).
    Returns None for the rare drawing that is only a dot.
    """
    if vary:
        linear = pen.random_linear_map(rng, PEN_MAX_ROTATION_DEGREES, PEN_MAX_SHEAR, PEN_ASPECT_RANGE)
        sample_strokes = pen.transform_strokes(sample_strokes, linear)
    if flag:  # after the slant and turn, so that the flag rises from the lower left as written
        sample_strokes = pen.with_flag(sample_strokes, rng)
    placed, brush = pen.place_strokes(sample_strokes, rng, brush_range=PEN_BRUSH)
    ink = pen.draw_strokes(placed, pen.CANVAS_SIZE, brush)
    form = form or pen.FORMS[rng.integers(len(pen.FORMS))]
    prepared = prepare(pen.canvas_form(ink, form))
    if len(prepared.digits) == 1:
        return prepared.digits[0, ..., 0]
    x, y, width, height = cv2.boundingRect(ink)
    try:  # the pipeline split the digit or dropped a part: the model still learns the whole digit
        return mnist_digit(ink[y : y + height, x : x + width])
    except ValueError:  # nothing but a dot
        return None


def draw_pen_pair(first, second, rng):
    """A float32 28x28 image of two pen digits written touching and read as one piece, or None.

    What the model sees when segmentation leaves a touching pair whole: trained as a
    non-digit, so that reading the pair as one digit loses to the cut between them.
    """
    brush, drawn_height = pen.brush_and_height(
        rng, PEN_BRUSH, pen.CANVAS_SIZE[0] - 2 * pen.EDGE_MARGIN, pen.HEIGHT_FRACTION
    )
    placed, right = [], float(pen.EDGE_MARGIN)
    for sample in (first, second):
        box = left, top, width, height = pen.strokes_box(sample)
        scale = pen.digit_scale(box, drawn_height, brush)
        start = right + (rng.uniform(*PAIR_GAP) if placed else 0.0)  # where this digit's ink begins
        origin = np.array([start + brush / 2 - scale * left, pen.EDGE_MARGIN + brush / 2 - scale * top])
        placed += [origin + scale * np.asarray(stroke, dtype=np.float64).reshape(-1, 2) for stroke in sample]
        right = max(right, start + width * scale + brush)
    size = (int(np.ceil(drawn_height)) + 2 * pen.EDGE_MARGIN, int(np.ceil(right)) + pen.EDGE_MARGIN)
    ink = pen.draw_strokes(placed, size, brush)
    x, y, width, height = cv2.boundingRect(ink)
    try:
        return mnist_digit(ink[y : y + height, x : x + width])
    except ValueError:  # nothing but dots
        return None


def normalise_scan(image, rng=None):
    """A float32 28x28 digit of a 28x28 scan (bright ink on black) read as an upload would be.

    With rng the scan is first slanted, turned and stretched at random (training).
    Returns None when nothing but a dot is left.
    """
    side = MNIST_SIZE * CVL_UPSCALE
    big = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
    if rng is not None:
        linear = pen.random_linear_map(rng, MAX_ROTATION_DEGREES, MAX_SHEAR, ASPECT_RANGE)
        big = _warp_centred(big, linear, side=int(side * 1.5))
    try:
        return mnist_digit(big)
    except ValueError:
        return None


def _render_chunk(task):
    """Worker: (kind, items, seed, first index, vary) -> uint8 digits and which items gave one."""
    kind, items, seed, first, vary = task
    digits, kept = [], []
    for offset, item in enumerate(items):
        rng = np.random.default_rng((seed, first + offset))
        if kind in ("pen", "flagged pen"):
            form = None if vary else pen.FORMS[(first + offset) % 3]
            digit = draw_pen_digit(item, rng, vary=vary, form=form, flag=kind == "flagged pen")
        elif kind == "pen pair":
            digit = draw_pen_pair(*item, rng)
        else:
            digit = normalise_scan(item, rng if vary else None)
        if digit is not None:
            digits.append(np.round(digit * 255).astype(np.uint8))
            kept.append(offset)
    return np.array(digits, np.uint8).reshape(-1, MNIST_SIZE, MNIST_SIZE), np.array(kept, np.int64)


def render_pool(kind, items, labels, seed, vary, workers=RENDER_WORKERS, chunk=500):
    """uint8 (N, 28, 28) digits and labels for items.

    kind: 'pen' (stroke lists), 'flagged pen' (one-stroke 1s, given a flag), 'pen pair'
    ((strokes, strokes) written touching) or 'scan' (28x28 images).

    Runs in worker processes; the same seed gives the same pool.
    """
    tasks = [(kind, items[start : start + chunk], seed, start, vary) for start in range(0, len(items), chunk)]
    if workers > 1 and len(tasks) > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_render_chunk, tasks)
    else:
        results = [_render_chunk(task) for task in tasks]
    images = np.concatenate([digits for digits, _ in results])
    kept = np.concatenate([start + kept for (_, kept), (_, _, _, start, _) in zip(results, tasks)])
    return images, np.asarray(labels)[kept]


class AugmentedBatches(keras.utils.PyDataset):
    """Mixed batches from several sources, freshly augmented; the same seed gives the same batches.

    sources: {name: (uint8 images, labels, weight, augment function(image, rng))}.
    """

    def __init__(self, sources, batch_size, steps, seed, non_digits=None, **kwargs):
        super().__init__(**kwargs)
        self.sources, self.batch_size, self.steps, self.seed = sources, batch_size, steps, seed
        self.non_digits = non_digits if non_digits is not None else np.zeros((0, 28, 28), np.uint8)
        weights = np.array([weight for _, _, weight, _ in sources.values()], dtype=np.float64)
        counts = np.floor(batch_size * weights / weights.sum()).astype(int)
        counts[np.argmax(weights)] += batch_size - counts.sum()  # rounding goes to the largest source
        self.counts = dict(zip(sources, counts))
        self.epoch = 0

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        rng = np.random.default_rng((self.seed, self.epoch, index))
        images, targets = [], []
        for name, (source_images, source_labels, _, augment_function) in self.sources.items():
            picked = rng.integers(len(source_images), size=self.counts[name])
            images += [augment_function(source_images[i], rng) for i in picked]
            targets.append(one_hot(source_labels[picked]))
        if len(self.non_digits):
            count = int(round(NON_DIGIT_FRACTION * self.batch_size))
            picked = rng.integers(len(self.non_digits), size=count)
            images += [augment(self.non_digits[i], rng) for i in picked]
            targets.append(np.full((count, 10), 0.1, np.float32))
        return np.stack(images)[..., None], np.concatenate(targets)

    def on_epoch_end(self):
        self.epoch += 1


def jitter_pooled(image, rng):
    """The augmentation of a pre-rendered digit: it was drawn anew already, so only jitter."""
    return jitter(image.astype(np.float32) / 255.0, rng)


def one_hot(labels):
    """Digit labels as float32 one-hot targets (non-digits get uniform targets instead)."""
    return np.eye(10, dtype=np.float32)[labels]
