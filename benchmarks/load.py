"""Many people at once: browser sessions draw different numbers and press Predict again and again.

    python -m benchmarks.load                          # 20 sessions for 60 s against a fresh server
    python -m benchmarks.load --sessions 10 --seconds 30
    python -m benchmarks.load --replicas 2             # through nginx in front of 2 replicas (deploy/serve.py)

One headless Chromium with one context (a separate user: own cookies, own Streamlit
session) per session, driven concurrently with Playwright's async API. Each session draws
its own two-digit number on the wide canvas, so that any answer meant for another user
would show. Records every click-to-answer time, every wrong answer and page error, and
the server's memory (with its children) through the run: its growth is the median of the last
10 s less that of the run's second 10 s (a quarter of the run each, if shorter). Writes
benchmarks/results/load.md and load.json (load_nginx.md and .json through nginx);
tests/test_load.py runs it and asserts on the outcome.
Through nginx each session connects from its own address, 127.0.0.(10 + its number), as
separate users do: nginx's limits are per client.
"""

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import psutil
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from benchmarks import save_results
from tests import browser

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
SESSIONS = 20
LOAD_SECONDS = 60
ANSWER_TIMEOUT_MS = 60_000  # 20 pages and the server share 2 cores: an answer can take a while
PAGE_TIMEOUT_MS = 180_000  # the first page load of 20 at once
OPENING_AT_ONCE = 4  # sessions that load and draw at the same time: all 20 at once starve the server
ONE_SERVER = "One `streamlit run app.py` server"
FIRST_CLIENT = 10  # through nginx, session i connects from 127.0.0.(10 + i)
LAYOUT_SETTLE_SECONDS = 0.2  # a canvas whose box is the same this far apart has stopped moving
MEMORY_SAMPLE_SECONDS = 2  # the server's memory during the run, for the curve in the results
# Each app run allocates and frees megabytes of pictures in its session's thread, and the
# freed memory stays with the thread's malloc arena for a while: the RSS swings by tens of
# MB from sample to sample. Medians over 10 s windows compare the level: the run's second 10 s
# against its last. The first 10 s are left out: the memory is still climbing there from the
# warm-up's one answer per session to the run's working set (two of two runs through nginx
# climbed 665 -> 770 MiB and more within them; a leak goes on climbing after).
MEMORY_WINDOW_SECONDS = 10
FAILURE_SCREENSHOT = Path(tempfile.gettempdir()) / "load_failure.png"
DRAWING_SENT_MS = 30_000  # no run this long after a drawing whose canvas shows no ink: the strokes were lost
DRAWING_ATTEMPTS = 3
VIEWPORT = {"width": 1280, "height": 900}
WIDE_CANVAS = "Whole number"  # the app's 560 px canvas, for two digits side by side
DIGIT_WIDTH = 280  # each digit is drawn in its own 280 px half of the 560 px wide canvas
FOUR = [[(165, 40), (78, 175), (212, 175)], [(170, 95), (170, 245)]]
TWO = [[(85, 90), (110, 55), (150, 45), (190, 65), (195, 105), (165, 150), (85, 232), (205, 232)]]
DIGIT_STROKES = {"0": browser.ZERO, "1": browser.ONE, "2": TWO, "3": browser.THREE, "4": FOUR, "7": browser.SEVEN}
# Two different digits per number: 30 numbers, one per session.
NUMBERS = ["".join(pair) for pair in itertools.permutations(DIGIT_STROKES, 2)]

# Times each app run in the page from the messages of the app's WebSocket. Each is one
# Streamlit ForwardMsg (protobuf): field 4 (new_session) starts a run, field 6
# (script_finished) ends it, with 0 for "finished successfully" (3 when the run was only of the
# drawing area's fragment, as Predict's is). The run's answer arrives before its end.
# The page's DOM cannot tell: a quick run changes nothing on it.
RUN_TIMES_SCRIPT = """
Object.assign(window, {appActedAt: 0, appRunStartedAt: 0, appRunFinishedAt: 0});
for (const event of ["click", "pointerup"]) {
  document.addEventListener(event, () => { window.appActedAt = performance.now(); }, true);
}
function topLevelFields(bytes) {
  const fields = new Map();
  let index = 0;
  const varint = () => {
    let value = 0, shift = 0, byte;
    do { byte = bytes[index++]; value += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
    return value;
  };
  while (index < bytes.length) {
    const key = varint(), field = Math.floor(key / 8), wireType = key % 8;
    if (wireType === 0) fields.set(field, varint());
    else if (wireType === 2) { const length = varint(); fields.set(field, null); index += length; }
    else if (wireType === 1) index += 8;
    else if (wireType === 5) index += 4;
    else break;
  }
  return fields;
}
window.WebSocket = class extends window.WebSocket {
  constructor(...settings) {
    super(...settings);
    this.addEventListener("message", event => {
      if (!(event.data instanceof ArrayBuffer)) return;
      const fields = topLevelFields(new Uint8Array(event.data));
      if (fields.has(4)) window.appRunStartedAt = performance.now();
      if ([0, 3].includes(fields.get(6))) window.appRunFinishedAt = performance.now();
    });
  }
};
"""
# A run started after the last click or stroke, and has finished.
RUN_DONE = """() => window.appActedAt > 0 && window.appRunStartedAt > window.appActedAt
                    && window.appRunFinishedAt > window.appRunStartedAt"""
ANSWER_VALUE = browser.answer_selector()
# The run's end reaches the page before the browser has drawn its answer: under load the first
# answer appears a few hundred ms later, so it is read once it is on the page.
ANSWER_SHOWN = f"() => document.querySelector({ANSWER_VALUE!r}) !== null"
READ_ANSWER = f"""() => ({{
  milliseconds: window.appRunFinishedAt - window.appActedAt,
  text: document.querySelector({ANSWER_VALUE!r})?.innerText ?? null,
  exceptions: document.querySelectorAll("[data-testid='stException']").length,
}})"""
# Fabric.js paints the canvas's white paper when its empty drawing has loaded; strokes drawn before that are lost.
PAPER_PAINTED = "canvas => canvas.getContext('2d').getImageData(0, 0, 1, 1).data[3] === 255"
# A resource from another site that fails to load says nothing about the app: the page icon
# comes from fonts.gstatic.com, which is out of reach on machines without internet access.
FAILED_RESOURCE = "Failed to load resource"


@dataclass
class Session:
    """One user: the number they draw and what they saw."""

    number: str
    milliseconds: list = field(default_factory=list)  # click to answer, one per prediction after warm-up
    wrong_answers: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)
    lost_drawings: int = 0  # drawings made again because the canvas under them was re-mounted


def server_memory(pid):
    """Resident memory, in bytes, of the server process and its children."""
    process = psutil.Process(pid)
    return sum(member.memory_info().rss for member in [process, *process.children(recursive=True)])


async def after_rerun(page, action, timeout_ms=PAGE_TIMEOUT_MS):
    """Do action (clicks or strokes), then wait until the app run it causes has finished."""
    await page.evaluate("window.appActedAt = 0")
    await action()
    if not await run_finished(page, timeout_ms):
        await no_answer(page, timeout_ms)


async def run_finished(page, timeout_ms):
    """Whether an app run started after the last action has finished within timeout_ms."""
    try:
        await page.wait_for_function(RUN_DONE, timeout=timeout_ms, polling=50)
        return True
    except PlaywrightTimeout:
        return False


async def no_answer(page, timeout_ms):
    """Raise TimeoutError with the page's timings and ink, leaving a screenshot."""
    await page.screenshot(path=FAILURE_SCREENSHOT)
    times = await page.evaluate(
        "() => [performance.now(), window.appActedAt, window.appRunStartedAt, window.appRunFinishedAt]"
    )
    raise TimeoutError(
        f"no app run answered within {timeout_ms / 1000:g} s; page time {times[0]:.0f} ms, last action at "
        f"{times[1]:.0f}, last run started at {times[2]:.0f} and finished at {times[3]:.0f}; the canvas shows "
        f"{await ink_pixels(page)} ink pixels; screenshot in {FAILURE_SCREENSHOT}"
    )


async def wait_for_canvas(page):
    """The box of a new canvas (not marked data-replaced) once it is the only one, has loaded and stopped moving.

    Strokes drawn before the canvas has loaded its empty drawing are lost, and strokes aimed
    at a box from before the page's layout settled (the replaced canvas can linger above the
    new one for a while) miss the canvas.
    """
    canvases = page.locator(browser.CANVAS)
    painted = page.locator(f"{browser.INK_CANVAS}:not([data-replaced])")
    deadline = time.monotonic() + PAGE_TIMEOUT_MS / 1000
    box = None
    while time.monotonic() < deadline:
        if (
            await canvases.count() == 1
            and await canvases.get_attribute("data-replaced") is None
            and await painted.count() == 1
            and await painted.evaluate(PAPER_PAINTED)
        ):
            previous, box = box, await canvases.bounding_box()
            if box == previous:
                return box
        await asyncio.sleep(LAYOUT_SETTLE_SECONDS)
    raise TimeoutError(f"the canvas was not ready within {PAGE_TIMEOUT_MS / 1000:g} s")


async def ink_pixels(page):
    """Dark pixels on the current canvas's ink layer: 0 when the strokes drawn on it were lost."""
    return await page.locator(f"{browser.INK_CANVAS}:not([data-replaced])").evaluate_all(
        f"canvases => canvases.map({browser.INK_PIXELS}).reduce((total, count) => total + count, 0)"
    )


async def draw_number(page, number, box, session):
    """Draw the number's digits side by side with mouse strokes in the canvas box; waits for the app to get them.

    Under load the canvas can still be re-mounted after it looked settled, and strokes drawn on the
    old one vanish with it (the canvas then shows no ink): that drawing is made again, and counted.
    """

    async def draw():
        scale = box["width"] / (DIGIT_WIDTH * 2)  # screen pixels per canvas pixel: the app zooms canvases to fit
        for position, digit in enumerate(number):
            for stroke in DIGIT_STROKES[digit]:
                points = [
                    (box["x"] + (position * DIGIT_WIDTH + x) * scale, box["y"] + y * scale)
                    for x, y in browser.stroke_points(stroke)
                ]
                await page.mouse.move(*points[0])
                await page.mouse.down()
                for point in points[1:]:
                    await page.mouse.move(*point)
                await page.mouse.up()

    for _ in range(DRAWING_ATTEMPTS):
        await page.evaluate("window.appActedAt = 0")
        await draw()  # the canvas sends the drawing shortly after the last stroke
        if await run_finished(page, DRAWING_SENT_MS):
            return
        if await ink_pixels(page):  # drawn but not answered yet: the app has its full time
            if await run_finished(page, PAGE_TIMEOUT_MS):
                return
            break
        session.lost_drawings += 1
        box = await wait_for_canvas(page)
    await no_answer(page, DRAWING_SENT_MS + PAGE_TIMEOUT_MS)


async def open_session(browser_process, url, session):
    """A new user's page with the wide canvas and the session's number drawn on it."""
    context = await browser_process.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.on("pageerror", lambda error: session.page_errors.append(f"page error: {error}"))
    page.on("console", lambda message: _note_console_error(session, message, url))
    await page.add_init_script(RUN_TIMES_SCRIPT)
    await page.goto(url)
    await wait_for_canvas(page)
    for layer in (browser.CANVAS, browser.INK_CANVAS):
        await page.locator(layer).evaluate("canvas => canvas.setAttribute('data-replaced', '')")
    await after_rerun(page, lambda: page.get_by_text(WIDE_CANVAS, exact=True).click())
    box = await wait_for_canvas(page)  # the wide canvas replaces the narrow one
    await draw_number(page, session.number, box, session)
    return context, page


def _note_console_error(session, message, app_url):
    if message.type != "error":
        return
    source = message.location.get("url", "")
    if message.text.startswith(FAILED_RESOURCE) and source and not source.startswith(app_url):
        return
    session.page_errors.append(f"console error: {message.text} ({source})")


async def predict(page, session):
    """Press Predict and wait for that run's answer; returns the click-to-answer time in ms."""
    await after_rerun(page, lambda: page.locator(".st-key-predict button").click(), ANSWER_TIMEOUT_MS)
    with contextlib.suppress(PlaywrightTimeout):  # then read as it is: no answer counts as a wrong one
        await page.wait_for_function(ANSWER_SHOWN, timeout=ANSWER_TIMEOUT_MS, polling=50)
    answer = await page.evaluate(READ_ANSWER)
    if answer["exceptions"]:
        session.page_errors.append(f"{answer['exceptions']} Streamlit exception box(es) on the page")
    if answer["text"] != session.number:
        session.wrong_answers.append(answer["text"])
    return answer["milliseconds"]


async def keep_predicting(page, session, until):
    """Press Predict again and again until the monotonic time `until`."""
    while time.monotonic() < until:
        session.milliseconds.append(await predict(page, session))


async def sample_memory(server_pid, started, until, samples):
    """Append (seconds since `started`, server RSS in bytes) every MEMORY_SAMPLE_SECONDS until `until`."""
    while time.monotonic() < until:
        samples.append((time.monotonic() - started, server_memory(server_pid)))
        await asyncio.sleep(MEMORY_SAMPLE_SECONDS)


async def run_load(url, server_pid, sessions=SESSIONS, seconds=LOAD_SECONDS, separate_clients=False):
    """Drive `sessions` users against the app at url for `seconds`; returns the report as a dict.

    separate_clients: each session connects from an address of its own (through client_relay).
    """
    if not 1 <= sessions <= len(NUMBERS):
        raise ValueError(f"sessions must be between 1 and {len(NUMBERS)}: each draws a number of its own")
    users = [Session(number) for number in NUMBERS[:sessions]]
    relays = []
    if separate_clients:
        port = int(url.rsplit(":", 1)[1])
        relays = [await browser.client_relay(port, f"127.0.0.{FIRST_CLIENT + index}") for index in range(sessions)]
    urls = [relay_url for _, relay_url in relays] or [url] * sessions
    started = time.perf_counter()
    async with async_playwright() as playwright:
        browser_process = await playwright.chromium.launch(
            executable_path=str(browser.CHROMIUM), args=browser.CHROMIUM_ARGS, headless=True
        )
        try:
            opening = asyncio.Semaphore(OPENING_AT_ONCE)

            async def warm_up(session, session_url):
                async with opening:
                    context, page = await open_session(browser_process, session_url, session)
                    warm_up_milliseconds = await predict(page, session)  # the first answer: warm-up, not timed
                return context, page, warm_up_milliseconds

            opened = await asyncio.gather(*(warm_up(session, session_url) for session, session_url in zip(users, urls)))
            warm_seconds = time.perf_counter() - started
            memory_samples, run_started = [], time.monotonic()
            until = run_started + seconds
            pages = [page for _, page, _ in opened]
            await asyncio.gather(
                sample_memory(server_pid, run_started, until, memory_samples),
                *(keep_predicting(page, session, until) for page, session in zip(pages, users)),
            )
            memory_samples.append((time.monotonic() - run_started, server_memory(server_pid)))
            for context, _, _ in opened:
                await context.close()
        finally:
            await browser_process.close()
            for relay, _ in relays:
                relay.close()
    summary = report(users, seconds, warm_seconds, memory_samples, [milliseconds for *_, milliseconds in opened])
    return summary | {"separate_clients": separate_clients}


def report(users, seconds, warm_seconds, memory_samples, warm_up_milliseconds):
    """The figures of a run, JSON-ready; memory_samples start right after warm-up and end right after the run."""
    milliseconds = np.array([value for session in users for value in session.milliseconds])
    memory_warm, memory_after = memory_samples[0][1], memory_samples[-1][1]
    end = memory_samples[-1][0]
    window = min(MEMORY_WINDOW_SECONDS, end / 4)  # short runs: windows apart all the same
    baseline_level = np.median([size for at, size in memory_samples if window <= at <= 2 * window])
    last_level = np.median([size for at, size in memory_samples if at >= end - window])
    return {
        "sessions": len(users),
        "load_seconds": seconds,
        "warm_up_seconds": round(warm_seconds, 1),
        "predictions": int(milliseconds.size),
        "predictions_per_second": round(milliseconds.size / seconds, 2),
        "click_to_answer_ms": {
            "p50": _round(np.percentile(milliseconds, 50)) if milliseconds.size else None,
            "p95": _round(np.percentile(milliseconds, 95)) if milliseconds.size else None,
            "max": _round(milliseconds.max()) if milliseconds.size else None,
            "first_answer_p50": _round(np.percentile(warm_up_milliseconds, 50)),
        },
        "server_rss_mb": {
            "after_warm_up": _megabytes(memory_warm),
            "after_run": _megabytes(memory_after),
            "baseline_window_median": _megabytes(baseline_level),
            "last_window_median": _megabytes(last_level),
            "window_seconds": round(window, 1),
            "growth": _megabytes(last_level - baseline_level),
            "curve": [[round(at, 1), _megabytes(size)] for at, size in memory_samples],
        },
        "wrong_answers": sum(len(session.wrong_answers) for session in users),
        "page_errors": sum(len(session.page_errors) for session in users),
        "lost_drawings": sum(session.lost_drawings for session in users),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "per_session": [
            asdict(session)
            | {
                "predictions": len(session.milliseconds),
                "milliseconds": [_round(value) for value in session.milliseconds],
            }
            for session in users
        ],
    }


def _round(milliseconds):
    return round(float(milliseconds), 1)


def _megabytes(size):
    return round(size / 2**20, 1)


def markdown(summary):
    """A short Markdown report of the run."""
    times, memory = summary["click_to_answer_ms"], summary["server_rss_mb"]
    rows = [
        ("browser sessions at once", summary["sessions"]),
        ("load duration", f"{summary['load_seconds']:g} s (after {summary['warm_up_seconds']:g} s of warm-up)"),
        ("predictions", f"{summary['predictions']} ({summary['predictions_per_second']:g}/s)"),
        ("click Predict to answer, p50", f"{times['p50']} ms"),
        ("click Predict to answer, p95", f"{times['p95']} ms"),
        ("click Predict to answer, max", f"{times['max']} ms"),
        ("each session's first answer, p50", f"{times['first_answer_p50']} ms"),
        (
            "server RSS right after warm-up, right after the run",
            f"{memory['after_warm_up']}, {memory['after_run']} MiB",
        ),
        (
            f"server RSS, median of the run's second and of its last {memory['window_seconds']:g} s",
            f"{memory['baseline_window_median']}, {memory['last_window_median']} MiB ({memory['growth']:+} MiB)",
        ),
        (
            f"server RSS every {MEMORY_SAMPLE_SECONDS} s of the run",
            ", ".join(f"{size:.0f}" for _, size in memory["curve"]) + " MiB",
        ),
        ("answers for another user's number", summary["wrong_answers"]),
        ("page errors", summary["page_errors"]),
        ("drawings made again (their canvas was re-mounted under the strokes)", summary["lost_drawings"]),
    ]
    table = "\n".join(["| measure | value |", "|---|---:|", *(f"| {name} | {value} |" for name, value in rows)])
    return (
        "# Load: many users at once\n\n"
        f"{summary.get('front', ONE_SERVER)}; {summary['sessions']} headless Chromium sessions, each drawing its "
        "own two-digit number with the mouse and pressing Predict again and again. Click to answer is timed in "
        "the page, from the click to the end of the app run that answers it.\n\n"
        f"{table}\n\n"
        f"{summary['cpu_count']} CPU cores, load average {summary['load_average_1min']} at the end "
        "(the browsers and the server share the machine). Measured by `python -m pytest tests/test_load.py -s` "
        "or `python -m benchmarks.load`.\n"
    )


def write_results(summary, results_dir=RESULTS_DIR):
    """benchmarks/results/load.md and load.json, or load_nginx.* for a run through nginx."""
    save_results(results_dir, "load_nginx" if summary["separate_clients"] else "load", markdown(summary), summary)


def front(replicas):
    """The server the sessions talk to, for the report."""
    if not replicas:
        return ONE_SERVER
    return (
        f"nginx in front of {replicas} `streamlit run app.py` replicas (`deploy/serve.py {replicas}`), "
        "each session from its own client address"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--seconds", type=float, default=LOAD_SECONDS)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--replicas",
        type=int,
        default=0,
        help="app replicas behind nginx, started by deploy/serve.py (0: one server, no nginx)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= len(NUMBERS):
        parser.error(f"--sessions must be between 1 and {len(NUMBERS)}: each draws a number of its own")
    if not browser.CHROMIUM.exists():
        sys.exit(f"error: needs Chromium at {browser.CHROMIUM}: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="deploy-") as state_dir:
        server = browser.Deployment(state_dir, args.replicas) if args.replicas else browser.AppServer()
        with server:
            summary = asyncio.run(
                run_load(
                    server.url, server.process.pid, args.sessions, args.seconds, separate_clients=bool(args.replicas)
                )
            )
    summary["front"] = front(args.replicas)
    write_results(summary, args.results_dir)
    print(markdown(summary))


if __name__ == "__main__":
    main()
