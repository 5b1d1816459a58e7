"""The two views side by side: image model, online model and both combined, on writers never trained on.

    python -m benchmarks.online                  # UNIPEN validation writers + the dev set's stroke conditions

For every UNIPEN validation writer's digit (drawn once on the 280x280 canvas, as
train_online.py draws it) it reports the accuracy of the image model alone, the
online model alone and the combination the recognizer uses, the errors that
the combination fixes and the ones it makes, and the time per digit of each
view. Then the dev set's stroke conditions (single digits and numbers as the
canvas's strokes) read by the recognizer with and without the online view.
Writes benchmarks/results/online.md and online.json.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

import datasets
import online
from benchmarks import devset, save_results
from recognizer import DEFAULT_MODEL, DEFAULT_ONLINE_MODEL, ModelError, Recognizer

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
SEED = 20261201  # train_online.py's seed: the very drawings its metrics were measured on
TIMING_REPEATS = 7  # timing runs per view; the median is reported
STROKE_CONDITIONS = (
    "pen strokes",
    "pen numbers, strokes",
    "pen numbers close, strokes",
    "pen numbers touching, strokes",
)


def median_milliseconds_per_digit(function, count):
    """The median over TIMING_REPEATS runs of function(), in ms per digit."""
    times = []
    for _ in range(TIMING_REPEATS):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times)) / count


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data-dir", default=None, help="data root holding unipen/ (default: as datasets.py)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--online-model", type=Path, default=DEFAULT_ONLINE_MODEL)
    parser.add_argument("--numbers", type=int, default=devset.NUMBERS, help="numbers per stroke number condition")
    parser.add_argument("--per-condition", type=int, default=devset.PER_CONDITION)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    try:
        both = Recognizer(args.model, online_model=args.online_model)
        image_only = Recognizer(args.model, online_model=None)
        pen_writers = devset.load_pen_writers(args.data_dir)
    except (ModelError, datasets.DataError) as error:
        raise SystemExit(f"error: {error}") from None
    if both.online_unavailable:
        raise SystemExit(f"error: the online model cannot be used: {both.online_unavailable}")

    unipen = pen_writers.digits
    indices = np.concatenate(list(pen_writers.samples_by_writer.values()))
    labels = unipen.labels[indices]
    placed, images = online.validation_views(unipen, indices, SEED)
    image_probabilities = image_only.probabilities(images)
    online_probabilities = both.online_probabilities(placed)
    combined = online.combine(image_probabilities, online_probabilities, both.online_weight)
    predictions = {
        name: probabilities.argmax(axis=1)
        for name, probabilities in (
            ("image", image_probabilities),
            ("online", online_probabilities),
            ("combined", combined),
        )
    }
    right = {name: predicted == labels for name, predicted in predictions.items()}
    count = min(1000, len(images))
    timing = {  # the online view's time includes making the path features from the strokes
        "image": median_milliseconds_per_digit(lambda: image_only.probabilities(images[:count]), count),
        "online": median_milliseconds_per_digit(lambda: both.online_probabilities(placed[:count]), count),
    }
    errors = {name: int((~hits).sum()) for name, hits in right.items()}
    summary = {
        "digits": len(labels),
        "writers": len(pen_writers.samples_by_writer),
        "weight": both.online_weight,
        "accuracy": {name: float(hits.mean()) for name, hits in right.items()},
        "errors": errors,
        "combined_fixes": int((right["combined"] & ~right["image"]).sum()),
        "combined_breaks": int((~right["combined"] & right["image"]).sum()),
        "online_right_where_image_wrong": int((right["online"] & ~right["image"]).sum()),
        "error_ratio_combined_to_image": errors["combined"] / max(errors["image"], 1),
        "ms_per_digit": timing,
    }
    conditions = {}
    for name in STROKE_CONDITIONS:
        count = args.numbers if "numbers" in name else args.per_condition
        samples = devset.condition_samples(name, None, None, count, devset.SEED, pen_writers)
        conditions[name] = {
            "count": count,
            "image only": devset.evaluate(image_only, samples)["ours_accuracy"],
            "image and online": devset.evaluate(both, samples)["ours_accuracy"],
        }
    lines = [
        "# Image, online and combined views",
        "",
        f"UNIPEN validation writers ({summary['writers']} writers, {summary['digits']} digits, never trained on), "
        "each digit drawn once on the 280x280 canvas. Combined: image probabilities to the power "
        f"{both.online_weight:.2f} times online probabilities to the power {1 - both.online_weight:.2f}, renormalised.",
        "",
        "| view | accuracy | errors | ms per digit (median of 7 runs of 1,000) |",
        "|---|---:|---:|---:|",
        f"| image model alone | {summary['accuracy']['image']:.2%} | {errors['image']} | {timing['image']:.3f} |",
        f"| online model alone | {summary['accuracy']['online']:.2%} | {errors['online']} | {timing['online']:.3f} |",
        f"| combined | {summary['accuracy']['combined']:.2%} | {errors['combined']} | "
        f"{timing['image'] + timing['online']:.3f} |",
        "",
        f"The combination fixes {summary['combined_fixes']} of the image model's errors and makes "
        f"{summary['combined_breaks']} new ones; combined errors are {summary['error_ratio_combined_to_image']:.0%} "
        f"of the image model's. The online model alone is right on {summary['online_right_where_image_wrong']} "
        "digits the image model gets wrong.",
        "",
        "Dev-set stroke conditions (`python -m benchmarks.devset` conditions read from strokes), exact text:",
        "",
        "| condition | inputs | image only | image and online |",
        "|---|---:|---:|---:|",
        *[
            f"| {name} | {row['count']} | {row['image only']:.1%} | {row['image and online']:.1%} |"
            for name, row in conditions.items()
        ],
        "",
        f"Measured on {os.cpu_count()} CPU cores.",
    ]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    save_results(args.results_dir, "online", markdown, {**summary, "conditions": conditions})


if __name__ == "__main__":
    main()
