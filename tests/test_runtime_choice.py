"""`NVMSpec.runtime`: the deployment runtime is stated once and the model trains, evaluates and exports for it.

LiteRT's default kernels round once and TFLite Micro's reference kernels twice, so one Keras model matches one
of them bit for bit. With ``runtime="tflm"`` the layers compute TFLite Micro's integer rounding in fit, evaluate
and predict (no context needed); the export's runtime check says which runtime the model matches and what the
other one changes. Small conv model covering every op whose rounding differs (CONV_2D, DEPTHWISE_CONV_2D,
the digital BatchNorm, MEAN, FULLY_CONNECTED).
"""

import contextlib
import io
import json
import re
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import NVMSpec, SpecError
from tf_nvm.keras.backend import keras
from tf_nvm.core.modes import emulate_runtime, runtime_for
from tflite_export import export_tflite, runtime_report

L = keras.layers


def _model(runtime, x, y):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 2))
    h = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, strides=2)(inputs)))
    h = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(h)))
    h = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 1)(h)))
    outputs = L.Dense(4)(L.GlobalAveragePooling2D()(h))
    spec = tf_nvm.core.presets.get("paper-4bit-bipolar").replace(runtime=runtime)
    model = tf_nvm.quantize_model(keras.Model(inputs, outputs), spec)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 8, 8, 2)).astype(np.float32), rng.integers(0, 4, 64)


@pytest.fixture(scope="module")
def exported(data, tmp_path_factory):
    """{runtime: (model, .tflite path, report text, RuntimeReport)}, each model trained with that spec runtime.

    The tflm model goes through ``tf-nvm export`` (saved .keras, 64 random grid inputs), the litert one through
    ``export_tflite(..., check_runtimes=True)`` on the training inputs (about 15 s on an idle 2-core machine).
    """
    from tf_nvm import cli

    folder = tmp_path_factory.mktemp("runtime")
    tflm = _model("tflm", *data)
    tflm.save(folder / "tflm.keras")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = cli.main(["export", str(folder / "tflm.keras"), "--tflite", str(folder / "tflm.tflite")])
    assert status == 0
    litert = _model("litert", *data)
    summary = export_tflite(litert, folder / "litert.tflite", data[0], check_runtimes=True)
    report = runtime_report(tflm, folder / "tflm.tflite", data[0], inputs="64 representative examples")
    return {"tflm": (tflm, folder / "tflm.tflite", out.getvalue(), report),
            "litert": (litert, folder / "litert.tflite", str(summary), summary.runtimes),
            "litert-summary": summary}


# ------------------------------------------------------------------ the spec field
def test_runtime_is_a_validated_spec_field_with_litert_default():
    assert NVMSpec().runtime == "litert" and tf_nvm.core.presets.get("paper-2bit-unipolar").runtime == "litert"
    spec = NVMSpec(runtime="tflm")
    assert spec.to_dict()["runtime"] == "tflm" and NVMSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match=r"NVMSpec\.runtime must be one of \['litert', 'tflm'\] \(the int8 runtime "
                                        r"the model is deployed on: LiteRT or TFLite Micro\), got 'litert-reference'"
                                        r"\. Fix: pass runtime='litert' or runtime='tflm'\."):
        NVMSpec(runtime="litert-reference")


def test_spec_dicts_and_layers_saved_before_the_field_load_as_litert():
    old = NVMSpec(weight_scale_mode="fixed", weight_scale=0.1).to_dict()
    del old["runtime"]
    assert NVMSpec.from_dict(old).runtime == "litert"
    layer = tf_nvm.layers.NVMDense(3, spec=NVMSpec(weight_scale_mode="fixed", weight_scale=0.1, runtime="tflm"))
    config = layer.get_config()
    assert json.loads(json.dumps(config))["spec"]["runtime"] == "tflm"
    del config["spec"]["runtime"]
    assert runtime_for(type(layer).from_config(config).spec) == "litert"


def test_an_explicit_context_overrides_the_spec_runtime():
    tflm = NVMSpec(runtime="tflm")
    assert runtime_for(tflm) == "tflm" and runtime_for(NVMSpec()) == "litert" and runtime_for(None) == "litert"
    with emulate_runtime("litert"):
        assert runtime_for(tflm) == "litert"
    with emulate_runtime("litert-reference"):
        assert runtime_for(NVMSpec()) == "litert-reference"


# ------------------------------------------------------------------ trained for a runtime: exact there
@pytest.mark.slow
@pytest.mark.parametrize("runtime, name, other", [("tflm", "TFLite Micro", "LiteRT"),
                                                  ("litert", "LiteRT", "TFLite Micro")])
def test_model_trained_for_a_runtime_is_bit_exact_there_and_the_report_names_both(exported, runtime, name, other):
    model, _, _, report = exported[runtime]
    assert tf_nvm.model_spec(model).runtime == runtime
    assert report.runtime == runtime and report.deployed.runtime == runtime and report.exact
    assert report.deployed.differing == 0 and report.deployed.outputs == 64 * 4
    assert report.other.runtime == ("litert" if runtime == "tflm" else "tflm")
    assert report.other.differing > 0  # the other runtime rounds differently
    changed = 64 - round(report.other.argmax_agreement * 64)
    assert re.fullmatch(rf"runtime check on 64 representative examples: the Keras model is trained for {name} "
                        rf"\(spec runtime '{runtime}'\) and is bit-exact on {name}: 0/256 outputs differ; on {other} "
                        rf"{report.other.differing}/256 outputs differ \(max \d+ LSB\) and {changed} of 64 "
                        rf"predictions \(arg-max\) change \([\d.]+ % agree\)\. To deploy on {other}, train with spec "
                        rf"runtime '{report.other.runtime}'\.", str(report))


@pytest.mark.slow
def test_export_summary_carries_the_report(exported):
    summary = exported["litert-summary"]
    assert str(summary).endswith("\n" + str(summary.runtimes))
    assert summary.to_dict()["runtimes"]["deployed"]["differing"] == 0
    json.dumps(summary.to_dict())


@pytest.mark.slow
def test_predict_and_evaluate_use_the_spec_runtime(exported, data):
    """model.predict of the tflm model = the same weights evaluated inside emulate_runtime('tflm'), not LiteRT's."""
    model = exported["tflm"][0]
    x = data[0][:32]
    own = model.predict(x, verbose=0)
    with emulate_runtime("tflm"):
        tflm = model(x, training=False).numpy()
    with emulate_runtime("litert"):
        litert = model(x, training=False).numpy()
    np.testing.assert_array_equal(own, tflm)
    assert not np.array_equal(own, litert)
    assert np.isfinite(model.evaluate(x, data[1][:32], verbose=0))


@pytest.mark.slow
def test_cli_export_prints_the_runtime_check(exported):
    text = exported["tflm"][2]
    assert ("runtime check on 64 random inputs on the int8 input grid: the Keras model is trained for TFLite Micro "
            "(spec runtime 'tflm') and is bit-exact on TFLite Micro: 0/256 outputs differ; on LiteRT ") in text
