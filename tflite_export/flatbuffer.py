"""Read a ``.tflite`` flatbuffer: tensors, quantization, constant values, operators.

Uses the generated ``tflite`` schema bindings shipped with LiteRT
(``ai_edge_litert.schema_py_generated``, no TensorFlow import) or, when LiteRT
is missing, TensorFlow's copy (``tensorflow.lite.python.schema_py_generated``).
INT4 constants (two values per byte, low nibble first) are unpacked to int8.

The file is treated as hostile: it is read through the schema's lazy accessors
(nothing is unpacked that is not asked for; a flatbuffer may point many tables
at one vector, so unpacking everything can take far more memory than the file's
size), and every count, length, index and size it declares is checked against
the limits below before anything is built from it. Violations raise
`ExportError` naming the tensor / operator, what was found and what is allowed.

Limits: `MAX_TENSOR_DIMS` = 8 dimensions per tensor; `MAX_TENSOR_ELEMENTS` =
2**28 values per tensor; `MAX_TOTAL_ELEMENTS` = 2**30 values over all tensors of
the graph; `MAX_TENSORS` = `MAX_OPERATORS` = 100,000; `MAX_OPERATOR_TENSORS` =
4,096 inputs or outputs per operator; `MAX_NAME_BYTES` = 4,096 bytes of a
tensor name; constant tensors may declare at most `MAX_CONSTANT_FACTOR` = 2 x
the file's size in total (one buffer shared by many tensors is refused beyond).
A tf_nvm export stays far below each (the MobileNet of the tests: about 300
tensors, 3 M values).
"""

import dataclasses
import importlib
import math
import os
from typing import Any

import numpy as np

from tf_nvm.core.errors import ExportError

__all__ = ["TensorInfo", "OperatorInfo", "TFLiteGraph", "read_tflite", "read_model_bytes", "ModelSource",
           "check_runnable", "WEIGHT_OPS",
           "CONTROL_FLOW_OPS", "MAX_TENSOR_DIMS", "MAX_TENSOR_ELEMENTS", "MAX_TOTAL_ELEMENTS", "MAX_TENSORS",
           "MAX_OPERATORS", "MAX_OPERATOR_TENSORS", "MAX_NAME_BYTES", "MAX_CONSTANT_FACTOR"]

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
CONTROL_FLOW_OPS = ("WHILE", "IF", "CALL", "CALL_ONCE", "STABLEHLO_WHILE", "STABLEHLO_CASE")
"""Ops that run other subgraphs (loops, branches, calls): a tf_nvm export never holds one."""

MAX_TENSOR_DIMS = 8
MAX_TENSOR_ELEMENTS = 1 << 28
MAX_TOTAL_ELEMENTS = 1 << 30
MAX_TENSORS = 100_000
MAX_OPERATORS = 100_000
MAX_OPERATOR_TENSORS = 4096
MAX_NAME_BYTES = 4096
MAX_CONSTANT_FACTOR = 2
_FIX = "Fix: pass the .tflite file written by tflite_export.export_tflite (tf-nvm export --tflite)."

ModelSource = bytes | bytearray | str | os.PathLike
"""A ``.tflite`` model as accepted by the readers and runners: its bytes or the path of its file."""


def read_model_bytes(content: ModelSource) -> bytes:
    """The bytes of a ``.tflite`` model given as bytes or as the path of its file."""
    if isinstance(content, (bytes, bytearray)):
        return bytes(content)
    with open(content, "rb") as handle:
        return handle.read()


def _schema() -> Any:
    for name in ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ExportError("no TFLite schema bindings found (ai_edge_litert.schema_py_generated or "
                      "tensorflow.lite.python.schema_py_generated). Fix: pip install ai-edge-litert.")


def _names(enum_class: Any) -> dict[int, str]:
    return {value: key for key, value in vars(enum_class).items() if not key.startswith("_") and isinstance(value, int)}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor of the flatbuffer.

    Attributes:
        index: tensor index in the subgraph.
        name: tensor name (the converter joins the fused TF op names with ';').
        dtype: schema type name (``"INT8"``, ``"INT4"``, ``"INT32"``, ...).
        shape: tensor shape.
        scales: quantization scales (one per channel when per-channel), or ().
        zero_points: quantization zero points, or ().
        quantized_dimension: the per-channel axis.
        values: the constant's values (INT4 unpacked to int8), or None for
            activations.
        buffer_bytes: bytes the constant occupies in the file (0 for activations).
    """

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int
    values: np.ndarray | None
    buffer_bytes: int


@dataclasses.dataclass(frozen=True)
class OperatorInfo:
    """One operator: its builtin name and tensor indices."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class TFLiteGraph:
    """The main subgraph of a ``.tflite`` model.

    Attributes:
        tensors: `TensorInfo` list.
        operators: `OperatorInfo` list in execution order.
        inputs: input tensor indices.
        outputs: output tensor indices.
        size_bytes: size of the flatbuffer (flash), bytes.
        subgraphs: number of subgraphs in the file (a tf_nvm export has 1).
    """

    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    size_bytes: int
    subgraphs: int = 1

    def op_names(self) -> list[str]:
        """Builtin op names in execution order."""
        return [op.op for op in self.operators]

    def op_counts(self) -> dict[str, int]:
        """{op name: count}, in first-use order."""
        counts: dict[str, int] = {}
        for op in self.operators:
            counts[op.op] = counts.get(op.op, 0) + 1
        return counts

    def weight_tensors(self) -> list[tuple[OperatorInfo, TensorInfo]]:
        """[(operator, weight TensorInfo)] for every conv / depthwise / fully-connected op."""
        return [(op, self.tensors[op.inputs[1]]) for op in self.operators
                if op.op in WEIGHT_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0]

    def layer_weights(self, layer_name: str) -> list[tuple[OperatorInfo, TensorInfo]]:
        """Weight tensors whose name holds ``/layer_name/`` (the Keras layer that made them)."""
        key = f"/{layer_name}/"
        return [(op, t) for op, t in self.weight_tensors() if key in t.name]


def _unpack_int4(raw: np.ndarray, count: int) -> np.ndarray:
    low = (raw & 0x0F).astype(np.int8)
    high = ((raw >> 4) & 0x0F).astype(np.int8)
    values = np.stack([low, high], axis=-1).reshape(-1)[:count]
    return np.where(values > 7, values - 16, values).astype(np.int8)


_DTYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
           "FLOAT32": np.float32, "FLOAT16": np.float16, "BOOL": np.bool_}


def _string(table: Any, slot: int) -> str:
    """A string field of a flatbuffer table, at most `MAX_NAME_BYTES` bytes copied, decoded."""
    tab = table._tab  # noqa: SLF001  (the generated accessor copies the whole string)
    offset = tab.Offset(slot)
    if not offset:
        return ""
    start = tab.Vector(offset)
    length = min(tab.VectorLen(offset), MAX_NAME_BYTES)
    return bytes(tab.Bytes[start:start + length]).decode("utf-8", "replace")


def _count(length: int, limit: int, what: str) -> int:
    if length > limit:
        raise ExportError(f"TFLite model: {what} declares {length} entries; at most {limit} are allowed. {_FIX}")
    return length


def _indices(values: Any, low: int, high: int, what: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in values)
    bad = [v for v in values if not low <= v < high]
    if bad:
        raise ExportError(f"TFLite model: {what} holds tensor index {bad[0]}; allowed: {low} to {high - 1} (the "
                          f"graph has {high} tensors{', -1 = an omitted optional input' if low < 0 else ''}). {_FIX}")
    return values


def _vector(table: Any, length_name: str, numpy_name: str, limit: int, what: str) -> Any:
    length = _count(getattr(table, length_name)(), limit, what)
    return getattr(table, numpy_name)() if length else ()


def read_tflite(content: ModelSource) -> TFLiteGraph:
    """Parses a ``.tflite`` model, checking everything it declares against the module's limits.

    Args:
        content: the flatbuffer bytes, or a path to the file.

    Returns:
        `TFLiteGraph` of subgraph 0.

    Raises:
        ExportError: not a TFLite flatbuffer, damaged, or declaring more than the
            limits allow (negative or too many dimensions, too many values,
            tensor indices out of range, constants that do not fill their shape).
    """
    content = read_model_bytes(content)
    schema = _schema()
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ExportError(f"not a TFLite flatbuffer (identifier {bytes(content[4:8])!r}, expected b'TFL3'). "
                          "Fix: pass the .tflite file written by tflite_export.export_tflite.")
    try:
        return _read(schema, content)
    except ExportError:
        raise
    except (IndexError, ValueError, TypeError, OverflowError, AttributeError, KeyError, MemoryError) as err:
        # a truncated or inconsistent flatbuffer makes the accessors read outside the file
        raise ExportError(f"TFLite model: the flatbuffer is damaged ({type(err).__name__}: {str(err)[:200]}). "
                          f"{_FIX}") from None


def _read(schema: Any, content: bytes) -> TFLiteGraph:
    model = schema.Model.GetRootAs(content, 0)
    subgraphs = model.SubgraphsLength()
    if subgraphs < 1:
        raise ExportError(f"TFLite model: the file has no subgraph. {_FIX}")
    graph = model.Subgraphs(0)
    tensors = _read_tensors(schema, model, graph, content)
    n_tensors = len(tensors)
    operators = _read_operators(schema, model, graph, n_tensors)
    graph_inputs = _indices(_vector(graph, "InputsLength", "InputsAsNumpy", MAX_OPERATOR_TENSORS, "the graph inputs"),
                            0, n_tensors, "the graph inputs")
    graph_outputs = _indices(_vector(graph, "OutputsLength", "OutputsAsNumpy", MAX_OPERATOR_TENSORS,
                                     "the graph outputs"), 0, n_tensors, "the graph outputs")
    return TFLiteGraph(tuple(tensors), tuple(operators), graph_inputs, graph_outputs, len(content), int(subgraphs))


def _read_tensors(schema: Any, model: Any, graph: Any, content: bytes) -> list[TensorInfo]:
    """Every tensor of ``graph``, its shape, constant data and quantization checked against the limits."""
    type_names = _names(schema.TensorType)
    n_tensors = _count(graph.TensorsLength(), MAX_TENSORS, "the tensor list")
    n_buffers = model.BuffersLength()
    constant_budget = MAX_CONSTANT_FACTOR * len(content)
    constant_bytes = total = 0
    tensors = []
    for i in range(n_tensors):
        t = graph.Tensors(i)
        name = _string(t, 10)
        where = f"tensor {i} ({name[:80]!r})"
        shape, count = _shape(t, where)
        total += count
        if total > MAX_TOTAL_ELEMENTS:
            raise ExportError(f"TFLite model: the tensors up to {where} declare {total} values in total; at most "
                              f"{MAX_TOTAL_ELEMENTS} are allowed. {_FIX}")
        dtype = type_names.get(t.Type(), str(t.Type()))
        raw = _buffer(model, t.Buffer(), n_buffers, content, where)
        values = None
        if raw is not None and raw.size:
            constant_bytes += int(raw.size)
            if constant_bytes > constant_budget:
                raise ExportError(f"TFLite model: the constant tensors up to {where} declare {constant_bytes} "
                                  f"bytes, more than {MAX_CONSTANT_FACTOR} x the file's {len(content)} bytes "
                                  f"(buffers shared by many tensors). {_FIX}")
            values = _constant_values(raw, dtype, shape, count, where)
        scales, zps, dimension = _quantization(t, count, where)
        tensors.append(TensorInfo(i, name, dtype, shape, scales, zps, dimension, values,
                                  0 if raw is None else int(raw.size)))
    return tensors


def _shape(tensor: Any, where: str) -> tuple[tuple[int, ...], int]:
    """(shape, number of values) of a tensor: at most `MAX_TENSOR_DIMS` sizes >= 0, `MAX_TENSOR_ELEMENTS` values."""
    dims = _vector(tensor, "ShapeLength", "ShapeAsNumpy", MAX_TENSOR_DIMS, f"{where}: the shape")
    shape = tuple(int(d) for d in dims)
    if any(d < 0 for d in shape):
        raise ExportError(f"TFLite model: {where} has shape {shape}; allowed: sizes >= 0 (a tf_nvm export has "
                          f"fixed sizes). {_FIX}")
    count = math.prod(shape)
    if count > MAX_TENSOR_ELEMENTS:
        raise ExportError(f"TFLite model: {where} has shape {shape}, {count} values; at most "
                          f"{MAX_TENSOR_ELEMENTS} values per tensor are allowed. {_FIX}")
    return shape, count


def _buffer(model: Any, index: int, n_buffers: int, content: bytes, where: str) -> np.ndarray | None:
    """The raw bytes (uint8) of buffer ``index``, or None (no buffer: an activation)."""
    if not 0 < index < n_buffers:
        return None
    buffer = model.Buffers(index)
    if buffer.Offset() > 1:  # data stored after the flatbuffer (files over 2 GB)
        start, size = int(buffer.Offset()), int(buffer.Size())
        if start + size > len(content):
            raise ExportError(f"TFLite model: {where}'s buffer lies at bytes {start}..{start + size}, past "
                              f"the end of the {len(content)}-byte file. {_FIX}")
        return np.frombuffer(content, np.uint8, size, start)
    if buffer.DataLength():
        return buffer.DataAsNumpy()
    return None


def _constant_values(raw: np.ndarray, dtype: str, shape: tuple[int, ...], count: int,
                     where: str) -> np.ndarray | None:
    """A constant's values (INT4 unpacked to int8), once its buffer holds exactly the bytes its shape needs."""
    if dtype == "INT4":
        need = (count + 1) // 2
    elif dtype in _DTYPES:
        need = count * np.dtype(_DTYPES[dtype]).itemsize
    else:
        need = None
    if need is not None and need != raw.size:
        raise ExportError(f"TFLite model: {where} ({dtype}, shape {shape}) needs {need} bytes of constant "
                          f"data but its buffer holds {raw.size}. {_FIX}")
    if dtype == "INT4":
        return _unpack_int4(raw, count).reshape(shape)
    if dtype in _DTYPES:
        return raw.view(_DTYPES[dtype]).reshape(shape)
    return None


def _quantization(tensor: Any, count: int, where: str) -> tuple[tuple[float, ...], tuple[int, ...], int]:
    """(scales, zero points, quantized dimension) of a tensor: at most one scale and zero point per value."""
    q = tensor.Quantization()
    if q is None:
        return (), (), 0
    scales = tuple(float(v) for v in _vector(q, "ScaleLength", "ScaleAsNumpy", MAX_TENSOR_ELEMENTS,
                                             f"{where}: the quantization scales"))
    zps = tuple(int(v) for v in _vector(q, "ZeroPointLength", "ZeroPointAsNumpy", MAX_TENSOR_ELEMENTS,
                                        f"{where}: the zero points"))
    if len(scales) > max(count, 1) or len(zps) > max(count, 1):
        raise ExportError(f"TFLite model: {where} has {len(scales)} scales and {len(zps)} zero points for "
                          f"{count} values; at most one per value is allowed. {_FIX}")
    return scales, zps, int(q.QuantizedDimension())


def _read_operators(schema: Any, model: Any, graph: Any, n_tensors: int) -> list[OperatorInfo]:
    """Every operator of ``graph``: its builtin name and tensor indices, checked against the tensor list."""
    op_names = _names(schema.BuiltinOperator)
    n_codes = model.OperatorCodesLength()
    operators = []
    for i in range(_count(graph.OperatorsLength(), MAX_OPERATORS, "the operator list")):
        op = graph.Operators(i)
        code_index = int(op.OpcodeIndex())
        if not 0 <= code_index < n_codes:
            raise ExportError(f"TFLite model: operator {i} has opcode index {code_index}; allowed: 0 to "
                              f"{n_codes - 1}. {_FIX}")
        code = model.OperatorCodes(code_index)
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        inputs = _indices(_vector(op, "InputsLength", "InputsAsNumpy", MAX_OPERATOR_TENSORS,
                                  f"operator {i} ({name}): the inputs"), -1, n_tensors,
                          f"operator {i} ({name}): the inputs")
        outputs = _indices(_vector(op, "OutputsLength", "OutputsAsNumpy", MAX_OPERATOR_TENSORS,
                                   f"operator {i} ({name}): the outputs"), 0, n_tensors,
                           f"operator {i} ({name}): the outputs")
        operators.append(OperatorInfo(i, name, inputs, outputs))
    return operators


def check_runnable(graph: TFLiteGraph, what: str = "TFLite model") -> None:
    """Raises `ExportError` when ``graph`` holds control flow a tf_nvm export never has.

    A ``WHILE`` (or ``IF``, ``CALL``...) op runs other subgraphs and may never end:
    running such a file (e.g. to measure its arena) is refused up front.

    Args:
        graph: a `TFLiteGraph` (`read_tflite`).
        what: how the file is named in the message.
    """
    found = [op for op in graph.operators if op.op in CONTROL_FLOW_OPS]
    if found or graph.subgraphs != 1:
        detail = (f"operator {found[0].index} is {found[0].op}" if found
                  else f"the file has {graph.subgraphs} subgraphs")
        raise ExportError(f"{what}: {detail}; a tf_nvm export has one subgraph and no control flow (allowed: no "
                          f"{', '.join(CONTROL_FLOW_OPS)}), and such a model may never finish running, so it is "
                          f"refused before it runs. {_FIX}")
