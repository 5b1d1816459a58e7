"""One reading on the page: the answer, the digits found, what the model saw, why, and the tutorial model's reading.

    result_ui(recognition, image, key="drawing")   # the whole result view, where it is called
    spoken_answer(recognition)                     # the answer as one sentence, for screen readers
    inline_picture(boxes_image(image, boxes))      # a picture with its digits boxed, as a data: URL

The models are loaded here, once per server process and model file (load_recognizer):
the explanation and the comparison read with them, and app.py shares the same cache.
Importing it draws nothing (its one Streamlit call then is the cache decorator), so
app.py's st.set_page_config stays the page's first command.
"""

import base64
import json

import cv2
import numpy as np
import pandas as pd
import streamlit as st

import comparison
import decoding
import saliency
from recognizer import ModelError, Recognizer, configured_model_path, metrics_path_for, percent

PIXEL_SCALE = 8  # the model's 28x28 input shown at 224 px, each pixel a visible square
GRID_DARKENING = 0.7  # grid lines between the enlarged pixels, faint on black and on white
BOX_COLOUR = (79, 70, 229)  # RGB; the theme's primary colour
LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
MAX_DISPLAY_SIDE = 1024  # pictures are shown at most this large: a phone photo need not travel in full
DISPLAY_QUALITY = 90  # JPEG quality of an upload's pictures, encoded once: reruns send the same bytes
NOT_MEASURED = "not measured"
# Bars on a fixed 0-100% scale, so that an unsure answer looks unsure; the answer's bar stands out.
PROBABILITY_CHART = {
    "mark": {"type": "bar", "cornerRadiusEnd": 3, "tooltip": True},
    "encoding": {
        "x": {"field": "digit", "type": "ordinal", "axis": {"labelAngle": 0, "title": None}},
        "y": {
            "field": "probability",
            "type": "quantitative",
            "scale": {"domain": [0, 1]},
            "axis": {"format": "%", "title": "probability", "tickCount": 5},
        },
        "color": {"condition": {"test": "datum.answer", "value": "#4f46e5"}, "value": "#c7c9f1"},
    },
}


def model_path():
    """The model file: $DIGIT_MODEL, or digit_model.keras beside this file."""
    return configured_model_path()


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
    """The picture shrunk so that its longer side is at most MAX_DISPLAY_SIDE (a 3000x1 sliver stays 1 px high)."""
    return decoding.fit_within(picture, MAX_DISPLAY_SIDE)


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
        cv2.putText(
            picture,
            label,
            (x + thickness, top + label_height + thickness),
            LABEL_FONT,
            font_scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
    return fit_for_display(picture)


def probability_frame(digit_result):
    """The model's ten probabilities as a DataFrame, one row per digit 0-9."""
    return pd.DataFrame(
        {
            "digit": [str(digit) for digit in range(10)],
            "probability": digit_result.probabilities,
            "answer": [digit == digit_result.digit for digit in range(10)],
        }
    )


ALTERNATIVES = 3  # other readings offered when the answer is unsure
LEAST_ALTERNATIVE = 0.01  # a reading less likely than this is not worth offering


def alternatives(recognition, count=ALTERNATIVES):
    """The next most likely readings of an unsure answer, most likely first: [(text, probability)].

    They differ from the answer in its least sure digit, the one most likely to be wrong.
    """
    if not recognition.digits:
        return []
    position = min(range(len(recognition.digits)), key=lambda index: recognition.digits[index].confidence)
    doubtful = recognition.digits[position]
    others = recognition.confidence / doubtful.confidence if doubtful.confidence else 0.0
    readings = []
    for digit in sorted(range(10), key=lambda digit: -doubtful.probabilities[digit]):
        probability = others * doubtful.probabilities[digit]
        if digit != doubtful.digit and probability >= LEAST_ALTERNATIVE:
            text = recognition.text[:position] + str(digit) + recognition.text[position + 1 :]
            readings.append((text, probability))
    return readings[:count]


def alternatives_text(recognition):
    """'4 (31.2%), 9 (12.0%)': the alternatives with their probabilities."""
    return ", ".join(f"{text} ({percent(probability)})" for text, probability in alternatives(recognition))


def spoken_answer(recognition):
    """The answer as one sentence for a screen reader, or '' when there is none."""
    if recognition is None:
        return ""
    if recognition.status == "empty":
        return recognition.message
    if recognition.status == "ok":
        return f"Recognised {recognition.text}, {percent(recognition.confidence)} confidence."
    others = f" Or perhaps {alternatives_text(recognition)}." if alternatives(recognition) else ""
    return f"Best guess {recognition.text}, {percent(recognition.confidence)} confidence. {recognition.message}{others}"


def inline_picture(picture, kind="png"):
    """A uint8 grey or RGB picture as a data: URL for st.image ("png", or "jpeg" for photos).

    The picture travels inside the page's own message: no media file exists for a quick
    rerun to remove while the browser is still fetching it (a 404 under load).
    """
    picture = np.asarray(picture)
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR) if picture.ndim == 3 else picture
    options = [cv2.IMWRITE_JPEG_QUALITY, DISPLAY_QUALITY] if kind == "jpeg" else []
    ok, encoded = cv2.imencode(f".{'jpg' if kind == 'jpeg' else 'png'}", bgr, options)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {picture.shape} picture as {kind}")
    return f"data:image/{kind};base64,{base64.b64encode(encoded.tobytes()).decode('ascii')}"


def result_ui(recognition, image, key, drawing_png=None, drawing_json=None, boxes_picture=None):
    """The answer in large type, the boxes, what the model saw and its probabilities.

    boxes_picture, when given, is the picture with its boxes already drawn (an upload's,
    kept in the session); otherwise they are drawn on image.

    drawing_png and drawing_json, when given, make the drawing's PNG bytes and stroke
    file for their download buttons; `predict.py drawing.json` reads the latter exactly.
    """
    if recognition.status == "empty":
        st.info(recognition.message)
        return
    sure = recognition.status == "ok"
    if not sure:
        st.warning(recognition.message)  # no icon: its name would be read out before the message
    digits = recognition.digits
    several = len(digits) > 1 and (image is not None or boxes_picture is not None)
    # The answer has its area's full width and the boxes come under it: beside them, in an
    # upload's half of a laptop's page, a four-digit answer had 100 px and showed as "2...".
    answer_area, boxes_area = st.container(), st.container() if several else None
    with answer_area, st.container(key=f"answer_{key}"):
        st.metric(
            "Recognised" if sure else "Best guess",
            recognition.text,
            delta=f"{percent(recognition.confidence)} confidence",
            delta_color="normal" if sure else "off",
            delta_arrow="off",
            border=True,
        )
        if not sure and alternatives(recognition):
            st.markdown(f"**Or perhaps:** {alternatives_text(recognition)}")
        if "online" in recognition.views:
            st.caption("Read from the picture and from the path your pen took.")
    if several:
        found_by = "from your strokes" if recognition.split_by == "strokes" else "in the picture"
        boxes_area.image(
            boxes_picture or inline_picture(boxes_image(image, [digit.box for digit in digits])),
            caption=f"Digits found {found_by}, read left to right",
        )
    if len(digits) == 1:
        digit_ui(digits[0])
    else:
        tabs = st.tabs([f"Digit {number}: {digit.digit}" for number, digit in enumerate(digits, start=1)])
        for tab, digit in zip(tabs, digits):
            with tab:
                digit_ui(digit)
    # Files are made when clicked: a file stored with the page can be dropped by the next rerun
    # while the browser is still checking it, which shows up as an error in its console.
    downloads = [
        ("Result (JSON)", lambda: json.dumps(recognition.to_dict(), indent=2), "result.json", "json", None),
        ("Drawing (PNG)", drawing_png, "drawing.png", "png", None),
        (
            "Strokes (JSON)",
            drawing_json,
            "drawing.strokes.json",
            "strokes",
            "The pen strokes: `predict.py` reads them again exactly.",
        ),
    ]
    with st.container(horizontal=True):
        for label, data, file_name, suffix, help_text in downloads:
            if data is not None:
                mime = "image/png" if file_name.endswith(".png") else "application/json"
                st.download_button(
                    label,
                    data,
                    file_name=file_name,
                    mime=mime,
                    on_click="ignore",
                    key=f"{key}_{suffix}",
                    help=help_text,
                )


def digit_ui(digit_result):
    """What the model saw for one digit, and its ten probabilities."""
    seen, chart = st.columns([1, 2], vertical_alignment="center")
    seen.image(inline_picture(pixel_grid(digit_result.image)), caption="What the model saw (28×28)")
    with chart:
        st.vega_lite_chart(probability_frame(digit_result), PROBABILITY_CHART, height=220, width="stretch")
    why_ui(digit_result)


def why_ui(digit_result):
    """Why it said that: the ink that decided between the answer and the runner-up, over what the model saw."""
    explanation = saliency.explain(load_recognizer(str(model_path())), digit_result)
    answer, runner_up = explanation.digit, explanation.runner_up
    picture, words = st.columns([1, 2], vertical_alignment="center")
    picture.image(
        inline_picture(pixel_grid(saliency.overlay(digit_result.image, explanation.saliency))),
        caption=f"Why {answer} and not {runner_up}",
    )
    with words:
        st.markdown(
            f"**Runner-up: {runner_up}** at {percent(explanation.runner_up_probability)}, "
            f"against {percent(explanation.probability)} for {answer}."
        )
        st.caption(
            f"Red ink made the model say {answer} rather than {runner_up}; blue ink looked more like "
            f"a {runner_up}. Found by hiding {saliency.PATCH}×{saliency.PATCH}-pixel patches of what "
            "the model saw, one at a time, and reading it again."
        )


# The two readings of the model comparison: (title, how it reads a drawing, how it was trained).
APP_READING = (
    "This app",
    "Crops, sizes and centres each digit as MNIST's were made.",
    "Trained on MNIST, pen strokes and scans, redrawn as people draw",
)
TUTORIAL_READING = (
    "Tutorial recipe",
    "Shrinks the whole canvas to 28×28, as most tutorials do.",
    "One convolution trained on MNIST as it is",
)


def load_tutorial():
    """The tutorial model's Recognizer, or None when its file is missing or unreadable."""
    try:
        return load_recognizer(str(comparison.TUTORIAL_MODEL))
    except ModelError:
        return None


def comparison_ui(recognition, image):
    """The same drawing read by the tutorial recipe beside this app's model, each with what it saw."""
    if image is None or recognition.status == "empty":
        return
    with st.expander("Model comparison: the same drawing, read by a tutorial model", expanded=True):
        tutorial = load_tutorial()
        if tutorial is None:
            st.caption(
                f"The tutorial model {comparison.TUTORIAL_MODEL.name} is missing: make it with "
                "`python train.py --recipe tutorial` and `python export.py --model tutorial_model.keras`."
            )
            return
        plain = comparison.read_plain(tutorial, image)
        with st.container(horizontal=True, wrap=False, key="comparison"):  # side by side on phones too
            model_reading_ui(APP_READING, recognition, read_metrics(model_path()), key="compare_app")
            model_reading_ui(TUTORIAL_READING, plain, read_metrics(comparison.TUTORIAL_MODEL), key="compare_tutorial")
        st.caption(
            "Both models read MNIST's own test digits well. A drawing is not an MNIST digit: "
            "how it is turned into 28×28 pixels, and what the model was trained on, decide."
        )


def model_reading_ui(reading, recognition, metrics, key):
    """One model's answer, the 28x28 images it was given side by side, and how it reads and was trained."""
    title, how, trained = reading
    with st.container(border=True, key=key):
        unsure = ", unsure" if recognition.status == "uncertain" else ""
        st.metric(
            title,
            recognition.text,
            delta=f"{percent(recognition.confidence)} confidence{unsure}",
            delta_color="off",
            delta_arrow="off",
        )
        seen = np.hstack([digit.image for digit in recognition.digits])
        st.image(inline_picture(pixel_grid(seen)), caption="What it saw", width="stretch")
        test = metrics.get("mnist_test") if isinstance(metrics.get("mnist_test"), dict) else {}
        accuracy = measured(test.get("accuracy"), lambda value: f"{value:.2%}")
        epochs = measured(metrics.get("epochs_run"), lambda value: f" for {value} epochs")
        epochs = "" if epochs == NOT_MEASURED else epochs
        st.caption(f"{how} {trained}{epochs}; MNIST test accuracy {accuracy}.")
