"""Bad input end to end: the recognizer, the command line and the app each give it a clear answer.

test_preprocessing.py checks how files are decoded; these tests take the paths users
take: file bytes into Recognizer, a folder into predict.py, uploads into the app. The
truth is always known independently: a digit the model reads right on its own,
stored in another form, or an input that holds no digit at all.
"""

import ast
import json
import re
import subprocess
import sys
import uuid

import cv2
import numpy as np
import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import app
import predict
from browser import ROOT, mnist_test_set, model_under_test, paper_picture, readable_digit
from decoding import ImageError, decode_image
from hostile import png_bomb
from preprocessing import prepare
from recognizer import ModelError, Recognition, Recognizer
from test_app import answers, run_app
from test_preprocessing import encode

CANVAS = 280  # the app's canvas side
BOMB_MEMORY_LIMIT = 200 * 2**20  # bytes above the baseline: a decoded 30000x30000 bomb would take 900 MB
CLI_TIMEOUT = 180  # seconds for predict.py on a busy 2-core machine
MEGAPIXELS_24 = (4000, 6000)  # a 24-megapixel phone photo, rows x columns
EXIF_ORIENTATION = 0x0112


def drawn_seven():
    """A 7 drawn with OpenCV, black on white: a well-formed image to break in various ways."""
    image = np.full((CANVAS, CANVAS, 3), 255, np.uint8)
    cv2.polylines(image, [np.int32([(75, 62), (205, 62), (125, 228)])], False, (0, 0, 0), 20, cv2.LINE_AA)
    return Image.fromarray(image)


GOOD_PNG = encode(drawn_seven(), "PNG")
GOOD_JPEG = encode(drawn_seven(), "JPEG", quality=90)
# File name -> (content, words the error message must contain).
BAD_FILES = {
    "empty.png": (b"", "empty (0 bytes)"),
    "truncated.png": (GOOD_PNG[: len(GOOD_PNG) // 2], "PNG file is damaged or truncated"),
    "truncated.jpg": (GOOD_JPEG[: len(GOOD_JPEG) // 3], "JPEG file is damaged or truncated"),
    "notes.png": (b"Shopping list\n- milk\n- 12 eggs\n", "looks like a text file"),
    "report.png": (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n", "looks like a PDF"),
    "icon.png": (encode(drawn_seven(), "ICO"), "unsupported image format ICO"),
    "bomb.png": (png_bomb(30_000, 30_000), "too large"),
}


# ---------------------------------------------------------------------------
# Pictures with known answers


@pytest.fixture(scope="module")
def digits(recognizer, mnist_dir):
    """One MNIST test image per label that the model reads right from a picture of it."""
    images, labels = mnist_test_set(mnist_dir)
    return {label: readable_digit(recognizer, images, labels, label) for label in range(10)}


def paper(digit):
    """An RGB picture of one MNIST digit as black ink on white paper."""
    return paper_picture([digit])[..., :3]


def exif_jpeg(upright, orientation):
    """A JPEG whose pixels are stored turned, with the EXIF tag that tells viewers how to turn them upright."""
    # Orientation 6 means "turn 90 degrees clockwise to show", so the pixels are stored turned anticlockwise.
    turns = {3: 2, 6: 1, 8: -1}[orientation]
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=turns)))
    exif = stored.getexif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(stored, "JPEG", quality=92, exif=exif), stored


def animated_gif(first, second):
    frames = [Image.fromarray(first).convert("P"), Image.fromarray(second).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)


def photo_jpeg(digit, shape=MEGAPIXELS_24, seed=0):
    """A phone-photo-like JPEG: grey paper, light falling off to one side, sensor noise, a large dark digit."""
    rng = np.random.default_rng(seed)
    height, width = shape
    light = np.linspace(1.0, 0.7, width, dtype=np.float32)[None, :]
    paper_grey = np.float32(200) * light + rng.integers(-6, 7, shape, dtype=np.int8)
    ink = cv2.resize(digit, (height * 6 // 10, height * 6 // 10), interpolation=cv2.INTER_CUBIC)
    top, left = height // 5, width // 3
    region = paper_grey[top : top + ink.shape[0], left : left + ink.shape[1]]
    coverage = ink.astype(np.float32) / 255
    region[:] = region * (1 - coverage) + np.float32(45) * coverage
    grey = np.clip(paper_grey, 0, 255).astype(np.uint8)
    bgr = cv2.merge([grey, grey, grey])  # colour, as phones save it
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("OpenCV could not encode the photo")
    return encoded.tobytes()


@pytest.fixture(scope="module")
def good_files(digits):
    """File name -> (bytes, the text they must read as): every colour mode and container users send."""
    grey = 255 - cv2.resize(digits[2], (CANVAS, CANVAS), interpolation=cv2.INTER_LINEAR)
    transparent_ink = np.dstack([np.zeros_like(grey), 255 - grey])  # grey + alpha: ink only in the alpha
    rotated, _ = exif_jpeg(paper(digits[7]), orientation=6)
    return {
        "sixteen_bit.png": (encode(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"), "2"),
        "palette.png": (encode(Image.fromarray(paper(digits[3])).convert("P"), "PNG"), "3"),
        "cmyk.jpg": (encode(Image.fromarray(paper(digits[5])).convert("CMYK"), "JPEG", quality=92), "5"),
        "grey_alpha.png": (encode(Image.fromarray(transparent_ink, "LA"), "PNG"), "2"),
        "one_bit.png": (encode(Image.fromarray(paper(digits[8])).convert("1"), "PNG"), "8"),
        "animated.gif": (animated_gif(paper(digits[4]), paper(digits[9])), "4"),  # the first frame counts
        "rotated.jpg": (rotated, "7"),
        "photo_24mp.jpg": (photo_jpeg(digits[6]), "6"),
    }


def blank_canvases():
    """Inputs with no digit in them, as file name -> bytes."""
    rng = np.random.default_rng(7)
    white = np.full((CANVAS, CANVAS, 3), 255, np.uint8)
    dot = cv2.circle(white.copy(), (140, 140), 4, (0, 0, 0), -1, cv2.LINE_AA)
    big_dot = cv2.circle(white.copy(), (100, 170), 22, (0, 0, 0), -1, cv2.LINE_AA)
    covered = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    covered[..., 3] = 255  # every pixel inked on the transparent canvas
    noise = rng.integers(0, 256, (CANVAS, CANVAS, 3), dtype=np.uint8)
    grey_noise = rng.integers(0, 256, (600, 400), dtype=np.uint8)
    return {
        "black.png": encode(Image.fromarray(np.zeros_like(white)), "PNG"),
        "white.png": encode(Image.fromarray(white), "PNG"),
        "transparent.png": encode(Image.fromarray(np.zeros((CANVAS, CANVAS, 4), np.uint8)), "PNG"),
        "covered.png": encode(Image.fromarray(covered), "PNG"),
        "dot.png": encode(Image.fromarray(dot), "PNG"),
        "big_dot.png": encode(Image.fromarray(big_dot), "PNG"),
        "noise.png": encode(Image.fromarray(noise), "PNG"),
        "noise.jpg": encode(Image.fromarray(noise), "JPEG", quality=75),
        "grey_noise.png": encode(Image.fromarray(grey_noise), "PNG"),
    }


BLANK_FILES = blank_canvases()


# ---------------------------------------------------------------------------
# The recognizer


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_file_gives_image_error_with_the_reason(recognizer, name):
    data, reason = BAD_FILES[name]
    with pytest.raises(ImageError, match=re.escape(reason)) as error:
        recognizer.recognize(data)
    assert "\n" not in str(error.value)  # one line, no traceback-like dump
    with pytest.raises(ImageError, match=re.escape(reason)):
        recognizer.recognize_many([GOOD_PNG, data])


def test_good_files_around_a_bad_one_still_read_in_a_batch(recognizer):
    """The reference for the test above: the same batch without the bad file reads."""
    results = recognizer.recognize_many([GOOD_PNG, GOOD_JPEG])
    assert all(isinstance(result, Recognition) and len(result.digits) == 1 for result in results)


def test_decompression_bomb_is_refused_without_decoding_it(tmp_path, model_path):
    """In a fresh process, so that its peak memory is the bomb's alone."""
    bombs = {"900-megapixel PNG": BAD_FILES["bomb.png"][0], "49-megapixel PNG": png_bomb(7_000, 7_000)}
    for name, data in bombs.items():
        assert len(data) < 200_000, name  # tiny files...
        (tmp_path / f"{name}.png").write_bytes(data)
    script = f"""
import json, re
from pathlib import Path
import preprocessing
from recognizer import Recognizer

def peak_memory():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024

recognizer = Recognizer({str(model_path)!r})
recognizer.recognize({GOOD_PNG!r})  # buffers for decoding and the model are allocated from here on
Path("/proc/self/clear_refs").write_text("5")  # the peak so far (loading the model) is forgotten
baseline = peak_memory()
messages = []
for path in sorted(Path({str(tmp_path)!r}).glob("*.png")):
    try:
        recognizer.recognize(path.read_bytes())
        messages.append(None)
    except preprocessing.ImageError as error:
        messages.append(str(error))
print(json.dumps({{"baseline": baseline, "peak": peak_memory(), "messages": messages}}))
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.splitlines()[-1])
    assert len(report["messages"]) == len(bombs)
    assert all(message and "too large" in message for message in report["messages"]), report["messages"]
    # ...that would decode to 900 MB and 49 MB: refused from the header, memory barely moves.
    assert report["peak"] - report["baseline"] < BOMB_MEMORY_LIMIT, report


@pytest.mark.parametrize(
    "name", ["sixteen_bit.png", "palette.png", "cmyk.jpg", "grey_alpha.png", "one_bit.png", "animated.gif"]
)
def test_every_kind_of_good_file_reads_as_its_digit(recognizer, good_files, name):
    data, text = good_files[name]
    result = recognizer.recognize(data)
    assert result.text == text, (name, result.to_dict()["digits"])


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_turns_the_photo_upright_before_reading(recognizer, digits, orientation):
    upright = paper(digits[7])
    data, stored = exif_jpeg(upright, orientation)
    read = recognizer.recognize(data)
    assert read.text == "7"
    # What the model was given matches the upright picture, not the stored pixels: a check that does
    # not depend on whether the model happens to read a turned 7 as a 7 (or, sideways, cuts it into
    # two 1s: the stored pixels are normalised here without the model's cuts).
    (seen,), (upright_seen,) = (
        [digit.image for digit in recognizer.recognize(picture).digits] for picture in (data, upright)
    )
    stored_seen = prepare(np.asarray(stored)).digits[0, ..., 0]
    assert np.abs(seen - upright_seen).mean() < 0.25 * np.abs(stored_seen - upright_seen).mean()


def test_24_megapixel_photo_is_read_where_the_digit_was_drawn(recognizer, good_files):
    data, _ = good_files["photo_24mp.jpg"]
    result = recognizer.recognize(data)
    assert result.text == "6"
    # Boxes are in the decoded picture's pixels, which for a photo this big is shrunk while
    # decoding: compare as shares of its sides. The digit's square spans rows 1/5 to 4/5 and
    # columns 1/3 to 11/15 of the photo, with MNIST's margins inside it.
    decoded_height, decoded_width = decode_image(data).shape[:2]
    assert decoded_width / decoded_height == pytest.approx(MEGAPIXELS_24[1] / MEGAPIXELS_24[0], rel=0.01)
    x, y, width, height = result.digits[0].box
    assert x / decoded_width >= 1 / 3 and (x + width) / decoded_width <= 11 / 15
    assert y / decoded_height >= 1 / 5 and (y + height) / decoded_height <= 4 / 5
    assert height / decoded_height > 1 / 3


@pytest.mark.parametrize("name", BLANK_FILES)
def test_input_without_a_digit_is_never_a_confident_answer(recognizer, name):
    result = recognizer.recognize(BLANK_FILES[name])
    assert result.status in ("empty", "uncertain"), (name, result.to_dict())
    assert result.message


# ---------------------------------------------------------------------------
# Anything at all: a Recognition or ImageError


def check_recognition(result):
    assert isinstance(result, Recognition)
    assert result.status in ("ok", "uncertain", "empty")
    assert 0.0 <= result.confidence <= 1.0 and result.text.isdigit() == bool(result.digits)
    json.dumps(result.to_dict())  # JSON-ready, as the command line and the app's download need


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"RIFF", b"%PDF"]),
    st.binary(max_size=400),
)
def test_any_bytes_give_a_recognition_or_image_error(recognizer, prefix, data):
    try:
        result = recognizer.recognize(prefix + data)
    except ImageError:
        return
    check_recognition(result)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hnp.arrays(
        st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_]),
        st.one_of(
            hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=40),
            st.tuples(st.integers(1, 80), st.integers(1, 80), st.sampled_from([1, 2, 3, 4])),
        ),
    )
)
def test_any_array_gives_a_recognition_or_image_error(recognizer, array):
    try:
        result = recognizer.recognize(array)
    except ImageError:
        return
    check_recognition(result)


# ---------------------------------------------------------------------------
# The command line


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory, good_files):
    """A folder of good, blank and bad files, and a file too big to read."""
    folder = tmp_path_factory.mktemp("mixed")
    for name, (data, _) in good_files.items():
        (folder / name).write_bytes(data)
    for name, data in BLANK_FILES.items():
        (folder / name).write_bytes(data)
    for name, (data, _) in BAD_FILES.items():
        (folder / name).write_bytes(data)
    with open(folder / "huge.png", "wb") as huge:  # sparse: takes no disk space
        huge.truncate(predict.MAX_FILE_BYTES + 1)
    return folder


def test_command_line_reads_every_good_file_and_names_every_bad_one(mixed_folder, good_files, model_path):
    completed = subprocess.run(
        [sys.executable, "predict.py", str(mixed_folder), "--model", str(model_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    expected_errors = {name: reason for name, (_, reason) in BAD_FILES.items()}
    expected_errors["huge.png"] = f"files over {predict.MAX_FILE_BYTES // 2**20} MB are refused"
    assert len(errors) == len(expected_errors), errors
    for name, reason in expected_errors.items():
        [line] = [line for line in errors if line.startswith(f"error: {mixed_folder / name}: ")]
        assert reason in line
    lines = dict(line.split(": ", 1) for line in completed.stdout.splitlines())
    assert set(lines) == {str(mixed_folder / name) for name in [*good_files, *BLANK_FILES]}
    for name, (_, text) in good_files.items():
        assert lines[str(mixed_folder / name)].startswith(f"{text} ("), name
    for name in BLANK_FILES:
        line = lines[str(mixed_folder / name)]
        assert line == "nothing to read" or line.endswith(", uncertain)"), (name, line)


# ---------------------------------------------------------------------------
# The app


@pytest.fixture
def app_model(monkeypatch, model_path):
    monkeypatch.setenv("DIGIT_MODEL", str(model_under_test(model_path)))


def upload(files):
    """The app after uploading (name, bytes) pairs."""
    test = run_app()
    test.file_uploader[0].set_value([(name, data, "image/png") for name, data in files]).run()
    assert not test.exception
    return test


def test_app_shows_a_single_bad_upload_as_an_error_and_nothing_else(app_model):
    data, reason = BAD_FILES["report.png"]
    test = upload([("report.png", data)])
    assert len(test.error) == 1
    assert f"**{app.plain_text('report.png')}**" in test.error[0].value
    assert app.plain_text(reason) in test.error[0].value
    assert answers(test) == [] and not test.dataframe


def test_app_reads_the_good_uploads_beside_bad_ones(app_model, good_files):
    good = ["cmyk.jpg", "rotated.jpg", "palette.png"]
    bad = ["bomb.png", "report.png", "icon.png", "truncated.jpg"]
    files = [(name, good_files[name][0]) for name in good[:2]] + [(name, BAD_FILES[name][0]) for name in bad]
    files += [("white.png", BLANK_FILES["white.png"]), (good[2], good_files[good[2]][0])]
    test = upload(files)
    errors = [error.value for error in test.error]
    assert len(errors) == len(bad)
    for name, error in zip(bad, errors):
        assert error.startswith(f"**{app.plain_text(name)}**: ") and app.plain_text(BAD_FILES[name][1]) in error
    table = test.dataframe[0].value
    assert table["file"].tolist() == [*good[:2], "white.png", good[2]]
    assert table["text"].tolist() == [good_files[name][1] for name in good[:2]] + ["", good_files[good[2]][1]]
    assert table["status"].tolist()[2] == "empty"


# Every Python-level open() while RECORDING holds True lands in OPENED; the hook cannot be removed.
RECORDING, OPENED = [False], []


def record_opens(event, arguments):
    if RECORDING[0] and event == "open":
        OPENED.append(str(arguments[0]))


@pytest.fixture(scope="module")
def opened_files():
    sys.addaudithook(record_opens)
    return OPENED


def test_app_opens_no_path_made_from_an_uploaded_file_name(app_model, good_files, opened_files):
    token = uuid.uuid4().hex
    name = f"../../tmp/{token}.jpg"  # a name that would escape a folder if it were ever joined to one
    RECORDING[0] = True
    try:
        test = upload([(name, good_files["cmyk.jpg"][0])])
    finally:
        RECORDING[0] = False
    assert answers(test) == [("Recognised", "5")]
    assert app.plain_text(name) in [caption for image in test.main.image for caption in image.captions]
    assert opened_files, "the audit hook saw no file opened at all: it is not recording"
    assert not [path for path in opened_files if token in path]


FILE_SYSTEM_CALLS = {
    "open",
    "Path",
    "imread",
    "imwrite",
    "read_bytes",
    "write_bytes",
    "read_text",
    "write_text",
    "mkdir",
    "unlink",
    "remove",
    "rename",
    "replace",
    "save",
    "load",
    "copy",
    "move",
    "listdir",
}


def called_name(call):
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)


APP_SOURCES = ("app.py", "result_view.py")  # the page and the result view it shows uploads in


def test_app_source_builds_no_path_from_an_uploaded_file_name():
    """Every file-system call in the app's source is checked for an argument that uses some `.name`."""
    trees = {source: ast.parse((ROOT / source).read_text()) for source in APP_SOURCES}
    calls = [
        (source, node)
        for source, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and called_name(node) in FILE_SYSTEM_CALLS
    ]
    assert calls  # the model path and its metrics file are opened: the check does see file access
    for source, call in calls:
        arguments = [*call.args, *(keyword.value for keyword in call.keywords)]
        names = [
            node
            for argument in arguments
            for node in ast.walk(argument)
            if isinstance(node, ast.Attribute) and node.attr == "name"
        ]
        assert not names, f"{source} line {call.lineno}: {ast.unparse(call)}"
    uploads = [
        node
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and called_name(node) == "getvalue"
    ]
    assert uploads  # uploaded files are read from memory


# ---------------------------------------------------------------------------
# Server and model safety


def test_server_limits_uploads_and_checks_xsrf():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    # No bigger than what the command line accepts (MB): both refuse what is not a photo.
    assert 1 <= server["maxUploadSize"] <= predict.MAX_FILE_BYTES // 2**20
    assert server["enableXsrfProtection"] is True
    assert config["client"]["showErrorDetails"] in ("none", False)  # visitors never see tracebacks


def test_keras_model_with_python_code_in_it_is_refused_unrun(tmp_path):
    import keras

    marker = str(tmp_path / "the-code-ran")
    # Building the model runs the Lambda once; loading it without safe mode would run it again.
    inputs = keras.Input((28, 28, 1))
    touched = keras.layers.Lambda(lambda images: (__import__("pathlib").Path(marker).touch(), images)[1])(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(touched))
    path = tmp_path / "digit_model.keras"
    keras.Model(inputs, outputs).save(path)
    (tmp_path / "the-code-ran").unlink()
    with pytest.raises(ModelError, match="could not be loaded"):
        Recognizer(path, backend="keras")
    assert not (tmp_path / "the-code-ran").exists()
    # The control: the file itself is fine, and its code does run when safe mode is off.
    keras.saving.load_model(path, safe_mode=False)
    assert (tmp_path / "the-code-ran").exists()
