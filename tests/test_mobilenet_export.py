"""MobileNetV1-0.25 (the MLPerf Tiny visual-wake-words network) exports exactly (issue 24, item 3).

The network of the issue at a reduced input (16x16 instead of 96x96: the same 28 crossbar layers and 208k
weights, every stride-2 'same' padding, depthwise + BatchNorm + ReLU + pointwise blocks), in
``paper-4bit-bipolar`` with a weight scale that has half-way points where division and product disagree, one
weight planted on each such point: the TFLite export stores the codes of `tf_nvm.weight_codes`, LiteRT and
TFLite Micro reproduce the Keras int8 outputs exactly and the crossbar mapping reproduces them too.
"""

import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm.keras.backend import keras
from tf_nvm.core.grid import code_multiplier

SCALE = 0.017140401527285576  # see tests/test_code_rounding.py


def mobilenet_v1(size, alpha=0.25, classes=2):
    """MobileNetV1 as in mlcommons/tiny's visual wake words reference, GlobalAveragePooling2D for the pooling."""
    L = keras.layers
    x = inputs = keras.Input((size, size, 3))
    x = L.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False)(x)
    x = L.ReLU()(L.BatchNormalization()(x))
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for filters, stride in blocks:
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
        x = L.Conv2D(int(filters * alpha), 1, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(classes)(x)
    return keras.Model(inputs, L.Softmax()(x), name="mobilenet_v1_025")


@pytest.mark.slow
def test_mobilenet_v1_025_exports_exactly_with_planted_ties(tmp_path):
    from tf_nvm.mapping.reference import evaluate
    from tflite_export import check_nvm_weights, compare, export_crossbar, export_tflite

    size = 16
    spec = tf_nvm.core.presets.get("paper-4bit-bipolar").replace(weight_scale_mode="fixed", weight_scale=SCALE)
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(mobilenet_v1(size), spec)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, size, size, 3)).astype(np.float32)
    model.fit(x, rng.integers(0, 2, 32), epochs=1, batch_size=16, verbose=0)
    assert len(tf_nvm.keras.nvm_model.nvm_layers(model)) == 28
    s32, inv = np.float32(SCALE), code_multiplier(SCALE)
    planted = 0
    for layer in tf_nvm.keras.nvm_model.nvm_layers(model):
        kernel_var, _ = tf_nvm.keras.nvm_model.crossbar_variables(layer)
        kernel = kernel_var.numpy().reshape(-1)
        for k in range(spec.code_min, spec.code_max):  # every point where division and product disagree
            centre = np.float32((k + 0.5) * SCALE)
            near = centre + np.arange(-16, 17).astype(np.float32) * np.spacing(centre)
            for value in near[np.rint(near / s32) != np.rint(near * inv)]:
                kernel[rng.integers(kernel.size)] = value
                planted += 1
        kernel_var.assign(kernel.reshape(kernel_var.shape))
    assert planted >= 28

    data = (rng.integers(-128, 128, (100, size, size, 3)) * spec.activation_step).astype(np.float32)
    export_tflite(model, tmp_path / "m.tflite", data[:16], measure_arena=False)
    assert all(c.matches_keras for c in check_nvm_weights(model, tmp_path / "m.tflite"))
    results = compare(model, tmp_path / "m.tflite", data, runtimes=("litert", "tflm"), arena_size=4 << 20)
    assert {name: r.differing for name, r in results.items()} == {"litert": 0, "tflm": 0}, \
        [str(r) for r in results.values()]
    export_crossbar(model, tmp_path / "m")
    np.testing.assert_array_equal(evaluate(tmp_path / "m", data).values(), model.predict(data, verbose=0))
