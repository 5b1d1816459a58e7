"""Export a .keras model (the image model or the online model) to ONNX for fast inference without TensorFlow.

    python export.py                                   # digit_model.keras -> digit_model.onnx
    python export.py --model online_model.keras        # the online (pen path) model
    python export.py --model build/quick/digit_model.keras

The .keras file stays the source of truth: the export records its SHA-256, the
recognizer ignores an export whose hash no longer matches, and the export is
checked against the Keras model on random and MNIST-like inputs before it is kept.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from recognizer import DEFAULT_MODEL, HASH_METADATA_KEY, KerasBackend, OnnxBackend, file_sha256, onnx_path_for

TOLERANCE = 1e-5  # largest allowed difference between Keras and ONNX probabilities
CHECK_IMAGES = 256  # random images compared before the export is accepted


def export(model_path, onnx_path=None):
    """Write the ONNX export of model_path, stamped with its hash; returns its path."""
    model_path = Path(model_path)
    onnx_path = Path(onnx_path) if onnx_path else onnx_path_for(model_path)
    import onnx

    keras_model = KerasBackend(model_path)
    input_shape = tuple(keras_model.model.input_shape[1:])  # (28, 28, 1) for images, (points, features) online
    keras_model(np.zeros((1, *input_shape), np.float32))  # Keras exports only models that have been called
    with tempfile.TemporaryDirectory() as folder:
        raw_path = Path(folder) / "model.onnx"
        keras_model.model.export(str(raw_path), format="onnx", verbose=False)
        exported = onnx.load(str(raw_path))
        entry = exported.metadata_props.add()
        entry.key, entry.value = HASH_METADATA_KEY, file_sha256(model_path)
        checked_path = Path(folder) / "checked.onnx"
        onnx.save(exported, str(checked_path))
        images = np.random.default_rng(0).random((CHECK_IMAGES, *input_shape), dtype=np.float32)
        images[: CHECK_IMAGES // 2] = (images[: CHECK_IMAGES // 2] > 0.8).astype(np.float32)
        difference = float(np.abs(OnnxBackend(checked_path)(images) - keras_model(images)).max())
        if difference > TOLERANCE:
            raise SystemExit(f"error: the ONNX export differs from Keras by {difference:.2e} > {TOLERANCE}")
        onnx_path.write_bytes(checked_path.read_bytes())
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e3:.0f} kB), "
          f"max difference from Keras {difference:.1e}")
    return onnx_path


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
