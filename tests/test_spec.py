import dataclasses

import numpy as np
import pytest

import tf_nvm
from tf_nvm import NVMSpec, SpecError
from tf_nvm.core import presets
from tf_nvm.core.spec import SCHEMA_VERSION


@pytest.mark.parametrize("name", presets.names())
def test_presets_round_trip(name):
    spec = presets.get(name)
    assert NVMSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["schema_version"] == SCHEMA_VERSION


def test_paper_presets_code_ranges():
    # 2-bit unipolar: 2^2 levels 0..3; 2-bit differential pair: -(2^2-1)..(2^2-1).
    assert (presets.get("paper-2bit-unipolar").code_min, presets.get("paper-2bit-unipolar").code_max) == (0, 3)
    assert (presets.get("paper-2bit-bipolar").code_min, presets.get("paper-2bit-bipolar").code_max) == (-3, 3)
    assert (presets.get("paper-4bit-unipolar").code_min, presets.get("paper-4bit-unipolar").code_max) == (0, 15)
    assert (presets.get("paper-4bit-bipolar").code_min, presets.get("paper-4bit-bipolar").code_max) == (-15, 15)
    offset = NVMSpec(weight_bits=4, unipolar=False, bipolar_mapping="offset")
    assert (offset.code_min, offset.code_max, offset.devices_per_weight) == (-8, 7, 1)
    assert presets.get("paper-2bit-bipolar").devices_per_weight == 2


def test_activation_grid_has_exact_zero_point():
    spec = NVMSpec(activation_range=16.0)
    assert spec.activation_step == 0.125
    assert (spec.activation_min, spec.activation_max) == (-16.0, 15.875)


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        presets.get("paper-2bit-unipolar").weight_bits = 4


@pytest.mark.parametrize("kwargs, message", [
    ({"weight_bits": 0}, r"NVMSpec.weight_bits must be an integer in 1..7 \(device codes must fit int8 with zero "
                         r"point 0 \(TFLite weight container\); the paper's devices are 2 and 4 bits\), got 0\. "
                         r"Fix: pass weight_bits=<int in 1..7>\."),
    ({"weight_bits": 9}, r"NVMSpec.weight_bits must be an integer in 1..7 .*got 9\."),
    ({"weight_bits": 8}, r"NVMSpec.weight_bits must be an integer in 1..7 .*got 8\."),
    ({"weight_bits": 2.0}, r"NVMSpec.weight_bits must be an integer in 1..7 .*got 2.0\."),
    ({"activation_range": -1.0}, r"NVMSpec.activation_range must be a finite number > 0 within float32 range, "
                                 r"got -1.0\. Fix: pass activation_range=<float > 0>\."),
    ({"activation_range": float("nan")}, r"NVMSpec.activation_range must be a finite number > 0 within float32 "
                                         r"range, got nan\."),
    ({"activation_range": 10 ** 400}, r"NVMSpec.activation_range must be a finite number > 0 within float32 "
                                      r"range, got 1000000000000000000000000000000000000000\."),
    ({"g_min_us": 1e39}, r"NVMSpec.g_min_us must be a finite number > 0 within float32 range, got 1e\+39\."),
    ({"rows": 0}, r"NVMSpec.rows must be an integer in 1..1048576 \(crossbar rows per tile\), got 0\."),
    ({"cols": -4}, r"NVMSpec.cols must be an integer in 1..1048576 \(crossbar columns per tile\), got -4\."),
    ({"activation_bits": 4}, r"NVMSpec.activation_bits must be 8, got 4: TFLite keeps activations int8\."),
    ({"adc_bits": 0}, r"NVMSpec.adc_bits must be an integer in 1..16 \(ADC resolution\), got 0\."),
    ({"unipolar": 1}, r"NVMSpec.unipolar must be True or False, got 1\."),
    ({"bipolar_mapping": "pair"}, r"NVMSpec.bipolar_mapping must be one of \['differential', 'offset'\], "
                                  r"got 'pair'\."),
    # one integer rule for every bit field (issue 26, item 7): 8.0 and numpy integers are refused as 2.0 is
    ({"activation_bits": 8.0}, r"NVMSpec.activation_bits must be an integer in 1..16 \(activation bits\), got 8\.0\."),
    ({"activation_bits": np.int64(8)}, r"NVMSpec.activation_bits must be an integer in 1..16 .*got np.int64\(8\)"),
    ({"activation_bits": True}, r"NVMSpec.activation_bits must be an integer in 1..16 .*got True\."),
    ({"weight_bits": np.int64(2)}, r"NVMSpec.weight_bits must be an integer in 1..7 .*got np.int64\(2\)"),
    ({"dac_bits": 8.0}, r"NVMSpec.dac_bits must be an integer in 1..8 .*got 8\.0\."),
    ({"adc_bits": np.int32(6)}, r"NVMSpec.adc_bits must be an integer in 1..16 .*got np.int32\(6\)"),
    ({"bipolar_mapping": np.array(["differential"])}, r"NVMSpec.bipolar_mapping must be one of \['differential', "
                                                      r"'offset'\], got array\(\['differential'\], .*\)\. Fix: pass "),
    ({"bipolar_mapping": np.array(["differential", "offset"])}, r"NVMSpec.bipolar_mapping must be one of .*got "
                                                                r"array\(\['differential', 'offset'\]"),
    ({"input_encoding": ["dual-rail"]}, r"NVMSpec.input_encoding must be one of \['signed-dac', 'dual-rail'\], "
                                        r"got \['dual-rail'\]\."),
    ({"weight_scale": -0.1}, r"NVMSpec.weight_scale must be a finite number > 0 within float32 range, got -0.1\."),
    ({"weight_scale_mode": "fixed"}, r"NVMSpec.weight_scale is None but weight_scale_mode='fixed' needs a value\."),
    ({"g_min_us": 30.0}, r"NVMSpec.g_max_us \(25.0\) must be greater than g_min_us \(30.0\)\."),
])
def test_invalid_fields_raise_named_error(kwargs, message):
    with pytest.raises(SpecError, match=message) as info:
        NVMSpec(**kwargs)
    assert isinstance(info.value, ValueError)


def test_from_dict_refuses_non_string_keys():
    with pytest.raises(SpecError, match=r"NVMSpec.from_dict expects string keys \(field names\), got \[1\]\. Fix:"):
        NVMSpec.from_dict({1: 2, "rows": 4})


def test_from_dict_refuses_newer_schema_and_unknown_fields():
    data = NVMSpec().to_dict()
    with pytest.raises(SpecError, match=r"NVMSpec schema_version 2 is not supported: this tf_nvm reads versions "
                                        r"1..1\. Fix: upgrade tf_nvm"):
        NVMSpec.from_dict({**data, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(SpecError, match=r"NVMSpec.from_dict got unknown field\(s\) \['colour'\]"):
        NVMSpec.from_dict({**data, "colour": "red"})


def test_unknown_preset_lists_known():
    with pytest.raises(tf_nvm.UnknownNameError, match=r"unknown NVM preset 'paper-3bit'; known: paper-2bit-bipolar, "
                                                      r"paper-2bit-unipolar, .*Fix: run `tf-nvm presets`"):
        presets.get("paper-3bit")
    with pytest.raises(KeyError):  # a failed lookup is a KeyError (and a ValueError) too
        tf_nvm.resolve_spec("paper-3bit")
