"""Draw digits or upload pictures of them, and see what the CNN reads.

    streamlit run app.py
    DIGIT_MODEL=/path/to/other.keras streamlit run app.py

The model is loaded once per server process and runs on ONNX Runtime (see
recognizer.py), so a prediction takes milliseconds and TensorFlow is never imported
while the exported model is up to date.
"""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import streamlit as st

import preprocessing
from recognizer import DEFAULT_MODEL, ModelError, Recognition, Recognizer, metrics_path_for

TITLE = "Handwritten digit recognizer"
CANVAS_HEIGHT = 280  # ten times MNIST's 28 px: room for a finger-drawn digit
CANVAS_WIDTHS = {"One digit": 280, "Whole number": 560}  # the wide canvas fits several digits
INK_COLOUR = "#000000"
PAPER_COLOUR = "#ffffff"  # opaque paper keeps the ink visible in any theme and in the downloaded PNG
BRUSH_WIDTH = 20  # MNIST strokes are about a tenth of the digit's height
PIXEL_SCALE = 8  # the model's 28x28 input shown at 224 px, each pixel a visible square
GRID_DARKENING = 0.7  # grid lines between the enlarged pixels, faint on black and on white
BOX_COLOUR = (79, 70, 229)  # RGB; the theme's primary colour
LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
MAX_DISPLAY_SIDE = 1024  # pictures are shown at most this large: a phone photo need not travel in full
NOT_MEASURED = "not measured"
# Bars on a fixed 0-100% scale, so that an unsure answer looks unsure; the answer's bar stands out.
PROBABILITY_CHART = {
    "mark": {"type": "bar", "cornerRadiusEnd": 3, "tooltip": True},
    "encoding": {
        "x": {"field": "digit", "type": "ordinal", "axis": {"labelAngle": 0, "title": None}},
        "y": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]},
              "axis": {"format": "%", "title": "probability", "tickCount": 5}},
        "color": {"condition": {"test": "datum.answer", "value": "#4f46e5"}, "value": "#c7c9f1"},
    },
}

# The canvas is inside the component's shadow root, so the page styles its container:
# touch-action: none there keeps a finger drawing on a phone from scrolling the page.
PAGE_STYLE = """
<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
.st-key-drawing_pad { touch-action: none; overscroll-behavior: contain; margin-top: 2.5rem; }
[class*="st-key-answer_"] [data-testid="stMetricValue"] {
  font-size: 4.5rem; line-height: 1.05; font-weight: 700; letter-spacing: 0.06em; }
[class*="st-key-answer_"] [data-testid="stMetric"] { padding: 0.75rem 1.25rem; }
</style>
"""


def model_path():
    """The model file: $DIGIT_MODEL, or digit_model.keras beside this file."""
    return Path(os.environ.get("DIGIT_MODEL") or DEFAULT_MODEL)


@st.cache_resource(show_spinner="Loading the model...")
def load_recognizer(path):
    """One Recognizer per server process and model file, shared by every session."""
    return Recognizer(path)


def read_metrics(path):
    """The figures train.py measured for the model at path, or {} when there are none."""
    try:
        metrics = json.loads(metrics_path_for(path).read_text())
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def measured(value, describe):
    """describe(value) for a measured number, 'not measured' for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return NOT_MEASURED
    return describe(value)


def duration(seconds):
    """'42 s', '12 min 5 s' or '1 h 3 min'."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def pixel_grid(digit_image):
    """The 28x28 model input enlarged with nearest-neighbour, with faint lines between pixels."""
    grey = np.clip(np.asarray(digit_image, dtype=np.float32) * 255, 0, 255).astype(np.uint8)
    enlarged = cv2.resize(grey, None, fx=PIXEL_SCALE, fy=PIXEL_SCALE, interpolation=cv2.INTER_NEAREST)
    lines = np.zeros(enlarged.shape, dtype=bool)
    lines[::PIXEL_SCALE, :] = lines[:, ::PIXEL_SCALE] = True
    # Lighten black and darken white so the lines show on both.
    enlarged[lines] = (enlarged[lines] * GRID_DARKENING + 255 * (1 - GRID_DARKENING) / 3).astype(np.uint8)
    return enlarged


def on_white(image):
    """An RGB copy of a grey, RGB or RGBA uint8 image, transparency shown as white paper."""
    image = np.asarray(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float32) / 255
        return (image[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return image[..., :3].copy()


def fit_for_display(picture):
    """The picture shrunk so that its longer side is at most MAX_DISPLAY_SIDE."""
    scale = MAX_DISPLAY_SIDE / max(picture.shape[:2])
    if scale >= 1:
        return picture
    return cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def boxes_image(image, boxes):
    """The picture with a numbered box around each digit found, left to right."""
    picture = on_white(image)
    thickness = max(2, round(max(picture.shape[:2]) / 250))  # lines stay visible once the picture is shrunk
    font_scale = thickness / 2.5
    for number, (x, y, width, height) in enumerate(boxes, start=1):
        cv2.rectangle(picture, (x, y), (x + width - 1, y + height - 1), BOX_COLOUR, thickness)
        label = str(number)
        (label_width, label_height), _ = cv2.getTextSize(label, LABEL_FONT, font_scale, thickness)
        tab_width, tab_height = label_width + 2 * thickness, label_height + 2 * thickness
        # The number sits in a filled tab above the box, or inside it when the box touches the top.
        top = y - tab_height if y >= tab_height else y
        cv2.rectangle(picture, (x, top), (x + tab_width, top + tab_height), BOX_COLOUR, cv2.FILLED)
        cv2.putText(picture, label, (x + thickness, top + label_height + thickness), LABEL_FONT, font_scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)
    return fit_for_display(picture)


def probability_frame(digit_result):
    """The model's ten probabilities as a DataFrame, one row per digit 0-9."""
    return pd.DataFrame({
        "digit": [str(digit) for digit in range(10)],
        "probability": digit_result.probabilities,
        "answer": [digit == digit_result.digit for digit in range(10)],
    })


def readings_frame(readings):
    """One row per read file: file, text, confidence, status."""
    rows = [(name, result.text, result.confidence, result.status) for name, _, result in readings]
    return pd.DataFrame(rows, columns=["file", "text", "confidence", "status"])


def canvas_key(width, generation):
    """The canvas widget's key: one per canvas size and per Clear."""
    return f"canvas_{width}_{generation}"


def new_drawing():
    """Start an empty canvas: a new key makes the component start afresh, and the old result goes."""
    st.session_state.canvas_generation = st.session_state.get("canvas_generation", 0) + 1
    st.session_state.pop("drawing_result", None)


def request_prediction():
    """Remember the click in session state: a canvas update that interrupts this run must not lose it."""
    st.session_state.prediction_requested = True


def style_ui():
    st.html(PAGE_STYLE)


def model_error_ui(error):
    """A page that says what is wrong with the model and how to fix it, instead of a traceback."""
    st.title(TITLE)
    st.error(f"**The digit model could not be loaded.** {error}", icon=":material/error:")
    st.markdown("To fix it, run one of these in the project folder, then reload this page:")
    st.code(
        "# the committed model:\n"
        "git checkout -- digit_model.keras digit_model.onnx digit_model.metrics.json\n"
        "# or train a new one:\n"
        "python train.py --data-dir ../shared/data/mnist",
        language="bash",
    )
    st.caption("The app reads the model from $DIGIT_MODEL when it is set, else digit_model.keras beside it.")


def sidebar_ui(metrics, backend_name):
    """Settings, the model card and the about text; returns (brush width, predict while drawing)."""
    with st.sidebar:
        st.header("Settings")
        brush_width = st.slider("Brush width", min_value=6, max_value=40, value=BRUSH_WIDTH, step=2,
                                key="brush_width", help="Thicker strokes look more like MNIST's digits.")
        live = st.toggle("Predict while drawing", key="live",
                         help="On: the answer follows every stroke. Off: press Predict.")
        st.divider()
        model_card_ui(metrics, backend_name)
        st.divider()
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


def model_card_ui(metrics, backend_name):
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
            figures[name] = measured(scored.get("accuracy"),
                                     lambda value, unseen=unseen: f"{value:.2%}{unseen}")
    figures |= {
        "Parameters": measured(metrics.get("parameters"), lambda value: f"{value:,}"),
        "Model size": measured(metrics.get("model_file_bytes"), lambda value: f"{value / 1e6:.1f} MB"),
        "Training time": measured(metrics.get("training_seconds"), duration),
        "Best epoch": measured(metrics.get("best_epoch"), lambda value: f"{value} of {epochs_run}"),
        "Runs on": "ONNX Runtime" if backend_name == "onnx" else "Keras",
    }
    rows = [f"| {name} | {value} |" for name, value in figures.items()]
    st.markdown("\n".join(["| Figure | Value |", "|:--|--:|", *rows]))
    st.caption("Validation writers were never trained on; the best epoch was chosen on them, "
               "MNIST's test set was used only for the final figure.")
    if metrics.get("quick_mode"):
        st.warning("This is the quick test model, trained for seconds: expect mistakes.",
                   icon=":material/science:")


def about_ui():
    st.header("About")
    st.markdown(
        "A small convolutional network trained on handwriting from about 500 people beside MNIST's "
        "writers: pen-tablet strokes from 16 sites (UNIPEN) and scanned digits of European writers (CVL). "
        "Each digit you draw is cropped, its strokes brought to MNIST's width, scaled to 20 px and centred "
        "in 28×28 pixels the way MNIST's digits are, then read by the model. Several digits are read left "
        "to right. Nothing you draw or upload is stored."
    )
    st.markdown(DATA_CREDITS)


def draw_ui(recognizer, brush_width, live):
    """The canvas, its buttons, and the result for what is drawn."""
    # Imported here: the component registers itself with the running Streamlit server on import,
    # which fails where there is none (the tests import this module for its helpers).
    from streamlit_drawable_canvas import st_canvas

    size = st.radio("Canvas", list(CANVAS_WIDTHS), horizontal=True, key="canvas_size", on_change=new_drawing,
                    help="The wide canvas holds a whole number. A new size starts a new drawing.")
    width = CANVAS_WIDTHS[size]
    if width > CANVAS_HEIGHT:  # a wide canvas needs the full width: the result goes below it
        drawing_area, result_area = st.container(), st.container()
    else:
        drawing_area, result_area = st.columns([1, 1.35], gap="large")
    with drawing_area:
        with st.container(key="drawing_pad"):
            canvas = st_canvas(
                stroke_width=brush_width,
                stroke_color=INK_COLOUR,
                background_color=PAPER_COLOUR,
                height=CANVAS_HEIGHT,
                width=width,
                return_image_data=True,
                # A stable key keeps the drawing across reruns (brush width, toggles); Clear changes it.
                key=canvas_key(width, st.session_state.get("canvas_generation", 0)),
            )
        with st.container(horizontal=True):
            st.button("Predict", type="primary", icon=":material/auto_awesome:", disabled=live, key="predict",
                      on_click=request_prediction, help="Predicting while you draw" if live else None)
            st.button("Clear", icon=":material/delete:", key="clear", on_click=new_drawing)
        st.caption("Undo, redo and reset are on the canvas toolbar, shown when the pointer is over it.")
    strokes = (canvas.json_data or {}).get("objects") or []
    stored = st.session_state.get("drawing_result")
    already_read = stored is not None and stored["strokes"] == strokes and stored["image"] is not None
    if st.session_state.pop("prediction_requested", False) or (live and strokes and not already_read):
        image = canvas.image_data  # decoded from the component's PNG each time it is read: only when needed
        nothing_drawn = image is None or not strokes
        recognition = Recognition(digits=()) if nothing_drawn else recognizer.recognize(image)
        st.session_state.drawing_result = {"strokes": strokes, "recognition": recognition, "image": image}
    elif live and not strokes:
        st.session_state.pop("drawing_result", None)
    with result_area:
        drawing_result_ui(st.session_state.get("drawing_result"), strokes, lambda: canvas.image_bytes, live)


def drawing_result_ui(stored, strokes, drawing_png, live):
    """The result for the drawing, a hint before the first prediction."""
    if stored is None:
        how = ": the answer appears as you draw." if live else ", then press **Predict**."
        st.info(f"Draw a digit on the canvas{how}", icon=":material/draw:")
        return
    if stored["strokes"] != strokes:
        st.caption(":material/history: The drawing changed since this answer: "
                   "press **Predict** to read it again.")
    result_ui(stored["recognition"], stored["image"], key="drawing", drawing_png=drawing_png if strokes else None)


def result_ui(recognition, image, key, drawing_png=None):
    """The answer in large type, the boxes, what the model saw and its probabilities.

    drawing_png, when given, makes the drawing's PNG bytes for its download button.
    """
    if recognition.status == "empty":
        st.info(recognition.message, icon=":material/gesture:")
        return
    sure = recognition.status == "ok"
    if not sure:
        st.warning(recognition.message, icon=":material/help:")
    digits = recognition.digits
    several = len(digits) > 1 and image is not None
    if several:
        answer_area, boxes_area = st.columns([1, 1.6], vertical_alignment="center")
    else:
        answer_area, boxes_area = st.container(), None
    with answer_area, st.container(key=f"answer_{key}"):
        st.metric(
            "Recognised" if sure else "Best guess",
            recognition.text,
            delta=f"{recognition.confidence:.1%} confidence",
            delta_color="normal" if sure else "off",
            delta_arrow="off",
            border=True,
        )
    if several:
        boxes_area.image(boxes_image(image, [digit.box for digit in digits]),
                         caption="Digits found, read left to right")
    if len(digits) == 1:
        digit_ui(digits[0])
    else:
        tabs = st.tabs([f"Digit {number}: {digit.digit}" for number, digit in enumerate(digits, start=1)])
        for tab, digit in zip(tabs, digits):
            with tab:
                digit_ui(digit)
    # Files are made when clicked: a file stored with the page can be dropped by the next rerun
    # while the browser is still checking it, which shows up as an error in its console.
    with st.container(horizontal=True):
        st.download_button("Result (JSON)", lambda: json.dumps(recognition.to_dict(), indent=2),
                           file_name="result.json", mime="application/json", icon=":material/data_object:",
                           on_click="ignore", key=f"{key}_json")
        if drawing_png is not None:
            st.download_button("Drawing (PNG)", drawing_png, file_name="drawing.png", mime="image/png",
                               icon=":material/image:", on_click="ignore", key=f"{key}_png")


def digit_ui(digit_result):
    """What the model saw for one digit, and its ten probabilities."""
    seen, chart = st.columns([1, 2], vertical_alignment="center")
    seen.image(pixel_grid(digit_result.image), caption="What the model saw (28×28)")
    with chart:
        st.vega_lite_chart(probability_frame(digit_result), PROBABILITY_CHART, height=220, width="stretch")


def upload_ui(recognizer):
    """Pictures from files: one gets the full result view, several a table too."""
    files = st.file_uploader("Pictures of handwritten digits", type=UPLOAD_TYPES, accept_multiple_files=True,
                             help="Dark ink on light paper, or light on dark. Digits are read left to right.")
    if not files:
        st.info("Upload one or more pictures (PNG, JPG, WebP or BMP) to read the digits in them.",
                icon=":material/upload:")
        return
    readings = []
    for file in files:
        try:
            image = preprocessing.decode_image(file.getvalue())
            readings.append((file.name, image, recognizer.recognize(image)))
        except preprocessing.ImageError as error:  # one bad file must not stop the others
            st.error(f"**{file.name}**: {error}", icon=":material/broken_image:")
    if len(readings) == 1:
        reading_ui(*readings[0], key="upload_0")
    elif readings:
        frame = readings_frame(readings)
        confidence_bar = st.column_config.ProgressColumn("confidence", format="percent", min_value=0.0,
                                                         max_value=1.0)
        st.dataframe(frame, hide_index=True, width="stretch", column_config={"confidence": confidence_bar})
        st.download_button("Results (CSV)", lambda: frame.to_csv(index=False), file_name="digit_results.csv",
                           mime="text/csv", icon=":material/table:", on_click="ignore", key="upload_csv")
        for index, (name, image, recognition) in enumerate(readings):
            with st.expander(f"{name}: {recognition.text or 'nothing read'}"):
                reading_ui(name, image, recognition, key=f"upload_{index}")


def reading_ui(name, image, recognition, key):
    """An uploaded picture beside its result."""
    preview, result = st.columns([1, 1.35], gap="large")
    preview.image(fit_for_display(on_white(image)), caption=name, width="stretch")
    with result:
        result_ui(recognition, image, key=key)


def main():
    st.set_page_config(page_title="Digit recognizer", page_icon=":material/draw:", layout="wide")
    style_ui()
    path = model_path()
    try:
        recognizer = load_recognizer(str(path))
    except ModelError as error:
        model_error_ui(error)
        return
    brush_width, live = sidebar_ui(read_metrics(path), recognizer.backend_name)
    st.title(TITLE)
    st.caption("Draw a digit, or a whole number on the wide canvas, with a mouse, pen or finger, "
               "or upload a picture: a CNN trained on MNIST reads it.")
    draw_tab, upload_tab = st.tabs([":material/draw: Draw", ":material/upload: Upload"])
    with draw_tab:
        draw_ui(recognizer, brush_width, live)
    with upload_tab:
        upload_ui(recognizer)


if __name__ == "__main__":
    main()
