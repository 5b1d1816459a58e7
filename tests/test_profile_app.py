"""The app when the profile database is damaged, locked or in a missing folder: a short message, and digits
are still read (Streamlit's AppTest, the real model, real SQLite files)."""

import sqlite3

import numpy as np
import pytest

import profiles
from browser import mnist_test_set, model_under_test, paper_picture, readable_digit
from recognizer import Recognizer
from test_app import answers, drawn, press


@pytest.fixture(autouse=True)
def use_app_model(monkeypatch, model_path):
    monkeypatch.setenv("DIGIT_MODEL", str(model_under_test(model_path)))


@pytest.fixture(scope="module")
def seven(model_path, mnist_dir):
    images, labels = mnist_test_set(mnist_dir)
    return paper_picture([readable_digit(Recognizer(model_under_test(model_path)), images, labels, 7)])


def with_database(monkeypatch, path, token=None):
    monkeypatch.setenv(profiles.DATABASE_VARIABLE, str(path))
    return {"profile_token": token} if token else {}


def correct(test, digit):
    """Pick the true digit under the result and press Save correction."""
    (choice,) = [box for box in test.selectbox if box.label == "The digit"]
    choice.set_value(digit).run()
    return press(test, "save_drawing")


def test_a_damaged_database_is_said_and_digits_are_still_read(monkeypatch, tmp_path, seven):
    path = tmp_path / "profiles.sqlite3"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    test = press(drawn(seven, **with_database(monkeypatch, path, profiles.new_token())), "predict")
    assert not test.exception
    assert answers(test) == [("Recognised", "7")]
    warnings = [warning.value for warning in test.sidebar.warning]
    assert any("cannot be used right now" in text and "is damaged" in text for text in warnings), warnings
    test = correct(test, 1)
    assert not test.exception and answers(test) == [("Recognised", "7")]
    assert any(error.value.startswith("Not saved:") and "is damaged" in error.value for error in test.error)


def test_a_missing_folder_is_said_when_saving_and_digits_are_still_read(monkeypatch, tmp_path, seven):
    test = press(drawn(seven, **with_database(monkeypatch, tmp_path / "nowhere" / "profiles.sqlite3")), "predict")
    test = correct(test, 1)
    assert not test.exception and answers(test) == [("Recognised", "7")]
    assert any("does not exist" in error.value for error in test.error)
    assert not (tmp_path / "nowhere").exists()


def test_a_locked_database_is_said_and_digits_are_still_read(monkeypatch, tmp_path, seven):
    path = tmp_path / "profiles.sqlite3"
    store = profiles.ProfileStore(path)
    token = store.create_profile()
    store.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO profiles (token_hash, created) VALUES ('x', 0)")
    holder.execute("COMMIT")  # the lock stays with the holder
    try:
        test = press(drawn(seven, **with_database(monkeypatch, path, token)), "predict")
        assert not test.exception, test.exception[0].stack_trace and answers(test) == [("Recognised", "7")]
        assert any("locked by another program" in warning.value for warning in test.sidebar.warning)
    finally:
        holder.close()


def test_a_correction_is_kept_and_the_next_reading_uses_it(monkeypatch, tmp_path, seven):
    path = tmp_path / "profiles.sqlite3"
    test = press(drawn(seven, **with_database(monkeypatch, path)), "predict")
    assert not path.exists()  # nothing is kept before a correction
    test = correct(test, 1)
    token = test.session_state["profile_token"]
    assert test.query_params["profile"] == token  # the page's address now holds the secret link
    examples = profiles.ProfileStore(path).examples(token)
    assert list(examples.labels) == [1] and examples.sources == ("correction",)
    assert any("keeps **1 example**" in text.value for text in test.sidebar.markdown)
    test = press(test, "predict")
    assert any("Read with your 1 example." in caption.value for caption in test.main.caption)
