"""The mapping file alone reproduces the Keras NVM model.

A plain-numpy evaluator (tests/mapping_reference.py) reads only the exported
mapping (JSON + npz) and runs HAR test windows through crossbar tiles (column
sums of input codes times device levels, pair / reference subtraction,
digital partial sums) and the digital periphery; its outputs must equal the
Keras NVM model's, for a conv model and an MLP, unipolar and bipolar, and for
other hardware placements of the same trained network (small tiles, offset
mapping, dual-rail inputs).
"""

import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm._keras import keras
from tflite_export import export_crossbar

from mapping_reference import evaluate

L = keras.layers


def har_mlp(input_shape=(128, 9), hidden=32, num_classes=6):
    """MLP whose crossbars both see signed inputs: [x, -x] -> Dense -> BN -> ReLU -> BN -> [h, -h] -> Dense."""
    inputs = keras.Input(input_shape, name="window")
    x = L.Flatten(name="flat")(inputs)
    x = L.Concatenate(name="in_pm")([x, L.Rescaling(-1.0, name="in_neg")(x)])
    x = L.Dense(hidden, name="fc1")(x)
    x = L.BatchNormalization(name="bn1a")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.BatchNormalization(name="bn1b")(x)
    x = L.Concatenate(name="head_pm")([x, L.Rescaling(-1.0, name="head_neg")(x)])
    return keras.Model(inputs, L.Dense(num_classes, name="logits")(x), name="har_mlp")


def har_conv():
    return tf_nvm.models.build("har_signed_cnn", filters=(12, 12), kernel_sizes=(9, 5))


@pytest.fixture(scope="module")
def har():
    (x_train, y_train), (x_test, _) = tf_nvm.datasets.load_har(verbose=False)
    mean, std = x_train.mean((0, 1)), x_train.std((0, 1)) + 1e-8
    return ((x_train - mean) / std).astype(np.float32), y_train, ((x_test - mean) / std).astype(np.float32)


def _trained(builder, preset, har):
    x_train, y_train, _ = har
    keras.utils.set_random_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(builder(), preset, init="device")
    model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train[:3000], y_train[:3000], epochs=1, batch_size=64, verbose=0)
    return model


def _check(model, har, prefix, spec=None):
    x_test = har[2]
    mapping = export_crossbar(model, prefix, spec=spec)
    got = evaluate(prefix, x_test)["__float__"]  # reads only PREFIX.json + PREFIX.npz
    want = model.predict(x_test, verbose=0, batch_size=512)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    return mapping


@pytest.mark.parametrize("preset", ["paper-2bit-unipolar", "paper-4bit-bipolar"])
@pytest.mark.parametrize("builder", [har_conv, har_mlp], ids=["conv", "mlp"])
def test_numpy_evaluator_of_the_mapping_reproduces_keras(builder, preset, har, tmp_path):
    model = _trained(builder, preset, har)
    mapping = _check(model, har, tmp_path / "m")
    spec = tf_nvm.model_spec(model)
    assert {layer.op for layer in mapping.crossbar_layers} <= {"conv1d", "dense"}
    assert all(layer.levels.shape[-1] == spec.devices_per_weight for layer in mapping.crossbar_layers)
    if builder is har_conv:  # conv0: kernel 9 on [x, -x] of 9 channels -> 162 rows on 128-row crossbars
        conv0 = mapping.layer("quant_conv0")
        assert (conv0.rows, conv0.cols, len(conv0.tiles)) == (162, 12, 2)


def test_other_hardware_placements_of_the_same_network(har, tmp_path):
    """Small tiles (many partial sums and column tiles) and dual-rail inputs change the hardware, not the numbers."""
    model = _trained(har_mlp, "paper-2bit-bipolar", har)
    spec = tf_nvm.model_spec(model).replace(rows=64, cols=16, input_encoding="dual-rail")
    mapping = _check(model, har, tmp_path / "small", spec=spec)
    fc1 = mapping.layer("quant_fc1")
    # 2 * 128 * 9 = 2304 rows -> 36 row tiles; 32 outputs at 8 per 16-column tile (pairs) -> 4 column tiles
    assert len(fc1.tiles) == 36 * 4 and fc1.input_rails == 2
    assert mapping.layer("quant_logits").input_rails == 1


def test_offset_mapping(har, tmp_path):
    preset = tf_nvm.presets.get("paper-2bit-bipolar").replace(bipolar_mapping="offset")  # codes -2..1
    model = _trained(har_conv, preset, har)
    mapping = _check(model, har, tmp_path / "offset")
    layer = mapping.layer("quant_conv1")
    assert layer.reference_level == 2 and layer.levels.max() <= 3
    assert layer.tiles[0].device_cols == layer.cols + 1  # one reference column per tile
