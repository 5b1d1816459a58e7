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
