"""`tf_nvm.core.modes.emulate_runtime("tflm")`: the Keras NVM model reproduces TFLite Micro's int8 outputs.

TFLite Micro's reference kernels requantize with two roundings (`tf_nvm.keras.fixed_point`); in the default mode
the Keras model rounds once like LiteRT's default (XNNPACK) kernels instead, 1 LSB off TFLite Micro per op and
2-3 LSB at the logits. Inside the emulation the Keras model computes the reference kernels' integer maths.
"""

import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm.keras.backend import keras, tf
from tf_nvm.keras.fixed_point import (
    _numpy_reference,
    float32_multiplier_parts,
    mean_multiplier,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
)
from tf_nvm.core.modes import emulate_runtime, emulated_runtime
from tflite_export import compare, export_tflite

L = keras.layers


# ------------------------------------------------------------------ fixed point
def test_quantize_multiplier_matches_tflite_definition():
    assert quantize_multiplier(1.0) == (2 ** 30, 1)
    assert quantize_multiplier(0.5) == (2 ** 30, 0)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0 ** -40) == (0, 0)  # shift < -31: zero
    assert quantize_multiplier(1 - 2.0 ** -40) == (2 ** 30, 1)  # frac * 2^31 rounds up to 2^31
    m, shift = quantize_multiplier(0.017533279955387115)
    assert 2 ** 30 <= m < 2 ** 31 and shift == -5
    assert abs(m * 2.0 ** (shift - 31) - 0.017533279955387115) <= 2.0 ** (shift - 32)


def test_float32_parts_equal_quantize_multiplier(rng):
    values = np.float32(np.exp(rng.uniform(-20, 3, 200)))
    fixed, shift = float32_multiplier_parts(tf.constant(values))
    for v, f, s in zip(values, fixed.numpy(), shift.numpy()):
        assert quantize_multiplier(float(v)) == (f, s)


def test_multiply_by_quantized_multiplier_is_the_two_rounding_reference(rng):
    acc = np.concatenate([rng.integers(-2 ** 20, 2 ** 20, 3000), np.arange(-300, 300)])
    for real in (0.017533279955387115, 0.0078125 * 3, 1.0, 0.999, 1.7, 1 / 3):
        fixed, shift = quantize_multiplier(real)
        got = multiply_by_quantized_multiplier(tf.constant(acc), fixed, shift).numpy()
        np.testing.assert_array_equal(got, _numpy_reference(acc, fixed, shift))
        assert np.abs(got - acc * real).max() <= 1  # within 1 of the exact product
    # Rounding 1 (high multiply): ties up, 2.5 -> 3, -2.5 -> -2 (shift 0: no second rounding).
    fixed, shift = quantize_multiplier(0.5)
    got = multiply_by_quantized_multiplier(tf.constant([5, -5, 7, -7]), fixed, shift).numpy()
    assert got.tolist() == [3, -2, 4, -3]
    # Rounding 2 (rounding shift): ties away from zero, 1.5 -> 2, -1.5 -> -2; and twice: 5 * 0.25 = 1.25 -> 2.
    fixed, shift = quantize_multiplier(0.25)
    assert multiply_by_quantized_multiplier(tf.constant([6, -6, 5]), fixed, shift).numpy().tolist() == [2, -2, 2]


def test_mean_multiplier():
    fixed, shift = mean_multiplier(30)
    assert (fixed, shift) == ((2 ** 30 << 4) // 30, 1 - 4)
    sums = np.arange(-3840, 3811)
    got = multiply_by_quantized_multiplier(tf.constant(sums), fixed, shift).numpy()
    error = np.abs(got - sums / 30)
    # Not always the nearest level: the truncated multiplier and the two roundings move some ties
    # (and a few values just past them) by one level; never further.
    assert error.max() < 1 and (error > 0.5).any()


def test_context_manager_nests_and_rejects_unknown_names():
    assert emulated_runtime() == "litert"
    with emulate_runtime("tflm"):
        assert emulated_runtime() == "tflm"
        with emulate_runtime("litert"):
            assert emulated_runtime() == "litert"
        assert emulated_runtime() == "tflm"
    assert emulated_runtime() == "litert"
    with pytest.raises(tf_nvm.ModeError, match=r"emulate_runtime: value 'tflite' is not allowed; allowed: "
                                               r"\['litert', 'tflm', 'litert-reference'\]. Fix:"), \
            emulate_runtime("tflite"):
        pass


# ------------------------------------------------------------------ per op
def _op_model(layer, rng):
    spec = tf_nvm.core.presets.get("paper-4bit-bipolar")
    shape = (8,) if layer == "batch_norm" else (32, 8)
    inputs = keras.Input(shape)
    if layer == "conv":
        x = L.Conv1D(16, 5, padding="same", activation="relu")(inputs)
    elif layer == "dense":
        x = L.Dense(16)(L.Flatten()(inputs))
    elif layer == "sign_split":
        x = L.Conv1D(8, 3)(L.Concatenate()([inputs, L.Rescaling(-1.0)(inputs)]))
    else:
        # An identity crossbar (codes = I, weight scale 1: exact in every runtime) feeding the op.
        spec = spec.replace(weight_scale_mode="fixed", weight_scale=1.0)
        if layer == "batch_norm":
            x = L.BatchNormalization(name="bn")(L.Dense(8, use_bias=False, name="identity")(inputs))
        else:  # global average pooling over 30 positions: sum / 30 is often a tie
            x = L.GlobalAveragePooling1D()(L.Conv1D(8, 3, use_bias=False, name="identity")(inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(keras.Model(inputs, x), spec,
                                      init="keep" if layer in ("batch_norm", "gap") else "device")
    if layer in ("batch_norm", "gap"):
        kernel, _ = tf_nvm.keras.nvm_model.crossbar_variables(model.get_layer("quant_identity"))
        eye = np.eye(8, dtype=np.float32)
        kernel.assign(eye if layer == "batch_norm" else np.stack([np.zeros_like(eye), eye, np.zeros_like(eye)]))
    if layer == "batch_norm":
        bn = model.get_layer("quant_bn").layer
        bn.moving_variance.assign(rng.uniform(0.05, 4.0, 8))
        bn.moving_mean.assign(rng.normal(0, 2.0, 8))
        bn.gamma.assign(rng.normal(0, 1.5, 8))
        bn.beta.assign(rng.normal(0, 2.0, 8))
    return model, rng.normal(0, 4, (1500,) + shape).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["conv", "dense", "batch_norm", "gap", "sign_split"])
def test_each_op_is_exact_in_tflite_micro_and_litert(layer, tmp_path, rng, seeded):
    model, x = _op_model(layer, rng)
    export_tflite(model, tmp_path / "m.tflite", measure_arena=False)
    results = compare(model, tmp_path / "m.tflite", x, runtimes=("litert", "litert-reference", "tflm"),
                      arena_size=1 << 20)
    old = compare(model, tmp_path / "m.tflite", x, runtimes=("tflm",), arena_size=1 << 20, emulate="litert")
    print(f"\n{layer}: " + "\n  ".join(str(r) for r in results.values()) + f"\n  default-mode Keras vs {old['tflm']}")
    assert results["litert"].differing == 0, str(results["litert"])
    assert results["tflm"].differing == 0, str(results["tflm"])
    assert results["litert-reference"].differing == 0, str(results["litert-reference"])


# ------------------------------------------------------------------ end to end (HAR)
E2E_PRESETS = ["paper-2bit-unipolar", "paper-4bit-bipolar"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", E2E_PRESETS)
def test_har_model_reproduces_tflite_micro_exactly(preset, har_standardised, tmp_path):
    """har_signed_cnn (24, 24), 2 epochs: every runtime matches the Keras model in its emulation mode.

    Keras in the default mode stays bit-exact with LiteRT's default kernels; in `emulate_runtime("tflm")`
    it equals TFLite Micro, in ``"litert-reference"`` LiteRT's reference resolver (0 differing outputs), where
    the default mode is 1-2 LSB off both.
    """
    x_train, y_train, x_test, _, _ = har_standardised
    keras.utils.set_random_seed(0)
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(24, 24), kernel_sizes=(9, 5)),
                                  preset, init="device")
    model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train[:3000], y_train[:3000], epochs=2, batch_size=64, verbose=0)
    export_tflite(model, tmp_path / "har.tflite", x_train[:128], measure_arena=False)
    x = x_test[:1000]
    runtimes = ("litert", "litert-reference", "tflm")
    results = compare(model, tmp_path / "har.tflite", x, runtimes=runtimes, arena_size=1 << 20)
    old = compare(model, tmp_path / "har.tflite", x, runtimes=("litert-reference", "tflm"), arena_size=1 << 20,
                  emulate="litert")
    print(f"\n{preset}: " + "\n  ".join(str(r) for r in results.values())
          + "".join(f"\n  default-mode Keras vs {r}" for r in old.values()))
    for name in runtimes:
        assert results[name].examples == 1000 and results[name].differing == 0, str(results[name])
    assert old["tflm"].differing > 0  # the emulation is what makes TFLite Micro exact


def test_emulation_keeps_the_straight_through_gradients(rng):
    """Only the forward values change: every kernel still gets the straight-through gradient.

    (Not identical to the default mode's: the gradient of a kernel is computed from the forward values,
    which differ by an LSB here and there.)"""
    keras.utils.set_random_seed(1)
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(4, 4), kernel_sizes=(3, 3),
                                                      input_shape=(16, 3)), "paper-4bit-bipolar", init="device")
    x = tf.constant(rng.normal(0, 1, (8, 16, 3)).astype(np.float32))
    weights = [w for w in model.trainable_weights if "kernel" in w.name]
    grads, outputs = {}, {}
    for mode in ("litert", "tflm"):
        with emulate_runtime(mode), tf.GradientTape() as tape:
            y = model(x, training=False)
            loss = tf.reduce_sum(y * tf.range(1.0, 7.0))
        grads[mode] = [g.numpy() for g in tape.gradient(loss, weights)]
        outputs[mode] = y.numpy()
    for a, b in zip(grads["litert"], grads["tflm"]):
        assert np.isfinite(b).all() and np.abs(b).sum() > 0
        assert np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.9
    assert np.abs(outputs["litert"] - outputs["tflm"]).max() <= 3 * tf_nvm.model_spec(model).activation_step


@pytest.mark.slow
def test_emulation_survives_save_and_load(rng, tmp_path):
    """The Dense flag (passed by the config when the wrapper builds) and the GAP spec come back with the model."""
    keras.utils.set_random_seed(2)
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(4, 4), kernel_sizes=(3, 3),
                                                      input_shape=(16, 3)), "paper-2bit-unipolar", init="device")
    model.save(tmp_path / "m.keras")
    loaded = tf_nvm.load_model(tmp_path / "m.keras")
    flags = {layer.name: layer._output_quantizers[0].fully_connected for layer in loaded.layers
             if layer.name in ("quant_conv0", "quant_conv1", "quant_logits")}
    assert flags == {"quant_conv0": False, "quant_conv1": False, "quant_logits": True}
    assert loaded.get_layer("quant_gap").layer.spec == tf_nvm.model_spec(model)
    x = tf.constant(rng.normal(0, 2, (64, 16, 3)).astype(np.float32))
    for mode in ("litert", "tflm", "litert-reference"):
        with tf_nvm.emulate_runtime(mode):
            np.testing.assert_array_equal(model(x, training=False).numpy(), loaded(x, training=False).numpy())
