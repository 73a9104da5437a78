"""Training-speed work must not change one bit: a few NVM training steps pinned against stored values.

`tests/data/train_speed_reference.npz` holds what the code computed before the training step was
made cheaper (issue 13): the per-step losses, the device codes and int32 biases (`tf_nvm.weight_codes`),
a hash of every weight (latent kernels, BatchNorm statistics, optimizer-free), and the forward outputs
in inference (LiteRT and TFLite Micro emulation) and in training mode, for small models with
Conv2D, Conv1D, digital BatchNorm, ReLU layers and activations, max pooling, the sign split
(Concatenate + Rescaling), global average pooling and Dense. The test trains the same models from the
same seed on the same data and asserts exact equality.

Regenerate (only when a change of numerics is intended, and say so in the commit)::

    PYTHONPATH=. python3 tests/test_train_speed_equivalence.py --write
"""

import hashlib
import os
import sys
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm._keras import keras
from tf_nvm.modes import emulate_runtime

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "train_speed_reference.npz")
STEPS = 6
BATCH = 16
L = keras.layers


def _vgg_like():
    """Conv2D/BatchNorm/ReLU/max-pool/GAP/Dense, with a ReLU layer, a fused ReLU and an Activation."""
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same")(inputs)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.BatchNormalization()(x)
    x = L.Conv2D(16, 3, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(12, activation="relu")(x)
    outputs = L.Dense(10)(x)
    return keras.Model(inputs, outputs)


def _har_like():
    return tf_nvm.models.build("har_signed_cnn", input_shape=(32, 9), filters=(8, 8), kernel_sizes=(5, 3))


CASES = {
    "vgg-2bit-unipolar": (_vgg_like, (8, 8, 3), 10, "paper-2bit-unipolar"),
    "vgg-4bit-bipolar": (_vgg_like, (8, 8, 3), 10, "paper-4bit-bipolar"),
    "har-2bit-unipolar": (_har_like, (32, 9), 6, "paper-2bit-unipolar"),
    "har-4bit-bipolar": (_har_like, (32, 9), 6, "paper-4bit-bipolar"),
}


def _digest(array):
    array = np.ascontiguousarray(array)
    return hashlib.sha256(array.dtype.str.encode() + str(array.shape).encode() + array.tobytes()).hexdigest()[:16]


def compute(case):
    """Trains case ``case`` for `STEPS` steps; returns {key: array} of everything pinned."""
    builder, shape, classes, preset = CASES[case]
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((STEPS + 1, BATCH) + shape) * 2.0).astype(np.float32)
    y = rng.integers(0, classes, (STEPS + 1, BATCH))
    keras.backend.clear_session()  # layer names (and so the keys) do not depend on what ran before
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(builder(), preset, init="device")
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = [model.train_on_batch(x[i], y[i]) for i in range(STEPS)]
    out = {"losses": np.asarray(losses, np.float32)}
    for index, codes in enumerate(tf_nvm.weight_codes(model).values()):
        out[f"codes/{index}"] = codes.codes.astype(np.int8)
        if codes.bias_int32 is not None:
            out[f"bias_int32/{index}"] = codes.bias_int32
    out["weight_digests"] = np.asarray([f"{i}:{_digest(w.numpy())}".encode() for i, w in enumerate(model.weights)])
    out["inference"] = model(x[STEPS], training=False).numpy()
    with emulate_runtime("tflm"):
        out["inference_tflm"] = model(x[STEPS], training=False).numpy()
    out["training_forward"] = model(x[STEPS], training=True).numpy()
    return out


def _reference(case):
    with np.load(REFERENCE, allow_pickle=False) as data:
        prefix = f"{case}/"
        return {key[len(prefix):]: data[key] for key in data.files if key.startswith(prefix)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_steps_are_bit_identical_to_the_reference(case):
    expected = _reference(case)
    got = compute(case)
    assert sorted(got) == sorted(expected)
    for key in sorted(expected):
        np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{case}: {key}", strict=True)


def _write():
    arrays = {}
    for case in sorted(CASES):
        for key, value in compute(case).items():
            arrays[f"{case}/{key}"] = value
    os.makedirs(os.path.dirname(REFERENCE), exist_ok=True)
    np.savez_compressed(REFERENCE, **arrays)
    print(f"wrote {REFERENCE} ({os.path.getsize(REFERENCE)} bytes, {len(arrays)} arrays)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: PYTHONPATH=. python3 tests/test_train_speed_equivalence.py --write")
    _write()
