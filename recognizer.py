"""Recognise the digits in an image: the one function the app and the command line share.

    recognizer = Recognizer()                 # loads the model once
    result = recognizer.recognize(image)      # RGBA canvas array, photo array or file bytes
    result.text, result.confidence, result.digits[0].probabilities

Inference runs on digit_model.onnx with ONNX Runtime (about 0.1 ms per digit, no
TensorFlow import). That file is exported from digit_model.keras, the source of
truth, by `python export.py`; when it is missing or stale the Keras model is used.
"""

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import preprocessing

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = HERE / "digit_model.keras"
# Below this a digit's top probability is a guess, not an answer: the app asks the
# user to redraw instead of showing it as a result.
UNCERTAIN_BELOW = 0.80
HASH_METADATA_KEY = "source_sha256"  # stored in the ONNX file: which .keras it came from


class ModelError(RuntimeError):
    """The model file is missing or unreadable; the message says how to fix it."""


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
        return "uncertain" if any(digit.uncertain for digit in self.digits) else "ok"

    @property
    def message(self):
        """One friendly sentence for people."""
        if self.status == "empty":
            return "Nothing to read: draw a digit or upload a picture of one."
        if self.status == "uncertain":
            unsure = [str(index + 1) for index, digit in enumerate(self.digits) if digit.uncertain]
            where = "this digit" if len(self.digits) == 1 else f"digit {', '.join(unsure)}"
            return f"Not sure about {where}: it may not be a digit. Try drawing it larger and clearer."
        return f"Read {self.text} with {self.confidence:.1%} confidence."

    def to_dict(self):
        return {
            "text": self.text,
            "confidence": round(self.confidence, 6),
            "status": self.status,
            "message": self.message,
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
        self.session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch):
        return self.session.run(None, {self.input_name: batch})[0]


class KerasBackend:
    """The .keras model called directly: no predict() overhead, but TensorFlow's import cost."""

    def __init__(self, model_path):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        self.model = keras.saving.load_model(model_path, compile=False, safe_mode=True)

    def __call__(self, batch):
        return np.asarray(self.model(batch, training=False))


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


def _load_keras(model_path):
    """The Keras backend, or ModelError saying how to get a loadable model."""
    try:
        return KerasBackend(model_path)
    except Exception as error:
        raise ModelError(
            f"The model file {model_path} could not be loaded ({type(error).__name__}: {error}). "
            "Restore it with `git checkout -- digit_model.keras` or retrain with `python train.py`."
        ) from error


class Recognizer:
    """Loads the model once; recognises single images or many in batches."""

    def __init__(self, model_path=DEFAULT_MODEL, backend="auto", batch_size=512):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(
                f"The model file {model_path} is missing. Train it with "
                "`python train.py --data-dir PATH_TO_MNIST` (about 15 minutes on 2 CPU cores), "
                "or restore it with `git checkout -- digit_model.keras`."
            )
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
            self._infer = _load_keras(model_path)
        self.backend_name = "keras" if self.fallback_reason else "onnx"

    def probabilities(self, digits):
        """(N, 10) probabilities for a float32 (N, 28, 28, 1) batch in [0, 1]."""
        digits = np.ascontiguousarray(digits, dtype=np.float32)
        if digits.ndim != 4 or digits.shape[1:] != (28, 28, 1):
            raise ValueError(f"expected a batch of shape (N, 28, 28, 1), got {digits.shape}")
        if len(digits) == 0:
            return np.zeros((0, 10), dtype=np.float32)
        chunks = [
            self._infer(digits[start : start + self.batch_size])
            for start in range(0, len(digits), self.batch_size)
        ]
        return np.concatenate(chunks)

    def recognize(self, image):
        """A Recognition of one image: an RGBA/RGB/grey array or encoded file bytes.

        Raises preprocessing.ImageError for input that is not a readable image.
        """
        return self.recognize_many([image])[0]

    def recognize_many(self, images):
        """Recognitions of many images, with one model call per batch of digits."""
        return self.recognize_prepared([_prepare(image) for image in images])

    def recognize_prepared(self, prepared):
        """Recognitions of preprocessing.prepare() outputs, batched through the model."""
        all_digits = [item.digits for item in prepared if len(item.digits)]
        probabilities = self.probabilities(
            np.concatenate(all_digits) if all_digits else np.zeros((0, 28, 28, 1), np.float32)
        )
        results, start = [], 0
        for item in prepared:
            count = len(item.digits)
            digits = tuple(
                _digit_result(row, box, image)
                for row, box, image in zip(probabilities[start : start + count], item.boxes, item.digits)
            )
            results.append(Recognition(digits))
            start += count
        return results


def _prepare(image):
    """prepare() of an array, or of file bytes with boxes in the file's pixels."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return preprocessing.prepare_file(bytes(image))
    return preprocessing.prepare(image)


def _digit_result(probabilities, box, image):
    digit = int(np.argmax(probabilities))
    return DigitResult(
        digit=digit,
        confidence=float(probabilities[digit]),
        probabilities=tuple(float(value) for value in probabilities),
        box=tuple(int(value) for value in box),
        image=image[..., 0],
    )
