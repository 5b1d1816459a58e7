"""Read the MNIST data set from its four original IDX .gz files.

The directory comes from `--data-dir` (train.py), the MNIST_DIR environment
variable, ../shared/data/mnist beside the checkout (where CI keeps it) when that
exists, or ./data/mnist, in that order. `load_mnist(..., download=True)` fetches
missing files for users on a normal machine; tests and CI never need it.
"""

import gzip
import hashlib
import os
import struct
import urllib.request
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
DEFAULT_DIR = Path("data/mnist")
# CI and this project's machines keep one shared copy beside the checkout.
SHARED_DIR = Path(__file__).resolve().parent.parent / "shared" / "data" / "mnist"


class MnistError(ValueError):
    """An MNIST file is missing, truncated or not what it claims to be."""


def resolve_data_dir(data_dir=None):
    """The directory to read: the argument, else $MNIST_DIR, else ../shared/data/mnist if present, else ./data/mnist."""
    if data_dir or os.environ.get("MNIST_DIR"):
        return Path(data_dir or os.environ["MNIST_DIR"])
    return SHARED_DIR if SHARED_DIR.is_dir() else DEFAULT_DIR


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
            f"{path} holds {len(data) - 8} labels but its header says {count}: "
            "the file is truncated or corrupt"
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
        raise MnistError(
            f"the {split} split has {len(images)} images but {len(labels)} labels in {data_dir}"
        )
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
                raise MnistError(
                    f"the {split} split has {len(images)} images; MNIST has {EXPECTED_COUNTS[split]}"
                )
    return train, test
