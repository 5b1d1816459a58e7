"""The data module: MNIST, UNIPEN and CVL loaders on tiny files written here, good and broken, and the splits."""

import gzip
import struct

import numpy as np
import pytest

import datasets


def write_images(path, images, magic=datasets.IMAGES_MAGIC, cut=0):
    count, rows, columns = images.shape
    data = struct.pack(">IIII", magic, count, rows, columns) + images.tobytes()
    path.write_bytes(gzip.compress(data[: len(data) - cut]))


def write_labels(path, labels, magic=datasets.LABELS_MAGIC, cut=0):
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
        write_images(tmp_path / datasets.FILES[f"{split}_images"], images)
        write_labels(tmp_path / datasets.FILES[f"{split}_labels"], labels)
    return tmp_path, sets


def test_reads_what_was_written(tiny_mnist):
    folder, sets = tiny_mnist
    (train_images, train_labels), (test_images, test_labels) = datasets.load_mnist(folder, check_counts=False)
    np.testing.assert_array_equal(train_images, sets["train"][0])
    np.testing.assert_array_equal(train_labels, sets["train"][1])
    np.testing.assert_array_equal(test_images, sets["test"][0])
    np.testing.assert_array_equal(test_labels, sets["test"][1])


def test_folder_from_environment(tiny_mnist, monkeypatch):
    folder, _ = tiny_mnist
    monkeypatch.setenv("MNIST_DIR", str(folder))
    (_, labels), _ = datasets.load_mnist(check_counts=False)
    assert labels.tolist() == [0, 1, 2, 3, 9]


def test_folder_order_argument_environment_shared_local(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    monkeypatch.setattr(datasets, "SHARED_ROOT", shared)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.delenv(datasets.DATA_DIR_VARIABLE, raising=False)
    assert datasets.resolve_data_root() == datasets.DEFAULT_ROOT  # no shared copy beside the checkout
    assert datasets.resolve_data_dir() == datasets.DEFAULT_ROOT / "mnist"
    shared.mkdir()
    assert datasets.resolve_data_root() == shared
    assert datasets.resolve_data_dir() == shared / "mnist"
    monkeypatch.setenv(datasets.DATA_DIR_VARIABLE, str(tmp_path / "root"))
    assert datasets.resolve_data_dir() == tmp_path / "root" / "mnist"
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "from_env"))
    assert datasets.resolve_data_dir() == tmp_path / "from_env"
    assert datasets.resolve_data_dir(tmp_path / "given") == tmp_path / "given"
    assert datasets.mnist_folder(tmp_path / "root2") == tmp_path / "root2" / "mnist"  # an option beats $MNIST_DIR


def test_missing_files_name_the_fix(tmp_path):
    write_images(tmp_path / datasets.FILES["train_images"], np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(datasets.MnistError, match="missing train-labels-idx1-ubyte.gz, t10k-images.*MNIST_DIR"):
        datasets.load_mnist(tmp_path)


def test_truncated_images(tmp_path):
    path = tmp_path / "images.gz"
    write_images(path, np.zeros((4, 28, 28), np.uint8), cut=100)
    with pytest.raises(datasets.MnistError, match="truncated"):
        datasets.read_idx_images(path)


def test_truncated_labels(tmp_path):
    path = tmp_path / "labels.gz"
    write_labels(path, np.zeros(10, np.uint8), cut=3)
    with pytest.raises(datasets.MnistError, match="holds 7 labels but its header says 10"):
        datasets.read_idx_labels(path)


def test_wrong_magic(tmp_path):
    labels_as_images = tmp_path / "swapped.gz"
    write_labels(labels_as_images, np.zeros(10, np.uint8))
    with pytest.raises(datasets.MnistError, match="magic number 0x00000801, expected 0x00000803"):
        datasets.read_idx_images(labels_as_images)
    images_as_labels = tmp_path / "swapped2.gz"
    write_images(images_as_labels, np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(datasets.MnistError, match="magic number 0x00000803, expected 0x00000801"):
        datasets.read_idx_labels(images_as_labels)


def test_short_header_and_bad_gzip(tmp_path):
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(b"\x00\x00\x08"))
    with pytest.raises(datasets.MnistError, match="too short"):
        datasets.read_idx_images(short)
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"this is not gzip")
    with pytest.raises(datasets.MnistError, match="not a readable gzip file"):
        datasets.read_idx_labels(not_gzip)


def test_label_out_of_range(tmp_path):
    path = tmp_path / "labels.gz"
    write_labels(path, np.array([3, 12], np.uint8))
    with pytest.raises(datasets.MnistError, match="label 12"):
        datasets.read_idx_labels(path)


def test_count_mismatch_between_images_and_labels(tiny_mnist):
    folder, _ = tiny_mnist
    write_labels(folder / datasets.FILES["test_labels"], np.array([1, 2], np.uint8))
    with pytest.raises(datasets.MnistError, match="3 images but 2 labels"):
        datasets.load_mnist(folder, check_counts=False)


def test_counts_checked_against_mnist(tiny_mnist):
    folder, _ = tiny_mnist
    with pytest.raises(datasets.MnistError, match="5 images; MNIST has 60000"):
        datasets.load_mnist(folder)


def test_real_mnist_checksums(mnist_dir):
    """The shared copy is the original MNIST: its content matches the published checksums."""
    import hashlib

    for name, expected in datasets.CONTENT_MD5.items():
        assert hashlib.md5(gzip.decompress((mnist_dir / name).read_bytes())).hexdigest() == expected


# ---------------------------------------------------------------------------
# UNIPEN and CVL


def write_unipen(folder, samples, labels, writers, sites, overrides=None):
    """A UNIPEN-format .npz: samples is a list of lists of (K, 2) strokes."""
    strokes = [stroke for sample in samples for stroke in sample]
    arrays = {
        "points": np.concatenate(strokes).astype(np.float32),
        "stroke_offsets": np.cumsum([0] + [len(stroke) for stroke in strokes]),
        "sample_stroke_offsets": np.cumsum([0] + [len(sample) for sample in samples]),
        "labels": np.array(labels, np.int8),
        "writer": np.array(writers, np.int32),
        "writer_names": np.array([f"site/{index}" for index in range(max(writers) + 1)]),
        "site": np.array(sites, np.int16),
        "site_names": np.array([f"s{index}" for index in range(max(sites) + 1)]),
    }
    arrays.update(overrides or {})
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / datasets.UNIPEN_FILE, **arrays)


def tiny_pen_samples():
    one = [np.array([[0, 0], [0, 10]])]
    seven = [np.array([[0, 0], [8, 0], [3, 12]]), np.array([[2, 6], [6, 6]])]
    return [one, seven, one], [1, 7, 1], [0, 1, 2], [0, 0, 1]


def test_unipen_reads_each_sample_s_strokes(tmp_path):
    samples, labels, writers, sites = tiny_pen_samples()
    write_unipen(tmp_path, samples, labels, writers, sites)
    pen = datasets.load_unipen(tmp_path, check_counts=False)
    assert len(pen) == 3 and pen.labels.tolist() == [1, 7, 1] and pen.writers.tolist() == [0, 1, 2]
    read = pen.strokes(1)
    assert len(read) == 2
    np.testing.assert_array_equal(read[0], samples[1][0])
    np.testing.assert_array_equal(read[1], samples[1][1])
    assert pen.site_names == ("s0", "s1")


@pytest.mark.parametrize(
    "override, problem",
    [
        ({"stroke_offsets": np.array([0, 2, 2, 5, 7, 9])}, "stroke_offsets"),
        ({"sample_stroke_offsets": np.array([0, 1, 3])}, "sample_stroke_offsets"),
        ({"labels": np.array([1, 12, 1], np.int8)}, "labels run outside 0-9"),
        ({"writer": np.array([0, 1], np.int32)}, "2 writer ids for 3 samples"),
        ({"points": np.full((9, 2), np.nan, np.float32)}, "not finite"),
    ],
)
def test_unipen_damage_is_named(tmp_path, override, problem):
    samples, labels, writers, sites = tiny_pen_samples()
    write_unipen(tmp_path, samples, labels, writers, sites, override)
    with pytest.raises(datasets.DataError, match=problem):
        datasets.load_unipen(tmp_path, check_counts=False)


def test_unipen_missing_file_array_and_counts(tmp_path):
    with pytest.raises(datasets.DataError, match="unipen_digits.npz is missing.*--data-dir"):
        datasets.load_unipen(tmp_path)
    samples, labels, writers, sites = tiny_pen_samples()
    write_unipen(tmp_path, samples, labels, writers, sites)
    with pytest.raises(datasets.DataError, match="3 samples, expected 13901"):
        datasets.load_unipen(tmp_path)
    (tmp_path / datasets.UNIPEN_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(datasets.DataError, match="not a readable .npz"):
        datasets.load_unipen(tmp_path)
    np.savez(tmp_path / datasets.UNIPEN_FILE, points=np.zeros((1, 2)))
    with pytest.raises(datasets.DataError, match="lacks the arrays stroke_offsets"):
        datasets.load_unipen(tmp_path)


def test_cvl_reads_and_checks(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    arrays = {
        "images": images,
        "labels": np.array([0, 1, 2, 3], np.int8),
        "writer": np.array([5, 5, 6, 7], np.int32),
        "split": np.array([0, 1, 1, 2], np.int8),
    }
    np.savez(tmp_path / datasets.CVL_FILE, **arrays)
    cvl = datasets.load_cvl(tmp_path, check_counts=False)
    np.testing.assert_array_equal(cvl.images, images)
    assert datasets.cvl_validation(cvl).tolist() == [False, True, True, False]
    with pytest.raises(datasets.DataError, match="4 images, expected 30857"):
        datasets.load_cvl(tmp_path)
    np.savez(tmp_path / datasets.CVL_FILE, **{**arrays, "images": images[:, :20]})
    with pytest.raises(datasets.DataError, match=r"expected uint8 \(N, 28, 28\)"):
        datasets.load_cvl(tmp_path, check_counts=False)
    np.savez(tmp_path / datasets.CVL_FILE, **{**arrays, "split": np.array([0, 1, 3, 2], np.int8)})
    with pytest.raises(datasets.DataError, match="split ids outside 0-2"):
        datasets.load_cvl(tmp_path, check_counts=False)


@pytest.fixture(scope="module")
def shared_unipen(mnist_dir):
    return datasets.load_unipen(mnist_dir.parent / "unipen")


def test_shared_sets_load_with_their_published_counts(shared_unipen, mnist_dir):
    assert len(shared_unipen) == 13_901 and len(np.unique(shared_unipen.writers)) == 256
    cvl = datasets.load_cvl(mnist_dir.parent / "cvl")
    assert len(cvl) == 30_857 and np.bincount(cvl.splits).tolist() == [7000, 7000, 16857]


def test_unipen_validation_holds_out_whole_writers_of_every_site(shared_unipen):
    held_out = datasets.unipen_validation_writers(shared_unipen)
    assert held_out == datasets.unipen_validation_writers(shared_unipen)  # fixed: the dev set relies on it
    validation = np.isin(shared_unipen.writers, sorted(held_out))
    # Writer-disjoint: no writer has samples on both sides.
    assert not set(shared_unipen.writers[validation]) & set(shared_unipen.writers[~validation])
    for site in np.unique(shared_unipen.sites):
        writers = np.unique(shared_unipen.writers[shared_unipen.sites == site])
        if len(writers) >= 3:  # every site that can spare a writer gives about 15% of them
            share = len(set(writers) & held_out) / len(writers)
            assert 0 < share <= 0.35
    assert 0.08 < validation.mean() < 0.3


def test_cvl_validation_writers_are_disjoint_from_training(mnist_dir):
    cvl = datasets.load_cvl(mnist_dir.parent / "cvl")
    validation = datasets.cvl_validation(cvl)
    assert validation.sum() == 7000
    assert not set(cvl.writers[validation]) & set(cvl.writers[~validation])
