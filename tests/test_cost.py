"""The hardware cost model (tf_nvm.cost): hand-derived component numbers, properties, bad input, the CLI."""

import dataclasses
import json
import math
import os
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tf_nvm import CostModelError
from tf_nvm.core import presets
from tf_nvm import mapping as M
from tf_nvm.cli import main
from tf_nvm.cost import (COMPONENTS, MCU_CORES, TECHNOLOGIES, McuCore, Technology, apply_settings,
                         check_tflite_bytes, compare_mappings, load_technology, mcu_cost, network_cost, op_table,
                         plan_mapping, shared_vs_per_layer)
from tf_nvm.cost.crossbar import CROSSBAR_PERIPHERY, ORDER
from tf_nvm.cost.digital import DIGITAL_OP_WORK
from tf_nvm.mapping.device import adc_full_scale, levels_from_codes
from tf_nvm.mapping.tiling import plan_tiles


# ------------------------------------------------------------------ tiny mappings built by hand
def _spec(preset="paper-2bit-unipolar", **changes):
    return presets.get(preset).with_weight_scale(0.1).replace(**changes)


def _dense(spec, rows, cols, codes=None, name="fc", inputs="x", relu=False):
    if codes is None:
        codes = np.full((rows, cols), spec.code_max, np.int8)
    codes = np.asarray(codes, np.int8)
    return M.CrossbarLayer(
        name=name, op="dense", inputs=(inputs,), output=name, output_shape=(cols,), input_shape=(rows,),
        kernel_size=(), strides=(), dilation=(), padding="valid", pads=(), in_channels=rows, filters=cols,
        rows=rows, cols=cols, codes=codes, levels=levels_from_codes(codes, spec),
        reference_level=spec.reference_level, bias=None, bias_int32=None, activation="relu" if relu else "linear",
        tiles=plan_tiles(rows, cols, spec), input_rails=1, adc_full_scale=adc_full_scale(rows, spec))


def _mapping(spec, rows, cols, codes=None, relu_step=False):
    """x[rows] -> dense fc (rows x cols) [-> digital relu]."""
    inp = M.InputEncoding("x", (rows,), "signed-dac", spec.activation_step)
    layers = [_dense(spec, rows, cols, codes)]
    if relu_step:
        layers.append(M.DigitalLayer("act", "relu", ("fc",), "act", (cols,), {}, {}, True))
    return M.Mapping(spec, inp, tuple(layers), (layers[-1].output,))


def _value(result, component, column):
    rows = result.components[result.components["component"] == component]
    return rows[column].sum()


# ------------------------------------------------------------------ hand-derived numbers
def test_one_small_unipolar_layer_component_by_component():
    # 2-bit unipolar, 4 x 2 weights all at code 3 (G = 25 uS), one 128 x 128 tile ("fixed" sizing), one read.
    # Bit-serial 8-bit inputs, 1 bit per cycle: 8 cycles. Node 32 nm: ISAAC values unscaled, Aladdin x 32/40 (energy).
    result = network_cost(_mapping(_spec(), 4, 2))
    pj = pytest.approx
    # cells: 128*128 = 16384 cells x 16 F^2 x (0.04 um)^2 = 419.4304 um^2; 4*2 devices x 8 cycles = 64 reads,
    # each 0.5 (activity) x 0.5 V^2 x 25 uS x 10 ns = 0.03125 pJ -> 2.0 pJ
    assert _value(result, "cells", "count") == 16384
    assert _value(result, "cells", "area_um2") == pj(419.4304)
    assert (_value(result, "cells", "operations"), _value(result, "cells", "energy_pj")) == (64, pj(2.0))
    # DACs: 128 rows x 0.166015625 um^2 = 21.25 um^2; 4 used rows x 8 cycles = 32 conversions x 0.41667 pJ
    assert (_value(result, "dac", "count"), _value(result, "dac", "area_um2")) == (128, pj(21.25))
    assert _value(result, "dac", "energy_pj") == pj(32 * 0.41667)
    # S&H: 128 x 0.0390625 um^2 = 5 um^2; 2 columns x 8 cycles = 16 samples x 9.765625e-4 pJ = 0.015625 pJ
    assert (_value(result, "sample_hold", "area_um2"), _value(result, "sample_hold", "energy_pj")) == (pj(5.0),
                                                                                                    pj(0.015625))
    # ADCs: 128 / 8 shared = 16 x 1200 um^2 = 19200 um^2; 16 conversions x 1.67 pJ = 26.72 pJ
    assert (_value(result, "adc", "count"), _value(result, "adc", "area_um2")) == (16, pj(19200.0))
    assert _value(result, "adc", "energy_pj") == pj(26.72)
    # shift-and-add: 16 x 0.5 = 8 units x 60 um^2; 16 x 0.021 pJ = 0.336 pJ
    assert (_value(result, "shift_add", "count"), _value(result, "shift_add", "area_um2")) == (8, pj(480.0))
    assert _value(result, "shift_add", "energy_pj") == pj(0.336)
    # G_min correction: input sum 4 x 0.021 + 1 multiply x 12.68*0.8 + 2 subtracts x 0.21*0.8 = 10.564 pJ
    assert _value(result, "gmin_correction", "energy_pj") == pj(0.084 + 10.144 + 0.336)
    # requantisation: 2 multiplies x 10.144 + 2 clips x 0.02947*0.8 = 20.335152 pJ (no bias, linear)
    assert _value(result, "bias_activation_requant", "energy_pj") == pj(20.335152)
    assert _value(result, "pair_subtraction", "count") == 0 and "pair_subtraction" not in set(
        result.components["component"])
    # latency: 1 read x 8 cycles x max(10 ns, 8 x 0.8333 ns) = 80 ns, + (7 lane ops: 2 gmin adds... ) / 8 per ns
    lane_ops = 3 + 4  # gmin: 2 subtracts + 1 multiply (the input sum overlaps the array); requant 2 + 2
    assert result.latency_ns == pj(80.0 + lane_ops / 8)


def test_fit_sizing_counts_only_used_rows_and_columns():
    result = network_cost(_mapping(_spec(), 4, 2), Technology(array_sizing="fit"))
    # 4 x 2 cells, 4 DACs, 2 S&H, ceil(2 / 8) = 1 ADC
    assert [_value(result, c, "count") for c in ("cells", "dac", "sample_hold", "adc")] == [8, 4, 2, 1]


def test_differential_pair_doubles_columns_and_subtracts_once_per_output():
    result = network_cost(_mapping(_spec("paper-2bit-bipolar"), 4, 2), Technology(array_sizing="fit"))
    # 2 outputs x 2 devices = 4 device columns: 4 S&H, 4 x 8 = 32 conversions, 2 subtractions
    assert _value(result, "sample_hold", "count") == 4
    assert _value(result, "adc", "operations") == 32
    assert _value(result, "pair_subtraction", "operations") == 2


def test_offset_mapping_has_a_reference_column_per_tile():
    result = network_cost(_mapping(_spec("paper-2bit-bipolar", bipolar_mapping="offset"), 4, 2))
    # one reference column of 128 cells; its 4 used rows x 8 cycles = 32 reads
    assert (_value(result, "reference_columns", "count"), _value(result, "reference_columns", "operations")) == (128,
                                                                                                                32)
    assert _value(result, "cells", "count") == 128 * 127


def test_adc_table_of_the_default_technology():
    tech = Technology()
    # ISAAC 8-bit ADC at 32 nm: 1.67 pJ, 1200 um^2; 12 bits: 10-bit value doubled twice (stated assumption)
    assert (tech.adc_energy_pj(8), tech.adc_area_um2(8)) == (1.67, 1200.0)
    assert tech.adc_energy_pj(12) == pytest.approx(2.379022742 * 4)
    assert tech.adc_energy_pj(2) == 0.79
    # node scaling: 16 nm halves energy and quarters area
    small = tech.replace(node_nm=16.0)
    assert (small.adc_energy_pj(8), small.adc_area_um2(8)) == (pytest.approx(0.835), pytest.approx(300.0))


def test_plan_counts_equal_the_inspect_table():
    mapping = _mapping(_spec(rows=16, cols=16), 40, 20, relu_step=True)
    plan = plan_mapping(mapping)[0]
    row = M.layer_table(mapping)[0]
    assert (plan.row_drivers_used, plan.device_columns, plan.reads, plan.devices) == (row["dacs"], row["adcs"],
                                                                                     row["reads"], row["devices"])


def test_every_digital_op_has_a_cost_entry():
    assert DIGITAL_OP_WORK.names() == M.DIGITAL_OPS.names()
    assert sorted(ORDER) == COMPONENTS.names()


def test_digital_step_costs_one_compare_per_relu_value():
    result = network_cost(_mapping(_spec(), 4, 3, relu_step=True))
    row = result.components[result.components["layer"] == "act"]
    assert row["operations"].item() == 3 and row["energy_pj"].item() == pytest.approx(3 * 0.02947 * 0.8)


def test_per_layer_periphery_counts_distinct_designs_and_extra_scaling():
    inp = M.InputEncoding("x", (4,), "signed-dac", _spec().activation_step)
    spec = _spec()
    layers = (_dense(spec, 4, 3, name="a"), _dense(spec, 3, 2, name="b", inputs="a"))
    mapping = M.Mapping(spec, inp, layers, ("b",))
    table = shared_vs_per_layer(mapping)
    assert table["adc_designs"].tolist() == [1, 2] and table["scaling_designs"].tolist() == [1, 2]
    shared, custom = network_cost(mapping), network_cost(mapping, per_layer_periphery=True)
    # extra: one multiply and one add per output value (3 + 2), each layer's own 8-lane scaling block
    extra = custom.energy_pj - shared.energy_pj
    assert extra == pytest.approx(5 * (12.68 + 0.21) * 0.8)
    assert custom.area_um2 - shared.area_um2 == pytest.approx(2 * 8 * (6350 + 278) * 0.64)


# ------------------------------------------------------------------ properties
@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 300), cols=st.integers(1, 150), low=st.integers(1, 15), high=st.integers(1, 16))
def test_more_adc_bits_are_never_cheaper(rows, cols, low, high):
    low, high = min(low, high), max(low, high)
    a = network_cost(_mapping(_spec(adc_bits=low), rows, cols))
    b = network_cost(_mapping(_spec(adc_bits=high), rows, cols))
    assert _value(b, "adc", "energy_pj") >= _value(a, "adc", "energy_pj")
    assert b.area_um2 >= a.area_um2 and b.energy_pj >= a.energy_pj


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 300), cols=st.integers(1, 150), more_rows=st.integers(0, 300),
       more_cols=st.integers(0, 150), sizing=st.sampled_from(["fixed", "fit"]))
def test_more_tiles_are_never_smaller(rows, cols, more_rows, more_cols, sizing):
    tech = Technology(array_sizing=sizing)
    a = network_cost(_mapping(_spec(), rows, cols), tech)
    b = network_cost(_mapping(_spec(), rows + more_rows, cols + more_cols), tech)
    assert len(plan_mapping(_mapping(_spec(), rows + more_rows, cols + more_cols))[0].tiles) >= len(
        plan_mapping(_mapping(_spec(), rows, cols))[0].tiles)
    assert b.area_um2 >= a.area_um2 and b.energy_pj >= a.energy_pj - 1e-9


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 300), cols=st.integers(1, 150), bits=st.sampled_from([2, 4]),
       adc_bits=st.integers(4, 12), sizing=st.sampled_from(["fixed", "fit"]))
def test_unipolar_never_has_more_periphery_than_bipolar(rows, cols, bits, adc_bits, sizing):
    tech = Technology(array_sizing=sizing)
    mapping = _mapping(_spec(weight_bits=bits, adc_bits=adc_bits), rows, cols)
    comparison = compare_mappings(mapping, tech)
    assert comparison["unipolar_xbar_periphery_area_mm2"] <= comparison["bipolar_xbar_periphery_area_mm2"] + 1e-15
    # Energy: the unipolar G_min correction (input sum + one multiply per read) is amortised over the layer's
    # outputs; it is cheaper than the pair's second column once
    # cols * cycles * (ADC + S&H + shift-add) >= rows_per_read * shift-add + multiply (docs/cost_model.md).
    column = 8 * (tech.adc_energy_pj(adc_bits) + tech.sample_hold_energy_pj + tech.shift_add_energy_pj)
    if cols * column >= rows * tech.shift_add_energy_pj + tech.digital_energy("multiply_energy_pj"):
        assert comparison["unipolar_xbar_periphery_energy_nj"] <= comparison["bipolar_xbar_periphery_energy_nj"]


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 200), cols=st.integers(1, 100), n=st.integers(0, 10 ** 6), m=st.integers(0, 10 ** 6))
def test_energy_is_linear_in_inferences(rows, cols, n, m):
    result = network_cost(_mapping(_spec(), rows, cols, relu_step=True))
    assert result.energy_for(n) == pytest.approx(n * result.energy_pj)
    assert result.energy_for(n + m) == pytest.approx(result.energy_for(n) + result.energy_for(m))


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 300), cols=st.integers(1, 150), preset=st.sampled_from(sorted(presets.names())),
       per_layer=st.booleans())
def test_totals_equal_the_sum_of_the_parts(rows, cols, preset, per_layer):
    result = network_cost(_mapping(_spec(preset), rows, cols, relu_step=True), per_layer_periphery=per_layer)
    by_component = result.by_component()
    assert result.area_um2 == pytest.approx(by_component["area_um2"].sum())
    assert result.energy_pj == pytest.approx(by_component["energy_pj"].sum())
    summary = result.summary()
    for key in ("area_mm2", "energy_nj"):
        parts = sum(summary[f"{group}_{key}"] for group in ("array", "periphery", "buffer"))
        assert summary[f"total_{key}"] == pytest.approx(parts)
    assert result.latency_ns == pytest.approx(result.latency["latency_ns"].sum())
    assert set(CROSSBAR_PERIPHERY) <= set(COMPONENTS.names())


# ------------------------------------------------------------------ technology input
def test_presets_are_valid_and_round_trip(tmp_path):
    for name, tech in TECHNOLOGIES.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(tech.to_dict()))
        assert load_technology(path) == tech


def test_unknown_technology_key_is_refused_listing_the_keys(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"adc_bitz": 8}))
    with pytest.raises(CostModelError, match=r"technology file '.*t\.json': unknown key\(s\) \['adc_bitz'\]; "
                                             r"known keys: \['name', 'array_sizing', 'node_nm', .*\]\. Fix: use one "
                                             r"of the known keys"):
        load_technology(path)
    with pytest.raises(CostModelError, match=r"^--set: unknown key\(s\) \['nodes_nm'\]"):
        apply_settings(Technology(), ["nodes_nm=16"])


@pytest.mark.parametrize("key, value, allowed", [
    ("adc_share_columns", 0, r"an integer in 1\.\.1048576"),
    ("read_voltage_v", -0.5, r"a finite number > 0 within 1e-12\.\.1e\+12"),
    ("read_voltage_v", float("nan"), r"a finite number > 0 within 1e-12\.\.1e\+12"),
    ("dac_energy_pj", float("inf"), r"a finite number > 0 within 1e-12\.\.1e\+12"),
    ("clock_ghz", 5e-324, r"a finite number > 0 within 1e-12\.\.1e\+12"),  # made every latency infinite
    ("input_activity", 1.5, r"a finite number in \(0, 1\], at least 1e-12"),
    ("adc_energy_pj_table", (1.0, 0.5, 2, 3, 4, 5, 6), "values that never decrease with more ADC bits"),
    ("array_sizing", "tight", r"\['fixed', 'fit'\]"),
    ("digital_lanes", True, r"an integer in 1\.\.1048576"),
])
def test_invalid_technology_values_are_refused_naming_key_value_and_range(key, value, allowed):
    with pytest.raises(CostModelError,
                       match=rf"^technology\.{key}: value .* is not allowed; allowed: {allowed}\. Fix: "):
        Technology(**{key: value})


def test_settings_parse_numbers_and_lists():
    tech = apply_settings(Technology(), ["adc_share_columns=4", "array_sizing=fit", "node_nm=22.5"])
    assert (tech.adc_share_columns, tech.array_sizing, tech.node_nm) == (4, "fit", 22.5)
    with pytest.raises(CostModelError, match=r"setting 'node_nm' is not KEY=VALUE"):
        apply_settings(Technology(), ["node_nm"])


# ------------------------------------------------------------------ mappings and TFLite files
def test_something_that_is_not_a_mapping_is_refused():
    with pytest.raises(CostModelError, match=r"^the cost model needs a tf_nvm\.mapping\.Mapping, got dict\. Fix: load"):
        network_cost({"layers": []})


def test_a_mapping_that_fails_validation_is_a_named_error(tmp_path, capsys):
    M.save(_mapping(_spec(), 4, 2), tmp_path / "m")
    data = json.loads((tmp_path / "m.json").read_text())
    data["layers"][0]["tiling"]["tiles"][0]["row_stop"] = 3
    (tmp_path / "m.json").write_text(json.dumps(data))
    assert main(["cost", str(tmp_path / "m"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tf-nvm: error: {tmp_path / 'm.json'}: layers[0] ('fc').tiling.tiles[0]")
    assert err.rstrip().endswith("Fix: re-export the mapping with tflite_export.export_crossbar.")


def test_a_file_that_is_not_tflite_is_refused(tmp_path, capsys):
    M.save(_mapping(_spec(), 4, 2), tmp_path / "m")
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"this is not a flatbuffer at all")
    assert main(["cost", str(tmp_path / "m"), "--tflite", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert (f"tf-nvm: error: --tflite '{bad}': not a TFLite flatbuffer (identifier b' is ', expected b'TFL3'). Fix: "
            "pass the .tflite file written by tf-nvm export --tflite.") in capsys.readouterr().err
    with pytest.raises(CostModelError, match=r"--tflite: not a TFLite flatbuffer"):
        check_tflite_bytes(b"")


# ------------------------------------------------------------------ MCU baseline
_Op = namedtuple("_Op", "index op inputs outputs")
_Tensor = namedtuple("_Tensor", "shape")
_Graph = namedtuple("_Graph", "operators tensors size_bytes")


def test_mcu_macs_cycles_and_energy_by_hand():
    tensors = [_Tensor((1, 1, 8, 4)), _Tensor((16, 1, 3, 4)), _Tensor((1, 1, 8, 16)), _Tensor((10, 128)),
               _Tensor((1, 10)), _Tensor((1, 1, 3, 16)), _Tensor((1, 1, 8, 16)), _Tensor((1, 128))]
    graph = _Graph([_Op(0, "CONV_2D", (0, 1), (2,)), _Op(1, "DEPTHWISE_CONV_2D", (2, 5), (6,)),
                    _Op(2, "FULLY_CONNECTED", (7, 3), (4,)), _Op(3, "MAX_POOL_2D", (6,), (2,))], tensors, 5000)
    table = op_table(graph)
    # conv: 8*16 outputs x (1*3*4) = 1536; depthwise: 128 outputs x 1*3 = 384; FC: 10 x 128 = 1280; pool: 0
    assert table["macs"].tolist() == [1536, 384, 1280, 0]
    core = McuCore("test", clock_mhz=100.0, macs_per_cycle=0.5, cycles_per_value=2.0, current_ua_per_mhz=100.0,
                   supply_v=3.0)
    _, totals = mcu_cost(graph, core, arena_bytes=2048)
    # cycles: 3200 MACs / 0.5 + 128 pool outputs x 2 = 6656; 66.56 us at 100 MHz;
    # energy per cycle: 100e-6 A/MHz / 1e6 x 3 V = 3e-10 J = 0.3 nJ -> 1996.8 nJ
    assert totals == {"core": "test", "flash_bytes": 5000, "ram_bytes": 2048, "macs": 3200, "cycles": 6656.0,
                      "latency_us": pytest.approx(66.56), "energy_nj": pytest.approx(1996.8)}
    assert set(MCU_CORES.names()) == {"cortex-m4f", "cortex-m7"}
    # sourced defaults (docs/cost_model.md, MCU baseline): MLPerf Tiny v0.5 reference, TFLM + CMSIS-NN, STM32L4R5
    m4 = MCU_CORES.get("cortex-m4f")
    assert (m4.clock_mhz, m4.macs_per_cycle, m4.current_ua_per_mhz, m4.supply_v) == (80.0, 0.148, 192.0, 1.8)
    assert m4.energy_per_cycle_nj == pytest.approx(0.3456)
    with pytest.raises(CostModelError, match=r"mcu core 'x'\.clock_mhz: value 0 is not allowed"):
        dataclasses.replace(core, name="x", clock_mhz=0)


# ------------------------------------------------------------------ command line
def test_cost_command_writes_tables_and_plots(tmp_path, capsys):
    inp = M.InputEncoding("x", (4,), "signed-dac", _spec().activation_step)
    spec = _spec()
    mapping = M.Mapping(spec, inp, (_dense(spec, 4, 3, name="a", relu=True), _dense(spec, 3, 2, name="b", inputs="a")),
                        ("b",))
    M.save(mapping, tmp_path / "m")
    out = tmp_path / "out"
    assert main(["cost", str(tmp_path / "m.json"), "--set", "array_sizing=fit", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "unipolar vs differential: crossbar periphery area -" in printed and "(paper: -67 %)" in printed
    for name in ("summary", "components", "layers", "unipolar_vs_bipolar", "shared_vs_per_layer"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.md").read_text().startswith("| ")
    for name in ("area_by_component.png", "energy_by_component.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    results = json.loads((out / "results.json").read_text())
    assert results["technology"]["array_sizing"] == "fit"
    assert pd.read_csv(out / "summary.csv")["scenario"].tolist() == ["as mapped (unipolar)", "differential", "offset",
                                                                     "per-layer periphery (unipolar)"]
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no temporary files left
    assert math.isclose(results["shared_vs_per_layer"][0]["adc_designs"], 1)


def test_cost_of_a_mapping_file_does_not_import_tensorflow(tmp_path):
    import subprocess
    import sys

    M.save(_mapping(_spec(), 4, 2), tmp_path / "m")
    code = ("import sys\nfrom tf_nvm.cli import main\nstatus = main(sys.argv[1:])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tf_keras', 'tflite_export'}))\n"
            "sys.exit(status)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code, "cost", str(tmp_path / "m"), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": root}, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
