"""Export a .keras model (the image model or the online model) to ONNX for fast inference without TensorFlow.

    python export.py                                   # digit_model.keras -> digit_model.onnx
    python export.py --model online_model.keras        # the online (pen path) model
    python export.py --model build/quick/digit_model.keras

The .keras file stays the source of truth: the export records its SHA-256, the
recognizer ignores an export whose hash no longer matches, and the export is
checked against the Keras model on random and MNIST-like inputs before it is kept.
A model whose last layer is a dense softmax (both models here) gets a second output,
"features": that layer's input, the embedding adaptation.py fine-tunes the layer on.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from recognizer import DEFAULT_MODEL, HASH_METADATA_KEY, KerasBackend, OnnxBackend, file_sha256, onnx_path_for

TOLERANCE = 1e-5  # largest allowed difference between Keras and ONNX probabilities
# Features are unbounded ReLU outputs: compared relative to their largest value.
FEATURE_TOLERANCE = 1e-5
OUTPUT_NAMES = ("probabilities", "features")  # the ONNX outputs, in this order
CHECK_IMAGES = 256  # random images compared before the export is accepted


def export(model_path, onnx_path=None):
    """Write the ONNX export of model_path, stamped with its hash; returns its path."""
    model_path = Path(model_path)
    onnx_path = Path(onnx_path) if onnx_path else onnx_path_for(model_path)
    import onnx

    keras_model = KerasBackend(model_path)
    input_shape = tuple(keras_model.model.input_shape[1:])  # (28, 28, 1) for images, (points, features) online
    with_features = keras_model.with_features()
    dummy = np.zeros((1, *input_shape), np.float32)
    keras_model(dummy)  # Keras exports only models that have been called
    exported_model = keras_model.model
    if with_features is not None:
        with_features(dummy)
        exported_model = with_features
    with tempfile.TemporaryDirectory() as folder:
        raw_path = Path(folder) / "model.onnx"
        exported_model.export(str(raw_path), format="onnx", verbose=False)
        exported = onnx.load(str(raw_path))
        _rename_outputs(exported)
        entry = exported.metadata_props.add()
        entry.key, entry.value = HASH_METADATA_KEY, file_sha256(model_path)
        checked_path = Path(folder) / "checked.onnx"
        onnx.save(exported, str(checked_path))
        images = np.random.default_rng(0).random((CHECK_IMAGES, *input_shape), dtype=np.float32)
        images[: CHECK_IMAGES // 2] = (images[: CHECK_IMAGES // 2] > 0.8).astype(np.float32)
        exported_backend = OnnxBackend(checked_path)
        difference = float(np.abs(exported_backend(images) - keras_model(images)).max())
        if difference > TOLERANCE:
            raise SystemExit(f"error: the ONNX export differs from Keras by {difference:.2e} > {TOLERANCE}")
        if with_features is not None:
            _, features = exported_backend.embed(images)
            _, expected = keras_model.embed(images)
            relative = float(np.abs(features - expected).max() / max(float(np.abs(expected).max()), 1e-12))
            if relative > FEATURE_TOLERANCE:
                raise SystemExit(
                    f"error: the ONNX features differ from Keras by {relative:.2e} of their "
                    f"largest value > {FEATURE_TOLERANCE}"
                )
        onnx_path.write_bytes(checked_path.read_bytes())
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e3:.0f} kB), max difference from Keras {difference:.1e}")
    return onnx_path


def _rename_outputs(exported):
    """The graph's outputs renamed to OUTPUT_NAMES, so the recognizer asks for them by name."""
    renames = {output.name: name for output, name in zip(exported.graph.output, OUTPUT_NAMES)}
    for node in exported.graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
        node.input[:] = [renames.get(name, name) for name in node.input]
    for output in exported.graph.output:
        output.name = renames[output.name]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the .keras model to export")
    parser.add_argument("--output", type=Path, default=None, help="ONNX file (default: beside the model)")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        sys.exit(f"error: {args.model} does not exist; train it first with `python train.py`")
    export(args.model, args.output)


if __name__ == "__main__":
    main()
