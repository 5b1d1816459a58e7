"""Every training source from one data root: MNIST, UNIPEN pen strokes and CVL digits.

    from datasets import load_mnist, load_unipen, load_cvl, resolve_data_root
    root = resolve_data_root()            # --data-dir, else $DIGIT_DATA_DIR, else ../shared/data
    (train_images, train_labels), test = load_mnist(root / "mnist")
    pen = load_unipen(root / "unipen")    # pen.strokes(i): list of (K, 2) float arrays, y down
    cvl = load_cvl(root / "cvl")          # 28x28 uint8, bright ink on black, with writer ids

The root comes from an argument (train.py's --data-dir), the DIGIT_DATA_DIR
environment variable, ../shared/data beside the checkout (where CI keeps it) when
that exists, or ./data, in that order; MNIST_DIR still overrides the MNIST folder
alone. Every loader checks format and counts and raises DataError naming the file
and the fix. `load_mnist(..., download=True)` fetches MNIST for users on a normal
machine; tests and CI never need it. The two other sets cannot be downloaded here:
each folder's README in ../shared/data says where they come from and their terms.
"""

import gzip
import hashlib
import os
import struct
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# md5 of the uncompressed content: the .gz bytes differ between mirrors.
CONTENT_MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
EXPECTED_COUNTS = {"train": 60_000, "test": 10_000}
MIRROR = "https://storage.googleapis.com/cvdf-datasets/mnist/"
DATA_DIR_VARIABLE = "DIGIT_DATA_DIR"  # the environment variable naming the data root
DEFAULT_ROOT = Path("data")
# CI and this project's machines keep one shared copy beside the checkout.
SHARED_ROOT = Path(__file__).resolve().parent.parent / "shared" / "data"

UNIPEN_FILE = "unipen_digits.npz"
UNIPEN_COUNTS = {"samples": 13_901, "writers": 256}  # train_r01_v07 after its README's cleaning
CVL_FILE = "cvl_digits.npz"
CVL_COUNTS = {"images": 30_857, "writers": 263}  # the part of CVL Single Digit that is shared here
CVL_SPLITS = ("train", "valid", "test")  # the competition's splits; their writers are disjoint
SOURCE_FIX = (
    "it is one of the files in ../shared/data (see that folder's README.md); "
    "point --data-dir or $DIGIT_DATA_DIR at the folder that holds mnist/, unipen/ and cvl/"
)


class DataError(ValueError):
    """A data file is missing, truncated or not what it claims to be; the message names the fix."""


class MnistError(DataError):
    """An MNIST file is missing, truncated or not what it claims to be."""


def resolve_data_root(data_dir=None):
    """The data root: the argument, else $DIGIT_DATA_DIR, else ../shared/data if present, else ./data."""
    if data_dir or os.environ.get(DATA_DIR_VARIABLE):
        return Path(data_dir or os.environ[DATA_DIR_VARIABLE])
    return SHARED_ROOT if SHARED_ROOT.is_dir() else DEFAULT_ROOT


def resolve_data_dir(data_dir=None):
    """The MNIST folder: the argument, else $MNIST_DIR, else mnist/ under the data root."""
    if data_dir or os.environ.get("MNIST_DIR"):
        return Path(data_dir or os.environ["MNIST_DIR"])
    return resolve_data_root() / "mnist"


def mnist_folder(data_root=None):
    """The MNIST folder for a data root given by option: mnist/ under it, else resolve_data_dir()."""
    return Path(data_root) / "mnist" if data_root else resolve_data_dir()


def _read_gzip(path):
    """The decompressed bytes of a .gz file, with a clear error when it is damaged."""
    if not path.is_file():
        raise MnistError(f"{path} is missing")
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (OSError, EOFError) as error:
        raise MnistError(f"{path} is not a readable gzip file ({error})") from error


def read_idx_images(path):
    """An IDX image file as a uint8 array of shape (count, rows, columns)."""
    path = Path(path)
    data = _read_gzip(path)
    if len(data) < 16:
        raise MnistError(f"{path} is too short for an IDX image header ({len(data)} bytes)")
    magic, count, rows, columns = struct.unpack(">IIII", data[:16])
    if magic != IMAGES_MAGIC:
        raise MnistError(
            f"{path} has magic number 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} (IDX images); "
            "is it a labels file or another format?"
        )
    expected = 16 + count * rows * columns
    if len(data) != expected:
        raise MnistError(
            f"{path} holds {len(data)} bytes but its header ({count} images of {rows}x{columns}) "
            f"needs {expected}: the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, columns)


def read_idx_labels(path):
    """An IDX label file as a uint8 array of shape (count,)."""
    path = Path(path)
    data = _read_gzip(path)
    if len(data) < 8:
        raise MnistError(f"{path} is too short for an IDX label header ({len(data)} bytes)")
    magic, count = struct.unpack(">II", data[:8])
    if magic != LABELS_MAGIC:
        raise MnistError(
            f"{path} has magic number 0x{magic:08x}, expected 0x{LABELS_MAGIC:08x} (IDX labels); "
            "is it an images file or another format?"
        )
    if len(data) != 8 + count:
        raise MnistError(
            f"{path} holds {len(data) - 8} labels but its header says {count}: the file is truncated or corrupt"
        )
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    if labels.size and labels.max() > 9:
        raise MnistError(f"{path} has a label {labels.max()}, but digits run from 0 to 9")
    return labels


def download_mnist(data_dir):
    """Fetch the missing MNIST files into data_dir and check their content."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        target = data_dir / name
        if target.exists():
            continue
        print(f"downloading {MIRROR}{name}")
        partial = target.with_suffix(".part")
        urllib.request.urlretrieve(MIRROR + name, partial)
        content = gzip.decompress(partial.read_bytes())
        if hashlib.md5(content).hexdigest() != CONTENT_MD5[name]:
            partial.unlink()
            raise MnistError(f"the downloaded {name} does not match its published checksum")
        partial.rename(target)


def _read_split(data_dir, split):
    """Images and labels of one split, checked against each other and MNIST's sizes."""
    images = read_idx_images(data_dir / FILES[f"{split}_images"])
    labels = read_idx_labels(data_dir / FILES[f"{split}_labels"])
    if len(images) != len(labels):
        raise MnistError(f"the {split} split has {len(images)} images but {len(labels)} labels in {data_dir}")
    if images.shape[1:] != (28, 28):
        raise MnistError(f"the {split} images are {images.shape[1]}x{images.shape[2]}, not 28x28")
    return images, labels


def load_mnist(data_dir=None, download=False, check_counts=True):
    """(train_images, train_labels), (test_images, test_labels) as uint8 arrays.

    Images are (N, 28, 28), white digit on black. Raises MnistError naming the
    file and the fix when something is missing or malformed.
    """
    data_dir = resolve_data_dir(data_dir)
    missing = [name for name in FILES.values() if not (data_dir / name).is_file()]
    if missing and download:
        download_mnist(data_dir)
    elif missing:
        raise MnistError(
            f"MNIST is not in {data_dir.resolve()}: missing {', '.join(missing)}. "
            "Point --data-dir or MNIST_DIR at the folder holding the four IDX .gz files, "
            "or pass --download to fetch them."
        )
    train = _read_split(data_dir, "train")
    test = _read_split(data_dir, "test")
    if check_counts:
        for split, (images, _) in (("train", train), ("test", test)):
            if len(images) != EXPECTED_COUNTS[split]:
                raise MnistError(f"the {split} split has {len(images)} images; MNIST has {EXPECTED_COUNTS[split]}")
    return train, test


# ---------------------------------------------------------------------------
# UNIPEN (pen trajectories) and CVL (European writers' scanned digits)


def _read_npz(path, arrays):
    """The named arrays of an .npz file, checked for presence; DataError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: {SOURCE_FIX}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            read = {name: archive[name] for name in arrays if name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path} is not a readable .npz file ({error}): {SOURCE_FIX}") from error
    missing = [name for name in arrays if name not in read]
    if missing:
        raise DataError(f"{path} lacks the arrays {', '.join(missing)}: is it the right file? {SOURCE_FIX}")
    return read


def _check(condition, path, problem):
    if not condition:
        raise DataError(f"{path}: {problem}; the file is truncated or not the shared copy ({SOURCE_FIX})")


@dataclass(frozen=True)
class PenDigits:
    """Online pen digits: each sample a list of strokes, each stroke (K, 2) float32 (x, y), y down."""

    points: np.ndarray
    stroke_offsets: np.ndarray
    sample_stroke_offsets: np.ndarray
    labels: np.ndarray  # int64 digit per sample
    writers: np.ndarray  # int64 writer id per sample
    sites: np.ndarray  # int64 recording site per sample
    writer_names: tuple
    site_names: tuple

    def __len__(self):
        return len(self.labels)

    def strokes(self, index):
        """Sample index as a list of (K, 2) float32 strokes in tablet units, y down."""
        first, last = self.sample_stroke_offsets[index], self.sample_stroke_offsets[index + 1]
        offsets = self.stroke_offsets
        return [self.points[offsets[stroke] : offsets[stroke + 1]] for stroke in range(first, last)]


def load_unipen(folder=None, check_counts=True):
    """UNIPEN's isolated digits (train_r01_v07) from folder (default: unipen/ under the data root)."""
    folder = Path(folder) if folder else resolve_data_root() / "unipen"
    path = folder / UNIPEN_FILE
    arrays = _read_npz(
        path,
        ("points", "stroke_offsets", "sample_stroke_offsets", "labels", "writer", "writer_names", "site", "site_names"),
    )
    points, offsets, sample_offsets = arrays["points"], arrays["stroke_offsets"], arrays["sample_stroke_offsets"]
    labels = arrays["labels"].astype(np.int64)
    count = len(labels)
    _check(points.ndim == 2 and points.shape[1] == 2, path, f"points have shape {points.shape}, expected (N, 2)")
    _check(
        offsets.ndim == 1
        and len(offsets) >= 1
        and offsets[0] == 0
        and offsets[-1] == len(points)
        and np.all(np.diff(offsets) > 0),
        path,
        "stroke_offsets do not cut the points into non-empty strokes",
    )
    _check(
        len(sample_offsets) == count + 1
        and sample_offsets[0] == 0
        and sample_offsets[-1] == len(offsets) - 1
        and np.all(np.diff(sample_offsets) > 0),
        path,
        f"sample_stroke_offsets do not give each of the {count} samples its strokes",
    )
    _check(np.isfinite(points).all(), path, "some points are not finite")
    _check(labels.size == 0 or (labels.min() >= 0 and labels.max() <= 9), path, "labels run outside 0-9")
    for name in ("writer", "site"):
        _check(len(arrays[name]) == count, path, f"{len(arrays[name])} {name} ids for {count} samples")
    writers, sites = arrays["writer"].astype(np.int64), arrays["site"].astype(np.int64)
    _check(
        count == 0 or (writers.min() >= 0 and writers.max() < len(arrays["writer_names"])),
        path,
        "writer ids outside writer_names",
    )
    _check(
        count == 0 or (sites.min() >= 0 and sites.max() < len(arrays["site_names"])),
        path,
        "site ids outside site_names",
    )
    if check_counts:
        _check(count == UNIPEN_COUNTS["samples"], path, f"{count} samples, expected {UNIPEN_COUNTS['samples']}")
        _check(
            len(np.unique(writers)) == UNIPEN_COUNTS["writers"],
            path,
            f"{len(np.unique(writers))} writers, expected {UNIPEN_COUNTS['writers']}",
        )
    return PenDigits(
        points.astype(np.float32),
        offsets.astype(np.int64),
        sample_offsets.astype(np.int64),
        labels,
        writers,
        sites,
        tuple(arrays["writer_names"].tolist()),
        tuple(arrays["site_names"].tolist()),
    )


@dataclass(frozen=True)
class ImageDigits:
    """28x28 uint8 digits, bright ink on black, with each one's writer and split."""

    images: np.ndarray
    labels: np.ndarray
    writers: np.ndarray
    splits: np.ndarray  # index into CVL_SPLITS

    def __len__(self):
        return len(self.labels)


def load_cvl(folder=None, check_counts=True):
    """CVL Single Digit (28x28 copy) from folder (default: cvl/ under the data root)."""
    folder = Path(folder) if folder else resolve_data_root() / "cvl"
    path = folder / CVL_FILE
    arrays = _read_npz(path, ("images", "labels", "writer", "split"))
    images, labels = arrays["images"], arrays["labels"].astype(np.int64)
    count = len(labels)
    _check(
        images.dtype == np.uint8 and images.shape[1:] == (28, 28),
        path,
        f"images are {images.dtype} {images.shape}, expected uint8 (N, 28, 28)",
    )
    _check(len(images) == count, path, f"{len(images)} images for {count} labels")
    _check(labels.size == 0 or (labels.min() >= 0 and labels.max() <= 9), path, "labels run outside 0-9")
    _check(len(arrays["writer"]) == count and len(arrays["split"]) == count, path, "writer or split ids missing")
    splits = arrays["split"].astype(np.int64)
    _check(count == 0 or (splits.min() >= 0 and splits.max() < len(CVL_SPLITS)), path, "split ids outside 0-2")
    if check_counts:
        _check(count == CVL_COUNTS["images"], path, f"{count} images, expected {CVL_COUNTS['images']}")
        _check(
            len(np.unique(arrays["writer"])) == CVL_COUNTS["writers"],
            path,
            f"{len(np.unique(arrays['writer']))} writers, expected {CVL_COUNTS['writers']}",
        )
    return ImageDigits(images, labels, arrays["writer"].astype(np.int64), splits)


# ---------------------------------------------------------------------------
# Writer-disjoint validation


# MNIST has no writer ids: a random part of its 60k training images validates (train.py --seed picks it).
MNIST_VALIDATION_SIZE = 5_000


def split_validation(images, labels, validation_size, seed):
    """A fixed random split of a training set into (train, validation): the same seed, the same split."""
    order = np.random.default_rng(seed).permutation(len(images))
    validation, train = order[:validation_size], order[validation_size:]
    return (images[train], labels[train]), (images[validation], labels[validation])


UNIPEN_VALIDATION_FRACTION = 0.15  # of each site's writers, held out of training
WRITER_SPLIT_SEED = 20261121  # one fixed split, so that train.py, the dev set and the benchmarks agree


def unipen_validation_writers(pen, fraction=UNIPEN_VALIDATION_FRACTION, seed=WRITER_SPLIT_SEED):
    """A set of writer ids held out for validation: this share of each site's writers.

    Per site, so that every kind of tablet is in validation; a site with fewer than
    three writers gives none (it could not spare one).
    """
    rng = np.random.default_rng(seed)
    held_out = set()
    for site in np.unique(pen.sites):
        writers = np.unique(pen.writers[pen.sites == site])
        if len(writers) >= 3:
            count = max(1, int(round(fraction * len(writers))))
            held_out.update(int(writer) for writer in rng.permutation(writers)[:count])
    return held_out


def cvl_validation(cvl):
    """A boolean mask of CVL's validation digits: the competition's own 'valid' writers."""
    return cvl.splits == CVL_SPLITS.index("valid")
