"""The mapping file alone reproduces the Keras NVM model.

The exact numpy evaluator (`tf_nvm.mapping.reference.evaluate`) reads only the
exported mapping (JSON + npz) and runs HAR test windows through crossbar tiles
(column sums of input codes times device levels, pair / reference
subtraction, digital partial sums) and the digital periphery; its outputs must
equal the Keras NVM model's, for a conv model and an MLP, unipolar and
bipolar, and for other hardware placements of the same trained network (small
tiles, offset mapping, dual-rail inputs). Generated over the digital-op table:
the reference function of every op agrees with the Keras layer it is exported
from.
"""

import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm.keras.backend import keras
from tf_nvm.mapping import DIGITAL_OPS
from tf_nvm.mapping.reference import evaluate
from tflite_export import export_crossbar

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
def har(har_standardised):
    """(x_train, y_train, x_test, y_test): real HAR windows standardised with the training statistics."""
    return har_standardised[:4]


def _trained(builder, preset, har):
    x_train, y_train, _, _ = har
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
    got = evaluate(prefix, x_test).values()  # reads only PREFIX.json + PREFIX.npz
    want = model.predict(x_test, verbose=0, batch_size=512)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    return mapping


@pytest.mark.slow
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


@pytest.mark.slow
def test_other_hardware_placements_of_the_same_network(har, tmp_path):
    """Small tiles (many partial sums and column tiles) and dual-rail inputs change the hardware, not the numbers."""
    model = _trained(har_mlp, "paper-2bit-bipolar", har)
    spec = tf_nvm.model_spec(model).replace(rows=64, cols=16, input_encoding="dual-rail")
    mapping = _check(model, har, tmp_path / "small", spec=spec)
    fc1 = mapping.layer("quant_fc1")
    # 2 * 128 * 9 = 2304 rows -> 36 row tiles; 32 outputs at 8 per 16-column tile (pairs) -> 4 column tiles
    assert len(fc1.tiles) == 36 * 4 and fc1.input_rails == 2
    assert mapping.layer("quant_logits").input_rails == 1


@pytest.mark.slow
def test_offset_mapping(har, tmp_path):
    preset = tf_nvm.core.presets.get("paper-2bit-bipolar").replace(bipolar_mapping="offset")  # codes -2..1
    model = _trained(har_conv, preset, har)
    mapping = _check(model, har, tmp_path / "offset")
    layer = mapping.layer("quant_conv1")
    assert layer.reference_level == 2 and layer.levels.max() <= 3
    assert layer.tiles[0].device_cols == layer.cols + 1  # one reference column per tile


# ------------------------------------------------------------ op by op, against Keras
def _conv(name, filters=4):
    return L.Conv1D(filters, 3, padding="same", name=name)


_OP_MODELS = {
    # op: Keras layers after the input (a crossbar first: an NVM model needs one)
    "add": lambda x: L.Add(name="op")([_conv("a")(x), _conv("b")(x)]),
    "average_pool": lambda x: L.AveragePooling1D(4, strides=3, padding="same", name="op")(_conv("a")(x)),
    "batch_norm": lambda x: L.BatchNormalization(name="op")(_conv("a")(x)),
    "concatenate": lambda x: L.Concatenate(axis=1, name="op")([_conv("a")(x), _conv("b")(x)]),
    "flatten": lambda x: L.Flatten(name="op")(_conv("a")(x)),
    "global_average_pool": lambda x: L.GlobalAveragePooling1D(name="op")(_conv("a")(x)),
    "global_max_pool": lambda x: L.GlobalMaxPooling1D(name="op")(_conv("a")(x)),
    "identity": lambda x: L.Activation("linear", name="op")(L.Dropout(0.3, name="drop")(_conv("a")(x))),
    "max_pool": lambda x: L.MaxPooling1D(3, strides=2, padding="same", name="op")(_conv("a")(x)),
    "relu": lambda x: L.ReLU(name="op")(_conv("a")(x)),
    "rescale": lambda x: L.Rescaling(-2.0, name="op")(_conv("a")(x)),
    "subtract": lambda x: L.Subtract(name="op")([_conv("a")(x), _conv("b")(x)]),
    "transpose": lambda x: L.Permute((2, 1), name="op")(_conv("a")(x)),
    "crop": lambda x: L.Cropping1D((2, 1), name="op")(_conv("a")(x)),
    "reshape": lambda x: L.Reshape((4, 7), name="op")(_conv("a")(x)),
    "softmax": lambda x: L.Softmax(axis=1, name="op")(_conv("a")(x)),
    "zero_pad": lambda x: L.ZeroPadding1D((2, 1), name="op")(_conv("a")(x)),
}
NOT_EXPORTABLE = ()
"""Digital ops no Keras layer is exported to (none today)."""


def test_every_digital_op_is_checked_against_keras():
    assert sorted(set(_OP_MODELS) | set(NOT_EXPORTABLE)) == DIGITAL_OPS.names()


def _exported(outputs_of, preset, tmp_path, shape=(7, 3)):
    keras.utils.set_random_seed(2)
    inputs = keras.Input(shape, name="x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(keras.Model(inputs, outputs_of(inputs)), preset, init="device")
    mapping = export_crossbar(model, tmp_path / "m")
    x = np.random.default_rng(4).normal(0, 2, (400,) + shape).astype(np.float32)
    return model, mapping, x


@pytest.mark.slow
@pytest.mark.parametrize("op", sorted(_OP_MODELS))
def test_reference_function_of_each_op_agrees_with_keras(op, tmp_path):
    model, mapping, x = _exported(_OP_MODELS[op], "paper-4bit-bipolar", tmp_path)
    assert mapping.layer("quant_op").op == op
    got = evaluate(tmp_path / "m", x)
    np.testing.assert_array_equal(got.values(), model.predict(x, verbose=0, batch_size=512))


def test_conv2d_depthwise_and_2d_digital_ops_agree_with_keras(tmp_path):
    def layers(x):
        x = L.Conv2D(4, 3, padding="same", name="c2")(x)
        x = L.BatchNormalization(name="bn")(x)
        x = L.Activation("relu", name="act")(x)
        x = L.DepthwiseConv2D(3, depth_multiplier=2, strides=(1, 2), padding="same", name="dw")(x)
        x = L.MaxPooling2D(2, padding="same", name="mp")(x)
        x = L.ZeroPadding2D(((1, 0), (0, 1)), name="zp")(x)
        x = L.Conv2D(3, 2, dilation_rate=2, name="c3")(x)
        return L.GlobalMaxPooling2D(name="gmp")(x)

    model, mapping, x = _exported(layers, "paper-2bit-bipolar", tmp_path, shape=(8, 9, 2))
    assert [layer.op for layer in mapping.crossbar_layers] == ["conv2d", "depthwise_conv2d", "conv2d"]
    np.testing.assert_array_equal(evaluate(mapping, x).values(), model.predict(x, verbose=0, batch_size=512))


@pytest.mark.parametrize("layer, message", [
    (lambda: L.LeakyReLU(name="op"), r"layer 'op' of class LeakyReLU is not supported by tf_nvm\.quantize_model: it "
                                     r"would need an exact LeakyReLU"),
    (lambda: L.Softmax(axis=0, name="op"), r"layer 'op' of class Softmax has axis=0 \(one axis, not the batch axis, is "
                                           r"mapped\).* Fix: change that option"),
])
def test_unmapped_layers_are_refused_before_training(layer, message, tmp_path):
    """What the mapping cannot hold is refused by quantize_model (the layer table), not at export."""
    with pytest.raises(tf_nvm.UnsupportedLayerError, match=message):
        _exported(lambda x: layer()(_conv("a")(x)), "paper-2bit-bipolar", tmp_path)
    assert not list(tmp_path.iterdir())
