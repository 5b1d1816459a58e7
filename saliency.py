"""Why the model said that: occlusion saliency over the 28x28 image the model saw.

    explanation = explain(recognizer, digit_result)    # the answer against its runner-up
    explanation.saliency, explanation.runner_up, explanation.runner_up_probability
    overlay(digit_result.image, explanation.saliency)  # RGB picture: red for, blue against

Patches of the image are hidden one at a time (set to background) and the whole
batch is read in one call of the recognizer's own backend (ONNX Runtime or Keras),
so no TensorFlow is needed. A patch's effect is how much hiding it lowers the log
odds of the answer against the runner-up; it is shared among the ink it hid.
"""

from dataclasses import dataclass

import numpy as np

from preprocessing import MNIST_SIZE

PATCH = 4  # px of the 28x28 input hidden at a time: wider than MNIST's 2-3 px strokes, smaller than a bar
STRIDE = 2  # half a patch: every pixel is hidden by exactly (PATCH / STRIDE) ** 2 = 4 patches
INK_LEVEL = 1e-3  # below this a pixel is background: hiding it changes nothing
SMALLEST_PROBABILITY = 1e-12  # log odds of a probability the model rounds to zero stay finite
# Overlay colours (RGB in [0, 1]) for ink that argues for the answer and for the runner-up.
SUPPORT_COLOUR = np.array([1.0, 0.22, 0.15], np.float32)
AGAINST_COLOUR = np.array([0.2, 0.55, 1.0], np.float32)
NEUTRAL_SHARE = 0.45  # ink that neither helps nor hurts stays this grey-white, so the digit stays visible


class SaliencyError(ValueError):
    """The image or the digits asked about cannot be explained; the message says why."""


@dataclass(frozen=True)
class Explanation:
    """Which ink decided between the answer and the runner-up."""

    saliency: np.ndarray  # float32 28x28: > 0 ink that made it say `digit`, < 0 ink that argued for `runner_up`
    digit: int
    probability: float
    runner_up: int
    runner_up_probability: float


def _patch_corners():
    """Top-left corners of every patch; they start above and left of the image so edges are hidden as often."""
    starts = range(STRIDE - PATCH, MNIST_SIZE, STRIDE)
    return [(top, left) for top in starts for left in starts]


PATCH_CORNERS = _patch_corners()
COVERAGE = (PATCH // STRIDE) ** 2  # patches hiding each pixel


def _check_image(image):
    image = np.asarray(image, dtype=np.float32)
    if image.shape == (MNIST_SIZE, MNIST_SIZE, 1):
        image = image[..., 0]
    if image.shape != (MNIST_SIZE, MNIST_SIZE):
        raise SaliencyError(f"expected the 28x28 image the model saw, got an array of shape {image.shape}")
    if not np.isfinite(image).all():
        raise SaliencyError("the image holds NaN or infinite values")
    return image


def _log_odds(probabilities, digit, versus):
    clipped = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), SMALLEST_PROBABILITY, None))
    return clipped[:, digit] - (clipped[:, versus] if versus is not None else 0.0)


def ink_windows(ink):
    """(rows, columns, ink hidden) of each patch that hides some ink; the others leave the image as it is."""
    windows = []
    for top, left in PATCH_CORNERS:
        rows, columns = slice(max(top, 0), top + PATCH), slice(max(left, 0), left + PATCH)
        hidden = float(ink[rows, columns].sum())
        if hidden > 0:
            windows.append((rows, columns, hidden))
    return windows


def occlusion(probabilities, image, digit, versus=None):
    """Float32 28x28 map: how much each ink pixel raised log p(digit) - log p(versus) (versus None: log p(digit)).

    probabilities: the model, a function from (N, 28, 28, 1) images to (N, 10)
    probabilities, such as Recognizer.probabilities. Background pixels get 0.
    """
    image = _check_image(image)
    for name, value in (("digit", digit), ("versus", versus)):
        if value is not None and value not in range(10):
            raise SaliencyError(f"{name} must be a digit from 0 to 9, not {value!r}")
    if versus == digit:
        raise SaliencyError(f"versus must differ from digit ({digit}): a digit's odds against itself never change")
    ink = np.where(image > INK_LEVEL, image, 0.0).astype(np.float32)
    windows = ink_windows(ink)
    saliency = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float64)
    if not windows:
        return saliency.astype(np.float32)
    batch = np.repeat(image[None], len(windows) + 1, axis=0)
    for occluded, (rows, columns, _) in zip(batch[1:], windows):
        occluded[rows, columns] = 0.0
    scores = _log_odds(probabilities(batch[..., None]), digit, versus)
    for drop, (rows, columns, hidden) in zip(scores[0] - scores[1:], windows):
        saliency[rows, columns] += drop * ink[rows, columns] / hidden
    return (saliency / COVERAGE).astype(np.float32)


def explain(recognizer, digit_result):
    """The Explanation of one recognizer.DigitResult: its answer against the next most likely digit."""
    probabilities = np.asarray(digit_result.probabilities, dtype=np.float64)
    others = probabilities.copy()
    others[digit_result.digit] = -np.inf  # a tie with the answer must not make the answer its own runner-up
    runner_up = int(np.argmax(others))
    saliency = occlusion(recognizer.probabilities, digit_result.image, digit_result.digit, versus=runner_up)
    return Explanation(
        saliency,
        digit_result.digit,
        float(probabilities[digit_result.digit]),
        runner_up,
        float(probabilities[runner_up]),
    )


def overlay(image, saliency):
    """Float32 28x28x3 RGB in [0, 1]: the image the model saw, ink red where it argued for the answer, blue against."""
    image, saliency = _check_image(image), _check_image(saliency)
    strongest = float(np.abs(saliency).max())
    share = saliency / strongest if strongest > 0 else saliency
    colour = np.where(share[..., None] >= 0, SUPPORT_COLOUR, AGAINST_COLOUR)
    strength = np.abs(share)[..., None]
    tint = (1 - strength) * NEUTRAL_SHARE + strength * colour
    return (np.clip(image, 0, 1)[..., None] * tint).astype(np.float32)
