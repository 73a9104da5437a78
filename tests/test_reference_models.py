"""The four MLPerf Tiny reference networks (`tf_nvm.models`): published sizes, both paper presets, one fit step.

Published parameter counts, from the builders in mlcommons/tiny ``benchmark/training`` (built with tf_keras,
layer for layer; the L2 regularisers add no parameters): ResNet-8 ``resnet_v1_eembc`` 78,666 with 16 filters
(the reference model) and 205,306 with the current default of 26; DS-CNN (49x10x1, 12 labels) 24,908; the
FC autoencoder (640 inputs) 269,992; MobileNetV1 alpha 0.25 (96x96x3, 2 classes) 221,794. The same
builders gave the same (layer class, output shape, parameters) multiset as ours (softmax as its own layer).
"""

import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import NonInhibitingCrossbarWarning
from tf_nvm.experiments import recipes
from tf_nvm.keras.backend import keras
from tf_nvm.keras.quantize_configs import is_crossbar
from tf_nvm.keras.sign_split import blind_crossbars, both_signs_depthwise

L = keras.layers

PUBLISHED = [("resnet8", {}, 78_666), ("resnet8", {"filters": 26}, 205_306), ("ds_cnn", {}, 24_908),
             ("fc_autoencoder", {}, 269_992), ("mobilenet_v1", {}, 221_794)]

SMALL = {  # small inputs, widths and (DS-CNN, autoencoder) depths keep the tests fast
    "resnet8": {"input_shape": (8, 8, 3), "filters": 4},
    "ds_cnn": {"input_shape": (10, 6, 1), "filters": 8, "blocks": 1},
    "fc_autoencoder": {"input_dim": 24, "units": 8, "bottleneck": 4, "depth": 1},
    "mobilenet_v1": {"input_shape": (32, 32, 3), "alpha": 0.125},  # all 13 blocks: the slow one
}
QUICK_MOBILENET = {"input_shape": (16, 16, 3), "alpha": 0.125, "blocks": 3}  # stride 2, 1, 2: depthwise pairs
PRESETS = ("paper-2bit-unipolar", "paper-4bit-bipolar")
FIT_CASES = [pytest.param(name, SMALL[name], preset, id=f"{name}-{preset}")
             for name in ("resnet8", "ds_cnn", "fc_autoencoder") for preset in PRESETS] + [
    pytest.param("mobilenet_v1", QUICK_MOBILENET, preset, id=f"mobilenet_v1-3-blocks-{preset}", marks=pytest.mark.slow)
    for preset in PRESETS] + [
    # all 13 blocks once, in the preset that splits every depthwise layer (benchmarks/reference_networks.py
    # takes the full 96x96 network through both presets end to end)
    pytest.param("mobilenet_v1", SMALL["mobilenet_v1"], "paper-2bit-unipolar", id="mobilenet_v1-13-blocks-unipolar",
                 marks=pytest.mark.slow)]


@pytest.mark.parametrize("name, kwargs, count", PUBLISHED)
def test_published_parameter_counts(name, kwargs, count):
    model = tf_nvm.models.build(name, **kwargs)
    assert model.count_params() == count
    assert any(type(layer) is L.AveragePooling2D for layer in model.layers) == (name != "fc_autoencoder")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_sign_split_builders_leave_no_crossbar_blind_and_plain_ones_list_them(name):
    plain = tf_nvm.models.build(name, **SMALL[name])
    split = tf_nvm.models.build(name, sign_split=True, **SMALL[name])
    assert blind_crossbars(split) == []
    blind = blind_crossbars(plain)
    crossbars = [layer for layer in plain.layers if is_crossbar(layer)]
    assert blind == crossbars[1:]  # every crossbar but the first reads a ReLU output (or its pooling)
    depthwise = {layer.name for layer in split.layers if type(layer) is L.DepthwiseConv2D}
    from tf_nvm.keras.graph import layer_graph  # noqa: PLC0415
    assert both_signs_depthwise(layer_graph(split)) == depthwise  # dw{i} on x and dw{i}_neg on -x, summed


@pytest.mark.slow
@pytest.mark.parametrize("name, kwargs, preset", FIT_CASES)
def test_reference_network_quantizes_and_fits_in_both_paper_presets(name, kwargs, preset, seeded):
    model = tf_nvm.models.build(name, sign_split=preset.endswith("unipolar"), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonInhibitingCrossbarWarning)
        nvm = tf_nvm.quantize_model(model, preset, init="device")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16,) + model.input_shape[1:]).astype(np.float32)
    if name == "fc_autoencoder":
        nvm.compile(keras.optimizers.Adam(1e-3), "mse", run_eagerly=True)  # eager: one step, no tracing
        y = x
    else:
        nvm.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    run_eagerly=True)
        y = rng.integers(0, model.output_shape[-1], 16)
    before = [w.numpy().copy() for w in nvm.trainable_weights]
    history = nvm.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, nvm.trainable_weights))
    spec = tf_nvm.model_spec(nvm)
    for codes in tf_nvm.weight_codes(nvm).values():
        assert spec.code_min <= codes.codes.min() and codes.codes.max() <= spec.code_max


def test_reference_networks_are_usable_by_recipes():
    recipe = recipes.Recipe(name="r", dataset="cifar10", architecture="resnet8", spec="paper-2bit-unipolar",
                            architecture_args={"filters": 8, "sign_split": True})
    recipe.check_architecture()
    for name in ("ds_cnn", "fc_autoencoder", "mobilenet_v1"):
        assert name in tf_nvm.models.ARCHITECTURES


def test_the_search_builds_resnet8_candidates():
    import keras_tuner  # noqa: PLC0415

    from tf_nvm.nas import make_hypermodel  # noqa: PLC0415

    hypermodel = make_hypermodel("resnet8", space={"filters": [4, 2]}, input_shape=(8, 8, 3), num_classes=10)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert hp.values == {"filters": 4, "sign_split": True}
    assert hypermodel.arguments(hp) == {"filters": 4, "sign_split": True}
    assert model.name == "resnet8" and model.get_layer("stack1_conv1_pm") is not None
    assert model.output_shape == (None, 10)
