"""Learning a user's handwriting in headless Chromium: a correction, the secret link, privacy between sessions,
and Forget me, checked in the SQLite file itself."""

import hashlib
import re
import sqlite3
from urllib.parse import parse_qs, urlparse

import pytest

from browser import (
    CHROMIUM,
    ONE,
    AppServer,
    after_rerun,
    answer_locator,
    clear,
    click_and_wait,
    draw_with_mouse,
    launch_chromium,
    model_under_test,
    open_app,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}: apt-get install -y chromium"
)
playwright_api = pytest.importorskip("playwright.sync_api")

DESKTOP = {"width": 1280, "height": 900}
PERSONALISED = re.compile(r"Read with your \d+ examples?\.")  # the caption of a personalised reading
CORRECTED_TO = "7"  # the user says their 1 is a 7, as a European 1 is often read the other way


def table(path, query, *parameters):
    with sqlite3.connect(path) as connection:
        return connection.execute(query, parameters).fetchall()


def predict(page):
    click_and_wait(page, ".st-key-predict")
    return answer_locator(page).inner_text(timeout=10_000)


def correct_to(page, digit):
    """Pick the true digit in "Wrong? It was ..." and press Save correction."""
    opener = page.locator(".st-key-correct_drawing [data-testid='stSelectbox']").first.get_by_role(
        "button", name="Open"
    )
    option = page.get_by_role("option", name=digit, exact=True)
    for _ in range(5):  # a click while the page is still settling can be lost: open the list until it shows
        opener.click()
        try:
            option.wait_for(state="visible", timeout=3_000)
            break
        except playwright_api.TimeoutError:
            continue
    after_rerun(page, option.click)
    save = page.locator(".st-key-save_drawing").get_by_role("button", name="Save correction")
    after_rerun(page, save.click)


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def profile_details(page):
    """The sidebar's "Manage your examples" popover, opened if it is closed; its contents float above the page."""
    opener = sidebar(page).get_by_role("button", name="Manage your examples")
    if opener.get_attribute("aria-expanded") != "true":
        opener.click()
    body = page.locator("[data-testid='stPopoverBody']").filter(has_text="Import examples")
    body.wait_for(timeout=10_000)
    return body


@pytest.fixture
def database(tmp_path):
    return tmp_path / "profiles.sqlite3"


@pytest.fixture
def server(model_path, database):
    with AppServer({"DIGIT_MODEL": str(model_under_test(model_path)), "DIGIT_PROFILE_DB": str(database)}) as app:
        yield app


def test_a_correction_personalises_only_its_own_session_and_forget_me_deletes_it(server, database, tmp_path):
    with playwright_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        mine = open_app(chromium.new_context(viewport=DESKTOP), server.url)
        theirs = open_app(chromium.new_context(viewport=DESKTOP), server.url)
        assert sidebar(mine).get_by_text("Nothing you draw or upload is kept").is_visible()

        draw_with_mouse(mine, ONE)
        first_answer = predict(mine)
        assert first_answer != CORRECTED_TO and not database.exists()  # nothing kept before a correction
        correct_to(mine, CORRECTED_TO)

        # The SQLite file itself: one profile, one example with the true digit, the image and the strokes.
        ((token_hash,),) = table(database, "SELECT token_hash FROM profiles")
        ((digit, image_bytes, has_strokes),) = table(
            database, "SELECT digit, length(image), strokes IS NOT NULL FROM examples"
        )
        assert (digit, image_bytes, has_strokes) == (int(CORRECTED_TO), 784, 1)
        token = parse_qs(urlparse(mine.url).query)["profile"][0]  # the secret link is the page's address
        assert hashlib.sha256(token.encode()).hexdigest() == token_hash
        assert sidebar(mine).get_by_text("keeps 1 example").is_visible()
        link = profile_details(mine).locator("[data-testid='stCode']")  # the code block's script loads on first use
        link.wait_for(timeout=10_000)
        assert token in link.inner_text()

        # The other session: no profile, no link, its readings are the model's own.
        draw_with_mouse(theirs, ONE)
        assert predict(theirs) == first_answer
        assert "profile" not in theirs.url and token not in theirs.content()
        assert theirs.get_by_text(PERSONALISED).count() == 0
        assert sidebar(theirs).get_by_text("Nothing you draw or upload is kept").is_visible()

        # The first session's next drawing is read with its example.
        clear(mine)
        draw_with_mouse(mine, ONE)
        assert predict(mine) == CORRECTED_TO  # the same 1, drawn again, is read as this writer's 7
        assert mine.get_by_text(PERSONALISED).inner_text().endswith("Read with your 1 example.")

        # The secret link brings the profile back in a new browser.
        returning = chromium.new_context(viewport=DESKTOP)
        back = open_app(returning, f"{server.url}/?profile={token}")
        assert sidebar(back).get_by_text("keeps 1 example").is_visible()
        returning.close()

        with mine.expect_download() as download:  # the export zip, kept to import after Forget me
            profile_details(mine).locator(".st-key-profile_export button").click()
        exported = tmp_path / download.value.suggested_filename  # the browser's copy has no .zip name
        download.value.save_as(exported)

        after_rerun(mine, lambda: profile_details(mine).locator(".st-key-forget button").click())
        after_rerun(mine, lambda: profile_details(mine).locator(".st-key-forget_confirm button").click())
        assert table(database, "SELECT count(*) FROM examples") == [(0,)]
        assert table(database, "SELECT count(*) FROM profiles") == [(0,)]
        assert sidebar(mine).get_by_text("Forgotten").is_visible() and "profile=" not in mine.url

        # Importing the export restores the profile: a new token, the same example.
        uploader = profile_details(mine).locator("[data-testid='stFileUploaderDropzoneInput']")
        after_rerun(mine, lambda: uploader.set_input_files(exported), send_delay_ms=500)
        sidebar(mine).get_by_text("Imported 1 example").wait_for(timeout=30_000)  # after the upload's own rerun
        assert table(database, "SELECT digit, source FROM examples") == [(int(CORRECTED_TO), "import")]
        ((restored_hash,),) = table(database, "SELECT token_hash FROM profiles")
        restored = parse_qs(urlparse(mine.url).query)["profile"][0]
        assert restored != token and hashlib.sha256(restored.encode()).hexdigest() == restored_hash
        chromium.close()
