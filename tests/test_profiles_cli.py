"""A stored profile on the command line (predict.py --profile); examples folders in training (train.py --extra-data)."""

import json
import sqlite3

import cv2
import numpy as np
import pytest

import profiles
from conftest import run_script
from recognizer import metrics_path_for

SQUARE_LABEL = 4  # what the user says their square is: no digit looks like a square


def square(size=28, margin=7, width=2):
    """A hollow square, as uint8 levels (white on black): an unusual mark the writer calls a 4."""
    image = np.zeros((size, size), np.uint8)
    cv2.rectangle(image, (margin, margin), (size - 1 - margin, size - 1 - margin), 255, width)
    return image


def square_picture():
    """The square drawn large, black on white, as a file a user would give predict.py."""
    picture = np.full((280, 280), 255, np.uint8)
    cv2.rectangle(picture, (60, 60), (220, 220), 0, 18)
    return picture


@pytest.fixture
def stored_profile(tmp_path, recognizer):
    """A database with one profile whose examples are the square read as the model reads its picture."""
    cv2.imwrite(str(tmp_path / "square.png"), square_picture())
    seen = recognizer.recognize((tmp_path / "square.png").read_bytes()).digits[0].image
    store = profiles.ProfileStore(tmp_path / "profiles.sqlite3")
    token = store.create_profile()
    store.add_examples(token, [(SQUARE_LABEL, seen, None)] * 5)
    store.close()
    return token, tmp_path / "profiles.sqlite3", tmp_path / "square.png"


def test_predict_reads_with_a_stored_profile(stored_profile, recognizer):
    token, database, picture = stored_profile
    base = recognizer.recognize(picture.read_bytes()).text
    assert base != str(SQUARE_LABEL), "the base model already reads the square as the writer's digit"
    completed = run_script("predict.py", "--profile", token, "--db", database, "--json", picture)
    assert completed.returncode == 0, completed.stderr
    assert "reading with the 5 examples of the profile" in completed.stderr
    assert json.loads(completed.stdout)["text"] == str(SQUARE_LABEL)


def test_predict_reads_a_token_that_starts_with_a_dash(stored_profile):
    """Old links may hold a token starting with '-': `--profile -abc...` is still read as the token."""
    token, database, picture = stored_profile
    dashed = "-" + token[1:]
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE profiles SET token_hash = ?", (profiles.token_hash(dashed),))
    connection.close()
    completed = run_script("predict.py", "--profile", dashed, "--db", database, "--json", picture)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["text"] == str(SQUARE_LABEL)


def test_new_tokens_never_start_with_a_dash():
    assert not any(profiles.new_token().startswith("-") for _ in range(2000))


def test_predict_profile_errors_are_clear(stored_profile, tmp_path):
    token, database, picture = stored_profile
    for arguments, message in [
        (("--profile", profiles.new_token(), "--db", database), "No profile has this link"),
        (("--profile", "not a token", "--db", database), "not a profile token"),
        (("--profile", token, "--db", tmp_path / "absent.sqlite3"), "There is no profile database at"),
        (("--db", database), "give the profile's token too"),
    ]:
        completed = run_script("predict.py", *arguments, picture)
        assert completed.returncode == 2 and message in completed.stderr, completed.stderr
        assert "Traceback" not in completed.stderr
    assert not (tmp_path / "absent.sqlite3").exists()  # the command line never makes a database


def test_training_takes_examples_folders(tmp_path, mnist_dir):
    """A quick run with a folder of squares labelled 4: the trained model reads a square as 4."""
    examples = profiles.Examples(
        np.stack([square(margin=margin) for margin in (5, 6, 7, 8)] * 10) / np.float32(255),
        np.full(40, SQUARE_LABEL),
        (None,) * 40,
    )
    folder = profiles.write_examples_folder(examples, tmp_path / "mine")
    output = tmp_path / "quick.keras"
    completed = run_script(
        "train.py",
        "--quick",
        "--data-dir",
        mnist_dir.parent,
        "--output",
        output,
        "--verbose",
        "0",
        "--extra-data",
        folder,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "40 users' examples" in completed.stdout
    metrics = json.loads(metrics_path_for(output).read_text())
    assert metrics["sources"]["extra"]["training_digits"] == 40
    assert set(metrics["validation"]) == {"mnist", "unipen", "cvl"}  # user data never validates
    import keras

    model = keras.saving.load_model(output, compile=False)
    probabilities = np.asarray(model(square(margin=6)[None, ..., None].astype(np.float32) / 255, training=False))
    assert probabilities.argmax() == SQUARE_LABEL, probabilities.round(3)


def test_training_refuses_a_folder_without_examples_clearly(tmp_path):
    completed = run_script("train.py", "--quick", "--output", tmp_path / "m.keras", "--extra-data", tmp_path)
    assert completed.returncode != 0 and "Traceback" not in completed.stderr
    assert "error: --extra-data" in completed.stderr and "holds no examples" in completed.stderr
