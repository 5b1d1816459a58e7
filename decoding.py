"""Image files and arrays in, plain uint8 pixels out (pure NumPy/OpenCV/Pillow).

    image = decode_image(file_bytes)     # PNG, JPEG, WebP, BMP, GIF, TIFF -> RGB/RGBA uint8
    small = fit_within(image, 1024)      # the longer side at most 1024 px, area-averaged

A file is checked before its pixels are decoded: its format, its size from the header
(decompression bombs are refused) and what decoding it would hold at once. EXIF
rotation is applied, animations give their first frame, and large images are shrunk
as they are decoded. Arrays of any numeric dtype become uint8 levels for the rest of
the pipeline (preprocessing.py). Bad input raises ImageError, and only ImageError,
with a message that says what is wrong.
"""

import contextlib
import io
import math
import threading
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps

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
WORK_SIDE = 1024  # longer side preprocessing finds the ink at: digits stay tens of pixels tall even in photos
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


class ImageError(ValueError):
    """The input is not an image we can read; the message says what is wrong."""


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
