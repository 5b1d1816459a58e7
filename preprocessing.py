"""Turn drawings and photos into model-ready 28x28 digits (pure NumPy/OpenCV/Pillow).

    image = decode_image(file_bytes)     # PNG, JPEG, WebP, BMP, GIF, TIFF -> RGB/RGBA uint8
    prepared = prepare(image)            # canvas RGBA, photo or grey array of any dtype
    prepared.digits                      # (N, 28, 28, 1) float32, left to right
    prepared.boxes                       # N boxes (x, y, width, height) in the image's pixels

The steps: find the ink (the alpha channel of a transparent canvas, the difference
from a plain background, or a photo's ink after its uneven lighting is divided out),
split it into digits (pieces of one digit stay together, touching digits are cut
apart), give each digit MNIST's stroke width, and normalise it like MNIST: crop to
the ink, scale the longer side to 20 px, put the centre of mass at the centre of 28x28.
Bad input raises ImageError, and only ImageError, with a message that says what is wrong.
"""

import contextlib
import io
import math
import threading
import warnings
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image, ImageOps

MNIST_SIZE = 28  # the model's input side
MNIST_BOX = 20  # MNIST fits each digit's longer side into 20 px
INK_THRESHOLD = 0.1  # ink values below this are background when cropping

# Decoding.
SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
SIGNATURES = {  # first bytes of the supported formats: a file that has them but fails is damaged
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"RIFF": "WEBP",  # with "WEBP" at byte 8
    b"BM": "BMP",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
EXIF_ORIENTATION = 0x0112  # the EXIF tag that says how a photo is turned
TIFF_ROWS_PER_STRIP, TIFF_TILE_WIDTH, TIFF_TILE_LENGTH = 278, 322, 323  # TIFF tags: how big a block it decodes
MAX_PIXELS = 40_000_000  # more than any phone photo; a bigger header is a decompression bomb
WORK_SIDE = 1024  # longer side the ink is found at: digits stay tens of pixels tall even in photos
DECODE_MAX_SIDE = 2 * WORK_SIDE  # JPEGs decode straight to about this size (draft mode), then shrink
# What decoding may hold at once, in bytes of decoded pixels: a 1-bit PNG of 5 kB or a float
# TIFF of 250 kB can be 40 megapixels, and each such upload must cost at most a few hundred MB.
MAX_DECODED_BYTES = 200 * 2**20
BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}  # Pillow's; 4 otherwise
# Modes Image.reduce() averages correctly; others are converted to these first (palette
# indices and single bits cannot be averaged).
REDUCIBLE_MODES = {"L", "LA", "La", "RGB", "RGBA", "RGBa", "I", "F", "CMYK", "YCbCr"}
# Decodes holding more than this take one of DECODE_SLOTS: however many sessions upload
# at once, a server process holds at most two big decodes' worth of pixels.
LARGE_DECODE_BYTES = 32 * 2**20
DECODE_SLOTS = threading.BoundedSemaphore(2)
REDUCE_BAND_BYTES = 8 * 2**20  # full-size pixels converted and shrunk at a time

# Finding the ink.
PLAIN_TOLERANCE = 2  # grey levels: a drawing's background is one exact brightness, a photo's is noisy
PLAIN_FRACTION = 0.5  # share of pixels at the background brightness that makes an image a plain drawing
PLAIN_MIN_INK = 12  # grey levels: strokes fainter than this on a plain background are invisible
SAMPLE_PIXELS = 4096  # statistics over the whole image use about this many evenly spaced pixels
MIN_CONTRAST = 0.1  # ink this close to the background (as a fraction of full scale) is no ink
LIGHTING_SIDE = 128  # the paper's brightness is estimated at this size: lighting varies slowly
LIGHTING_WINDOW = 0.15  # window side, as a share of the shorter side: wider than any stroke
NOISE_SIGMAS = 5  # photo ink must stand this many noise deviations above the paper
SPECKLE_FRACTION = 0.01  # pieces whose box is below this share of the image side are noise

# Splitting the ink into digits.
MAX_PIECES = 60  # more separate pieces than this is noise or text, not a number: keep the largest
MIN_DIGIT_SIDE = 0.03  # share of the image's shorter side: anything smaller is a dot or a speck...
MIN_DIGIT_PIXELS = 6  # ...and so is anything this small in any image
MERGE_OVERLAP = 0.5  # pieces overlapping this much of the narrower one's width are one digit
MERGE_GAP = 0.5  # ...unless they are further apart vertically than this share of the digit height
PART_HEIGHT = 0.5  # pieces less tall than this share of the tallest are parts of a digit (bars, flags)...
ATTACH_DISTANCE = 0.5  # ...joined to the nearest digit within this share of its height
SMALL_PIECE = 0.25  # an unattached part smaller than this share of the height is a speck: dropped
SPLIT_ASPECT = 1.25  # a piece wider than this times its height may be several touching digits
CUT_REGION = 0.2  # cuts are looked for between this share of the width from either side
CUT_STROKES = 2.5  # a cut column holds at most this much ink, in stroke widths...
CUT_RUNS = 2  # ...in at most this many separate runs (one where the digits touch, one passing by)
# Recognition-based cuts (prepare(image, read=...)): every way of cutting a wide piece at its
# candidate columns is read by the model, and the most probable reading wins.
MAX_CUTS = 8  # candidate cut columns kept per piece (the thinnest): at most 45 spans to read
READ_SPLIT_ASPECT = 0.9  # with the model to check each cut, pieces this wide are tried: two touching 0s are ~1.1
CROSSING_STROKES = 6  # where two digits' strokes overlap, a column is one run of up to this many stroke widths
# Each cut must make the reading more likely by this factor, so that single digits stay whole.
# Chosen on UNIPEN's validation writers (dev-set pen conditions): 0.5, 0.7, 0.85 and 1.0 read
# 64%, 74%, 76% and 78% of touching numbers; 1.0 began to split single digits (0.2%), 0.85 did not.
CUT_PENALTY = math.log(0.85)
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
# Target stroke widths at STROKE_BOX, as _stroke_width() measures them: thinner strokes are
# thickened to MNIST's median width, thicker ones thinned to about MNIST's 90th percentile
# (thinning loses detail that does not come back, so it goes no further than needed).
STROKE_WIDTH_RANGE = (5.0, 6.5)
STROKE_MARGIN = 3  # px of background around a digit at STROKE_BOX: room to thicken thin strokes
THIN_STROKE = 2.5  # px at STROKE_BOX: strokes this thin may have lost pieces when shrunk
RIDGE_KERNEL = np.ones((3, 3), np.uint8)  # a ridge pixel is a local maximum of the distance map
# A dot is at most about 1.9 of its own stroke widths across; the most thickly drawn
# digits (a 40 px brush on an 84 px digit) are at least 2.4.
DOT_SIZE = 2.1


class ImageError(ValueError):
    """The input is not an image we can read; the message says what is wrong."""


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
# Decoding files


def decode_image(data, max_side=DECODE_MAX_SIDE, size=None):
    """An RGB or RGBA uint8 array from encoded file bytes (PNG, JPEG, WebP, BMP, GIF, TIFF).

    EXIF rotation is applied, animations give their first frame, and images longer
    than max_side are shrunk to at most max_side (JPEGs while decoding, others by
    whole factors as soon as they are decoded), so that no file costs more than
    MAX_DECODED_BYTES. size, when given, is the (width, height) the image must have,
    such as a drawing canvas's: checked from the header, before anything is decoded.
    Raises ImageError, with the reason, for anything that is not a readable image.
    """
    return _decode(data, max_side, size)[0]


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


def _decode(data, max_side, size=None):
    """The decoded array and the (width, height) the upright image has in the file."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"expected the file's bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageError("the file is empty (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's notes on damaged metadata that it skips
        # Pillow only warns between 89 and 179 megapixels; past our limit, any size is refused.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open_image(data)
        if size is not None and image.size != tuple(size):
            raise ImageError(
                f"the drawing is {image.width}x{image.height} pixels, but the canvas is {size[0]}x{size[1]}"
            )
        if image.format == "JPEG" and max(image.size) > max_side:
            # The JPEG decoder can skip detail at 1/2, 1/4 or 1/8 scale: far faster than
            # decoding 24 megapixels and throwing most of them away. It picks the
            # smallest scale that still gives at least the requested size.
            scale = max_side / 2 / max(image.size)
            image.draft(image.mode, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        full_size = image.size
        held = _decoded_bytes(image)
        if held > MAX_DECODED_BYTES:
            raise ImageError(
                f"the image is too large to decode: {image.width}x{image.height} {image.mode} pixels take "
                f"{held / 2**20:.0f} MB, more than {MAX_DECODED_BYTES // 2**20} MB: save it smaller, or as JPEG"
            )
        try:
            with DECODE_SLOTS if held > LARGE_DECODE_BYTES else contextlib.nullcontext():
                image.load()
                orientation = image.getexif().get(EXIF_ORIENTATION, 1)
                # Shrunk straight away, in Pillow's own format: no full-size copy is ever made.
                image = _reduce(image, max_side)
            if orientation in (5, 6, 7, 8):  # turned by 90 degrees
                full_size = full_size[::-1]
            image = ImageOps.exif_transpose(image)
            array = _pillow_to_array(image)
        except Exception as error:  # Pillow raises many types here: OSError, SyntaxError, struct.error...
            raise ImageError(f"the {image.format} file is damaged or truncated ({error})") from error
    return _shrink(array, max_side)[0], full_size


def _working_mode(image):
    """The mode an image is averaged in when it is shrunk: its own, or the nearest one Pillow can average."""
    if image.mode in REDUCIBLE_MODES and "transparency" not in image.info:
        return image.mode
    if image.mode in ("1", "I;16", "I;16L", "I;16B", "I;16N"):
        return "L" if image.mode == "1" else "I"
    transparent = image.mode in ("PA", "LA", "RGBA") or "transparency" in image.info
    return "RGBA" if transparent else "RGB"


def _decoded_bytes(image):
    """The bytes that decoding an opened image holds at once: its pixels (it is shrunk a band at a time)."""
    pixels = image.width * image.height
    held = pixels * BYTES_PER_PIXEL.get(image.mode, 4)
    if image.format == "TIFF":  # libtiff decodes a whole strip or tile into a buffer of its own first
        tags = image.tag_v2

        def tag(number, default):  # a forged file's tag may be anything: only a positive count counts
            value = tags.get(number, default)
            return value if isinstance(value, int) and value > 0 else default

        block_width = min(tag(TIFF_TILE_WIDTH, image.width), image.width)
        block_rows = min(tag(TIFF_TILE_LENGTH, tag(TIFF_ROWS_PER_STRIP, image.height)), image.height)
        held += block_width * block_rows * BYTES_PER_PIXEL.get(image.mode, 4)
    return held


def _reduce(image, max_side):
    """A loaded image longer than max_side shrunk by the smallest whole factor that fits it, box-averaged.

    A band of rows at a time: converting or premultiplying the whole image first
    would double what it takes.
    """
    factor = math.ceil(max(image.size) / max_side)
    if factor < 2:
        return image
    mode = _working_mode(image)
    width, height = image.size
    rows = factor * max(1, REDUCE_BAND_BYTES // (4 * width * factor))  # whole blocks of factor rows
    reduced = None
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(top + rows, height)))
        band = (band if mode == band.mode else band.convert(mode)).reduce(factor)
        if reduced is None:
            reduced = Image.new(band.mode, (math.ceil(width / factor), math.ceil(height / factor)))
            reduced.info = dict(image.info)  # EXIF orientation, for exif_transpose
        reduced.paste(band, (0, top // factor))
    return reduced


def _open_image(data):
    """A lazily decoded Pillow image whose header has been checked, or ImageError."""
    try:
        image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"the image is too large to decode safely: {error}") from error
    except Exception as error:  # unidentified, or a header Pillow cannot parse
        raise ImageError(_why_unreadable(data)) from error
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"the image is too large: {width}x{height} pixels, more than "
            f"{MAX_PIXELS // 1_000_000} megapixels (a decompression bomb?)"
        )
    if width == 0 or height == 0:
        raise ImageError("the image has no pixels")
    return image


def _why_unreadable(data):
    """A specific message for bytes that Pillow cannot open as a supported image."""
    head = data[:2048]
    if head.startswith(b"%PDF"):
        return "not an image: looks like a PDF document"
    if head[4:8] == b"ftyp":
        return "HEIC/AVIF photos are not supported: save or export the picture as JPEG or PNG"
    if b"<svg" in head.lower():
        return "SVG drawings are not supported: export the drawing as PNG"
    if _looks_like_text(head):
        return "not an image: looks like a text file"
    for signature, name in SIGNATURES.items():
        if head.startswith(signature) and (name != "WEBP" or head[8:12] == b"WEBP"):
            return f"the {name} file is damaged or truncated"
    try:  # a real image in a format we do not accept deserves its name in the message
        other_format = Image.open(io.BytesIO(data)).format
    except Exception:
        other_format = None
    supported = ", ".join(SUPPORTED_FORMATS)
    if other_format:
        return f"unsupported image format {other_format}: use one of {supported}"
    return f"not an image, or an unsupported format: the file is not {supported}"


def _looks_like_text(head):
    """Whether bytes decode as UTF-8 text without control characters."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # not just a character cut in half at the end
            return False
        text = head[: error.start].decode("utf-8")
    return bool(text) and all(character.isprintable() or character in "\t\n\r\f" for character in text)


def _pillow_to_array(image):
    """An RGB or RGBA uint8 array from a loaded Pillow image of any mode."""
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):  # 16/32-bit grey and float
        grey = _uint8_levels(np.asarray(image))
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    # Palette and grey images may name a transparent colour; RGBA keeps it.
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    return np.asarray(image.convert("RGBA" if transparent else "RGB"))


# ---------------------------------------------------------------------------
# Arrays


def _standard_array(image):
    """A uint8 (H, W) or (H, W, 2|3|4) array from an array of any numeric dtype."""
    try:
        array = np.asarray(image)
    except (TypeError, ValueError) as error:
        raise ImageError(f"expected an image array: {error}") from error
    if array.dtype.kind not in "biuf":
        raise ImageError(f"expected a numeric image array, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (2, 3, 4))):
        raise ImageError(f"expected an (H, W) or (H, W, C) image with 1 to 4 channels, got shape {array.shape}")
    if array.size == 0:
        raise ImageError(f"the image has no pixels (shape {array.shape})")
    return np.ascontiguousarray(_uint8_levels(array))  # OpenCV needs contiguous rows


def _uint8_levels(array):
    """0-255 levels: floats are read as 0-1 (0-255 if larger values occur), uint16 as 16-bit."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        top = float(array.max(where=finite, initial=0.0))
        full = 1.0 if top <= 1.0 else 255.0
        # +inf is as bright as it gets; NaN and -inf are nothing.
        array = np.where(finite, array, np.where(array > 0, full, 0.0))
    elif array.dtype == np.uint16:
        full = 65535.0
    else:  # other integers: 8-bit values if they fit, else 16-bit, else their own range
        top = float(array.max())
        full = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    levels = np.clip(array.astype(np.float64), 0.0, full) * (255.0 / full)
    return (levels + 0.5).astype(np.uint8)


def fit_within(image, max_side):
    """The image with its longer side at most max_side, area-averaged; no side ever shrinks below 1 px."""
    return _shrink(image, max_side)[0]


def _shrink(image, max_side):
    """The image with its longer side at most max_side (INTER_AREA), and the (x, y) scales."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image, (1.0, 1.0)
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
    return small, (size[0] / width, size[1] / height)


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
# Splitting the ink into digits


@dataclass
class _Piece:
    """Connected ink pieces taken as one digit: a box (x1, y1 exclusive) and their labels."""

    x0: int
    y0: int
    x1: int
    y1: int
    labels: list

    @property
    def width(self):
        return self.x1 - self.x0

    @property
    def height(self):
        return self.y1 - self.y0

    def join(self, other):
        return _Piece(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
            self.labels + other.labels,
        )


def _find_pieces(mask):
    """The ink's connected pieces, specks removed, and a label image to tell them apart.

    The label image is None when there is a single piece: its mask is the ink mask.
    """
    height, width = mask.shape
    # Outer contours give the pieces' boxes; connectedComponentsWithStats takes
    # several times longer, and most drawings are one piece that needs no labels.
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    outer = [contour for contour, links in zip(contours, hierarchy[0] if contours else ()) if links[3] < 0]
    labels = cv2.connectedComponents(mask, connectivity=8)[1] if len(outer) > 1 else None
    speck = SPECKLE_FRACTION * max(height, width)
    pieces = []
    for contour in outer:
        x, y, w, h = cv2.boundingRect(contour)
        if max(w, h) > speck:
            start_x, start_y = contour[0, 0]
            label = 1 if labels is None else int(labels[start_y, start_x])
            pieces.append(_Piece(x, y, x + w, y + h, [label]))
    if len(pieces) > MAX_PIECES:
        pieces = sorted(pieces, key=lambda piece: piece.width * piece.height)[-MAX_PIECES:]
    return labels, pieces


def _group_pieces(pieces):
    """Digits as groups of pieces: strokes of one digit (a 5's bar, a 1's flag) stay together."""
    if not pieces:
        return []
    digit_height = max(piece.height for piece in pieces)
    # Pieces stacked above each other (a 5's bar, a 4 drawn in several strokes) join first;
    # what is still short after that is part of a digit.
    groups = _merge_overlapping(pieces, digit_height)
    parts = [group for group in groups if group.height < PART_HEIGHT * digit_height]
    groups = [group for group in groups if group.height >= PART_HEIGHT * digit_height]
    while parts:
        part = parts.pop(0)  # left to right
        neighbours = groups + parts
        gaps = [_gap(part, neighbour) for neighbour in neighbours]
        if not gaps or min(gaps) > ATTACH_DISTANCE * digit_height:
            if max(part.width, part.height) >= SMALL_PIECE * digit_height:
                groups.append(part)  # a short mark on its own: the model will say how digit-like it is
            continue
        nearest = int(np.argmin(gaps))
        if nearest < len(groups):
            groups[nearest] = groups[nearest].join(part)
        else:  # two parts, such as the dashes of a broken 1, may make a digit together
            joined = parts.pop(nearest - len(groups)).join(part)
            if joined.height >= PART_HEIGHT * digit_height:
                groups.append(joined)
            else:
                parts.append(joined)
    return _merge_overlapping(groups, digit_height)


def group_boxes(boxes):
    """Indices of ink boxes (x0, y0, x1, y1) grouped into digits, left to right, as pieces of ink are.

    Strokes use it: each stroke's box is one piece. Boxes too small to be a digit
    or a part of one are left out.
    """
    pieces = [_Piece(x0, y0, x1, y1, [index]) for index, (x0, y0, x1, y1) in enumerate(boxes)]
    return [sorted(group.labels) for group in _group_pieces(pieces)]


def _merge_overlapping(groups, digit_height):
    """Join groups that overlap strongly in x: strokes of one digit drawn apart."""
    groups = sorted(groups, key=lambda group: group.x0)
    merged = True
    while merged:  # a joined group is wider and may now overlap another one
        merged = False
        for index, first in enumerate(groups):
            for other_index in range(index + 1, len(groups)):
                other = groups[other_index]
                if other.x0 >= first.x1:  # sorted by x0: no later group overlaps either
                    break
                if _belong_together(first, other, digit_height):
                    groups[index] = first.join(other)
                    del groups[other_index]
                    merged = True
                    break
            if merged:
                break
    return groups


def _belong_together(first, second, digit_height):
    """Whether two groups overlap in x by most of the narrower one and are vertically close."""
    overlap = min(first.x1, second.x1) - max(first.x0, second.x0)
    vertical_gap = max(first.y0, second.y0) - min(first.y1, second.y1)
    narrower = min(first.width, second.width)
    return overlap > MERGE_OVERLAP * narrower and vertical_gap <= MERGE_GAP * digit_height


def _gap(first, second):
    """The distance between two boxes (0 when they overlap)."""
    dx = max(first.x0 - second.x1, second.x0 - first.x1, 0)
    dy = max(first.y0 - second.y1, second.y0 - first.y1, 0)
    return math.hypot(dx, dy)


def _piece_mask(mask, labels, piece):
    """A 0/1 uint8 mask of the piece's own ink inside its box."""
    if labels is None:
        return mask[piece.y0 : piece.y1, piece.x0 : piece.x1]
    crop = labels[piece.y0 : piece.y1, piece.x0 : piece.x1]
    inside = crop == piece.labels[0] if len(piece.labels) == 1 else np.isin(crop, piece.labels)
    return inside.view(np.uint8)


def _split_wide(piece, mask, stroke_width=None):
    """A single piece cut into digits where touching digits meet, when it is too wide for one.

    Groups of several pieces are left whole: they were joined on purpose.
    """
    if len(piece.labels) > 1 or piece.width <= SPLIT_ASPECT * piece.height:
        return [(piece, mask)]
    if stroke_width is None:
        stroke_width = _mask_stroke_width(mask)
    # Touching digits meet in a single stroke: the column there holds about one stroke
    # width of ink, in one run (or two, with a stroke passing by), and passes through no
    # loop. A wide 0 has a loop, a wide 2 more ink or a tail too short to be a digit.
    column_ink, runs, thin = _column_profile(mask, stroke_width)
    can_cut = thin & ~_hole_columns(mask)
    low, high = round(CUT_REGION * piece.width), round((1 - CUT_REGION) * piece.width)
    candidates = low + np.flatnonzero(can_cut[low:high])
    if candidates.size == 0:
        return [(piece, mask)]
    # The best cut crosses the least ink in the fewest runs: inside a 0 a column crosses
    # two strokes, where two 0s touch it crosses one.
    cut = int(candidates[np.argmin(column_ink[candidates] * runs[candidates])])
    halves = []
    for start, end in ((0, cut), (cut, piece.width)):
        rows = np.flatnonzero(mask[:, start:end].any(axis=1))
        if rows.size == 0 or rows[-1] + 1 - rows[0] < PART_HEIGHT * piece.height:
            return [(piece, mask)]  # a tail or a flag, not a digit: the piece was one digit
        top, bottom = rows[0], rows[-1] + 1
        box = _Piece(piece.x0 + start, piece.y0 + top, piece.x0 + end, piece.y0 + bottom, piece.labels)
        halves.append((box, mask[top:bottom, start:end]))
    # Either half may still hold several digits.
    return [part for half, half_mask in halves for part in _split_wide(half, half_mask, stroke_width)]


def _mask_stroke_width(mask):
    """The mean stroke width of a 0/1 mask that may touch its edges."""
    return _stroke_width(cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0))[0]


def _column_profile(mask, stroke_width):
    """Each column's ink, its number of separate runs, and whether it is thin enough to cut."""
    column_ink = mask.sum(axis=0)
    runs = mask[0] + np.count_nonzero(mask[1:] > mask[:-1], axis=0)
    return column_ink, runs, (column_ink <= CUT_STROKES * stroke_width) & (runs <= CUT_RUNS)


def _hole_columns(mask):
    """Which columns of a 0/1 mask pass through a hole: a cut there would open a 0's loop."""
    background = cv2.copyMakeBorder(1 - mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    _, regions = cv2.connectedComponents(background, connectivity=4)
    holes = (regions != regions[0, 0]) & (background > 0)  # background not reached from outside
    return holes[1:-1, 1:-1].any(axis=0)


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


def _stroke_width(strokes):
    """The mean stroke width, in pixels, of a 0/1 uint8 mask with a background margin.

    Also returns the distance transform (each ink pixel's distance to the background).
    """
    inside = cv2.distanceTransform(strokes, cv2.DIST_L2, cv2.DIST_MASK_5)
    # Across a stroke of width w the distance to the edge runs 1, 2, ..., w/2, ..., 2, 1:
    # its mean is about w/4 + 1/2.
    return 4 * (float(inside.sum()) / max(cv2.countNonZero(strokes), 1) - 0.5), inside


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


def _may_be_several(piece):
    """A single piece wide enough to hold touching digits (groups of pieces were joined on purpose)."""
    return len(piece.labels) == 1 and piece.width > READ_SPLIT_ASPECT * piece.height


def _candidate_cuts(mask, stroke_width):
    """Columns where touching digits may meet: the thinnest column of each run of thin, loop-free columns."""
    column_ink, runs, thin = _column_profile(mask, stroke_width)
    crossing = (column_ink <= CROSSING_STROKES * stroke_width) & (runs == 1)
    can_cut = (thin | crossing) & ~_hole_columns(mask)
    edge = max(1, round(stroke_width))
    can_cut[:edge] = can_cut[-edge:] = False
    cost = column_ink * runs
    cuts, start = [], None
    for column, allowed in enumerate(np.append(can_cut, False)):
        if allowed and start is None:
            start = column
        elif not allowed and start is not None:
            cuts.append(start + int(np.argmin(cost[start:column])))
            start = None
    cuts = sorted(cuts, key=lambda column: cost[column])[:MAX_CUTS]
    return sorted(cuts)


def _read_cuts(piece, mask, ink_box, read):
    """A wide piece cut where the model reads it best: [(box, mask, digit)], and whether that is doubtful.

    Every span between two candidate cuts is normalised and read in one batch;
    dynamic programming finds the cuts whose digits' confidences multiply to the
    most, each cut costing CUT_PENALTY. Spans too short to be a digit are ruled out.
    """
    cuts = _candidate_cuts(mask, _mask_stroke_width(mask))
    if not cuts:  # nowhere to cut: the piece is one digit
        return [(piece, mask, None)], False
    bounds = [0, *cuts, piece.width]
    spans, images = {}, []
    for start in range(len(bounds) - 1):
        for end in range(start + 1, len(bounds)):
            span_mask = mask[:, bounds[start] : bounds[end]]
            rows = np.flatnonzero(span_mask.any(axis=1))
            if rows.size == 0 or rows[-1] + 1 - rows[0] < PART_HEIGHT * piece.height:
                continue  # a tail or a flag, not a digit
            top, bottom = int(rows[0]), int(rows[-1]) + 1
            box = _Piece(
                piece.x0 + bounds[start], piece.y0 + top, piece.x0 + bounds[end], piece.y0 + bottom, piece.labels
            )
            crop = ink_box[box.y0 : box.y1, box.x0 : box.x1] * span_mask[top:bottom]
            try:
                images.append(mnist_digit(crop))
            except ValueError:
                continue
            spans[start, end] = (len(images) - 1, box, span_mask[top:bottom])
    if (0, len(bounds) - 1) not in spans:
        return [(piece, mask, None)], False
    confidences = read(np.stack(images)[..., None]).max(axis=1)
    chosen, margin = best_partition(
        len(bounds) - 1,
        {span: float(confidences[index]) for span, (index, _, _) in spans.items()},
        lambda position, cut: CUT_PENALTY if cut else 0.0,
    )
    doubtful = margin < DOUBT_MARGIN
    parts = []
    for span in chosen:
        index, box, span_mask = spans[span]
        parts.append((box, span_mask, images[index]))
    return parts, doubtful


def best_partition(count, confidences, boundary_cost):
    """The split of units 0..count-1 into consecutive spans whose reading is most probable.

    confidences: {(start, end): the model's top probability for units start..end-1
    read as one digit}; spans not in it cannot be a digit. boundary_cost(position,
    cut): the log cost of cutting (or not) between units position - 1 and position.
    Returns the chosen spans, left to right, and the margin: how much less likely
    (as a log ratio) the best reading with another number of digits is (inf when none).
    """
    # best[end][digits]: (log score of units 0..end-1 read as that many digits, where the last span starts)
    best = [{} for _ in range(count + 1)]
    best[0][0] = (0.0, None)
    for end in range(1, count + 1):
        for start in range(end):
            if (start, end) not in confidences:
                continue
            gain = math.log(max(confidences[start, end], 1e-9))
            gain += sum(boundary_cost(position, False) for position in range(start + 1, end))
            gain += boundary_cost(start, True) if start else 0.0
            for digits, (score, _) in best[start].items():
                if score + gain > best[end].get(digits + 1, (-math.inf, None))[0]:
                    best[end][digits + 1] = (score + gain, start)
    final = best[count]
    if not final:
        return [(0, count)], 0.0
    digits = max(final, key=lambda number: final[number][0])
    others = [score for number, (score, _) in final.items() if number != digits]
    margin = final[digits][0] - max(others) if others else math.inf
    chosen, end = [], count
    while end > 0:
        start = best[end][digits][1]
        chosen.append((start, end))
        end, digits = start, digits - 1
    return chosen[::-1], margin


def _input_box(piece, offset, scales, input_shape):
    """A piece's (x, y, width, height) in the input's pixels, from the shrunk ink box's."""
    (offset_x, offset_y), (scale_x, scale_y) = offset, scales
    x0 = math.floor((piece.x0 + offset_x) / scale_x)
    y0 = math.floor((piece.y0 + offset_y) / scale_y)
    x1 = min(math.ceil((piece.x1 + offset_x) / scale_x), input_shape[1])
    y1 = min(math.ceil((piece.y1 + offset_y) / scale_y), input_shape[0])
    return (x0, y0, x1 - x0, y1 - y0)
