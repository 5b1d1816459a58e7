"""Train the online model: a small 1D CNN over the pen's path, on UNIPEN's trajectories.

    python train_online.py                        # full run (a few minutes), writes online_model.keras
    python export.py --model online_model.keras   # its ONNX export, used by the recognizer
    python train_online.py --quick --output /tmp/online.keras   # seconds: for tests and CI
    python train_online.py --weight-only          # refit the combining weight after the image model changed

Training uses UNIPEN's training writers only; the writers the image model holds
out (datasets.unipen_validation_writers) validate both models. The best epoch is
chosen on them, and so is the weight that combines this model's probabilities
with the image model's: fitted on one half of the validation writers and scored
on the other, both ways round (the two halves' figures go in the metrics); the
weight shipped is the one fitted on all of them. Writes the model and a metrics
JSON beside it.
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
import online
import strokes as pen
from recognizer import DEFAULT_MODEL, Recognizer, metrics_path_for

SEED = 20261201  # fixed so that two runs give the same model on the same machine
BATCH_SIZE = 128  # small data set: small batches give more steps per epoch
EPOCHS = 40  # one cosine schedule, run to its end; the shipped run's best epoch was 22 (see README for all runs)
PEAK_LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
DROPOUT = 0.3
PATIENCE = 40  # the whole cosine schedule runs: its low-learning-rate end is where a small net settles
SELECT_FROM_EPOCH = 10  # early epochs at a high learning rate are not candidates

# Augmentation: how one person's pen differs from another's, and how a canvas samples it.
MAX_ROTATION_DEGREES = 15
MAX_SHEAR = 0.35
ASPECT_RANGE = (0.7, 1.35)
POINT_NOISE = 0.01  # of the digit's size: a shaky hand or a coarse tablet
KEEP_POINTS = (0.3, 1.0)  # share of the recorded points kept: fast and slow writing, coarse and fine sampling
REORDER_PROBABILITY = 0.15  # a multi-stroke digit drawn in another order (a 5's bar first or last)
# Flagged 1s (strokes.with_flag): many Europeans start a 1 low on the left and run up a long flag before
# the stem. UNIPEN's writers rarely do, and without them both models read such 1s as 7s (the commonest
# error on European digits).
FLAG_PROBABILITY = 0.3  # of the one-stroke 1s, which keep their plain form in most batches
NON_DIGIT_FRACTION = 0.1  # random scribbles with uniform targets, so that the combined answer can still say "unsure"
# Two or three digits' strokes read as one, also with uniform targets: where strokes are grouped into
# digits (strokes.py), the two models' confidences decide whether neighbouring groups are one digit or
# several, and an online model sure of a number read as one digit would join touching digits.
NUMBER_FRACTION = 0.08  # of each batch: with the scribbles' 0.1, still more than four fifths real digits
NUMBER_GAP = (-0.15, 0.3)  # between neighbouring digits, of the digit height: overlapping to spaced
NUMBER_HEIGHT_VARIATION = 0.15  # neighbouring digits' heights differ by up to this share

QUICK_SAMPLES = 600
QUICK_EPOCHS = 1
QUICK_OUTPUT = Path("build/quick/online_model.keras")
WEIGHT_GRID = np.linspace(0, 1, 21)  # candidate image-model weights when combining the two views


def build_model(dropout=DROPOUT):
    """The online network: five 1D convolutions over the path, average and max pooled, and a softmax."""
    inputs = keras.Input(shape=(online.POINTS, online.FEATURES))
    x = inputs
    for filters, kernel, pool in ((64, 5, False), (64, 5, True), (128, 3, False), (128, 3, True), (128, 3, False)):
        x = layers.Conv1D(filters, kernel, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling1D()(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="online_cnn")


def vary_strokes(sample_strokes, rng):
    """One writer's digit as another hand and another tablet might record it."""
    linear = pen.random_linear_map(rng, MAX_ROTATION_DEGREES, MAX_SHEAR, ASPECT_RANGE)
    varied = pen.transform_strokes(sample_strokes, linear)
    size = max(float(np.ptp(np.concatenate(varied), axis=0).max()), 1e-6)
    keep = rng.uniform(*KEEP_POINTS)
    result = []
    for stroke in varied:
        if len(stroke) > 2:  # the ends stay: they are where the pen went down and up
            inside = np.flatnonzero(rng.random(len(stroke) - 2) < keep) + 1
            stroke = stroke[np.r_[0, inside, len(stroke) - 1]]
        result.append(stroke + rng.normal(0, POINT_NOISE * size, stroke.shape))
    if len(result) > 1 and rng.random() < REORDER_PROBABILITY:
        moved = int(rng.integers(len(result)))
        result.insert(0 if moved else len(result), result.pop(moved))
    return result


def number_strokes(samples, rng):
    """Two or three pen digits written side by side, left to right, as one list of strokes."""
    written, right = [], 0.0
    for index in rng.integers(len(samples), size=int(rng.integers(2, 4))):
        strokes = [np.asarray(stroke, dtype=np.float64) for stroke in samples[index]]
        x0, y0, width, height = pen.strokes_box(strokes)
        scale = rng.uniform(1 - NUMBER_HEIGHT_VARIATION, 1 + NUMBER_HEIGHT_VARIATION) / max(height, 1e-6)
        left = right + (rng.uniform(*NUMBER_GAP) if written else 0.0)
        written += [(stroke - (x0, y0)) * scale + [left, 0.0] for stroke in strokes]
        right = max(right, left + width * scale)
    return written


def scribble(rng):
    """A random smooth path that is no digit: a loop or zigzag with many turns."""
    anchors = rng.uniform(-1, 1, (int(rng.integers(6, 11)), 2))
    steps = np.linspace(0, 1, 8)[:, None]
    curve = [
        0.5
        * (
            2 * p1
            + (p2 - p0) * steps
            + (2 * p0 - 5 * p1 + 4 * p2 - p3) * steps**2
            + (3 * p1 - p0 - 3 * p2 + p3) * steps**3
        )
        for p0, p1, p2, p3 in zip(anchors, anchors[1:], anchors[2:], anchors[3:])
    ]
    return [np.vstack(curve)]


class OnlineBatches(keras.utils.PyDataset):
    """Batches of freshly varied pen digits and scribbles; the same seed gives the same batches."""

    def __init__(self, samples, labels, batch_size, seed, **kwargs):
        super().__init__(**kwargs)
        self.samples, self.labels, self.batch_size, self.seed = samples, labels, batch_size, seed
        self.epoch = 0

    def __len__(self):
        return int(np.ceil(len(self.samples) / self.batch_size))

    def __getitem__(self, index):
        rng = np.random.default_rng((self.seed, self.epoch, index))
        picked = rng.integers(len(self.samples), size=self.batch_size)
        features = []
        for i in picked:
            varied = vary_strokes(self.samples[i], rng)
            if self.labels[i] == 1 and len(varied) == 1 and rng.random() < FLAG_PROBABILITY:
                varied = pen.with_flag(varied, rng)  # after the slant and turn, so that the flag rises as said
            features.append(online.trajectory_features(varied))
        targets = [np.eye(10, dtype=np.float32)[self.labels[picked]]]
        count = int(round(NON_DIGIT_FRACTION * self.batch_size))
        features += [online.trajectory_features(scribble(rng)) for _ in range(count)]
        numbers = int(round(NUMBER_FRACTION * self.batch_size))
        features += [
            online.trajectory_features(vary_strokes(number_strokes(self.samples, rng), rng)) for _ in range(numbers)
        ]
        targets.append(np.full((count + numbers, 10), 0.1, np.float32))
        return np.stack(features), np.concatenate(targets)

    def on_epoch_end(self):
        self.epoch += 1


def validation_views(unipen, indices, seed):
    """Online features and image-model inputs of the validation digits, each drawn once on the canvas."""
    placed, images = online.validation_views(unipen, indices, seed)
    return np.stack([online.trajectory_features(strokes) for strokes in placed]), images


def fit_weight(image_probabilities, online_probabilities, labels):
    """The image-model weight in WEIGHT_GRID with the best accuracy (then the lowest log loss) on these digits."""
    best = None
    for weight in WEIGHT_GRID:
        combined = online.combine(image_probabilities, online_probabilities, weight)
        accuracy = float((combined.argmax(axis=1) == labels).mean())
        loss = float(-np.log(np.clip(combined[np.arange(len(labels)), labels], 1e-12, 1)).mean())
        if best is None or (accuracy, -loss) > (best[1], -best[2]):
            best = (float(weight), accuracy, loss)
    return best[0]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data root holding unipen/ (default: $DIGIT_DATA_DIR, else ../shared/data, else data/)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"model file to write (default: online_model.keras, or {QUICK_OUTPUT} with --quick)",
    )
    parser.add_argument(
        "--image-model", type=Path, default=DEFAULT_MODEL, help="the image model whose answers the weight combines with"
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SAMPLES} samples, {QUICK_EPOCHS} epoch")
    parser.add_argument(
        "--weight-only",
        action="store_true",
        help="keep the trained --output model and only refit and record the combining weight",
    )
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.output is None:
        args.output = QUICK_OUTPUT if args.quick else Path("online_model.keras")
    return args


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    try:
        unipen = datasets.load_unipen(Path(args.data_dir) / "unipen" if args.data_dir else None)
    except datasets.DataError as error:
        raise SystemExit(f"error: {error}") from None
    held_out = sorted(datasets.unipen_validation_writers(unipen))
    is_validation = np.isin(unipen.writers, held_out)
    train_indices, validation_indices = np.flatnonzero(~is_validation), np.flatnonzero(is_validation)
    epochs = QUICK_EPOCHS if args.quick else args.epochs
    if args.quick:
        rng = np.random.default_rng(args.seed)
        train_indices = np.sort(rng.permutation(train_indices)[:QUICK_SAMPLES])
        validation_indices = np.sort(rng.permutation(validation_indices)[: QUICK_SAMPLES // 2])
    samples = [unipen.strokes(index) for index in train_indices]
    batches = OnlineBatches(samples, unipen.labels[train_indices], BATCH_SIZE, args.seed, workers=2)
    validation_features, validation_images = validation_views(unipen, validation_indices, args.seed)
    validation_labels = unipen.labels[validation_indices]

    if args.weight_only:
        metrics = json.loads(metrics_path_for(args.output).read_text())
        model = keras.saving.load_model(args.output, compile=False)
        training_seconds = metrics["training_seconds"]
        history = None
        best_epoch = None
    else:
        print(
            f"training on {len(samples)} pen digits of {len(np.unique(unipen.writers[train_indices]))} writers, "
            f"validating on {len(validation_labels)} of {len(np.unique(unipen.writers[validation_indices]))} "
            "other writers",
            flush=True,
        )
        model, training_seconds, history, best_epoch = train(
            batches, validation_features, validation_labels, epochs, args
        )
    write_metrics(
        args,
        model,
        unipen,
        held_out,
        validation_indices,
        validation_features,
        validation_images,
        validation_labels,
        training_seconds,
        history,
        len(samples),
        best_epoch,
    )


def train(batches, validation_features, validation_labels, epochs, args):
    """Fit the online model; returns it (best epoch's weights), the seconds taken, the history and the best epoch."""
    steps = epochs * len(batches)
    schedule = keras.optimizers.schedules.CosineDecay(
        PEAK_LEARNING_RATE / 10,
        steps - min(len(batches), steps // 2),
        warmup_target=PEAK_LEARNING_RATE,
        warmup_steps=min(len(batches), steps // 2),
    )
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=WEIGHT_DECAY),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_accuracy",
        mode="max",
        patience=PATIENCE,
        restore_best_weights=True,
        start_from_epoch=min(SELECT_FROM_EPOCH, epochs - 1),
    )
    started = time.perf_counter()
    history = model.fit(
        batches,
        epochs=epochs,
        verbose=args.verbose,
        callbacks=[early_stopping],
        validation_data=(validation_features, np.eye(10, dtype=np.float32)[validation_labels]),
    )
    training_seconds = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    shipped = build_model()
    shipped.set_weights(model.get_weights())
    shipped.save(args.output)
    return model, training_seconds, history.history, (early_stopping.best_epoch or 0) + 1


def write_metrics(
    args,
    model,
    unipen,
    held_out,
    validation_indices,
    validation_features,
    validation_images,
    validation_labels,
    training_seconds,
    history,
    training_digits,
    best_epoch,
):
    """Score both views on the validation writers, fit the combining weight, and write the metrics JSON."""
    metrics_path = metrics_path_for(args.output)
    previous = json.loads(metrics_path.read_text()) if history is None else {}
    online_probabilities = model.predict(validation_features, batch_size=1000, verbose=0)
    image_probabilities = Recognizer(args.image_model).probabilities(validation_images)
    # Two-fold by writer: each half's weight is fitted on the other half, so no figure is fitted on itself.
    writers = unipen.writers[validation_indices]
    half = np.isin(writers, held_out[::2])
    folds = {}
    for name, scored in (("first_half", half), ("second_half", ~half)):
        weight = fit_weight(image_probabilities[~scored], online_probabilities[~scored], validation_labels[~scored])
        combined = online.combine(image_probabilities[scored], online_probabilities[scored], weight)
        folds[name] = {
            "digits": int(scored.sum()),
            "weight_fitted_on_other_half": weight,
            "image_accuracy": float((image_probabilities[scored].argmax(1) == validation_labels[scored]).mean()),
            "online_accuracy": float((online_probabilities[scored].argmax(1) == validation_labels[scored]).mean()),
            "combined_accuracy": float((combined.argmax(1) == validation_labels[scored]).mean()),
        }
    weight = fit_weight(image_probabilities, online_probabilities, validation_labels)
    metrics = {
        "model_file": args.output.name,
        "model_file_bytes": args.output.stat().st_size,
        "parameters": int(model.count_params()),
        "image_weight": weight,
        "image_model": args.image_model.name,
        "validation_writers": len(held_out),
        "validation_digits": len(validation_labels),
        "online_accuracy": float((online_probabilities.argmax(1) == validation_labels).mean()),
        "image_accuracy": float((image_probabilities.argmax(1) == validation_labels).mean()),
        "cross_fitted": folds,
        "best_epoch": best_epoch if best_epoch is not None else previous.get("best_epoch"),
        "epochs_run": len(history["loss"]) if history else previous.get("epochs_run"),
        "training_seconds": round(training_seconds, 1),
        "training_digits": training_digits,
        "quick_mode": args.quick,
        "seed": args.seed,
        "history": (
            {name: [round(float(value), 5) for value in values] for name, values in history.items()}
            if history
            else previous.get("history")
        ),
    }
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"validation writers: online {metrics['online_accuracy']:.2%}, image {metrics['image_accuracy']:.2%}; "
        + "; ".join(
            f"{name}: combined {fold['combined_accuracy']:.2%} (image {fold['image_accuracy']:.2%}, "
            f"weight {fold['weight_fitted_on_other_half']:.2f})"
            for name, fold in folds.items()
        )
        + f"; shipped weight {weight:.2f}; trained in {training_seconds / 60:.1f} min"
    )
    print(f"wrote {args.output} and {metrics_path_for(args.output)}")


if __name__ == "__main__":
    main()
