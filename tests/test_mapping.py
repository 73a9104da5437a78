"""The crossbar mapping format: device levels, tiling, save/load round trip, validation, fuzzing, atomicity."""

import json
import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tf_nvm
from tf_nvm import MappingError
from tf_nvm.core import presets
from tf_nvm import mapping as M
from tf_nvm.mapping import io as mapping_io
from tf_nvm.keras.backend import keras
from tflite_export import build_mapping, export_crossbar

L = keras.layers


# ----------------------------------------------------------------- fixtures
def _small_model(preset, seed=0):
    """A tiny conv + dense NVM model (random weights; the format does not care about accuracy)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 3), name="window")
    x = L.Concatenate(name="pm")([inputs, L.Rescaling(-1.0, name="neg")(inputs)])
    x = L.Conv1D(5, 3, padding="same", name="conv")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    x = L.MaxPooling1D(2, name="pool")(x)
    x = L.Flatten(name="flat")(x)
    outputs = L.Dense(4, name="out")(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf_nvm.quantize_model(keras.Model(inputs, outputs), preset, init="device")


@pytest.fixture(scope="module")
def model():
    return _small_model("paper-2bit-bipolar")


@pytest.fixture(scope="module")
def mapping(model):
    return build_mapping(model, preprocessing={"input_mean": [0.1, 0.2, 0.3], "input_std": [1.0, 2.0, 3.0]})


@pytest.fixture
def saved(mapping, tmp_path):
    json_path, npz_path = M.save(mapping, tmp_path / "m")
    return json_path, npz_path


# ------------------------------------------------------- device level mapping
@pytest.mark.parametrize("spec, codes, levels", [
    # 2-bit unipolar: level = code, one device.
    (presets.get("paper-2bit-unipolar"), [0, 1, 3], [[0], [1], [3]]),
    # 2-bit differential: codes -3..3; G+ = max(code, 0), G- = max(-code, 0).
    (presets.get("paper-2bit-bipolar"), [-3, 0, 2], [[0, 3], [0, 0], [2, 0]]),
    # 2-bit offset: codes -2..1; level = code - code_min = code + 2 (reference column at level 2).
    (presets.get("paper-2bit-bipolar").replace(bipolar_mapping="offset"), [-2, 0, 1], [[0], [2], [3]]),
])
def test_levels_realise_codes_for_each_mapping(spec, codes, levels):
    got = M.levels_from_codes(np.array(codes), spec)
    assert got.dtype == np.uint8 and got.tolist() == levels
    assert M.codes_from_levels(got, spec).tolist() == codes


def test_conductance_table_spans_g_min_to_g_max():
    spec = presets.get("paper-2bit-unipolar")  # 4 levels over 1..25 uS: step 8 uS
    assert M.conductance_table(spec).tolist() == [1.0, 9.0, 17.0, 25.0]


def test_tiles_cover_the_matrix_once_row_major():
    # 300 x 70 weights, 128 x 64 crossbars, differential (2 device columns per output):
    # 32 outputs per tile -> 3 column tiles; ceil(300/128) = 3 row tiles -> 9 tiles.
    spec = presets.get("paper-2bit-bipolar").replace(rows=128, cols=64)
    tiles = M.plan_tiles(300, 70, spec)
    assert len(tiles) == 9
    covered = np.zeros((300, 70), int)
    for t in tiles:
        covered[t.row_start:t.row_stop, t.col_start:t.col_stop] += 1
    assert (covered == 1).all()
    last = tiles[-1]
    assert (last.row_start, last.row_stop, last.col_start, last.col_stop) == (256, 300, 64, 70)
    assert last.device_cols == 12 and last.col_utilisation == 12 / 64 and last.row_utilisation == 44 / 128
    # offset mapping: one reference column per tile -> 63 outputs per 64-column tile
    assert M.outputs_per_tile(spec.replace(bipolar_mapping="offset")) == 63


def test_crossbar_too_narrow_is_refused():
    spec = presets.get("paper-2bit-bipolar").replace(cols=1)
    with pytest.raises(MappingError, match=r"spec.cols=1 is too small for one output with the differential "
                                           r"mapping \(2 device column\(s\) per weight \+ 0 reference column\)"):
        M.plan_tiles(4, 4, spec)


# ------------------------------------------------------------------ round trip
def tmp_path_of(path):
    return __import__("pathlib").Path(path).parent


def test_save_load_round_trip_is_identical(mapping, saved):
    json_path, npz_path = saved
    assert os.path.basename(json_path) == "m.json"
    assert re.fullmatch(r"m\.[0-9a-f]{16}-[0-9a-f]{8}\.npz", os.path.basename(npz_path))  # content hash + token
    assert M.paths(tmp_path_of(json_path) / "m") == (json_path, npz_path)
    again = M.load(json_path)
    assert again.spec == mapping.spec and again.input == mapping.input and again.outputs == mapping.outputs
    assert [layer.name for layer in again.layers] == [layer.name for layer in mapping.layers]
    for a, b in zip(again.layers, mapping.layers):
        assert type(a) is type(b)
        for field in ("op", "inputs", "output", "output_shape"):
            assert getattr(a, field) == getattr(b, field)
        if a.kind == "crossbar":
            np.testing.assert_array_equal(a.codes, b.codes)
            np.testing.assert_array_equal(a.levels, b.levels)
            np.testing.assert_array_equal(a.bias_int32, b.bias_int32)
            assert a.tiles == b.tiles and a.pads == b.pads
        else:
            assert a.params == b.params and a.requantize == b.requantize
            assert sorted(a.arrays) == sorted(b.arrays)
            for key in a.arrays:
                np.testing.assert_array_equal(a.arrays[key], b.arrays[key])
    assert M.load(str(json_path)[:-5]).summary() == mapping.summary()  # by prefix too


def test_mapping_content(mapping, model):
    spec = tf_nvm.model_spec(model)
    conv = mapping.layer("quant_conv")
    # conv: kernel 3, 6 input channels ([x, -x] of 3) -> 18 rows, 5 columns; 'same' pads 1 + 1
    assert (conv.op, conv.rows, conv.cols, conv.pads, conv.kernel_size) == ("conv1d", 18, 5, ((1, 1),), (3,))
    codes = tf_nvm.weight_codes(model)["quant_conv"].codes
    np.testing.assert_array_equal(conv.codes, codes.reshape(18, 5))
    assert conv.levels.shape == (18, 5, 2)  # differential pair
    bn = mapping.layer("quant_bn")
    assert bn.op == "batch_norm" and bn.requantize and sorted(bn.arrays) == ["multiplier", "offset", "scale"]
    assert [layer.op for layer in mapping.layers] == ["rescale", "concatenate", "conv1d", "batch_norm", "relu",
                                                      "max_pool", "flatten", "dense"]
    assert mapping.input.name == "window" and mapping.input.scale == spec.activation_step
    assert mapping.outputs == ("quant_out",)
    assert mapping.metadata["signed_elements"]["negating_rescale"] == ["quant_neg"]


def test_spec_may_change_hardware_fields_only(model):
    spec = tf_nvm.model_spec(model)
    small = build_mapping(model, spec=spec.replace(rows=8, cols=4))
    assert len(small.layer("quant_conv").tiles) == 3 * 3  # ceil(18/8) row tiles x ceil(5/2) column tiles
    with pytest.raises(tf_nvm.ExportError, match=r"spec differs from the model's trained spec in weight_bits "
                                                 r"\(given 4, model 2\).*Only the hardware fields"):
        build_mapping(model, spec=spec.replace(weight_bits=4))


# ------------------------------------------------------------ pinned errors
def _edit(json_path, change):
    with open(json_path) as handle:
        doc = json.load(handle)
    change(doc)
    with open(json_path, "w") as handle:
        json.dump(doc, handle)


def test_newer_schema_version_is_refused_saying_so(saved):
    json_path, _ = saved
    _edit(json_path, lambda d: d.update(schema_version=M.SCHEMA_VERSION + 1))
    with pytest.raises(MappingError, match=r"m\.json: schema_version 3 is newer than this tf_nvm reads \(1\.\.2\): "
                                           r"the mapping was written by a newer tf_nvm release\. Fix: upgrade tf_nvm"):
        M.load(json_path)


def test_error_types_subclass_builtins():
    assert issubclass(MappingError, ValueError) and issubclass(MappingError, tf_nvm.TfNvmError)
    assert issubclass(tf_nvm.ExportError, ValueError)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(MappingError, match=r"nothing\.json: cannot be read \(FileNotFoundError: No such file or "
                                           r"directory\)\. Fix: pass the PREFIX"):
        M.load(tmp_path / "nothing")


def test_codes_outside_device_range_are_refused(mapping, tmp_path):
    conv = mapping.layer("quant_conv")
    bad_codes = conv.codes.copy()
    bad_codes[0, 0] = 9
    layers = tuple(layer if layer.name != "quant_conv" else
                   M.CrossbarLayer(**{**{f: getattr(conv, f) for f in conv.__dataclass_fields__},
                                      "codes": bad_codes}) for layer in mapping.layers)
    with pytest.raises(MappingError, match=r"layers\[2\] \(.quant_conv.\)\.codes: values -?\d+\.\.9 leave the device "
                                           r"code range -3\.\.3 of the spec"):
        M.Mapping(mapping.spec, mapping.input, layers, mapping.outputs, mapping.metadata)


def test_levels_that_do_not_realise_codes_are_refused(saved):
    json_path, npz_path = saved
    with np.load(npz_path) as npz:
        arrays = dict(npz)
    arrays["quant_conv/levels"] = arrays["quant_conv/levels"].copy()
    arrays["quant_conv/levels"][0, 0] = [3, 3]  # code = 0 would need (0, 0)
    np.savez(npz_path, **arrays)
    # the npz no longer matches its recorded hash first
    with pytest.raises(MappingError, match=r"field arrays_file\.sha256: .*m\.[0-9a-f-]+\.npz does not match the recorded "
                                           r"SHA-256"):
        M.load(json_path)
    import hashlib
    digest = hashlib.sha256(open(npz_path, "rb").read()).hexdigest()
    _edit(json_path, lambda d: d["arrays_file"].update(sha256=digest))
    with pytest.raises(MappingError, match=r"'quant_conv'\)\.levels: device levels do not realise the codes with "
                                           r"the spec's mapping \(differential\)"):
        M.load(json_path)


def test_wrong_tiling_is_refused(saved):
    json_path, _ = saved
    _edit(json_path, lambda d: d["layers"][2]["tiling"]["tiles"][0].update(row_stop=10))
    with pytest.raises(MappingError, match=r"'quant_conv'\)\.tiling\.tiles\[0\]: tile .* does not match the tiling "
                                           r".*tiles must cover every weight exactly once"):
        M.load(json_path)


def test_dangling_tensor_reference_is_refused(saved):
    json_path, _ = saved
    _edit(json_path, lambda d: d["layers"][3].update(inputs=["nowhere"]))
    with pytest.raises(MappingError, match=r"layers\[3\] \('quant_bn'\)\.inputs: tensor 'nowhere' is not produced by "
                                           r"the input or an earlier layer"):
        M.load(json_path)


def test_wrong_types_and_format_are_refused(saved):
    json_path, _ = saved
    _edit(json_path, lambda d: d["layers"][2]["geometry"].update(rows="18"))
    with pytest.raises(MappingError, match=r"field layers\[2\] \('quant_conv'\)\.geometry\.rows: expected int, got "
                                           r"'18'\. Fix: re-export the mapping"):
        M.load(json_path)
    _edit(json_path, lambda d: d.update(format="something else"))
    with pytest.raises(MappingError, match=r"field format: value 'something else' is not "
                                           r"'tf_nvm\.crossbar-mapping'\. Fix: pass a crossbar mapping file"):
        M.load(json_path)


def test_truncated_json_is_refused(saved):
    json_path, _ = saved
    text = open(json_path).read()
    open(json_path, "w").write(text[: len(text) // 2])
    with pytest.raises(MappingError, match=r"m\.json is not valid JSON .*Fix: re-export the mapping; the file is "
                                           r"truncated"):
        M.load(json_path)


# ----------------------------------------------------------------- fuzzing
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


@pytest.fixture(scope="module")
def pristine(mapping, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pristine")
    json_path, npz_path = M.save(mapping, folder / "m")
    _NPZ_NAME.append(os.path.basename(npz_path))
    return open(json_path, "rb").read(), open(npz_path, "rb").read()


_NPZ_NAME = []


def _load_or_mapping_error(folder, json_bytes, npz_bytes):
    (folder / "m.json").write_bytes(json_bytes)
    (folder / _NPZ_NAME[-1]).write_bytes(npz_bytes)  # the name the pristine JSON gives its arrays
    try:
        result = M.load(folder / "m")
    except MappingError:
        return "error"
    assert isinstance(result, M.Mapping)
    return "valid"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutated_json_loads_or_raises_mapping_error(pristine, tmp_path_factory, data):
    json_bytes, npz_bytes = pristine
    doc = json.loads(json_bytes)
    mode = data.draw(st.sampled_from(["replace", "delete", "truncate", "bytes"]))
    if mode in ("replace", "delete"):
        paths = [p for p in _paths(doc) if p]
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if mode == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_JSON_VALUES)
        json_bytes = json.dumps(doc).encode()
    elif mode == "truncate":
        json_bytes = json_bytes[: data.draw(st.integers(0, len(json_bytes) - 1))]
    else:
        position = data.draw(st.integers(0, len(json_bytes) - 1))
        json_bytes = json_bytes[:position] + bytes([data.draw(st.integers(0, 255))]) + json_bytes[position + 1:]
    _load_or_mapping_error(tmp_path_factory.mktemp("fuzz"), json_bytes, npz_bytes)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutated_npz_loads_or_raises_mapping_error(pristine, tmp_path_factory, data):
    json_bytes, npz_bytes = pristine
    if data.draw(st.booleans()):
        npz_bytes = npz_bytes[: data.draw(st.integers(0, len(npz_bytes) - 1))]
    else:
        position = data.draw(st.integers(0, len(npz_bytes) - 1))
        npz_bytes = npz_bytes[:position] + bytes([(npz_bytes[position] + 1) % 256]) + npz_bytes[position + 1:]
    assert _load_or_mapping_error(tmp_path_factory.mktemp("fuzz"), json_bytes, npz_bytes) == "error"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_rehashed_npz_with_wrong_arrays_raises_mapping_error(pristine, tmp_path_factory, data):
    """The npz is replaced by a consistent-hash archive with mutated arrays: validation, not the hash, must catch it."""
    import hashlib
    import io
    json_bytes, npz_bytes = pristine
    with np.load(io.BytesIO(npz_bytes)) as npz:
        arrays = dict(npz)
    key = data.draw(st.sampled_from(sorted(arrays)))
    action = data.draw(st.sampled_from(["drop", "dtype", "shape", "value"]))
    if action == "drop":
        del arrays[key]
    elif action == "dtype":
        arrays[key] = arrays[key].astype(np.float64)
    elif action == "shape":
        arrays[key] = arrays[key].reshape(-1)[:-1] if arrays[key].size > 1 else np.zeros((2, 2), arrays[key].dtype)
    else:
        flat = arrays[key].reshape(-1).copy()
        value = data.draw(st.sampled_from([-128, 127, 77, -5, 200]))
        flat[data.draw(st.integers(0, flat.size - 1))] = np.array(value).astype(np.int64).astype(flat.dtype)
        arrays[key] = flat.reshape(arrays[key].shape)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    npz_bytes = buffer.getvalue()
    doc = json.loads(json_bytes)
    doc["arrays_file"]["sha256"] = hashlib.sha256(npz_bytes).hexdigest()
    _load_or_mapping_error(tmp_path_factory.mktemp("fuzz"), json.dumps(doc).encode(), npz_bytes)


# ---------------------------------------------------------------- atomicity
def test_failed_save_leaves_no_file_under_final_names(mapping, tmp_path, monkeypatch):
    def boom():
        raise OSError("disk full (injected)")

    monkeypatch.setattr(mapping_io, "_before_rename_hook", boom)
    with pytest.raises(MappingError, match=r"cannot write the mapping .*m\.json: disk full \(injected\)\. Fix: pass "
                                           r"a prefix in a writable folder\."):
        M.save(mapping, tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == []


def test_failed_json_rename_removes_the_new_npz(mapping, tmp_path, monkeypatch):
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("rename failed (injected)")
        return real(src, dst)

    monkeypatch.setattr(mapping_io.os, "replace", replace)
    with pytest.raises(MappingError, match="rename failed \\(injected\\)"):
        M.save(mapping, tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == []


def test_failed_export_crossbar_leaves_nothing(model, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("npz writer crashed (injected)")

    monkeypatch.setattr(mapping_io.np, "savez_compressed", boom)
    with pytest.raises(RuntimeError, match="injected"):
        export_crossbar(model, tmp_path / "m")
    assert os.listdir(tmp_path) == []


def test_unknown_layer_name_is_a_mapping_error(mapping):
    with pytest.raises(MappingError, match=r"mapping has no layer 'nope'; layers: \['quant_neg', .*\]\. Fix: pass one "
                                           r"of those names\."):
        mapping.layer("nope")


# ------------------------------------------------- the digital-op table, op by op
_SPEC = presets.get("paper-2bit-bipolar").with_weight_scale(0.1)
_BN_ARRAYS = {"multiplier": np.array([3, -5, 127], np.int32), "offset": np.array([10, -7, 0], np.int32),
              "scale": np.array([0.5, 0.25, 0.125], np.float32)}
# op: (input shape, number of inputs, params, arrays, output shape, requantize) of a valid entry
_VALID = {
    "add": ((4, 3), 2, {}, {}, (4, 3), True),
    "batch_norm": ((4, 3), 1, {"channels": 3}, _BN_ARRAYS, (4, 3), True),
    "concatenate": ((4, 3), 2, {"axis": 1}, {}, (4, 6), False),
    "flatten": ((4, 3), 1, {}, {}, (12,), False),
    "global_average_pool": ((4, 3), 1, {"axes": [0], "count": 4}, {}, (3,), True),
    "global_max_pool": ((4, 3), 1, {"axes": [0]}, {}, (3,), False),
    "identity": ((4, 3), 1, {}, {}, (4, 3), False),
    "max_pool": ((5, 3), 1, {"pool_size": [2], "strides": [2], "padding": "valid"}, {}, (2, 3), False),
    "average_pool": ((5, 3), 1, {"pool_size": [2], "strides": [2], "padding": "same"}, {}, (3, 3), True),
    "relu": ((4, 3), 1, {}, {}, (4, 3), True),
    "rescale": ((4, 3), 1, {"scale": -1.0, "offset": 0.25}, {}, (4, 3), True),
    "reshape": ((4, 3), 1, {}, {}, (2, 6), False),
    "softmax": ((4, 3), 1, {"axis": -1}, {}, (4, 3), False),
    "zero_pad": ((4, 3), 1, {"pads": [[1, 2]]}, {}, (7, 3), False),
    "subtract": ((4, 3), 2, {}, {}, (4, 3), True),
    "transpose": ((4, 3), 1, {"perm": [1, 0]}, {}, (3, 4), False),
    "crop": ((4, 3), 1, {"crops": [[1, 2]]}, {}, (1, 3), False),
}
# op: (changed fields of the valid entry, pinned message) of an entry whose shapes contradict its params
_CONTRADICTING = {
    "add": ({"output_shape": (5, 3)}, r"\.output_shape: value \[5, 3\] is not the shape \[4, 3\] op 'add' gives for "
                                      r"input\(s\) \[\[4, 3\], \[4, 3\]\] and params \{\}"),
    "batch_norm": ({"params": {"channels": 4}}, r"\.params\.channels: value 4 is not the input's 3 channels"),
    "concatenate": ({"params": {"axis": 2}}, r"\.params\.axis: value 2 is not valid for rank-2 tensors "
                                             r"\[\[4, 3\], \[4, 3\]\]"),
    "flatten": ({"output_shape": (4, 3)}, r"\.output_shape: value \[4, 3\] is not the shape \[12\] op 'flatten'"),
    "global_average_pool": ({"params": {"axes": [0], "count": 5}}, r"\.params\.count: value 5 is not the 4 values "
                                                                   r"averaged"),
    "global_max_pool": ({"params": {"axes": [1]}}, r"\.params\.axes: value \[1\] must be distinct spatial axes \(not "
                                                   r"the last, channel axis\) of input \[4, 3\]"),
    "identity": ({"output_shape": (3, 4)}, r"\.output_shape: value \[3, 4\] is not the shape \[4, 3\] op 'identity'"),
    "max_pool": ({"params": {"pool_size": [6], "strides": [1], "padding": "valid"}},
                 r"\.params\.pool_size: value \[6\] is larger than the input \[5, 3\] \('valid'\)"),
    "average_pool": ({"params": {"pool_size": [6], "strides": [1], "padding": "valid"}},
                     r"\.params\.pool_size: value \[6\] is larger than the input \[5, 3\] \('valid'\)"),
    "subtract": ({"output_shape": (4, 4)}, r"\.output_shape: value \[4, 4\] is not the shape \[4, 3\] op 'subtract'"),
    "transpose": ({"params": {"perm": [0, 0]}}, r"\.params\.perm: value \[0, 0\] is not a permutation of the axes of "
                                               r"input \[4, 3\]"),
    "crop": ({"params": {"crops": [[2, 2]]}}, r"\.params\.crops: value \[\[2, 2\]\] needs one \[before, after\] pair "
                                             r"per spatial axis of \[4, 3\], leaving at least one value on each"),
    "relu": ({"output_shape": (4, 4)}, r"\.output_shape: value \[4, 4\] is not the shape \[4, 3\] op 'relu'"),
    "rescale": ({"output_shape": (12,)}, r"\.output_shape: value \[12\] is not the shape \[4, 3\] op 'rescale'"),
    "reshape": ({"output_shape": (5, 3)}, r"\.output_shape: \[5, 3\] does not hold the 12 input values"),
    "softmax": ({"params": {"axis": 2}}, r"\.params\.axis: value 2 is not valid for rank-2 tensors \[\[4, 3\]\]"),
    "zero_pad": ({"params": {"pads": [[1, 2], [0, 0]]}}, r"\.params\.pads: needs one \[before, after\] pair per "
                                                         r"spatial axis of \[4, 3\], got 2"),
}


def _op_mapping(name, **changes):
    in_shape, n_inputs, params, arrays, out_shape, requantize = _VALID[name]
    fields = {"name": "step", "op": name, "inputs": ("x",) * n_inputs, "output": "step", "output_shape": out_shape,
              "params": params, "arrays": arrays, "requantize": requantize, **changes}
    inp = M.InputEncoding("x", in_shape, "signed-dac", _SPEC.activation_step)
    return M.Mapping(_SPEC, inp, (M.DigitalLayer(**fields),), ("step",))


def test_every_digital_op_has_test_entries():
    assert sorted(_VALID) == M.DIGITAL_OPS.names() == sorted(_CONTRADICTING)


@pytest.mark.parametrize("op", M.DIGITAL_OPS.names())
def test_a_valid_entry_of_each_op_saves_loads_and_evaluates(op, tmp_path):
    from tf_nvm.mapping.reference import evaluate

    mapping = _op_mapping(op)
    M.save(mapping, tmp_path / op)
    again = M.load(tmp_path / op)
    step = again.layer("step")
    assert (step.op, step.params, step.output_shape) == (op, _VALID[op][2], _VALID[op][4])
    x = np.random.default_rng(0).normal(0, 2, (5,) + _VALID[op][0])
    result = evaluate(again, x)
    assert result.codes["step"].shape == (5,) + _VALID[op][4] and result.codes["step"].dtype == np.int64
    assert result.steps["step"] == (1 / 256 if op == "softmax" else _SPEC.activation_step)


@pytest.mark.parametrize("op", M.DIGITAL_OPS.names())
def test_an_entry_whose_shapes_contradict_its_params_is_refused(op):
    changes, message = _CONTRADICTING[op]
    with pytest.raises(MappingError, match=r"^layers\[0\] \('step'\)" + message + r".*\. Fix: re-export the mapping"):
        _op_mapping(op, **changes)


def test_huge_dimensions_do_not_overflow_the_shape_rules():
    big = 2 ** 31 - 1  # prod of three of these overflows int64; shape rules use Python ints
    inp = M.InputEncoding("x", (big, big, big), "signed-dac", _SPEC.activation_step)
    layer = M.DigitalLayer("flat", "flatten", ("x",), "flat", (1,))
    with pytest.raises(MappingError, match=rf"value \[1\] is not the shape \[{big ** 3}\] op 'flatten'"):
        M.Mapping(_SPEC, inp, (layer,), ("flat",))


def test_requantize_flag_must_fit_the_op():
    with pytest.raises(MappingError, match=r"\('step'\)\.requantize: value false is not allowed for op 'batch_norm', "
                                           r"whose result is always requantized\. Fix"):
        _op_mapping("batch_norm", requantize=False)
    with pytest.raises(MappingError, match=r"requantize: value true is not allowed for op 'max_pool', whose result "
                                           r"is never requantized"):
        _op_mapping("max_pool", requantize=True)


def test_unknown_digital_op_is_refused_listing_the_table():
    with pytest.raises(MappingError, match=r"\.op: value 'gelu' is not a digital op; allowed: \['add', 'average_pool', "
                                           r"'batch_norm', "):
        _op_mapping("relu", op="gelu")


# ------------------------------------------------------------- the reference evaluator
def test_evaluator_refuses_inputs_of_the_wrong_shape(mapping):
    from tf_nvm.mapping.reference import evaluate

    with pytest.raises(MappingError, match=r"evaluate: inputs have shape \[2, 16, 4\]; the mapping expects \[N, 16, "
                                           r"3\]\. Fix: pass a batch"):
        evaluate(mapping, np.zeros((2, 16, 4)))


def test_evaluator_refuses_a_value_op_after_softmax():
    from tf_nvm.mapping.reference import evaluate

    inp = M.InputEncoding("x", (4, 3), "signed-dac", _SPEC.activation_step)
    layers = (M.DigitalLayer("sm", "softmax", ("x",), "sm", (4, 3), {"axis": -1}),
              M.DigitalLayer("flat", "flatten", ("sm",), "flat", (12,)),
              M.DigitalLayer("neg", "rescale", ("flat",), "neg", (12,), {"scale": -1.0, "offset": 0.0}, {}, True))
    mapping = M.Mapping(_SPEC, inp, layers, ("neg",))
    with pytest.raises(MappingError, match=r"layer 'neg' \(op 'rescale'\) reads tensors \['flat'\] on grid steps "
                                           r"\[0\.00390625\]; it needs inputs on the shared grid \(step 0\.0625\)\. "
                                           r"Fix: apply softmax only as the last step"):
        evaluate(mapping, np.zeros((1, 4, 3)))
    outputs = evaluate(M.Mapping(_SPEC, inp, layers[:2], ("flat",)), np.zeros((1, 4, 3)))
    assert outputs.codes["flat"].tolist() == [[85, 85, 85] * 4]  # 1/3 -> 85/256, moved by flatten
    with pytest.raises(MappingError, match=r"MappingOutputs\.values: 'sm' is not an output; outputs: \['flat'\]"):
        outputs.values("sm")


_BLOCK_TF = r"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras", "tensorflow_model_optimization"):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import numpy as np
import tf_nvm.mapping
from tf_nvm.mapping.reference import evaluate
mapping = tf_nvm.mapping.load(sys.argv[1])
result = evaluate(sys.argv[1], np.load(sys.argv[2], allow_pickle=False))
np.savez(sys.argv[3], **result.codes)
assert not any(m.split(".")[0] in ("tensorflow", "tf_keras", "tensorflow_model_optimization") for m in sys.modules)
print("ok", len(mapping.layers))
"""


def test_mapping_and_evaluator_run_without_tensorflow(mapping, tmp_path):
    import subprocess
    import sys

    from tf_nvm.mapping.reference import evaluate

    M.save(mapping, tmp_path / "m")
    x = np.random.default_rng(0).normal(size=(20, 16, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(M.__file__))))
    env = dict(os.environ, PYTHONPATH=root)
    done = subprocess.run([sys.executable, "-c", _BLOCK_TF, str(tmp_path / "m"), str(tmp_path / "x.npy"),
                           str(tmp_path / "out.npz")], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"ok {len(mapping.layers)}", done.stderr[-2000:]
    with np.load(tmp_path / "out.npz", allow_pickle=False) as child:
        np.testing.assert_array_equal(child["quant_out"], evaluate(mapping, x).codes["quant_out"])
