"""The population's class means in the model's feature space, the reference adaptation.py's prototype term is measured from.

    python population.py                          # digit_model.keras -> digit_model.population.npz
    python population.py --model build/quick/digit_model.keras --data-dir ../shared/data

For each digit, the mean of the unit-length features (the last layer's input) of
training digits only: MNIST's training part (train.py's own split, its validation
slice left out) and CVL's training writers, the same number from each. Never a
validation writer: those are what benchmarks/personalisation.py scores. The file
records the .keras file's SHA-256, like the ONNX export; a stale file is ignored.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

import adaptation
import datasets
from recognizer import DEFAULT_MODEL, ModelError, Recognizer, file_sha256

PER_DIGIT_PER_SOURCE = 300  # 6,000 digits in all, embedded in seconds; the scratch means from 3,000 random ones per source gave the same figures
SAMPLE_SEED = 20261215  # which training digits are averaged, the same on every run


def population_means(recognizer, data_dir=None):
    """float32 (10, D) unit class means of training digits' features: MNIST training part and CVL training writers."""
    import train  # TensorFlow comes with it: the very split and scan normalisation training used

    (mnist_images, mnist_labels), _ = datasets.load_mnist(datasets.mnist_folder(data_dir))
    (mnist_images, mnist_labels), _ = train.split_validation(mnist_images, mnist_labels, train.VALIDATION_SIZE,
                                                             train.SEED)
    cvl = datasets.load_cvl(datasets.resolve_data_root(data_dir) / "cvl")
    cvl_training = np.flatnonzero(~datasets.cvl_validation(cvl))
    rng = np.random.default_rng(SAMPLE_SEED)
    images, labels = [], []
    for digit in range(adaptation.DIGITS):
        mnist_picked = rng.choice(np.flatnonzero(mnist_labels == digit), PER_DIGIT_PER_SOURCE, replace=False)
        images.append(mnist_images[mnist_picked].astype(np.float32) / 255)
        cvl_picked = rng.choice(cvl_training[cvl.labels[cvl_training] == digit], PER_DIGIT_PER_SOURCE, replace=False)
        scans = [train.normalise_scan(cvl.images[index]) for index in cvl_picked]
        images.append(np.stack([scan for scan in scans if scan is not None]).astype(np.float32))
        labels.extend([digit] * (len(images[-2]) + len(images[-1])))
    _, features = recognizer.embed(np.concatenate(images)[..., None])
    return adaptation.class_means(features, np.array(labels))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the .keras model")
    parser.add_argument("--data-dir", default=None, help="data root holding mnist/ and cvl/ (default: as datasets.py)")
    args = parser.parse_args(argv)
    try:
        recognizer = Recognizer(args.model)
        means = population_means(recognizer, args.data_dir)
    except (ModelError, datasets.DataError) as error:
        sys.exit(f"error: {error}")
    path = adaptation.population_path_for(args.model)
    np.savez(path, means=means, model_sha256=file_sha256(args.model))
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB), class means of {adaptation.DIGITS} digits "
          f"from {2 * PER_DIGIT_PER_SOURCE} training digits each")


if __name__ == "__main__":
    main()
