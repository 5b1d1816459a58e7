"""Train the digit CNN on MNIST, UNIPEN pen strokes and CVL's European digits.

    python train.py                                           # full run, writes digit_model.keras
    python train.py --data-dir ../shared/data                 # the folder holding mnist/, unipen/, cvl/
    python train.py --quick --output /tmp/quick.keras         # a few thousand images, one short epoch
    DIGIT_DATA_DIR=../shared/data python train.py --epochs 5
    python train.py --recipe tutorial                         # the tutorial model of the app's comparison
    python train.py --extra-data me/ friend/                   # users' examples folders (the app's export) join in

Every source is turned into exactly what the app gives the model (training_data.py):
UNIPEN's pen trajectories are drawn as the canvas draws them (round brush, random
size, place and canvas form) and read by the app's own preprocessing; CVL's scans
and MNIST pass through the same normalisation. Validation holds out whole writers of
UNIPEN and CVL (and a random part of MNIST's training set, which has no writer
ids); the best epoch is chosen on the mean of the three validation accuracies.
Writes the model, a metrics JSON beside it (MNIST test accuracy, per-source
validation accuracy, per-class precision and recall, confusion matrix, training
history, timings) and PNG figures in the reports folder. MNIST's test set is
only ever used for that final report. Users' examples folders (--extra-data) are
training data only: they are the writers' own corrections, never validation.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the progress display

import keras
import numpy as np
from keras import layers

import datasets
import profiles
from preprocessing import MNIST_SIZE
from recognizer import metrics_path_for
from training_data import AugmentedBatches, augment, jitter_pooled, render_non_digit, render_pool

SEED = 20261121  # fixed so that two full runs give the same model on the same machine
VALIDATION_SIZE = datasets.MNIST_VALIDATION_SIZE  # MNIST has no writer ids: a random part of its training set
BATCH_SIZE = 128  # large enough for fast CPU steps, small enough for good generalisation
EPOCHS = 36  # with the cosine schedule; the shipped run peaked at epoch 22 and stopped after 28 (37 min)
STEPS_PER_EPOCH = 600  # an epoch is a fixed number of mixed batches (about 77k digits), not one pass over MNIST

# Mixture: the share of each batch's digits drawn from each source.
SOURCE_WEIGHTS = {
    "mnist": 0.5,  # half, so that MNIST's own test accuracy does not fall
    "unipen": 0.3,  # pen trajectories drawn as the canvas draws them: closest to what users draw
    "cvl": 0.2,  # European styles (hooked 1s, crossed 7s, open 4s) MNIST's writers never used
}
# Users' examples folders (--extra-data): already the model's 28x28 inputs, jittered like the
# pre-rendered sources. A small share, so a few writers' digits cannot outweigh 500 others.
EXTRA_DATA_WEIGHT = 0.05
# How each drawing and variant is made, and how MNIST is augmented: training_data.py.
PEN_VARIANTS = 5  # drawings rendered per UNIPEN training sample (each size, brush, form and slant anew)
# Many Europeans start a 1 low on the left with a long flag (strokes.with_flag), the image model's commonest
# error on unseen writers (read as 7); UNIPEN's writers rarely do. Each one-stroke 1 is drawn this many extra
# times with a flag, about a quarter of all pen 1s: the online model's FLAG_PROBABILITY is 0.3.
FLAGGED_ONE_VARIANTS = 2
CVL_VARIANTS = 3  # normalised variants per CVL training image (each slant and aspect anew)
PEAK_LEARNING_RATE = 3e-3  # Adam with batch norm tolerates a high peak after a warm-up
WARMUP_EPOCHS = 1  # ramp up from a tenth of the peak so early batch statistics settle
WEIGHT_DECAY = 5e-4  # AdamW's decoupled decay; a light regulariser beside dropout
BATCH_NORM_MOMENTUM = 0.99  # running statistics averaged over ~100 batches: steady for the test set
# Polyak averaging: validate and ship the average of the last ~1,000 steps' weights, which
# sits nearer the centre of the optimum than any single noisy step at a high learning rate.
EMA_MOMENTUM = 0.999
DROPOUT = 0.3  # before the classifier: MNIST overfits quickly without it
MIDDLE_FILTERS = 48  # the two middle convolutions; 64 with 160 on top was tried, not finished (see README)
TOP_FILTERS = 128
PATIENCE = 6  # stop when validation accuracy has not improved for this many epochs
# The first half runs at a high learning rate; picking one of its epochs would only be
# fitting the validation split's noise, so the best epoch is chosen from the second half.
SELECT_FROM_EPOCH = EPOCHS // 2

# Outlier exposure: training_data.render_non_digit's letters, scribbles and squeezed digit pairs are
# trained towards the uniform distribution, a share of each batch (training_data.NON_DIGIT_FRACTION).
NON_DIGIT_POOL = 6_000  # rendered once, then augmented afresh like the digits
# Touching pen digits read as one piece (training_data.draw_pen_pair), added to that pool: the squeezed
# MNIST pairs did not stop touching pen numbers being read as one confident digit, so that no cut was made.
PEN_PAIR_POOL = 1_500  # a fifth of the non-digits: 2% of each batch

QUICK_TRAIN_SIZE = 4_000  # quick mode: enough to beat chance by far in well under a minute
QUICK_VALIDATION_SIZE = 1_000
QUICK_SOURCE_SIZE = 400  # UNIPEN and CVL samples in quick mode, for training and validation each
QUICK_EPOCHS = 1
QUICK_STEPS_PER_EPOCH = 40
QUICK_BATCH_NORM_MOMENTUM = 0.9  # 0.99 would not settle in a quick run's 32 steps
QUICK_EMA_MOMENTUM = 0.0  # 32 steps are too few to average: a quick run keeps its last weights
QUICK_OUTPUT = Path("build/quick/digit_model.keras")

# The tutorial recipe (--recipe tutorial): what most tutorials build, for the app's model comparison.
TUTORIAL_OUTPUT = Path("tutorial_model.keras")
TUTORIAL_EPOCHS = 5  # what the classic tutorials train for; MNIST test accuracy has levelled off by then
TUTORIAL_FILTERS = 32  # one 3x3 convolution of 32 filters, as in the Keras and TensorFlow tutorials


def build_model(dropout=DROPOUT, batch_norm_momentum=BATCH_NORM_MOMENTUM):
    """The CNN: four convolutions with batch norm and two max-poolings, then dropout and a softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=(MNIST_SIZE, MNIST_SIZE, 1)),
            layers.Conv2D(32, 5, use_bias=False),  # 24x24: a large first kernel sees whole stroke segments
            layers.BatchNormalization(momentum=batch_norm_momentum),
            layers.ReLU(),
            layers.MaxPooling2D(),  # 12x12
            layers.Conv2D(MIDDLE_FILTERS, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=batch_norm_momentum),
            layers.ReLU(),
            layers.Conv2D(MIDDLE_FILTERS, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=batch_norm_momentum),
            layers.ReLU(),
            layers.MaxPooling2D(),  # 6x6
            layers.Conv2D(TOP_FILTERS, 3, use_bias=False),  # 4x4
            layers.BatchNormalization(momentum=batch_norm_momentum),
            layers.ReLU(),
            layers.Flatten(),
            layers.Dropout(dropout),
            layers.Dense(10, activation="softmax"),
        ],
        name="digit_cnn",
    )


def build_tutorial_model():
    """The classic tutorial CNN: one 3x3 convolution, one max-pooling and a softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=(MNIST_SIZE, MNIST_SIZE, 1)),
            layers.Conv2D(TUTORIAL_FILTERS, 3, activation="relu"),  # 26x26
            layers.MaxPooling2D(),  # 13x13
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ],
        name="tutorial_cnn",
    )


class SourceValidation(keras.callbacks.Callback):
    """Scores each validation source at every epoch's end and logs their mean as val_accuracy.

    Placed after SwapEMAWeights, so it scores the averaged weights that early stopping keeps.
    """

    def __init__(self, sets, verbose):
        super().__init__()
        self.sets, self.verbose = sets, verbose
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        accuracies, losses = [], []
        for name, (images, labels) in self.sets.items():
            probabilities = self.model.predict(to_model_input(images), batch_size=1000, verbose=0)
            accuracy = float((probabilities.argmax(axis=1) == labels).mean())
            losses.append(float(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1)).mean()))
            logs[f"val_{name}_accuracy"] = accuracy
            accuracies.append(accuracy)
        logs["val_accuracy"] = float(np.mean(accuracies))
        logs["val_loss"] = float(np.mean(losses))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(round(float(value), 5))
        if self.verbose:
            print(
                f"epoch {epoch + 1}: loss {logs.get('loss', float('nan')):.4f}, validation "
                + ", ".join(f"{name} {logs[f'val_{name}_accuracy']:.4f}" for name in self.sets)
                + f", mean {logs['val_accuracy']:.4f}",
                flush=True,
            )


def digit_accuracy(targets, probabilities):
    """Accuracy over the digits in a batch; non-digits, whose target is uniform, are left out."""
    is_digit = keras.ops.cast(keras.ops.max(targets, axis=-1) > 0.5, "float32")
    correct = keras.ops.cast(keras.ops.argmax(targets, axis=-1) == keras.ops.argmax(probabilities, axis=-1), "float32")
    return keras.ops.sum(correct * is_digit) / keras.ops.maximum(keras.ops.sum(is_digit), 1.0)


def to_model_input(images):
    """uint8 (N, 28, 28) to the model's float32 (N, 28, 28, 1) in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[..., None]


def classification_metrics(labels, predictions):
    """Accuracy, per-class precision and recall, and the confusion matrix."""
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_positives = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(10), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros(10), where=actual > 0)
    return {
        "accuracy": float(true_positives.sum() / confusion.sum()),
        "errors": int(confusion.sum() - true_positives.sum()),
        "precision": {str(digit): round(float(precision[digit]), 5) for digit in range(10)},
        "recall": {str(digit): round(float(recall[digit]), 5) for digit in range(10)},
        "confusion_matrix": confusion.tolist(),
    }


def save_figures(history, confusion, reports_dir):
    """Training curves and the confusion matrix as PNG files; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    reports_dir.mkdir(parents=True, exist_ok=True)
    epochs = np.arange(1, len(history["loss"]) + 1)
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_axis.plot(epochs, history["loss"], label="training (augmented)")
    loss_axis.plot(epochs, history["val_loss"], label="validation, mean of sources")
    # Log scale: the averaged weights start far off while batch-norm statistics follow the raw ones.
    loss_axis.set(xlabel="epoch", ylabel="loss", title="Loss", yscale="log")
    loss_axis.legend()
    accuracy_axis.plot(epochs, history["digit_accuracy"], label="training (augmented)")
    for name in SOURCE_WEIGHTS:
        if f"val_{name}_accuracy" in history:
            accuracy_axis.plot(epochs, history[f"val_{name}_accuracy"], label=f"{name} validation writers")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="Accuracy (averaged weights)", ylim=(0.95, 1.0))
    accuracy_axis.legend()
    figure.tight_layout()
    curves_path = reports_dir / "training_curves.png"
    figure.savefig(curves_path, dpi=100)
    plt.close(figure)

    confusion = np.asarray(confusion)
    figure, axis = plt.subplots(figsize=(5.5, 5))
    off_diagonal = confusion - np.diag(np.diag(confusion))
    axis.imshow(off_diagonal, cmap="Reds")
    for true_digit in range(10):
        for predicted_digit in range(10):
            count = confusion[true_digit, predicted_digit]
            if count:
                colour = "black" if true_digit != predicted_digit else "grey"
                axis.text(predicted_digit, true_digit, str(count), ha="center", va="center", fontsize=7, color=colour)
    axis.set(
        xticks=range(10),
        yticks=range(10),
        xlabel="predicted",
        ylabel="true",
        title="MNIST test confusion matrix (errors in red)",
    )
    figure.tight_layout()
    confusion_path = reports_dir / "confusion_matrix.png"
    figure.savefig(confusion_path, dpi=100)
    plt.close(figure)
    return [curves_path, confusion_path]


def train_tutorial(args):
    """The tutorial recipe: MNIST as it is, no augmentation, Adam; writes the model and its metrics JSON."""
    try:
        (images, labels), (test_images, test_labels) = datasets.load_mnist(
            datasets.mnist_folder(args.data_dir), download=args.download
        )
    except datasets.DataError as error:
        raise SystemExit(f"error: {error}") from None
    validation_size = QUICK_VALIDATION_SIZE if args.quick else VALIDATION_SIZE
    (images, labels), (validation_images, validation_labels) = datasets.split_validation(
        images, labels, validation_size, args.seed
    )
    if args.quick:
        images, labels = images[:QUICK_TRAIN_SIZE], labels[:QUICK_TRAIN_SIZE]
    model = build_tutorial_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(
        f"training the tutorial recipe on {len(images)} MNIST images, {args.epochs} epoch(s), "
        f"{model.count_params():,} parameters",
        flush=True,
    )
    started = time.perf_counter()
    fitted = model.fit(
        to_model_input(images),
        labels,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(to_model_input(validation_images), validation_labels),
        verbose=args.verbose,
    )
    training_seconds = time.perf_counter() - started
    probabilities = model.predict(to_model_input(test_images), batch_size=1000, verbose=0)
    test_metrics = classification_metrics(test_labels, probabilities.argmax(axis=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    shipped = build_tutorial_model()  # without the optimizer state, as the shipped model is saved
    shipped.set_weights(model.get_weights())
    shipped.save(args.output)
    history = {key: [round(float(value), 5) for value in values] for key, values in fitted.history.items()}
    metrics = {
        "recipe": "tutorial",
        "input": "the whole canvas in grey, resized to 28x28 (comparison.plain_resize)",
        "model_file": args.output.name,
        "model_file_bytes": args.output.stat().st_size,
        "parameters": int(model.count_params()),
        "mnist_test": test_metrics,
        "validation": {
            "mnist": {"accuracy": history["val_accuracy"][-1], "digits": len(validation_labels), "writers": None}
        },
        "validation_accuracy": history["val_accuracy"][-1],
        "best_epoch": args.epochs,  # tutorials keep the last epoch
        "epochs_run": args.epochs,
        "training_seconds": round(training_seconds, 1),
        "training_images": len(images),
        "quick_mode": args.quick,
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "keras_version": keras.__version__,
        "history": history,
        "figures": [],
    }
    metrics_path = metrics_path_for(args.output)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"MNIST test accuracy {test_metrics['accuracy']:.4%} ({test_metrics['errors']} errors), trained in "
        f"{training_seconds:.0f} s; wrote {args.output} ({metrics['model_file_bytes'] / 1e3:.0f} kB) and {metrics_path}"
    )
    return metrics


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help=f"data root holding mnist/, unipen/ and cvl/ (default: ${datasets.DATA_DIR_VARIABLE}, "
        "else ../shared/data if present, else data/); $MNIST_DIR overrides mnist/ alone",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="download MNIST into the data root when its files are missing (UNIPEN and CVL cannot be)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"model file to write (default: digit_model.keras, or {QUICK_OUTPUT} with --quick)",
    )
    parser.add_argument(
        "--reports-dir", type=Path, default=None, help="folder for the PNG figures (default: reports/ beside the model)"
    )
    parser.add_argument(
        "--recipe",
        choices=("shipped", "tutorial"),
        default="shipped",
        help="shipped: this app's model; tutorial: the classic one-convolution recipe on MNIST as it "
        f"is, for the app's model comparison (default output {TUTORIAL_OUTPUT})",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"maximum number of epochs (default: {EPOCHS}, or {TUTORIAL_EPOCHS} for the tutorial recipe)",
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_TRAIN_SIZE} MNIST images and {QUICK_SOURCE_SIZE} of each other source, "
        f"{QUICK_EPOCHS} epoch of {QUICK_STEPS_PER_EPOCH} steps: for tests and CI",
    )
    parser.add_argument(
        "--extra-data",
        type=Path,
        nargs="+",
        default=[],
        metavar="DIR",
        help="examples folders (DIR/<digit>/<id>.png, the app's export) mixed into training at "
        f"{EXTRA_DATA_WEIGHT * 100:.0f}%% of each batch; never used for validation",
    )
    parser.add_argument(
        "--verbose", type=int, default=1, choices=(0, 1, 2), help="0 silent, 1 progress bar, 2 one line per epoch"
    )
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = TUTORIAL_EPOCHS if args.recipe == "tutorial" else EPOCHS
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    if args.output is None and args.recipe == "tutorial":
        args.output = QUICK_OUTPUT.with_name(TUTORIAL_OUTPUT.name) if args.quick else TUTORIAL_OUTPUT
    if args.output is None:
        args.output = QUICK_OUTPUT if args.quick else Path("digit_model.keras")
    if args.reports_dir is None:
        args.reports_dir = args.output.parent / "reports"
    return args


def load_sources(args):
    """Every source, split into training and writer-disjoint validation; exits with a clear message."""
    root = datasets.resolve_data_root(args.data_dir)
    try:
        (mnist_images, mnist_labels), test = datasets.load_mnist(
            datasets.mnist_folder(args.data_dir), download=args.download
        )
        unipen = datasets.load_unipen(root / "unipen")
        cvl = datasets.load_cvl(root / "cvl")
    except datasets.DataError as error:
        raise SystemExit(f"error: {error}") from None
    validation_size = QUICK_VALIDATION_SIZE if args.quick else VALIDATION_SIZE
    (mnist_images, mnist_labels), mnist_validation = datasets.split_validation(
        mnist_images, mnist_labels, validation_size, args.seed
    )
    held_out = datasets.unipen_validation_writers(unipen)  # fixed, whatever --seed: the dev set uses it too
    unipen_is_validation = np.isin(unipen.writers, sorted(held_out))
    cvl_is_validation = datasets.cvl_validation(cvl)
    indices = {
        "unipen": (np.flatnonzero(~unipen_is_validation), np.flatnonzero(unipen_is_validation)),
        "cvl": (np.flatnonzero(~cvl_is_validation), np.flatnonzero(cvl_is_validation)),
    }
    if args.quick:
        mnist_images, mnist_labels = mnist_images[:QUICK_TRAIN_SIZE], mnist_labels[:QUICK_TRAIN_SIZE]
        rng = np.random.default_rng(args.seed)
        indices = {
            name: tuple(np.sort(rng.permutation(part)[:QUICK_SOURCE_SIZE]) for part in parts)
            for name, parts in indices.items()
        }
    writers = {
        "unipen": [len(np.unique(unipen.writers[part])) for part in indices["unipen"]],
        "cvl": [len(np.unique(cvl.writers[part])) for part in indices["cvl"]],
    }
    return unipen, cvl, (mnist_images, mnist_labels), mnist_validation, test, indices, writers


def load_extra_data(folders):
    """uint8 (N, 28, 28) images and labels of users' examples folders; exits with a clear message when unreadable.

    Files that cannot be read are left out, each named in one warning line.
    """
    images, labels = [], []
    for folder in folders:
        problems = []
        try:
            examples = profiles.read_examples_folder(folder, problems)
        except profiles.ExampleError as error:
            raise SystemExit(f"error: --extra-data {folder}: {error}") from None
        for path, reason in problems:
            print(f"warning: --extra-data: {path} left out: {reason}", flush=True)
        images += [profiles.image_levels(image) for image in examples.images]
        labels += list(examples.labels)
    if not images:
        raise SystemExit(f"error: --extra-data {' '.join(map(str, folders))}: no readable examples")
    return np.stack(images), np.array(labels, np.int64)


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    if args.recipe == "tutorial":
        return train_tutorial(args)
    extra = load_extra_data(args.extra_data) if args.extra_data else None  # read first: a bad folder fails fast
    unipen, cvl, (train_images, train_labels), mnist_validation, test, indices, writers = load_sources(args)
    test_images, test_labels = test
    (unipen_train, unipen_validation), (cvl_train, cvl_validation) = indices["unipen"], indices["cvl"]

    started = time.perf_counter()
    pen_variants, cvl_variants = (1, 1) if args.quick else (PEN_VARIANTS, CVL_VARIANTS)
    pen_items = [unipen.strokes(i) for i in unipen_train] * pen_variants
    pen_pool = render_pool("pen", pen_items, np.tile(unipen.labels[unipen_train], pen_variants), (args.seed, 2), True)
    strokes_per_sample = np.diff(unipen.sample_stroke_offsets)
    one_stroke_ones = [i for i in unipen_train if unipen.labels[i] == 1 and strokes_per_sample[i] == 1]
    flagged_items = [unipen.strokes(i) for i in one_stroke_ones] * (1 if args.quick else FLAGGED_ONE_VARIANTS)
    if flagged_items:
        flagged_pool = render_pool("flagged pen", flagged_items, np.ones(len(flagged_items), int), (args.seed, 6), True)
        pen_pool = tuple(np.concatenate(parts) for parts in zip(pen_pool, flagged_pool))
    scan_items = list(cvl.images[cvl_train]) * cvl_variants
    cvl_pool = render_pool("scan", scan_items, np.tile(cvl.labels[cvl_train], cvl_variants), (args.seed, 3), True)
    validation_sets = {
        "mnist": mnist_validation,
        # Each validation writer's digit drawn once, as a user would draw it: no slant added.
        "unipen": render_pool(
            "pen",
            [unipen.strokes(i) for i in unipen_validation],
            unipen.labels[unipen_validation],
            (args.seed, 4),
            False,
        ),
        "cvl": render_pool("scan", list(cvl.images[cvl_validation]), cvl.labels[cvl_validation], (args.seed, 5), False),
    }
    rendering_seconds = time.perf_counter() - started
    print(
        f"drew {len(pen_pool[0])} pen and {len(cvl_pool[0])} scan training digits and "
        f"{sum(len(labels) for _, labels in validation_sets.values())} validation digits "
        f"in {rendering_seconds:.0f} s",
        flush=True,
    )

    pool_rng = np.random.default_rng((args.seed, 1))
    pool_size = NON_DIGIT_POOL // 10 if args.quick else NON_DIGIT_POOL
    non_digits = np.stack([render_non_digit(pool_rng, train_images) for _ in range(pool_size)])
    pair_count = PEN_PAIR_POOL // 10 if args.quick else PEN_PAIR_POOL
    pairs = [tuple(unipen.strokes(i) for i in pool_rng.choice(unipen_train, 2)) for _ in range(pair_count)]
    pen_pairs, _ = render_pool("pen pair", pairs, np.zeros(pair_count, int), (args.seed, 7), True)
    non_digits = np.concatenate([non_digits, pen_pairs])
    sources = {
        "mnist": (train_images, train_labels, SOURCE_WEIGHTS["mnist"], augment),
        "unipen": (*pen_pool, SOURCE_WEIGHTS["unipen"], jitter_pooled),
        "cvl": (*cvl_pool, SOURCE_WEIGHTS["cvl"], jitter_pooled),
    }
    if extra is not None:
        sources["extra"] = (*extra, EXTRA_DATA_WEIGHT, jitter_pooled)
    epochs = QUICK_EPOCHS if args.quick else args.epochs
    steps_per_epoch = QUICK_STEPS_PER_EPOCH if args.quick else STEPS_PER_EPOCH
    batches = AugmentedBatches(sources, args.batch_size, steps_per_epoch, args.seed, non_digits=non_digits, workers=2)
    steps = epochs * steps_per_epoch
    warmup_steps = min(WARMUP_EPOCHS * steps_per_epoch, steps // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=PEAK_LEARNING_RATE / 10,
        decay_steps=steps - warmup_steps,
        warmup_target=PEAK_LEARNING_RATE,
        warmup_steps=warmup_steps,
    )
    momentum = QUICK_BATCH_NORM_MOMENTUM if args.quick else BATCH_NORM_MOMENTUM
    model = build_model(batch_norm_momentum=momentum)
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=WEIGHT_DECAY,
        use_ema=True,
        ema_momentum=QUICK_EMA_MOMENTUM if args.quick else EMA_MOMENTUM,
    )
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=[digit_accuracy])
    validation = SourceValidation(validation_sets, verbose=args.verbose)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_accuracy",
        mode="max",
        patience=PATIENCE,
        restore_best_weights=True,
        start_from_epoch=min(SELECT_FROM_EPOCH, epochs - 1),
        verbose=0,
    )
    extra_note = f", {len(extra[1])} users' examples" if extra is not None else ""
    print(
        f"training on {len(train_images)} MNIST, {len(pen_pool[0])} pen and {len(cvl_pool[0])} scan digits"
        f"{extra_note}, "
        f"{epochs} epoch(s) of {steps_per_epoch} batches, {model.count_params():,} parameters",
        flush=True,
    )
    started = time.perf_counter()
    model.fit(
        batches,
        epochs=epochs,
        # The averaged weights are swapped in at each epoch's end, so validation scores them
        # and early stopping keeps them; this order of callbacks makes that so.
        callbacks=[keras.callbacks.SwapEMAWeights(swap_on_epoch=True), validation, early_stopping],
        verbose=args.verbose,
    )
    training_seconds = time.perf_counter() - started

    probabilities = model.predict(to_model_input(test_images), batch_size=1000, verbose=0)
    test_metrics = classification_metrics(test_labels, probabilities.argmax(axis=1))
    validation_metrics = {}
    for name, (images, labels) in validation_sets.items():
        predictions = model.predict(to_model_input(images), batch_size=1000, verbose=0).argmax(axis=1)
        scored = classification_metrics(labels, predictions)
        validation_metrics[name] = {
            "accuracy": scored["accuracy"],
            "errors": scored["errors"],
            "digits": len(labels),
            "writers": None if name == "mnist" else writers[name][1],
            "recall": scored["recall"],
            "confusion_matrix": scored["confusion_matrix"],
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # A fresh copy of the network without the optimizer state: a third of the file size.
    shipped = build_model()
    shipped.set_weights(model.get_weights())
    shipped.save(args.output)

    history = validation.history
    figures = save_figures(history, test_metrics["confusion_matrix"], args.reports_dir)
    best_epoch = early_stopping.best_epoch if early_stopping.best_epoch is not None else len(history["loss"]) - 1
    metrics = {
        "model_file": args.output.name,
        "model_file_bytes": args.output.stat().st_size,
        "parameters": int(model.count_params()),
        "mnist_test": test_metrics,
        "validation": validation_metrics,
        "validation_accuracy": history["val_accuracy"][best_epoch],
        "best_epoch": best_epoch + 1,
        "epochs_run": len(history["loss"]),
        "steps_per_epoch": steps_per_epoch,
        "training_seconds": round(training_seconds, 1),
        "rendering_seconds": round(rendering_seconds, 1),
        "training_images": len(train_images),
        "sources": {
            "mnist": {
                "training_digits": len(train_images),
                "weight": SOURCE_WEIGHTS["mnist"],
                "validation": "random 5,000 of the training set (MNIST has no writer ids)",
            },
            "unipen": {
                "training_samples": len(unipen_train),
                "training_drawings": len(pen_pool[0]),
                "training_writers": writers["unipen"][0],
                "validation_writers": writers["unipen"][1],
                "weight": SOURCE_WEIGHTS["unipen"],
            },
            "cvl": {
                "training_images": len(cvl_train),
                "training_variants": len(cvl_pool[0]),
                "training_writers": writers["cvl"][0],
                "validation_writers": writers["cvl"][1],
                "weight": SOURCE_WEIGHTS["cvl"],
                "validation": "the competition's 'valid' writers",
            },
            **(
                {
                    "extra": {
                        "folders": [str(folder) for folder in args.extra_data],
                        "training_digits": len(extra[1]),
                        "weight": EXTRA_DATA_WEIGHT,
                        "validation": "none: users' own examples train only",
                    }
                }
                if extra is not None
                else {}
            ),
        },
        "quick_mode": args.quick,
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "keras_version": keras.__version__,
        "history": history,
        "figures": [
            path.relative_to(args.output.parent).as_posix() if path.is_relative_to(args.output.parent) else str(path)
            for path in figures
        ],
    }
    metrics_path = metrics_path_for(args.output)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"MNIST test accuracy {test_metrics['accuracy']:.4%} ({test_metrics['errors']} errors); validation writers: "
        + ", ".join(f"{name} {scored['accuracy']:.4%}" for name, scored in validation_metrics.items())
        + f"; best epoch {metrics['best_epoch']}/{metrics['epochs_run']}, trained in {training_seconds / 60:.1f} min"
    )
    print(
        f"wrote {args.output} ({metrics['model_file_bytes'] / 1e6:.2f} MB), {metrics_path}, "
        + ", ".join(str(path) for path in figures)
    )


if __name__ == "__main__":
    main()
