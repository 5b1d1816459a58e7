"""The classic tutorial recipe beside the shipped model: the same drawing read both ways.

    tutorial = Recognizer(TUTORIAL_MODEL)        # train.py --recipe tutorial, then export.py
    read_plain(tutorial, canvas_rgba)            # a Recognition of the whole canvas as one digit

Most tutorials train one convolution for 5 epochs on MNIST as it is, then feed it the
whole canvas resized to 28x28: no cropping, centring or stroke normalisation, and one
digit per picture. The app shows that reading beside its own, so that people see why
normalisation and augmentation matter.
"""

from pathlib import Path

import cv2
import numpy as np

import preprocessing
from preprocessing import MNIST_SIZE

HERE = Path(__file__).resolve().parent
TUTORIAL_MODEL = HERE / "tutorial_model.keras"
LIGHT_BACKGROUND = 127  # a median grey above this is paper: tutorials invert it to MNIST's white ink on black


def plain_resize(image):
    """The tutorial's model input: the whole image in grey, resized to 28x28, ink made white on black."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[2] == 4:
        # Transparent pixels show the white page behind the canvas; a plain RGBA-to-grey
        # conversion would drop the alpha and see the default canvas as blank.
        alpha = image[..., 3:] / 255
        image = image[..., :3] * alpha + 255 * (1 - alpha)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (MNIST_SIZE, MNIST_SIZE), interpolation=cv2.INTER_AREA) / 255
    if np.median(grey) > LIGHT_BACKGROUND:
        small = 1 - small
    return small[..., None].astype(np.float32)


def read_plain(recognizer, image):
    """A Recognition of the whole image as one digit through plain_resize, as tutorials read a canvas."""
    height, width = np.asarray(image).shape[:2]
    prepared = preprocessing.Prepared(
        digits=plain_resize(image)[None], boxes=((0, 0, width, height),), ink_levels=np.zeros((0, 0), np.uint8)
    )
    return recognizer.recognize_prepared([prepared])[0]
