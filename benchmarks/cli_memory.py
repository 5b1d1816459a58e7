"""The command line on 10,000 files: throughput, and memory that stays flat from the first file to the last.

    python -m benchmarks.cli_memory
    python -m benchmarks.cli_memory --count 2000 --model /tmp/q/digit_model.keras

Writes MNIST's test digits as small scan-like PNGs (dark ink on white, three times
MNIST's size) to a temporary folder, runs `python predict.py FOLDER --json` on it while
sampling the process's resident memory every 0.2 s, and scores the output against the
labels. Prints a table and writes benchmarks/results/cli_memory.md and cli_memory.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from benchmarks import devset, save_results
from benchmarks.memory import MemorySampler
from recognizer import DEFAULT_MODEL

ROOT = devset.ROOT
RESULTS_DIR = devset.RESULTS_DIR
COUNT = 10_000  # the MNIST test set
SAMPLE_SECONDS = 0.2
SCAN_SCALE = 3  # 84x84 pictures: small files, yet bigger than the model's input as real scans are
PROGRESS_POINTS = (0.25, 0.5, 0.75, 1.0)  # shares of the output lines at which the memory is reported


def write_pictures(images, labels, folder):
    """One PNG per digit, named by its place in the data set and its label; returns the paths."""
    paths = []
    for index, (image, label) in enumerate(zip(images, labels)):
        scan = 255 - cv2.resize(image, None, fx=SCAN_SCALE, fy=SCAN_SCALE, interpolation=cv2.INTER_CUBIC)
        path = folder / f"{index:05d}_label{label}.png"
        if not cv2.imwrite(str(path), scan):
            raise OSError(f"could not write {path}")
        paths.append(path)
    return paths


def run_cli(folder, model_path):
    """predict.py --json on the folder: records, exit status, stderr, seconds to first and last line, RSS samples."""
    command = [sys.executable, "predict.py", str(folder), "--json", "--model", str(model_path)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines_read = [0]
    sampler = MemorySampler(process.pid, SAMPLE_SECONDS, progress=lambda: lines_read[0])
    records, first_line_seconds = [], None
    for line in process.stdout:
        records.append(json.loads(line))
        lines_read[0] += 1
        if first_line_seconds is None:
            first_line_seconds = time.perf_counter() - started
    errors = process.stderr.read()
    status = process.wait()
    total_seconds = time.perf_counter() - started
    return records, status, errors, first_line_seconds, total_seconds, sampler.stop()


def rss_at_progress(samples, total_lines):
    """RSS (bytes) of the last sample taken before each share in PROGRESS_POINTS of the lines was out.

    Before, not after: once the last line is out the process is exiting and freeing memory.
    """
    return {
        share: [rss for _, rss, lines in samples if lines < share * total_lines or lines == 0][-1]
        for share in PROGRESS_POINTS
    }


def summarise(records, labels_by_path, status, errors, first_line_seconds, total_seconds, samples):
    """The figures of one run, JSON-ready; memory in MiB."""
    count = len(labels_by_path)
    right = sum(record.get("text") == str(labels_by_path.get(record["path"])) for record in records)
    progress = rss_at_progress(samples, count)
    before_output = [rss for _, rss, lines in samples if lines == 0]
    return {
        "files": count,
        "output_lines": len(records),
        "exit_status": status,
        "error_lines": sum(line.startswith("error: ") for line in errors.splitlines()),
        "seconds": round(total_seconds, 2),
        "seconds_to_first_line": round(first_line_seconds or 0.0, 2),
        "files_per_second": round(count / total_seconds, 1),
        "files_per_second_after_first_line": round((count - 1) / max(total_seconds - first_line_seconds, 1e-9), 1),
        "accuracy": round(right / count, 5),
        "wrong": count - right,
        "rss_mb": {
            "before_first_line": _mebibytes(before_output[-1]) if before_output else None,
            "peak": _mebibytes(max(rss for _, rss, _ in samples)),
            **{f"at_{round(share * 100)}%_of_lines": _mebibytes(rss) for share, rss in progress.items()},
        },
        "rss_growth_25_to_100%_mb": _mebibytes(progress[1.0] - progress[0.25]),
        "sample_seconds": SAMPLE_SECONDS,
        "rss_curve": [[round(seconds, 2), _mebibytes(rss), lines] for seconds, rss, lines in samples],
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _mebibytes(size):
    return round(size / 2**20, 1)


def markdown_table(summary):
    memory = summary["rss_mb"]
    rows = [
        ("files", f"{summary['files']:,}"),
        ("exit status, error lines", f"{summary['exit_status']}, {summary['error_lines']}"),
        ("wall time", f"{summary['seconds']} s ({summary['seconds_to_first_line']} s to the first line)"),
        ("files/s, whole run", summary["files_per_second"]),
        ("files/s after the first line", summary["files_per_second_after_first_line"]),
        ("accuracy (text = label)", f"{summary['accuracy']:.2%} ({summary['wrong']} wrong)"),
        ("RSS after start (the last sample before the first line)", f"{memory['before_first_line']} MiB"),
        *(
            (f"RSS just before {share} of the output lines", f"{memory[f'at_{share}_of_lines']} MiB")
            for share in ("25%", "50%", "75%", "100%")
        ),
        ("peak RSS", f"{memory['peak']} MiB"),
        ("RSS growth from 25% to 100%", f"{summary['rss_growth_25_to_100%_mb']:+} MiB"),
    ]
    return "\n".join(["| measure | value |", "|---|---:|", *(f"| {name} | {value} |" for name, value in rows)])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--count", type=int, default=COUNT, help="files to write and read (at most 10,000)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data root holding mnist/ (default: $DIGIT_DATA_DIR, then ../shared/data, then ./data; "
        "$MNIST_DIR overrides mnist/ alone)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if not 1 <= args.count <= COUNT:
        parser.error(f"--count must be between 1 and {COUNT:,}")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        images, labels = devset.load_test_set(args.data_dir)
    except devset.datasets.DataError as error:
        raise SystemExit(f"error: {error}") from None
    images, labels = images[: args.count], labels[: args.count]
    with tempfile.TemporaryDirectory(prefix="cli-memory-") as folder:
        paths = write_pictures(images, labels, Path(folder))
        records, status, errors, first_line_seconds, total_seconds, samples = run_cli(folder, args.model)
    labels_by_path = {str(path): int(label) for path, label in zip(paths, labels)}
    if not records:
        raise SystemExit(f"error: predict.py printed nothing (exit status {status}):\n{errors[-2000:]}")
    summary = summarise(records, labels_by_path, status, errors, first_line_seconds, total_seconds, samples)
    summary["model"] = str(args.model)
    table = markdown_table(summary)
    settings = (
        f"`python predict.py FOLDER --json` on {summary['files']:,} PNGs ({28 * SCAN_SCALE}x{28 * SCAN_SCALE} "
        f"MNIST test digits, dark on white), RSS sampled every {SAMPLE_SECONDS} s; {summary['cpu_count']} CPU "
        f"cores, load average {summary['load_average_1min']} at the end. Measured by "
        "`python -m benchmarks.cli_memory`."
    )
    print(table)
    print(settings)
    save_results(
        args.results_dir,
        "cli_memory",
        f"# Command line on {summary['files']:,} files\n\n{table}\n\n{settings}\n",
        summary,
    )
    print(f"wrote {args.results_dir / 'cli_memory.md'} and cli_memory.json")


if __name__ == "__main__":
    main()
