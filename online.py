"""The online view of a digit: the pen's path (order, direction, pen lifts) as model input.

    features = trajectory_features(digit_strokes)      # float32 (POINTS, FEATURES)
    probabilities = combine(image_probabilities, online_probabilities, weight)

The strokes of one digit are joined in drawing order, the pen's jumps between
strokes included, and resampled to POINTS points evenly spaced along the way.
Each point carries its position (centred, scaled by the digit's longer side, so
a 1 stays thin), the unit direction of travel to the next point, and whether the
pen is down there. A 1 with a flag and a 7 look alike as pictures but not as
paths: the 1's pen goes up the flag and down the stem, the 7's along the bar and
down. train_online.py trains the network on these; the recognizer combines its
answer with the image model's wherever strokes exist.
"""

import numpy as np

import strokes as pen

POINTS = 64  # resampled points per digit: a digit's path has a few dozen turns at most
FEATURES = 5  # x, y, direction x, direction y, pen down
MIN_SCALE = 1e-6  # a digit that is a single dot has no size: keep the division finite


def trajectory_features(strokes):
    """float32 (POINTS, FEATURES) features of one digit's strokes ((K, 2) arrays, y down, in drawing order)."""
    strokes = [np.asarray(stroke, dtype=np.float64).reshape(-1, 2) for stroke in strokes]
    strokes = [stroke for stroke in strokes if len(stroke)]
    if not strokes:
        return np.zeros((POINTS, FEATURES), np.float32)
    points = np.concatenate(strokes)
    # Each segment is ink (within a stroke) or a jump (from one stroke's end to the next's start).
    pen_down = np.concatenate([np.r_[np.ones(len(stroke) - 1), 0.0] for stroke in strokes])[:-1]
    low, high = points.min(axis=0), points.max(axis=0)
    scale = max(float((high - low).max()) / 2, MIN_SCALE)
    points = (points - (low + high) / 2) / scale
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
    if len(points) == 1 or lengths.sum() <= 0:
        positions = np.repeat(points[:1], POINTS, axis=0)
        return np.hstack([positions, np.zeros((POINTS, 2)), np.ones((POINTS, 1))]).astype(np.float32)
    along = np.r_[0.0, np.cumsum(lengths)]
    targets = np.linspace(0, along[-1], POINTS)
    segment = np.clip(np.searchsorted(along, targets, side="right") - 1, 0, len(lengths) - 1)
    fraction = np.divide(targets - along[segment], lengths[segment], out=np.zeros(POINTS), where=lengths[segment] > 0)
    positions = points[segment] + fraction[:, None] * (points[segment + 1] - points[segment])
    steps = np.diff(positions, axis=0, append=positions[-1:] + (positions[-1:] - positions[-2:-1]))
    norms = np.linalg.norm(steps, axis=1, keepdims=True)
    directions = np.divide(steps, norms, out=np.zeros_like(steps), where=norms > 0)
    return np.hstack([positions, directions, pen_down[segment][:, None]]).astype(np.float32)


def combine(image_probabilities, online_probabilities, weight):
    """The two views' probabilities multiplied with weights (weight on the image, 1 - weight online), renormalised."""
    image_probabilities = np.asarray(image_probabilities, dtype=np.float64)
    online_probabilities = np.asarray(online_probabilities, dtype=np.float64)
    logits = weight * np.log(np.clip(image_probabilities, 1e-12, 1)) + (1 - weight) * np.log(
        np.clip(online_probabilities, 1e-12, 1)
    )
    logits -= logits.max(axis=-1, keepdims=True)
    combined = np.exp(logits)
    return (combined / combined.sum(axis=-1, keepdims=True)).astype(np.float32)


def canvas_views(sample_strokes, rng):
    """A pen sample drawn once on the canvas: (its strokes there, the 28x28 digit the image model gets of them)."""
    placed, brush = pen.place_strokes(sample_strokes, rng)
    boxes = [pen.stroke_box(stroke, brush) for stroke in placed]
    drawn = pen.draw_group(range(len(placed)), placed, boxes, brush, 0)
    return placed, (drawn[0] if drawn is not None else np.zeros((28, 28), np.float32))


def validation_views(digits, indices, seed):
    """(each digit's strokes on the canvas, the image model's (N, 28, 28, 1) inputs) of some pen digits.

    Each digit is drawn once, with a generator seeded by (seed, index): train_online.py and
    benchmarks/online.py score the very same drawings.
    """
    placed, images = [], []
    for index in indices:
        strokes, image = canvas_views(digits.strokes(index), np.random.default_rng((seed, int(index))))
        placed.append(strokes)
        images.append(image)
    return placed, np.stack(images)[..., None]
