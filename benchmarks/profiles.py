"""Profile database speed: writes, reads and the load of a 1,000-example profile, medians on a real SQLite file.

    python -m benchmarks.profiles                       # a fresh database in a temporary folder
    python -m benchmarks.profiles --results-dir /tmp/results

Each example is what the app keeps for a correction: a 28x28 image and the digit's
pen strokes (two strokes, 120 points, as a canvas digit has). Writes
benchmarks/results/profiles.md and profiles.json.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import profiles
import strokes
from benchmarks import devset, save_results

WRITES = 300
READS = 300
LOADS = 30
PROFILE_SIZE = 1_000
TARGETS_MS = {"write": 5.0, "read": 5.0, "load_1000": 100.0}  # the targets


def example_drawing(rng):
    """A canvas digit's strokes: two strokes of 60 points each in a 280x280 canvas."""
    angles = np.linspace(0, 2 * np.pi, 60)
    loop = np.column_stack([140 + 50 * np.cos(angles), 100 + 40 * np.sin(angles)]) + rng.normal(0, 1, (60, 2))
    tail = np.column_stack([np.full(60, 190.0), np.linspace(100, 250, 60)]) + rng.normal(0, 1, (60, 2))
    return strokes.Drawing(280.0, 280.0, 20.0, (loop, tail))


def example_image(rng):
    return rng.random((28, 28), dtype=np.float32)


def median_ms(function, runs):
    """Median and p95 milliseconds of runs calls of function(index)."""
    seconds = []
    for index in range(runs):
        started = time.perf_counter()
        function(index)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, float(np.percentile(seconds, 95)) * 1000


def measure(folder):
    rng = np.random.default_rng(devset.SEED)
    store = profiles.ProfileStore(Path(folder) / "profiles.sqlite3")
    token = store.create_profile()
    drawings = [example_drawing(rng) for _ in range(50)]
    images = [example_image(rng) for _ in range(50)]
    figures = {}
    figures["write"] = median_ms(
        lambda index: store.add_example(token, index % 10, images[index % 50], drawings[index % 50]), WRITES
    )
    small = store.create_profile()
    store.add_examples(small, [(index, images[index], drawings[index]) for index in range(10)])
    figures["read"] = median_ms(lambda index: store.examples(small), READS)
    figures["count"] = median_ms(lambda index: store.count(small), READS)
    large = store.create_profile()
    store.add_examples(large, [(index % 10, images[index % 50], drawings[index % 50]) for index in range(PROFILE_SIZE)])
    figures["load_1000"] = median_ms(lambda index: store.examples(large), LOADS)

    def cold_load(index):  # a new process's first read: connection, schema check and the load
        fresh = profiles.ProfileStore(store.path)
        fresh.examples(large)
        fresh.close()

    figures["cold_load_1000"] = median_ms(cold_load, LOADS)
    figures["zip_1000"] = median_ms(lambda index: profiles.examples_zip(store.examples(large)), 3)
    figures["forget"] = median_ms(lambda index: store.forget(store.create_profile()), 50)
    store.close()
    return {name: {"p50_ms": round(p50, 3), "p95_ms": round(p95, 3)} for name, (p50, p95) in figures.items()}


NAMES = {
    "write": "write one correction (image + strokes), own transaction",
    "read": "read a 10-example profile",
    "count": "count a profile's examples (each app rerun)",
    "load_1000": "load a 1,000-example profile",
    "cold_load_1000": "load it from a new connection (open, schema check, load)",
    "zip_1000": "export 1,000 examples as a zip",
    "forget": "Forget me (profile and rows deleted)",
}


def markdown_table(figures):
    rows = ["| operation | p50 | p95 | target (p50) |", "|---|---:|---:|---|"]
    for name, label in NAMES.items():
        target = TARGETS_MS.get(name)
        verdict = (
            ""
            if target is None
            else (f"at most {target:g} ms: {'met' if figures[name]['p50_ms'] <= target else 'MISSED'}")
        )
        rows.append(f"| {label} | {figures[name]['p50_ms']:.2f} ms | {figures[name]['p95_ms']:.2f} ms | {verdict} |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", type=Path, default=devset.RESULTS_DIR)
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        figures = measure(folder)
    table = markdown_table(figures)
    settings = (
        f"SQLite {profiles.sqlite3.sqlite_version}, WAL, {os.cpu_count()} CPU cores, load average "
        f"{load_at_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end; "
        f"{WRITES} writes, {READS} reads, {LOADS} loads, by `python -m benchmarks.profiles`."
    )
    print(table)
    print(settings)
    save_results(
        args.results_dir,
        "profiles",
        f"# Profile database speed\n\n{table}\n\n{settings}\n",
        {"sqlite_version": profiles.sqlite3.sqlite_version, "cpu_count": os.cpu_count(), **figures},
    )
    print(f"wrote {args.results_dir / 'profiles.md'} and profiles.json")


if __name__ == "__main__":
    main()
