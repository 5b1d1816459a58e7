"""Model comparison: the shipped model, the tutorial recipe and their ensemble on the same inputs.

    python -m benchmarks.comparison                            # the dev set's 500 per condition, 200 numbers
    python -m benchmarks.comparison --per-condition 50 --numbers 20 --results-dir /tmp/results

Every reading of the app's comparison, and the two in between, on MNIST's test set
and on the dev set's drawings (benchmarks.devset): the shipped model through the
app's pipeline; the tutorial model as tutorials read a canvas (comparison.read_plain:
the whole picture resized to 28x28, one digit); the tutorial model through the app's
pipeline (normalisation without augmentation); the shipped model through the plain
resize (augmentation without normalisation); and the ensemble, the mean of both
models' probabilities through the app's pipeline. Writes benchmarks/results/comparison.md
and comparison.json.
"""

import argparse
import copy
import os
import time
from pathlib import Path

import numpy as np

import datasets
from benchmarks import devset, save_results
from comparison import TUTORIAL_MODEL, read_plain
from recognizer import ModelError, Recognizer

READINGS = {  # key -> what the table calls it
    "app": "this app (shipped model, app's pipeline)",
    "tutorial": "tutorial (tutorial model, plain resize)",
    "tutorial_pipeline": "tutorial model, app's pipeline",
    "shipped_plain": "shipped model, plain resize",
    "ensemble": "ensemble (mean of both, app's pipeline)",
}


def ensemble(members):
    """A copy of the first member's Recognizer whose image model is the mean of all members' probabilities."""
    combined = copy.copy(members[0])  # the same pipeline and settings, whatever the Recognizer holds
    combined.probabilities = lambda digits: np.mean([member.probabilities(digits) for member in members], axis=0)
    return combined


def right(recognition, text):
    """The exact text for a digit or number; for a non-digit (text ''), not claiming a digit."""
    return recognition.status != "ok" if text == "" else recognition.text == text


def score_condition(models, samples):
    """{reading: share right} for one condition's (input, text) pairs."""
    shipped, tutorial, ensemble = models
    pictures = [devset.as_picture(sample) for sample, _ in samples]
    readings = {
        "app": shipped.recognize_many([sample for sample, _ in samples]),
        "tutorial": [read_plain(tutorial, picture) for picture in pictures],
        "tutorial_pipeline": tutorial.recognize_many([sample for sample, _ in samples]),
        "shipped_plain": [read_plain(shipped, picture) for picture in pictures],
        "ensemble": ensemble.recognize_many([sample for sample, _ in samples]),
    }
    return {
        name: float(np.mean([right(result, text) for result, (_, text) in zip(results, samples)]))
        for name, results in readings.items()
    }


def mnist_test_accuracy(models, images, labels):
    """{model: accuracy} on MNIST's test images as they are, the way each model was scored in training."""
    shipped, tutorial, ensemble = models
    digits = (images.astype(np.float32) / 255)[..., None]
    return {
        name: float((model.probabilities(digits).argmax(axis=1) == labels).mean())
        for name, model in (("shipped", shipped), ("tutorial", tutorial), ("ensemble", ensemble))
    }


def run(models, images, labels, per_condition, numbers, seed, pen_writers):
    rows = {}
    for name, (description, source, _) in devset.CONDITIONS.items():
        if source == "pen" and pen_writers is None:
            continue
        count = numbers if "numbers" in name else per_condition
        samples = devset.condition_samples(name, images, labels, count, seed, pen_writers)
        rows[name] = {"count": count, "description": description, **score_condition(models, samples)}
    return rows


def markdown_table(rows, mnist):
    header = "| condition | images | " + " | ".join(READINGS.values()) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(READINGS)]
    mnist_cells = [f"{mnist['shipped']:.2%}", f"{mnist['tutorial']:.2%}", "", "", f"{mnist['ensemble']:.2%}"]
    lines.append("| MNIST test set, as it is | 10000 | " + " | ".join(mnist_cells) + " |")
    for name, row in rows.items():
        lines.append(f"| {name} | {row['count']} | " + " | ".join(f"{row[key]:.1%}" for key in READINGS) + " |")
    mean = {key: float(np.mean([row[key] for row in rows.values()])) for key in READINGS}
    lines.append("| mean over the conditions | | " + " | ".join(f"**{mean[key]:.1%}**" for key in READINGS) + " |")
    return "\n".join(lines), mean


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--tutorial-model", type=Path, default=TUTORIAL_MODEL)
    return devset.parse_args(argv, parser)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    (images, labels), shipped = devset.load_or_exit(args.data_dir, args.model)
    try:
        tutorial = Recognizer(args.tutorial_model, online_model=None)  # the tutorial's own readings only
        pen_writers = devset.load_pen_writers(args.data_dir)
    except (ModelError, datasets.DataError) as error:
        raise SystemExit(f"error: {error}") from None
    models = (shipped, tutorial, ensemble([shipped, tutorial]))
    mnist = mnist_test_accuracy(models, images, labels)
    rows = run(models, images, labels, args.per_condition, args.numbers, args.seed, pen_writers)
    seconds = time.perf_counter() - started
    table, mean = markdown_table(rows, mnist)
    better = mean["ensemble"] > mean["app"] and mnist["ensemble"] > mnist["shipped"]
    verdict = (
        f"The ensemble is {'' if better else 'not '}more accurate than the shipped model alone on both "
        f"the mean over the conditions ({mean['ensemble']:.2%} against {mean['app']:.2%}) and MNIST's "
        f"test set ({mnist['ensemble']:.2%} against {mnist['shipped']:.2%})"
        + (": it earns a place in the app." if better else ", so the app does not offer it.")
    )
    settings = (
        f"Models `{args.model.name}` ({shipped.backend_name}) and `{args.tutorial_model.name}` "
        f"({tutorial.backend_name}), seed {args.seed}, {args.per_condition} digits per condition and "
        f"{args.numbers} numbers per number condition, {os.cpu_count()} CPU cores, {seconds:.0f} s "
        "by `python -m benchmarks.comparison`."
    )
    print(table)
    print(verdict)
    print(settings)
    markdown = (
        "# Model comparison\n\n"
        "Share of inputs read exactly right (for *not digits*: not claimed as a digit). The tutorial reading "
        "takes the whole picture as one digit, so it never reads a number.\n\n"
        f"{table}\n\n{verdict}\n\n{settings}\n"
    )
    summary = {
        "model": str(args.model),
        "tutorial_model": str(args.tutorial_model),
        "seed": args.seed,
        "per_condition": args.per_condition,
        "numbers": args.numbers,
        "seconds": round(seconds, 1),
        "mnist_test": mnist,
        "mean": mean,
        "ensemble_better": better,
        "conditions": rows,
    }
    save_results(args.results_dir, "comparison", markdown, summary)
    print(f"wrote {args.results_dir / 'comparison.md'} and comparison.json")


if __name__ == "__main__":
    main()
