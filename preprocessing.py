"""Turn drawings and photos into model-ready 28x28 digits (pure NumPy/OpenCV).

MNIST's own normalisation: crop to the ink, scale the longer side to 20 px
keeping the aspect ratio, and put the centre of mass at the centre of 28x28.
"""

from dataclasses import dataclass

import cv2
import numpy as np

MNIST_SIZE = 28  # the model's input side
MNIST_BOX = 20  # MNIST fits each digit's longer side into 20 px
INK_THRESHOLD = 0.1  # ink values below this are background when cropping


def fit_to_mnist(ink):
    """A float32 28x28 image in [0, 1] from an ink image (ink = 1, background = 0).

    Raises ValueError when there is no ink.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2:
        raise ValueError(f"expected a 2-D ink image, got shape {ink.shape}")
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    columns = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    if rows.size == 0:
        raise ValueError("the image holds no ink")
    crop = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    height, width = crop.shape
    scale = MNIST_BOX / max(height, width)
    new_width = max(1, round(width * scale))
    new_height = max(1, round(height * scale))
    # INTER_AREA anti-aliases when shrinking; INTER_LINEAR is smoother when enlarging.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(crop, (new_width, new_height), interpolation=interpolation)
    # MNIST strokes have a saturated core; shrinking a faint or thin stroke must not
    # leave it grey, so the darkest ink becomes full intensity.
    small = np.clip(small / max(float(small.max()), 1e-6), 0.0, 1.0)
    return _centre_of_mass_to_middle(small)


def _centre_of_mass_to_middle(small):
    """Place a <=20x20 image in 28x28 with its centre of mass at (14, 14)."""
    total = small.sum()
    height, width = small.shape
    if total <= 0:
        centre_y, centre_x = (height - 1) / 2, (width - 1) / 2
    else:
        centre_y = float((small.sum(axis=1) * np.arange(height)).sum() / total)
        centre_x = float((small.sum(axis=0) * np.arange(width)).sum() / total)
    # MNIST's digits have their centre of mass at pixel (14, 14), measured in pixel
    # indices; a sub-pixel shift puts it there exactly instead of to the nearest pixel.
    middle = MNIST_SIZE / 2
    shift = np.float32([[1, 0, middle - centre_x], [0, 1, middle - centre_y]])
    return cv2.warpAffine(
        small,
        shift,
        (MNIST_SIZE, MNIST_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


class ImageError(ValueError):
    """The input is not an image we can read; the message says what is wrong."""


@dataclass(frozen=True)
class Prepared:
    """Model-ready digits found in one input, left to right."""

    digits: np.ndarray  # float32 (N, 28, 28, 1) in [0, 1], white on black; N = 0 when nothing to read
    boxes: tuple  # N tuples (x, y, width, height) in the input's pixels
    ink: np.ndarray  # float32 (H, W) ink map of the input, ink = 1


def decode_image(data):
    """An RGB or RGBA uint8 array from encoded file bytes (PNG, JPEG, ...)."""
    if not data:
        raise ImageError("the file is empty (0 bytes)")
    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ImageError("the file is not a readable image")
    if array.ndim == 3 and array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
    if array.ndim == 3:
        return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    return array


def ink_image(image):
    """A float32 ink map (ink = 1) from a grey, RGB or RGBA array."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0:
        raise ImageError(f"expected a 2-D image with 1, 3 or 4 channels, got shape {image.shape}")
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    image = image.astype(np.float32) / scale
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[..., 3]
        if alpha.min() < 0.99:  # a transparent background: the ink is where the alpha is
            return alpha
        image = image[..., :3]
    grey = image.mean(axis=2) if image.ndim == 3 else image
    # The background is the most common brightness: light paper means dark ink.
    return 1.0 - grey if np.median(grey) > 0.5 else grey


def prepare(image):
    """The digits of one image, split left to right and normalised like MNIST."""
    ink = ink_image(image)
    mask = (ink > INK_THRESHOLD).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes = sorted(
        (tuple(int(value) for value in stats[label, :4]) for label in range(1, count)),
        key=lambda box: box[0],
    )
    digits = [fit_to_mnist(ink[y : y + h, x : x + w]) for x, y, w, h in boxes]
    stacked = np.stack(digits)[..., None] if digits else np.zeros((0, MNIST_SIZE, MNIST_SIZE, 1), np.float32)
    return Prepared(digits=stacked, boxes=tuple(boxes), ink=ink)
