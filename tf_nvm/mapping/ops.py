"""The digital-op table: every digital step a mapping may hold, defined once.

Each entry of `DIGITAL_OPS` (a `tf_nvm.core.registry.Registry` of frozen
`DigitalOp`) gives the op's name, its parameter schema, its array schema, its
shape rule (input shapes + params -> output shape, or an `OpShapeError` naming
the field), what its ``requantize`` flag may be, and its numpy reference
computation on int codes. Validation (`tf_nvm.mapping.validate`), the reader
(`tf_nvm.mapping.io`), the reference evaluator (`tf_nvm.mapping.reference`)
and the exporter's Keras adapters (`tflite_export.crossbar`) all read this
table: a new digital op is one `DigitalOp` entry (plus, to export it, one
adapter), and the tests are generated over ``DIGITAL_OPS.names()``.

Conventions of the reference functions: ``inputs`` is a list of int64 code
arrays with the batch axis first; axes in ``params`` count from the first axis
of one example (the batch axis is not counted); the result is an int64 code
array. Every code lies on the shared grid ``x = q * step`` (step = A/128)
except the output of ``softmax`` (probabilities, step 1/256).

Numpy only (mapping-format layer); shape rules use Python ints (no overflow).
"""

import dataclasses
import math
from typing import Any, Callable, Optional

import numpy as np

from tf_nvm.core.errors import MappingError
from tf_nvm.core.grid import rint_clip
from tf_nvm.mapping.tiling import same_pads, window_output_size
from tf_nvm.mapping.types import MAX_DIM
from tf_nvm.core.registry import Registry
from tf_nvm.core.validate import is_kind

__all__ = [
    "DigitalOp",
    "ArraySpec",
    "OpShapeError",
    "DIGITAL_OPS",
    "PARAM_KINDS",
    "REQUANTIZE_RULES",
    "PROBABILITY_STEP",
    "register_op",
    "param_ok",
    "max_pool_windows",
    "window_sums",
]

PARAM_KINDS = ("int", "number", "str", "int_list", "axis_list", "pairs")
"""Kinds of op parameters: int; finite number; string; non-empty list of ints in 1..MAX_DIM; non-empty list of
axes 0..7; list of ``[before, after]`` pairs of ints in 0..MAX_DIM."""
REQUANTIZE_RULES = ("always", "never", "either")
"""What a layer's ``requantize`` flag may be: always true, always false, or either (the Keras layer had an output
quantizer or not; the computation is the same)."""
PROBABILITY_STEP = 1.0 / 256.0
"""Grid step of softmax outputs (probabilities on [0, 255/256], TFLite's int8 softmax range)."""


class OpShapeError(MappingError):
    """A digital layer's shapes contradict its params (raised by a shape rule).

    Attributes:
        field: the layer field at fault, e.g. ``"params.axes"`` or ``"inputs"``.
        message: what is wrong (no field prefix, no fix).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """One array of a digital op: one value per channel (``params["channels"]``).

    Attributes:
        dtype: numpy dtype name (``"int32"``, ``"float32"``).
        low: smallest allowed value.
        high: largest allowed value.
    """

    dtype: str
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class DigitalOp:
    """One digital op of the mapping format.

    Attributes:
        name: the op name written in the file.
        description: one line, what it computes.
        params: ``{key: kind}`` of required parameters (kinds: `PARAM_KINDS`).
        arrays: ``{key: ArraySpec}`` of required arrays (empty: the op takes none).
        shape: ``(input shapes, params, declared output shape) -> output shape``
            (tuples of Python ints); raises `OpShapeError` when the inputs and
            params contradict each other. Only ops whose params do not fix the
            output (``reshape``) read the declared shape.
        reference: ``(inputs, layer, spec) -> int64 codes``: the exact numpy
            computation (``layer`` a `DigitalLayer`, ``spec`` the `NVMSpec`).
        inputs: number of inputs, or None for one or more.
        requantize: what the layer's ``requantize`` flag may be (`REQUANTIZE_RULES`).
        moves_codes: True when the output holds input codes (moved, selected or
            zero-padded): any zero-point-0 grid passes through unchanged. False
            when the op computes new values on the shared grid.
        output_step: grid step of the output when it is not the shared grid
            (softmax: `PROBABILITY_STEP`), else None.
    """

    name: str
    description: str
    params: dict
    arrays: dict
    shape: Callable
    reference: Callable
    inputs: Optional[int] = 1
    requantize: str = "never"
    moves_codes: bool = True
    output_step: Optional[float] = None


DIGITAL_OPS = Registry("digital op", error=MappingError,
                       fix="use a digital op of tf_nvm.mapping.ops.DIGITAL_OPS (docs/mapping_schema.md)")
"""op name -> `DigitalOp`: the one table of digital ops."""


def register_op(op: "DigitalOp") -> Any:
    """Adds a `DigitalOp` to `DIGITAL_OPS` and returns it.

    Raises:
        MappingError: the name is taken, or the entry is malformed.
    """
    if op.requantize not in REQUANTIZE_RULES or any(kind not in PARAM_KINDS for kind in op.params.values()):
        raise MappingError(f"digital op {op.name!r}: requantize {op.requantize!r} or param kinds "
                           f"{op.params} not allowed (requantize: {list(REQUANTIZE_RULES)}, kinds: "
                           f"{list(PARAM_KINDS)}). Fix: correct the DigitalOp entry.")
    return DIGITAL_OPS.register(op.name, op, description=op.description)


def _is_int(value, low, high):
    return is_kind(value, "int") and low <= value <= high


def param_ok(kind: str, value: Any) -> bool:
    """Whether ``value`` is a valid op parameter of ``kind`` (one of `PARAM_KINDS`)."""
    if kind in ("int", "number", "str"):
        return is_kind(value, kind)  # ints are not bools; numbers are finite
    if kind == "int_list":
        return isinstance(value, list) and bool(value) and all(_is_int(v, 1, MAX_DIM) for v in value)
    if kind == "axis_list":
        return isinstance(value, list) and bool(value) and all(_is_int(v, 0, 7) for v in value)
    return isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 and all(_is_int(v, 0, MAX_DIM)
                                                                                       for v in p) for p in value)


# --------------------------------------------------------------------- shape rules
def _same_shape(in_shapes, params, declared):
    return in_shapes[0]


def _reduced(in_shapes, params):
    """The input shape without ``params["axes"]`` (global pooling)."""
    shape, axes = in_shapes[0], params["axes"]
    if len(set(axes)) != len(axes) or any(a >= len(shape) - 1 for a in axes):
        raise OpShapeError("params.axes", f"value {axes} must be distinct spatial axes (not the last, channel axis) "
                                          f"of input {list(shape)}")
    return tuple(d for a, d in enumerate(shape) if a not in axes)


def _global_average_pool_shape(in_shapes, params, declared):
    out = _reduced(in_shapes, params)
    count = math.prod(in_shapes[0][a] for a in params["axes"])
    if params["count"] != count:
        raise OpShapeError("params.count", f"value {params['count']} is not the {count} values averaged")
    return out


def _batch_norm_shape(in_shapes, params, declared):
    if params["channels"] != in_shapes[0][-1]:
        raise OpShapeError("params.channels", f"value {params['channels']} is not the input's {in_shapes[0][-1]} "
                                              "channels")
    return in_shapes[0]


def _pool_shape(in_shapes, params, declared):
    shape, pool, strides, padding = in_shapes[0], params["pool_size"], params["strides"], params["padding"]
    if padding not in ("valid", "same") or len(pool) != len(strides) or len(pool) != len(shape) - 1:
        raise OpShapeError("params", f"pool_size/strides/padding {pool}/{strides}/{padding!r} do not fit input "
                                     f"{list(shape)} (one pool size and stride per spatial axis; 'valid' or 'same')")
    if padding == "same":
        spatial = [-(-size // s) for size, s in zip(shape, strides)]
    else:
        spatial = [window_output_size(size, p, s) for size, p, s in zip(shape, pool, strides)]
    if not all(spatial):
        raise OpShapeError("params.pool_size", f"value {pool} is larger than the input {list(shape)} ('valid')")
    return tuple(spatial) + shape[-1:]


def _zero_pad_shape(in_shapes, params, declared):
    shape, pads = in_shapes[0], params["pads"]
    if len(pads) != len(shape) - 1:
        raise OpShapeError("params.pads", f"needs one [before, after] pair per spatial axis of {list(shape)}, got "
                                          f"{len(pads)}")
    return tuple(d + a + b for d, (a, b) in zip(shape, pads)) + shape[-1:]


def _flatten_shape(in_shapes, params, declared):
    return (math.prod(in_shapes[0]),)


def _reshape_shape(in_shapes, params, declared):
    size = math.prod(in_shapes[0])
    if math.prod(declared) != size:
        raise OpShapeError("output_shape", f"{list(declared)} does not hold the {size} input values")
    return tuple(declared)


def _axis(axis, rank, field, shapes):
    if not -rank <= axis < rank:
        raise OpShapeError(field, f"value {axis} is not valid for rank-{rank} tensors {[list(s) for s in shapes]}")
    return axis % rank


def _concatenate_shape(in_shapes, params, declared):
    rank = len(in_shapes[0])
    if any(len(s) != rank for s in in_shapes):
        raise OpShapeError("inputs", f"shapes {[list(s) for s in in_shapes]} must all have one rank")
    axis = _axis(params["axis"], rank, "params.axis", in_shapes)
    rest = {s[:axis] + s[axis + 1:] for s in in_shapes}
    if len(rest) != 1:
        raise OpShapeError("inputs", f"shapes {[list(s) for s in in_shapes]} differ outside axis {axis}")
    first = in_shapes[0]
    return first[:axis] + (sum(s[axis] for s in in_shapes),) + first[axis + 1:]


def _add_shape(in_shapes, params, declared):
    if len(set(in_shapes)) != 1:
        raise OpShapeError("inputs", f"shapes {[list(s) for s in in_shapes]} must all be equal")
    return in_shapes[0]


def _subtract_shape(in_shapes, params, declared):
    if len(set(in_shapes)) != 1:
        raise OpShapeError("inputs", f"shapes {[list(s) for s in in_shapes]} must be equal")
    return in_shapes[0]


def _transpose_shape(in_shapes, params, declared):
    shape, perm = in_shapes[0], params["perm"]
    if sorted(perm) != list(range(len(shape))):
        raise OpShapeError("params.perm", f"value {perm} is not a permutation of the axes of input {list(shape)}")
    return tuple(shape[a] for a in perm)


def _crop_shape(in_shapes, params, declared):
    shape, crops = in_shapes[0], params["crops"]
    if len(crops) != len(shape) - 1 or any(a + b >= d for d, (a, b) in zip(shape, crops)):
        raise OpShapeError("params.crops", f"value {crops} needs one [before, after] pair per spatial axis of "
                                           f"{list(shape)}, leaving at least one value on each")
    return tuple(d - a - b for d, (a, b) in zip(shape, crops)) + shape[-1:]


def _softmax_shape(in_shapes, params, declared):
    _axis(params["axis"], len(in_shapes[0]), "params.axis", in_shapes)
    return in_shapes[0]


# ----------------------------------------------------------------- reference maths
def _example_axis(axis):
    """An axis of one example -> the axis of a batch (negative axes unchanged)."""
    return axis + 1 if axis >= 0 else axis


def _batch_norm(inputs, layer, spec):
    arrays = layer.arrays
    acc = inputs[0] * arrays["multiplier"].astype(np.int64) + arrays["offset"].astype(np.int64)
    return rint_clip(acc.astype(np.float32) * arrays["scale"])  # exact integer, then one float32 product


def _relu(inputs, layer, spec):
    return np.maximum(inputs[0], 0)


def _identity(inputs, layer, spec):
    return inputs[0]


def _rescale(inputs, layer, spec):
    return rint_clip(inputs[0] * layer.params["scale"] + layer.params["offset"] / spec.activation_step)


def _global_average_pool(inputs, layer, spec):
    axes = tuple(1 + a for a in layer.params["axes"])
    inverse = np.float32(1.0) / np.float32(layer.params["count"])
    return rint_clip(inputs[0].sum(axis=axes).astype(np.float32) * inverse)  # sum * float32(1/n), as LiteRT


def _global_max_pool(inputs, layer, spec):
    return inputs[0].max(axis=tuple(1 + a for a in layer.params["axes"]))


def max_pool_windows(q: Any, params: dict, output_shape: Any, pad: Any = np.pad, maximum: Any = np.maximum) -> Any:
    """Max over each pooling window (Keras semantics), for any array library with ``pad`` and ``maximum``.

    Args:
        q: codes ``[N, *spatial, C]`` (numpy, or a TensorFlow tensor with ``pad=tf.pad, maximum=tf.maximum``).
        params: the ``max_pool`` params (``pool_size``, ``strides``, ``padding``).
        output_shape: the layer's output shape (one example).
        pad: ``pad(array, pads, constant_values=...)``.
        maximum: elementwise maximum of two arrays.
    """
    pool, strides = params["pool_size"], params["strides"]
    if params["padding"] == "same":
        pads = [same_pads(q.shape[1 + a], p, s) for a, (p, s) in enumerate(zip(pool, strides))]
        q = pad(q, [(0, 0)] + pads + [(0, 0)], constant_values=-(1 << 30))  # never the maximum
    out_spatial = output_shape[:-1]
    result = None
    for offsets in np.ndindex(*pool):
        window = q[(slice(None),) + tuple(slice(o, o + s * (n - 1) + 1, s)
                                          for o, s, n in zip(offsets, strides, out_spatial))]
        result = window if result is None else maximum(result, window)
    return result


def _max_pool(inputs, layer, spec):
    return max_pool_windows(inputs[0], layer.params, layer.output_shape)


def window_sums(q: np.ndarray, params: dict, output_shape: Any) -> tuple[Any, Any]:
    """Sum of the codes in each pooling window and the number of valid codes in it (padding counts in neither).

    Args:
        q: int64 codes ``[N, *spatial, C]``.
        params: the pooling params (``pool_size``, ``strides``, ``padding``).
        output_shape: the layer's output shape (one example).

    Returns:
        (sums ``[N, *out_spatial, C]`` int64, counts ``[*out_spatial, 1]`` int64).
    """
    pool, strides = params["pool_size"], params["strides"]
    valid = np.ones(q.shape[1:-1] + (1,), np.int64)
    if params["padding"] == "same":
        pads = [same_pads(q.shape[1 + a], p, s) for a, (p, s) in enumerate(zip(pool, strides))]
        q = np.pad(q, [(0, 0)] + pads + [(0, 0)])
        valid = np.pad(valid, pads + [(0, 0)])
    out_spatial = output_shape[:-1]
    sums: Any = 0
    counts: Any = 0
    for offsets in np.ndindex(*pool):
        window = tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offsets, strides, out_spatial))
        sums = sums + q[(slice(None),) + window]
        counts = counts + valid[window]
    return sums, counts


def _average_pool(inputs, layer, spec):
    sums, counts = window_sums(inputs[0], layer.params, layer.output_shape)
    # TFLite's int8 AVERAGE_POOL_2D: (acc +- n // 2) / n with C division (truncation): half away from zero.
    return np.sign(sums) * ((np.abs(sums) + counts // 2) // counts)


def _reshape(inputs, layer, spec):
    return inputs[0].reshape((inputs[0].shape[0],) + tuple(layer.output_shape))  # C order


def _concatenate(inputs, layer, spec):
    return np.concatenate(inputs, axis=_example_axis(layer.params["axis"]))


def _add(inputs, layer, spec):
    return rint_clip(sum(inputs))


def _subtract(inputs, layer, spec):
    return rint_clip(inputs[0] - inputs[1])


def _transpose(inputs, layer, spec):
    return np.transpose(inputs[0], (0,) + tuple(1 + a for a in layer.params["perm"]))


def _crop(inputs, layer, spec):
    q = inputs[0]
    return q[(slice(None),) + tuple(slice(a, q.shape[1 + i] - b) for i, (a, b) in enumerate(layer.params["crops"]))]


def _zero_pad(inputs, layer, spec):
    return np.pad(inputs[0], [(0, 0)] + [tuple(p) for p in layer.params["pads"]] + [(0, 0)])


def _softmax(inputs, layer, spec):
    axis = _example_axis(layer.params["axis"])
    x = inputs[0].astype(np.float32) * np.float32(spec.activation_step)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    # The Keras output fake-quantizer: floor(p * 256 + 0.5) on [0, 255] (round half up, in float32).
    return np.clip(np.floor(p * np.float32(256.0) + np.float32(0.5)), 0, 255).astype(np.int64)


for _op in (
    DigitalOp("batch_norm", "per-channel affine round(float32(q * m + k) * u), clip", {"channels": "int"},
              {"multiplier": ArraySpec("int32", -127, 127), "offset": ArraySpec("int32", -(2 ** 22), 2 ** 22),
               "scale": ArraySpec("float32", 2.0 ** -126, 2.0 ** 100)},
              _batch_norm_shape, _batch_norm, requantize="always", moves_codes=False),
    DigitalOp("relu", "max(q, 0)", {}, {}, _same_shape, _relu, requantize="either"),
    DigitalOp("identity", "q (Dropout, linear Activation, an inner input quantizer)", {}, {}, _same_shape,
              _identity, requantize="either"),
    DigitalOp("rescale", "round(q * scale + offset / step), clip", {"scale": "number", "offset": "number"}, {},
              _same_shape, _rescale, requantize="either", moves_codes=False),
    DigitalOp("global_average_pool", "round(float32(sum over axes) * float32(1 / count)), clip",
              {"axes": "axis_list", "count": "int"}, {}, _global_average_pool_shape, _global_average_pool,
              requantize="either", moves_codes=False),
    DigitalOp("global_max_pool", "max over axes", {"axes": "axis_list"}, {},
              lambda in_shapes, params, declared: _reduced(in_shapes, params), _global_max_pool),
    DigitalOp("max_pool", "max over each window (Keras semantics)",
              {"pool_size": "int_list", "strides": "int_list", "padding": "str"}, {}, _pool_shape, _max_pool),
    DigitalOp("average_pool", "window sum / valid count, rounded half away from zero (TFLite's int8 AVERAGE_POOL_2D)",
              {"pool_size": "int_list", "strides": "int_list", "padding": "str"}, {}, _pool_shape, _average_pool,
              requantize="either", moves_codes=False),
    DigitalOp("flatten", "C-order reshape to one axis", {}, {}, _flatten_shape, _reshape),
    DigitalOp("reshape", "C-order reshape to output_shape", {}, {}, _reshape_shape, _reshape),
    DigitalOp("concatenate", "concatenation of the inputs along axis", {"axis": "int"}, {}, _concatenate_shape,
              _concatenate, inputs=None),
    DigitalOp("add", "sum of the inputs, clip", {}, {}, _add_shape, _add, inputs=None, requantize="either",
              moves_codes=False),
    DigitalOp("softmax", "softmax of q * step, on the probability grid 1/256", {"axis": "int"}, {},
              _softmax_shape, _softmax, moves_codes=False, output_step=PROBABILITY_STEP),
    DigitalOp("zero_pad", "pad with code 0", {"pads": "pairs"}, {}, _zero_pad_shape, _zero_pad),
    DigitalOp("subtract", "first input minus second, clip", {}, {}, _subtract_shape, _subtract, inputs=2,
              requantize="either", moves_codes=False),
    DigitalOp("transpose", "permutation of the axes of one example (perm[i]: input axis of output axis i)",
              {"perm": "axis_list"}, {}, _transpose_shape, _transpose),
    DigitalOp("crop", "drop [before, after] values per spatial axis", {"crops": "pairs"}, {}, _crop_shape, _crop),
):
    register_op(_op)
