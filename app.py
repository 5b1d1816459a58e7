"""Draw digits or upload pictures of them, and see what the CNN reads.

    streamlit run app.py
    DIGIT_MODEL=/path/to/other.keras streamlit run app.py

The model is loaded once per server process (result_view.load_recognizer) and runs on
ONNX Runtime (see recognizer.py), so a prediction takes milliseconds and TensorFlow is
never imported while the exported model is up to date. This file is the page: its
settings and sidebar, the canvas and the uploads; result_view.py shows each reading.
"""

import functools
import re
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import streamlit as st

import decoding
import profile_ui
from recognizer import DEFAULT_MODEL, DEFAULT_ONLINE_MODEL, MODEL_VARIABLE, ModelError, Recognition, percent
from result_view import (
    BOX_COLOUR,
    boxes_image,
    comparison_ui,
    fit_for_display,
    inline_picture,
    load_recognizer,
    measured,
    model_path,
    on_white,
    read_metrics,
    result_ui,
    spoken_answer,
)
from strokes import StrokeError, parse_drawing

TITLE = "Handwritten digit recognizer"
CANVAS_HEIGHT = 280  # ten times MNIST's 28 px: room for a finger-drawn digit
CANVAS_WIDTHS = {"One digit": 280, "Whole number": 560}  # the wide canvas fits several digits
INK_COLOUR = "#000000"
PAPER_COLOUR = "#ffffff"  # opaque paper keeps the ink visible in any theme and in the downloaded PNG
BRUSH_WIDTH = 20  # MNIST strokes are about a tenth of the digit's height
ICON_SIDE = 64  # px of the tab's icon
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
# Markdown treats ASCII punctuation as syntax (links, pictures, emphasis, colours, formulas);
# a backslash before any of it shows it as written.
MARKDOWN_SYNTAX = re.compile(r"([!-/:-@\[-`{-~])")
# Streamlit turns :name: into an emoji or icon after escapes are read: an invisible word
# joiner after each colon keeps a file named :smile:.png as it is.
WORD_JOINER = "\u2060"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell that starts with one of these

# The canvas is inside the component's shadow root, so the page styles its container:
# touch-action: none there keeps a finger drawing on a phone from scrolling the page.
# The answer's size follows its box (cqi: a hundredth of the box's width) and long numbers
# wrap instead of ending in "...".
PAGE_STYLE = """
<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
.st-key-drawing_pad { touch-action: none; overscroll-behavior: contain; }
[class*="st-key-canvas_fit_"] { container-type: inline-size; }
[class*="st-key-answer_"] { container-type: inline-size; }
[class*="st-key-answer_"] [data-testid="stMetricValue"] {
  font-size: clamp(2.25rem, 24cqi, 4.5rem); line-height: 1.05; font-weight: 700; letter-spacing: 0.06em; }
[class*="st-key-answer_"] [data-testid="stMetricValue"] *, [data-testid="stMetricDelta"] * {
  white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere; }
[class*="st-key-answer_"] [data-testid="stMetric"] { padding: 0.75rem 1.25rem; }
/* The popover's arrow is an icon font's ligature: its name ("expand_more") would be read out with the button's. */
[data-testid="stPopoverButton"] [data-testid="stIconMaterial"] { display: none; }
</style>
"""
# Scrolled to once the answer's text is there: a session's first answer loads the metric's code
# and is at first a short placeholder, so "in view" then left most of the answer below a phone's fold.
ANSWER_CARD_FILLED = ".st-key-answer_drawing:has([data-testid='stMetricValue'])"
FIT_STEP = 10  # px: the canvas is shrunk or grown in steps of this, to the widest step its column holds
MOST_ZOOM = 1.25  # a phone's one-digit canvas grows to the screen's width, but not beyond this
PHONE_WIDTH = 640  # px: Streamlit puts columns under each other below this window width


def canvas_fit_style(narrowest=200):
    """CSS that zooms each canvas to fit its column: the canvas keeps its pixels, only its size on screen changes.

    Its drawing, strokes and brush stay in canvas pixels, so every size is read exactly alike.
    """
    rules = []
    for width in CANVAS_WIDTHS.values():
        pad = f".st-key-canvas_fit_{width} .st-key-drawing_pad"
        # Narrowest last: of the rules that hold, the last wins.
        rules += [
            f"@container (max-width: {fits + FIT_STEP - 0.02}px) {{ {pad} {{ zoom: {fits / width:.4f}; }} }}"
            for fits in range(width - FIT_STEP, narrowest - 1, -FIT_STEP)
        ]
        rules += [
            f"@media (max-width: {PHONE_WIDTH}px) {{ @container (min-width: {fits}px) "
            f"{{ {pad} {{ zoom: {fits / width:.4f}; }} }} }}"
            for fits in range(width + FIT_STEP, round(width * MOST_ZOOM) + 1, FIT_STEP)
        ]
    return "<style>\n" + "\n".join(rules) + "\n</style>"


@functools.cache
def page_icon():
    """The tab's icon, drawn here: a material icon or emoji would be fetched from a font server outside the app."""
    side = ICON_SIDE
    icon = np.zeros((side, side, 4), dtype=np.uint8)
    cv2.rectangle(icon, (0, 0), (side - 1, side - 1), (*BOX_COLOUR, 255), cv2.FILLED)
    seven = np.array([[0.25, 0.25], [0.75, 0.25], [0.45, 0.8]]) * side
    cv2.polylines(icon, [seven.astype(np.int32)], False, (255, 255, 255, 255), round(side / 9), cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(icon, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ValueError("OpenCV could not encode the page icon as PNG")
    return encoded.tobytes()  # PNG bytes: set_page_config takes them, not an array


def duration(seconds):
    """'42 s', '12 min 5 s' or '1 h 3 min'."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def readings_frame(readings):
    """One row per read file: file, text, confidence, status."""
    rows = [
        (reading.name, reading.recognition.text, reading.recognition.confidence, reading.recognition.status)
        for reading in readings
    ]
    return pd.DataFrame(rows, columns=["file", "text", "confidence", "status"])


def plain_text(text):
    """Text from a user (a file name) for a Markdown element: shown exactly as written, one line."""
    line = "".join(character if character.isprintable() else " " for character in str(text))
    return re.sub(r":(?=\S)", ":" + WORD_JOINER, MARKDOWN_SYNTAX.sub(r"\\\1", line))


def spreadsheet_safe(value):
    """A CSV cell that spreadsheets show as text: a leading quote disarms =, +, - and @ formulas."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def readings_csv(frame):
    """The readings table as CSV text, every cell safe to open in a spreadsheet."""
    return frame.map(spreadsheet_safe).to_csv(index=False)


@dataclass(frozen=True)
class UploadReading:
    """One uploaded file as read, kept in the session: reruns neither decode nor draw it again."""

    name: str
    recognition: Recognition = None  # None when the file could not be read
    error: str = None  # why it could not be read
    picture: str = None  # the picture as shown, at most MAX_DISPLAY_SIDE, as a JPEG data: URL
    boxes: str = None  # the picture with its digits boxed, when it holds several, likewise


def read_upload(recognizer, file):
    """An UploadReading of one uploaded file: decoded within the budget, read, and its pictures drawn."""
    try:
        image = decoding.decode_image(file.getvalue())
    except decoding.ImageError as error:  # one bad file must not stop the others
        return UploadReading(file.name, error=str(error))
    recognition = recognizer.recognize(image)
    boxes = None
    if len(recognition.digits) > 1:
        boxes = inline_picture(boxes_image(image, [digit.box for digit in recognition.digits]), "jpeg")
    return UploadReading(
        file.name, recognition, picture=inline_picture(fit_for_display(on_white(image)), "jpeg"), boxes=boxes
    )


def read_uploads(recognizer, files):
    """UploadReadings of the uploaded files, each read once per session; removed files are forgotten."""
    known = st.session_state.get("upload_readings", {})
    readings = {file.file_id: known.get(file.file_id) or read_upload(recognizer, file) for file in files}
    st.session_state.upload_readings = readings
    return list(readings.values())


def canvas_key(width, generation):
    """The canvas widget's key: one per canvas size and per Clear."""
    return f"canvas_{width}_{generation}"


def new_drawing():
    """Start an empty canvas: a new key makes the component start afresh, and the old result goes."""
    st.session_state.canvas_generation = st.session_state.get("canvas_generation", 0) + 1
    st.session_state.pop("drawing_result", None)
    st.session_state.pop("initial_drawing", None)


def undo_stroke():
    """Take back the last stroke: the canvas starts again from the strokes before it."""
    from drawing_pad import without_last_stroke

    st.session_state.undo_count = st.session_state.get("undo_count", 0) + 1
    st.session_state.initial_drawing = without_last_stroke(
        st.session_state.get("canvas_objects", []), st.session_state.undo_count
    )


def request_prediction():
    """Remember the click in session state: a canvas update that interrupts this run must not lose it."""
    st.session_state.prediction_requested = True


def style_ui():
    st.html(PAGE_STYLE + canvas_fit_style())


def model_error_ui(error):
    """A page that says what is wrong with the model and how to fix it, instead of a traceback."""
    st.title(TITLE)
    st.error(f"**The digit model could not be loaded.** {error}")
    st.markdown("To fix it, run one of these in the project folder, then reload this page:")
    path = model_path()
    if path.resolve() == DEFAULT_MODEL.resolve():
        fixes = (
            "# the committed model:\n"
            "git checkout -- digit_model.keras digit_model.onnx digit_model.metrics.json\n"
            "# or train a new one:\n"
            "python train.py --data-dir ../shared/data"
        )
    else:  # the model the operator chose is the one to fix, not the committed one
        fixes = (
            f"# a new model where ${MODEL_VARIABLE} points:\n"
            f"python train.py --data-dir ../shared/data --output {path}\n"
            f"python export.py --model {path}\n"
            f"# or the committed model: start the app without ${MODEL_VARIABLE}\n"
            f"unset {MODEL_VARIABLE}"
        )
    st.code(fixes, language="bash")
    st.caption(f"The app reads the model from ${MODEL_VARIABLE} when it is set, else digit_model.keras beside it.")


def sidebar_ui(metrics, backend_name, online_metrics=None):
    """Settings, the model card and the about text; returns (brush width, predict while drawing)."""
    with st.sidebar:
        st.header("Settings")
        brush_width = st.slider(
            "Brush width",
            min_value=6,
            max_value=40,
            value=BRUSH_WIDTH,
            step=2,
            key="brush_width",
            help="Thicker strokes look more like MNIST's digits.",
        )
        live = st.toggle(
            "Predict while drawing", key="live", help="On: the answer follows every stroke. Off: press Predict."
        )
        st.divider()
        profile_ui.profile_sidebar_ui()
        st.divider()
        # In popovers: a closed popover's contents are not drawn, and the browser redraws every element drawn
        # on each run of the drawing fragment: the sidebar's card, texts and uploader cost Predict some 50 ms.
        with st.popover("Model card", width="stretch"):
            model_card_ui(metrics, backend_name, online_metrics or {})
        with st.popover("About and credits", width="stretch"):
            about_ui()
    return brush_width, live


VALIDATION_NAMES = {  # metrics key -> how the model card names it
    "unipen": "UNIPEN pen writers",
    "cvl": "CVL European writers",
    "mnist": "MNIST held-out digits",
}
DATA_CREDITS = (
    "**Training data.** "
    "[MNIST](https://yann.lecun.com/exdb/mnist/) (LeCun, Cortes, Burges; CC BY-SA 3.0). "
    "UNIPEN train_r01_v07 (Guyon et al., ICPR 1994; Zenodo doi:10.5281/zenodo.1195803, CC BY 4.0; "
    "its original notice allows research use only, not commercial distribution). "
    "CVL Single Digit (Diem et al., ICDAR 2013 HDRC; free for research). "
    "Because of the last two, this model is for research and personal use, not for commercial products."
)


def model_card_ui(metrics, backend_name, online_metrics):
    st.header("Model card")
    test = metrics.get("mnist_test") if isinstance(metrics.get("mnist_test"), dict) else {}
    st.metric("MNIST test accuracy", measured(test.get("accuracy"), lambda value: f"{value:.2%}"))
    validation = metrics.get("validation") if isinstance(metrics.get("validation"), dict) else {}
    epochs_run = measured(metrics.get("epochs_run"), str)
    figures = {"Test errors": measured(test.get("errors"), lambda value: f"{value:,} of 10,000")}
    for key, name in VALIDATION_NAMES.items():
        scored = validation.get(key) if isinstance(validation.get(key), dict) else {}
        if scored:
            writers = scored.get("writers")
            unseen = f", {writers} unseen writers" if isinstance(writers, int) else ""
            figures[name] = measured(scored.get("accuracy"), lambda value, unseen=unseen: f"{value:.2%}{unseen}")
    figures |= {
        "Parameters": measured(metrics.get("parameters"), lambda value: f"{value:,}"),
        "Model size": measured(metrics.get("model_file_bytes"), lambda value: f"{value / 1e6:.1f} MB"),
        "Training time": measured(metrics.get("training_seconds"), duration),
        "Best epoch": measured(metrics.get("best_epoch"), lambda value: f"{value} of {epochs_run}"),
        "Runs on": "ONNX Runtime" if backend_name == "onnx" else "Keras",
    }
    if online_metrics:  # the second view, for drawings whose strokes are known
        writers = online_metrics.get("validation_writers")
        unseen = f", {writers} unseen writers" if isinstance(writers, int) else ""
        figures["Pen-path model, UNIPEN"] = measured(
            online_metrics.get("online_accuracy"), lambda value: f"{value:.2%}{unseen}"
        )
        figures["Both views, UNIPEN"] = measured(
            cross_fitted_accuracy(online_metrics), lambda value: f"{value:.2%}{unseen}"
        )
    rows = [f"| {name} | {value} |" for name, value in figures.items()]
    st.markdown("\n".join(["| Figure | Value |", "|:--|--:|", *rows]))
    st.caption(
        "Validation writers were never trained on; the best epoch was chosen on them, "
        "MNIST's test set was used only for the final figure."
    )
    if metrics.get("quick_mode"):
        st.warning("This is the quick test model, trained for seconds: expect mistakes.")


def cross_fitted_accuracy(online_metrics):
    """The two views' combined accuracy over both halves of the validation writers, each half's weight
    fitted on the other half (train_online.py), or None when the metrics do not hold it."""
    folds = online_metrics.get("cross_fitted")
    try:
        right = sum(fold["combined_accuracy"] * fold["digits"] for fold in folds.values())
        return right / sum(fold["digits"] for fold in folds.values())
    except (AttributeError, KeyError, TypeError, ZeroDivisionError):
        return None


def about_ui():
    st.header("About")
    st.markdown(
        "A small convolutional network trained on handwriting from about 500 people beside MNIST's "
        "writers: pen-tablet strokes from 16 sites (UNIPEN) and scanned digits of European writers (CVL). "
        "Each digit you draw is cropped, its strokes brought to MNIST's width, scaled to 20 px and centred "
        "in 28×28 pixels the way MNIST's digits are, then read by the model. Several digits are read left "
        "to right. Where your strokes are known (the canvas, stroke files), a second model reads the path "
        "your pen took and the two answers are combined. "
        "Nothing you draw or upload is stored unless you correct an answer (see *Your handwriting*)."
    )
    st.markdown(DATA_CREDITS)


@st.fragment  # a stroke or a prediction reruns only the drawing and its result, not the whole page
def draw_ui(recognizer, brush_width, live):
    """The canvas, its buttons, and the result for what is drawn."""
    # Imported here: the component registers itself with the running Streamlit server on import,
    # which fails where there is none (the tests import this module for its helpers).
    from announcer import announce
    from drawing_pad import drawing_canvas

    size = st.radio(
        "Canvas",
        list(CANVAS_WIDTHS),
        horizontal=True,
        key="canvas_size",
        on_change=new_drawing,
        help="The wide canvas holds a whole number. A new size starts a new drawing.",
    )
    width = CANVAS_WIDTHS[size]
    if width > CANVAS_HEIGHT:  # a wide canvas needs the full width: the result goes below it
        drawing_area, result_area = st.container(), st.container()
    else:
        drawing_area, result_area = st.columns([1, 1.35], gap="large")
    with drawing_area:
        with st.container(key=f"canvas_fit_{width}"), st.container(key="drawing_pad"):
            canvas, problem = guarded_canvas(
                drawing_canvas,
                stroke_width=brush_width,
                stroke_color=INK_COLOUR,
                background_color=PAPER_COLOUR,
                height=CANVAS_HEIGHT,
                width=width,
                return_image_data=True,
                initial_drawing=st.session_state.get("initial_drawing"),  # set by Undo
                # A stable key keeps the drawing across reruns (brush width, toggles); Clear changes it.
                key=canvas_key(width, st.session_state.get("canvas_generation", 0)),
            )
        strokes = canvas_strokes(canvas)
        st.session_state.canvas_objects = strokes  # what Undo takes the last stroke from
        # Text only: an icon's name would be read out as part of the button's name.
        buttons = st.container(horizontal=True)
        with buttons:
            st.button(
                "Predict",
                type="primary",
                disabled=live,
                key="predict",
                on_click=request_prediction,
                help="Predicting while you draw" if live else None,
            )
            st.button("Undo", key="undo", on_click=undo_stroke, disabled=not strokes)  # the last stroke
            st.button("Clear", key="clear", on_click=new_drawing)  # the canvas and the answer
    stored = st.session_state.get("drawing_result")
    already_read = stored is not None and stored["strokes"] == strokes and stored["image"] is not None
    clicked = st.session_state.pop("prediction_requested", False)
    if clicked or (live and strokes and not already_read):
        try:  # decoded from the component's PNG each time it is read: only when needed
            image = drawing_picture(canvas_png(canvas), width)
        except decoding.ImageError as error:  # not what the canvas itself sends: said plainly
            image, problem = None, f"The drawing could not be read: {error}."
        drawing = drawing_from_canvas(strokes, width, brush_width)
        if image is None or not strokes:
            recognition = Recognition(digits=())
        elif drawing is not None:  # the strokes tell touching digits apart exactly: they win over pixels
            recognition = recognizer.recognize_strokes(drawing)
        else:
            recognition = recognizer.recognize(image)
        st.session_state.drawing_result = {
            "strokes": strokes,
            "recognition": recognition,
            "image": image,
            "drawing": drawing,
        }
        # Each pressed Predict brings its answer into view: on a phone it is below the canvas.
        st.session_state.predictions_clicked = st.session_state.get("predictions_clicked", 0) + clicked
    elif live and not strokes:
        st.session_state.pop("drawing_result", None)
    if problem:
        st.session_state.pop("drawing_result", None)
    stored = st.session_state.get("drawing_result")
    with buttons:  # the same place on every run, so that screen readers hear each new answer
        announce(
            problem or spoken_answer(stored and stored["recognition"]),
            ANSWER_CARD_FILLED,
            st.session_state.get("predictions_clicked"),
        )
    with result_area:
        if problem:
            st.error(plain_text(problem))
        drawing_result_ui(st.session_state.get("drawing_result"), strokes, lambda: canvas.image_bytes, live)


def guarded_canvas(st_canvas, **settings):
    """st_canvas(**settings) and None, or an empty drawing and why, when the browser sent a state no canvas sends."""
    from streamlit_drawable_canvas import CanvasResult

    try:
        return st_canvas(**settings), None
    except (AttributeError, TypeError, KeyError, ValueError):  # raised as st_canvas unpacks that state
        return CanvasResult(None, None, return_image_data=True), "The canvas sent something that is not a drawing."


def canvas_strokes(canvas):
    """The Fabric.js objects the canvas holds: a list, empty when what the browser sent has none."""
    drawing = canvas.json_data if isinstance(canvas.json_data, dict) else {}
    objects = drawing.get("objects")
    return objects if isinstance(objects, list) else []


def canvas_png(canvas):
    """The PNG file bytes the canvas sent (a base64 data URL), or None; ImageError for anything else."""
    try:
        return canvas.image_bytes
    except (ValueError, TypeError, AttributeError) as error:  # binascii.Error is a ValueError
        raise decoding.ImageError("it is not a base64 data URL") from error


def drawing_picture(data, width):
    """The canvas's RGBA drawing from its PNG bytes, or None; ImageError unless it is a picture of the canvas's size.

    Decoded through the same budget as uploads: a forged 12000x12000 "drawing" is refused from its header.
    """
    return None if data is None else decoding.decode_image(data, size=(width, CANVAS_HEIGHT))


def drawing_from_canvas(objects, width, brush_width):
    """The canvas's strokes as a strokes.Drawing, or None when they cannot be read (the pixels are used)."""
    try:
        drawing = parse_drawing({"objects": objects}, width=width, height=CANVAS_HEIGHT, brush=brush_width)
    except StrokeError:
        return None
    return drawing if drawing.strokes else None


def drawing_result_ui(stored, strokes, drawing_png, live):
    """The result for the drawing, a hint before the first prediction."""
    if stored is None:
        how = ": the answer appears as you draw." if live else ", then press **Predict**."
        st.info(f"Draw a digit on the canvas{how}")  # no icon: its name would be read out
        return
    if stored["strokes"] != strokes:
        st.caption("The drawing changed since this answer: press **Predict** to read it again.")
    result_ui(
        stored["recognition"],
        stored["image"],
        key="drawing",
        drawing_png=drawing_png if strokes else None,
        drawing_json=stored["drawing"].to_json if stored.get("drawing") is not None else None,
    )
    profile_ui.correction_ui(stored["recognition"], "drawing", drawing=stored.get("drawing"))
    comparison_ui(stored["recognition"], stored["image"])


def upload_ui(recognizer):
    """Pictures from files: one gets the full result view, several a table too."""
    files = st.file_uploader(
        "Pictures of handwritten digits",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        help="Dark ink on light paper, or light on dark. Digits are read left to right.",
    )
    if not files:
        st.session_state.pop("upload_readings", None)
        st.info("Upload one or more pictures (PNG, JPG, WebP or BMP) to read the digits in them.")
        return
    readings = []
    for reading in read_uploads(recognizer, files):
        if reading.error:
            st.error(f"**{plain_text(reading.name)}**: {plain_text(reading.error)}")
        else:
            readings.append(reading)
    if len(readings) == 1:
        reading_ui(readings[0], key="upload_0")
    elif readings:
        frame = readings_frame(readings)
        # Confidence as text, as everywhere else in the app; the CSV keeps the numbers.
        st.dataframe(frame.assign(confidence=frame["confidence"].map(percent)), hide_index=True, width="stretch")
        st.download_button(
            "Results (CSV)",
            lambda: readings_csv(frame),
            file_name="digit_results.csv",
            mime="text/csv",
            on_click="ignore",
            key="upload_csv",
        )
        # One file's full result, when asked for: every file's charts and pictures, drawn again on
        # each rerun, made a session holding 10 uploads rerun a second slower than an empty one.
        shown = st.selectbox(
            "Full result for",
            range(len(readings)),
            index=None,
            key=f"upload_shown_{len(readings)}",
            placeholder="Pick a file to see what the model saw in it",
            format_func=lambda index: f"{readings[index].name}: {readings[index].recognition.text or 'nothing read'}",
        )
        if shown is not None:
            reading_ui(readings[shown], key=f"upload_{shown}")


def reading_ui(reading, key):
    """An uploaded picture beside its result."""
    preview, result = st.columns([1, 1.35], gap="large")
    preview.image(reading.picture, caption=plain_text(reading.name), width="stretch")
    with result:
        result_ui(reading.recognition, None, key=key, boxes_picture=reading.boxes)
        profile_ui.correction_ui(reading.recognition, key)


def main():
    st.set_page_config(page_title="Digit recognizer", page_icon=page_icon(), layout="wide")
    style_ui()
    path = model_path()
    try:
        recognizer = load_recognizer(str(path))
    except ModelError as error:
        model_error_ui(error)
        return
    reader = profile_ui.personalised_reader(recognizer)  # the recognizer itself until the user corrects an answer
    online_metrics = read_metrics(DEFAULT_ONLINE_MODEL) if recognizer.online_unavailable is None else {}
    brush_width, live = sidebar_ui(read_metrics(path), recognizer.backend_name, online_metrics)
    st.title(TITLE)
    if recognizer.backend_name != "onnx":  # works, but slower: whoever runs the app should know why
        st.warning(
            f"Running on the Keras model because {recognizer.fallback_reason}: answers take longer. "
            "Run `python export.py` and restart the app to fix it."
        )
    st.caption(
        "Draw a digit, or a whole number on the wide canvas, with a mouse, pen or finger, "
        "or upload a picture: networks trained on MNIST and on the handwriting of about 500 more people read it."
    )
    draw_tab, upload_tab = st.tabs(["Draw", "Upload"])  # text only: an icon's name would be read out
    with draw_tab:
        draw_ui(reader, brush_width, live)
    with upload_tab:
        upload_ui(reader)


if __name__ == "__main__":
    main()
