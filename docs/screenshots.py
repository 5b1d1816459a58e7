"""The README's pictures of the app, made again from the running app in headless Chromium.

    python docs/screenshots.py      # docs/screenshot.png (a laptop) and docs/screenshot_phone.png (a phone)

Each draws a 3 on a fresh session, presses Predict and photographs the page once the answer
is there. Run it on purpose when the page changes; the tests never write here.
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the app's modules and the browser tests' helpers

import browser  # noqa: E402 (found through the path set just above)

SHOTS = {  # file: (window, touch screen)
    "screenshot.png": ({"width": 1280, "height": 900}, False),
    "screenshot_phone.png": ({"width": 390, "height": 844}, True),
}


def photograph(chromium, url, path, viewport, touch_screen):
    """A fresh session at this size: a 3 drawn, Predict pressed, the page as it then shows."""
    context = chromium.new_context(viewport=viewport, has_touch=touch_screen, is_mobile=touch_screen)
    page = browser.open_app(context, url)
    page.locator(browser.CANVAS).scroll_into_view_if_needed()
    (browser.draw_with_touch if touch_screen else browser.draw_with_mouse)(page, browser.THREE)
    browser.click_and_wait(page, ".st-key-predict")
    answer = browser.answer_locator(page).inner_text(timeout=30_000)
    page.mouse.move(0, 0)  # no hover effects in the picture
    page.wait_for_timeout(800)  # the chart's and pictures' fade-in, and the scroll to the answer
    page.screenshot(path=path)
    context.close()
    return answer


def main():
    with browser.AppServer() as server, sync_playwright() as playwright:
        chromium = browser.launch_chromium(playwright)
        for name, (viewport, touch_screen) in SHOTS.items():
            answer = photograph(chromium, server.url, ROOT / "docs" / name, viewport, touch_screen)
            print(f"docs/{name}: {viewport['width']}x{viewport['height']}, the app read {answer}")
        chromium.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
