"""Turn drawings and photos into model-ready 28x28 digits (pure NumPy/OpenCV/Pillow).

    image = decoding.decode_image(file_bytes)   # PNG, JPEG, WebP, BMP, GIF, TIFF -> RGB/RGBA uint8
    prepared = prepare(image)                   # canvas RGBA, photo or grey array of any dtype
    prepared.digits                             # (N, 28, 28, 1) float32, left to right
    prepared.boxes                              # N boxes (x, y, width, height) in the image's pixels
    prepared = prepare_file(file_bytes)         # the same from a file, the boxes in its own pixels

The steps: find the ink (the alpha channel of a transparent canvas, the difference
from a plain background, or a photo's ink after its uneven lighting is divided out),
split it into digits (segmentation.py: pieces of one digit stay together, touching
digits are cut apart), give each digit MNIST's stroke width, and normalise it like
MNIST: crop to the ink, scale the longer side to 20 px, put the centre of mass at the
centre of 28x28. Files and arrays are decoded and checked first (decoding.py).
Bad input raises ImageError, and only ImageError, with a message that says what is wrong.
"""

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from decoding import DECODE_MAX_SIDE, WORK_SIDE, _decode, _shrink, _standard_array
from decoding import ImageError as ImageError  # raised by prepare(): part of this module's interface
from segmentation import (
    PART_HEIGHT,
    _find_pieces,
    _group_pieces,
    _mask_stroke_width,
    _Piece,
    _piece_mask,
    _split_wide,
    _stroke_width,
    best_partition,
    candidate_cut_paths,
)

MNIST_SIZE = 28  # the model's input side
MNIST_BOX = 20  # MNIST fits each digit's longer side into 20 px
INK_THRESHOLD = 0.1  # ink values below this are background when cropping

# Finding the ink.
PLAIN_TOLERANCE = 2  # grey levels: a drawing's background is one exact brightness, a photo's is noisy
PLAIN_FRACTION = 0.5  # share of pixels at the background brightness that makes an image a plain drawing
PLAIN_MIN_INK = 12  # grey levels: strokes fainter than this on a plain background are invisible
SAMPLE_PIXELS = 4096  # statistics over the whole image use about this many evenly spaced pixels
MIN_CONTRAST = 0.1  # ink this close to the background (as a fraction of full scale) is no ink
LIGHTING_SIDE = 128  # the paper's brightness is estimated at this size: lighting varies slowly
LIGHTING_WINDOW = 0.15  # window side, as a share of the shorter side: wider than any stroke
NOISE_SIGMAS = 5  # photo ink must stand this many noise deviations above the paper

# Splitting the ink into digits (how: segmentation.py).
MIN_DIGIT_SIDE = 0.03  # share of the image's shorter side: anything smaller is a dot or a speck...
MIN_DIGIT_PIXELS = 6  # ...and so is anything this small in any image
# Recognition-based cuts (prepare(image, read=...)): every way of cutting a wide piece at its
# candidate columns and cut paths (segmentation.py) is read by the model, and the most probable reading wins.
# With the model to check each cut, pieces this wide are tried: two touching 0s are ~1.1, but a 1 or a
# narrow digit overlapping its neighbour makes pairs of 0.75-0.9. Chosen on UNIPEN's validation writers and
# MNIST's validation images, dev-set draws of seeds 7, 8, 9 (not the benchmark's): at 0.9, 0.75 and 0.6
# touching numbers from pixels read 80.0 / 85.5 / 81.0, 84.0 / 86.5 / 82.5 and 84.5 / 86.5 / 83.0%; single
# digits read as several: 31, 35 and 58 of 10,000; letters and scribbles read as a confident number: 177,
# 211 and 215 of 500, most of the new ones an N, h or U cut into "11" (176 at 0.75 once such narrow cuts are
# flagged: NARROW_PAIR; the extra splits are NARROW_CUT_PENALTY's).
READ_SPLIT_ASPECT = 0.75
# Two digits in a piece narrower than this times its height overlap a lot: the reading is flagged as doubtful
# ("leave a little space between digits"), so that a letter read as "11" is not a confident answer...
NARROW_PAIR = 0.9
# ...and each cut of such a piece costs this much more, so that single digits are not split more often than
# before narrow pieces were cut. Chosen on UNIPEN's validation writers and MNIST's validation images (dev-set
# draws of seeds 7-9): at 1, 0.5 and 0.25, single digits read as several 36, 32 and 31 of 10,000 (31 without
# narrow cuts), touching numbers from pixels 85.0 / 87.5 / 83.0, 84.5 / 87.5 / 82.5 and 83.0 / 87.0 / 82.0%.
NARROW_CUT_PENALTY = math.log(0.25)
# Each cut must make the reading more likely by this factor, so that single digits stay whole.
# Chosen on UNIPEN's validation writers (dev-set pen conditions): 0.5, 0.7, 0.85 and 1.0 read
# 64%, 74%, 76% and 78% of touching numbers; 1.0 began to split single digits (0.2%), 0.85 did not.
CUT_PENALTY = math.log(0.85)
# A cut along a path that is not a straight column (segmentation.candidate_cut_paths: digits whose boxes
# overlap) costs more. Chosen on UNIPEN's validation writers with dev-set draws of other seeds (7, 8, 9)
# than the benchmark's: touching numbers from pixels read 76.5 / 84.0 / 79.0% with columns alone, and with
# paths at 1.0, 0.85, 0.7, 0.6: 78.0 / 80.5 / 79.0, 79.0 / 85.5 / 80.5, 79.5 / 85.5 / 82.0, 78.5 / 85.0 / 81.5%;
# single digits read as several: 28 of 10,000 with columns alone, 63, 33, 30, 30 with paths.
PATH_CUT_PENALTY = math.log(0.7)
MAX_SPAN_ASPECT = 1.5  # a part of a piece wider than this times its height is several digits, never one
# A reading with another digit count within this log ratio of the best (cut penalties included) makes
# the cuts doubtful. Measured on UNIPEN's validation writers (dev-set pen conditions): below 0.1 lie
# no single digits or spaced numbers, a thirtieth of the right touching numbers and a third of the
# wrong ones; log 2 flagged a third of single digits that reached the cutting step.
DOUBT_MARGIN = 0.1
SMALL_DIGIT = 0.35  # a digit less tall and wide than this share of the tallest is doubtful (a lost stroke?)

# Stroke width.
STROKE_BOX = 2 * MNIST_BOX  # strokes are measured and adjusted at twice MNIST's resolution
STROKE_LEVEL = 0.35  # share of a digit's typical ink level that counts as stroke
# Resampling and the sub-pixel centring blur the strokes' edges, which MNIST's do not
# have: this levels curve restores a saturated core. A digit drawn at the thinner target
# width then has MNIST's ink statistics (for a 2: about 150 pixels above 0.1, half of
# them above 0.9, mean 0.75).
LEVELS_GAIN, LEVELS_OFFSET = 1.5, 0.15
# Target stroke widths at STROKE_BOX, as segmentation._stroke_width() measures them: thinner
# strokes are thickened to MNIST's median width, thicker ones thinned to about MNIST's 90th
# percentile (thinning loses detail that does not come back, so it goes no further than needed).
STROKE_WIDTH_RANGE = (5.0, 6.5)
STROKE_MARGIN = 3  # px of background around a digit at STROKE_BOX: room to thicken thin strokes
THIN_STROKE = 2.5  # px at STROKE_BOX: strokes this thin may have lost pieces when shrunk
RIDGE_KERNEL = np.ones((3, 3), np.uint8)  # a ridge pixel is a local maximum of the distance map
# A dot is at most about 1.9 of its own stroke widths across; the most thickly drawn
# digits (a 40 px brush on an 84 px digit) are at least 2.4.
DOT_SIZE = 2.1


@dataclass(frozen=True)
class Prepared:
    """Model-ready digits found in one input, left to right."""

    digits: np.ndarray  # float32 (N, 28, 28, 1) in [0, 1], white on black; N = 0 when nothing to read
    boxes: tuple  # N tuples (x, y, width, height) in the input's pixels
    ink_levels: np.ndarray = field(repr=False)  # uint8 ink map (255 = ink), shrunk to WORK_SIDE when larger
    split_by: str = "pixels"  # what the digits were told apart by: "pixels" (the ink) or "strokes"
    doubt: str = None  # why the digits found may be wrong ("cuts" or "small"), None when they look right
    digit_strokes: tuple = None  # each digit's pen strokes ((K, 2) arrays, drawing order) when known

    @property
    def ink(self):
        """The float32 ink map (ink = 1), made when asked for: recognition never needs it."""
        return self.ink_levels.astype(np.float32) * np.float32(1 / 255)


def fit_to_mnist(ink):
    """A float32 28x28 image in [0, 1] from an ink image (ink = 1, background = 0).

    Raises ValueError when there is no ink.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2:
        raise ValueError(f"expected a 2-D ink image, got shape {ink.shape}")
    x, y, width, height = cv2.boundingRect((ink > INK_THRESHOLD).view(np.uint8))
    if width == 0:
        raise ValueError("the image holds no ink")
    crop = ink[y : y + height, x : x + width]
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
    moments = cv2.moments(small)
    height, width = small.shape
    if moments["m00"] <= 0:
        centre_y, centre_x = (height - 1) / 2, (width - 1) / 2
    else:
        centre_y = moments["m01"] / moments["m00"]
        centre_x = moments["m10"] / moments["m00"]
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


# ---------------------------------------------------------------------------
# Finding the ink


def ink_image(image):
    """A float32 ink map (ink = 1) from a grey, RGB or RGBA array (of any numeric dtype).

    Images longer than WORK_SIDE are shrunk to it first. Raises ImageError for arrays
    that are not images.
    """
    working, _ = _shrink(_standard_array(image), WORK_SIDE)
    ink, _ = _find_ink(working)
    return ink.astype(np.float32) * np.float32(1 / 255)


def _find_ink(image):
    """uint8 ink levels (255 = full ink) and a 0/1 mask of the pixels that are ink."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels in (2, 4):
        alpha_border = _border(image[..., -1])
        if np.count_nonzero(alpha_border < 128) * 2 > alpha_border.size:
            # A transparent background (a drawing canvas's default): black strokes
            # exist only in the alpha channel, so the alpha is the ink.
            return _plain_ink(cv2.extractChannel(image, channels - 1))
    grey = _grey(image)
    background = float(np.median(_border(grey)))
    if _is_plain(grey, background):
        # A plain background: ink is whatever differs from it, darker or lighter
        # (convertScaleAbs is |grey - background|, saturated to uint8).
        return _plain_ink(cv2.convertScaleAbs(grey, alpha=1.0, beta=-background))
    return _photo_ink(grey)


def _grey(image):
    """The brightness of a grey, grey+alpha, RGB or RGBA image (alpha ignored)."""
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels == 2:
        return cv2.extractChannel(image, 0)
    return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY if channels == 4 else cv2.COLOR_RGB2GRAY)


def _border(image):
    """The pixels along the image's four edges, as (n,) or (n, channels)."""
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def _sample(image):
    """About SAMPLE_PIXELS evenly spaced pixels of an image."""
    height, width = image.shape[:2]
    step = max(1, int(math.sqrt(height * width / SAMPLE_PIXELS)))
    return np.ascontiguousarray(image[::step, ::step])


def _is_plain(grey, background):
    """Whether most of the image is exactly the background's brightness, as in a drawing."""
    sample = _sample(grey)
    at_background = cv2.inRange(sample, background - PLAIN_TOLERANCE, background + PLAIN_TOLERANCE)
    return cv2.countNonZero(at_background) >= PLAIN_FRACTION * sample.size


def _plain_ink(ink):
    """Ink and mask of a clean drawing: everything clearly off the background is ink."""
    peak = int(ink.max())
    if peak < PLAIN_MIN_INK:
        return np.zeros_like(ink), np.zeros_like(ink)
    _, mask = cv2.threshold(ink, INK_THRESHOLD * peak, 1, cv2.THRESH_BINARY)
    if peak < 255:  # faint or coloured strokes still reach full ink
        ink = cv2.convertScaleAbs(ink, alpha=255.0 / peak)
    return ink, mask


def _photo_ink(grey):
    """Ink and mask of a photo or scan: lighting divided out, polarity found, noise rejected."""
    height, width = grey.shape
    small, _ = _shrink(grey, LIGHTING_SIDE)
    paper, dark_ink = _paper_brightness(small)
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    # A light blur averages out sensor noise but keeps one-pixel pen lines.
    residual = cv2.GaussianBlur(grey, (3, 3), 0).astype(np.float32) - paper
    noise = 1.4826 * float(np.median(np.abs(_sample(residual))))  # robust standard deviation
    floor = max(NOISE_SIGMAS * noise, 1.0)
    # Dividing by the paper's brightness (or, for light ink, by the room above it) makes
    # the ink's contrast independent of the lighting.
    contrast, headroom = (-residual, paper) if dark_ink else (residual, 255.0 - paper)
    ink = contrast / np.maximum(headroom, 1.0)
    # Sensor noise is about the same in grey levels everywhere, so in dim corners it is a
    # large share of the paper's brightness: only ink clearly above the noise counts.
    ink[contrast < floor] = 0
    ink_levels = (np.clip(ink, 0.0, 1.0) * 255).astype(np.uint8)
    otsu, _ = cv2.threshold(ink_levels, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    strong = max(otsu, MIN_CONTRAST * 255)
    # Hysteresis: faint parts of a stroke count when they touch a strong part.
    _, weak_mask = cv2.threshold(ink_levels, strong / 2, 1, cv2.THRESH_BINARY)
    count, labels = cv2.connectedComponents(weak_mask, connectivity=8)
    keep = np.zeros(count, dtype=bool)
    keep[np.unique(labels[ink_levels > strong])] = True
    keep[0] = False
    mask = keep[labels].astype(np.uint8)
    if not mask.any():
        return np.zeros_like(grey), mask
    peak = float(np.percentile(ink_levels[mask > 0], 95))
    ink_levels = cv2.convertScaleAbs(ink_levels, alpha=255.0 / max(peak, 1.0)) * mask
    return ink_levels, mask


def _paper_brightness(grey):
    """The paper's brightness under uneven light, and whether the ink is darker than it."""
    side = 2 * max(1, round(LIGHTING_WINDOW * min(grey.shape) / 2)) + 1
    margin = 2 * side
    # Continuing the image by point reflection keeps a brightness ramp going past the
    # edges, so the wide windows below are not biased towards the centre's light there.
    extended = np.pad(grey.astype(np.int16), margin, mode="reflect", reflect_type="odd")
    extended = np.clip(extended, 0, 255).astype(np.uint8)
    dark_ink = _ink_is_dark(grey, extended, margin, 2 * side + 1)
    # A closing (a maximum, then a minimum, over a window wider than any stroke) wipes
    # out dark strokes however densely they are drawn, and follows the light elsewhere;
    # an opening does the same for light strokes. The extremes of a window are easily
    # specks of dust or glare, hence a small median first; lighting is smooth, hence the blur.
    window = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    operation = cv2.MORPH_CLOSE if dark_ink else cv2.MORPH_OPEN
    paper = cv2.morphologyEx(cv2.medianBlur(extended, 3), operation, window)
    paper = cv2.blur(paper, (side, side))
    return paper[margin:-margin, margin:-margin], dark_ink


def _ink_is_dark(grey, extended, margin, side):
    """Whether the ink is darker than the paper, judged against a wide median (the paper)."""
    # A median much wider than any stroke is the paper whatever the ink; most of the
    # pixels far from it are ink, on one side of it.
    paper = cv2.medianBlur(extended, side)[margin:-margin, margin:-margin]
    deviation = grey.astype(np.int16) - paper
    spread = 1.4826 * float(np.median(np.abs(deviation)))  # robust standard deviation
    floor = max(NOISE_SIGMAS * spread, MIN_CONTRAST * 255 / 2)
    return np.count_nonzero(deviation < -floor) >= np.count_nonzero(deviation > floor)


# ---------------------------------------------------------------------------
# Stroke width and the MNIST digit


def _resize_longer_side(image, side):
    """The image scaled so that its longer side is `side` (area averaging when shrinking)."""
    height, width = image.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale >= 1:
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    factor = min(int(1 / scale), min(height, width))
    if factor >= 2:  # OpenCV averages whole blocks several times faster than fractional ones
        image = cv2.resize(image, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _digit_strokes(ink):
    """A digit's ink as a 0/1 mask at STROKE_BOX size, its stroke width and distance map."""
    strokes = _small_strokes(ink)
    width, inside = _stroke_width(strokes)
    block = max(ink.shape) // STROKE_BOX  # ink pixels per pixel of the small image
    if width < THIN_STROKE and block >= 2:
        # A line much thinner than a block that falls between two rows of the small image
        # is averaged to half strength in both, and parts of it are lost: widen the
        # strokes by a block and shrink again (they are thinned to the target later).
        strokes = _small_strokes(cv2.dilate(ink, np.ones((2 * block, 2 * block), np.uint8)))
        width, inside = _stroke_width(strokes)
    return strokes, width, inside


def _small_strokes(ink):
    """A digit's ink scaled to STROKE_BOX as a 0/1 mask, with a STROKE_MARGIN margin."""
    small = _resize_longer_side(ink, STROKE_BOX).astype(np.float32)
    # The typical ink level is the ink-weighted mean, not the maximum: where thin
    # lines cross, their shrunk levels add up.
    total = float(small.sum())
    level = float((small * small).sum()) / total if total > 0 else 0.0
    _, strokes = cv2.threshold(small, STROKE_LEVEL * level, 1, cv2.THRESH_BINARY)
    margin = STROKE_MARGIN
    return cv2.copyMakeBorder(strokes.astype(np.uint8), margin, margin, margin, margin, cv2.BORDER_CONSTANT)


def mnist_digit(ink):
    """A 28x28 MNIST-like digit, with MNIST's stroke width, from one digit's uint8 ink crop.

    Raises ValueError when the crop holds no ink, or only a dot.
    """
    strokes, width, inside = _digit_strokes(ink)
    if not strokes.any():
        raise ValueError("the digit holds no ink")
    if width * DOT_SIZE > STROKE_BOX:
        raise ValueError("a dot, not a digit")
    # Growing strokes by r on each side also grows the box by 2r, and the box is what
    # fit_to_mnist scales to MNIST_BOX: solve (w + 2r) / (box + 2r) = target / box for r.
    box = STROKE_BOX
    target = np.clip(width, *STROKE_WIDTH_RANGE)
    radius = min(box / 2 * (target - width) / (box - target), STROKE_MARGIN - 1)
    outside = cv2.distanceTransform(1 - strokes, cv2.DIST_L2, cv2.DIST_MASK_5)
    # The signed distance to the stroke edge (inside - outside, +-1/2 at the edge):
    # moving the edge by the radius thickens or thins every stroke alike, with a
    # one-pixel anti-aliased rim.
    adjusted = np.clip(inside - outside + (1 - strokes) + np.float32(radius), 0.0, 1.0)
    if radius < 0:
        # Thinning must not cut a digit apart where its strokes are thinner than average:
        # the ridge of the distance map (the strokes' centre lines) always stays.
        ridge = (inside >= cv2.dilate(inside, RIDGE_KERNEL)) & (strokes > 0)
        adjusted = np.maximum(adjusted, ridge.astype(np.float32))
    return np.clip(LEVELS_GAIN * fit_to_mnist(adjusted) - LEVELS_OFFSET, 0.0, 1.0)


# ---------------------------------------------------------------------------
# The whole pipeline


def prepare(image, read=None):
    """The digits of one image, split left to right and normalised like MNIST.

    read, when given, is the model: a function from (N, 28, 28, 1) digits to (N, 10)
    probabilities, and pieces wide enough to hold touching digits are cut where it
    reads them best; without it they are cut at their thinnest column.
    Raises ImageError for arrays that are not images; an image without digits gives N = 0.
    """
    array = _standard_array(image)
    working, scales = _shrink(array, WORK_SIDE)
    ink, mask = _find_ink(working)
    digits, boxes, sizes, doubts = [], [], [], []
    x, y, width, height = cv2.boundingRect(mask)
    if width and height:  # work on the ink's bounding box only
        ink_box, mask_box = ink[y : y + height, x : x + width], mask[y : y + height, x : x + width]
        labels, pieces = _find_pieces(mask_box)
        smallest = max(MIN_DIGIT_PIXELS, MIN_DIGIT_SIDE * min(working.shape[:2]))
        for group in _group_pieces(pieces):
            group_mask = _piece_mask(mask_box, labels, group)
            if read is not None and _may_be_several(group):
                parts, doubtful = _read_cuts(group, group_mask, ink_box, read)
                if doubtful:
                    doubts.append(group)
            else:
                parts = [(piece, piece_mask, None) for piece, piece_mask in _split_wide(group, group_mask)]
            for piece, piece_mask, digit in parts:
                if max(piece.width, piece.height) < smallest:
                    continue
                if digit is None:
                    try:
                        digit = mnist_digit(ink_box[piece.y0 : piece.y1, piece.x0 : piece.x1] * piece_mask)
                    except ValueError:  # a dot, or nothing left of a faint piece
                        continue
                digits.append(digit)
                sizes.append((piece.width, piece.height))
                boxes.append(_input_box(piece, (x, y), scales, array.shape))
    stacked = np.stack(digits)[..., None] if digits else np.zeros((0, MNIST_SIZE, MNIST_SIZE, 1), np.float32)
    doubt = "cuts" if doubts else ("small" if has_small_digit(sizes) else None)
    return Prepared(digits=stacked, boxes=tuple(boxes), ink_levels=ink, doubt=doubt)


def has_small_digit(sizes):
    """Whether any of several digits' (width, height) is tiny beside the tallest: a lost stroke, or a speck."""
    if len(sizes) < 2:
        return False
    tallest = max(height for _, height in sizes)
    return any(max(width, height) < SMALL_DIGIT * tallest for width, height in sizes)


def prepare_file(data, read=None):
    """prepare() of an image file's bytes, with the boxes in the file's own pixels."""
    array, (width, height) = _decode(data, DECODE_MAX_SIDE)
    prepared = prepare(array, read)
    scale_x, scale_y = width / array.shape[1], height / array.shape[0]
    if (scale_x, scale_y) == (1.0, 1.0):
        return prepared
    boxes = tuple(
        (math.floor(x * scale_x), math.floor(y * scale_y), math.ceil(w * scale_x), math.ceil(h * scale_y))
        for x, y, w, h in prepared.boxes
    )
    return replace(prepared, boxes=boxes)


def _may_be_several(group):
    """A piece, or a group of pieces, wide enough to hold touching digits.

    Groups count too: a digit that overlaps its neighbour's box by half its width joins it as if it were
    that digit's bar, and only the model can tell the two apart (UNIPEN's validation writers, dev-set
    draws of seeds 7-9: touching numbers from pixels 84.0 / 86.5 / 82.5 -> 85.0 / 87.5 / 83.0%; single
    digits read as several 35 -> 36 of 10,000, before NARROW_CUT_PENALTY).
    """
    return group.width > READ_SPLIT_ASPECT * group.height


def _surely_whole(confidence, narrow_cost):
    """Whether a piece read whole with this confidence beats every reading with cuts by the doubt margin.

    No reading with a cut scores more than the cheapest cut's cost (its parts read with certainty),
    so most single digits need no cuts looked for; the answer is the same as with them.
    """
    least_cut_cost = max(CUT_PENALTY, PATH_CUT_PENALTY) + narrow_cost  # log costs: the least negative
    return math.log(max(confidence, 1e-9)) - DOUBT_MARGIN >= least_cut_cost


def _read_cuts(piece, mask, ink_box, read):
    """A wide piece cut where the model reads it best: [(box, mask, digit)], and whether that is doubtful.

    Every span between two candidate cut paths is normalised and read in one batch;
    dynamic programming finds the cuts whose digits' confidences multiply to the
    most, each cut costing CUT_PENALTY (PATH_CUT_PENALTY along a path that is not a
    straight column; NARROW_CUT_PENALTY more in a narrow piece). Spans too short or too
    wide to be a digit are ruled out. A whole piece read so surely that no cut could win
    is not cut at all.
    """
    narrow = piece.width <= NARROW_PAIR * piece.height
    narrow_cost = NARROW_CUT_PENALTY if narrow else 0.0
    try:
        whole = mnist_digit(ink_box[piece.y0 : piece.y1, piece.x0 : piece.x1] * mask)
    except ValueError:  # nothing left of a faint piece: the spans below say whether any part is a digit
        whole = None
    if whole is not None and _surely_whole(float(read(whole[None, ..., None]).max()), narrow_cost):
        return [(piece, mask, whole)], False
    cut_paths = candidate_cut_paths(mask, _mask_stroke_width(mask))
    if not cut_paths:  # nowhere to cut: the piece is one digit
        return [(piece, mask, whole)], False
    height, width = mask.shape
    bounds = [np.zeros(height, np.int64), *(path for path, _ in cut_paths), np.full(height, width, np.int64)]
    straight = [True, *(is_column for _, is_column in cut_paths), True]
    spans, images = {}, []
    for start in range(len(bounds) - 1):
        for end in range(start + 1, len(bounds)):
            left, right = int(bounds[start].min()), int(bounds[end].max())
            if (start, end) != (0, len(bounds) - 1) and right - left > MAX_SPAN_ASPECT * piece.height:
                continue  # far too wide for one digit: not worth reading (the whole piece always is)
            span_mask = mask[:, left:right]
            if left != bounds[start].max() or right != bounds[end].min():  # a side follows a bent path
                columns = np.arange(left, right)
                span_mask = span_mask * ((columns >= bounds[start][:, None]) & (columns < bounds[end][:, None]))
            rows = np.flatnonzero(span_mask.any(axis=1))
            if rows.size == 0 or rows[-1] + 1 - rows[0] < PART_HEIGHT * piece.height:
                continue  # a tail or a flag, not a digit
            used = np.flatnonzero(span_mask.any(axis=0))
            top, bottom, x0, x1 = int(rows[0]), int(rows[-1]) + 1, left + int(used[0]), left + int(used[-1]) + 1
            box = _Piece(piece.x0 + x0, piece.y0 + top, piece.x0 + x1, piece.y0 + bottom, piece.labels)
            box_mask = span_mask[top:bottom, x0 - left : x1 - left]
            if (start, end) == (0, len(bounds) - 1) and box_mask.shape == mask.shape:  # normalised above
                if whole is None:
                    continue
                images.append(whole)
            else:
                try:
                    images.append(mnist_digit(ink_box[box.y0 : box.y1, box.x0 : box.x1] * box_mask))
                except ValueError:
                    continue
            spans[start, end] = (len(images) - 1, box, box_mask)
    if (0, len(bounds) - 1) not in spans:
        return [(piece, mask, None)], False
    confidences = read(np.stack(images)[..., None]).max(axis=1)
    chosen, margin = best_partition(
        len(bounds) - 1,
        {span: float(confidences[index]) for span, (index, _, _) in spans.items()},
        lambda position, cut: (CUT_PENALTY if straight[position] else PATH_CUT_PENALTY) + narrow_cost if cut else 0.0,
    )
    # A cut path that is not a straight column, or any cut of a narrow piece, parts digits whose inked boxes
    # overlap: a reading worth checking, and "leave a little space" is the advice that helps.
    bent = not all(straight[start] for start, _ in chosen)
    doubtful = margin < DOUBT_MARGIN or bent or (narrow and len(chosen) > 1)
    parts = []
    for span in chosen:
        index, box, span_mask = spans[span]
        parts.append((box, span_mask, images[index]))
    return parts, doubtful


def _input_box(piece, offset, scales, input_shape):
    """A piece's (x, y, width, height) in the input's pixels, from the shrunk ink box's."""
    (offset_x, offset_y), (scale_x, scale_y) = offset, scales
    x0 = math.floor((piece.x0 + offset_x) / scale_x)
    y0 = math.floor((piece.y0 + offset_y) / scale_y)
    x1 = min(math.ceil((piece.x1 + offset_x) / scale_x), input_shape[1])
    y1 = min(math.ceil((piece.y1 + offset_y) / scale_y), input_shape[0])
    return (x0, y0, x1 - x0, y1 - y0)
