"""Model comparison: the shipped model, the tutorial recipe and their ensemble on the same inputs.

    python -m benchmarks.comparison                            # the dev set's 500 per condition, 200 numbers
    python -m benchmarks.comparison --per-condition 50 --numbers 20 --results-dir /tmp/results

Every reading of the app's comparison, and the two in between, on MNIST's held-out
validation images and test set and on the dev set's drawings (benchmarks.devset): the shipped model through the
app's pipeline; the tutorial model as tutorials read a canvas (comparison.read_plain:
the whole picture resized to 28x28, one digit); the tutorial model through the app's
pipeline (normalisation without augmentation); the shipped model through the plain
resize (augmentation without normalisation); and the ensemble, the mean of both
models' probabilities through the app's pipeline. Whether the ensemble earns a place is
decided on validation data only (MNIST's validation split, which neither model trained on,
and the dev-set conditions drawn by UNIPEN's validation writers); MNIST's test set and
the conditions made from its digits are reported, never decided on. Writes
benchmarks/results/comparison.md and comparison.json.
"""

import argparse
import copy
import json
import os
import time
from pathlib import Path

import numpy as np

import datasets
from benchmarks import devset, save_results
from comparison import TUTORIAL_MODEL, read_plain
from recognizer import ModelError, Recognizer, metrics_path_for

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


def mnist_accuracy(models, images, labels):
    """{model: accuracy} on MNIST images as they are, the way each model was scored in training."""
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


def training_seed(model_path):
    """The --seed train.py trained the model at path with (it chose MNIST's validation split), or None."""
    try:
        seed = json.loads(metrics_path_for(model_path).read_text()).get("seed")
    except (OSError, ValueError, AttributeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def mnist_validation_set(model_paths, data_root=None):
    """MNIST's validation images and labels: the training images train.py held out from both models.

    Raises ValueError when the models' metrics do not show one common split.
    """
    seeds = {path: training_seed(path) for path in model_paths}
    if None in seeds.values() or len(set(seeds.values())) != 1:
        raise ValueError(
            "the models' metrics files must give the same training seed, which chose MNIST's validation split "
            f"(found {', '.join(f'{Path(path).name}: {seed}' for path, seed in seeds.items())}); train them again "
            "with one --seed"
        )
    train_set, _ = datasets.load_mnist(datasets.mnist_folder(data_root))
    return datasets.split_validation(*train_set, datasets.MNIST_VALIDATION_SIZE, next(iter(seeds.values())))[1]


def condition_means(rows):
    """{reading: mean share right} over all conditions, and over those drawn by validation writers only."""
    validation = [name for name in rows if devset.CONDITIONS[name][1] == "pen"]
    every = {key: float(np.mean([row[key] for row in rows.values()])) for key in READINGS}
    held_out = {key: float(np.mean([rows[name][key] for name in validation])) for key in READINGS}
    return every, held_out


def markdown_table(rows, mnist_validation, mnist_test):
    header = "| condition | images | " + " | ".join(READINGS.values()) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(READINGS)]
    for name, mnist, count in (
        ("MNIST validation split, as it is", mnist_validation, datasets.MNIST_VALIDATION_SIZE),
        ("MNIST test set, as it is", mnist_test, 10_000),
    ):
        cells = [f"{mnist['shipped']:.2%}", f"{mnist['tutorial']:.2%}", "", "", f"{mnist['ensemble']:.2%}"]
        lines.append(f"| {name} | {count} | " + " | ".join(cells) + " |")
    for name, row in rows.items():
        lines.append(f"| {name} | {row['count']} | " + " | ".join(f"{row[key]:.1%}" for key in READINGS) + " |")
    every, held_out = condition_means(rows)
    for name, mean in (
        ("mean over the conditions", every),
        ("mean over the validation writers' (pen) conditions", held_out),
    ):
        lines.append(f"| {name} | | " + " | ".join(f"**{mean[key]:.1%}**" for key in READINGS) + " |")
    return "\n".join(lines), every, held_out


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
    try:
        validation_set = mnist_validation_set((args.model, args.tutorial_model), args.data_dir)
    except (ValueError, datasets.DataError) as error:
        raise SystemExit(f"error: {error}") from None
    mnist_validation = mnist_accuracy(models, *validation_set)
    mnist = mnist_accuracy(models, images, labels)
    rows = run(models, images, labels, args.per_condition, args.numbers, args.seed, pen_writers)
    seconds = time.perf_counter() - started
    table, mean, held_out = markdown_table(rows, mnist_validation, mnist)
    # Decided on validation data only; the test set and its digits' conditions are reported.
    better = held_out["ensemble"] > held_out["app"] and mnist_validation["ensemble"] > mnist_validation["shipped"]
    verdict = (
        f"The ensemble is {'' if better else 'not '}more accurate than the shipped model alone on both "
        f"the validation writers' conditions ({held_out['ensemble']:.2%} against {held_out['app']:.2%}) and "
        f"MNIST's validation split ({mnist_validation['ensemble']:.2%} against {mnist_validation['shipped']:.2%})"
        + (": it earns a place in the app." if better else ", so the app does not offer it.")
        + f" Reported only: all conditions {mean['ensemble']:.2%} against {mean['app']:.2%}, MNIST's test set "
        f"{mnist['ensemble']:.2%} against {mnist['shipped']:.2%}."
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
        "mnist_validation": mnist_validation,
        "mnist_test": mnist,
        "mean": mean,
        "validation_writers_mean": held_out,
        "ensemble_better": better,
        "conditions": rows,
    }
    save_results(args.results_dir, "comparison", markdown, summary)
    print(f"wrote {args.results_dir / 'comparison.md'} and comparison.json")


if __name__ == "__main__":
    main()
