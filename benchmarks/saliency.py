"""Saliency speed: milliseconds per digit for the app's "why it said that" view.

    python -m benchmarks.saliency                               # 300 drawn digits, the shipped model
    python -m benchmarks.saliency --digits 50 --results-dir /tmp/results

Digits are the dev set's canvas drawings (MNIST test digits re-drawn with a brush),
read by the recognizer as the app reads them; each is then explained as the app
does (saliency.explain: the answer against the runner-up, on the recognizer's own
backend). Writes benchmarks/results/saliency.md and saliency.json.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

import saliency
from benchmarks import devset, save_results
from benchmarks.benchmark import percentiles, time_each
from recognizer import DEFAULT_MODEL

TARGET_MS = 30  # the target for one digit's saliency on this project's 2-core CPU
DIGITS = 300  # enough for a steady p95 in a few seconds


def drawn_digits(recognizer, images, labels, count, seed):
    """DigitResults of count dev-set canvas drawings, as the app would have them."""
    samples = devset.condition_samples("canvas transparent", images, labels, count, seed)
    readings = recognizer.recognize_many([picture for picture, _ in samples])
    return [digit for reading in readings for digit in reading.digits]


def measure(recognizer, digits):
    """Per-digit timings and the number of occluded images read per digit."""
    seconds = time_each(lambda digit: saliency.explain(recognizer, digit), digits, runs=len(digits))
    p50, p95 = percentiles(seconds)
    patches = [
        len(saliency.ink_windows(np.where(digit.image > saliency.INK_LEVEL, digit.image, 0))) for digit in digits
    ]
    return {
        "digits": len(digits),
        "p50_ms": round(p50, 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(max(seconds) * 1000, 2),
        "images_read_per_digit": round(float(np.mean(patches)) + 1, 1),
        "target_ms": TARGET_MS,
        "target_met": p50 <= TARGET_MS,
    }


def markdown_table(figures):
    verdict = "met" if figures["target_met"] else "MISSED"
    return "\n".join(
        [
            "| figure | measured | target |",
            "|---|---:|---|",
            f"| saliency per digit, p50 | {figures['p50_ms']:.1f} ms | at most {TARGET_MS} ms: {verdict} |",
            f"| saliency per digit, p95 | {figures['p95_ms']:.1f} ms | |",
            f"| saliency per digit, slowest | {figures['max_ms']:.1f} ms | |",
            f"| images read per digit (occluded patches + the original) | {figures['images_read_per_digit']:.0f} | |",
        ]
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--digits", type=int, default=DIGITS, help="drawn digits to explain")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data root holding mnist/ (default: $DIGIT_DATA_DIR, then ../shared/data, then ./data; "
        "$MNIST_DIR overrides mnist/ alone)",
    )
    parser.add_argument("--seed", type=int, default=devset.SEED)
    parser.add_argument("--results-dir", type=Path, default=devset.RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.digits < 1:
        parser.error("--digits must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    (images, labels), recognizer = devset.load_or_exit(args.data_dir, args.model)
    figures = measure(recognizer, drawn_digits(recognizer, images, labels, args.digits, args.seed))
    load_at_end = os.getloadavg()[0]
    table = markdown_table(figures)
    settings = (
        f"Model `{args.model.name}` ({recognizer.backend_name} backend), {figures['digits']} digits, "
        f"{saliency.PATCH}x{saliency.PATCH} px patches every {saliency.STRIDE} px, {os.cpu_count()} CPU "
        f"cores, load average {load_at_start:.1f} at the start and {load_at_end:.1f} at the end, "
        f"{time.perf_counter() - started:.0f} s in all by `python -m benchmarks.saliency`."
    )
    print(table)
    print(settings)
    markdown = (
        "# Saliency speed\n\n"
        "Time for `saliency.explain` on one digit (the app's *why it said that* view): every patch with ink "
        "hidden in turn and the whole batch read in one call of the recognizer's backend.\n\n"
        f"{table}\n\n{settings}\n"
    )
    summary = {
        "model": str(args.model),
        "backend": recognizer.backend_name,
        "cpu_count": os.cpu_count(),
        "load_average": [round(load_at_start, 2), round(load_at_end, 2)],
        **figures,
    }
    save_results(args.results_dir, "saliency", markdown, summary)
    print(f"wrote {args.results_dir / 'saliency.md'} and saliency.json")


if __name__ == "__main__":
    main()
