"""Per-writer adaptation on writers the model was never trained on: errors before and after.

    python -m benchmarks.personalisation                 # CVL and UNIPEN validation writers, about 2 minutes
    python -m benchmarks.personalisation --results-dir /tmp/personalisation

For each validation writer of CVL (the competition's 'valid' writers, scanned digits
read as an upload is) and of UNIPEN (pen digits drawn once on the canvas, read with
both views, as benchmarks/online.py draws them), in a fixed random order of their
digits: (1) ten examples, the first of each digit, then the error on the writer's
other digits; (2) the first 3 digits the base model misreads, corrected, then the
error on the writer's other digits. Each is compared with the base model on the
same digits. adaptation.py's widths and margin were chosen on the even-indexed CVL
writers (sorted by id): the figures that count are those of the odd-indexed CVL
writers and of UNIPEN's, which took no part in any choice; the tuning half is shown
apart. Writes benchmarks/results/personalisation.md and personalisation.json.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

import datasets
import online
from benchmarks import save_results
from recognizer import DEFAULT_MODEL, DEFAULT_ONLINE_MODEL, ModelError, Recognizer

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
PEN_SEED = 20261201  # benchmarks/online.py's and train_online.py's seed: the very drawings they score
ORDER_SEED = 20261214  # each writer's digits in one fixed random order: which come first as examples
CORRECTIONS = 3  # the "first 3 corrections"
WORSE_BY = 0.005  # a writer is made worse when their error rises by more than half a point
MIN_OTHER_DIGITS = 10  # writers with fewer digits left after the ten examples give no error rate worth the name


def cvl_writers(data_root):
    """(images (N, 28, 28), labels, writer ids) of CVL's validation writers, normalised as train.py does."""
    from training_data import normalise_scan  # TensorFlow comes with it: the very function training used

    cvl = datasets.load_cvl(Path(data_root) / "cvl" if data_root else None)
    indices = np.flatnonzero(datasets.cvl_validation(cvl))
    images = np.stack([normalise_scan(cvl.images[index]) for index in indices]).astype(np.float32)
    return images, cvl.labels[indices].astype(np.int64), cvl.writers[indices]


def unipen_writers(data_root):
    """(images, labels, writer ids, each digit's strokes on the canvas) of UNIPEN's validation writers."""
    pen = datasets.load_unipen(Path(data_root) / "unipen" if data_root else None)
    held_out = datasets.unipen_validation_writers(pen)
    indices = np.concatenate([np.flatnonzero(pen.writers == writer) for writer in sorted(held_out)])
    placed, images = online.validation_views(pen, indices, PEN_SEED)
    return images[..., 0], pen.labels[indices].astype(np.int64), pen.writers[indices], placed


def read(recognizer, images, placed):
    """(N, 10) probabilities as the app gives them: both views where strokes are known, else the image alone."""
    batch = images[..., None]
    if placed is None:
        return recognizer.probabilities(batch)
    return recognizer.stroke_probabilities(batch, placed)


def evaluate_writer(recognizer, images, labels, placed, indices, base_wrong, writer):
    """One writer's figures for both scenarios: digits, base and adapted errors, adaptation seconds."""
    order = np.random.default_rng((ORDER_SEED, int(writer))).permutation(indices)
    first_of_each = [order[labels[order] == digit][0] for digit in range(10) if (labels[order] == digit).any()]
    scenarios = {"ten": np.array(first_of_each), "corrections": order[base_wrong[order]][:CORRECTIONS]}
    figures = {}
    for name, examples in scenarios.items():
        others = np.setdiff1d(indices, examples)
        started = time.perf_counter()
        adapted = recognizer.personalised(images[examples], labels[examples])
        seconds = time.perf_counter() - started
        picked = None if placed is None else [placed[index] for index in others]
        adapted_wrong = read(adapted, images[others], picked).argmax(axis=1) != labels[others]
        figures[name] = {
            "examples": len(examples),
            "digits": len(others),
            "base_errors": int(base_wrong[others].sum()),
            "adapted_errors": int(adapted_wrong.sum()),
            "seconds": seconds if len(examples) else None,
        }
    return figures


def summarise(rows, name):
    """Totals of one scenario over some writers: errors, reduction, writers made worse or better, fit times."""
    picked = [row[name] for row in rows]
    base = sum(row["base_errors"] for row in picked)
    adapted = sum(row["adapted_errors"] for row in picked)
    changes = [(row["adapted_errors"] - row["base_errors"]) / row["digits"] for row in picked]
    times = [row["seconds"] for row in picked if row["seconds"] is not None]
    return {
        "writers": len(picked),
        "digits": sum(row["digits"] for row in picked),
        "base_errors": base,
        "adapted_errors": adapted,
        "error_reduction": (1 - adapted / base) if base else None,
        "writers_worse": sum(change > WORSE_BY for change in changes),
        "writers_better": sum(change < 0 for change in changes),
        "mean_error_change_points": 100 * float(np.mean(changes)),
        "fit_ms_median": 1000 * float(np.median(times)) if times else None,
        "fit_ms_max": 1000 * float(np.max(times)) if times else None,
    }


def summary_line(label, summary):
    reduction = "n/a" if summary["error_reduction"] is None else f"{summary['error_reduction']:.0%}"
    timing = (
        "-" if summary["fit_ms_median"] is None else f"{summary['fit_ms_median']:.0f} / {summary['fit_ms_max']:.0f}"
    )
    return (
        f"| {label} | {summary['writers']} | {summary['digits']} | {summary['base_errors']} | "
        f"{summary['adapted_errors']} | **{reduction}** | {summary['writers_worse']} "
        f"({summary['writers_worse'] / max(summary['writers'], 1):.0%}) | {summary['writers_better']} | "
        f"{summary['mean_error_change_points']:+.2f} | {timing} |"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data-dir", default=None, help="data root holding cvl/ and unipen/ (default: as datasets.py)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--online-model", type=Path, default=DEFAULT_ONLINE_MODEL)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    try:
        recognizer = Recognizer(args.model, online_model=args.online_model)
        sets = {"CVL": (*cvl_writers(args.data_dir), None), "UNIPEN": unipen_writers(args.data_dir)}
    except (ModelError, datasets.DataError) as error:
        raise SystemExit(f"error: {error}") from None
    if recognizer.online_unavailable:
        raise SystemExit(f"error: the online model cannot be used: {recognizer.online_unavailable}")

    per_writer, skipped = {}, {}
    for set_name, (images, labels, writers, placed) in sets.items():
        base_wrong = read(recognizer, images, placed).argmax(axis=1) != labels
        per_writer[set_name] = []
        for position, writer in enumerate(sorted(set(writers.tolist()))):
            indices = np.flatnonzero(writers == writer)
            if len(indices) < 10 + MIN_OTHER_DIGITS:
                skipped[set_name] = skipped.get(set_name, 0) + 1
                continue
            figures = evaluate_writer(recognizer, images, labels, placed, indices, base_wrong, writer)
            # Only CVL's even-indexed writers were looked at while choosing adaptation.py's constants.
            part = "tuning" if set_name == "CVL" and position % 2 == 0 else "held out"
            per_writer[set_name].append({"writer": int(writer), "part": part, **figures})

    summaries = {}
    for set_name, rows in per_writer.items():
        for part in ("held out", "tuning"):
            chosen = [row for row in rows if row["part"] == part]
            if chosen:
                summaries[f"{set_name}, {part}"] = {name: summarise(chosen, name) for name in ("ten", "corrections")}
    held_out = [row for rows in per_writer.values() for row in rows if row["part"] == "held out"]
    summaries["all held-out writers"] = {name: summarise(held_out, name) for name in ("ten", "corrections")}

    header = (
        "| writers | count | other digits | base errors | adapted errors | error reduction | "
        "made worse (> 0.5 pt) | made better | mean change (pts) | fit ms median / max |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    lines = [
        "# Learning a writer's hand: per-writer adaptation",
        "",
        "Validation writers never trained on. CVL: the competition's 60 *valid* writers, scans read as uploads; "
        "UNIPEN: 41 held-out writers' pen digits drawn once on the canvas, read with both views (image and online). "
        "Adaptation constants were chosen on CVL's even-indexed writers (*tuning*, shown apart); the other rows "
        "took no part in any choice. Fit time: `Recognizer.personalised()` (augmentation, embedding, fit), "
        f"on {os.cpu_count()} CPU cores. Writers with fewer than {10 + MIN_OTHER_DIGITS} digits are left out: "
        + (", ".join(f"{count} of {name}" for name, count in skipped.items()) or "none")
        + ".",
        "",
        "**Ten examples** (the first of each digit in a fixed random order of the writer's digits), "
        "errors on the writer's other digits:",
        "",
        header,
        rule,
        *[summary_line(label, figures["ten"]) for label, figures in summaries.items()],
        "",
        f"**First {CORRECTIONS} corrections only** (the first {CORRECTIONS} digits the base model misreads, in the "
        "same order), errors on the writer's other digits:",
        "",
        header,
        rule,
        *[summary_line(label, figures["corrections"]) for label, figures in summaries.items()],
        "",
        "Per writer (base errors -> adapted errors on the other digits):",
        "",
        "| set | writer | part | digits | ten examples | corrections (how many) |",
        "|---|---:|---|---:|---|---|",
        *[
            f"| {set_name} | {row['writer']} | {row['part']} | {row['ten']['digits'] + row['ten']['examples']} | "
            f"{row['ten']['base_errors']} -> {row['ten']['adapted_errors']} | "
            f"{row['corrections']['base_errors']} -> {row['corrections']['adapted_errors']} "
            f"({row['corrections']['examples']}) |"
            for set_name, rows in per_writer.items()
            for row in rows
        ],
    ]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    save_results(
        args.results_dir,
        "personalisation",
        markdown,
        {"summaries": summaries, "writers": per_writer, "skipped_writers": skipped},
    )


if __name__ == "__main__":
    main()
