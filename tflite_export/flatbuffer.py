"""Read a ``.tflite`` flatbuffer: tensors, quantization, constant values, operators.

Uses the generated ``tflite`` schema bindings shipped with LiteRT
(``ai_edge_litert.schema_py_generated``, no TensorFlow import) or, when LiteRT
is missing, TensorFlow's copy (``tensorflow.lite.python.schema_py_generated``).
INT4 constants (two values per byte, low nibble first) are unpacked to int8.
"""

import dataclasses
import importlib

import numpy as np

from tf_nvm.errors import ExportError

__all__ = ["TensorInfo", "OperatorInfo", "TFLiteGraph", "read_tflite", "WEIGHT_OPS"]

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _schema():
    for name in ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ExportError("no TFLite schema bindings found (ai_edge_litert.schema_py_generated or "
                      "tensorflow.lite.python.schema_py_generated). Fix: pip install ai-edge-litert.")


def _names(enum_class):
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
    shape: tuple
    scales: tuple
    zero_points: tuple
    quantized_dimension: int
    values: object
    buffer_bytes: int


@dataclasses.dataclass(frozen=True)
class OperatorInfo:
    """One operator: its builtin name and tensor indices."""

    index: int
    op: str
    inputs: tuple
    outputs: tuple


@dataclasses.dataclass(frozen=True)
class TFLiteGraph:
    """The main subgraph of a ``.tflite`` model.

    Attributes:
        tensors: `TensorInfo` list.
        operators: `OperatorInfo` list in execution order.
        inputs: input tensor indices.
        outputs: output tensor indices.
        size_bytes: size of the flatbuffer (flash), bytes.
    """

    tensors: tuple
    operators: tuple
    inputs: tuple
    outputs: tuple
    size_bytes: int

    def op_names(self):
        """Builtin op names in execution order."""
        return [op.op for op in self.operators]

    def op_counts(self):
        """{op name: count}, in first-use order."""
        counts = {}
        for op in self.operators:
            counts[op.op] = counts.get(op.op, 0) + 1
        return counts

    def weight_tensors(self):
        """[(operator, weight TensorInfo)] for every conv / depthwise / fully-connected op."""
        return [(op, self.tensors[op.inputs[1]]) for op in self.operators
                if op.op in WEIGHT_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0]

    def layer_weights(self, layer_name):
        """Weight tensors whose name holds ``/layer_name/`` (the Keras layer that made them)."""
        key = f"/{layer_name}/"
        return [(op, t) for op, t in self.weight_tensors() if key in t.name]


def _unpack_int4(raw, count):
    low = (raw & 0x0F).astype(np.int8)
    high = ((raw >> 4) & 0x0F).astype(np.int8)
    values = np.stack([low, high], axis=-1).reshape(-1)[:count]
    return np.where(values > 7, values - 16, values).astype(np.int8)


_DTYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
           "FLOAT32": np.float32, "FLOAT16": np.float16, "BOOL": np.bool_}


def read_tflite(content):
    """Parses a ``.tflite`` model.

    Args:
        content: the flatbuffer bytes, or a path to the file.

    Returns:
        `TFLiteGraph` of subgraph 0.

    Raises:
        ExportError: not a TFLite flatbuffer.
    """
    if not isinstance(content, (bytes, bytearray)):
        with open(content, "rb") as handle:
            content = handle.read()
    schema = _schema()
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ExportError(f"not a TFLite flatbuffer (identifier {bytes(content[4:8])!r}, expected b'TFL3'). "
                          "Fix: pass the .tflite file written by tflite_export.export_tflite.")
    model = schema.ModelT.InitFromPackedBuf(bytes(content), 0)
    type_names = _names(schema.TensorType)
    op_names = _names(schema.BuiltinOperator)
    graph = model.subgraphs[0]
    tensors = []
    for i, t in enumerate(graph.tensors):
        dtype = type_names.get(t.type, str(t.type))
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        buffer = model.buffers[t.buffer] if t.buffer is not None and t.buffer < len(model.buffers) else None
        raw = None if buffer is None or buffer.data is None else np.asarray(buffer.data, np.uint8)
        values = None
        if raw is not None and raw.size:
            count = int(np.prod(shape)) if shape else 1
            if dtype == "INT4":
                values = _unpack_int4(raw, count).reshape(shape)
            elif dtype in _DTYPES:
                values = raw.view(_DTYPES[dtype]).reshape(shape)
        q = t.quantization
        scales = tuple(float(v) for v in (q.scale if q is not None and q.scale is not None else ()))
        zps = tuple(int(v) for v in (q.zeroPoint if q is not None and q.zeroPoint is not None else ()))
        name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else str(t.name)
        tensors.append(TensorInfo(i, name, dtype, shape, scales, zps, int(q.quantizedDimension) if q else 0,
                                  values, 0 if raw is None else int(raw.size)))
    operators = []
    for i, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        operators.append(OperatorInfo(i, op_names.get(builtin, f"BUILTIN_{builtin}"),
                                      tuple(int(v) for v in op.inputs), tuple(int(v) for v in op.outputs)))
    return TFLiteGraph(tuple(tensors), tuple(operators), tuple(int(v) for v in graph.inputs),
                       tuple(int(v) for v in graph.outputs), len(content))
