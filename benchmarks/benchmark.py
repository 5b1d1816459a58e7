"""Speed, memory, size and accuracy of our pipeline beside the seeds' way, measured in one run.

    python -m benchmarks.benchmark
    python -m benchmarks.benchmark --model /tmp/q/digit_model.keras --profile

Ours: Recognizer (ONNX Runtime, MNIST-style crop and centring of each digit).
Seeds' way: TensorFlow's Keras model.predict on the whole canvas resized to 28x28,
one call per image (benchmarks.devset.seeds_way), and a Streamlit app that imports
TensorFlow at start. Prints a table (metric | ours | seeds' way | ours better by |
target) and writes benchmarks/results/benchmark.md and benchmark.json. Medians
throughout; timings are wall-clock, so other work on the machine slows both columns:
the one-minute load average at the start and end is recorded beside them.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up notices would bury the table

import cv2
import numpy as np

from benchmarks import devset, save_results
from benchmarks.memory import MemorySampler
from recognizer import DEFAULT_MODEL, onnx_path_for
from tests import browser as helpers  # the browser tests' app driving: Chromium, drawing, reruns

ROOT = devset.ROOT
RESULTS_DIR = devset.RESULTS_DIR
SEED = devset.SEED
LATENCY_RUNS = 300  # single-canvas timings: enough for a stable 95th percentile
SEEDS_LATENCY_RUNS = 100  # model.predict takes tens of ms a call: fewer runs give the same median
WARMUP_RUNS = 10  # first calls allocate buffers and compile graphs
BATCH_DIGITS = 10_000  # the MNIST test set
MANY_CANVASES = 1_000  # recognize_many end to end
REPEATS = 3  # throughput and import timings: the median of this many runs
DEVSET_PER_CONDITION = 100  # a small dev set: the full one is `python -m benchmarks.devset`
DEVSET_NUMBERS = 50
APP_REPEATS = 3  # cold starts of each app: the median of three
HEALTH_TIMEOUT_S = 90  # a busy 2-core machine can take long to start a server
RSS_SAMPLE_SECONDS = 0.05
MEGABYTE = 1_000_000  # files and memory alike, in decimal megabytes
TRAINING_BUDGET_MINUTES = 45  # a full train.py run on this 2-core CPU, the sources' rendering included

# The seeds' app, rebuilt for the comparison: TensorFlow imported at start, the whole
# canvas resized to 28x28, model.predict on it.
SEEDS_APP = """
import os

import numpy as np
import streamlit as st
import tensorflow as tf
from streamlit_drawable_canvas import st_canvas

from benchmarks.devset import seeds_way


@st.cache_resource
def load_model():
    return tf.keras.models.load_model(os.environ["DIGIT_MODEL"])


model = load_model()
st.title("Digit recognizer")
canvas = st_canvas(stroke_width=20, stroke_color="#ffffff", background_color="#000000",
                   height=280, width=280, return_image_data=True, key="canvas")
if st.button("Predict", key="predict") and canvas.image_data is not None:
    probabilities = model.predict(seeds_way(canvas.image_data)[None], verbose=0)[0]
    st.markdown(f"Prediction: **{int(np.argmax(probabilities))}**")
"""

# Import and model load in a fresh interpreter: what the app and the command line pay once.
# Memory is the RSS afterwards: getrusage's peak would include this benchmark's own, which
# Linux carries across fork and exec.
OURS_IMPORT = """
import json, sys, time, psutil
started = time.perf_counter()
import recognizer
model = recognizer.Recognizer(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - started, "backend": model.backend_name,
                  "rss_bytes": psutil.Process().memory_info().rss}))
"""
SEEDS_IMPORT = """
import json, sys, time, psutil
started = time.perf_counter()
import tensorflow
model = tensorflow.keras.models.load_model(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - started, "backend": "keras",
                  "rss_bytes": psutil.Process().memory_info().rss}))
"""


def row(metric, ours, seeds=None, unit="", better="lower", target=None, note=""):
    """One line of the results table; target is the limit ours must meet (<= when lower is better)."""
    return {
        "metric": metric,
        "ours": ours,
        "seeds": seeds,
        "unit": unit,
        "better": better,
        "target": target,
        "note": note,
    }


def percentiles(seconds):
    """(p50, p95) in milliseconds."""
    return tuple(float(np.percentile(np.asarray(seconds) * 1000, percent)) for percent in (50, 95))


def time_each(function, inputs, runs):
    """Seconds per call of function on inputs[i % len(inputs)], after a warm-up."""
    for index in range(WARMUP_RUNS):
        function(inputs[index % len(inputs)])
    seconds = []
    for index in range(runs):
        started = time.perf_counter()
        function(inputs[index % len(inputs)])
        seconds.append(time.perf_counter() - started)
    return seconds


def median_seconds(function, repeats=REPEATS):
    """The median wall time of function() over repeats runs, after one warm-up run."""
    function()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


def decode_png(data):
    """The RGBA array of a PNG file, decoded the plain OpenCV way."""
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)


def app_canvases(images, count, seed):
    """count 280x280 drawings as the app's canvas returns them (black ink on opaque white paper)."""
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(images), size=count, replace=False)
    return [devset.make_canvas_digit(images[index], rng, "black_on_white") for index in indices]


def seeds_predict(model, image):
    """The seeds' way for one image: plain resize, then one model.predict call."""
    return model.predict(devset.seeds_way(image)[None], verbose=0)[0]


def latency_rows(recognizer, keras_model, canvases):
    """Single-canvas latency, end to end from a PNG and from the decoded RGBA array."""
    files = [helpers.png_bytes(canvas) for canvas in canvases]
    ours_png = percentiles(time_each(recognizer.recognize, files, LATENCY_RUNS))
    ours_array = percentiles(time_each(recognizer.recognize, canvases, LATENCY_RUNS))
    seeds_png = percentiles(
        time_each(lambda data: seeds_predict(keras_model, decode_png(data)), files, SEEDS_LATENCY_RUNS)
    )
    seeds_array = percentiles(time_each(lambda image: seeds_predict(keras_model, image), canvases, SEEDS_LATENCY_RUNS))
    return [
        row("single canvas from PNG, p50", ours_png[0], seeds_png[0], "ms", target=1.0),
        row("single canvas from PNG, p95", ours_png[1], seeds_png[1], "ms"),
        row("single canvas from RGBA array, p50", ours_array[0], seeds_array[0], "ms", target=1.0),
        row("single canvas from RGBA array, p95", ours_array[1], seeds_array[1], "ms"),
    ]


def throughput_rows(recognizer, keras_model, test_digits, canvases):
    """Digits per second on prepared 28x28 batches, and canvases per second end to end."""
    ours = len(test_digits) / median_seconds(lambda: recognizer.probabilities(test_digits))
    seeds = len(test_digits) / median_seconds(lambda: keras_model.predict(test_digits, verbose=0))
    ours_many = len(canvases) / median_seconds(lambda: recognizer.recognize_many(canvases))
    seeds_many = len(canvases) / median_seconds(
        lambda: keras_model.predict(np.stack([devset.seeds_way(canvas) for canvas in canvases]), verbose=0)
    )
    return [
        row(f"batch throughput, {len(test_digits):,} prepared digits", ours, seeds, "digits/s", "higher", 10_000),
        row(f"batch throughput, {len(canvases):,} canvases end to end", ours_many, seeds_many, "canvases/s", "higher"),
    ]


def accuracy_rows(recognizer, keras_model, test_digits, test_labels, images, labels, seed):
    """MNIST test accuracy of both backends, and a small dev set per condition."""
    ours = recognizer.probabilities(test_digits).argmax(axis=1)
    keras_predictions = keras_model.predict(test_digits, verbose=0).argmax(axis=1)
    agreement = f"{int((ours == keras_predictions).sum()):,} of {len(ours):,} predictions agree"
    rows = [
        row(
            "MNIST test accuracy",
            float((ours == test_labels).mean()) * 100,
            float((keras_predictions == test_labels).mean()) * 100,
            "%",
            "higher",
            99.6,
            f"seeds' column: the same .keras run by Keras; {agreement}",
        )
    ]
    devset_rows = devset.run_conditions(recognizer, images, labels, DEVSET_PER_CONDITION, DEVSET_NUMBERS, seed)
    for name, result in devset_rows.items():
        rows.append(
            row(
                f"dev set: {name} ({result['count']})",
                result["ours_accuracy"] * 100,
                result["seeds_accuracy"] * 100,
                "%",
                "higher",
                note=f"{result['ours_uncertain']:.0%} of ours uncertain",
            )
        )
    return rows


def import_cost(code, model_path):
    """Median seconds and resident memory (MB) after running code in fresh interpreters."""
    results = []
    for _ in range(REPEATS):
        completed = subprocess.run(
            [sys.executable, "-c", code, str(model_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        if completed.returncode != 0:
            raise RuntimeError(f"the import measurement failed:\n{completed.stderr[-2000:]}")
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    seconds = float(np.median([result["seconds"] for result in results]))
    rss = float(np.median([result["rss_bytes"] for result in results])) / MEGABYTE
    return seconds, rss, results[0]["backend"]


def import_rows(model_path):
    ours_seconds, ours_rss, backend = import_cost(OURS_IMPORT, model_path)
    seeds_seconds, seeds_rss, _ = import_cost(SEEDS_IMPORT, model_path)
    note = f"ours: `import recognizer; Recognizer()` ({backend}); seeds: `import tensorflow; load_model`"
    return [
        row("import and model load, fresh process", ours_seconds * 1000, seeds_seconds * 1000, "ms", note=note),
        row("import and model load, RSS after", ours_rss, seeds_rss, "MB"),
    ]


def file_rows(model_path):
    """Model file sizes and the training time recorded by train.py."""
    keras_megabytes = model_path.stat().st_size / MEGABYTE
    onnx_path = onnx_path_for(model_path)
    onnx_megabytes = onnx_path.stat().st_size / MEGABYTE if onnx_path.is_file() else None
    rows = [
        row(
            "model file the app loads",
            onnx_megabytes if onnx_megabytes is not None else keras_megabytes,
            keras_megabytes,
            "MB",
            target=2.0,
            note="ours: .onnx (.keras when no export); seeds: .keras",
        ),
        row("model file, .keras", keras_megabytes, None, "MB", target=2.0),
    ]
    metrics_path = model_path.with_name(model_path.stem + ".metrics.json")
    try:
        metrics = json.loads(metrics_path.read_text())
        minutes = (metrics["training_seconds"] + metrics.get("rendering_seconds", 0)) / 60
        note = f"from {metrics_path.name}" + (", quick mode" if metrics.get("quick_mode") else "")
    except (OSError, ValueError, KeyError, TypeError):
        minutes, note = None, f"{metrics_path.name} missing"
    rows.append(
        row("training time, rendering included", minutes, None, "min", target=TRAINING_BUDGET_MINUTES, note=note)
    )
    return rows


def measure_app(browser, script, model_path, read_answer):
    """Cold start (health, then canvas visible), click-to-answer time and peak RSS of one app.

    Without a browser only the health check and the memory of the idle server are measured.
    """
    port = helpers.free_port()
    environment = {
        **os.environ,
        "DIGIT_MODEL": str(model_path),
        "PYTHONPATH": str(ROOT),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
    ]
    context = browser.new_context(viewport={"width": 1280, "height": 900}) if browser else None
    usable = answered = answer = None
    started = time.perf_counter()
    server = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    memory = MemorySampler(server.pid, RSS_SAMPLE_SECONDS, include_children=True)
    try:
        healthy = _wait_for_health(port, server) - started
        if context:
            # Usable: the canvas is on screen with its empty drawing loaded, and the app is idle.
            page = helpers.open_app(context, f"http://127.0.0.1:{port}")
            usable = time.perf_counter() - started
            helpers.draw_with_mouse(page, helpers.SEVEN)
            clicked = time.perf_counter()
            helpers.click_and_wait(page, ".st-key-predict")  # both apps key their button "predict"
            answer = read_answer(page)
            answered = (time.perf_counter() - clicked) * 1000
    finally:
        if context:
            context.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        memory.stop()
        peak = memory.peak / MEGABYTE
    return {"health_s": healthy, "canvas_s": usable, "answer_ms": answered, "peak_rss_mb": peak, "answer": answer}


def _wait_for_health(port, server):
    """The time when the server first answers its health check."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return time.perf_counter()
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"the app did not answer its health check within {HEALTH_TIMEOUT_S} s")


def app_rows(model_path):
    """Cold start and memory of app.py and of the seeds' app; 'app.py missing' rows without it."""
    names = [
        "app cold start to health check",
        "app cold start to usable canvas (loaded, app idle)",
        "app click Predict to answer",
        "app peak RSS (page load and a prediction)",
    ]
    if not (ROOT / "app.py").is_file():
        return [row(name, None, note="app.py missing") for name in names]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    with tempfile.TemporaryDirectory() as folder:
        seeds_script = Path(folder) / "seeds_app.py"
        seeds_script.write_text(SEEDS_APP)
        if sync_playwright is None or not helpers.CHROMIUM.is_file():
            ours_runs, seeds_runs = _run_apps(None, seeds_script, model_path)
            browser_note = "no browser (playwright or /usr/bin/chromium missing): idle server only"
        else:
            with sync_playwright() as playwright:
                chromium = helpers.launch_chromium(playwright)
                try:
                    ours_runs, seeds_runs = _run_apps(chromium, seeds_script, model_path)
                finally:
                    chromium.close()
            browser_note = "server process and its children"
    ours = {key: _median_or_value([run[key] for run in ours_runs]) for key in ours_runs[0]}
    seeds = {key: _median_or_value([run[key] for run in seeds_runs]) for key in seeds_runs[0]}
    note = (
        f"median of {APP_REPEATS} cold starts; answers read: ours {ours['answer']!r}, "
        f"seeds {seeds['answer']!r} (a drawn 7)"
    )
    return [
        row(names[0], ours["health_s"], seeds["health_s"], "s", note=note),
        row(names[1], ours["canvas_s"], seeds["canvas_s"], "s", target=5.0),
        row(
            names[2],
            ours["answer_ms"],
            seeds["answer_ms"],
            "ms",
            note="until the answer is shown and the connection has been quiet for a moment",
        ),
        row(names[3], ours["peak_rss_mb"], seeds["peak_rss_mb"], "MB", target=700.0, note=browser_note),
    ]


def _run_apps(chromium, seeds_script, model_path):
    """APP_REPEATS measurements of each app, alternated so that both see the same machine."""
    ours_runs, seeds_runs = [], []
    for _ in range(APP_REPEATS):
        ours_runs.append(
            measure_app(chromium, ROOT / "app.py", model_path, lambda page: helpers.answer_locator(page).inner_text())
        )
        seeds_runs.append(
            measure_app(chromium, seeds_script, model_path, lambda page: page.get_by_text("Prediction:").inner_text())
        )
    return ours_runs, seeds_runs


def _median_or_value(values):
    """The median of numbers; the first of anything else (the answers read, or None when not measured)."""
    return float(np.median(values)) if isinstance(values[0], (int, float)) else values[0]


def profile_recognize(recognizer, canvases):
    """The top of a cProfile of recognize() on RGBA canvases, as text."""
    profiler = cProfile.Profile()
    profiler.enable()
    for index in range(LATENCY_RUNS):
        recognizer.recognize(canvases[index % len(canvases)])
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(15)
    return stream.getvalue()


def _number(value, unit):
    if value is None:
        return "n/a"
    if unit in ("%", "MB"):
        return f"{value:.2f}" if unit == "%" else f"{value:.1f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def advantage(entry):
    """How many times better ours is (above 1) or worse (below 1), for times, rates and sizes."""
    ours, seeds = entry["ours"], entry["seeds"]
    if ours is None or seeds is None or entry["unit"] == "%" or not ours or not seeds:
        return None
    return seeds / ours if entry["better"] == "lower" else ours / seeds


def target_text(entry):
    if entry["target"] is None:
        return ""
    sign = "<=" if entry["better"] == "lower" else ">="
    limit = f"{sign} {_number(entry['target'], entry['unit'])} {entry['unit']}"
    if entry["ours"] is None:
        return limit
    met = entry["ours"] <= entry["target"] if entry["better"] == "lower" else entry["ours"] >= entry["target"]
    return f"{limit}: {'met' if met else 'MISSED'}"


def markdown_table(rows):
    lines = ["| metric | ours | seeds' way | ours better by | target | note |", "|---|---:|---:|---:|---|---|"]
    for entry in rows:
        unit = f" {entry['unit']}" if entry["unit"] else ""
        ours = _number(entry["ours"], entry["unit"]) + (unit if entry["ours"] is not None else "")
        seeds = _number(entry["seeds"], entry["unit"]) + (unit if entry["seeds"] is not None else "")
        factor = advantage(entry)
        factor_text = "" if factor is None else f"{factor:.3g}x"
        cells = [entry["metric"], ours, seeds, factor_text, target_text(entry), entry["note"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data root holding mnist/ (default: $DIGIT_DATA_DIR, then ../shared/data, then ./data; "
        "$MNIST_DIR overrides mnist/ alone)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--skip-app", action="store_true", help="leave out the app cold-start rows")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of recognize()")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model_path = args.model.resolve()
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    (images, labels), recognizer = devset.load_or_exit(args.data_dir, model_path)
    test_digits = (images[:BATCH_DIGITS].astype(np.float32) / 255)[..., None]
    import keras  # the seeds' way, in the same process so that both run under the same load

    keras_model = keras.models.load_model(model_path)
    canvases = app_canvases(images, MANY_CANVASES, args.seed)
    rows = latency_rows(recognizer, keras_model, canvases[:LATENCY_RUNS])
    rows += throughput_rows(recognizer, keras_model, test_digits, canvases)
    rows += accuracy_rows(recognizer, keras_model, test_digits, labels[:BATCH_DIGITS], images, labels, args.seed)
    rows += file_rows(model_path)
    rows += import_rows(model_path)
    if not args.skip_app:
        rows += app_rows(model_path)
    seconds = time.perf_counter() - started
    table = markdown_table(rows)
    print(table)
    load_at_end = os.getloadavg()[0]
    settings = (
        f"Model `{model_path.name}` ({recognizer.backend_name} backend), {os.cpu_count()} CPU cores, "
        f"load average {load_at_start:.1f} at the start and {load_at_end:.1f} at the end, "
        f"measured in {seconds:.0f} s by `python -m benchmarks.benchmark`."
    )
    if recognizer.backend_name != "onnx":
        settings += (
            " **Warning:** the ONNX export is missing or older than the .keras file, so 'ours' ran on "
            "Keras; run `python export.py` and measure again."
        )
    print(settings)
    if args.profile:
        print(profile_recognize(recognizer, canvases))
    markdown = (
        "# Benchmark\n\n"
        "*Ours*: `Recognizer` (ONNX Runtime, each digit cropped and centred like MNIST). *Seeds' way*: Keras "
        "`model.predict` on the whole canvas resized to 28x28, one call per image, and a Streamlit app that "
        "imports TensorFlow at start. Both measured in the same run; medians of repeated runs. "
        "*Ours better by*: how many times faster, smaller or higher ours is (below 1: worse).\n\n"
        f"{table}\n\n{settings}\n"
    )
    summary = {
        "model": str(model_path),
        "backend": recognizer.backend_name,
        "cpu_count": os.cpu_count(),
        "load_average": [round(load_at_start, 2), round(load_at_end, 2)],
        "seconds": round(seconds, 1),
        "rows": rows,
    }
    save_results(args.results_dir, "benchmark", markdown, summary)
    print(f"wrote {args.results_dir / 'benchmark.md'} and benchmark.json")


if __name__ == "__main__":
    main()
