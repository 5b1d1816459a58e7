"""What an attacker or a clumsy user sends, on every path: each gets a clear answer, nothing is lost.

Slivers, files that decode to 40 megapixels, forged canvas messages, hostile file names,
named pipes and devices, damaged models. The truth is independent of the code under
test: Pillow and OpenCV decoding in full, a Markdown parser, the csv module, the
process's own peak memory.
"""

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from markdown_it import MarkdownIt
from PIL import Image

import app
import decoding
import result_view
import strokes
from browser import ROOT, mnist_test_set, paper_picture, png_bytes, readable_digit
from decoding import ImageError
from hostile import data_url, float_tiff, png_bomb, sliver_png
from recognizer import ModelError, Recognition, Recognizer
from test_app import answers, canvas_sends, run_app

pytestmark = pytest.mark.usefixtures("use_app_model")  # the app under test reads the model the tests chose
CLI_TIMEOUT = 180  # seconds for predict.py on a busy 2-core machine
UPLOAD_MEMORY_LIMIT = 300 * 2**20  # the target: bytes over the idle level per upload, whatever the file
SIDE_40MP = 6324  # 6324^2 is just under decoding.MAX_PIXELS
CANVAS_WIDTH = 280
# File names that Markdown would turn into a remote picture, a link, colours, a formula and an emoji.
HOSTILE_NAMES = [
    "![x](http://127.0.0.1:9/pixel.png).png",
    "[click](http://example.com) **bold** _it_.png",
    ":red[red] :material/bolt: :smile: $x^2$.png",
    "<img src=x onerror=alert(1)> &amp; `code`.png",
    "# heading\n- list.png",
]
FORMULA_NAMES = ['=HYPERLINK("http://x","y").png', "+1+1.png", "-2.png", "@SUM(A1).png", "plain.png"]


@pytest.fixture(scope="module")
def seven(recognizer, mnist_dir):
    """An MNIST 7 as black ink on white paper (RGBA) that the model reads right."""
    images, labels = mnist_test_set(mnist_dir)
    return paper_picture([readable_digit(recognizer, images, labels, 7)])


def upload(files):
    """The app after uploading (name, bytes) pairs."""
    test = run_app()
    test.file_uploader[0].set_value([(name, data, "image/png") for name, data in files]).run()
    assert not test.exception
    return test


# ---------------------------------------------------------------------------
# Slivers: 3000x1 pictures


@pytest.mark.parametrize("shape", [(1, 3000), (3000, 1), (2, 5000)])
def test_a_sliver_is_shrunk_for_display_without_losing_its_short_side(shape):
    picture = np.zeros((*shape, 3), np.uint8)
    shown = result_view.fit_for_display(picture)
    assert max(shown.shape[:2]) == result_view.MAX_DISPLAY_SIDE and min(shown.shape[:2]) >= 1
    boxed = result_view.boxes_image(picture, [(0, 0, 10, 1), (20, 0, 10, 1)])
    assert max(boxed.shape[:2]) == result_view.MAX_DISPLAY_SIDE and min(boxed.shape[:2]) >= 1


def test_slivers_in_a_multi_upload_lose_no_file(seven):
    files = [
        ("first.png", png_bytes(seven)),
        ("wide.png", sliver_png(3000, 1)),
        ("tall.png", sliver_png(1, 3000)),
        ("last.png", png_bytes(seven)),
    ]
    test = upload(files)
    assert not test.error
    table = test.dataframe[0].value
    assert table["file"].tolist() == [name for name, _ in files]  # every file, in order
    assert table["text"].tolist()[0] == table["text"].tolist()[-1] == "7"


# ---------------------------------------------------------------------------
# The decoded-bytes budget


MEMORY_SCRIPT = """
import json, re, sys
from pathlib import Path
import decoding

def peak():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024

data = Path(sys.argv[1]).read_bytes()
Path("/proc/self/clear_refs").write_text("5")  # forget the peak of importing
baseline = peak()
try:
    shape, message = list(decoding.decode_image(data).shape), None
except decoding.ImageError as error:
    shape, message = None, str(error)
print(json.dumps({"over_baseline": peak() - baseline, "shape": shape, "message": message}))
"""


def decode_in_fresh_process(path):
    """decode_image() of a file in a new process: its shape or ImageError message, and the memory it took."""
    completed = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", ["1-bit PNG", "float TIFF", "RGBA PNG", "palette PNG", "16-bit grey PNG"])
def test_files_just_under_the_pixel_limit_decode_within_the_memory_budget(tmp_path, name):
    make = {
        "1-bit PNG": lambda: png_bomb(SIDE_40MP, SIDE_40MP),
        "float TIFF": lambda: float_tiff(SIDE_40MP, SIDE_40MP),
        "RGBA PNG": lambda: png_bomb(SIDE_40MP, SIDE_40MP, 8, "rgba"),
        "palette PNG": lambda: png_bomb(SIDE_40MP, SIDE_40MP, 8, "palette"),
        "16-bit grey PNG": lambda: png_bomb(SIDE_40MP, SIDE_40MP, 16, "grey"),
    }
    path = tmp_path / "file"
    path.write_bytes(make[name]())
    assert path.stat().st_size < 300_000  # a few kB that decode to 40 megapixels
    report = decode_in_fresh_process(path)
    assert report["message"] is None, report
    assert max(report["shape"][:2]) <= decoding.DECODE_MAX_SIDE
    assert report["over_baseline"] < UPLOAD_MEMORY_LIMIT, f"{report['over_baseline'] / 2**20:.0f} MB"


def test_a_file_whose_decoding_would_pass_the_byte_budget_is_refused_from_its_header(tmp_path):
    """A float TIFF in one strip: libtiff would hold the whole strip beside the image, 305 MB."""
    path = tmp_path / "one_strip.tif"
    path.write_bytes(float_tiff(SIDE_40MP, SIDE_40MP, rows_per_strip=SIDE_40MP))
    report = decode_in_fresh_process(path)
    assert report["message"] and "too large to decode" in report["message"]
    assert f"{decoding.MAX_DECODED_BYTES // 2**20} MB" in report["message"]
    assert report["over_baseline"] < 50 * 2**20  # refused before anything was decoded


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGBA", "I;16", "F"])
def test_shrinking_while_decoding_gives_the_picture_a_full_decode_gives(mode):
    """Reduced a band at a time in Pillow, against the whole image decoded and shrunk by OpenCV."""
    height, width = 2600, 4500  # more than twice DECODE_MAX_SIDE wide: reduced by a factor of 3
    rng = np.random.default_rng(0)
    levels = np.zeros((height, width), np.uint8)
    for _ in range(20):  # big blocks of grey: a shape that survives shrinking by 3
        x, y = rng.integers(0, width - 400), rng.integers(0, height - 400)
        levels[y : y + 400, x : x + 400] = rng.integers(0, 256)
    source = {
        "1": Image.fromarray(levels > 127),
        "L": Image.fromarray(levels),
        "P": Image.fromarray(levels).convert("P"),
        "RGBA": Image.fromarray(levels).convert("RGBA"),
        "I;16": Image.fromarray(levels.astype(np.uint16) * 257),
        "F": Image.fromarray(levels / 255.0),
    }[mode]
    buffer = io.BytesIO()
    source.save(buffer, "TIFF" if mode == "F" else "PNG")
    decoded = decoding.decode_image(buffer.getvalue())
    # What each file holds, as grey levels: the 1-bit one thresholded, the palette one dithered.
    full = {"1": (levels > 127) * 255.0, "P": np.asarray(source.convert("L"))}.get(mode, levels).astype(np.float32)
    expected = cv2.resize(full, (decoded.shape[1], decoded.shape[0]), interpolation=cv2.INTER_AREA)
    assert decoded.shape[:2] == (math.ceil(height / 3), math.ceil(width / 3))
    grey = decoded[..., :3].mean(axis=2)
    assert np.abs(grey - expected).mean() < 2.0, mode


# ---------------------------------------------------------------------------
# The canvas payload


@pytest.mark.parametrize(
    "data, reason",
    [
        (png_bomb(12_000, 12_000, 8, "rgba"), "too large"),  # 560 kB: decoded, it would take 550 MB
        (png_bomb(1000, 1000, 8, "rgba"), "the drawing is 1000x1000 pixels, but the canvas is 280x280"),
        (b"GIF89a\x00\x01 cut short", "damaged or truncated"),
        (b"plain words, not pixels", "not an image"),
    ],
)
def test_a_forged_canvas_picture_is_refused_with_the_reason(data, reason):
    with pytest.raises(ImageError, match=re.escape(reason)):
        app.drawing_picture(data, CANVAS_WIDTH)


def test_the_real_canvas_picture_is_decoded_as_it_was_drawn(seven):
    picture = np.ascontiguousarray(seven[:, :CANVAS_WIDTH])
    np.testing.assert_array_equal(app.drawing_picture(png_bytes(picture), CANVAS_WIDTH), picture)


STROKE = {"objects": [{"type": "path", "path": [["M", 10, 10], ["L", 200, 200]]}]}


@pytest.mark.parametrize(
    "state, reason",
    [
        ({"drawing": {"raw": STROKE, "data": data_url(png_bomb(12_000, 12_000, 8, "rgba"))}}, "too large"),
        ({"drawing": {"raw": STROKE, "data": data_url(png_bomb(1000, 1000, 8, "rgba"))}}, "but the canvas is"),
        ({"drawing": {"raw": STROKE, "data": "data:image/png;base64,@@@"}}, "the file is empty"),
        ({"drawing": {"raw": STROKE, "data": "data:image/png;base64,AAA"}}, "not a base64 data URL"),
        ({"drawing": {"raw": STROKE, "data": "no data URL at all"}}, "not a base64 data URL"),
        ({"drawing": {"raw": STROKE, "data": 12345}}, "not a base64 data URL"),
        ({"drawing": "not a drawing"}, "not a drawing"),
        ({"drawing": None, "backgroundFit": {"naturalWidth": 1}}, "not a drawing"),
    ],
)
def test_the_app_answers_a_forged_canvas_message_with_a_message_not_a_traceback(state, reason):
    test = run_app({app.canvas_key(CANVAS_WIDTH, 0): state})
    test = test.button(key="predict").click().run()
    assert not test.exception
    assert answers(test) == []
    assert [error.value for error in test.error if app.plain_text(reason) in error.value], test.error


@pytest.mark.parametrize("raw", [["a", "list"], {"objects": "not a list"}, "text", 7])
def test_forged_canvas_strokes_read_as_nothing_drawn(raw):
    test = run_app({app.canvas_key(CANVAS_WIDTH, 0): {"drawing": {"raw": raw, "data": None}}})
    test = test.button(key="predict").click().run()
    assert not test.exception
    assert Recognition(digits=()).message in [info.value for info in test.info]


def test_after_a_forged_canvas_message_the_real_drawing_still_reads(seven):
    key = app.canvas_key(CANVAS_WIDTH, 0)
    test = run_app({key: {"drawing": "not a drawing"}}).button(key="predict").click().run()
    test.session_state[key] = canvas_sends(np.ascontiguousarray(seven[:, :CANVAS_WIDTH]))
    test = test.button(key="predict").click().run()
    assert answers(test) == [("Recognised", "7")]


def check_recognition(result):
    assert isinstance(result, Recognition)
    assert result.status in ("ok", "uncertain", "empty")
    assert 0.0 <= result.confidence <= 1.0 and result.text.isdigit() == bool(result.digits)
    json.dumps(result.to_dict())


def png_of(array):
    """PNG bytes of an array in any dtype and shape Pillow can save, else None."""
    try:
        image = Image.fromarray(array)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
    except (TypeError, ValueError, OSError, KeyError):
        return None
    return buffer.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hnp.arrays(
        st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.bool_]),
        st.one_of(
            st.tuples(st.just(280), st.sampled_from([280, 560]), st.sampled_from([1, 2, 3, 4])),
            hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=60),
        ),
    ),
    st.sampled_from([280, 560]),
)
def test_any_canvas_picture_gives_a_recognition_or_image_error(recognizer, array, width):
    data = png_of(array)
    if data is None:  # a dtype or shape PNG cannot hold: the array itself is what a forged message would carry
        data = array.tobytes()[:4096]
    try:
        picture = app.drawing_picture(data, width)
    except ImageError:
        return
    assert picture.shape[:2] == (app.CANVAS_HEIGHT, width)
    check_recognition(recognizer.recognize(picture))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"II*\x00"]), st.binary(max_size=300))
def test_any_bytes_from_the_canvas_give_a_picture_or_image_error(prefix, data):
    try:
        picture = app.drawing_picture(prefix + data, CANVAS_WIDTH)
    except ImageError:
        return
    assert picture.shape[:2] == (app.CANVAS_HEIGHT, CANVAS_WIDTH)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=40,
)
POINT = st.lists(st.one_of(st.floats(-100, 700), st.integers(-100, 700), st.text(max_size=3)), min_size=0, max_size=3)
STROKE_FILES = st.fixed_dictionaries(
    {"strokes": st.lists(st.lists(POINT, max_size=30), max_size=8)},
    optional={"width": JSON_VALUES, "height": JSON_VALUES, "brush": JSON_VALUES},
)
CANVAS_OBJECTS = st.fixed_dictionaries(
    {
        "objects": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["path", "Path", "rect"]),
                    "path": st.lists(
                        st.lists(
                            st.one_of(st.sampled_from(["M", "L", "Q", "C", "Z", "X"]), st.floats(-50, 600)), max_size=7
                        ),
                        max_size=12,
                    ),
                },
                optional={"strokeWidth": JSON_VALUES},
            ),
            max_size=6,
        )
    }
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON_VALUES, STROKE_FILES, CANVAS_OBJECTS))
def test_any_stroke_json_gives_a_recognition_or_stroke_error(recognizer, value):
    for form in (value, json.dumps(value), json.dumps(value).encode()):
        try:
            result = recognizer.recognize_strokes(form)
        except strokes.StrokeError:
            continue
        check_recognition(result)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_as_a_stroke_file_give_a_recognition_or_stroke_error(recognizer, data):
    with contextlib.suppress(strokes.StrokeError):
        check_recognition(recognizer.recognize_strokes(b"{" + data))


# ---------------------------------------------------------------------------
# Per-session caching of uploads


@pytest.fixture
def counted_decodes(monkeypatch):
    """How many times the app decodes a file: decode_image itself, counted as it runs."""
    calls = []
    real = decoding.decode_image

    def counting(data, *arguments, **options):
        calls.append(len(data))
        return real(data, *arguments, **options)

    monkeypatch.setattr(decoding, "decode_image", counting)
    return calls


def test_reruns_do_not_decode_uploads_again(seven, counted_decodes):
    files = [(f"seven_{index}.png", png_bytes(seven)) for index in range(3)] + [("bad.png", b"not an image")]
    test = upload(files)
    assert len(counted_decodes) == 4
    test.slider(key="brush_width").set_value(30).run()  # a rerun that changes nothing about the uploads
    test.toggle(key="live").set_value(True).run()
    assert len(counted_decodes) == 4
    assert test.dataframe[0].value["text"].tolist() == ["7", "7", "7"]
    assert len(test.error) == 1  # the bad file's error is remembered too
    # A new selection: AppTest gives every file in it a new id, as a browser does for new files.
    test.file_uploader[0].set_value([("another.png", png_bytes(seven), "image/png")]).run()
    assert len(counted_decodes) == 5
    assert len(test.session_state["upload_readings"]) == 1  # removed files are forgotten
    test.file_uploader[0].set_value([]).run()
    assert "upload_readings" not in test.session_state


# ---------------------------------------------------------------------------
# File names as plain text; CSV cells


def rendered_text(markdown):
    """The visible text of Markdown, and whether it made any link, picture, emphasis, code, HTML or heading."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    inline = [child for token in tokens if token.type == "inline" for child in token.children]
    markup = [
        token.type
        for token in [*tokens, *inline]
        if token.type not in ("paragraph_open", "paragraph_close", "inline", "text", "softbreak")
    ]
    return "".join(child.content for child in inline if child.type == "text"), markup


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_file_names_are_plain_text_for_markdown(name):
    text, markup = rendered_text(app.plain_text(name))
    assert markup == []
    assert text.replace(app.WORD_JOINER, "") == " ".join(name.splitlines())


@pytest.mark.parametrize("shown", range(len(HOSTILE_NAMES)))
def test_hostile_file_names_reach_the_page_only_as_escaped_text(seven, shown):
    files = [(name, png_bytes(seven)) for name in HOSTILE_NAMES] + [(name, b"broken") for name in HOSTILE_NAMES[:2]]
    test = upload(files)
    test.selectbox(key=f"upload_shown_{len(HOSTILE_NAMES)}").set_value(shown).run()
    markdown = [caption for image in test.main.image for caption in image.captions]
    markdown += [error.value for error in test.error]
    assert app.plain_text(HOSTILE_NAMES[shown]) in markdown  # the picture's caption
    for name in HOSTILE_NAMES[:2]:
        assert f"**{app.plain_text(name)}**: " in " ".join(markdown)  # the broken files' errors
    for text in markdown:
        assert rendered_text(text)[1] in ([], ["strong_open", "strong_close"]), text  # only the app's own bold
    # The table and the list of results are not Markdown: the names are there as they are.
    assert test.dataframe[0].value["file"].tolist() == HOSTILE_NAMES
    assert [option.split(": 7")[0] for option in test.selectbox[0].options] == HOSTILE_NAMES


def test_csv_cells_cannot_become_spreadsheet_formulas(seven):
    frame = app.readings_frame([app.UploadReading(name, Recognition(digits=())) for name in FORMULA_NAMES])
    rows = list(csv.reader(io.StringIO(app.readings_csv(frame))))
    assert rows[0] == ["file", "text", "confidence", "status"]
    for name, row in zip(FORMULA_NAMES, rows[1:]):
        assert not row[0].startswith(("=", "+", "-", "@"))
        assert row[0].lstrip("'") == name


# ---------------------------------------------------------------------------
# The command line: only regular files, never more than the limit


def run_cli(*arguments, environment=None):
    return subprocess.run(
        [sys.executable, "predict.py", *map(str, arguments)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env={**os.environ, **(environment or {})},
    )


def test_command_line_refuses_pipes_and_devices_and_reads_the_rest(tmp_path, seven):
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)  # opening it for reading would wait for a writer forever
    (tmp_path / "zero.png").symlink_to("/dev/zero")  # endless
    good = tmp_path / "seven.png"
    good.write_bytes(png_bytes(seven))
    completed = run_cli(pipe, "/dev/zero", tmp_path / "zero.png", good)
    assert completed.returncode == 1
    errors = completed.stderr.splitlines()
    assert [line.split(": ")[1] for line in errors] == [str(pipe), "/dev/zero", str(tmp_path / "zero.png")]
    assert all("is not a regular file" in line for line in errors)
    assert completed.stdout.startswith(f"{good}: 7 (")


def test_a_file_larger_than_the_limit_is_not_read(tmp_path):
    import predict

    huge = tmp_path / "huge.png"
    with open(huge, "wb") as file:  # sparse: no disk space
        file.truncate(predict.MAX_FILE_BYTES + 1)
    with pytest.raises(ImageError, match="are refused"):
        predict.read_regular_file(huge)
    assert predict.read_regular_file(huge, limit=predict.MAX_FILE_BYTES + 1) == bytes(predict.MAX_FILE_BYTES + 1)


# ---------------------------------------------------------------------------
# Model faults


@pytest.fixture(scope="module")
def truncated_model(tmp_path_factory, model_path):
    folder = tmp_path_factory.mktemp("truncated")
    path = folder / "digit_model.keras"
    path.write_bytes(model_path.read_bytes()[: model_path.stat().st_size // 2])
    return path


def test_a_truncated_model_is_named_damaged_with_its_own_path_and_fix(truncated_model):
    with pytest.raises(ModelError) as error:
        Recognizer(truncated_model)
    message = str(error.value)
    assert f"{truncated_model} is damaged or truncated" in message and "File not found" not in message
    assert f"python train.py --output {truncated_model}" in message
    assert "git checkout" not in message  # that would restore the committed model, not this one


def test_a_model_missing_a_part_is_named_damaged(tmp_path, model_path):
    path = tmp_path / "digit_model.keras"
    with zipfile.ZipFile(model_path) as source, zipfile.ZipFile(path, "w") as copy:
        for member in source.namelist():
            if member != "model.weights.h5":
                copy.writestr(member, source.read(member))
    with pytest.raises(ModelError, match=r"model\.weights\.h5 missing from the archive"):
        Recognizer(path)


def test_the_committed_model_path_gets_the_git_fix(monkeypatch):
    from recognizer import DEFAULT_MODEL, how_to_fix

    monkeypatch.delenv("DIGIT_MODEL")
    assert "git checkout -- digit_model.keras" in how_to_fix(DEFAULT_MODEL)


def test_command_line_honours_digit_model_and_its_error_stands_alone(tmp_path, truncated_model, seven):
    good = tmp_path / "seven.png"
    good.write_bytes(png_bytes(seven))
    completed = run_cli(good, environment={"DIGIT_MODEL": str(truncated_model)})
    assert completed.returncode == 2
    [line] = completed.stderr.splitlines()  # one line: no TensorFlow start-up noise around it
    assert line.startswith(f"error: The model file {truncated_model} is damaged or truncated")
    assert f"$DIGIT_MODEL names {truncated_model}" in line


def test_command_line_on_the_keras_fallback_says_so_in_one_note(tmp_path, model_path, seven):
    """No ONNX export beside the model: Keras (and TensorFlow) is loaded, and says nothing but the note."""
    model = tmp_path / "digit_model.keras"
    shutil.copy(model_path, model)
    good = tmp_path / "seven.png"
    good.write_bytes(png_bytes(seven))
    completed = run_cli(good, environment={"DIGIT_MODEL": str(model)})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"{good}: 7 (")
    [note] = completed.stderr.splitlines()
    assert note.startswith("note: digit_model.onnx is missing; using the Keras model")


def test_the_app_says_when_it_runs_on_the_keras_fallback(monkeypatch, tmp_path, app_model):
    model = tmp_path / "digit_model.keras"
    shutil.copy(app_model, model)
    shutil.copy(app_model.with_suffix(".onnx"), model.with_suffix(".onnx"))
    with open(model, "ab") as file:  # a changed .keras: its export is now stale
        file.write(b"\0")
    monkeypatch.setenv("DIGIT_MODEL", str(model))
    test = run_app()
    assert not test.exception
    warnings = [warning.value for warning in test.warning]
    assert any(
        "Running on the Keras model because digit_model.onnx is older than digit_model.keras" in warning
        for warning in warnings
    ), warnings
