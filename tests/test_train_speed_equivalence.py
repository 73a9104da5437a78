"""Training-speed work must not change one bit: NVM training steps pinned against stored values.

`tests/data/train_speed_reference.npz` holds what the code computed before the training step was
made cheaper (issue 13): the per-step losses, the device codes and int32 biases (`tf_nvm.weight_codes`),
every weight (latent kernels, BatchNorm statistics, optimizer-free), and the forward outputs
in inference (LiteRT and TFLite Micro emulation) and in training mode, for small models with
Conv2D, Conv1D, digital BatchNorm, ReLU layers and activations, max pooling, the sign split
(Concatenate + Rescaling), global average pooling and Dense. The test trains the same models from the
same seed on the same data and asserts exact equality of the losses, codes, biases and outputs. The float
latent weights are compared within `WEIGHT_RTOL` / `WEIGHT_ATOL`: their last bits depend on the CPU's
convolution and reduction kernels (an AVX-512 machine gave other BatchNorm statistics and latent kernels
in the last bits than the machine that wrote the file, with every code, loss and output identical), and
the pinned codes and outputs are what those weights must not change.

The cheaper quantizers are also compared with the formulas they replaced on hostile values (ties,
signed zeros, range edges, infinities), and the ReLUs that skip their quantizer are checked.

Regenerate the stored values (only when a change of numerics is intended, and say so in the commit)::

    PYTHONPATH=. python3 tests/test_train_speed_equivalence.py --write
"""

import os
import sys
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm.keras.backend import keras, tf
from tf_nvm.core.modes import converter_graph, emulate_runtime
from tf_nvm.keras.quantizers import NVMCrossbarOutputQuantizer, NVMOnGridQuantizer, round_to_activation_grid

WEIGHT_RTOL, WEIGHT_ATOL = 1e-5, 1e-6
"""Tolerance of the float latent weights (kernels, BatchNorm statistics): everything else is pinned exactly."""
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
    for index, weight in enumerate(model.weights):
        out[f"weights/{index}"] = weight.numpy()
    out["inference"] = model(x[STEPS], training=False).numpy()
    with emulate_runtime("tflm"):
        out["inference_tflm"] = model(x[STEPS], training=False).numpy()
    out["training_forward"] = model(x[STEPS], training=True).numpy()
    return out


def _reference(case):
    with np.load(REFERENCE, allow_pickle=False) as data:
        prefix = f"{case}/"
        return {key[len(prefix):]: data[key] for key in data.files if key.startswith(prefix)}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_training_steps_are_bit_identical_to_the_reference(case):
    expected = _reference(case)
    got = compute(case)
    assert sorted(got) == sorted(expected)
    for key in sorted(expected):
        if key.startswith("weights/"):  # float latents: their last bits follow the CPU's kernels (see module doc)
            np.testing.assert_allclose(got[key], expected[key], rtol=WEIGHT_RTOL, atol=WEIGHT_ATOL,
                                       err_msg=f"{case}: {key}", strict=True)
        else:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{case}: {key}", strict=True)


# ------------------------------------------------- the cheaper quantizers against the formulas they replace
def _old_activation(x, spec):
    clipped = tf.clip_by_value(x, spec.activation_min, spec.activation_max)
    step = spec.activation_step
    return clipped + tf.stop_gradient(tf.round(clipped / step) * step - clipped)


def _old_crossbar(x, spec):
    step = tf.constant(spec.activation_step, tf.float32)
    scale = tf.constant(spec.weight_scale, tf.float32)
    clipped = tf.clip_by_value(x, spec.activation_min, spec.activation_max)
    limit = tf.constant(2.0 ** 23, tf.float32)
    acc = tf.clip_by_value(tf.round(tf.stop_gradient(x) / (step * scale)), -limit, limit)
    codes = tf.clip_by_value(tf.round(acc * scale), -128.0, 127.0)
    return codes * step + (clipped - tf.stop_gradient(clipped))


def _hostile_values(spec, rng):
    step, top = spec.activation_step, spec.activation_range
    grid = np.arange(-130, 131) * step
    values = [rng.standard_normal(20000) * top / 2, grid, grid + step / 2, grid - step / 2,
              np.nextafter(grid + step / 2, np.inf), np.nextafter(grid + step / 2, -np.inf),
              [0.0, -0.0, -step / 4, step / 4, top, -top, top * 127 / 128, 1e30, -1e30, np.inf, -np.inf]]
    return np.concatenate([np.asarray(v, np.float64).ravel() for v in values]).astype(np.float32)


def _value_and_gradient(fn, x, spec):
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, spec)
        upstream = tf.constant(np.random.default_rng(2).standard_normal(x.shape).astype(np.float32))
        return y, tape.gradient(y, x, output_gradients=upstream)

    y, dx = run(tf.constant(x))
    dx = dx.numpy()
    return y.numpy().view(np.int32), np.where(dx == 0, np.float32(0), dx).view(np.int32)


@pytest.mark.parametrize("weight_scale", [2.0 ** -20, 0.05, 3.0])
@pytest.mark.parametrize("activation_range", [8.0, 10.0])
def test_cheaper_quantizers_give_the_old_bits_and_gradients(weight_scale, activation_range):
    """Values (sign of zero included) and straight-through gradients equal the replaced formulas, bit for bit.

    (A zero gradient may be -0.0 now: compared as +0.0, see `tf_nvm.keras.quantizers._with_clip_gradient`.)
    """
    spec = tf_nvm.core.presets.get("paper-4bit-bipolar").replace(activation_range=activation_range,
                                                            weight_scale_mode="fixed", weight_scale=weight_scale)
    x = _hostile_values(spec, np.random.default_rng(0))
    crossbar = NVMCrossbarOutputQuantizer(spec)
    for new, old in ((round_to_activation_grid, _old_activation),
                     (lambda v, s: crossbar(v, True, {}), _old_crossbar)):
        got, expected = _value_and_gradient(new, x, spec), _value_and_gradient(old, x, spec)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


def _relu_configs(model, preset="paper-4bit-bipolar"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nvm = tf_nvm.quantize_model(model, preset)
    return {layer.name.removeprefix("quant_"): type(layer.quantize_config).__name__ for layer in nvm.layers
            if hasattr(layer, "quantize_config") and "relu" in layer.name}


def test_only_relus_of_on_grid_inputs_skip_their_quantizer():
    inputs = keras.Input((6, 6, 2))
    x = L.Conv2D(4, 3, padding="same")(inputs)
    a = L.ReLU(name="relu_after_conv")(x)
    b = L.ReLU(name="relu_after_dropout")(L.Dropout(0.5)(a))
    c = L.Activation("relu", name="relu_activation")(L.MaxPooling2D(2)(L.BatchNormalization()(b)))
    d = L.ReLU(name="relu_after_rescale")(L.Rescaling(1.0, offset=0.3)(c))  # digital output: on the grid
    e = L.ReLU(name="relu_after_softmax")(L.Softmax()(L.Flatten()(d)))
    f = L.ReLU(name="relu_of_input")(L.Flatten()(inputs))
    outputs = L.Dense(3)(L.Concatenate()([e, f]))
    assert _relu_configs(keras.Model(inputs, outputs)) == {
        "relu_after_conv": "NVMOnGridConfig", "relu_after_dropout": "NVMDigitalConfig",
        "relu_activation": "NVMOnGridConfig", "relu_after_rescale": "NVMOnGridConfig",
        "relu_after_softmax": "NVMDigitalConfig", "relu_of_input": "NVMOnGridConfig"}


def test_on_grid_quantizer_is_the_identity_except_in_the_converter_graph():
    spec = tf_nvm.core.presets.get("paper-2bit-unipolar")
    x = tf.constant([0.0, 0.0625, -8.0, 7.9375])
    assert NVMOnGridQuantizer(spec)(x, True, {}) is x
    graph = tf.function(lambda v: NVMOnGridQuantizer(spec)(v, False, {}))
    with converter_graph():
        ops = {op.type for op in graph.get_concrete_function(tf.TensorSpec([4])).graph.get_operations()}
    assert "FakeQuantWithMinMaxVars" in ops


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
