"""predict.py as a user runs it: files and folders in, one line (or JSON object) per file out."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

import datasets
from conftest import ROOT


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, mnist_dir):
    """Two readable digit pictures (black on white, like a scan) and two broken files."""
    folder = tmp_path_factory.mktemp("images")
    _, (images, labels) = datasets.load_mnist(mnist_dir)
    for index in (0, 1):  # MNIST test images 0 and 1 are a 7 and a 2
        big = cv2.resize(images[index], (140, 140), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"digit_{labels[index]}.png"), 255 - big)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("this is a text file, not a picture")
    return folder


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "predict.py", *map(str, arguments)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_text_lines_and_errors(image_folder):
    completed = run_cli(
        image_folder / "digit_7.png",
        image_folder / "empty.png",
        image_folder / "digit_2.png",
        image_folder / "notes.png",
    )
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{image_folder / 'digit_7.png'}: 7 (")
    assert lines[1].startswith(f"{image_folder / 'digit_2.png'}: 2 (")
    errors = completed.stderr.splitlines()
    assert len(errors) == 2 and all(line.startswith("error: ") for line in errors)
    assert "empty" in errors[0] and "notes.png" in errors[1]
    assert "Traceback" not in completed.stderr


def test_json_lines_for_a_folder(image_folder):
    completed = run_cli(image_folder, "--json")
    records = [json.loads(line) for line in completed.stdout.splitlines()]
    by_name = {record["path"].split("/")[-1]: record for record in records}
    assert set(by_name) == {"digit_7.png", "digit_2.png", "empty.png", "notes.png"}
    seven = by_name["digit_7.png"]
    assert seven["text"] == "7"
    assert seven["digits"][0]["digit"] == 7
    assert len(seven["digits"][0]["probabilities"]) == 10
    assert len(seven["digits"][0]["box"]) == 4 and 0 < seven["digits"][0]["confidence"] <= 1
    assert "error" in by_name["empty.png"] and completed.returncode == 1


def test_all_good_files_exit_zero(image_folder):
    assert run_cli(image_folder / "digit_2.png").returncode == 0


def test_missing_file_and_missing_model(image_folder, tmp_path):
    completed = run_cli(tmp_path / "nope.png")
    assert completed.returncode == 1 and "no such file" in completed.stderr
    completed = run_cli(image_folder / "digit_2.png", "--model", tmp_path / "absent.keras")
    assert completed.returncode == 2 and "train.py" in completed.stderr and "Traceback" not in completed.stderr


def test_stroke_files_are_read_by_their_strokes(tmp_path):
    """A plain stroke file and the canvas's json_data, and a broken one that gets its own error line."""
    plain = {
        "width": 280,
        "height": 280,
        "brush": 16,
        "strokes": [[[45, 60], [32, 150], [105, 150]], [[92, 60], [92, 222]], [[170, 60], [170, 222]]],
    }
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    canvas = {
        "objects": [
            {"type": "Path", "strokeWidth": 16, "path": [["M", *stroke[0]], *[["L", *point] for point in stroke[1:]]]}
            for stroke in plain["strokes"]
        ]
    }
    (tmp_path / "canvas.json").write_text(json.dumps(canvas))
    (tmp_path / "broken.json").write_text('{"strokes": [[[1, 2], "x"]]}')
    completed = run_cli("--json", tmp_path)
    assert completed.returncode == 1
    results = {Path(line["path"]).name: line for line in map(json.loads, completed.stdout.splitlines())}
    assert results["plain.json"]["text"] == results["canvas.json"]["text"] == "41"
    assert results["plain.json"]["split_by"] == "strokes"
    assert "not a readable stroke file: stroke 1, point 2" in results["broken.json"]["error"]
    assert "Traceback" not in completed.stderr
