"""`quantize_model(sign_split="auto")`, its one warning when off, the softmax split and the input-range warning."""

import re
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import InputRangeWarning, NonInhibitingCrossbarWarning, SpecError, UnsupportedLayerError
from tf_nvm.keras.backend import keras
from tf_nvm.mapping.reference import evaluate
from tf_nvm.keras.nvm_model import crossbar_variables
from tf_nvm.keras.sign_split import feed_both_signs, sign_split_layers
from tflite_export import export_crossbar, export_tflite
from tflite_export.verify import compare

L = keras.layers


def _quiet_quantize(model, preset, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf_nvm.quantize_model(model, preset, **kwargs)


def _depthwise_net(softmax=True):
    """Conv -> ReLU -> DepthwiseConv2D (reads ReLU outputs) -> BN -> ReLU -> pooling -> Dense head."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 2), name="image")
    x = L.ReLU(name="relu0")(L.Conv2D(4, 3, padding="same", name="conv0")(inputs))
    x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    x = L.ReLU(name="relu1")(L.BatchNormalization(name="bn")(x))
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(3, activation="softmax" if softmax else None, name="head")(x))


def test_one_warning_lists_every_non_inhibiting_crossbar_and_names_the_option():
    with pytest.warns(NonInhibitingCrossbarWarning) as record:
        tf_nvm.quantize_model(tf_nvm.models.build("har_cnn"), "paper-2bit-unipolar")
    assert len(record) == 1
    assert re.fullmatch(
        r"quantize_model: 4 unipolar crossbar layer\(s\) \(non-negative weights\) read only non-negative inputs: "
        r"'conv1' \(Conv1D\), 'conv2' \(Conv1D\), 'fc' \(Dense\), 'logits' \(Dense\)\. Their outputs can only grow "
        r"with every input, so they cannot inhibit .* Fix: pass sign_split='auto' to feed each of them both signs "
        r"\[x, -x\] \(twice the rows\), or .*use a bipolar spec\.", str(record[0].message))


@pytest.mark.parametrize("preset", ["paper-2bit-unipolar", "paper-4bit-bipolar"])
def test_sign_split_auto_feeds_both_signs_under_unipolar_only(preset):
    model = tf_nvm.models.build("har_cnn", input_shape=(16, 3), filters=(4, 4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonInhibitingCrossbarWarning)
        nvm = tf_nvm.quantize_model(model, preset, sign_split="auto")
    names = {layer.name for layer in nvm.layers}
    if preset.endswith("unipolar"):
        # every crossbar but conv0 (it reads the signed model input) reads [x, -x] with twice the rows
        assert {"quant_conv1_pm", "quant_conv2_pm", "quant_fc_pm", "quant_logits_pm"} <= names
        assert "quant_conv0_pm" not in names
        codes = tf_nvm.weight_codes(nvm)
        assert codes["quant_conv1"].codes.shape == (5, 8, 4) and codes["quant_fc"].codes.shape == (16, 64)
        assert set(sign_split_layers(nvm)) == {"quant_conv1", "quant_conv2"}  # the fused training form (Conv)
    else:
        assert not any(name.endswith(("_pm", "_neg")) for name in names)  # a bipolar crossbar subtracts by itself


def test_sign_split_of_a_float_model_keeps_its_function_and_matches_the_hand_written_builder():
    kwargs = {"input_shape": (10, 6, 1), "filters": 8, "blocks": 2}
    model = tf_nvm.models.build("ds_cnn", **kwargs)
    both = feed_both_signs(model, split=["dw1", "pw1", "dw2", "pw2", "logits"])
    hand = tf_nvm.models.build("ds_cnn", sign_split=True, **kwargs)
    assert sorted((type(layer).__name__, layer.name) for layer in both.layers) == sorted(
        (type(layer).__name__, layer.name) for layer in hand.layers)
    assert both.count_params() == hand.count_params()
    x = np.random.default_rng(0).normal(size=(8, 10, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(both(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("init", ["keep", "device"])
def test_split_kernels_are_the_exact_split_of_a_trained_model_and_fresh_for_training_from_scratch(init):
    """init='keep': [max(W, 0); max(-W, 0)] (one half of every pair at 0); init='device': the layer's initializer
    for 2C rows, as a hand-written [x, -x] network starts (both halves spread over the codes)."""
    keras.utils.set_random_seed(0)
    model = tf_nvm.models.build("har_cnn", input_shape=(16, 3), filters=(4, 4, 4))
    nvm = tf_nvm.quantize_model(model, "paper-2bit-unipolar", init=init, sign_split="auto")
    kernel = crossbar_variables(nvm.get_layer("quant_conv1"))[0].numpy()
    positive, negative = kernel[:, :4, :], kernel[:, 4:, :]
    both_on = float(np.mean((positive > 0) & (negative > 0)))
    if init == "keep":
        assert both_on == 0.0
        step = tf_nvm.model_spec(nvm).weight_scale
        np.testing.assert_allclose(positive - negative, model.get_layer("conv1").get_weights()[0], atol=0.5001 * step)
    else:
        assert both_on > 0.8, both_on


@pytest.mark.slow
def test_depthwise_sign_split_and_softmax_split_are_exact_in_tflite_and_the_mapping(tmp_path):
    nvm = _quiet_quantize(_depthwise_net(), "paper-2bit-unipolar", init="device", sign_split="auto")
    names = [layer.name for layer in nvm.layers]
    assert {"quant_dw", "quant_dw_neg", "quant_dw_sum", "quant_dw_neg_input", "quant_head", "quant_head_softmax",
            "quant_head_pm"} <= set(names), names
    assert tf_nvm.weight_codes(nvm)["quant_dw_neg"].codes.min() >= 0
    x = np.random.default_rng(1).normal(0, 2, (64, 8, 8, 2)).astype(np.float32)
    nvm.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)  # one eager step: no tracing
    nvm.fit(x, np.arange(64) % 3, epochs=1, batch_size=32, verbose=0)
    probabilities = nvm.predict(x, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.02)
    export_tflite(nvm, tmp_path / "m.tflite", x, measure_arena=False)
    results = compare(nvm, tmp_path / "m.tflite", x, runtimes=("litert", "tflm"), arena_size=1 << 20)
    assert all(result.differing == 0 for result in results.values()), results
    export_crossbar(nvm, tmp_path / "m")
    np.testing.assert_array_equal(evaluate(tmp_path / "m", x).values(), probabilities)


def test_dense_softmax_head_becomes_a_crossbar_and_a_separate_softmax():
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="softmax", name="probs")])
    nvm = tf_nvm.quantize_model(model, "paper-4bit-bipolar")
    crossbar, softmax = nvm.layers[-2:]
    assert type(crossbar.layer) is L.Dense and crossbar.layer.get_config()["activation"] == "linear"
    assert type(softmax.layer) is L.Softmax and softmax.name == "quant_probs_softmax"
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_allclose(nvm.predict(x, verbose=0).sum(axis=1), 1.0, atol=0.02)
    assert model.layers[0].get_config()["activation"] == "softmax"  # the input model is not modified


def test_bad_sign_split_and_shared_layers_are_refused():
    with pytest.raises(SpecError, match=r"quantize_model: sign_split must be one of \[None, 'auto'\], got True\. "
                                        r"Fix: pass sign_split='auto'"):
        tf_nvm.quantize_model(tf_nvm.models.build("har_cnn"), "paper-2bit-unipolar", sign_split=True)
    inputs = keras.Input((6,))
    shared = L.Dense(6, activation="relu", name="shared")
    outputs = L.Dense(2, name="head")(shared(shared(inputs)))
    with pytest.raises(UnsupportedLayerError, match=r"layers \['shared'\] of model .* are called more than once "
                                                    r"\(shared layers\).*Fix: give each call its own layer"):
        _quiet_quantize(keras.Model(inputs, outputs), "paper-2bit-unipolar", sign_split="auto")


def test_inputs_beyond_the_activation_range_warn_with_the_fraction_and_the_fix():
    model = tf_nvm.models.build("har_cnn", input_shape=(16, 3), filters=(4, 4, 4))
    # 480 values -20 + i*40/479: i <= 143 lie below -8 (144 values), i >= 335 above 7.9375 (145): 289 = 60.2 %
    raw = np.linspace(-20.0, 20.0, 10 * 16 * 3, dtype=np.float32).reshape(10, 16, 3)
    with pytest.warns(InputRangeWarning, match=re.escape(
            "quantize_model: 60.2 % of the input values (289 of 480) lie outside the shared activation range "
            "[-8, 7.9375] and are clipped to it (the inputs span [-20, 20]). Fix: standardise the inputs "
            "(tf_nvm.core.preprocessing.Standardization.fit(x_train).apply(x), mean 0 and std 1 per channel), or use "
            "a spec with a larger activation_range.")):
        _ = tf_nvm.quantize_model(model, "paper-4bit-bipolar", calibration_data=raw)
    standardised = tf_nvm.core.preprocessing.Standardization.fit(raw).apply(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputRangeWarning)
        tf_nvm.quantize_model(model, "paper-4bit-bipolar", calibration_data=standardised)


def test_train_model_warns_at_the_start_of_fit_when_training_inputs_are_clipped():
    from tf_nvm.experiments.data import Split  # noqa: PLC0415
    from tf_nvm.experiments.recipes import Recipe  # noqa: PLC0415
    from tf_nvm.experiments.train import train_model  # noqa: PLC0415

    model = tf_nvm.quantize_model(keras.Sequential([keras.Input((4,)), L.Dense(3, name="fc")]), "paper-4bit-bipolar")
    x = np.full((32, 4), 9.0, np.float32)  # every value above the range's top 7.9375
    x[:, 0] = 0.0  # a quarter inside it
    y = np.arange(32) % 3
    split = Split(x, y, x[:8], y[:8], x[:8], y[:8], None, "test")
    recipe = Recipe(name="t", dataset="har", architecture="har_cnn", spec="paper-4bit-bipolar", epochs=1,
                    batch_size=32)
    with pytest.warns(InputRangeWarning, match=r"^train_model: 75\.0 % of the input values \(96 of 128\) lie "
                                               r"outside the shared activation range \[-8, 7\.9375\].*Fix: "
                                               r"standardise the inputs"):
        train_model(model, recipe, split, verbose=0)


@pytest.mark.parametrize("preset", ["paper-2bit-unipolar", "paper-4bit-unipolar"])
def test_the_mcu_model_folds_both_signs_into_one_kernel_exactly_and_the_crossbar_keeps_both(tmp_path, preset):
    from tf_nvm.cost import mcu_cost  # noqa: PLC0415
    from tflite_export import read_tflite  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    model = tf_nvm.models.build("cifar_vgg", input_shape=(8, 8, 3), filters=(4, 8), convs_per_block=2, signs="split")
    nvm = _quiet_quantize(model, preset, init="device")
    x = np.random.default_rng(1).normal(0, 2, (48, 8, 8, 3)).astype(np.float32)
    nvm.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    nvm.fit(x, np.arange(48) % 10, epochs=1, batch_size=48, verbose=0)
    halves = export_tflite(nvm, tmp_path / "halves.tflite", x, fold_sign_split=False, measure_arena=False)
    folded = export_tflite(nvm, tmp_path / "folded.tflite", x, measure_arena=False)
    # every crossbar but the first (it reads the signed image, whose -x can clip at the range's top) folds
    assert folded.folded_layers == ("quant_conv0_1", "quant_conv1_0", "quant_conv1_1", "quant_logits")
    assert not halves.folded_layers
    assert folded.op_counts["CONCATENATION"] == halves.op_counts["CONCATENATION"] - 4
    results = compare(nvm, tmp_path / "folded.tflite", x, runtimes=("litert", "tflm"), arena_size=1 << 20)
    assert all(result.differing == 0 for result in results.values()), results
    graph = read_tflite((tmp_path / "folded.tflite").read_bytes())
    code_max = tf_nvm.model_spec(nvm).code_max
    for name, expected_rows in (("quant_conv0_1", 4), ("quant_conv1_0", 4), ("quant_conv1_1", 8), ("quant_logits", 8)):
        (_, tensor), = graph.layer_weights(name)
        assert tensor.shape[-1] == expected_rows and tensor.zero_points == (0,)  # C rows, not 2C
        assert tensor.values.min() >= -code_max and tensor.values.max() <= code_max and tensor.values.min() < 0
    macs = {label: mcu_cost(read_tflite((tmp_path / f"{label}.tflite").read_bytes()), "cortex-m4f")[1]["macs"]
            for label in ("halves", "folded")}
    # per image: conv0_1 8*8*4*9*8 + conv1_0 4*4*8*9*8 + conv1_1 4*4*8*9*16 + logits 10*16 MACs read both halves
    assert macs["halves"] - macs["folded"] == (8 * 8 * 4 * 9 * 4 + 4 * 4 * 8 * 9 * 4 + 4 * 4 * 8 * 9 * 8 + 10 * 8)
    assert folded.model_bytes < halves.model_bytes
    export_crossbar(nvm, tmp_path / "m")  # the crossbars keep both halves (2C rows), exactly as trained
    np.testing.assert_array_equal(evaluate(tmp_path / "m", x).values(), nvm.predict(x, verbose=0))


def test_crossbars_reading_a_signed_tensor_keep_both_halves_in_the_mcu_model(tmp_path):
    # [x, -x] of a signed x (the HAR recipes' BatchNorm outputs and input): -x clips where x is at the range's bottom
    # (int8 -128 -> 127), so conv(x, W+ - W-) would differ there; such layers are exported as trained
    nvm = _quiet_quantize(tf_nvm.models.build("har_signed_cnn", input_shape=(16, 3), filters=(4,), kernel_sizes=(3,)),
                          "paper-2bit-unipolar", init="device")
    assert sign_split_layers(nvm) == {}
    assert export_tflite(nvm, tmp_path / "m.tflite", measure_arena=False).folded_layers == ()
