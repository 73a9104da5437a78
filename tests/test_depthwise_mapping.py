"""Depthwise layers on crossbars and the device utilisation the mapping reports (issue 24, item 8).

Utilisation is ``weights / devices``: the Keras kernel's size over the devices programmed for it
(`CrossbarLayer.weights`, `Mapping.summary`, `tf-nvm inspect`).
"""

import json
import warnings

import pytest

import tf_nvm
from tf_nvm._keras import keras
from tf_nvm.mapping import format_table, layer_table

L = keras.layers


def _model(preset, channels=8, size=6):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = L.Conv2D(channels, 3, padding="same", use_bias=False)(inputs)
    x = L.ReLU()(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(4)(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf_nvm.quantize_model(keras.Model(inputs, x), preset, init="device")


@pytest.fixture(scope="module")
def mapped():
    from tflite_export import build_mapping

    model = _model("paper-4bit-bipolar")
    return model, build_mapping(model)


def test_weights_and_device_utilisation_per_layer_and_in_total(mapped):
    model, mapping = mapped
    codes = tf_nvm.weight_codes(model)
    for layer in mapping.crossbar_layers:
        assert layer.weights == codes[layer.name].codes.size  # the Keras kernel's size
        assert layer.device_utilisation == layer.weights / layer.devices
    depthwise = next(layer for layer in mapping.crossbar_layers if layer.op == "depthwise_conv2d")
    assert depthwise.weights == 3 * 3 * 8
    summary = mapping.summary()
    assert summary["weights"] == sum(c.codes.size for c in codes.values())
    assert summary["device_utilisation"] == summary["weights"] / summary["devices"]
    spec = mapping.spec
    assert summary["device_utilisation"] <= 1 / spec.devices_per_weight
    rows = {row["name"]: row for row in layer_table(mapping)}
    assert rows[depthwise.name]["device_util"] == depthwise.device_utilisation
    assert rows[depthwise.name]["weights"] == 72


def test_table_prints_device_utilisation_and_the_depthwise_cost(mapped):
    _, mapping = mapped
    summary = mapping.summary()
    text = format_table(mapping)
    assert "dev util" in text.splitlines()[2]
    assert (f"device utilisation: {summary['weights']} weights / {summary['devices']} devices = "
            f"{100 * summary['device_utilisation']:.1f}%") in text
    assert "depthwise layers: 1 mapped as" in text


def test_inspect_json_reports_weights_and_utilisation(mapped, tmp_path, capsys):
    from tf_nvm import cli
    from tf_nvm.mapping import save

    _, mapping = mapped
    save(mapping, tmp_path / "m")
    assert cli.main(["inspect", str(tmp_path / "m"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["weights"] == mapping.summary()["weights"]
    assert report["summary"]["device_utilisation"] == pytest.approx(mapping.summary()["device_utilisation"])
    assert all(row["device_util"] is None or 0 < row["device_util"] <= 0.5 for row in report["layers"])
