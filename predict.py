"""Read handwritten digits and numbers from image files and stroke files on the command line.

    python predict.py drawing.png photo.jpg            # one line per file: text and confidence
    python predict.py scans/ --json > results.jsonl     # folders too; one JSON object per line
    python predict.py drawing.strokes.json              # pen strokes (the app's download, or canvas json_data)
    python predict.py --profile TOKEN --db profiles.sqlite3 drawing.png   # read with a stored profile's examples
    python predict.py --examples mine/ drawing.png      # read with your own examples: mine/<digit>/<name>.png or .json

A file that cannot be read gets a one-line error on stderr and the exit status
is 1, but every other file is still read. Files go through the model in batches.
"""

import argparse
import json
import os
import stat
import sys
from pathlib import Path

import preprocessing
import profiles
import strokes
from recognizer import MODEL_VARIABLE, ModelError, Recognizer, configured_model_path, percent

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
STROKE_SUFFIXES = {".json"}  # stroke files: split into digits by their strokes, not their pixels
CHUNK_FILES = 256  # files decoded and recognised together: big batches, flat memory
MAX_FILE_BYTES = 50 * 1024 * 1024  # larger files are refused before they are read


def expand_paths(arguments):
    """Files as given, and the image files inside any folder given, in sorted order."""
    for argument in arguments:
        path = Path(argument)
        images = (
            sorted(
                child
                for child in path.rglob("*")
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES | STROKE_SUFFIXES
            )
            if path.is_dir()
            else []
        )
        # A folder without images is passed on as it is, so that it gets its own error line.
        yield from images or [path]


def read_regular_file(path, limit=MAX_FILE_BYTES):
    """A regular file's bytes, never more than limit of them; ImageError for pipes, devices and sockets.

    One descriptor is opened, checked and read, so the file cannot be swapped in between.
    O_NONBLOCK makes opening a named pipe return at once instead of waiting for a writer.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(status.st_mode):
            raise preprocessing.ImageError("is not a regular file (a pipe, device or socket): only files are read")
        data = b"" if status.st_size > limit else file.read(limit + 1)  # one that grows is still cut off
    if status.st_size > limit or len(data) > limit:
        size = max(status.st_size, len(data))
        raise preprocessing.ImageError(f"the file is {size / 1e6:.0f} MB; files over {limit // 2**20} MB are refused")
    return data


def read_and_prepare(path, read=None, read_strokes=None):
    """The prepared digits of an image file, or ImageError saying why it cannot be read."""
    try:
        data = read_regular_file(path)
    except FileNotFoundError:
        raise preprocessing.ImageError("no such file") from None
    except IsADirectoryError:
        raise preprocessing.ImageError("is a folder without image files") from None
    except PermissionError:
        raise preprocessing.ImageError("permission denied") from None
    except OSError as error:
        raise preprocessing.ImageError(f"cannot be read ({error.strerror or error})") from None
    if path.suffix.lower() in STROKE_SUFFIXES:
        try:
            return strokes.prepare_drawing(strokes.parse_drawing(data), read_strokes)
        except strokes.StrokeError as error:  # reported like an unreadable image: one line, the rest go on
            raise preprocessing.ImageError(f"not a readable stroke file: {error}") from None
    return preprocessing.prepare_file(data, read)


def format_line(path, recognition):
    """The human-readable line for one file."""
    if recognition.status == "empty":
        return f"{path}: nothing to read"
    suffix = ", uncertain" if recognition.status == "uncertain" else ""
    return f"{path}: {recognition.text} ({percent(recognition.confidence)}{suffix})"


def format_json(path, recognition):
    """The JSON line for one file."""
    return json.dumps({"path": str(path), **recognition.to_dict()})


def recognise_files(recognizer, paths, as_json, output=sys.stdout, errors=sys.stderr):
    """Print a result line per file, a chunk at a time; returns the number of failed files."""
    failed = 0
    paths = iter(paths)
    while chunk := [path for _, path in zip(range(CHUNK_FILES), paths)]:
        readable, outcomes = [], {}
        for index, path in enumerate(chunk):
            try:
                readable.append(
                    (index, read_and_prepare(path, recognizer.probabilities, recognizer.stroke_probabilities))
                )
            except preprocessing.ImageError as error:
                outcomes[index] = error
        recognitions = recognizer.recognize_prepared([prepared for _, prepared in readable])
        outcomes.update((index, result) for (index, _), result in zip(readable, recognitions))
        for index, path in enumerate(chunk):
            outcome = outcomes[index]
            if isinstance(outcome, preprocessing.ImageError):
                failed += 1
                print(f"error: {path}: {outcome}", file=errors)
                if as_json:
                    print(json.dumps({"path": str(path), "error": str(outcome)}), file=output)
            else:
                print(format_json(path, outcome) if as_json else format_line(path, outcome), file=output)
        output.flush()
    return failed


def joined_profile_argument(argv):
    """`--profile TOKEN` as `--profile=TOKEN`, so that a token starting with '-' is not taken for an option."""
    arguments = [str(argument) for argument in argv]
    for index, argument in enumerate(arguments[:-1]):
        if argument == "--profile":
            return arguments[:index] + [f"--profile={arguments[index + 1]}"] + arguments[index + 2 :]
    return arguments


def with_profile(recognizer, token, database):
    """The recognizer personalised with a stored profile's examples; StoreError or UnknownProfile saying why not."""
    store = profiles.ProfileStore(database, create=False)
    try:
        examples = store.examples(token)
    finally:
        store.close()
    print(f"note: reading with the {len(examples)} examples of the profile", file=sys.stderr)
    return recognizer.personalised(examples.images, examples.labels, list(examples.drawings))


class ExamplesFolderError(ValueError):
    """The --examples folder cannot be used; the message names the folder or the files at fault."""


def with_examples(recognizer, folder):
    """The recognizer personalised with the examples in folder (<digit>/<name>.png or .json), or ExamplesFolderError."""
    problems = []
    try:
        examples = profiles.read_examples_folder(folder, problems)
    except profiles.ExampleError as error:
        raise ExamplesFolderError(str(error)) from None
    except OSError as error:  # a folder or file that cannot be opened: said as the system says it
        raise ExamplesFolderError(f"the examples folder {folder} cannot be read ({error.strerror or error})") from None
    if problems:  # the examples were asked for: a file that cannot be read is not quietly left out
        listed = "; ".join(f"{where}: {reason}" for where, reason in problems)
        raise ExamplesFolderError(f"{len(problems)} example file(s) in {folder} cannot be read: {listed}")
    print(f"note: reading with the {len(examples.labels)} examples in {folder}", file=sys.stderr)
    return recognizer.personalised(examples.images, examples.labels, list(examples.drawings))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "images",
        nargs="+",
        metavar="FILE",
        help="image files (PNG, JPEG, WebP, BMP, GIF, TIFF), stroke files (.json) or folders of them",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    parser.add_argument(
        "--model",
        type=Path,
        default=configured_model_path(),
        help=f"the .keras model (default: ${MODEL_VARIABLE} when it is set, else digit_model.keras)",
    )
    parser.add_argument(
        "--profile",
        metavar="TOKEN",
        help="read the files with this stored profile's examples (the token of the app's ?profile= link)",
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"the profile database for --profile (default: ${profiles.DATABASE_VARIABLE} when it is "
        "set, else data/profiles.sqlite3)",
    )
    parser.add_argument(
        "--examples",
        type=Path,
        default=None,
        metavar="DIR",
        help="read the files with your own examples: DIR/<digit>/<name>.png (or .jpg, or stroke .json)",
    )
    args = parser.parse_args(joined_profile_argument(sys.argv[1:] if argv is None else argv))
    if args.examples is not None and args.profile is not None:
        parser.error("give --examples or --profile, not both: each names the examples to read with")
    if args.db is not None and args.profile is None:
        parser.error("--db names the database of a --profile: give the profile's token too")
    try:
        recognizer = Recognizer(args.model)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if recognizer.backend_name != "onnx":
        print(
            f"note: {recognizer.fallback_reason}; using the Keras model, which is slower. "
            "Run `python export.py` to fix.",
            file=sys.stderr,
        )
    if args.profile is not None:
        try:
            recognizer = with_profile(recognizer, args.profile, args.db)
        except (profiles.StoreError, profiles.UnknownProfile) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.examples is not None:
        try:
            recognizer = with_examples(recognizer, args.examples)
        except ExamplesFolderError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    failed = recognise_files(recognizer, expand_paths(args.images), args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
