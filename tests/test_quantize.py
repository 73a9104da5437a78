import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import (InvalidWeightsError, NonInhibitingCrossbarWarning, NotAnNVMModelError, UnsupportedLayerError,
                    presets)
from tf_nvm.keras.backend import keras
from tf_nvm.mapping.reference import evaluate
from tf_nvm.keras.serialization import custom_objects
from tflite_export import build_mapping

L = keras.layers
PAPER = ["paper-2bit-unipolar", "paper-2bit-bipolar", "paper-4bit-unipolar", "paper-4bit-bipolar"]


def mlp():
    inputs = keras.Input((20,))
    x = L.Dense(32, activation="relu", name="fc1")(inputs)
    return keras.Model(inputs, L.Dense(5, name="fc2")(x))


def conv():
    return keras.Sequential([keras.Input((32, 4)), L.Conv1D(8, 5, padding="same", name="c1"), L.ReLU(name="r1"),
                             L.Flatten(name="flat"), L.Dense(3, name="out")])


def train_briefly(model, x, classes, epochs=2):
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    y = np.random.default_rng(1).integers(0, classes, len(x))
    model.fit(x, y, epochs=epochs, verbose=0, batch_size=32)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PAPER)
@pytest.mark.parametrize("builder, shape, classes", [(mlp, (20,), 5), (conv, (32, 4), 3)])
def test_codes_in_range_one_scale_and_numpy_forward_matches(preset, builder, shape, classes, rng, seeded):
    spec = presets.get(preset)
    x = rng.normal(size=(256,) + shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInhibitingCrossbarWarning)
        model = tf_nvm.quantize_model(builder(), preset, init="device")
    train_briefly(model, x, classes)
    codes = tf_nvm.weight_codes(model)
    assert len(codes) == 2
    scales = {c.scale for c in codes.values()}
    assert len(scales) == 1 and scales.pop() == tf_nvm.model_spec(model).weight_scale
    for c in codes.values():
        assert c.codes.dtype == np.int32
        assert c.codes.min() >= spec.code_min and c.codes.max() <= spec.code_max
        assert len(np.unique(c.codes)) > 1  # the grid is used, not collapsed to one code
    mapping = build_mapping(model)  # crossbar codes straight from weight_codes
    for layer in mapping.crossbar_layers:
        np.testing.assert_array_equal(layer.codes, codes[layer.name].codes.reshape(layer.rows, layer.cols))
    expected = evaluate(mapping, x).values()  # the exact integer forward pass of those codes
    got = model.predict(x, verbose=0)
    step = spec.activation_step
    # Same grid: values agree to float precision except where a float32 sum straddles a
    # rounding boundary (at most one activation step, rarely).
    assert np.max(np.abs(got - expected)) <= step + 1e-6
    assert np.mean(np.isclose(got, expected, atol=1e-4)) > 0.99


def test_unipolar_codes_stay_non_negative_throughout_training(rng, seeded):
    spec = presets.get("paper-2bit-unipolar")
    model = tf_nvm.quantize_model(mlp(), spec)  # float weights kept: half of them negative before snapping
    x = rng.normal(size=(512, 20)).astype(np.float32)
    seen = []
    check = keras.callbacks.LambdaCallback(
        on_batch_end=lambda b, logs: seen.append(min(int(c.codes.min()) for c in tf_nvm.weight_codes(model).values())))
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, rng.integers(0, 5, 512), epochs=2, batch_size=32, verbose=0, callbacks=[check])
    assert seen and min(seen) == 0
    fc1 = model.get_layer("quant_fc1")
    kernel, _ = tf_nvm.keras.nvm_model.crossbar_variables(fc1)
    assert kernel.numpy().min() >= -0.5 * tf_nvm.model_spec(model).weight_scale - 1e-7  # latent clamped


@pytest.mark.slow
@pytest.mark.parametrize("preset", PAPER)
def test_save_and_load_give_identical_predictions(preset, tmp_path, rng, seeded):
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(8,), kernel_sizes=(5,)),
                                  preset, init="device")
    x = rng.normal(size=(64, 128, 9)).astype(np.float32)
    train_briefly(model, x, 6, epochs=1)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = tf_nvm.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert tf_nvm.model_spec(loaded) == tf_nvm.model_spec(model)


def test_calibrated_scale_is_geometric_mean_of_layer_peaks(seeded):
    model = mlp()
    spec = presets.get("paper-4bit-bipolar")
    peaks = [np.abs(model.get_layer(n).kernel.numpy()).max() / 15 for n in ("fc1", "fc2")]
    assert tf_nvm.calibrate_scale(model, spec) == pytest.approx(np.sqrt(peaks[0] * peaks[1]), rel=1e-6)
    fixed = spec.replace(weight_scale_mode="fixed", weight_scale=0.02)
    assert tf_nvm.model_spec(tf_nvm.quantize_model(model, fixed)).weight_scale == 0.02


def test_quantizers_and_configs_round_trip_through_config():
    spec = presets.get("paper-2bit-unipolar").with_weight_scale(0.1)
    for name, cls in custom_objects().items():
        if ">" in name or not hasattr(cls, "get_config"):
            continue
        if name.startswith("NVM") and name.endswith(("Quantizer", "Config", "Constraint")) or name.endswith(
                "ProbabilityQuantizer"):
            obj = cls(spec)
            again = cls.from_config(json.loads(json.dumps(obj.get_config())))
            assert again.get_config() == obj.get_config(), name


@pytest.mark.slow
def test_relu_cnn_unipolar_warns_once_listing_non_inhibiting_layers_and_bipolar_does_not():
    model = tf_nvm.models.build("har_cnn")
    with pytest.warns(NonInhibitingCrossbarWarning) as record:
        tf_nvm.quantize_model(model, "paper-2bit-unipolar")
    assert len(record) == 1  # one warning per model (tests/test_unipolar_split.py pins the message)
    names = re.findall(r"'(\w+)' \(", str(record[0].message))
    assert names == ["conv1", "conv2", "fc", "logits"]  # conv0 sees the signed input
    assert "cannot inhibit" in str(record[0].message) and "Fix:" in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonInhibitingCrossbarWarning)
        tf_nvm.quantize_model(model, "paper-2bit-bipolar")
        tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn"), "paper-2bit-unipolar")


def test_unsupported_layer_names_layer_class_and_supported_list():
    model = keras.Sequential([keras.Input((10, 3)), L.LSTM(4, name="rnn"), L.Dense(2)])
    message = (r"layer 'rnn' of class LSTM is not supported by tf_nvm.quantize_model\. Supported layer classes: "
               r"Activation, Add, AveragePooling1D, .*Dense.*\. Fix: replace it")
    with pytest.raises(UnsupportedLayerError, match=message) as info:
        tf_nvm.quantize_model(model, "paper-2bit-bipolar")
    assert isinstance(info.value, TypeError)


def test_nan_weights_are_refused():
    model = mlp()
    kernel = model.get_layer("fc2").kernel
    kernel.assign(np.where(np.arange(kernel.shape[0] * kernel.shape[1]).reshape(kernel.shape) == 3, np.nan,
                           kernel.numpy()))
    with pytest.raises(InvalidWeightsError, match=r"layer 'fc2' weight 'fc2/kernel:0' holds 1 NaN/infinite "
                                                  r"value\(s\) of 160; quantize_model needs finite weights"):
        tf_nvm.quantize_model(model, "paper-2bit-bipolar")


def test_already_quantized_and_non_nvm_models_are_refused():
    nvm = tf_nvm.quantize_model(mlp(), "paper-2bit-bipolar")
    with pytest.raises(UnsupportedLayerError, match=r"is already quantized\. Fix: pass the float model"):
        tf_nvm.quantize_model(nvm, "paper-2bit-bipolar")
    with pytest.raises(NotAnNVMModelError, match=r"model 'model.*' has no NVM crossbar layer\. Fix: pass the model "
                                                 r"returned by tf_nvm.quantize_model"):
        tf_nvm.weight_codes(mlp())


@pytest.mark.slow
def test_keras3_mode_gives_clear_error():
    code = "import tensorflow as tf; tf.keras.layers; import tf_nvm"
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    import os
    env.update({k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME")})
    env.pop("TF_USE_LEGACY_KERAS", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert "KerasModeError: tf_nvm needs TensorFlow in legacy-Keras (tf_keras, Keras 2) mode" in result.stderr
    assert "Fix: `import tf_nvm` before tensorflow" in result.stderr


def test_no_per_layer_ranges_or_scales_anywhere(seeded):
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn"), "paper-2bit-unipolar", init="device")
    names = [w.name.split("/")[-1] for w in model.weights]
    # Only the float layers' own weights and tfmot's optimizer_step counters: no min/max/scale variables.
    assert not [n for n in names if any(k in n for k in ("_min", "_max", "min_var", "max_var", "scale"))], names
    quantizers = set()
    for layer in model.layers:
        config = getattr(layer, "quantize_config", None)
        if config is not None:
            quantizers.add(config.spec)
        quantizer = getattr(layer, "quantizer", None)
        if quantizer is not None:
            quantizers.add(quantizer.spec)
    assert len(quantizers) == 1  # every quantizer of the model holds the same resolved spec


def test_unknown_time_axis_is_a_named_error():
    model = tf_nvm.models.build("har_signed_cnn", input_shape=(None, 9), filters=(4,), kernel_sizes=(3,))
    with pytest.raises(UnsupportedLayerError, match=r"quantize_model: model 'har_signed_cnn' input 'window.*' has "
                                                    r"shape \(None, None, 9\): an unknown \(None\) axis besides the "
                                                    r"batch axis cannot be quantized .*Fix: build the model with a "
                                                    r"fixed input shape"):
        tf_nvm.quantize_model(model, "paper-2bit-unipolar")


def test_a_huge_layer_that_zeroes_the_others_warns(seeded):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="huge")(inputs)
    outputs = keras.layers.Dense(2, name="normal")(hidden)
    model = keras.Model(inputs, outputs)
    model.get_layer("huge").kernel.assign(np.full((4, 4), 3e38, np.float32))
    with pytest.warns(tf_nvm.ZeroCodesWarning, match=r"layer 'quant_normal': every device code is 0 under the shared "
                                                     r"weight scale .*Fix: use init='device'") as record:
        nvm = tf_nvm.quantize_model(model, "paper-4bit-bipolar", init="keep")
    assert [str(r.message).split("'")[1] for r in record if r.category is tf_nvm.ZeroCodesWarning] == ["quant_normal"]
    assert not tf_nvm.weight_codes(nvm)["quant_normal"].codes.any()
