"""What hostile files and a flooding client cost a real server, against the targets of issue 15.

    python -m benchmarks.abuse
    python -m benchmarks.abuse --flood-seconds 20 --results-dir /tmp/results

1. Memory per upload: for each hostile file a fresh `streamlit run app.py` server, idle after
   one page load; the file is uploaded in Chromium and the server's peak resident memory
   (VmHWM, reset just before) is compared with that idle level. Target: at most 300 MB over
   it, whatever the file. (In one long-lived server, memory freed by one upload is reused by the
   next, which would hide what each costs.)
2. Rerun time: a session holding 10 uploads against an empty one, each rerun from the
   click on a sidebar toggle to the run's last message, in the page. Target: at most +200 ms.
3. A flood through nginx (`deploy/serve.py 2`): a client bound to another loopback address,
   sent by nginx to the same replica as the victim, floods requests and WebSocket reruns; the
   victim presses Predict in Chromium again and again. Target: click-to-answer p95 at most 2 s.
   For comparison, the same flood sent straight to that replica, past nginx.

Prints a table and writes benchmarks/results/abuse.md and abuse.json.
"""

import argparse
import contextlib
import os
import re
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

import datasets
from benchmarks import save_results
from tests import browser
from tests.hostile import Flood, float_tiff, png_bomb, sliver_png

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
SIDE_40MP = 6324  # just under decoding.MAX_PIXELS
DESKTOP = {"width": 1280, "height": 900}
UPLOADS_HELD = 10
RERUNS = 10  # timed reruns per session
FLOOD_SECONDS = 30
UNPROTECTED_SECONDS = 15  # the flood past nginx: answers stop coming, so this part is short
ANSWER_TIMEOUT_MS = 30_000
CANDIDATE_FLOODERS = [f"127.0.0.{number}" for number in range(2, 40)]
TARGETS = {"upload_mb": 300, "rerun_extra_ms": 200, "flood_p95_s": 2.0}
# The time from a click (recorded in the page) to the last message of the run it caused.
CLICK_TO_LAST_MESSAGE = "clickedAt => window.appLastMessageAt - clickedAt"
# An upload's run is over when its results are shown (one file: its picture's caption or its
# error; several: the table, unless every one failed) and the app has stopped running. An
# upload sends more than one message (first the request for upload addresses), so waiting for
# quiet is not enough.
RESULTS_SHOWN = f"""count => {{
  const errors = document.querySelectorAll('[data-testid="stAlertContentError"]').length;
  const captions = document.querySelectorAll('[data-testid="stImageCaption"]').length;
  const table = document.querySelector('[data-testid="stDataFrame"]') !== null;
  return (errors >= count || (count === 1 ? captions > 0 : table)) && {browser.APP_NOT_RUNNING};
}}"""


def hostile_files(folder):
    """The files of the issue and a few more, written to folder: name -> path."""
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(190, 8, (4000, 6000)), 0, 255).astype(np.uint8)
    cv2.putText(photo, "2026", (1200, 2600), cv2.FONT_HERSHEY_SIMPLEX, 40, 40, 120)
    files = {
        "1-bit PNG, 40 MP (5 kB)": ("onebit.png", png_bomb(SIDE_40MP, SIDE_40MP)),
        "float TIFF, 40 MP (160 kB)": ("float.tif", float_tiff(SIDE_40MP, SIDE_40MP)),
        "float TIFF in one strip, 40 MP": ("one_strip.tif", float_tiff(SIDE_40MP, SIDE_40MP, SIDE_40MP)),
        "RGBA PNG, 40 MP": ("rgba.png", png_bomb(SIDE_40MP, SIDE_40MP, 8, "rgba")),
        "palette PNG, 40 MP": ("palette.png", png_bomb(SIDE_40MP, SIDE_40MP, 8, "palette")),
        "16-bit grey PNG, 40 MP": ("grey16.png", png_bomb(SIDE_40MP, SIDE_40MP, 16, "grey")),
        "PNG bomb, 900 MP": ("bomb.png", png_bomb(30_000, 30_000)),
        "sliver PNG, 3000x1": ("sliver.png", sliver_png(3000, 1)),
        "24 MP photo JPEG": ("photo.jpg", cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()),
    }
    paths = {}
    for label, (name, data) in files.items():
        paths[label] = folder / name
        paths[label].write_bytes(data)
    return paths


def number_pictures(folder, count):
    """count PNGs of three MNIST test digits each, as black ink on white paper."""
    _, (images, _) = datasets.load_mnist(datasets.resolve_data_dir())
    paths = []
    for index in range(count):
        path = folder / f"number_{index}.png"
        path.write_bytes(browser.png_bytes(browser.paper_picture(images[3 * index : 3 * index + 3], scale=12)))
        paths.append(path)
    return paths


def memory_status(pid):
    """(VmRSS, VmHWM) of a process in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return tuple(int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) * 1024 for key in ("VmRSS", "VmHWM"))


def upload_page(context, url):
    """A new session showing the Upload tab, and its file input."""
    page = browser.open_app(context, url)
    page.get_by_role("tab", name="Upload").click()
    return page, browser.upload_input(page)


def upload_memory(chromium, paths):
    """For each file (and 8 of the worst at once): MB over a fresh server's idle level, and what the page said."""
    results = {}
    batches = {
        **{label: [path] for label, path in paths.items()},
        "8 float TIFFs at once": [paths["float TIFF, 40 MP (160 kB)"]] * 8,
    }
    for label, files in batches.items():
        with browser.AppServer() as server:
            results[label] = upload_once(chromium, server, files)
        print(f"  {label}: {results[label]}", flush=True)
    return results


def upload_once(chromium, server, files):
    """Upload the files in a new session: the server's peak over its level before, seconds, what the page said."""
    context = chromium.new_context(viewport=DESKTOP)
    page, file_input = upload_page(context, server.url)
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")  # the peak starts again from here
    before, _ = memory_status(server.process.pid)
    started = time.perf_counter()
    file_input.set_input_files(
        [
            {"name": f"{index}_{path.name}", "mimeType": "application/octet-stream", "buffer": path.read_bytes()}
            for index, path in enumerate(files)
        ]
    )
    page.wait_for_function(RESULTS_SHOWN, arg=len(files), timeout=120_000, polling=50)
    seconds = time.perf_counter() - started
    _, peak = memory_status(server.process.pid)
    errors = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    crashed = page.locator('[data-testid="stException"]').count()
    context.close()
    return {
        "over_level_mb": round((peak - before) / 2**20, 1),
        "seconds": round(seconds, 2),
        "refused": sorted({error.split(": ", 1)[-1] for error in errors}),
        "tracebacks": crashed,
    }


def rerun_milliseconds(page, count=RERUNS):
    """Reruns caused by flipping the sidebar's live toggle: page-timed, click to the run's last message."""
    toggle = page.locator(".st-key-live label")
    times = []
    for _ in range(count):
        clicked = page.evaluate("performance.now()")
        browser.after_rerun(page, toggle.click)
        times.append(page.evaluate(CLICK_TO_LAST_MESSAGE, clicked))
    return times


def rerun_cost(chromium, server, pictures):
    """Rerun times (ms) of an empty session and of one holding the pictures, and the memory the latter holds."""
    context = chromium.new_context(viewport=DESKTOP)
    empty_page, _ = upload_page(context, server.url)
    empty = rerun_milliseconds(empty_page)
    before, _ = memory_status(server.process.pid)
    held_page, file_input = upload_page(context, server.url)
    file_input.set_input_files(pictures)
    held_page.wait_for_function(RESULTS_SHOWN, arg=len(pictures), timeout=120_000, polling=50)
    browser.wait_until_quiet(held_page)
    held = rerun_milliseconds(held_page)
    after, _ = memory_status(server.process.pid)
    context.close()
    rounded = {name: [round(value, 1) for value in values] for name, values in (("empty", empty), ("held", held))}
    return {
        **{f"{name}_ms": values for name, values in rounded.items()},
        **{f"{name}_median_ms": round(statistics.median(values), 1) for name, values in rounded.items()},
        "extra_median_ms": round(statistics.median(held) - statistics.median(empty), 1),
        "session_memory_mb": round((after - before) / 2**20, 1),
    }


def predict_seconds(page):
    """Press Predict; (seconds from the click to the run's last message, the answer shown), or (None, None)."""
    clicked = page.evaluate("performance.now()")
    try:
        browser.after_rerun(page, lambda: page.locator(".st-key-predict button").click())
    except PlaywrightTimeout:
        return None, None
    return page.evaluate(CLICK_TO_LAST_MESSAGE, clicked) / 1000, browser.answer_locator(page).inner_text()


def health_seconds(url):
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=ANSWER_TIMEOUT_MS / 1000) as response:
            response.read()
    except OSError:
        return None
    return time.perf_counter() - started


def victim_under(page, url, seconds, flood=None):
    """Predict again and again for `seconds` (under the flood when one is given), health checks beside it."""
    health, stop = [], threading.Event()

    def check():
        while not stop.is_set():
            health.append(health_seconds(url))
            stop.wait(0.25)

    checker = threading.Thread(target=check, daemon=True)
    checker.start()
    answers, until = [], time.monotonic() + seconds
    try:
        with flood or contextlib.nullcontext():
            while time.monotonic() < until:
                answers.append(predict_seconds(page))
    finally:
        stop.set()
        checker.join()
    answered = sorted(seconds for seconds, _ in answers if seconds is not None)
    checked = sorted(value for value in health if value is not None)
    summary = {
        "clicks": len(answers),
        "unanswered": sum(seconds is None for seconds, _ in answers),
        "wrong_answers": sum(text not in (None, "7") for _, text in answers),
        "p50_s": round(float(np.percentile(answered, 50)), 3) if answered else None,
        "p95_s": round(float(np.percentile(answered, 95)), 3) if answered else None,
        "max_s": round(answered[-1], 3) if answered else None,
        "health_p95_s": round(float(np.percentile(checked, 95)), 3) if checked else None,
        "health_failures": sum(value is None for value in health),
    }
    if flood:
        summary |= {"flood_websocket_messages": flood.messages_sent, "flood_http": flood.statuses}
    return summary


def flood_through_nginx(chromium, state_dir, seconds):
    """The victim's answers without a flood, under one through nginx, and under the same flood past nginx."""
    with browser.Deployment(state_dir, replicas=2) as deployment:
        replica = deployment.replica_of("127.0.0.1")
        flooder = next(address for address in CANDIDATE_FLOODERS if deployment.replica_of(address) == replica)
        context = chromium.new_context(viewport=DESKTOP)
        page = browser.open_app(context, deployment.url)
        page.set_default_timeout(ANSWER_TIMEOUT_MS)
        browser.draw_with_mouse(page, browser.SEVEN)
        results = {
            "flooder": flooder,
            "replica": replica,
            "quiet": victim_under(page, deployment.url, 10),
            "flood through nginx": victim_under(
                page, deployment.url, seconds, Flood("127.0.0.1", deployment.port, flooder)
            ),
        }
        replica_port = int(replica.rsplit(":", 1)[1])
        results["flood past nginx, straight to the replica"] = victim_under(
            page, deployment.url, UNPROTECTED_SECONDS, Flood("127.0.0.1", replica_port, flooder, http_threads=0)
        )
        context.close()
    return results


def markdown(summary):
    """The report as a Markdown page."""
    uploads, reruns, flood = summary["uploads"], summary["reruns"], summary["flood"]
    worst = max(result["over_level_mb"] for result in uploads.values())
    lines = [
        "# Hostile input and a flooding client against the server",
        "",
        "Measured by `python -m benchmarks.abuse` on a {cpu_count}-core machine; one-minute load average {0} "
        "at the start and {1} at the end (other work on the machine slows every figure).".format(
            *summary["load_average_1min"], **summary
        ),
        "",
        f"## Memory per upload (target: at most {TARGETS['upload_mb']} MB over the level before)",
        "",
        "| upload | server peak over its level before | time to the answer | refused with | tracebacks |",
        "|---|---:|---:|---|---:|",
        *(
            f"| {label} | {result['over_level_mb']} MB | {result['seconds']} s | "
            f"{'; '.join(result['refused']) or '-'} | {result['tracebacks']} |"
            for label, result in uploads.items()
        ),
        "",
        f"Worst case: {worst} MB. A session keeps {reruns['session_memory_mb']} MB for {UPLOADS_HELD} uploaded "
        "pictures of numbers (their results and display pictures).",
        "",
        f"## Rerun time (target: at most +{TARGETS['rerun_extra_ms']} ms with {UPLOADS_HELD} uploads)",
        "",
        "| session | rerun, median | all reruns |",
        "|---|---:|---|",
        f"| empty | {reruns['empty_median_ms']} ms | {', '.join(map(str, reruns['empty_ms']))} |",
        f"| {UPLOADS_HELD} uploads (the table; no file picked for its full result) | {reruns['held_median_ms']} ms | "
        f"{', '.join(map(str, reruns['held_ms']))} |",
        "",
        f"Extra for holding {UPLOADS_HELD} uploads: {reruns['extra_median_ms']:+} ms. Timed in the page, from the "
        "click on the sidebar's toggle to the last message of the rerun: the browser's drawing of the page counts.",
        "",
        f"## Another client's Predict under a one-client flood (target: p95 at most {TARGETS['flood_p95_s']} s)",
        "",
        f"Flooder {flood['flooder']}, sent by nginx to the victim's replica ({flood['replica']}): 8 threads of "
        "health checks and 4 WebSockets replaying reruns as fast as they go.",
        "",
        "| condition | clicks | unanswered | p50 | p95 | max | health check p95 | flood messages written "
        "| flood HTTP answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for condition in ("quiet", "flood through nginx", "flood past nginx, straight to the replica"):
        result = flood[condition]
        lines.append(
            f"| {condition} | {result['clicks']} | {result['unanswered']} | {result['p50_s']} s | "
            f"{result['p95_s']} s | {result['max_s']} s | {result['health_p95_s']} s | "
            f"{result.get('flood_websocket_messages', '-'):,} | {result.get('flood_http', '-')} |"
            if condition != "quiet"
            else f"| {condition} | {result['clicks']} | {result['unanswered']} | {result['p50_s']} s | "
            f"{result['p95_s']} s | {result['max_s']} s | {result['health_p95_s']} s | - | - |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--flood-seconds", type=float, default=FLOOD_SECONDS)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="abuse-") as folder, sync_playwright() as playwright:
        folder = Path(folder)
        chromium = browser.launch_chromium(playwright)
        try:
            print("memory per upload:", flush=True)
            uploads = upload_memory(chromium, hostile_files(folder))
            with browser.AppServer() as server:
                print("reruns:", flush=True)
                reruns = rerun_cost(chromium, server, number_pictures(folder, UPLOADS_HELD))
            print("flood:", flush=True)
            flood = flood_through_nginx(chromium, folder / "deploy", args.flood_seconds)
        finally:
            chromium.close()
    summary = {
        "uploads": uploads,
        "reruns": reruns,
        "flood": flood,
        "targets": TARGETS,
        "cpu_count": os.cpu_count(),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    save_results(args.results_dir, "abuse", markdown(summary), summary)
    print(markdown(summary))


if __name__ == "__main__":
    main()
