"""The app's pages through Streamlit's AppTest: the real model and MNIST digits whose answer is known.

AppTest cannot run the canvas component, so a test puts into session state what the
canvas sends after a stroke: its strokes and the PNG of the drawing.
"""

import base64
import itertools
import json
import shutil

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import app
import comparison
import decoding
import result_view
from browser import ROOT, mnist_test_set, paper_picture, png_bytes, readable_digit
from recognizer import DigitResult, Recognition, Recognizer, percent

RUN_TIMEOUT = 30  # seconds; the first run loads the model
ANSWER_LABELS = ("Recognised", "Best guess")


pytestmark = pytest.mark.usefixtures("use_app_model")


@pytest.fixture(scope="module")
def reference(app_model):
    """The same model outside the app: it picks test digits, it is not the truth."""
    return Recognizer(app_model)


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return mnist_test_set(mnist_dir)


@pytest.fixture(scope="module")
def digits(reference, mnist_test):
    """One MNIST test image per digit that the model reads right; its label is the known answer."""
    images, labels = mnist_test
    return {label: readable_digit(reference, images, labels, label) for label in range(10)}


def canvas_sends(picture):
    """What the canvas component reports after a stroke: its strokes and a PNG data URL of the drawing."""
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")
    return {"drawing": {"raw": {"objects": [{"type": "path"}]}, "data": data_url}}


def run_app(state=None):
    """The app after its first run, with session state set beforehand (as the browser would have it)."""
    test = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT)
    for key, value in (state or {}).items():
        test.session_state[key] = value
    return test.run()


def drawn(picture, width=280, **state):
    """The app with picture on the canvas of this width."""
    size = next(name for name, canvas_width in app.CANVAS_WIDTHS.items() if canvas_width == width)
    return run_app({"canvas_size": size, app.canvas_key(width, 0): canvas_sends(picture), **state})


def press(test, key):
    return test.button(key=key).click().run()


def answers(test):
    """(label, text) of every result shown."""
    return [(metric.label, metric.value) for metric in test.main.metric if metric.label in ANSWER_LABELS]


def captions(test):
    """The captions of every image shown."""
    return [caption for image in test.main.image for caption in image.captions]


def test_start_page_shows_the_hint_and_no_answer():
    test = run_app()
    assert not test.exception
    assert test.title[0].value == app.TITLE
    assert any("press **Predict**" in info.value for info in test.info)
    assert answers(test) == []


def test_predict_with_nothing_drawn_asks_for_a_drawing():
    test = press(run_app(), "predict")
    assert answers(test) == []
    assert Recognition(digits=()).message in [info.value for info in test.info]


def test_drawn_digit_is_read(digits):
    test = press(drawn(paper_picture([digits[7]])), "predict")
    assert not test.exception
    assert answers(test) == [("Recognised", "7")]
    assert "What the model saw (28×28)" in captions(test)


def test_drawing_is_not_read_before_predict_is_pressed(digits):
    test = drawn(paper_picture([digits[7]]))
    assert answers(test) == []
    assert any("press **Predict**" in info.value for info in test.info)


def test_predict_while_drawing_needs_no_button(digits):
    test = drawn(paper_picture([digits[5]]), live=True)
    assert answers(test) == [("Recognised", "5")]
    assert test.button(key="predict").disabled


def test_changing_the_brush_keeps_the_drawing_and_result(digits):
    test = press(drawn(paper_picture([digits[3]])), "predict")
    test.slider(key="brush_width").set_value(30).run()
    assert answers(test) == [("Recognised", "3")]
    assert not any("drawing changed" in caption.value for caption in test.caption)


def test_whole_number_is_read_left_to_right_with_boxes(digits):
    test = press(drawn(paper_picture([digits[4], digits[2]]), width=560), "predict")
    assert answers(test) == [("Recognised", "42")]
    assert [tab.label for tab in test.tabs if tab.label.startswith("Digit")] == ["Digit 1: 4", "Digit 2: 2"]
    assert "Digits found in the picture, read left to right" in captions(test)


def test_canvas_strokes_tell_touching_digits_apart(digits):
    """With the canvas's strokes in its json_data, two touching 0s are read by their strokes as 00."""
    angles = np.linspace(0, 2 * np.pi, 40)
    loops = [np.stack([centre + 36 * np.cos(angles), 140 + 60 * np.sin(angles)], axis=1) for centre in (200, 272)]
    ink = np.zeros((280, 560), np.uint8)
    for loop in loops:
        cv2.polylines(ink, [loop.astype(np.int32)], False, 255, 16, cv2.LINE_AA)
    sent = canvas_sends(255 - ink)
    sent["drawing"]["raw"]["objects"] = [
        {"type": "Path", "strokeWidth": 16, "path": [["M", *loop[0]], *[["L", *point] for point in loop[1:]]]}
        for loop in loops
    ]
    test = press(run_app({"canvas_size": "Whole number", app.canvas_key(560, 0): sent}), "predict")
    assert answers(test) == [("Recognised", "00")]
    assert "Digits found from your strokes, read left to right" in captions(test)
    assert test.session_state["drawing_result"]["drawing"].to_json().startswith('{"width": 560')


def test_clear_removes_the_result_and_starts_a_new_canvas(digits):
    test = press(drawn(paper_picture([digits[7]])), "predict")
    test = press(test, "clear")
    assert answers(test) == []
    assert test.session_state["canvas_generation"] == 1
    assert any("press **Predict**" in info.value for info in test.info)


def test_unsure_reading_shows_the_message_and_only_a_best_guess(reference, mnist_test):
    """Two different digits drawn on top of each other: the model cannot be sure which it is."""
    images, labels = mnist_test
    firsts = [images[np.flatnonzero(labels == label)[0]] for label in range(10)]
    pairs = itertools.combinations(range(10), 2)
    overlaps = (paper_picture([np.maximum(firsts[first], firsts[second])]) for first, second in pairs)
    unsure = (picture for picture in overlaps if reference.recognize(picture).status == "uncertain")
    picture = next(unsure, None)
    assert picture is not None, "the model is sure about every pair of overlapping digits"
    expected = reference.recognize(picture)
    test = press(drawn(picture), "predict")
    assert answers(test) == [("Best guess", expected.text)]
    assert [warning.value for warning in test.warning] == [expected.message]


@pytest.mark.parametrize("extension", ["png", "jpg", "webp", "bmp"])
def test_uploaded_picture_is_read(digits, extension):
    picture = cv2.cvtColor(paper_picture([digits[8]]), cv2.COLOR_RGBA2BGR)
    ok, encoded = cv2.imencode(f".{extension}", picture)
    assert ok
    test = run_app()
    test.file_uploader[0].set_value((f"eight.{extension}", encoded.tobytes(), f"image/{extension}")).run()
    assert not test.exception
    assert answers(test) == [("Recognised", "8")]
    assert app.plain_text(f"eight.{extension}") in captions(test)


def test_several_uploads_give_a_table_and_each_bad_file_an_error(digits):
    good = {
        "seven.png": png_bytes(paper_picture([digits[7]])),
        "twelve.png": png_bytes(paper_picture([digits[1], digits[2]])),
    }
    bad = {
        "empty.png": b"",
        "truncated.png": good["seven.png"][:60],
        "notes.png": b"these are not the pixels you are looking for",
    }
    files = {**good, **bad}
    test = run_app()
    test.file_uploader[0].set_value([(name, data, "image/png") for name, data in files.items()]).run()
    assert not test.exception
    table = test.dataframe[0].value
    assert list(table.columns) == ["file", "text", "confidence", "status"]
    assert table["file"].tolist() == list(good)
    assert table["text"].tolist() == ["7", "12"]
    assert table["status"].tolist() == ["ok", "ok"]
    errors = [error.value for error in test.error]
    for name, data in bad.items():
        with pytest.raises(decoding.ImageError) as reason:
            decoding.decode_image(data)
        assert f"**{app.plain_text(name)}**: {app.plain_text(reason.value)}" in errors


def test_missing_model_shows_how_to_fix_it(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGIT_MODEL", str(tmp_path / "missing.keras"))
    test = run_app()
    assert not test.exception
    assert "could not be loaded" in test.error[0].value
    assert f"{tmp_path / 'missing.keras'} is missing" in test.error[0].value
    # The fix is for the file $DIGIT_MODEL names, not for the committed model.
    assert f"python train.py --data-dir ../shared/data --output {tmp_path / 'missing.keras'}" in test.code[0].value
    assert "git checkout" not in test.code[0].value and "unset DIGIT_MODEL" in test.code[0].value
    assert not test.tabs


def model_card(test):
    """The sidebar's model card: its one markdown table that lists the parameters."""
    (card,) = [markdown.value for markdown in test.sidebar.markdown if "| Parameters |" in markdown.value]
    return card


def test_model_without_metrics_says_not_measured(monkeypatch, tmp_path, app_model):
    for model_file in (app_model, app_model.with_suffix(".onnx")):
        shutil.copy(model_file, tmp_path / model_file.name)
    monkeypatch.setenv("DIGIT_MODEL", str(tmp_path / app_model.name))
    test = run_app()
    assert not test.exception
    assert test.sidebar.metric[0].value == result_view.NOT_MEASURED
    assert "| Parameters | not measured |" in model_card(test)


def test_model_card_shows_the_measured_figures(app_model):
    metrics = json.loads(app_model.with_name(app_model.stem + ".metrics.json").read_text())
    test = run_app()
    assert test.sidebar.metric[0].value == f"{metrics['mnist_test']['accuracy']:.2%}"
    card = model_card(test)
    assert f"| Parameters | {metrics['parameters']:,} |" in card
    for key, name in app.VALIDATION_NAMES.items():  # every source's validation writers, as measured
        scored = metrics["validation"][key]
        assert f"| {name} | {scored['accuracy']:.2%}" in card
        if scored["writers"] is not None:
            assert f"{scored['writers']} unseen writers |" in card
    credits = " ".join(markdown.value for markdown in test.sidebar.markdown)
    assert all(name in credits for name in ("MNIST", "UNIPEN", "CVL", "research"))


def test_model_card_shows_the_pen_path_model_and_both_views():
    from recognizer import DEFAULT_ONLINE_MODEL, metrics_path_for

    online_metrics = json.loads(metrics_path_for(DEFAULT_ONLINE_MODEL).read_text())
    halves = online_metrics["cross_fitted"].values()
    # Both views: each half of the validation writers scored with the weight fitted on the other half.
    both = sum(half["combined_accuracy"] * half["digits"] for half in halves) / sum(half["digits"] for half in halves)
    card = model_card(run_app())
    writers = f"{online_metrics['validation_writers']} unseen writers"
    assert f"| Pen-path model, UNIPEN | {online_metrics['online_accuracy']:.2%}, {writers} |" in card
    assert f"| Both views, UNIPEN | {both:.2%}, {writers} |" in card
    assert app.cross_fitted_accuracy({}) is None and app.cross_fitted_accuracy({"cross_fitted": "damaged"}) is None


def test_pixel_grid_shows_each_input_pixel_as_a_square():
    digit = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    grid, scale = result_view.pixel_grid(digit), result_view.PIXEL_SCALE
    assert grid.shape == (28 * scale, 28 * scale)
    inside = grid[1::scale, 1::scale]  # one pixel in from each square's grid line
    np.testing.assert_array_equal(inside, (digit * 255).astype(np.uint8))


def test_large_pictures_are_shrunk_for_display():
    picture = np.zeros((1500, 3000, 3), np.uint8)
    assert result_view.fit_for_display(picture).shape == (512, 1024, 3)
    assert result_view.fit_for_display(picture[:100, :200]).shape == (100, 200, 3)


def test_boxes_image_outlines_each_box():
    picture = np.full((100, 200, 4), 255, np.uint8)
    boxed = result_view.boxes_image(picture, [(20, 40, 50, 50), (120, 40, 60, 50)])
    assert tuple(boxed[89, 45]) == result_view.BOX_COLOUR  # bottom edge of the first box
    assert tuple(boxed[60, 179]) == result_view.BOX_COLOUR  # right edge of the second box
    assert tuple(boxed[60, 100]) == (255, 255, 255)  # between the boxes


def test_probabilities_have_one_format_never_rounded_to_certainty_or_to_zero():
    values = (0.123, 0.9994999, 0.9995, 1.0, 0.0005, 0.0004999, 0.0)
    assert [percent(value) for value in values] == ["12.3%", "99.9%", ">99.9%", ">99.9%", "0.1%", "<0.1%", "<0.1%"]


def test_an_unsure_answer_offers_the_readings_that_change_its_least_sure_digit():
    """Two digits: the second is unsure, so the alternatives change it, each with the chance of the whole text."""
    sure = digit_result(7, {7: 0.99, 1: 0.01})
    unsure = digit_result(4, {4: 0.5, 9: 0.3, 1: 0.15, 7: 0.005, 2: 0.045})
    recognition = Recognition(digits=(sure, unsure))
    assert recognition.status == "uncertain"
    readings = result_view.alternatives(recognition)
    assert [text for text, _ in readings] == ["79", "71", "72"]
    assert [round(probability, 6) for _, probability in readings] == [
        round(0.99 * 0.3, 6),
        round(0.99 * 0.15, 6),
        round(0.99 * 0.045, 6),
    ]
    assert result_view.alternatives_text(recognition) == "79 (29.7%), 71 (14.8%), 72 (4.5%)"
    assert result_view.spoken_answer(recognition).startswith("Best guess 74, 49.5% confidence.")
    assert result_view.spoken_answer(None) == ""


def digit_result(digit, chances):
    """A DigitResult with these probabilities (the rest 0), as the recognizer makes them."""
    probabilities = tuple(float(chances.get(value, 0.0)) for value in range(10))
    return DigitResult(digit, probabilities[digit], probabilities, (0, 0, 28, 28), np.zeros((28, 28), np.float32))


def test_transparent_drawing_is_shown_on_white_paper():
    ink = np.zeros((10, 10, 4), np.uint8)
    ink[2:5, 2:5, 3] = 255  # black ink, transparent elsewhere: the canvas's default
    paper = result_view.on_white(ink)
    assert paper.shape == (10, 10, 3)
    assert (paper[3, 3] == 0).all() and (paper[0, 0] == 255).all()


def test_each_digit_shows_why_and_its_runner_up(digits, reference):
    picture = paper_picture([digits[7]])
    probabilities = reference.recognize(picture).digits[0].probabilities
    runner_up = int(np.argsort(probabilities)[-2])
    test = press(drawn(picture), "predict")
    assert not test.exception
    assert f"Why 7 and not {runner_up}" in captions(test)
    assert any(
        f"**Runner-up: {runner_up}** at {percent(probabilities[runner_up])}" in markdown.value
        for markdown in test.main.markdown
    )


def test_comparison_shows_the_tutorial_reading_beside_the_app(digits):
    """An MNIST digit enlarged on the canvas: the tutorial model sees MNIST's own image, so its answer is known."""
    tutorial = Recognizer(comparison.TUTORIAL_MODEL)
    label = next(
        label
        for label, image in digits.items()
        if tutorial.probabilities((image / 255).astype(np.float32)[None, ..., None])[0][label] > 0.99
    )
    test = press(drawn(paper_picture([digits[label]])), "predict")
    assert not test.exception
    readings = {metric.label: metric.value for metric in test.main.metric}
    assert readings["This app"] == readings["Recognised"] == str(label)
    assert readings["Tutorial recipe"] == str(label)
    assert captions(test).count("What it saw") == 2
    shown = " ".join(caption.value for caption in test.main.caption)
    for path in (result_view.model_path(), comparison.TUTORIAL_MODEL):
        accuracy = json.loads(path.with_name(path.stem + ".metrics.json").read_text())["mnist_test"]["accuracy"]
        assert f"MNIST test accuracy {accuracy:.2%}" in shown


def test_comparison_says_how_to_make_a_missing_tutorial_model(monkeypatch, tmp_path, digits):
    monkeypatch.setattr(comparison, "TUTORIAL_MODEL", tmp_path / "tutorial_model.keras")
    test = press(drawn(paper_picture([digits[2]])), "predict")
    assert not test.exception
    assert answers(test) == [("Recognised", "2")]
    assert any("python train.py --recipe tutorial" in caption.value for caption in test.main.caption)


def test_result_pictures_travel_inside_the_page(digits):
    """Every picture of a result is a data: URL: no media file that a quick rerun could drop while it is fetched."""
    test = press(drawn(paper_picture([digits[4], digits[2]]), width=560), "predict")
    urls = [image.proto.imgs[0].url for image in test.main.image]
    assert urls and all(url.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for url in urls)
