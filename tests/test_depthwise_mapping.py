"""Depthwise layers on crossbars and the device utilisation the mapping reports (issue 24, item 8).

Utilisation is ``weights / devices``: the Keras kernel's size over the devices programmed for it
(`CrossbarLayer.weights`, `Mapping.summary`, `tf-nvm inspect`). A depthwise layer is mapped
block-diagonally: channel-major rows, ``g = floor(tile rows / (k*k))`` channels per crossbar, only the
diagonal tiles programmed (schema version 2); version-1 files (the full block-diagonal matrix on a grid)
still load and run as before.
"""

import dataclasses
import json
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import MappingError
from tf_nvm.keras.backend import keras
from tf_nvm.cost import network_cost
from tf_nvm.cost.plan import plan_as, plan_mapping
from tf_nvm.mapping import format_table, layer_table, levels_from_codes, load, plan_tiles, reference, save
from tf_nvm.mapping.tiling import channel_major_rows
from tf_nvm.nas.hardware import hardware_counts
from tf_nvm.simulator import SimulationConfig, Simulator
from tf_nvm.simulator.devices import LayerDevices

L = keras.layers


def _model(preset, channels=8, size=6, multiplier=1):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = L.Conv2D(channels, 3, padding="same", use_bias=False)(inputs)
    x = L.ReLU()(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, depth_multiplier=multiplier)(x)
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
        assert layer.device_utilization == layer.weights / layer.devices
    depthwise = next(layer for layer in mapping.crossbar_layers if layer.op == "depthwise_conv2d")
    assert depthwise.weights == 3 * 3 * 8
    summary = mapping.summary()
    assert summary["weights"] == sum(c.codes.size for c in codes.values())
    assert summary["device_utilisation"] == summary["weights"] / summary["devices"]
    spec = mapping.spec
    assert summary["device_utilisation"] <= 1 / spec.devices_per_weight
    rows = {row["name"]: row for row in layer_table(mapping)}
    assert rows[depthwise.name]["device_util"] == depthwise.device_utilization
    assert rows[depthwise.name]["weights"] == 72


def test_table_prints_device_utilisation_and_the_depthwise_cost(mapped):
    _, mapping = mapped
    summary = mapping.summary()
    text = format_table(mapping)
    assert "dev util" in text.splitlines()[2]
    assert (f"device utilisation: {summary['weights']} weights / {summary['devices']} devices = "
            f"{100 * summary['device_utilisation']:.1f}%") in text
    assert ("depthwise layers: 1 block-diagonal (only the diagonal tiles are programmed, 8 channels per tile): "
            "72 weights on 1152 devices (6.2%)") in text  # 72 rows x 8 pairs: 8 channels fit one 128-row tile
    assert "block-diagonal (k*k*C) x C" not in text


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


def _depthwise(mapping):
    return next(layer for layer in mapping.crossbar_layers if layer.op == "depthwise_conv2d")


def _ideal_equals_evaluator(mapping, x):
    want = reference.evaluate(mapping, x)
    for fuse in (True, False):  # the fused linear path and the per-tile path (ADCs per row tile)
        sim = Simulator(mapping, SimulationConfig(batch_size=32))
        sim._fuse = fuse
        got = sim.run(sim.program(0), x)
        for name in mapping.outputs:
            np.testing.assert_array_equal(got.codes[name], want.codes[name], err_msg=f"{name}, fused={fuse}")
    return want


@pytest.fixture(scope="module")
def wide():
    """64 channels, 3x3: DS-CNN's depthwise layer (on a 3x3 image: the count does not depend on the image)."""
    from tflite_export import build_mapping

    model = _model("paper-4bit-bipolar", channels=64, size=3)
    return model, build_mapping(model)


def test_a_64_channel_3x3_depthwise_layer_takes_its_diagonal_tiles_only(wide):
    model, mapping = wide
    layer, spec = _depthwise(mapping), mapping.spec
    assert (spec.rows, spec.cols, spec.devices_per_weight) == (128, 128, 2)
    # g = 128 // 9 = 14 channels per tile: 4 tiles of 126 rows x 28 device columns, 1 of 8 channels (72 x 16)
    assert layer.channels_per_tile == 14 and layer.row_order == "channel_major"
    assert [(t.rows_used, t.device_cols) for t in layer.tiles] == [(126, 28)] * 4 + [(72, 16)]
    assert layer.devices == 4 * 126 * 28 + 72 * 16 == 15_264
    assert sum(t.devices for t in plan_tiles(576, 64, spec)) == 576 * 128 == 73_728  # the grid layout (schema 1)
    assert layer.weights == 576 and layer.device_utilization == pytest.approx(576 / 15_264)
    assert layer.partial_sum_tiles == 1
    # the simulator programs exactly these devices; the cost model counts them
    assert int(LayerDevices.from_layer(layer, spec, 1).used.sum()) == 15_264
    plan = next(p for p in plan_mapping(mapping) if p.name == layer.name)
    assert plan.devices == 15_264 and plan.row_tiles == 1 and len(plan.tiles) == 5
    cost = network_cost(mapping)
    cells = cost.components[(cost.components.layer == layer.name) & (cost.components.component == "partial_sums")]
    assert int(cells.operations.iloc[0]) == 0  # every output lives in one tile: no digital partial sums
    counts = hardware_counts(model)  # the search's budget counts the same tiles and devices without exporting
    assert (counts.tiles, counts.devices) == (mapping.summary()["tiles"], mapping.summary()["devices"])
    # channel-major rows: channel c holds rows 9c..9c+8 of its own column only
    kernel = tf_nvm.weight_codes(model)[layer.name].codes  # [3, 3, 64, 1]
    np.testing.assert_array_equal(layer.codes[9 * 5:9 * 6, 5], kernel[:, :, 5, 0].reshape(-1))
    assert not np.any(np.delete(layer.codes[9 * 5:9 * 6], 5, axis=1))


@pytest.mark.parametrize("mapping_kind", ["differential", "offset", "unipolar"])
def test_block_diagonal_tiles_are_exact_in_the_evaluator_and_the_ideal_simulator(mapping_kind):
    """Several tiles (small crossbars), a depth multiplier, and the offset mapping's reference column per tile."""
    from tflite_export import build_mapping

    spec = (tf_nvm.core.presets.get("paper-2bit-unipolar") if mapping_kind == "unipolar" else
            tf_nvm.core.presets.get("paper-4bit-bipolar").replace(bipolar_mapping=mapping_kind))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    x = L.Conv2D(10, 3, padding="same")(inputs)
    outputs = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)  # its codes are the output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(keras.Model(inputs, outputs), spec, init="device")
    mapping = build_mapping(model, spec=tf_nvm.model_spec(model).replace(rows=32, cols=16))
    layer = _depthwise(mapping)
    assert mapping.spec.mapping_kind == mapping_kind
    per_output = 2 if mapping_kind == "differential" else 1
    assert layer.channels_per_tile == min(32 // 9, (16 - (mapping_kind == "offset")) // per_output // 2) == 3
    assert len(layer.tiles) == 4 and layer.devices == sum(t.rows_used * t.device_cols for t in layer.tiles)
    assert int(LayerDevices.from_layer(layer, mapping.spec, 1).used.sum()) == layer.devices
    x = np.random.default_rng(1).normal(0, 2, (64, 6, 6, 3)).astype(np.float32)
    want = _ideal_equals_evaluator(mapping, x)
    np.testing.assert_array_equal(want.values(), model.predict(x, verbose=0))
    assert len(np.unique(want.codes[mapping.outputs[0]])) > 50  # a varied output, not a clipped constant


def test_a_channel_larger_than_a_tile_falls_back_to_the_grid_layout(wide):
    """9 taps on 8-row crossbars: the layer keeps the full block-diagonal matrix on the grid (as schema 1)."""
    from tflite_export import build_mapping

    model, _ = wide
    mapping = build_mapping(model, spec=tf_nvm.model_spec(model).replace(rows=8, cols=16))
    layer = _depthwise(mapping)
    assert layer.channels_per_tile is None and layer.row_order == "position_major"
    assert layer.devices == sum(t.devices for t in plan_tiles(576, 64, mapping.spec))
    assert "on the full block-diagonal (k*k*C) x C matrix" in format_table(mapping)


def test_the_cost_model_replans_the_diagonal_tiles_for_another_mapping_kind(wide):
    _, mapping = wide
    layer = _depthwise(mapping)
    unipolar = next(p for p in plan_as(mapping, "unipolar") if p.name == layer.name)
    # one device per weight: g = min(128 // 9, 128) = 14 again, tiles of 126 x 14 and 72 x 8
    assert unipolar.tiles == ((126, 14),) * 4 + ((72, 8),) and unipolar.devices == 7_632


def _as_version_1(mapping, path):
    """Writes ``mapping`` as tf_nvm's version-1 writer did: depthwise layers on the grid, no layout fields."""
    layers = []
    for layer in mapping.layers:
        if getattr(layer, "channels_per_tile", None) is not None:
            back = np.argsort(channel_major_rows(int(np.prod(layer.kernel_size)), layer.in_channels))
            codes = layer.codes[back]
            layer = dataclasses.replace(layer, channels_per_tile=None, codes=codes,
                                        levels=levels_from_codes(codes, mapping.spec),
                                        tiles=plan_tiles(layer.rows, layer.cols, mapping.spec))
        layers.append(layer)
    json_path, _ = save(dataclasses.replace(mapping, layers=tuple(layers)), path)
    with open(json_path) as handle:
        doc = json.load(handle)
    doc["schema_version"] = 1
    for entry in doc["layers"]:
        if entry["kind"] == "crossbar":
            entry["geometry"]["row_order"] = "kernel positions (C order), channel fastest"
            del entry["tiling"]["layout"], entry["tiling"]["channels_per_tile"]
    with open(json_path, "w") as handle:
        json.dump(doc, handle)
    return json_path


def test_a_version_1_mapping_file_still_loads_and_runs_as_before(wide, tmp_path):
    _, mapping = wide
    old = load(_as_version_1(mapping, tmp_path / "v1"))
    layer = _depthwise(old)
    assert layer.channels_per_tile is None and layer.devices == 73_728 and len(layer.tiles) == 5
    assert old.summary()["devices"] - mapping.summary()["devices"] == 73_728 - 15_264
    assert "on the full block-diagonal (k*k*C) x C matrix" in format_table(old)
    x = np.random.default_rng(2).normal(0, 2, (48, 3, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(_ideal_equals_evaluator(old, x).codes[old.outputs[0]],
                                  reference.evaluate(mapping, x).codes[mapping.outputs[0]])
    save(mapping, tmp_path / "v2")
    with open(tmp_path / "v2.json") as handle:
        doc = json.load(handle)
    entry = next(e for e in doc["layers"] if e["op"] == "depthwise_conv2d")
    assert doc["schema_version"] == 2 and entry["tiling"]["layout"] == "block_diagonal"
    assert entry["tiling"]["channels_per_tile"] == 14 and entry["geometry"]["row_order"] == "channel_major"
    assert load(tmp_path / "v2").summary() == mapping.summary()


def _edit_depthwise(path, change):
    with open(path) as handle:
        doc = json.load(handle)
    change(next(e for e in doc["layers"] if e["op"] == "depthwise_conv2d"))
    with open(path, "w") as handle:
        json.dump(doc, handle)


@pytest.mark.parametrize("change, message", [
    (lambda e: e["tiling"].update(channels_per_tile=15),
     r"tiling\.channels_per_tile: value 15: 15 channels of 9 taps and 1 output\(s\) each do not fit one 128x128 "
     r"crossbar of the spec \(at most 14\)\. Fix: re-export"),
    (lambda e: e["tiling"].update(channels_per_tile=None),
     r"tiling\.layout: layout 'block_diagonal' with row_order 'channel_major' does not match channels_per_tile None, "
     r"which needs layout 'grid' and row_order 'position_major'\. Fix: re-export"),
    (lambda e: e["tiling"].pop("channels_per_tile"), r"tiling\.channels_per_tile: is missing\. Fix: re-export"),
])
def test_a_wrong_block_diagonal_layout_is_refused_naming_the_field(wide, tmp_path, change, message):
    _, mapping = wide
    save(mapping, tmp_path / "m")
    _edit_depthwise(tmp_path / "m.json", change)
    with pytest.raises(MappingError, match=message):
        load(tmp_path / "m")


def test_a_code_off_the_channel_blocks_is_refused(wide):
    _, mapping = wide
    layer = _depthwise(mapping)
    codes = layer.codes.copy()
    codes[0, 1] = 1  # channel 0's first tap in channel 1's column: no device holds it
    bad = dataclasses.replace(layer, codes=codes, levels=levels_from_codes(codes, mapping.spec))
    with pytest.raises(MappingError, match=r"codes: 1 code\(s\) off the channel blocks are not 0; in the "
                                           r"block-diagonal layout"):
        dataclasses.replace(mapping, layers=tuple(bad if other is layer else other for other in mapping.layers))


def test_adc_calibration_reads_only_the_programmed_columns_of_each_tile(wide):
    """Off-diagonal columns of a row tile have no devices: their zero sums must not pull the ADC range down."""
    _, mapping = wide
    layer = _depthwise(mapping)
    x = np.random.default_rng(3).normal(0, 2, (32, 3, 3, 3)).astype(np.float32)
    sim = Simulator(mapping, SimulationConfig(batch_size=32))
    record = {}
    sim._network(tf_nvm.keras.backend.tf.constant(x), {n: c.weights for n, c in sim.program(0).layers.items()}, {},
                 dict.fromkeys(sim.layouts), 0, record)
    sums = np.stack([s.numpy() for s in record[layer.name]])  # [row tiles, examples x positions, device columns]
    programmed = sim.layouts[layer.name].programmed_columns()
    assert programmed.sum() == 4 * 28 + 16  # each row tile: its own channels' pairs
    assert all(not np.any(s[:, ~p]) for s, p in zip(sums, programmed))  # no device, no current
    want = float(np.median(np.concatenate([np.abs(s[:, p]).ravel() for s, p in zip(sums, programmed)])))
    assert sim.column_sum_peaks(x, 50.0)[layer.name] == want > 0  # over all columns the median would be 0


def test_noise_and_faults_reach_exactly_the_programmed_devices(wide):
    """A PCM-like chip with stuck-at faults: every device of the diagonal tiles deviates, nothing else exists."""
    from tf_nvm.simulator import DeviceConfig

    _, mapping = wide
    layer = _depthwise(mapping)
    config = SimulationConfig(device=DeviceConfig(noise="pcm-like", t_inference=3600.0, stuck_at_gmax_rate=0.05,
                                                  read_noise="per-read"))
    sim = Simulator(mapping, config)
    chip = sim.program(0).layers[layer.name]
    layout = sim.layouts[layer.name]
    used = layout.used > 0
    assert int(used.sum()) == layer.devices == 15_264
    weights, sigma = chip.weights.numpy(), chip.read_sigma.numpy()
    assert np.all(weights[~used] == 0) and np.all(sigma[~used] == 0)  # no device: no conductance, no read noise
    assert np.count_nonzero(weights[used] != layout.levels[used]) > 0.9 * used.sum()  # every device deviates
    assert np.count_nonzero(sigma[used]) > 0.5 * used.sum()  # PCM read noise ~ g: 0 where g drifted to 0
