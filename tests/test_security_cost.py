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

    from tf_nvm._keras import tf  # noqa: PLC0415

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
