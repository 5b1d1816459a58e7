"""End to end in headless Chromium: draw with a mouse and a finger, clear, upload, and time it; the page on a
phone (390x844, touch) and on laptops (1024-1920 px): the canvas, the layout, requests, names and the answer.

One app server for the whole module. Timings are printed (pytest -s) and written to a
temporary folder; they are measurements, not assertions (`python -m benchmarks.ui_speed`
measures the speed you can feel). The README's screenshots are made by docs/screenshots.py.
"""

import importlib.metadata
import importlib.util
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from browser import (
    CANVAS,
    CHROMIUM,
    ONE,
    SEND_DELAY_MS,
    SEVEN,
    THREE,
    ZERO,
    AppServer,
    after_rerun,
    answer_locator,
    canvas_origin,
    clear,
    click_and_wait,
    draw_with_mouse,
    draw_with_touch,
    ink_pixels,
    launch_chromium,
    mnist_test_set,
    model_under_test,
    open_app,
    outside_requests,
    paper_picture,
    png_bytes,
    readable_digit,
    replacing_canvas,
    stroke_points,
    touch,
    upload_input,
    wait_until_quiet,
)
from recognizer import Recognizer, percent
from strokes import parse_drawing

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}: apt-get install -y chromium"
)
playwright_api = pytest.importorskip("playwright.sync_api")

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LAPTOPS = [{"width": width, "height": 900} for width in (1024, 1280, 1440, 1920)]
TIMED_PREDICTIONS = 20
# Outputs of a test run go to the temporary folder: a run leaves the checkout as it was.
TIMINGS_FILE = Path(tempfile.gettempdir()) / "browser_timings.json"
FAILURE_SCREENSHOT = Path(tempfile.gettempdir()) / "browser_failure.png"
SCROLLER = '[data-testid="stMain"]'  # Streamlit scrolls this section, not the window


@pytest.fixture(scope="module")
def timings():
    """Figures measured by the tests; printed and saved when the module ends."""
    figures = {}
    yield figures
    if figures:
        TIMINGS_FILE.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nbrowser timings ({TIMINGS_FILE}):")
        for name, value in figures.items():
            print(f"  {name}: {value}")


@pytest.fixture(scope="module")
def app_model(model_path):
    return model_under_test(model_path)


@pytest.fixture(scope="module")
def chromium():
    with playwright_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(app_model, chromium, timings):
    """The app, started once; its cold start is timed up to the canvas being on screen."""
    with AppServer({"DIGIT_MODEL": str(app_model)}) as app_server:
        context = chromium.new_context(viewport=DESKTOP)
        open_app(context, app_server.url)
        timings["cold_start_to_canvas_seconds"] = round(time.perf_counter() - app_server.started, 2)
        context.close()
        yield app_server


@pytest.fixture
def page(chromium, server):
    """A fresh session of the app on a desktop-sized page."""
    context = chromium.new_context(viewport=DESKTOP)
    yield open_app(context, server.url)
    context.close()


@pytest.fixture
def phone_page(chromium, server):
    """A fresh session on a phone-sized page that takes touch input."""
    context = chromium.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    yield open_app(context, server.url)
    context.close()


def predict(page):
    click_and_wait(page, ".st-key-predict")
    return answer_locator(page).inner_text(timeout=10_000)


def test_page_shows_the_canvas_and_no_error(page):
    assert page.locator("h1").first.inner_text() == "Handwritten digit recognizer"
    assert page.locator(CANVAS).evaluate("canvas => getComputedStyle(canvas).touchAction") == "none"
    assert page.locator(".st-key-drawing_pad").evaluate("pad => getComputedStyle(pad).touchAction") == "none"
    assert page.get_by_text("press Predict").is_visible()
    assert page.locator('[data-testid="stException"]').count() == 0


def test_mouse_drawn_seven_is_read(page):
    draw_with_mouse(page, SEVEN)
    assert ink_pixels(page) > 1000
    assert predict(page) == "7"


def undo(page):
    """Press Undo and wait until the canvas has loaded the strokes before the last and sent them."""
    after_rerun(page, lambda: page.get_by_role("button", name="Undo", exact=True).click(), SEND_DELAY_MS)


def test_undo_takes_back_the_last_stroke_again_and_again(page):
    draw_with_mouse(page, SEVEN)
    seven = ink_pixels(page)
    draw_with_mouse(page, ONE)
    assert ink_pixels(page) > seven
    undo(page)
    assert ink_pixels(page) == seven
    assert predict(page) == "7"
    draw_with_mouse(page, ONE)  # the same strokes as before the first undo: the canvas must load them again
    undo(page)
    assert ink_pixels(page) == seven
    undo(page)
    assert ink_pixels(page) == 0
    assert page.get_by_role("button", name="Undo", exact=True).is_disabled()


def test_drawing_survives_settings_and_tabs_and_live_mode_reads_it(page):
    draw_with_mouse(page, ZERO)
    ink = ink_pixels(page)
    after_rerun(
        page, lambda: (page.locator(".st-key-brush_width input[type=range]").focus(), page.keyboard.press("ArrowRight"))
    )
    assert page.locator(".st-key-brush_width input[type=range]").input_value() == "22"
    page.get_by_role("tab", name="Upload").click()
    page.get_by_role("tab", name="Draw").click()
    after_rerun(page, lambda: page.locator(".st-key-live label").click())
    assert ink_pixels(page) == ink
    assert answer_locator(page).inner_text() == "0"  # predicted while drawing, without the button


def test_finger_drawn_one_is_read_and_the_page_does_not_scroll(phone_page):
    page = phone_page
    page.locator(CANVAS).scroll_into_view_if_needed()
    scrolled = page.locator(SCROLLER).evaluate("section => section.scrollTop")
    draw_with_touch(page, ONE)
    assert ink_pixels(page) > 500
    assert page.locator(SCROLLER).evaluate("section => section.scrollTop") == scrolled
    assert predict(page) == "1"


def test_the_same_finger_swipe_scrolls_the_page_outside_the_canvas(phone_page):
    """The control for the test above: touch events do scroll, except on the canvas."""
    page = phone_page
    title = page.locator("h1").first.bounding_box()
    upwards = [(0, 200), (0, 0)]  # a finger moving up scrolls the page down
    touch(page, [upwards], title["x"] + 20, title["y"])
    assert page.locator(SCROLLER).evaluate("section => section.scrollTop") > 100


def test_clear_empties_the_canvas_and_the_result(page):
    draw_with_mouse(page, SEVEN)
    assert predict(page) == "7"
    clear(page)
    assert ink_pixels(page) == 0
    assert answer_locator(page).count() == 0
    assert page.get_by_text("press Predict").is_visible()


def test_downloads_hold_the_answer_and_the_drawing(page, app_model):
    draw_with_mouse(page, SEVEN)
    assert predict(page) == "7"
    with page.expect_download() as json_download:
        page.get_by_role("button", name="Result (JSON)").click()
    assert json_download.value.suggested_filename == "result.json"
    assert json.loads(Path(json_download.value.path()).read_text())["text"] == "7"
    with page.expect_download() as png_download:
        page.get_by_role("button", name="Drawing (PNG)").click()
    assert png_download.value.suggested_filename == "drawing.png"
    # The independent check: the saved drawing, read again from the file, is the same 7.
    assert Recognizer(app_model).recognize(Path(png_download.value.path()).read_bytes()).text == "7"
    assert page.locator('[data-testid="stException"]').count() == 0


def test_uploaded_png_is_read(page, tmp_path, mnist_dir, app_model):
    images, labels = mnist_test_set(mnist_dir)
    digit = readable_digit(Recognizer(app_model), images, labels, 4)
    picture = tmp_path / "four.png"
    picture.write_bytes(png_bytes(paper_picture([digit])))
    page.get_by_role("tab", name="Upload").click()
    file_input = upload_input(page)
    after_rerun(page, lambda: file_input.set_input_files(picture))
    assert answer_locator(page, "upload_0").inner_text(timeout=10_000) == "4"
    assert page.get_by_text("four.png").first.is_visible()


def test_prediction_time_and_memory(page, server, timings):
    """Median time from clicking Predict to the answer on screen; the server's memory afterwards."""
    seconds = []
    for attempt in range(TIMED_PREDICTIONS):
        clear(page)
        draw_with_mouse(page, SEVEN)
        sent_before = page.evaluate("window.appSent")
        started = time.perf_counter()
        page.locator(".st-key-predict button").click()
        try:
            answer_locator(page).wait_for(state="visible", timeout=30_000)
        except playwright_api.TimeoutError:
            page.screenshot(path=FAILURE_SCREENSHOT)
            pytest.fail(f"no answer 30 s after Predict in prediction {attempt + 1}; see {FAILURE_SCREENSHOT}")
        seconds.append(time.perf_counter() - started)
        wait_until_quiet(page, sent_before)
    timings["predict_click_to_answer_median_seconds"] = round(statistics.median(seconds), 3)
    timings["predict_click_to_answer_max_seconds"] = round(max(seconds), 3)
    timings["predictions_timed"] = len(seconds)
    timings["server_memory_mb"] = round(psutil.Process(server.process.pid).memory_info().rss / 2**20)
    assert answer_locator(page).inner_text() == "7"


def comparison_and_why_are_shown(page, viewport):
    """Both models' readings of the drawn 7 side by side within the page, each with what it saw, and the why view."""
    cards = [page.locator(f".st-key-compare_{name}") for name in ("app", "tutorial")]
    cards[1].scroll_into_view_if_needed()
    app_box, tutorial_box = (card.bounding_box() for card in cards)
    assert abs(app_box["y"] - tutorial_box["y"]) < 2  # one row, on a phone too
    assert app_box["x"] + app_box["width"] <= tutorial_box["x"]
    assert tutorial_box["x"] + tutorial_box["width"] <= viewport["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]  # no sideways scrolling
    readings = [card.locator("[data-testid='stMetricValue']").inner_text() for card in cards]
    assert readings[0] == "7" and readings[1] in [str(digit) for digit in range(10)]
    for card in cards:
        assert card.locator("img").evaluate("image => image.complete && image.naturalWidth > 0")
        assert card.get_by_text("What it saw").is_visible()
    why = page.get_by_text("Why 7 and not").first
    why.scroll_into_view_if_needed()
    assert why.is_visible() and page.get_by_text("Runner-up:").first.is_visible()
    assert page.locator('[data-testid="stException"]').count() == 0


def test_model_comparison_and_why_on_the_desktop(page):
    draw_with_mouse(page, SEVEN)
    assert predict(page) == "7"
    comparison_and_why_are_shown(page, DESKTOP)


def test_model_comparison_and_why_on_a_phone(phone_page):
    page = phone_page
    page.locator(CANVAS).scroll_into_view_if_needed()
    draw_with_touch(page, SEVEN)
    assert predict(page) == "7"
    comparison_and_why_are_shown(page, PHONE)


def test_hostile_file_names_are_shown_as_written_and_fetch_nothing(page, tmp_path, mnist_dir, app_model):
    """Names that Markdown would turn into a remote picture, bold text, a colour, a formula and an emoji."""
    import http.server
    import threading

    fetched = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            fetched.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *arguments):
            pass

    recorder = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    # No slashes in a file name: "http:host:port" is still a URL that browsers fetch.
    name = f"![x](http:127.0.0.1:{recorder.server_port}) **bold** :red[red] $x^2$ :smile: =1+1"
    images, labels = mnist_test_set(mnist_dir)
    digit = png_bytes(paper_picture([readable_digit(Recognizer(app_model), images, labels, 4)]))
    files = [{"name": f"{name} {index}.png", "mimeType": "image/png", "buffer": digit} for index in range(2)]
    files.append({"name": f"{name} broken.png", "mimeType": "image/png", "buffer": b"not a picture"})
    page.get_by_role("tab", name="Upload").click()
    file_input = upload_input(page)
    after_rerun(page, lambda: file_input.set_input_files(files))
    page.locator('[data-testid="stSelectbox"]').click()  # show the first file's full result
    after_rerun(page, lambda: page.get_by_role("option").first.click())
    page.locator('[data-testid="stImageCaption"]').first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # pictures, had any been made, would have been fetched by now
    recorder.shutdown()

    def shown(selector):
        return [text.replace("\u2060", "") for text in page.locator(selector).all_inner_texts()]

    assert f"{name} 0.png" in shown('[data-testid="stImageCaption"]')
    # The list of results is a text input's value, never Markdown.
    assert page.locator('[data-testid="stSelectbox"] input').first.input_value() == f"{name} 0.png: 4"
    assert any(f"{name} broken.png: not an image" in text for text in shown('[data-testid="stAlertContentError"]'))
    for selector in (
        '[data-testid="stImageCaption"]',
        '[data-testid="stSelectbox"]',
        '[data-testid="stAlertContentError"]',
    ):
        markup = page.locator(selector).locator("img, a, em, code, .katex, [class*='color']")
        assert markup.count() == 0, selector  # the error's own bold file name is the app's, not the name's
    assert fetched == []


# A page for every screen and every hand.
BAND_STROKE = [[(150, 6), (272, 10)]]  # along the band the component's toolbar used to cover, at the top right


def open_page(chromium, server, viewport, touch_screen=False):
    """(context, page, requests outside the app) for a fresh session at this size."""
    context = chromium.new_context(viewport=viewport, has_touch=touch_screen, is_mobile=touch_screen)
    requests = outside_requests(context, server.url)
    return context, open_app(context, server.url), requests


def wide_canvas(page):
    """Switch to the whole-number canvas and wait for it."""
    replacing_canvas(page, lambda: page.get_by_text("Whole number", exact=True).click())


def in_view(page, locator, viewport):
    """Whether the element lies wholly inside the window, to a pixel (scrolled to, an edge can be a fraction out)."""
    box = locator.bounding_box()
    return (
        box is not None
        and box["y"] >= -1
        and box["y"] + box["height"] <= viewport["height"] + 1
        and box["x"] >= -1
        and box["x"] + box["width"] <= viewport["width"] + 1
    )


@pytest.mark.parametrize("touch_screen", [False, True], ids=["mouse", "finger"])
def test_the_top_right_of_the_canvas_draws_and_a_corner_tap_destroys_nothing(chromium, server, touch_screen):
    context, page, _ = open_page(chromium, server, PHONE if touch_screen else DESKTOP, touch_screen)
    draw = draw_with_touch if touch_screen else draw_with_mouse
    page.locator(CANVAS).scroll_into_view_if_needed()
    assert page.locator(".dc-toolbar").count() == 1  # the component's toolbar is there, taken out of the page
    assert page.locator(".dc-toolbar").evaluate("toolbar => getComputedStyle(toolbar).display") == "none"
    draw(page, BAND_STROKE)
    band = ink_pixels(page)
    assert band > 500  # a stroke that starts in the band draws
    draw(page, SEVEN)
    assert predict(page) != ""
    drawn = ink_pixels(page)
    # Predict scrolled the answer into view, which can leave the canvas's top under the page's own
    # header (a finger would scroll back first): bring the whole canvas into view again.
    page.locator(CANVAS).evaluate("canvas => canvas.scrollIntoView({block: 'center'})")
    draw(page, [[(276, 4)]])  # a tap in the top-right corner, where the hidden reset was
    assert ink_pixels(page) >= drawn  # at most a dot more: nothing wiped
    assert answer_locator(page).count() == 1  # and the answer is still there
    context.close()


def test_both_canvases_fit_a_phone_and_the_answer_comes_into_view(chromium, server):
    context, page, _ = open_page(chromium, server, PHONE, touch_screen=True)
    narrow = page.locator(CANVAS).bounding_box()
    assert narrow["x"] >= 0 and narrow["x"] + narrow["width"] <= PHONE["width"]
    assert narrow["width"] > 300  # the one-digit canvas grows to the screen, for a finger
    wide_canvas(page)
    left, top, scale = canvas_origin(page)
    assert left >= 0 and left + 560 * scale <= PHONE["width"]  # the 560-px canvas, zoomed to fit
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator(CANVAS).scroll_into_view_if_needed()
    # A 7 in the left half and a 1 in the right half, in canvas pixels: the zoom must map them back exactly.
    draw_with_touch(page, SEVEN + [[(x + 280, y) for x, y in stroke] for stroke in ONE])
    page.get_by_role("button", name="Predict", exact=True).tap()
    answer = answer_locator(page)
    answer.wait_for(state="visible", timeout=30_000)
    wait_until_quiet(page)
    assert answer.inner_text() == "71"
    page.wait_for_timeout(300)  # the scroll to the answer happens on the next frames
    # The whole answer card, its confidence too: the first answer is at first a short placeholder.
    assert in_view(page, page.locator(".st-key-answer_drawing"), PHONE)
    context.close()


def test_the_drawing_reads_the_same_zoomed_on_a_phone_as_on_a_desktop(chromium, server):
    """The same strokes in canvas pixels, drawn at the phone's zoom and at none: the same strokes file comes back."""
    saved = []
    for viewport, touch_screen in ((PHONE, True), (DESKTOP, False)):
        context, page, _ = open_page(chromium, server, viewport, touch_screen)
        page.locator(CANVAS).scroll_into_view_if_needed()
        (draw_with_touch if touch_screen else draw_with_mouse)(page, THREE)
        assert predict(page) == "3"
        with page.expect_download() as download:
            page.get_by_role("button", name="Strokes (JSON)").click()
        saved.append(json.loads(Path(download.value.path()).read_text()))
        context.close()
    phone, desktop = ([point for stroke in drawing["strokes"] for point in stroke] for drawing in saved)
    assert len(phone) > 20 and len(desktop) > 20
    # Every point of the phone's drawing lies within 3 canvas pixels of the desktop's path (pointer rounding).
    distances = np.linalg.norm(np.asarray(phone)[:, None, :2] - np.asarray(desktop)[None, :, :2], axis=2).min(axis=1)
    assert distances.max() < 3, distances.max()


@pytest.mark.parametrize("viewport", LAPTOPS, ids=[f"{size['width']}px" for size in LAPTOPS])
def test_a_four_digit_answer_and_its_confidence_are_never_cut_off(
    chromium, server, tmp_path, mnist_dir, app_model, viewport
):
    images, labels = mnist_test_set(mnist_dir)
    recognizer = Recognizer(app_model)
    picture = paper_picture([readable_digit(recognizer, images, labels, label) for label in (2, 0, 2, 6)])
    expected = recognizer.recognize(picture)
    (tmp_path / "year.png").write_bytes(png_bytes(picture))
    context, page, requests = open_page(chromium, server, viewport)
    page.get_by_role("tab", name="Upload", exact=True).click()
    file_input = upload_input(page)
    after_rerun(page, lambda: file_input.set_input_files(tmp_path / "year.png"))
    value = answer_locator(page, "upload_0")
    assert value.inner_text(timeout=10_000) == expected.text == "2026"
    delta = page.locator(".st-key-answer_upload_0 [data-testid='stMetricDelta']")
    assert delta.inner_text() == f"{percent(expected.confidence)} confidence"
    for element in (value, delta):  # drawn whole: nothing hidden behind an ellipsis or the box's edge
        assert "…" not in element.inner_text() and "..." not in element.inner_text()
        assert element.evaluate("""element => [element, ...element.querySelectorAll('*')].every(
            node => node.scrollWidth <= node.clientWidth + 1)""")
        box, card = element.bounding_box(), page.locator(".st-key-answer_upload_0 [data-testid='stMetric']")
        outer = card.bounding_box()
        assert outer["x"] <= box["x"] and box["x"] + box["width"] <= outer["x"] + outer["width"] + 1
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert requests == []
    context.close()


def test_no_request_leaves_the_app_and_the_icon_is_its_own(chromium, server):
    context, page, requests = open_page(chromium, server, DESKTOP)
    draw_with_mouse(page, SEVEN)
    assert predict(page) == "7"
    page.get_by_role("tab", name="Upload", exact=True).click()
    page.wait_for_timeout(500)
    icon = page.locator("link[rel*=icon]").first.get_attribute("href")
    assert icon and icon.startswith(("/", "./", "data:image/png", server.url)), icon  # served by the app
    assert page.evaluate(
        """async href => {
        const response = await fetch(href);
        const bytes = new Uint8Array(await response.arrayBuffer());
        return response.ok && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;  // "PNG"
    }""",
        icon,
    )
    assert requests == []
    context.close()


def test_the_canvas_script_is_the_packages_own_with_a_shorter_send_delay(chromium, server):
    """The page loads drawing_pad_assets/'s script: the package's, waiting 50 ms, not 200, to send a stroke."""
    context, page, _ = open_page(chromium, server, DESKTOP)
    scripts = page.evaluate(
        """() => performance.getEntriesByType("resource").map(entry => entry.name)
            .filter(name => name.includes("streamlit_drawable_canvas") && name.endsWith(".js"))"""
    )
    assert len(scripts) == 1 and scripts[0].endswith("-send50.js"), scripts
    served = page.evaluate("async url => (await fetch(url)).text()", scripts[0])
    build = Path(importlib.util.find_spec("streamlit_drawable_canvas").origin).parent / "frontend" / "build"
    (package_script,) = build.glob("index-*.js")
    original = package_script.read_text()
    assert original.count("Bc = 200,") == 1, "the package's script changed: make drawing_pad_assets/'s again"
    assert served == original.replace("Bc = 200,", "Bc = 50,")
    assert importlib.metadata.version("streamlit-drawable-canvas") == "0.13.0"
    context.close()


@pytest.mark.parametrize("touch_screen", [False, True], ids=["desktop", "phone"])
def test_buttons_and_tabs_have_clean_names_and_the_answer_is_announced(chromium, server, touch_screen):
    context, page, _ = open_page(chromium, server, PHONE if touch_screen else DESKTOP, touch_screen)
    for name in ("Predict", "Undo", "Clear"):
        assert page.get_by_role("button", name=name, exact=True).count() == 1, name
    for name in ("Draw", "Upload"):
        assert page.get_by_role("tab", name=name, exact=True).count() == 1, name
    region = page.locator("[role=status][aria-live=polite]")
    assert region.count() == 1 and region.inner_text() == ""
    page.locator(CANVAS).scroll_into_view_if_needed()
    (draw_with_touch if touch_screen else draw_with_mouse)(page, SEVEN)
    answer = predict(page)
    assert region.text_content() == f"Recognised {answer}, " + answer_confidence(page) + " confidence."
    # The app's own buttons and tabs, here and in the sidebar: no icon whose name ("auto_awesome Predict") is
    # read out with theirs. The file uploader's "upload Upload" and the sidebar's arrows are Streamlit's own.
    streamlits_own = "[data-testid=stFileUploader] *, [data-testid=stSidebarHeader] *, [data-testid=stHeader] *"
    # An icon the page's style hides (display: none: the popovers' arrows) is not read out either.
    icons = page.locator(f":is(button, [role=tab]):not({streamlits_own}) [data-testid=stIconMaterial] >> visible=true")
    assert icons.count() == 0, icons.all_inner_texts()
    assert region.count() == 1  # the same region, its text changed: that is what screen readers announce
    context.close()


def answer_confidence(page, key="drawing"):
    """The confidence shown under the answer, as written there ('99.7%')."""
    return page.locator(f".st-key-answer_{key} [data-testid='stMetricDelta']").inner_text().split()[0]


UNSURE = [[(80, 60), (80, 200), (200, 200), (200, 60)]]  # a U: read as 4 at about 40%, then 1, 6 and 2
SHOWN_PERCENT = re.compile(r"(?<![\d.>])\d{1,2}\.\d%|>99\.9%|<0\.1%")  # the one format: '12.3%', '>99.9%', '<0.1%'


def test_an_unsure_answer_offers_alternatives_in_the_one_format(page, app_model):
    truth = Recognizer(app_model).recognize_strokes(
        parse_drawing(
            {"width": 280, "height": 280, "brush": 20, "strokes": [stroke_points(stroke) for stroke in UNSURE]}
        )
    )
    assert truth.status == "uncertain"  # the premise, read without the browser
    draw_with_mouse(page, UNSURE)
    assert predict(page) == truth.text
    shown = page.locator(".st-key-answer_drawing").inner_text()
    assert "Best guess" in shown
    offered = re.search(r"Or perhaps: (.*)", shown).group(1)
    alternatives = re.findall(r"(\d) \(([^)]*)\)", offered)
    assert 2 <= len(alternatives) <= 3 and truth.text not in [digit for digit, _ in alternatives]
    assert all(SHOWN_PERCENT.fullmatch(probability) for _, probability in alternatives)
    assert SHOWN_PERCENT.fullmatch(answer_confidence(page))
    region = page.locator("[role=status][aria-live=polite]").text_content()
    assert region.startswith(f"Best guess {truth.text}, ") and "Or perhaps" in region
    for text in page.locator('[data-testid="stMain"]').all_inner_texts():
        assert "100.0%" not in text and not re.search(r"(?<![\d.])0\.0%", text)
