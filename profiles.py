"""Users' own handwriting: private profiles of corrected digits in one SQLite file, and the examples folder.

    store = ProfileStore()                        # $DIGIT_PROFILE_DB, else data/profiles.sqlite3
    token = store.create_profile()                # the user's secret (the app's ?profile=TOKEN link)
    store.add_example(token, 4, image, drawing)   # a 28x28 model input, its strokes or None
    examples = store.examples(token)              # images, labels, drawings, ids, created, sources
    store.forget(token)                           # every row of the profile, gone
    examples = read_examples_folder("me/")        # the examples folder, or read_examples_zip(data)

The database: SQLite in WAL mode (readers never wait for a writer, several app
processes share the file), a busy timeout, and short write transactions.
The schema has a version table from day one, and MIGRATIONS brings any older file
up to date when it is opened. A profile is found by the SHA-256 of its token, so
the file alone does not hold the secret links.

The examples folder (export, import, `train.py --extra-data DIR`, `predict.py
--examples DIR` all read and write this one format):

    DIR/<digit>/<id>.png    the example's picture; a 28x28 one is the model's input as it is
                            (white ink on black, as MNIST; a light background is inverted),
                            any other size is normalised as the app normalises one digit
    DIR/<digit>/<id>.json   its pen strokes, the plain stroke file {"width", "height",
                            "strokes": [[[x, y], ...], ...], "brush"} that strokes.py reads;
                            alone (without a picture) it is drawn as the canvas draws it
    DIR/labels.csv          optional: id, digit, image, strokes, created, source per example

The folder a digit is in says what it is. read_examples_folder(DIR) gives an Examples
whose images, labels and drawings go straight into `Recognizer.personalised(...)`.
"""

import contextlib
import csv
import hashlib
import io
import os
import re
import secrets
import sqlite3
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

import decoding
import preprocessing
import strokes

HERE = Path(__file__).resolve().parent
DATABASE_VARIABLE = "DIGIT_PROFILE_DB"  # the profile database's path, for the app and the command line
DEFAULT_DATABASE = HERE / "data" / "profiles.sqlite3"  # data/ is outside git (.gitignore)
BUSY_TIMEOUT_SECONDS = 5.0  # a writer waits this long for another process's short transaction
TOKEN_BYTES = 18  # 144 random bits: 24 URL-safe characters, unguessable
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
IMAGE_SIDE = preprocessing.MNIST_SIZE
SOURCES = ("correction", "import")  # how an example came to be kept
LABELS_FILE = "labels.csv"
LABEL_COLUMNS = ("id", "digit", "image", "strokes", "created", "source")
MAX_EXAMPLE_FILE_BYTES = 5 * 2**20  # one digit's picture or strokes; more is not one digit
MAX_FOLDER_FILES = 50_000  # files read from one examples folder or zip
MAX_ZIP_BYTES = 200 * 2**20  # uncompressed bytes read from one zip: no zip bomb gets further
EXAMPLE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".json"}

# Each migration takes the schema from version N-1 to N; a file at version N skips the first N.
MIGRATIONS = (
    """
    CREATE TABLE profiles (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        created REAL NOT NULL
    );
    CREATE TABLE examples (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        digit INTEGER NOT NULL CHECK (digit BETWEEN 0 AND 9),
        image BLOB NOT NULL CHECK (length(image) = 784),
        strokes BLOB,  -- packed_strokes(): the digit's pen strokes, NULL when there were none
        created REAL NOT NULL,
        source TEXT NOT NULL
    );
    CREATE INDEX examples_by_profile ON examples (profile_id, id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(RuntimeError):
    """The profile database is missing, locked or damaged; the message says which and what to do."""


class ExampleError(ValueError):
    """An example that cannot be kept (a label that is not 0-9, an image that is not 28x28, bad strokes)."""


class UnknownProfile(ValueError):
    """No profile has this token: it was never made, was forgotten, or is mistyped."""


@dataclass(frozen=True)
class Examples:
    """A writer's examples, oldest first: what Recognizer.personalised() takes."""

    images: np.ndarray  # float32 (N, 28, 28) in [0, 1], the model's inputs
    labels: np.ndarray  # int64 (N,) digits 0-9
    drawings: tuple  # N strokes.Drawing (that digit's strokes on its canvas) or None
    ids: tuple = ()  # N database ids (or file names for a folder)
    created: tuple = ()  # N Unix times
    sources: tuple = ()  # N of SOURCES

    def __len__(self):
        return len(self.labels)


def empty_examples():
    return Examples(np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.float32), np.zeros(0, np.int64), ())


def configured_database_path():
    """The database file: $DIGIT_PROFILE_DB when it is set, else data/profiles.sqlite3 beside this file."""
    return Path(os.environ.get(DATABASE_VARIABLE) or DEFAULT_DATABASE)


def new_token():
    """A fresh secret token; never one that starts with '-', which a command line would take for an option."""
    while True:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        if not token.startswith("-"):
            return token


def token_hash(token):
    """The SHA-256 the database knows a profile by; UnknownProfile for anything that is not a token."""
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        raise UnknownProfile(
            "That is not a profile token: a token is 24 letters, digits, '-' or '_' "
            "(the part after ?profile= in your link)."
        )
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def image_levels(image):
    """The 28x28 uint8 grey levels of a model input (float in [0, 1], or uint8); ExampleError otherwise."""
    array = np.asarray(image)
    if array.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise ExampleError(
            f"an example's image must be {IMAGE_SIDE}x{IMAGE_SIDE} (the model's input), not of shape {array.shape}"
        )
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype.kind != "f":
        raise ExampleError(f"an example's image must be uint8 levels or floats in [0, 1], not {array.dtype}")
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise ExampleError("an example's float image must hold values between 0 and 1")
    return np.round(array * 255).astype(np.uint8)


def checked_digit(digit):
    """digit as an int 0-9; ExampleError for anything else."""
    if isinstance(digit, (bool, np.bool_)) or not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
        raise ExampleError(f"an example's label must be a digit 0-9, not {str(digit)[:20]!r}")
    return int(digit)


def checked_drawing(drawing):
    """A strokes.Drawing with strokes (from a Drawing, stroke file text or dict) or None; ExampleError if unreadable."""
    if drawing is None:
        return None
    try:
        parsed = drawing if isinstance(drawing, strokes.Drawing) else strokes.parse_drawing(drawing)
    except strokes.StrokeError as error:
        raise ExampleError(f"an example's strokes cannot be read: {error}") from None
    return parsed if parsed.strokes else None


def packed_strokes(drawing):
    """A Drawing as float64 bytes: width, height, brush, stroke count, each stroke's length, then the points.

    Binary, not JSON: decoding 1,000 digits' JSON took 0.1 ms each, beyond a 100 ms profile load.
    """
    if drawing is None:
        return None
    lengths = [len(stroke) for stroke in drawing.strokes]
    header = np.array([drawing.width, drawing.height, drawing.brush, len(lengths), *lengths], np.float64)
    return header.tobytes() + np.concatenate(drawing.strokes).astype(np.float64).tobytes()


def unpacked_strokes(data):
    """The strokes.Drawing of packed_strokes() bytes, None for None."""
    if data is None:
        return None
    values = np.frombuffer(data, np.float64)
    width, height, brush, count = values[:4]
    lengths = values[4 : 4 + int(count)].astype(int)
    points = values[4 + int(count) :].reshape(-1, 2)
    ends = np.cumsum(lengths)
    return strokes.Drawing(
        float(width),
        float(height),
        float(brush),
        tuple(points[end - length : end] for end, length in zip(ends, lengths)),
    )


class ProfileStore:
    """The profile database: one SQLite file, shared safely by threads and processes."""

    def __init__(self, path=None, busy_timeout=BUSY_TIMEOUT_SECONDS, create=True):
        """create=False: StoreError when the file does not exist (the command line never makes one)."""
        self.path = Path(path) if path is not None else configured_database_path()
        self.busy_timeout, self.create = busy_timeout, create
        self._connection = None
        self._lock = threading.Lock()  # one connection shared by the app's session threads

    # -- connection and errors

    def _connect(self):
        if self._connection is not None:
            return self._connection
        if not self.path.exists():
            if not self.create:
                raise StoreError(f"There is no profile database at {self.path}.")
            folder = self.path.parent
            if folder.resolve() == DEFAULT_DATABASE.parent.resolve():
                folder.mkdir(parents=True, exist_ok=True)  # the default data/ folder is made on first use
            elif not folder.is_dir():
                raise StoreError(
                    f"The profile database's folder {folder} does not exist: create it, or point "
                    f"${DATABASE_VARIABLE} at a file in an existing folder."
                )
        elif self.path.is_dir():
            raise StoreError(
                f"The profile database {self.path} is a folder, not a file: point ${DATABASE_VARIABLE} at a file."
            )
        # Autocommit mode: every write below opens its own short BEGIN IMMEDIATE transaction.
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; fsync at checkpoints
            connection.execute("PRAGMA foreign_keys = ON")
            self._migrate(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _migrate(self, connection):
        """Bring the schema up to SCHEMA_VERSION, once, under the write lock (other processes may race)."""
        if self._version(connection) == SCHEMA_VERSION:
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            version = self._version(connection)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"The profile database {self.path} has schema version {version}, newer than "
                    f"this program's {SCHEMA_VERSION}: update the program."
                )
            for migration in MIGRATIONS[version:]:
                for statement in migration.split(";"):
                    if statement.strip():
                        connection.execute(statement)
            connection.execute("DELETE FROM schema_version")
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    @staticmethod
    def _version(connection):
        found = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not found:
            return 0
        row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
        return row[0] or 0

    def _run(self, work, write=False):
        """work(connection) under the lock, in a write transaction if write; SQLite errors become StoreError."""
        with self._lock:
            try:
                connection = self._connect()
                if not write:
                    return work(connection)
                connection.execute("BEGIN IMMEDIATE")
                try:
                    result = work(connection)
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
                return result
            except sqlite3.Error as error:
                self._drop_connection()
                raise StoreError(self._explain(error)) from None

    def _drop_connection(self):
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def _explain(self, error):
        text = str(error).lower()
        if "locked" in text or "busy" in text:
            return (
                f"The profile database {self.path} is locked by another program (waited "
                f"{self.busy_timeout:g} s): try again in a moment."
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return (
                f"The profile database {self.path} is damaged (not a readable SQLite file): move it "
                "aside to start a new one, or restore it from a backup."
            )
        if "unable to open" in text or "readonly" in text or "read-only" in text or "permission" in text:
            return f"The profile database {self.path} cannot be opened for writing ({error})."
        return f"The profile database {self.path} failed: {error}."

    def close(self):
        with self._lock:
            self._drop_connection()

    # -- profiles

    def create_profile(self):
        """A new, empty profile; returns its secret token (shown to its user, never stored)."""
        token = new_token()
        self._run(
            lambda connection: connection.execute(
                "INSERT INTO profiles (token_hash, created) VALUES (?, ?)", (token_hash(token), time.time())
            ),
            write=True,
        )
        return token

    def _profile_id(self, connection, token):
        row = connection.execute("SELECT id FROM profiles WHERE token_hash = ?", (token_hash(token),)).fetchone()
        if row is None:
            raise UnknownProfile("No profile has this link: it was forgotten, or the link is mistyped.")
        return row[0]

    def _read(self, token, work):
        """work(connection, profile id) for an existing profile; UnknownProfile when there is no database yet."""
        token_hash(token)  # a malformed token is refused before the file is touched
        if not self.path.exists() and self.create:  # reading makes no file: nothing is kept before a save
            raise UnknownProfile("No profile has this link: no profile has been saved here yet.")
        return self._run(lambda connection: work(connection, self._profile_id(connection, token)))

    def exists(self, token):
        try:
            self._read(token, lambda connection, profile: True)
        except UnknownProfile:
            return False
        return True

    def count(self, token):
        """How many examples the profile holds."""
        return self._read(
            token,
            lambda connection, profile: connection.execute(
                "SELECT count(*) FROM examples WHERE profile_id = ?", (profile,)
            ).fetchone()[0],
        )

    def forget(self, token):
        """Delete the profile and every one of its examples; returns how many examples went."""

        def work(connection):
            profile = self._profile_id(connection, token)
            deleted = connection.execute("DELETE FROM examples WHERE profile_id = ?", (profile,)).rowcount
            connection.execute("DELETE FROM profiles WHERE id = ?", (profile,))
            return deleted

        token_hash(token)
        if not self.path.exists() and self.create:
            raise UnknownProfile("No profile has this link: no profile has been saved here yet.")
        return self._run(work, write=True)

    # -- examples

    def add_example(self, token, digit, image, drawing=None, source="correction", created=None):
        """Keep one example (a model input and its true digit, its strokes when known); returns its id."""
        return self.add_examples(token, [(digit, image, drawing)], source, created)[0]

    def add_examples(self, token, rows, source="correction", created=None):
        """Keep (digit, image, drawing) rows in one transaction; ExampleError (nothing kept) for a bad row."""
        if source not in SOURCES:
            raise ExampleError(f"source must be one of {SOURCES}, not {source!r}")
        now = time.time() if created is None else None
        checked = []
        for number, row in enumerate(rows, start=1):
            digit, image, drawing = row[:3]
            when = row[3] if len(row) > 3 and row[3] is not None else (created if created is not None else now)
            try:
                checked.append(
                    (
                        checked_digit(digit),
                        image_levels(image).tobytes(),
                        packed_strokes(checked_drawing(drawing)),
                        float(when),
                    )
                )
            except ExampleError as error:
                raise ExampleError(f"example {number}: {error}") from None

        def work(connection):
            profile = self._profile_id(connection, token)
            ids = []
            for digit, image, packed, when in checked:
                cursor = connection.execute(
                    "INSERT INTO examples (profile_id, digit, image, strokes, created, source) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (profile, digit, image, packed, when, source),
                )
                ids.append(cursor.lastrowid)
            return ids

        return self._run(work, write=True)

    def examples(self, token):
        """The profile's Examples, oldest first."""

        def work(connection, profile):
            return connection.execute(
                "SELECT id, digit, image, strokes, created, source FROM examples WHERE profile_id = ? ORDER BY id",
                (profile,),
            ).fetchall()

        rows = self._read(token, work)
        if not rows:
            return empty_examples()
        levels = np.frombuffer(b"".join(row[2] for row in rows), np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
        return Examples(
            images=levels.astype(np.float32) / np.float32(255),
            labels=np.array([row[1] for row in rows], np.int64),
            drawings=tuple(unpacked_strokes(row[3]) for row in rows),
            ids=tuple(row[0] for row in rows),
            created=tuple(row[4] for row in rows),
            sources=tuple(row[5] for row in rows),
        )

    def import_examples(self, token, examples):
        """Add examples (a read folder or zip) to the profile, leaving out any it already holds; returns how many."""
        known = self.examples(token)
        seen = {(int(label), image_levels(image).tobytes()) for label, image in zip(known.labels, known.images)}
        rows = []
        for index, (label, image) in enumerate(zip(examples.labels, examples.images)):
            key = (int(label), image_levels(image).tobytes())
            if key not in seen:
                seen.add(key)
                created = examples.created[index] if examples.created else None
                rows.append((label, image, examples.drawings[index] if examples.drawings else None, created))
        if rows:
            self.add_examples(token, rows, source="import")
        return len(rows)


# ---------------------------------------------------------------------------
# The examples folder: export, import, training data and the command line's --examples


def example_files(examples):
    """{relative path: bytes} of the examples folder for these examples (pictures, strokes, labels.csv)."""
    files = {}
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for index, (label, image) in enumerate(zip(examples.labels, examples.images)):
        name = str(examples.ids[index]) if examples.ids else str(index + 1)
        ok, encoded = cv2.imencode(".png", image_levels(image))
        if not ok:
            raise ExampleError(f"example {name} could not be written as PNG")
        picture = f"{int(label)}/{name}.png"
        files[picture] = encoded.tobytes()
        drawing = examples.drawings[index] if examples.drawings else None
        stroke_path = ""
        if drawing is not None:
            stroke_path = f"{int(label)}/{name}.json"
            files[stroke_path] = drawing.to_json().encode("utf-8")
        created = examples.created[index] if examples.created else ""
        source = examples.sources[index] if examples.sources else ""
        writer.writerow((name, int(label), picture, stroke_path, created, source))
    files[LABELS_FILE] = table.getvalue().encode("utf-8")
    return files


def write_examples_folder(examples, folder):
    """Write the examples folder into folder (made if missing); returns the folder."""
    folder = Path(folder)
    for relative, data in example_files(examples).items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def examples_zip(examples):
    """The examples folder as the bytes of a zip file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, data in example_files(examples).items():
            archive.writestr(relative, data)
    return buffer.getvalue()


def read_examples_folder(folder, problems=None):
    """The Examples in an examples folder (DIR/<digit>/*, see the module's docstring).

    A file that cannot be read raises ExampleError naming it, or, when problems is a
    list, is left out and (path, reason) appended to it. ExampleError too when the
    folder holds no digit folders at all.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ExampleError(f"{folder} is not a folder of examples (<digit>/<name>.png or .json)")
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or not _is_example_path(relative):
            continue
        if len(files) >= MAX_FOLDER_FILES:
            raise ExampleError(f"{folder} holds more than {MAX_FOLDER_FILES:,} example files")
        if path.stat().st_size > MAX_EXAMPLE_FILE_BYTES:
            _problem(problems, folder / relative, f"larger than {MAX_EXAMPLE_FILE_BYTES // 2**20} MB: not one digit")
            continue
        files[relative] = path.read_bytes()
    return _examples_from_files(files, str(folder), problems)


def read_examples_zip(data, problems=None):
    """The Examples in the bytes of a zip of an examples folder (the app's export); ExampleError when unreadable."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [member for member in archive.infolist() if not member.is_dir()]
        if len(members) > MAX_FOLDER_FILES:
            raise ExampleError(f"the zip holds more than {MAX_FOLDER_FILES:,} files")
        if sum(member.file_size for member in members) > MAX_ZIP_BYTES:
            raise ExampleError(f"the zip unpacks to more than {MAX_ZIP_BYTES // 2**20} MB")
        # A zip of the folder itself has one top folder around the digit folders: it is looked through.
        names = [PurePosixPath(member.filename) for member in members]
        prefix = _common_top(names)
        files = {}
        for member, name in zip(members, names):
            relative = PurePosixPath(*name.parts[len(prefix) :]).as_posix() if prefix else name.as_posix()
            if _is_example_path(relative) and member.file_size <= MAX_EXAMPLE_FILE_BYTES:
                files[relative] = archive.read(member)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError) as error:
        if isinstance(error, ExampleError):
            raise
        raise ExampleError(f"not a readable zip of examples ({type(error).__name__}: {str(error)[:80]})") from None
    return _examples_from_files(files, "the zip", problems)


def _common_top(names):
    """The one top folder every name is in, when there is one and it is not a digit folder."""
    tops = {name.parts[0] for name in names if len(name.parts) > 1}
    if len(tops) == 1 and all(len(name.parts) > 1 for name in names):
        top = tops.pop()
        if not re.fullmatch(r"[0-9]", top):
            return (top,)
    return ()


def _is_example_path(relative):
    parts = PurePosixPath(relative).parts
    if parts == (LABELS_FILE,):
        return True
    return (
        len(parts) == 2
        and re.fullmatch(r"[0-9]", parts[0]) is not None
        and not parts[1].startswith(".")
        and PurePosixPath(parts[1]).suffix.lower() in EXAMPLE_SUFFIXES
    )


def _problem(problems, where, reason):
    if problems is None:
        raise ExampleError(f"{where}: {reason}")
    problems.append((str(where), reason))


def _label_rows(data, where, problems):
    """{picture or strokes path: (created, source)} from labels.csv, checked against the folders."""
    rows = {}
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
        for row in reader:
            for column in ("image", "strokes"):
                path = (row.get(column) or "").strip()
                if path:
                    digit = row.get("digit", "").strip()
                    if digit and not path.startswith(f"{digit}/"):
                        _problem(
                            problems,
                            f"{where}/{LABELS_FILE}",
                            f"{path} is labelled {digit} but is in the folder of another digit",
                        )
                    created = row.get("created") or ""
                    rows[path] = (float(created) if created else None, row.get("source") or None)
    except (UnicodeDecodeError, csv.Error, ValueError) as error:
        _problem(problems, f"{where}/{LABELS_FILE}", f"not a readable labels table ({error})")
    return rows


def _examples_from_files(files, where, problems):
    """Examples from {relative path: bytes}: a picture and a stroke file of one name are one example."""
    labels_table = _label_rows(files.pop(LABELS_FILE), where, problems) if LABELS_FILE in files else {}
    grouped = {}
    for relative in sorted(files):
        path = PurePosixPath(relative)
        kind = "strokes" if path.suffix.lower() == ".json" else "picture"
        grouped.setdefault(path.with_suffix("").as_posix(), {})[kind] = relative
    images, labels, drawings, names, created = [], [], [], [], []
    for stem, parts in grouped.items():
        try:
            drawing = None
            if "strokes" in parts:
                drawing = strokes.parse_drawing(files[parts["strokes"]])
            image = picture_example(files[parts["picture"]]) if "picture" in parts else drawing_example(drawing)
        except (strokes.StrokeError, preprocessing.ImageError, ExampleError) as error:
            _problem(problems, f"{where}/{parts.get('picture') or parts['strokes']}", str(error))
            continue
        images.append(image)
        labels.append(int(PurePosixPath(stem).parts[0]))
        drawings.append(drawing if drawing is not None and drawing.strokes else None)
        names.append(PurePosixPath(stem).name)
        known = labels_table.get(parts.get("picture")) or labels_table.get(parts.get("strokes")) or (None, None)
        created.append(known[0])
    if not images and not problems:
        raise ExampleError(
            f"{where} holds no examples: expected <digit>/<name>.png (or .json) files, in folders named 0 to 9"
        )
    if not images:
        return empty_examples()
    return Examples(
        np.stack(images).astype(np.float32),
        np.array(labels, np.int64),
        tuple(drawings),
        tuple(names),
        tuple(created),
        tuple("import" for _ in names),
    )


def picture_example(data):
    """The 28x28 model input of one digit's picture file: as it is when 28x28, else normalised as the app does."""
    picture = decoding.decode_image(data)
    grey = (
        cv2.cvtColor(picture, cv2.COLOR_RGBA2GRAY if picture.shape[2] == 4 else cv2.COLOR_RGB2GRAY)
        if picture.ndim == 3
        else picture
    )
    if grey.shape == (IMAGE_SIDE, IMAGE_SIDE) and (
        picture.ndim == 2 or picture.shape[2] == 3 or picture[..., 3].min() == 255
    ):
        image = grey.astype(np.float32) / 255
        if np.median(image) > 0.5:  # black ink on white paper: the model reads white on black
            image = 1 - image
        return image
    prepared = preprocessing.prepare(picture)
    if len(prepared.digits) == 1:
        return prepared.digits[0, ..., 0]
    ink = (preprocessing.ink_image(picture) * 255).astype(np.uint8)  # several pieces of one digit, or none
    x, y, width, height = cv2.boundingRect((ink > 0).view(np.uint8))
    if width == 0:
        raise ExampleError("the picture holds no ink")
    try:
        return preprocessing.mnist_digit(ink[y : y + height, x : x + width])
    except ValueError as error:
        raise ExampleError(f"the picture holds no digit ({error})") from None


def drawing_example(drawing):
    """The 28x28 model input of one digit's strokes, all drawn as one digit the way the canvas draws them."""
    if not drawing.strokes:
        raise ExampleError("the stroke file holds no strokes")
    scale = min(1.0, strokes.STROKE_WORK_SIDE / max(drawing.width, drawing.height))
    scaled = [stroke * scale for stroke in drawing.strokes]
    brush = max(drawing.brush * scale, 1.0)
    boxes = [strokes.stroke_box(stroke, brush) for stroke in scaled]
    drawn = strokes.draw_group(range(len(scaled)), scaled, boxes, brush, speck=0)
    if drawn is None:
        raise ExampleError("the strokes are only a dot, not a digit")
    return drawn[0]
