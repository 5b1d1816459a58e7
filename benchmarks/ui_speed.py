"""Speed you can feel, in real Chromium: Predict to the answer on screen, and pen lifted to the answer while drawing.

    python -m benchmarks.ui_speed              # 20 of each at 1280x900; writes benchmarks/results/ui_speed.md
    python -m benchmarks.ui_speed --repeats 5 --results-dir /tmp/results

Each time is taken inside the page: from the click on Predict (or the pointerup that ends the
last stroke) to the first animation frame in which the answer's element is on the page,
that is the frame that paints it. Every attempt starts from a cleared canvas, so no earlier
answer can be mistaken for the new one. Prints every time and the medians.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from benchmarks import save_results
from tests import browser

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
REPEATS = 20
VIEWPORT = {"width": 1280, "height": 900}
ANSWER_TIMEOUT_MS = 30_000
TARGETS_MS = {"predict": 150, "live": 250}
DIGIT, STROKES = "7", browser.SEVEN
# The last click or pointerup, in page time; the capture phase sees it before the app does.
ACTED_SCRIPT = """
window.appActedAt = 0;
for (const event of ["click", "pointerup"]) {
  document.addEventListener(event, () => { window.appActedAt = performance.now(); }, true);
}
"""
# Polled once per animation frame: true, and the frame's time kept, once the answer is there.
ANSWER_SHOWN = f"""() => {{
  const answer = document.querySelector({browser.answer_selector()!r});
  if (!answer || !answer.innerText) return false;
  window.appAnswerAt = performance.now();
  return true;
}}"""


def answer_milliseconds(page):
    """Milliseconds from the last action to the frame that showed the answer, and the answer's text."""
    page.wait_for_function(ANSWER_SHOWN, timeout=ANSWER_TIMEOUT_MS, polling="raf")
    milliseconds = page.evaluate("window.appAnswerAt - window.appActedAt")
    return milliseconds, browser.answer_locator(page).inner_text()


def time_predict(page, repeats):
    """Click Predict on a drawn 7, repeats times: [(milliseconds, answer)]."""
    times = []
    for _ in range(repeats):
        browser.clear(page)
        browser.draw_with_mouse(page, STROKES)
        page.locator(".st-key-predict button").click()
        times.append(answer_milliseconds(page))
        browser.wait_until_quiet(page)
    return times


def time_live(page, repeats):
    """Draw a 7 with predict while drawing on, repeats times: [(milliseconds after the pen lifts, answer)]."""
    browser.after_rerun(page, lambda: page.locator(".st-key-live label").click())
    times = []
    for _ in range(repeats):
        browser.clear(page)
        browser.mouse_strokes(page, STROKES, *browser.canvas_origin(page))
        times.append(answer_milliseconds(page))
        browser.wait_until_quiet(page)
    return times


def summary_of(name, times):
    """Median, slowest and every time of one kind, with how many answers were not the drawn digit."""
    milliseconds = [round(value, 1) for value, _ in times]
    return {
        "median_ms": round(statistics.median(milliseconds), 1),
        "p90_ms": round(sorted(milliseconds)[int(0.9 * (len(milliseconds) - 1))], 1),
        "slowest_ms": max(milliseconds),
        "target_ms": TARGETS_MS[name],
        "wrong_answers": sum(answer != DIGIT for _, answer in times),
        "all_ms": milliseconds,
    }


def markdown(summary):
    """The results table people read."""
    names = {
        "predict": "click Predict to the answer on screen",
        "live": "pen lifted to the answer (predict while drawing)",
    }
    rows = [
        f"| {names[name]} | {figures['median_ms']:.0f} ms | {figures['p90_ms']:.0f} ms | "
        f"{figures['slowest_ms']:.0f} ms | at most {figures['target_ms']} ms | {figures['wrong_answers']} |"
        for name, figures in summary["kinds"].items()
    ]
    return "\n".join(
        [
            "# Speed you can feel (headless Chromium, `python -m benchmarks.ui_speed`)",
            "",
            f"{summary['repeats']} of each at {VIEWPORT['width']}x{VIEWPORT['height']}; "
            f"{summary['cpu_count']} CPU cores, "
            f"load average {summary['load_average_1min']} at the end.",
            "",
            "| measure | median | p90 | slowest | target | wrong answers |",
            "|---|---:|---:|---:|---|---:|",
            *rows,
            "",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed answers of each kind")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    with browser.AppServer() as server, sync_playwright() as playwright:
        chromium = browser.launch_chromium(playwright)
        context = chromium.new_context(viewport=VIEWPORT)
        context.add_init_script(ACTED_SCRIPT)
        page = browser.open_app(context, server.url)
        time_predict(page, 2)  # warm-up: the first answers load the charts' code and the second model
        kinds = {"predict": summary_of("predict", time_predict(page, args.repeats))}
        kinds["live"] = summary_of("live", time_live(page, args.repeats))
        chromium.close()
    summary = {
        "repeats": args.repeats,
        "kinds": kinds,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    for name, figures in kinds.items():
        print(
            f"{name}: median {figures['median_ms']} ms, p90 {figures['p90_ms']} ms "
            f"(target {figures['target_ms']} ms); every time: {figures['all_ms']}"
        )
    save_results(args.results_dir, "ui_speed", markdown(summary), summary)
    print(f"wrote {args.results_dir / 'ui_speed.md'} and ui_speed.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
