"""Per-writer adaptation: the base model's answer corrected by the writer's own examples, in NumPy.

    adapter = Adapter.fit(features, base_probabilities, labels)   # tens of ms
    probabilities = adapter.adjust(query_features, query_base_probabilities)

The network stays frozen. Its answer for a digit is changed by a term added to its
logits (the log of its probabilities): the digit's similarity to each of the
writer's examples (a Gaussian of the cosine distance between the embeddings the
last layer reads) times coefficients fitted, by cross-entropy, so that the
examples read as labelled. It is a kernel fine-tune of the last layer: a digit
unlike every example keeps the base model's answer. A correction (an example
the base model misread) overrides the model, so it reaches only digits very
like it; a confirmation (an example it read right) only strengthens the model's
own answer for the writer's style, so it reaches further, and is fitted to a
wider margin. Each example also counts in a few slightly shifted, turned and
scaled copies. With no examples the adapter answers exactly as the base model.
"""

import cv2
import numpy as np

DIGITS = 10
IMAGE_SIDE = 28
# Light augmentation: one drawing stands for the writer's habit, not for its exact placement;
# the shifts and turns stay within what the app's normalisation leaves of a redrawn digit.
AUGMENT_VARIANTS = 4  # extra copies per example while the writer has few examples
AUGMENT_SHIFT = 1.0  # pixels
AUGMENT_DEGREES = 8.0
AUGMENT_SCALE = 0.08  # +-8% size
AUGMENT_SEED = 20261214  # the same examples always give the same adapted model
MAX_FITTED = 320  # embeddings (copies included) in one fit: keeps the fit well under a second
MAX_PER_DIGIT = 30  # with more examples of a digit than this, the newest ones stand for the writer
# Kernel widths, on 1 - cosine similarity, and the confirmations' margin were chosen on one
# half of CVL's validation writers (benchmarks/personalisation.py reports on the other half):
# corrections at 0.15 broke a writer's other digits, confirmations at 0.1 helped too little.
# The margin was chosen again on the same half when the image model was retrained (3 -> 2).
CORRECTION_WIDTH = 0.10
CONFIRMATION_WIDTH = 0.15
CONFIRMATION_TEMPERATURE = 2.0  # confirmations are fitted at this temperature: a margin twice as wide
STEPS = 150  # Adam steps from zero: with no other penalty, the step count bounds the change
LEARNING_RATE = 1.0  # per step, in logits per unit of similarity
PROBABILITY_FLOOR = 1e-12  # log of a probability that rounds to zero stays finite
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8


class ExampleError(ValueError):
    """The writer's examples cannot be used: wrong shape, a label outside 0-9, mismatched counts."""


def check_examples(images, labels):
    """(float32 (N, 28, 28) images, int64 (N,) labels), or ExampleError saying what is wrong."""
    try:
        images = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ExampleError(f"the example images are not an array of numbers ({error})") from None
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.size == 0 and images.ndim < 3:
        images = images.reshape(0, IMAGE_SIDE, IMAGE_SIDE)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ExampleError(f"example images must be 28x28 digits, shape (N, 28, 28), not {images.shape}")
    if not np.isfinite(images).all() or (images.size and (images.min() < 0 or images.max() > 1)):
        raise ExampleError("example images must hold values in [0, 1], as the model's 28x28 inputs do")
    raw_labels = np.asarray(labels)
    if raw_labels.ndim != 1 or len(raw_labels) != len(images):
        raise ExampleError(f"{len(images)} example images need {len(images)} labels, got shape {raw_labels.shape}")
    if raw_labels.size and (raw_labels.dtype.kind not in "iuf" or not np.all(np.mod(raw_labels, 1) == 0)):
        raise ExampleError(f"example labels must be whole digits 0-9, got {raw_labels.dtype} values")
    labels = raw_labels.astype(np.int64)
    outside = sorted(set(labels.tolist()) - set(range(DIGITS)))
    if outside:
        raise ExampleError(f"example labels must be digits 0-9, got {outside}")
    return images, labels


def kept_examples(labels, per_digit=MAX_PER_DIGIT):
    """Indices of the examples a fit uses, in order: all of them, or the newest per_digit of each digit."""
    labels = np.asarray(labels)
    return np.sort(np.concatenate([np.flatnonzero(labels == digit)[-per_digit:] for digit in range(DIGITS)]))


def variants_for(count):
    """Augmented copies per example: a few for a handful of examples, none once there are enough."""
    return int(np.clip(MAX_FITTED // max(count, 1) - 1, 0, AUGMENT_VARIANTS))


def augmented(images, labels, variants):
    """The images and, after them, `variants` slightly shifted, turned and scaled copies of each, with their labels."""
    if variants <= 0 or not len(images):
        return images, labels
    rng = np.random.default_rng(AUGMENT_SEED)
    centre = (IMAGE_SIDE / 2 - 0.5, IMAGE_SIDE / 2 - 0.5)
    copies = []
    for _ in range(variants):
        for image in images:
            matrix = cv2.getRotationMatrix2D(
                centre, rng.uniform(-AUGMENT_DEGREES, AUGMENT_DEGREES), 1 + rng.uniform(-AUGMENT_SCALE, AUGMENT_SCALE)
            )
            matrix[:, 2] += rng.uniform(-AUGMENT_SHIFT, AUGMENT_SHIFT, 2)
            copies.append(cv2.warpAffine(image, matrix, (IMAGE_SIDE, IMAGE_SIDE), flags=cv2.INTER_LINEAR))
    return (
        np.concatenate([images, np.clip(np.stack(copies), 0, 1)]).astype(np.float32),
        np.concatenate([labels] * (variants + 1)),
    )


def _unit(features):
    features = np.asarray(features, np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), PROBABILITY_FLOOR)


def _softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(logits)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def _log(probabilities):
    return np.log(np.clip(np.asarray(probabilities, np.float64), PROBABILITY_FLOOR, 1.0))


class Adapter:
    """Fitted coefficients on the writer's example embeddings: base logits + similarity @ coefficients."""

    def __init__(self, example_units, widths, coefficients):
        self.example_units = example_units  # float64 (M, D): the examples' embeddings, unit length
        self.widths = widths  # (M,): how far each example reaches, in cosine distance
        self.coefficients = coefficients  # (M, 10): each example's push on the ten logits

    @property
    def examples(self):
        """How many embeddings (copies included) the adapter holds."""
        return len(self.example_units)

    def similarity(self, features):
        """(N, M) Gaussian similarity of N embeddings to the examples: 1 for the same direction."""
        return np.exp((_unit(features) @ self.example_units.T - 1) / self.widths[None, :])

    @classmethod
    def fit(cls, features, base_probabilities, labels, steps=STEPS):
        """The adapter for M examples' embeddings (M, D), the base model's probabilities (M, 10) and labels (M,)."""
        labels = np.asarray(labels, np.int64)
        if not len(labels):
            return cls(np.zeros((0, 0)), np.zeros(0), np.zeros((0, DIGITS)))
        features = np.asarray(features, np.float32).reshape(len(labels), -1)
        read_right = np.argmax(base_probabilities, axis=1) == labels
        widths = np.where(read_right, CONFIRMATION_WIDTH, CORRECTION_WIDTH)
        adapter = cls(_unit(features), widths, np.zeros((len(labels), DIGITS)))
        kernel = adapter.similarity(features)
        base_logits = _log(base_probabilities)
        targets = np.eye(DIGITS)[labels]
        temperatures = np.where(read_right, CONFIRMATION_TEMPERATURE, 1.0)[:, None]
        coefficients = adapter.coefficients
        moment, second_moment = np.zeros_like(coefficients), np.zeros_like(coefficients)
        for step in range(1, steps + 1):
            # Cross-entropy of softmax((base + K A) / T): its gradient in A is K^T (p - y) / (T M).
            probabilities = _softmax((base_logits + kernel @ coefficients) / temperatures)
            gradient = kernel.T @ ((probabilities - targets) / temperatures) / len(labels)
            moment = ADAM_BETAS[0] * moment + (1 - ADAM_BETAS[0]) * gradient
            second_moment = ADAM_BETAS[1] * second_moment + (1 - ADAM_BETAS[1]) * gradient**2
            corrected = moment / (1 - ADAM_BETAS[0] ** step)
            corrected_second = second_moment / (1 - ADAM_BETAS[1] ** step)
            coefficients -= LEARNING_RATE * corrected / (np.sqrt(corrected_second) + ADAM_EPSILON)
        return adapter

    def adjust(self, features, base_probabilities):
        """float32 (N, 10) adapted probabilities for embeddings (N, D) and the base model's probabilities (N, 10)."""
        base_probabilities = np.asarray(base_probabilities, np.float32)
        if not self.examples or not len(base_probabilities):
            return base_probabilities
        logits = _log(base_probabilities) + self.similarity(features) @ self.coefficients
        return _softmax(logits).astype(np.float32)
