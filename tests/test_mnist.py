"""The MNIST loader on tiny IDX files written here, good and broken."""

import gzip
import struct

import numpy as np
import pytest

import mnist


def write_images(path, images, magic=mnist.IMAGES_MAGIC, cut=0):
    count, rows, columns = images.shape
    data = struct.pack(">IIII", magic, count, rows, columns) + images.tobytes()
    path.write_bytes(gzip.compress(data[: len(data) - cut]))


def write_labels(path, labels, magic=mnist.LABELS_MAGIC, cut=0):
    data = struct.pack(">II", magic, len(labels)) + labels.tobytes()
    path.write_bytes(gzip.compress(data[: len(data) - cut]))


@pytest.fixture
def tiny_mnist(tmp_path):
    """A folder with a 5-image training set and a 3-image test set."""
    rng = np.random.default_rng(0)
    sets = {
        "train": (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.array([0, 1, 2, 3, 9], np.uint8)),
        "test": (rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), np.array([7, 2, 1], np.uint8)),
    }
    for split, (images, labels) in sets.items():
        write_images(tmp_path / mnist.FILES[f"{split}_images"], images)
        write_labels(tmp_path / mnist.FILES[f"{split}_labels"], labels)
    return tmp_path, sets


def test_reads_what_was_written(tiny_mnist):
    folder, sets = tiny_mnist
    (train_images, train_labels), (test_images, test_labels) = mnist.load_mnist(folder, check_counts=False)
    np.testing.assert_array_equal(train_images, sets["train"][0])
    np.testing.assert_array_equal(train_labels, sets["train"][1])
    np.testing.assert_array_equal(test_images, sets["test"][0])
    np.testing.assert_array_equal(test_labels, sets["test"][1])


def test_folder_from_environment(tiny_mnist, monkeypatch):
    folder, _ = tiny_mnist
    monkeypatch.setenv("MNIST_DIR", str(folder))
    (_, labels), _ = mnist.load_mnist(check_counts=False)
    assert labels.tolist() == [0, 1, 2, 3, 9]


def test_folder_order_argument_environment_shared_local(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    monkeypatch.setattr(mnist, "SHARED_DIR", shared)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    assert mnist.resolve_data_dir() == mnist.DEFAULT_DIR  # no shared copy beside the checkout
    shared.mkdir()
    assert mnist.resolve_data_dir() == shared
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "from_env"))
    assert mnist.resolve_data_dir() == tmp_path / "from_env"
    assert mnist.resolve_data_dir(tmp_path / "given") == tmp_path / "given"


def test_missing_files_name_the_fix(tmp_path):
    write_images(tmp_path / mnist.FILES["train_images"], np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(mnist.MnistError, match="missing train-labels-idx1-ubyte.gz, t10k-images.*MNIST_DIR"):
        mnist.load_mnist(tmp_path)


def test_truncated_images(tmp_path):
    path = tmp_path / "images.gz"
    write_images(path, np.zeros((4, 28, 28), np.uint8), cut=100)
    with pytest.raises(mnist.MnistError, match="truncated"):
        mnist.read_idx_images(path)


def test_truncated_labels(tmp_path):
    path = tmp_path / "labels.gz"
    write_labels(path, np.zeros(10, np.uint8), cut=3)
    with pytest.raises(mnist.MnistError, match="holds 7 labels but its header says 10"):
        mnist.read_idx_labels(path)


def test_wrong_magic(tmp_path):
    labels_as_images = tmp_path / "swapped.gz"
    write_labels(labels_as_images, np.zeros(10, np.uint8))
    with pytest.raises(mnist.MnistError, match="magic number 0x00000801, expected 0x00000803"):
        mnist.read_idx_images(labels_as_images)
    images_as_labels = tmp_path / "swapped2.gz"
    write_images(images_as_labels, np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(mnist.MnistError, match="magic number 0x00000803, expected 0x00000801"):
        mnist.read_idx_labels(images_as_labels)


def test_short_header_and_bad_gzip(tmp_path):
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(b"\x00\x00\x08"))
    with pytest.raises(mnist.MnistError, match="too short"):
        mnist.read_idx_images(short)
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"this is not gzip")
    with pytest.raises(mnist.MnistError, match="not a readable gzip file"):
        mnist.read_idx_labels(not_gzip)


def test_label_out_of_range(tmp_path):
    path = tmp_path / "labels.gz"
    write_labels(path, np.array([3, 12], np.uint8))
    with pytest.raises(mnist.MnistError, match="label 12"):
        mnist.read_idx_labels(path)


def test_count_mismatch_between_images_and_labels(tiny_mnist):
    folder, _ = tiny_mnist
    write_labels(folder / mnist.FILES["test_labels"], np.array([1, 2], np.uint8))
    with pytest.raises(mnist.MnistError, match="3 images but 2 labels"):
        mnist.load_mnist(folder, check_counts=False)


def test_counts_checked_against_mnist(tiny_mnist):
    folder, _ = tiny_mnist
    with pytest.raises(mnist.MnistError, match="5 images; MNIST has 60000"):
        mnist.load_mnist(folder)


def test_real_mnist_checksums(mnist_dir):
    """The shared copy is the original MNIST: its content matches the published checksums."""
    import hashlib

    for name, expected in mnist.CONTENT_MD5.items():
        assert hashlib.md5(gzip.decompress((mnist_dir / name).read_bytes())).hexdigest() == expected
