"""The fused sign split (`tf_nvm.keras.sign_split`): which convolutions it fuses, and that it changes no number."""

import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm.keras.backend import keras, tf
from tf_nvm.core.modes import emulate_runtime
from tf_nvm.keras.sign_split import SignSplit, fuse_sign_split, sign_split_layers
from tflite_export import export_tflite

L = keras.layers
SHAPE = (12, 12, 3)


def _vgg(signs="split"):
    keras.utils.set_random_seed(0)
    return tf_nvm.models.build("cifar_vgg", input_shape=SHAPE, filters=(8, 16), signs=signs)


def _nvm(model, preset="paper-4bit-unipolar"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf_nvm.quantize_model(model, preset, init="device")


def _nvm_twins():
    """Two NVM models of one float model, equal weights (fusing one leaves the other plain)."""
    float_model = _vgg()
    model, plain = _nvm(float_model), _nvm(float_model)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), plain.get_weights()))
    return model, plain


def _images(count=32):
    return (np.random.default_rng(0).standard_normal((count,) + SHAPE) * 2.0).astype(np.float32)


def _concatenations(model):
    """Rank-4 ConcatV2 ops in the traced forward graph of ``model``."""
    graph = tf.function(model).get_concrete_function(tf.TensorSpec((None,) + SHAPE)).graph
    return sum(op.type == "ConcatV2" and op.outputs[0].shape.rank == 4 for op in graph.get_operations())


def test_only_convolutions_reading_both_signs_of_a_non_negative_tensor_are_found():
    float_model = _vgg()
    # conv0_0 reads [x, -x] of the signed image (x may sit at -A, where -x clips): not fused.
    assert {k: v.channels for k, v in sign_split_layers(float_model).items()} == {"conv0_1": 8, "conv1_0": 8,
                                                                                   "conv1_1": 16}
    assert sign_split_layers(_nvm(float_model)) == {
        "quant_conv0_1": SignSplit("quant_conv0_1_pm", 8), "quant_conv1_0": SignSplit("quant_conv1_0_pm", 8),
        "quant_conv1_1": SignSplit("quant_conv1_1_pm", 16)}
    assert sign_split_layers(_vgg(signs=None)) == {}
    assert sign_split_layers(_vgg(signs="bn")) == {}
    assert sign_split_layers(tf_nvm.models.build("har_signed_cnn")) == {}  # [x, -x] of BatchNorm outputs

    inputs = keras.Input((8, 8, 2))
    relu = L.ReLU()(L.Conv2D(4, 3, padding="same")(inputs))
    linear = L.Conv2D(4, 3, padding="same")(inputs)
    outputs = [
        L.Conv2D(3, 3, name="fused")(L.Concatenate(name="pm")([relu, L.Rescaling(-1.0)(relu)])),
        L.Conv2D(3, 3, name="signed_source")(L.Concatenate()([linear, L.Rescaling(-1.0)(linear)])),
        L.Conv2D(3, 3, name="not_a_negation")(L.Concatenate()([relu, L.Rescaling(-2.0)(relu)])),
        L.Conv2D(3, 3, name="other_tensor")(L.Concatenate()([relu, L.Rescaling(-1.0)(L.ReLU()(linear))])),
        L.Conv2D(3, 3, name="swapped")(L.Concatenate()([L.Rescaling(-1.0)(relu), relu])),
        L.Conv2D(4, 3, name="grouped", groups=2)(L.Concatenate()([relu, L.Rescaling(-1.0)(relu)])),
    ]
    both = L.Concatenate(name="read_twice")([relu, L.Rescaling(-1.0)(relu)])  # the [t, -t] tensor is needed
    outputs += [L.Conv2D(3, 3, name="first_reader")(both), L.Conv2D(3, 3, name="second_reader")(both)]
    assert sign_split_layers(keras.Model(inputs, outputs)) == {"fused": SignSplit("pm", 4)}


@pytest.mark.slow
def test_a_fused_nvm_model_computes_the_same_numbers_and_gradients():
    model, plain = _nvm_twins()
    assert sorted(fuse_sign_split(model)) == ["quant_conv0_1", "quant_conv1_0", "quant_conv1_1"]
    x, y = _images(), np.arange(32) % 10
    for training in (False, True):
        np.testing.assert_array_equal(model(x, training=training).numpy(), plain(x, training=training).numpy())
    with emulate_runtime("tflm"):
        np.testing.assert_array_equal(model(x, training=False).numpy(), plain(x, training=False).numpy())

    # [t, -t] is never built for the fused layers; conv0_0 reads both signs of the signed image, as before.
    assert (_concatenations(model), _concatenations(plain)) == (1, 4)

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    gradients = []
    for m in (model, plain):
        with tf.GradientTape() as tape:
            value = loss(y, m(x, training=True))
        gradients.append(tape.gradient(value, m.trainable_weights))
    # Float rounding only: a conv bias before a training-mode BatchNorm has a gradient of 0 up to rounding
    # noise (~1e-8 here), so the tolerance is relative to the largest gradient of the model.
    scale = max(float(np.max(np.abs(g.numpy()))) for g in gradients[1])
    for weight, fused, unfused in zip(model.trainable_weights, *gradients):
        np.testing.assert_allclose(fused.numpy(), unfused.numpy(), rtol=1e-4, atol=1e-6 * scale,
                                   err_msg=weight.name)


def test_a_fused_float_model_differs_by_float_rounding_only():
    model = _vgg()
    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    fuse_sign_split(model)
    x = _images()
    np.testing.assert_allclose(model(x, training=True).numpy(), plain(x, training=True).numpy(), rtol=1e-5,
                               atol=1e-5)
    assert (_concatenations(model), _concatenations(plain)) == (1, 4)


@pytest.mark.slow
def test_fusing_changes_no_weight_config_or_export(tmp_path):
    model, plain = _nvm_twins()
    weights, config = [w.copy() for w in model.get_weights()], model.get_config()
    first = fuse_sign_split(model)
    op = model.get_layer("quant_conv1_1").layer.convolution_op
    assert fuse_sign_split(model) == first  # idempotent: the fused op is not wrapped twice
    assert model.get_layer("quant_conv1_1").layer.convolution_op is op
    assert model.get_config() == config
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))
    data = _images(64)
    for fold in (False, True):  # the crossbar's halves, and the MCU model folded (export_tflite fuses `plain` then)
        export_tflite(model, tmp_path / "fused.tflite", data, fold_sign_split=fold, measure_arena=False)
        export_tflite(plain, tmp_path / "plain.tflite", data, fold_sign_split=fold, measure_arena=False)
        assert (tmp_path / "fused.tflite").read_bytes() == (tmp_path / "plain.tflite").read_bytes()


@pytest.mark.parametrize("preset", ["paper-2bit-unipolar"])
def test_train_model_trains_sign_split_convolutions_fused(preset):
    from tf_nvm.experiments.data import Split  # noqa: PLC0415
    from tf_nvm.experiments.recipes import Recipe  # noqa: PLC0415
    from tf_nvm.experiments.train import train_model  # noqa: PLC0415

    x, y = _images(64), np.arange(64) % 10
    split = Split(x, y, x[:16], y[:16], x[:16], y[:16], None, "test")
    recipe = Recipe(name="s", dataset="cifar10", architecture="cifar_vgg", spec=preset, epochs=1, batch_size=32)
    model = _nvm(_vgg(), preset)
    train_model(model, recipe, split, verbose=0)
    assert getattr(model.get_layer("quant_conv1_1").layer, "_tf_nvm_sign_split_channels") == 16
