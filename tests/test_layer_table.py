"""The layer table, end to end: every supported Keras layer class trains, exports exactly, maps, simulates and costs.

Generated over `tf_nvm.keras.quantize_configs.LAYER_RULES`: one tiny model per entry
(a crossbar, then the layer under test, named ``op``) goes through
`quantize_model`, two steps of `fit`, TFLite export with 0 differing int8 outputs
in LiteRT (default mode) and TFLite Micro (against `emulate_runtime("tflm")`, what
`compare` does for "tflm"), the crossbar mapping (the op the table names), the
exact evaluator (= Keras), an ideal simulated chip (= the evaluator) and the cost
model. Classes outside the table, and options the exporter cannot map, are refused
by `quantize_model` itself.
"""

import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import UnsupportedLayerError
from tf_nvm.keras import serialization
from tf_nvm.keras.backend import keras, tf
from tf_nvm.cost import network_cost
from tf_nvm.cost.digital import DIGITAL_OP_WORK
from tf_nvm.mapping import CROSSBAR_OPS, DIGITAL_OPS
from tf_nvm.mapping.reference import evaluate
from tf_nvm.keras.quantize_configs import LAYER_RULES, REFUSED_LAYERS, register_layer
from tf_nvm.simulator import SimulationConfig, Simulator
from tf_nvm.simulator.digital import KERNELS
from tflite_export import build_mapping, compare, export_tflite
from tflite_export.crossbar import CROSSBAR_ADAPTERS, DIGITAL_ADAPTERS

L = keras.layers
PRESET = "paper-4bit-bipolar"
SEQ, IMG = (9, 3), (6, 6, 2)


def _c1(name="a", filters=4):
    return L.Conv1D(filters, 3, padding="same", name=name)


def _c2(name="a", filters=3):
    return L.Conv2D(filters, 3, padding="same", name=name)


# case id (class name, optionally "-variant") -> (input shape, layers after the input; the tested layer is "op")
CASES = {
    "Dense": ((6,), lambda x: L.Dense(4, name="op")(x)),
    "Conv1D": (SEQ, lambda x: L.Conv1D(4, 3, strides=2, padding="same", name="op")(x)),
    "Conv2D": (IMG, lambda x: L.Conv2D(3, 3, strides=2, padding="same", name="op")(x)),
    "DepthwiseConv2D": (IMG, lambda x: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="op")(x)),
    "BatchNormalization": (SEQ, lambda x: L.BatchNormalization(name="op")(_c1()(x))),
    "Activation": (SEQ, lambda x: L.Activation("relu", name="op")(_c1()(x))),
    "ReLU": (SEQ, lambda x: L.ReLU(name="op")(_c1()(x))),
    "AveragePooling1D-valid": (SEQ, lambda x: L.AveragePooling1D(2, name="op")(_c1()(x))),
    "AveragePooling1D-same": (SEQ, lambda x: L.AveragePooling1D(4, strides=3, padding="same", name="op")(_c1()(x))),
    "AveragePooling2D-valid": (IMG, lambda x: L.AveragePooling2D((2, 3), strides=(2, 1), name="op")(_c2()(x))),
    "AveragePooling2D-same": (IMG, lambda x: L.AveragePooling2D(3, strides=2, padding="same", name="op")(_c2()(x))),
    "GlobalAveragePooling1D": (SEQ, lambda x: L.GlobalAveragePooling1D(name="op")(_c1()(x))),
    "GlobalAveragePooling2D": (IMG, lambda x: L.GlobalAveragePooling2D(name="op")(_c2()(x))),
    "Add": (SEQ, lambda x: L.Add(name="op")([_c1("a")(x), _c1("b")(x)])),
    "Subtract": (SEQ, lambda x: L.Subtract(name="op")([_c1("a")(x), _c1("b")(x)])),
    "Rescaling-negate": (SEQ, lambda x: L.Rescaling(-1.0, name="op")(_c1()(x))),
    "Rescaling-offset": (SEQ, lambda x: L.Rescaling(1.0, offset=0.3, name="op")(_c1()(x))),
    "Softmax": (SEQ, lambda x: L.Softmax(name="op")(_c1()(x))),
    "MaxPooling1D": (SEQ, lambda x: L.MaxPooling1D(3, strides=2, padding="same", name="op")(_c1()(x))),
    "MaxPooling2D": (IMG, lambda x: L.MaxPooling2D(2, name="op")(_c2()(x))),
    "GlobalMaxPooling1D": (SEQ, lambda x: L.GlobalMaxPooling1D(name="op")(_c1()(x))),
    "GlobalMaxPooling2D": (IMG, lambda x: L.GlobalMaxPooling2D(name="op")(_c2()(x))),
    "Flatten": (SEQ, lambda x: L.Flatten(name="op")(_c1()(x))),
    "Reshape": (SEQ, lambda x: L.Reshape((4, 9), name="op")(_c1()(x))),
    "Dropout": (SEQ, lambda x: L.Dropout(0.3, name="op")(_c1()(x))),
    "SpatialDropout1D": (SEQ, lambda x: L.SpatialDropout1D(0.3, name="op")(_c1()(x))),
    "SpatialDropout2D": (IMG, lambda x: L.SpatialDropout2D(0.3, name="op")(_c2()(x))),
    "ZeroPadding1D": (SEQ, lambda x: L.ZeroPadding1D((2, 1), name="op")(_c1()(x))),
    "ZeroPadding2D": (IMG, lambda x: L.ZeroPadding2D(((1, 0), (0, 2)), name="op")(_c2()(x))),
    "Concatenate": (SEQ, lambda x: L.Concatenate(axis=1, name="op")([_c1("a")(x), _c1("b")(x)])),
    "Permute": (IMG, lambda x: L.Permute((3, 1, 2), name="op")(_c2()(x))),
    "Cropping1D": (SEQ, lambda x: L.Cropping1D((2, 1), name="op")(_c1()(x))),
    "Cropping2D": (IMG, lambda x: L.Cropping2D(((1, 0), (2, 1)), name="op")(_c2()(x))),
}


def _class_name(case):
    return case.split("-")[0]


def test_every_table_entry_has_a_case():
    """Every Keras class of the table is tested here; the tf_nvm.keras.digital classes through the class they replace."""
    tested = {_class_name(c) for c in CASES}
    substitutes = {LAYER_RULES.get(n).replace_with.__name__ for n in tested if LAYER_RULES.get(n).replace_with}
    assert tested | substitutes == set(LAYER_RULES.names())


@pytest.mark.parametrize("name", LAYER_RULES.names())
def test_every_entry_names_mapped_ops_with_a_kernel_a_cost_and_an_adapter(name):
    rule = LAYER_RULES.get(name)
    assert rule.ops and all(op in DIGITAL_OPS or op in CROSSBAR_OPS for op in rule.ops)
    for op in rule.ops:
        if op in DIGITAL_OPS:
            assert op in KERNELS and op in DIGITAL_OP_WORK
    table = CROSSBAR_ADAPTERS if rule.role == "crossbar" else DIGITAL_ADAPTERS
    assert rule.adapter is not None or any(cls in table for cls in rule.layer_class.__mro__)


@pytest.mark.parametrize("op", DIGITAL_OPS.names())
def test_every_digital_op_has_a_kernel_a_cost_and_a_layer_that_becomes_it(op):
    assert op in KERNELS and op in DIGITAL_OP_WORK
    assert any(op in LAYER_RULES.get(name).ops for name in LAYER_RULES.names())


def _end_to_end(name, shape, build, tmp_path, preset=PRESET):
    """Quantize, fit 2 steps, TFLite (LiteRT, TFLite Micro), crossbar mapping, evaluator, ideal chip, cost."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape, name="x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(keras.Model(inputs, build(inputs)), preset, init="device")
    rng = np.random.default_rng(5)
    x = rng.normal(0, 2, (256,) + shape).astype(np.float32)
    y = rng.normal(0, 1, (64,) + model.output_shape[1:]).astype(np.float32)
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    model.fit(x[:64], y, batch_size=32, epochs=1, verbose=0)  # two steps

    rule = LAYER_RULES.get(name)
    inner = model.get_layer("quant_op").layer
    assert type(inner) is (rule.replace_with or rule.layer_class)

    export_tflite(model, tmp_path / "m.tflite", x[:32], measure_arena=False)
    results = compare(model, tmp_path / "m.tflite", x, runtimes=("litert", "tflm"), arena_size=1 << 20)
    assert results["litert"].differing == 0, str(results["litert"])
    assert results["tflm"].differing == 0, str(results["tflm"])

    mapping = build_mapping(model)
    assert mapping.layer("quant_op").op in rule.ops
    want = evaluate(mapping, x)
    np.testing.assert_allclose(want.values(), model.predict(x, verbose=0, batch_size=256), rtol=0, atol=1e-6)
    sim = Simulator(mapping, SimulationConfig(batch_size=128))
    got = sim.run(sim.program(0), x)
    for out in mapping.outputs:
        np.testing.assert_array_equal(got.codes[out], want.codes[out])

    cost = network_cost(mapping)
    assert cost.energy_pj > 0 and cost.area_um2 > 0 and cost.latency_ns > 0
    assert "quant_op" in set(cost.latency["layer"])
    return mapping


FAST = {"Dense", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "AveragePooling1D-same", "AveragePooling2D-same",
        "AveragePooling2D-valid", "GlobalAveragePooling2D", "Subtract", "Softmax", "Permute", "Cropping2D"}
"""Cases run in the quick suite (one conversion each, 3-7 s on 2 shared cores); the others are marked slow."""


# one conversion per layer class: the slow tier (the fast tier keeps the ties and user-class tests)
@pytest.mark.slow
@pytest.mark.parametrize("case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in sorted(CASES)])
def test_layer_class_end_to_end(case, tmp_path):
    shape, build = CASES[case]
    _end_to_end(_class_name(case), shape, build, tmp_path)


# ---------------------------------------------------------------- refused at quantize time
@pytest.mark.parametrize("layer, message", [
    (lambda: L.LeakyReLU(name="op"), r"layer 'op' of class LeakyReLU is not supported by tf_nvm\.quantize_model: "
                                     r"it would need an exact LeakyReLU: TFLite's int8 LEAKY_RELU .* Fix: use ReLU"),
    (lambda: L.ReLU(max_value=6.0, name="op"), r"layer 'op' of class ReLU has max_value, negative_slope or "
                                               r"threshold \(only a plain ReLU is mapped\).* Fix: change that option"),
    (lambda: L.Activation("tanh", name="op"), r"layer 'op' of class Activation has activation 'tanh' \(relu, linear "
                                              r"and softmax are mapped\)"),
    (lambda: L.Rescaling(0.5, name="op"), r"layer 'op' of class Rescaling has scale=0\.5, offset=0 \(exact in "
                                          r"TFLite only with a non-zero integer scale"),
    (lambda: L.Conv1D(2, 3, padding="causal", name="op"), r"layer 'op' of class Conv1D has padding='causal'"),
    (lambda: L.Conv1D(2, 3, activation="tanh", name="op"), r"layer 'op' of class Conv1D has activation='tanh' on a "
                                                           r"crossbar layer"),
], ids=["LeakyReLU", "ReLU-max_value", "Activation-tanh", "Rescaling-0.5", "Conv1D-causal", "Conv1D-tanh"])
def test_unmappable_classes_and_options_are_refused_by_quantize_model(layer, message):
    inputs = keras.Input(SEQ)
    model = keras.Model(inputs, layer()(_c1()(inputs)))
    with pytest.raises(UnsupportedLayerError, match=message):
        tf_nvm.quantize_model(model, PRESET)


def test_average_is_refused_naming_what_it_would_need():
    inputs = keras.Input(SEQ)
    model = keras.Model(inputs, L.Average(name="op")([_c1("a")(inputs), _c1("b")(inputs)]))
    with pytest.raises(UnsupportedLayerError, match=r"layer 'op' of class Average is not supported by "
                                                    r"tf_nvm\.quantize_model: it would need an exact Average: .*"
                                                    r"Fix: use Add"):
        tf_nvm.quantize_model(model, PRESET)
    assert set(REFUSED_LAYERS.names()).isdisjoint(LAYER_RULES.names())


# ---------------------------------------------------------------- a user's own class
class ClippedRelu(keras.layers.Layer):
    """A user's digital layer: ``relu`` of its (on-grid) input, the docs/layers.md example."""

    def call(self, inputs):
        return tf.nn.relu(inputs)


@pytest.fixture
def user_layer():
    register_layer(ClippedRelu, "digital", ops=("relu",),
                   adapter=lambda layer, in_shapes, out_shape, fail: ("relu", {}, {}))
    yield ClippedRelu
    # Test isolation only: a user never removes a rule.
    del LAYER_RULES._entries["ClippedRelu"], LAYER_RULES._descriptions["ClippedRelu"]
    for key in [k for k, v in serialization._OBJECTS.items() if v is ClippedRelu]:
        del serialization._OBJECTS[key]


def test_a_registered_user_class_goes_end_to_end(user_layer, tmp_path):
    mapping = _end_to_end("ClippedRelu", SEQ, lambda x: user_layer(name="op")(_c1()(x)), tmp_path)
    assert mapping.layer("quant_op").op == "relu"


def test_register_layer_needs_known_ops():
    with pytest.raises(UnsupportedLayerError, match=r"register_layer\(ClippedRelu\): ops must name the mapping ops "
                                                    r"the layer becomes, got \('gelu',\); allowed: \['add', .* Fix: "):
        register_layer(ClippedRelu, "digital", ops=("gelu",))


# ---------------------------------------------------------------- average pooling's rounding
def test_average_pool_rounding_is_half_away_from_zero_in_keras_numpy_and_simulator():
    """The three implementations agree on every code, 'same' edges (fewer valid values) and ties of both signs."""
    from tf_nvm.keras.digital import average_pool_codes  # noqa: PLC0415
    from tf_nvm.mapping import DigitalLayer  # noqa: PLC0415
    from tf_nvm.mapping.ops import DIGITAL_OPS as OPS  # noqa: PLC0415
    from tf_nvm.simulator.digital import run_digital  # noqa: PLC0415

    q = np.random.default_rng(0).integers(-128, 128, (64, 7, 9, 3))
    params = {"pool_size": [2, 3], "strides": [2, 2], "padding": "same"}
    layer = DigitalLayer("p", "average_pool", ("x",), "p", (4, 5, 3), params, {}, True)
    want = OPS.get("average_pool").reference([q], layer, None)
    keras_codes = average_pool_codes(tf.constant(q, tf.float32), (2, 3), (2, 2), "same").numpy()
    sim = run_digital([tf.constant(q, tf.float32)], layer, None).numpy()
    np.testing.assert_array_equal(keras_codes, want)
    np.testing.assert_array_equal(sim, want)
    # Hand-checked values: [[-3, -2]] over a 1x2 window: -2.5 -> -3; [[3, 2]]: 2.5 -> 3; 'same' edge of width 1.
    small = np.array([-3, -2, 3, 2, 5], np.float32).reshape(1, 1, 5, 1)
    got = average_pool_codes(tf.constant(small), (1, 2), (1, 2), "same").numpy().ravel()
    assert got.tolist() == [-3.0, 3.0, 5.0]


def test_average_pool_ties_of_both_signs_are_exact_in_litert_and_tflite_micro(tmp_path):
    """An identity crossbar (codes = I, weight scale 1) feeds 2x2 windows whose sums hit every residue mod 4."""
    spec = tf_nvm.core.presets.get(PRESET).replace(weight_scale_mode="fixed", weight_scale=1.0)
    inputs = keras.Input((6, 6, 1))
    x = L.AveragePooling2D(2, padding="same", name="op")(L.Conv2D(1, 1, use_bias=False, name="identity")(inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(keras.Model(inputs, x), spec)
    kernel, _ = tf_nvm.keras.nvm_model.crossbar_variables(model.get_layer("quant_identity"))
    kernel.assign(np.ones((1, 1, 1, 1), np.float32))
    step = spec.activation_step
    codes = np.random.default_rng(1).integers(-100, 100, (500, 6, 6, 1))
    sums = codes.reshape(500, 3, 2, 3, 2).sum(axis=(2, 4))
    assert np.any((sums % 4 == 2) & (sums < 0)) and np.any((sums % 4 == 2) & (sums > 0))  # ties of both signs
    x = (codes * step).astype(np.float32)
    export_tflite(model, tmp_path / "m.tflite", x[:32], measure_arena=False)
    results = compare(model, tmp_path / "m.tflite", x, runtimes=("litert", "tflm"), arena_size=1 << 20)
    assert results["litert"].differing == 0 and results["tflm"].differing == 0, str(results)
    keras_codes = np.rint(model.predict(x, verbose=0) / step).ravel()
    expected = np.sign(sums) * ((np.abs(sums) + 2) // 4)
    np.testing.assert_array_equal(keras_codes, expected.ravel())
