"""Recognise the digits in an image: the one function the app and the command line share.

    recognizer = Recognizer()                 # loads the model once
    result = recognizer.recognize(image)      # RGBA canvas array, photo array or file bytes
    result = recognizer.recognize_strokes(stroke_json)   # a stroke file, or strokes.Drawing
    result.text, result.confidence, result.digits[0].probabilities
    mine = recognizer.personalised(images, labels)   # the same methods, reading with a writer's own examples

Inference runs on digit_model.onnx with ONNX Runtime (about 0.1 ms per digit, no
TensorFlow import). That file is exported from digit_model.keras, the source of
truth, by `python export.py`; when it is missing or stale the Keras model is used.
"""

import contextlib
import hashlib
import json
import os
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import adaptation
import online
import preprocessing
import strokes

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = HERE / "digit_model.keras"
# Below this a digit's top probability is a guess, not an answer: the app asks the
# user to redraw instead of showing it as a result.
UNCERTAIN_BELOW = 0.80
HASH_METADATA_KEY = "source_sha256"  # stored in the ONNX file: which .keras it came from
DEFAULT_ONLINE_MODEL = HERE / "online_model.keras"  # the pen-path model (train_online.py), used through its ONNX export
MODEL_VARIABLE = "DIGIT_MODEL"  # names another model file, for the app and the command line alike
KERAS_MEMBERS = {"config.json", "model.weights.h5"}  # every .keras zip archive holds these


class ModelError(RuntimeError):
    """The model file is missing or unreadable; the message says how to fix it."""


def percent(probability):
    """A probability as people see it, everywhere: '99.7%', never a rounded-up '100.0%' ('>99.9%') nor '0.0%'."""
    if probability >= 0.9995:
        return ">99.9%"
    if probability < 0.0005:
        return "<0.1%"
    return f"{probability:.1%}"


@dataclass(frozen=True)
class DigitResult:
    """One digit: its value, how sure the model is, and what the model saw."""

    digit: int
    confidence: float
    probabilities: tuple  # 10 floats, the model's softmax for digits 0-9
    box: tuple  # (x, y, width, height) in the input's pixels
    image: np.ndarray = field(repr=False)  # the 28x28 float32 image given to the model

    @property
    def uncertain(self):
        return self.confidence < UNCERTAIN_BELOW

    def to_dict(self):
        return {
            "digit": self.digit,
            "confidence": round(self.confidence, 6),
            "probabilities": [round(value, 6) for value in self.probabilities],
            "box": list(self.box),
            "uncertain": self.uncertain,
        }


@dataclass(frozen=True)
class Recognition:
    """Everything read from one input, digits left to right."""

    digits: tuple  # of DigitResult
    # What told the digits apart: "strokes" when the pen's strokes were given (they win over
    # the pixels: each stroke is known whole, so touching digits come apart exactly), else "pixels".
    split_by: str = "pixels"
    # The views that read the digits: ("image",), or ("image", "online") when the pen's path was read too.
    views: tuple = ("image",)
    # Why the digits found may not be the digits written: "cuts" (touching digits, the
    # count or the cuts are doubtful) or "small" (a piece much smaller than the rest).
    doubt: str = None
    # How many of the writer's own examples the answer took into account (0: the base model's answer).
    personalised_examples: int = 0

    @property
    def text(self):
        return "".join(str(digit.digit) for digit in self.digits)

    @property
    def confidence(self):
        """The chance that the whole text is right: the product of the digits' confidences."""
        return float(np.prod([digit.confidence for digit in self.digits])) if self.digits else 0.0

    @property
    def status(self):
        """'empty' (nothing to read), 'uncertain' (some digit is a guess) or 'ok'."""
        if not self.digits:
            return "empty"
        return "uncertain" if self.doubt or any(digit.uncertain for digit in self.digits) else "ok"

    @property
    def message(self):
        """One friendly sentence for people."""
        if self.status == "empty":
            return "Nothing to read: draw a digit or upload a picture of one."
        if self.doubt == "cuts":
            return (
                f"Read {self.text}, but the digits touch and may be cut in the wrong places: "
                "leave a little space between digits."
            )
        if self.doubt == "small":
            return (
                f"Read {self.text}, but a mark much smaller than the digits was there (left out if it "
                "read as no digit): write every digit at about the same size, or clear stray marks."
            )
        if self.status == "uncertain":
            unsure = [str(index + 1) for index, digit in enumerate(self.digits) if digit.uncertain]
            where = "this digit" if len(self.digits) == 1 else f"digit {', '.join(unsure)}"
            return f"Not sure about {where}: it may not be a digit. Try drawing it larger and clearer."
        return f"Read {self.text} with {percent(self.confidence)} confidence."

    def to_dict(self):
        return {
            "text": self.text,
            "confidence": round(self.confidence, 6),
            "status": self.status,
            "message": self.message,
            "split_by": self.split_by,
            "views": list(self.views),
            "doubt": self.doubt,
            "personalised_examples": self.personalised_examples,
            "digits": [digit.to_dict() for digit in self.digits],
        }


def file_sha256(path):
    """The hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def metrics_path_for(model_path):
    """The metrics JSON that train.py writes beside a model file."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".metrics.json")


def onnx_path_for(model_path):
    """The exported ONNX file that belongs to a .keras model."""
    return Path(model_path).with_suffix(".onnx")


class OnnxBackend:
    """ONNX Runtime: microseconds per digit, no TensorFlow in the process."""

    def __init__(self, onnx_path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # only errors: its warnings are about graph details
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        # An export from before export.py added the last layer's input has only the probabilities.
        self.has_features = len(self.output_names) > 1

    def __call__(self, batch):
        return self.session.run(self.output_names[:1], {self.input_name: batch})[0]

    def embed(self, batch):
        """(probabilities, features): the softmax and the input of the last layer, the embedding adaptation uses."""
        if not self.has_features:
            raise ModelError("this ONNX export has no features output: re-export it with `python export.py`")
        probabilities, features = self.session.run(self.output_names[:2], {self.input_name: batch})
        return probabilities, features


class KerasBackend:
    """The .keras model called directly: no predict() overhead, but TensorFlow's import cost."""

    def __init__(self, model_path):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with _native_stderr_silenced():  # TensorFlow's start-up lines would bury the messages that matter
            import keras

            self.model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
        self._with_features = None

    def __call__(self, batch):
        return np.asarray(self.model(batch, training=False))

    def with_features(self):
        """A Keras model giving (probabilities, the last layer's input), or None when the last layer is no softmax."""
        import keras

        last = self.model.layers[-1]
        if not isinstance(last, keras.layers.Dense) or last.units != 10:
            return None
        if self._with_features is None:
            self._with_features = keras.Model(self.model.inputs[0], [self.model.outputs[0], last.input])
        return self._with_features

    def embed(self, batch):
        """(probabilities, features), as OnnxBackend.embed."""
        model = self.with_features()
        if model is None:
            raise ModelError("this model's last layer is not a dense softmax: it has no embedding to adapt")
        probabilities, features = model(batch, training=False)
        return np.asarray(probabilities), np.asarray(features)


@contextlib.contextmanager
def _native_stderr_silenced():
    """File descriptor 2 sent to /dev/null for a while: TensorFlow's C++ code logs there before any setting applies."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _load_current_export(model_path):
    """(ONNX backend, None) when the export matches the .keras file, else (None, the reason)."""
    onnx_path = onnx_path_for(model_path)
    if not onnx_path.is_file():
        return None, f"{onnx_path.name} is missing"
    try:
        backend = OnnxBackend(onnx_path)
    except Exception as error:  # a damaged export must not stop the app: Keras still works
        return None, f"{onnx_path.name} is unreadable ({type(error).__name__})"
    metadata = backend.session.get_modelmeta().custom_metadata_map
    if metadata.get(HASH_METADATA_KEY) != file_sha256(model_path):
        return None, f"{onnx_path.name} is older than {model_path.name}"
    return backend, None


def configured_model_path():
    """The model file: $DIGIT_MODEL when it is set, else digit_model.keras beside this file."""
    return Path(os.environ.get(MODEL_VARIABLE) or DEFAULT_MODEL)


def how_to_fix(model_path):
    """How to get a working model at model_path, or where else to get one; says when $DIGIT_MODEL chose it."""
    model_path = Path(model_path)
    if model_path.resolve() == DEFAULT_MODEL.resolve():
        return (
            "Restore it with `git checkout -- digit_model.keras digit_model.onnx` or retrain it with `python train.py`."
        )
    chosen = os.environ.get(MODEL_VARIABLE)
    named = chosen and Path(chosen) == model_path
    source = f"${MODEL_VARIABLE} names {model_path}" if named else f"{model_path} was asked for"
    return (
        f"{source}: write a model there with `python train.py --output {model_path}` "
        f"(then `python export.py --model {model_path}`), or use another model file "
        f"(without ${MODEL_VARIABLE} or --model, the committed digit_model.keras)."
    )


def _check_keras_archive(model_path):
    """ModelError unless the .keras file is a complete zip archive: a truncated copy fails here, before TensorFlow."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            missing = sorted(KERAS_MEMBERS - set(archive.namelist()))
            damaged = archive.testzip()  # the first member whose checksum fails, or None
    # A cut-off zip has lost its index, at the end; a damaged one fails to inflate or is not a zip Keras writes.
    except (zipfile.BadZipFile, EOFError, zlib.error, RuntimeError, NotImplementedError):
        problem = "not a complete zip archive, as every .keras file is"
    else:
        problem = (
            f"{', '.join(missing)} missing from the archive"
            if missing
            else f"{damaged} fails its checksum"
            if damaged
            else None
        )
    if problem:
        raise ModelError(
            f"The model file {model_path} is damaged or truncated "
            f"({model_path.stat().st_size:,} bytes: {problem}). {how_to_fix(model_path)}"
        )


def _load_keras(model_path, why="the Keras backend was asked for"):
    """The Keras backend, or ModelError saying how to get a loadable model; why: why the ONNX export is not used."""
    _check_keras_archive(model_path)
    try:
        return KerasBackend(model_path)
    except ModuleNotFoundError as error:  # the app's own install (requirements.txt) has ONNX Runtime, not TensorFlow
        raise ModelError(
            f"{why}, and Keras, needed to read {model_path.name} without it, is not installed ({error}). Export "
            f"the model again with the training install: `pip install -r requirements-train.txt`, then "
            f"`python export.py --model {model_path}`; or restore the committed export with "
            "`git checkout -- digit_model.onnx`."
        ) from error
    except Exception as error:
        raise ModelError(
            f"The model file {model_path} could not be loaded ({type(error).__name__}: {error}). "
            f"{how_to_fix(model_path)}"
        ) from error


class Recognizer:
    """Loads the model once; recognises single images or many in batches."""

    personalised_examples = 0  # the base model takes no writer's examples into account

    def __init__(self, model_path=DEFAULT_MODEL, backend="auto", batch_size=512, online_model=DEFAULT_ONLINE_MODEL):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f"The model file {model_path} is missing. {how_to_fix(model_path)}")
        self.model_path = model_path
        self.batch_size = batch_size
        if backend not in ("auto", "onnx", "keras"):
            raise ValueError(f"backend must be 'auto', 'onnx' or 'keras', not {backend!r}")
        # Why the ONNX export is not used, or None when it is: the app and the CLI tell users.
        self.fallback_reason = "the Keras backend was asked for" if backend == "keras" else None
        if backend != "keras":
            self._infer, self.fallback_reason = _load_current_export(model_path)
            if self.fallback_reason and backend == "onnx":
                raise ModelError(f"{self.fallback_reason}: run `python export.py`.")
        if self.fallback_reason:
            self._infer = _load_keras(model_path, self.fallback_reason)
        self.backend_name = "keras" if self.fallback_reason else "onnx"
        self._online, self.online_weight, self.online_unavailable = _load_online(online_model)

    def probabilities(self, digits):
        """(N, 10) probabilities for a float32 (N, 28, 28, 1) batch in [0, 1]."""
        digits = np.ascontiguousarray(digits, dtype=np.float32)
        if digits.ndim != 4 or digits.shape[1:] != (28, 28, 1):
            raise ValueError(f"expected a batch of shape (N, 28, 28, 1), got {digits.shape}")
        if len(digits) == 0:
            return np.zeros((0, 10), dtype=np.float32)
        chunks = [
            self._infer(digits[start : start + self.batch_size]) for start in range(0, len(digits), self.batch_size)
        ]
        return np.concatenate(chunks)

    def embed(self, digits):
        """(probabilities (N, 10), features (N, D): the last layer's input) for a float32 (N, 28, 28, 1) batch."""
        digits = np.ascontiguousarray(digits, dtype=np.float32)
        if digits.ndim != 4 or digits.shape[1:] != (28, 28, 1):
            raise ValueError(f"expected a batch of shape (N, 28, 28, 1), got {digits.shape}")
        chunks = [
            self._infer.embed(digits[start : start + self.batch_size])
            for start in range(0, len(digits), self.batch_size)
        ]
        if not chunks:
            return np.zeros((0, 10), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate([chunk[0] for chunk in chunks]), np.concatenate([chunk[1] for chunk in chunks])

    def personalised(self, images, labels, drawings=None):
        """A recognizer with the same methods that reads with one writer's examples taken into account.

        images: float32 (N, 28, 28) in [0, 1], the digits as the model saw them (DigitResult.image);
        labels: (N,) digits 0-9; drawings: None or N strokes.Drawing/None, checked but not read:
        the image view is adapted, and its adapted answer goes into the combination with the
        online view. N = 0 answers exactly as this recognizer. Raises adaptation.ExampleError
        (a ValueError) for examples of the wrong shape or labels outside 0-9.
        """
        return PersonalisedRecognizer(self, images, labels, drawings)

    def online_probabilities(self, digit_strokes):
        """(N, 10) probabilities of the online model for N digits' strokes (lists of (K, 2) arrays)."""
        if self._online is None:
            raise ModelError(f"the online model is not available: {self.online_unavailable}")
        if not digit_strokes:
            return np.zeros((0, 10), np.float32)
        return self._online(np.stack([online.trajectory_features(strokes_) for strokes_ in digit_strokes]))

    def stroke_probabilities(self, digits, digit_strokes):
        """(N, 10) probabilities of N digits whose strokes are known: both views combined with an online model."""
        probabilities = self.probabilities(digits)
        if self._online is None or not len(digits):
            return probabilities
        return online.combine(probabilities, self.online_probabilities(digit_strokes), self.online_weight)

    def _with_online_view(self, prepared, probabilities):
        """The image probabilities combined with the online model's wherever a digit's strokes are known."""
        rows, digit_strokes, start = [], [], 0
        for item in prepared:
            if item.digit_strokes is not None:
                rows.extend(range(start, start + len(item.digits)))
                digit_strokes.extend(item.digit_strokes)
            start += len(item.digits)
        if not rows:
            return probabilities
        combined = probabilities.copy()
        combined[rows] = online.combine(
            probabilities[rows], self.online_probabilities(digit_strokes), self.online_weight
        )
        return combined

    def recognize(self, image):
        """A Recognition of one image: an RGBA/RGB/grey array or encoded file bytes.

        Raises preprocessing.ImageError for input that is not a readable image.
        """
        return self.recognize_many([image])[0]

    def recognize_strokes(self, drawing):
        """A Recognition of a drawing's strokes: a strokes.Drawing, a stroke file's text or bytes, or its dict.

        Raises strokes.StrokeError for a stroke file that cannot be read.
        """
        return self.recognize_many(
            [drawing if isinstance(drawing, strokes.Drawing) else strokes.parse_drawing(drawing)]
        )[0]

    def recognize_many(self, images):
        """Recognitions of many images (arrays, file bytes or strokes.Drawing), one model call per batch of digits."""
        return self.recognize_prepared(
            [_prepare(image, self.probabilities, self.stroke_probabilities) for image in images]
        )

    def recognize_prepared(self, prepared):
        """Recognitions of preprocessing.prepare() outputs, batched through the model."""
        all_digits = [item.digits for item in prepared if len(item.digits)]
        probabilities = self.probabilities(
            np.concatenate(all_digits) if all_digits else np.zeros((0, 28, 28, 1), np.float32)
        )
        if self._online is not None:
            probabilities = self._with_online_view(prepared, probabilities)
        results, start = [], 0
        for item in prepared:
            count = len(item.digits)
            digits = tuple(
                _digit_result(row, box, image)
                for row, box, image in zip(probabilities[start : start + count], item.boxes, item.digits)
            )
            views = ("image", "online") if item.digit_strokes is not None and self._online is not None else ("image",)
            if item.doubt == "small":
                digits = _without_stray_marks(digits)
            results.append(
                Recognition(
                    digits,
                    split_by=item.split_by,
                    views=views,
                    doubt=item.doubt,
                    personalised_examples=self.personalised_examples if digits else 0,
                )
            )
            start += count
        return results


class PersonalisedRecognizer(Recognizer):
    """A Recognizer whose image probabilities are adapted to one writer's examples (adaptation.py)."""

    def __init__(self, base, images, labels, drawings=None):
        images, labels = adaptation.check_examples(images, labels)
        if drawings is not None and len(drawings) != len(labels):
            raise adaptation.ExampleError(
                f"{len(labels)} examples need {len(labels)} drawings (or None), got {len(drawings)}"
            )
        if drawings is not None and any(
            not (drawing is None or isinstance(drawing, strokes.Drawing)) for drawing in drawings
        ):
            raise adaptation.ExampleError("each example's drawing must be a strokes.Drawing or None")
        self.__dict__.update(base.__dict__)  # the base's loaded models, shared: nothing is loaded again
        self.base = base
        self.personalised_examples = len(labels)
        kept = adaptation.kept_examples(labels) if len(labels) else np.zeros(0, np.int64)
        fitted_images, fitted_labels = adaptation.augmented(
            images[kept], labels[kept], adaptation.variants_for(len(kept))
        )
        if len(fitted_labels):
            base_probabilities, features = base.embed(fitted_images[..., None])
        else:
            base_probabilities, features = np.zeros((0, 10), np.float32), np.zeros((0, 0), np.float32)
        self.adapter = adaptation.Adapter.fit(features, base_probabilities, fitted_labels)

    def probabilities(self, digits):
        """(N, 10) probabilities of the image model, adapted to the writer's examples."""
        if not self.adapter.examples:
            return self.base.probabilities(digits)
        digits = np.ascontiguousarray(digits, dtype=np.float32)
        if digits.ndim != 4 or digits.shape[1:] != (28, 28, 1):
            raise ValueError(f"expected a batch of shape (N, 28, 28, 1), got {digits.shape}")
        if len(digits) == 0:
            return np.zeros((0, 10), dtype=np.float32)
        base_probabilities, features = self.base.embed(digits)
        return self.adapter.adjust(features, base_probabilities)

    def personalised(self, images, labels, drawings=None):
        """Another writer's (or more) examples: adapted from the base model, not on top of these."""
        return self.base.personalised(images, labels, drawings)


def _without_stray_marks(digits):
    """The digits less any much smaller than the tallest that the model cannot read: a stray mark is no digit."""
    tallest = max(digit.box[3] for digit in digits)
    kept = tuple(
        digit for digit in digits if not (max(digit.box[2:]) < preprocessing.SMALL_DIGIT * tallest and digit.uncertain)
    )
    return kept or digits


def _load_online(model_path):
    """(ONNX backend, image weight, None) of the online model, or (None, None, why not) when it cannot be used.

    Only its current ONNX export is used: loading TensorFlow for it would cost seconds,
    and without it every answer is still the image model's.
    """
    if model_path is None:
        return None, None, "not asked for"
    model_path = Path(model_path)
    if not model_path.is_file():
        return None, None, f"{model_path.name} is missing (train it with `python train_online.py`)"
    backend, reason = _load_current_export(model_path)
    if reason:
        return None, None, f"{reason}: run `python export.py --model {model_path.name}`"
    try:
        weight = float(json.loads(metrics_path_for(model_path).read_text())["image_weight"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, None, f"its metrics file has no combining weight ({type(error).__name__})"
    if not 0.0 <= weight <= 1.0:
        return None, None, f"its combining weight {weight} is not between 0 and 1"
    return backend, weight, None


def _prepare(image, read, read_strokes):
    """prepare() of an array, of file bytes with boxes in the file's pixels, or of a strokes.Drawing."""
    if isinstance(image, strokes.Drawing):
        return strokes.prepare_drawing(image, read_strokes)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return preprocessing.prepare_file(bytes(image), read)
    return preprocessing.prepare(image, read)


def _digit_result(probabilities, box, image):
    digit = int(np.argmax(probabilities))
    return DigitResult(
        digit=digit,
        confidence=float(probabilities[digit]),
        probabilities=tuple(float(value) for value in probabilities),
        box=tuple(int(value) for value in box),
        image=image[..., 0],
    )
