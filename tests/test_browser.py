"""End to end in headless Chromium: draw with a mouse and a finger, clear, upload, and time it.

One app server for the whole module. Timings are printed (pytest -s) and written to
build/browser_timings.json; they are measurements, not assertions.
"""

import json
import statistics
import time
from pathlib import Path

import psutil
import pytest

from browser import (
    CANVAS, CHROMIUM, ONE, ROOT, SEVEN, THREE, ZERO, AppServer, after_rerun, answer_locator, clear,
    click_and_wait, draw_with_mouse, draw_with_touch, ink_pixels, launch_chromium, mnist_test_set,
    model_under_test, open_app, paper_picture, png_bytes, readable_digit, touch, wait_until_quiet,
)
from recognizer import Recognizer

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}: apt-get install -y chromium"
)
playwright_api = pytest.importorskip("playwright.sync_api")

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMED_PREDICTIONS = 20
SCREENSHOT = ROOT / "docs" / "screenshot.png"
TIMINGS_FILE = ROOT / "build" / "browser_timings.json"
FAILURE_SCREENSHOT = ROOT / "build" / "browser_failure.png"
SCROLLER = '[data-testid="stMain"]'  # Streamlit scrolls this section, not the window


@pytest.fixture(scope="module")
def timings():
    """Figures measured by the tests; printed and saved when the module ends."""
    figures = {}
    yield figures
    if figures:
        TIMINGS_FILE.parent.mkdir(exist_ok=True)
        TIMINGS_FILE.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nbrowser timings ({TIMINGS_FILE.relative_to(ROOT)}):")
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


def test_undo_on_the_canvas_toolbar_takes_back_the_last_stroke(page):
    draw_with_mouse(page, SEVEN)
    seven = ink_pixels(page)
    draw_with_mouse(page, ONE)
    assert ink_pixels(page) > seven
    after_rerun(page, lambda: page.locator("button[aria-label=Undo]").click())
    assert ink_pixels(page) == seven
    assert predict(page) == "7"


def test_drawing_survives_settings_and_tabs_and_live_mode_reads_it(page):
    draw_with_mouse(page, ZERO)
    ink = ink_pixels(page)
    after_rerun(page, lambda: (page.locator(".st-key-brush_width input[type=range]").focus(),
                               page.keyboard.press("ArrowRight")))
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
    file_input = page.locator('[data-testid="stFileUploader"] input[type=file]')
    after_rerun(page, lambda: file_input.set_input_files(picture))
    assert answer_locator(page, "upload_0").inner_text(timeout=10_000) == "4"
    assert page.get_by_text("four.png").first.is_visible()


def test_screenshot_of_a_prediction(page):
    draw_with_mouse(page, THREE)
    assert predict(page) == "3"
    page.mouse.move(0, 0)  # no hover effects in the picture
    page.wait_for_timeout(500)  # let the chart's and images' fade-in finish
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000


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
    file_input = page.locator('[data-testid="stFileUploader"] input[type=file]')
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
    for selector in ('[data-testid="stImageCaption"]', '[data-testid="stSelectbox"]',
                     '[data-testid="stAlertContentError"]'):
        markup = page.locator(selector).locator("img, a, em, code, .katex, [class*='color']")
        assert markup.count() == 0, selector  # the error's own bold file name is the app's, not the name's
    assert fetched == []
