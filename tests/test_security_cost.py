"""Hostile ``.tflite`` files for ``tf-nvm cost --tflite`` (issue #26, items 4 and 5): bombs and impossible
sizes are refused before anything is computed or run, each as a named error; peak memory is bounded.

The files are edits of ``tests/data/har_tiny_4bit.tflite``, a real tf_nvm export (6,632 bytes: the
``har_signed_cnn`` builder with ``filters=(4,), kernel_sizes=(3,)``, ``paper-4bit-bipolar``, untrained,
``tflite_export.export_tflite(..., measure_arena=False)``).
"""

import os
import subprocess
import sys

import flatbuffers
import numpy as np
import pytest

from tf_nvm import CostModelError, ExportError
from tf_nvm import mapping as M
from tf_nvm.cli import main
from tf_nvm.cost import mcu_cost, op_table
from tflite_export.flatbuffer import read_tflite
from tflite_export.verify import measure_arena

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "data", "har_tiny_4bit.tflite")
FIX = r"Fix: pass the \.tflite file written by (tflite_export\.export_tflite \(tf-nvm export --tflite\)|tf-nvm export --tflite)\."
MAX_RSS_MIB = 1200
"""Bound on the peak resident memory of a `tf-nvm cost --tflite` child given any hostile file here, MiB."""


def _schema():
    import ai_edge_litert.schema_py_generated as schema  # noqa: PLC0415

    return schema


def _edit(change):
    """The tiny export with ``change(model)`` applied to its unpacked flatbuffer, packed again."""
    schema = _schema()
    with open(TINY, "rb") as handle:
        model = schema.ModelT.InitFromPackedBuf(handle.read(), 0)
    change(model)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor(model, index):
    return model.subgraphs[0].tensors[index]


def _op(model, name):
    """The first operator of subgraph 0 whose builtin is ``name``."""
    code = getattr(_schema().BuiltinOperator, name)
    return next(op for op in model.subgraphs[0].operators
                if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                       model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == code)


def _shared_shape_bomb(tensors=4000, dims=1_000_000):
    """A ~4 MB flatbuffer whose ``tensors`` tensors all point at one ``dims``-entry shape vector."""
    s = _schema()
    b = flatbuffers.Builder(1 << 23)
    shape = b.CreateNumpyVector(np.ones(dims, np.int32))
    offsets = []
    for _ in range(tensors):
        s.TensorStart(b)
        s.TensorAddShape(b, shape)
        s.TensorAddType(b, s.TensorType.INT8)
        s.TensorAddBuffer(b, 0)
        offsets.append(s.TensorEnd(b))
    s.SubGraphStartTensorsVector(b, tensors)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    vector = b.EndVector()
    s.SubGraphStart(b)
    s.SubGraphAddTensors(b, vector)
    subgraph = s.SubGraphEnd(b)
    s.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(subgraph)
    subgraphs = b.EndVector()
    s.BufferStart(b)
    buffer = s.BufferEnd(b)
    s.ModelStartBuffersVector(b, 1)
    b.PrependUOffsetTRelative(buffer)
    buffers = b.EndVector()
    s.ModelStart(b)
    s.ModelAddVersion(b, 3)
    s.ModelAddSubgraphs(b, subgraphs)
    s.ModelAddBuffers(b, buffers)
    b.Finish(s.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _negative_shape(model):
    _tensor(model, 31).shape = np.array([1, -6], np.int32)  # the logits


def _weights_minus_one(model):
    op = _op(model, "FULLY_CONNECTED")
    op.inputs = np.array([op.inputs[0], -1, *op.inputs[2:]], np.int32)


def _huge_dims(model):  # 4096^4 x 1: 1e39 MACs with the old count
    _tensor(model, 15).shape = np.array([1, 1 << 30, 1 << 30, 1 << 30], np.int32)


def _macs_beyond_the_cap(model):  # every tensor within the size limits, the product beyond 1e12
    _tensor(model, 15).shape = np.array([1, 1, 1 << 14, 1 << 14], np.int32)
    weights = _tensor(model, 13)
    weights.shape, weights.buffer = np.array([1, 1 << 14, 1 << 14, 1], np.int32), 0


def _output_99999(model):
    _op(model, "CONV_2D").outputs = np.array([99999], np.int32)


def _while(model):
    code = _schema().BuiltinOperator.WHILE
    model.operatorCodes[_op(model, "MEAN").opcodeIndex].builtinCode = code
    model.operatorCodes[_op(model, "WHILE").opcodeIndex].deprecatedBuiltinCode = code


CASES = {
    "negative_shape": (lambda: _edit(_negative_shape),
                       r"TFLite model: tensor 31 \('StatefulPartitionedCall:0'\) has shape \(1, -6\); allowed: sizes "
                       r">= 0 \(a tf_nvm export has fixed sizes\)\. " + FIX),
    "weights_minus_one": (lambda: _edit(_weights_minus_one),
                          r"TFLite model: operator 15 \(FULLY_CONNECTED\): the weights \(input 1\) is tensor index -1; "
                          r"allowed: 0 to 31 \(the graph has 32 tensors\)\. " + FIX),
    "huge_dims": (lambda: _edit(_huge_dims),
                  r"TFLite model: tensor 15 \('har_signed_cnn/quant_conv0/Conv1D1'\) has shape \(1, 1073741824, "
                  r"1073741824, 1073741824\), 1237940039285380274899124224 values; at most 268435456 values per "
                  r"tensor are allowed\. " + FIX),
    "macs_beyond_the_cap": (lambda: _edit(_macs_beyond_the_cap),
                            r"TFLite model: the operators up to operator 3 \(CONV_2D\) declare 7\.21e\+16 "
                            r"multiply-accumulates; at most 1e\+12 are allowed \(shapes this large are no MCU "
                            r"model\)\. " + FIX),
    "output_99999": (lambda: _edit(_output_99999),
                     r"TFLite model: operator 3 \(CONV_2D\): the outputs holds tensor index 99999; allowed: 0 to 31 "
                     r"\(the graph has 32 tensors\)\. " + FIX),
    "shared_shape_bomb": (_shared_shape_bomb,
                          r"TFLite model: tensor 0 \(''\): the shape declares 1000000 entries; at most 8 are "
                          r"allowed\. " + FIX),
    "while_loop": (lambda: _edit(_while),
                   r"operator 12 is WHILE; a tf_nvm export has one subgraph and no "
                   r"control flow \(allowed: no WHILE, IF, CALL, CALL_ONCE, STABLEHLO_WHILE, STABLEHLO_CASE\), and "
                   r"such a model may never finish running, so it is refused before it runs\. " + FIX),
}


@pytest.fixture
def mapping_path(tmp_path):
    """A tiny crossbar mapping for the cost command (the --tflite file is what is under test)."""
    from tests.test_cost import _mapping, _spec  # noqa: PLC0415

    M.save(_mapping(_spec(), 4, 2), tmp_path / "m")
    return tmp_path / "m"


def test_the_real_export_still_costs():
    graph = read_tflite(TINY)
    table, totals = mcu_cost(graph, "cortex-m4f", arena_bytes=4096)
    # conv 128 x 4 outputs x (1 x 3 x 18) + depthwise 2 x (128 + 64) x 4 x 1 + FC 6 x 8
    assert table["macs"].sum() == totals["macs"] == 128 * 4 * 54 + 128 * 4 + 64 * 4 + 6 * 8
    assert totals["latency_us"] > 0 and totals["energy_nj"] > 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_tflite_is_a_named_cost_error(case, mapping_path, tmp_path, capsys):
    build, message = CASES[case]
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(build())
    assert main(["cost", str(mapping_path), "--tflite", str(path), "--out", str(tmp_path / "out"),
                 "--arena-bytes", "4096"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tf-nvm: error: --tflite '{path}': ")
    import re  # noqa: PLC0415

    assert re.search(message, err), err
    assert not (tmp_path / "out" / "results.json").exists()


def test_library_calls_raise_the_named_errors():
    with pytest.raises(ExportError, match=r"has shape \(1, -6\); allowed: sizes >= 0"):
        read_tflite(_edit(_negative_shape))
    with pytest.raises(CostModelError, match=r"the weights \(input 1\) is tensor index -1; allowed: 0 to 31"):
        op_table(read_tflite(_edit(_weights_minus_one)))
    with pytest.raises(ExportError, match=r"TFLite Micro arena measurement: operator 12 is WHILE; a tf_nvm export "
                                          r"has one subgraph and no control flow"):
        measure_arena(_edit(_while))


def test_a_child_that_does_not_finish_is_a_named_error():
    with open(TINY, "rb") as handle:
        data = handle.read()
    with pytest.raises(ExportError, match=r"TFLite Micro did not finish one inference of the model with an arena of "
                                          r"1048576 bytes within 1e-06 s \(the child process was killed\); a tf_nvm "
                                          r"export runs in milliseconds\. Fix: "):
        measure_arena(data, timeout=1e-6)


# Peak RSS from /proc/self/status VmHWM: the high-water mark of this process's own memory since exec. Not
# getrusage(RUSAGE_SELF).ru_maxrss: Linux carries the forking parent's peak (pytest's, gigabytes late in the
# suite) across fork and exec into it.
_CHILD = """
import sys
from tf_nvm.cli import main
codes = [main(["cost", sys.argv[1], "--tflite", path, "--out", sys.argv[2] + str(i), "--arena-bytes", "4096"])
         for i, path in enumerate(sys.argv[3:])]
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(codes, peak_kib // 1024)
"""


@pytest.mark.slow
def test_peak_memory_of_every_hostile_file_is_bounded(mapping_path, tmp_path):
    paths = []
    for case in sorted(CASES):
        paths.append(str(tmp_path / f"{case}.tflite"))
        with open(paths[-1], "wb") as handle:
            handle.write(CASES[case][0]())
    result = subprocess.run([sys.executable, "-c", _CHILD, str(mapping_path), str(tmp_path / "out"), *paths],
                            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    codes, peak_mib = result.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert codes == str([2] * len(CASES)), result.stderr[-2000:]
    assert int(peak_mib) < MAX_RSS_MIB


def test_a_real_endless_while_loop_is_refused_before_it_runs(tmp_path):
    """A converter-made WHILE loop (its condition always true) ran the arena child for 300 s, then a raw
    TimeoutExpired; it is refused at once now, without starting a child."""
    import time  # noqa: PLC0415

    from tf_nvm.keras.backend import tf  # noqa: PLC0415

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)], autograph=False)
    def forever(x):
        return tf.while_loop(lambda i, x: tf.constant(True), lambda i, x: (i + 1, x * 1.0001),
                             (tf.constant(0), x))[1]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([forever.get_concrete_function()], forever)
    data = converter.convert()
    assert read_tflite(data).op_names() == ["WHILE"] and read_tflite(data).subgraphs == 3
    start = time.monotonic()
    with pytest.raises(ExportError, match=r"TFLite Micro arena measurement: operator 0 is WHILE; a tf_nvm export has "
                                          r"one subgraph and no control flow"):
        measure_arena(data, timeout=5)
    assert time.monotonic() - start < 2


# ------------------------------------------------------------------ settings, technology files and mappings
def _setting_cases(mapping_path, tmp_path):
    """{case: (argv, message regex)}: hostile --set values, technology files and mapping files for `tf-nvm cost`."""
    import json  # noqa: PLC0415

    def tech(name, text):
        (tmp_path / f"{name}.json").write_text(text)
        return ["--tech", str(tmp_path / f"{name}.json")]

    doc = json.loads((tmp_path / "m.json").read_text())
    doc["arrays_file"]["name"] = "a\x00b.npz"
    (tmp_path / "nul.json").write_text(json.dumps(doc))
    digits = "1" + "0" * 400
    bound = r"is not allowed; allowed: a finite number > 0 within 1e-12\.\.1e\+12\. Fix: pass a value in that range"
    return {
        "mcu_name_list": (["--set", "mcu.cortex-m7.name=[1,2]"],
                          r"--set 'mcu\.cortex-m7\.name=\[1,2\]': mcu core name: value '\[1, 2\]' \(list\) is not "
                          r"allowed; allowed: a text of 1 to 200 characters\. Fix: "),
        "mcu_clock_400_digits": (["--set", f"mcu.cortex-m7.clock_mhz={digits}"],
                                 r"is refused: the integer 1000000000+\.\.\. \(401 characters\) is beyond \+-9223372036854775807 \(2\*\*63 - 1\), "
                                 r"the largest integer allowed\. Fix: "),
        "clock_5e-324": (["--set", "clock_ghz=5e-324"], r"technology\.clock_ghz: value 5e-324 " + bound),
        "clock_400_digits": (["--set", f"clock_ghz={digits}"], r"setting 'clock_ghz=10+' is refused: the integer "
                             r"10+\.\.\. \(401 characters\) is beyond"),
        "clock_1e308": (["--set", "clock_ghz=1e308"], r"setting 'clock_ghz=1e308' is refused: the number 1e308 is beyond "
                        r"\+-1e\+300, the largest magnitude allowed\. Fix: "),
        "adc_table_1e300": (["--set", "adc_energy_pj_table=[0.79,0.99,1.2,1.42,1.67,1.97,1e300]"],
                            r"technology\.adc_energy_pj_table: value \(0\.79, .*1e\+300\) is not allowed; allowed: a "
                            r"non-empty list of finite numbers > 0 within 1e-12\.\.1e\+12\."),
        "tech_file_400_digits": (tech("t400", '{"read_pulse_ns": ' + digits + "}"),
                                 r"is refused: the integer 10+\.\.\. \(401 characters\) is beyond "
                                 r"\+-9223372036854775807"),
        "tech_file_1e308": (tech("t308", '{"adc_area_um2_table": [1, 2, 3, 4, 5, 6, 1e308]}'),
                            r"is refused: the number 1e308 is beyond \+-1e\+300, the largest magnitude allowed"),
        "nul_in_arrays_file": (["--source", str(tmp_path / "nul.json")],
                               r"field arrays_file\.name: value 'a\\x00b\.npz' must be a file name ending in \.npz, "
                               r"beside the JSON\. Fix: re-export the mapping"),
    }


def _cost_argv(mapping_path, out, extra):
    source = str(mapping_path)
    if extra[:1] == ["--source"]:
        source, extra = extra[1], extra[2:]
    return ["cost", source, "--out", str(out), *extra]


SETTING_CASES = ("mcu_name_list", "mcu_clock_400_digits", "clock_5e-324", "clock_400_digits", "clock_1e308",
                 "adc_table_1e300", "tech_file_400_digits", "tech_file_1e308", "nul_in_arrays_file")


def test_the_setting_case_list_is_complete(mapping_path, tmp_path):
    assert sorted(_setting_cases(mapping_path, tmp_path)) == sorted(SETTING_CASES)


@pytest.mark.parametrize("case", SETTING_CASES)
def test_hostile_setting_is_a_named_error_before_any_computation(case, mapping_path, tmp_path, capsys, monkeypatch):
    import re  # noqa: PLC0415

    import tf_nvm.cost.scenarios as scenarios  # noqa: PLC0415

    def computing(*args, **kwargs):
        raise AssertionError("the cost was computed before the settings were checked")

    monkeypatch.setattr(scenarios, "network_cost", computing)
    extra, message = _setting_cases(mapping_path, tmp_path)[case]
    assert main(_cost_argv(mapping_path, tmp_path / "out", extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("tf-nvm: error: ") and re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_a_swapped_tflite_is_refused_by_its_recorded_sha256(tmp_path):
    import hashlib  # noqa: PLC0415

    from tf_nvm.pipeline.costing import read_mcu_model  # noqa: PLC0415

    with open(TINY, "rb") as handle:
        recorded = hashlib.sha256(handle.read()).hexdigest()
    graph, arena, _ = read_mcu_model(TINY, 4096, recorded)
    assert arena == 4096 and graph is not None
    swapped = tmp_path / "model.tflite"
    swapped.write_bytes(_edit(lambda model: None) + b"\0" * 8)
    with pytest.raises(CostModelError, match=r"sha256 [0-9a-f]{16}\.\.\. is not the [0-9a-f]{16}\.\.\. its export "
                                             r"recorded: the file was replaced or edited after `tf-nvm run` exported "
                                             r"it\. Fix: rerun with --force export, or restore the exported file\."):
        read_mcu_model(swapped, 4096, recorded)


_SETTINGS_CHILD = """
import json, sys, time
import tf_nvm.cost, tf_nvm.pipeline.costing  # pandas and the cost model imported before the cases are timed
from tf_nvm.cli import main
cases = json.loads(open(sys.argv[1]).read())
out = {}
for name, argv in sorted(cases.items()):
    start = time.perf_counter()
    out[name] = [main(argv), round(time.perf_counter() - start, 3)]
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"cases": out, "peak_mib": peak_kib // 1024}))
"""
MAX_SETTING_SECONDS = 3
"""Bound on the time of each hostile setting or technology file in the child (no TensorFlow involved), s."""


def test_time_and_peak_memory_of_every_hostile_setting_are_bounded(mapping_path, tmp_path):
    import json  # noqa: PLC0415

    cases = {name: _cost_argv(mapping_path, tmp_path / f"out-{name}", extra)
             for name, (extra, _) in _setting_cases(mapping_path, tmp_path).items()}
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    result = subprocess.run([sys.executable, "-c", _SETTINGS_CHILD, str(tmp_path / "cases.json")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(found))  # the measured numbers (pytest -s)
    assert {name: code for name, (code, _) in found["cases"].items()} == {name: 2 for name in cases}, \
        result.stderr[-2000:]
    assert max(seconds for _, seconds in found["cases"].values()) < MAX_SETTING_SECONDS
    assert found["peak_mib"] < MAX_RSS_MIB
