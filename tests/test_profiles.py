"""The profile store on real SQLite files: rows kept and refused, several writers, locked and damaged files,
Forget me, and the examples folder's export and import."""

import multiprocessing
import sqlite3

import cv2
import numpy as np
import pytest

import preprocessing
import profiles
import strokes

WRITERS = 4
WRITES_EACH = 40
FOUR = {
    "width": 280,
    "height": 280,
    "brush": 20,
    "strokes": [[[90, 40], [70, 160], [190, 160]], [[160, 70], [160, 250]]],
}


def digit_image(seed):
    """A distinct 28x28 float image in [0, 1] whose uint8 levels are exact (k / 255)."""
    return np.random.default_rng(seed).integers(0, 256, (28, 28)).astype(np.float32) / 255


def rows_in(path, table, profile_id=None):
    """Rows of a table read straight from the file, independently of ProfileStore."""
    with sqlite3.connect(path) as connection:
        if profile_id is None:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return connection.execute(f"SELECT count(*) FROM {table} WHERE profile_id = ?", (profile_id,)).fetchone()[0]


@pytest.fixture
def store(tmp_path):
    opened = profiles.ProfileStore(tmp_path / "profiles.sqlite3")
    yield opened
    opened.close()


def test_examples_are_kept_as_given(store):
    token = store.create_profile()
    drawing = strokes.parse_drawing(FOUR)
    first = store.add_example(token, 4, digit_image(1), drawing)
    second = store.add_example(token, 9, (digit_image(2) * 255).astype(np.uint8))
    examples = store.examples(token)
    assert examples.ids == (first, second) and list(examples.labels) == [4, 9]
    np.testing.assert_array_equal(examples.images[0], digit_image(1))
    np.testing.assert_array_equal(examples.images[1], digit_image(2))
    assert examples.images.dtype == np.float32 and examples.images.shape == (2, 28, 28)
    kept = examples.drawings[0]
    assert (kept.width, kept.height, kept.brush) == (280, 280, 20)
    for stroke, written in zip(kept.strokes, FOUR["strokes"]):
        np.testing.assert_array_equal(stroke, np.array(written, float))
    assert examples.drawings[1] is None and examples.sources == ("correction", "correction")
    assert store.count(token) == 2


@pytest.mark.parametrize(
    "digit, image, reason",
    [
        (10, digit_image(0), "label must be a digit 0-9"),
        (-1, digit_image(0), "label must be a digit 0-9"),
        (True, digit_image(0), "label must be a digit 0-9"),
        ("4", digit_image(0), "label must be a digit 0-9"),
        (4.0, digit_image(0), "label must be a digit 0-9"),
        (4, np.zeros((28, 27), np.float32), "must be 28x28"),
        (4, np.zeros((28, 28, 1), np.float32), "must be 28x28"),
        (4, np.zeros((28, 28), np.int32), "uint8 levels or floats"),
        (4, np.full((28, 28), 1.5, np.float32), "between 0 and 1"),
        (4, np.full((28, 28), np.nan, np.float32), "between 0 and 1"),
    ],
)
def test_bad_rows_are_refused_and_nothing_of_them_is_kept(store, digit, image, reason):
    token = store.create_profile()
    with pytest.raises(profiles.ExampleError, match=reason) as caught:
        store.add_examples(token, [(3, digit_image(1), None), (digit, image, None)])
    assert isinstance(caught.value, ValueError) and "example 2" in str(caught.value)
    assert store.count(token) == 0  # the good row of the same batch is not kept either
    assert rows_in(store.path, "examples") == 0


def test_unreadable_strokes_are_refused(store):
    token = store.create_profile()
    with pytest.raises(profiles.ExampleError, match="strokes cannot be read"):
        store.add_example(token, 1, digit_image(1), {"strokes": "not a list"})


def test_the_database_refuses_bad_rows_written_behind_the_store(store):
    """The table's own checks hold even for a program that does not use ProfileStore."""
    store.create_profile()
    with sqlite3.connect(store.path) as connection, pytest.raises(sqlite3.IntegrityError):
        connection.execute(
            "INSERT INTO examples (profile_id, digit, image, created, source) "
            "VALUES (1, 12, zeroblob(784), 0, 'correction')"
        )
    with sqlite3.connect(store.path) as connection, pytest.raises(sqlite3.IntegrityError):
        connection.execute(
            "INSERT INTO examples (profile_id, digit, image, created, source) "
            "VALUES (1, 2, zeroblob(100), 0, 'correction')"
        )


def test_profiles_are_private(store):
    mine, theirs = store.create_profile(), store.create_profile()
    store.add_example(mine, 4, digit_image(1))
    assert store.count(theirs) == 0 and len(store.examples(theirs)) == 0
    assert mine != theirs and len(mine) >= 24
    # The files hold only hashes: a copy of the database gives no one the links.
    for file in store.path.parent.glob(store.path.name + "*"):
        assert mine.encode() not in file.read_bytes()
    with pytest.raises(profiles.UnknownProfile, match="No profile has this link"):
        store.examples(profiles.new_token())
    with pytest.raises(profiles.UnknownProfile, match="not a profile token"):
        store.examples("'; DROP TABLE examples; --")
    assert not store.exists(profiles.new_token())


def test_forget_me_deletes_every_row_of_the_profile(store):
    mine, theirs = store.create_profile(), store.create_profile()
    for seed in range(5):
        store.add_example(mine, seed, digit_image(seed))
    store.add_example(theirs, 7, digit_image(9))
    with sqlite3.connect(store.path) as connection:
        (profile_id,) = connection.execute("SELECT id FROM profiles ORDER BY id").fetchone()
    assert rows_in(store.path, "examples", profile_id) == 5
    assert store.forget(mine) == 5
    assert rows_in(store.path, "examples", profile_id) == 0
    assert rows_in(store.path, "profiles") == 1 and rows_in(store.path, "examples") == 1  # theirs stays
    assert store.count(theirs) == 1
    with pytest.raises(profiles.UnknownProfile):
        store.count(mine)


def write_examples(path, writer):
    """One process's writes, each its own short transaction, through its own store."""
    store = profiles.ProfileStore(path)
    token = store.create_profile()
    for index in range(WRITES_EACH):
        store.add_example(token, index % 10, digit_image(writer * 1000 + index))
    store.close()
    return token


def test_writes_from_several_processes_at_once_are_all_kept(tmp_path):
    path = tmp_path / "shared.sqlite3"
    with multiprocessing.get_context("spawn").Pool(WRITERS) as pool:
        tokens = pool.starmap(write_examples, [(path, writer) for writer in range(WRITERS)])
    store = profiles.ProfileStore(path)
    assert rows_in(path, "examples") == WRITERS * WRITES_EACH
    for writer, token in enumerate(tokens):
        examples = store.examples(token)
        assert list(examples.labels) == [index % 10 for index in range(WRITES_EACH)]
        expected = np.stack([digit_image(writer * 1000 + index) for index in range(WRITES_EACH)])
        np.testing.assert_array_equal(examples.images, expected)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_locked_database_gives_a_clear_error_then_works_again(tmp_path):
    path = tmp_path / "profiles.sqlite3"
    store = profiles.ProfileStore(path, busy_timeout=0.2)
    token = store.create_profile()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO profiles (token_hash, created) VALUES ('x', 0)")
    with pytest.raises(profiles.StoreError, match="locked by another program"):
        store.add_example(token, 4, digit_image(1))
    assert store.count(token) == 0  # WAL: readers still read while another process writes
    holder.execute("ROLLBACK")
    holder.close()
    store.add_example(token, 4, digit_image(1))
    assert store.count(token) == 1


def test_a_database_held_exclusively_gives_a_clear_error_to_readers_too(tmp_path):
    path = tmp_path / "profiles.sqlite3"
    first = profiles.ProfileStore(path)
    first.create_profile()
    first.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO profiles (token_hash, created) VALUES ('x', 0)")
    holder.execute("COMMIT")  # exclusive locking mode keeps the lock after the commit
    fresh = profiles.ProfileStore(path, busy_timeout=0.2)
    with pytest.raises(profiles.StoreError, match="locked by another program"):
        fresh.count(profiles.new_token())
    holder.close()


def test_a_damaged_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "profiles.sqlite3"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    store = profiles.ProfileStore(path)
    with pytest.raises(profiles.StoreError, match="is damaged"):
        store.create_profile()
    with pytest.raises(profiles.StoreError, match="is damaged"):
        store.count(profiles.new_token())


def test_a_missing_folder_or_file_gives_a_clear_error(tmp_path):
    with pytest.raises(profiles.StoreError, match="folder .*nowhere does not exist"):
        profiles.ProfileStore(tmp_path / "nowhere" / "profiles.sqlite3").create_profile()
    with pytest.raises(profiles.StoreError, match="There is no profile database at"):
        profiles.ProfileStore(tmp_path / "absent.sqlite3", create=False).count(profiles.new_token())
    with pytest.raises(profiles.StoreError, match="is a folder"):
        profiles.ProfileStore(tmp_path).create_profile()
    # Reading a profile makes no file: nothing is kept before the first save.
    with pytest.raises(profiles.UnknownProfile):
        profiles.ProfileStore(tmp_path / "later.sqlite3").count(profiles.new_token())
    assert not (tmp_path / "later.sqlite3").exists()


def test_schema_version_and_migration_of_an_old_file(tmp_path):
    path = tmp_path / "old.sqlite3"
    sqlite3.connect(path).close()  # an empty SQLite file: schema version 0
    store = profiles.ProfileStore(path)
    store.create_profile()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(profiles.SCHEMA_VERSION,)]
        connection.execute("UPDATE schema_version SET version = ?", (profiles.SCHEMA_VERSION + 1,))
    with pytest.raises(profiles.StoreError, match="newer than this program"):
        profiles.ProfileStore(path).create_profile()


def test_export_and_import_give_back_the_same_examples(store, tmp_path):
    token = store.create_profile()
    store.add_example(token, 4, digit_image(1), strokes.parse_drawing(FOUR))
    store.add_example(token, 1, digit_image(2))
    store.add_example(token, 4, digit_image(3))
    exported = store.examples(token)
    folder = profiles.write_examples_folder(exported, tmp_path / "export")
    assert sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.*")) == [
        f"1/{exported.ids[1]}.png",
        f"4/{exported.ids[0]}.json",
        f"4/{exported.ids[0]}.png",
        f"4/{exported.ids[2]}.png",
        "labels.csv",
    ]
    picture = cv2.imread(str(folder / "1" / f"{exported.ids[1]}.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(picture, np.round(digit_image(2) * 255).astype(np.uint8))
    zipped = profiles.examples_zip(exported)
    for read in (profiles.read_examples_folder(folder), profiles.read_examples_zip(zipped)):
        restored_token = store.create_profile()
        assert store.import_examples(restored_token, read) == 3
        assert store.import_examples(restored_token, read) == 0  # the same examples are not kept twice
        restored = store.examples(restored_token)
        order = np.argsort(restored.created)  # folders are read by name; the times keep the order
        np.testing.assert_array_equal(restored.images[order], exported.images)
        np.testing.assert_array_equal(restored.labels[order], exported.labels)
        assert [restored.created[index] for index in order] == list(exported.created)
        with_strokes = [restored.drawings[index] for index in order]
        assert with_strokes[1] is None and with_strokes[2] is None
        assert with_strokes[0].to_json() == exported.drawings[0].to_json()


def test_a_folder_made_by_hand_reads_pictures_and_strokes_as_the_app_does(tmp_path, recognizer):
    """A large black-on-white picture and a stroke file with no picture become the model's 28x28 inputs."""
    folder = tmp_path / "mine"
    (folder / "4").mkdir(parents=True)
    (folder / "7").mkdir()
    drawing = strokes.parse_drawing(FOUR)
    (folder / "4" / "pen.json").write_text(drawing.to_json())
    ink = strokes.draw_strokes(drawing.strokes, (280, 280), 20)
    cv2.imwrite(str(folder / "4" / "scan.png"), 255 - ink)
    (folder / "7" / "broken.png").write_bytes(b"not a picture")
    problems = []
    examples = profiles.read_examples_folder(folder, problems)
    assert list(examples.labels) == [4, 4] and list(examples.ids) == ["pen", "scan"]
    # Independent truth: the recognizer's own preparation of the same drawing and the same picture.
    np.testing.assert_allclose(examples.images[0], strokes.prepare_drawing(drawing).digits[0, ..., 0], atol=1e-6)
    _, encoded = cv2.imencode(".png", 255 - ink)
    np.testing.assert_allclose(
        examples.images[1], preprocessing.prepare_file(encoded.tobytes()).digits[0, ..., 0], atol=1e-6
    )
    assert examples.drawings[1] is None and examples.drawings[0].to_json() == drawing.to_json()
    assert len(problems) == 1 and problems[0][0].endswith("7/broken.png")
    with pytest.raises(profiles.ExampleError, match="broken.png"):
        profiles.read_examples_folder(folder)
    assert recognizer.recognize_strokes(drawing).text == "4"


def test_unreadable_examples_are_refused_clearly(tmp_path):
    with pytest.raises(profiles.ExampleError, match="not a readable zip"):
        profiles.read_examples_zip(b"PK\x03\x04 garbage")
    with pytest.raises(profiles.ExampleError, match="holds no examples"):
        profiles.read_examples_folder(tmp_path)
    with pytest.raises(profiles.ExampleError, match="is not a folder"):
        profiles.read_examples_folder(tmp_path / "missing")
