"""Adapters from Keras layer classes to the crossbar mapping's ops (`tflite_export.crossbar`).

Two tables, looked up through a layer class's MRO (most specific first):

* `CROSSBAR_ADAPTERS`: a crossbar layer (Dense, Conv1D/2D, DepthwiseConv2D) -> its op name,
  geometry and im2col ``[rows, cols]`` code matrix;
* `DIGITAL_ADAPTERS`: any other layer -> its digital op (an entry of
  `tf_nvm.mapping.ops.DIGITAL_OPS`), parameters and arrays.

A class registered with ``tf_nvm.keras.quantize_configs.register_layer(..., adapter=...)`` uses its table
entry's adapter instead. An unsupported layer or option raises `ExportError` (`fail_unsupported`).
"""

import math
from typing import Any, NoReturn

import numpy as np

import tf_nvm.mapping as nvm_mapping
from tf_nvm.core.errors import ExportError
from tf_nvm.keras.backend import keras
from tf_nvm.keras.digital import NVMAveragePooling1D, NVMAveragePooling2D, NVMBatchNormalization
from tf_nvm.keras.graph import activation_name
from tf_nvm.mapping.ops import DIGITAL_OPS
from tf_nvm.mapping.tiling import same_pads

__all__ = ["CROSSBAR_ADAPTERS", "DIGITAL_ADAPTERS", "find_adapter", "fail_unsupported"]


def fail_unsupported(name: str, inner: Any, why: str) -> NoReturn:
    """Raises the `ExportError` of layer ``name`` (Keras layer ``inner``): ``why`` it is not mapped, what is."""
    raise ExportError(f"layer {name!r} ({type(inner).__name__}): {why}. The crossbar mapping supports the digital "
                      f"ops {DIGITAL_OPS.names()} and the crossbar ops {list(nvm_mapping.CROSSBAR_OPS)}. Fix: "
                      "replace the layer by a supported one.")


# ---------------------------------------------------------------- crossbar adapters
# Keras class -> function(inner, kernel codes, input shape) -> (op, kernel size, strides, dilation, padding,
# pads, [rows, cols] code matrix).
def _dense(inner, kernel, in_shape):
    return "dense", (), (), (), "valid", (), kernel


def _conv_geometry(inner, in_shape):
    name = inner.name
    if getattr(inner, "data_format", "channels_last") != "channels_last":
        raise ExportError(f"layer {name!r} uses data_format={inner.data_format!r}; the mapping needs "
                          "channels_last. Fix: build the model channels_last.")
    if getattr(inner, "groups", 1) != 1:
        raise ExportError(f"layer {name!r} has groups={inner.groups}; grouped convolutions are not mapped. "
                          "Fix: use groups=1.")
    if inner.padding not in ("valid", "same"):
        raise ExportError(f"layer {name!r} has padding={inner.padding!r}; the mapping supports 'valid' and "
                          "'same'. Fix: pad explicitly with ZeroPadding1D.")
    ksize = tuple(int(k) for k in inner.kernel_size)
    strides = tuple(int(s) for s in inner.strides)
    dilation = tuple(int(d) for d in inner.dilation_rate)
    pads = tuple(same_pads(in_shape[a], ksize[a], strides[a], dilation[a]) if inner.padding == "same" else (0, 0)
                 for a in range(len(ksize)))
    return ksize, strides, dilation, inner.padding, pads


def _conv(inner, kernel, in_shape):
    op = "conv1d" if isinstance(inner, keras.layers.Conv1D) else "conv2d"
    return (op, *_conv_geometry(inner, in_shape), kernel.reshape(-1, kernel.shape[-1]))


def _depthwise_conv(inner, kernel, in_shape):
    kh, kw, cin, mult = kernel.shape
    matrix = np.zeros((kh * kw * cin, cin * mult), np.int32)  # block-diagonal: one block per input channel
    for c in range(cin):
        matrix[np.arange(kh * kw) * cin + c, c * mult:(c + 1) * mult] = kernel[:, :, c, :].reshape(kh * kw, mult)
    return ("depthwise_conv2d", *_conv_geometry(inner, in_shape), matrix)


CROSSBAR_ADAPTERS = {
    keras.layers.Dense: _dense,
    keras.layers.Conv1D: _conv,
    keras.layers.Conv2D: _conv,
    keras.layers.DepthwiseConv2D: _depthwise_conv,
}
"""Keras crossbar layer class -> adapter (found through the class's MRO, most specific first)."""


def find_adapter(table: dict[type, Any], inner: Any) -> Any:
    """The adapter of ``inner``'s class in ``table`` (through its MRO, most specific first), or None."""
    return next((table[cls] for cls in type(inner).__mro__ if cls in table), None)


# ----------------------------------------------------------------- digital adapters
# Keras class -> function(inner, input shapes, output shape, fail) -> (op name, params, arrays); `fail(why)`
# raises the ExportError of an unsupported option. Op names are entries of tf_nvm.mapping.ops.DIGITAL_OPS.
def _batch_norm(inner, in_shapes, out_shape, fail):
    if not isinstance(inner, NVMBatchNormalization):
        fail("a plain BatchNormalization is not exact on the integer grid; quantize_model turns it into "
             "NVMBatchNormalization (re-quantize the float model with this tf_nvm)")
    affine = inner.digital_affine()
    return "batch_norm", {"channels": int(in_shapes[0][-1])}, {key: affine[key] for key in
                                                              ("multiplier", "offset", "scale")}


def _relu(inner, in_shapes, out_shape, fail):
    if inner.max_value is not None or float(inner.negative_slope) != 0 or float(inner.threshold) != 0:
        fail("only a plain ReLU (no max_value, negative_slope or threshold) is mapped")
    return "relu", {}, {}


def _activation(inner, in_shapes, out_shape, fail):
    ops = {"relu": ("relu", {}), "linear": ("identity", {}), "softmax": ("softmax", {"axis": -1})}
    act = activation_name(inner)
    if act not in ops:
        fail(f"activation {act!r} is not mapped (relu, linear, softmax are)")
    return (*ops[act], {})


def _example_axis(axis, rank, fail):
    """A Keras axis (batch axis counted) -> an axis of one example of ``rank`` axes (negative axes unchanged)."""
    if axis >= 0:
        if axis == 0:
            fail("an operation along the batch axis is not mapped")
        return axis - 1
    return axis if axis >= -rank else fail(f"axis {axis} is out of range")


def _softmax(inner, in_shapes, out_shape, fail):
    axis = _example_axis(int(inner.axis), len(out_shape), fail) if np.ndim(inner.axis) == 0 else -1
    return "softmax", {"axis": axis}, {}


def _rescale(inner, in_shapes, out_shape, fail):
    scale, offset = np.asarray(inner.scale, np.float64), np.asarray(inner.offset, np.float64)
    if scale.size != 1 or offset.size != 1:
        fail("only scalar scale/offset are mapped")
    return "rescale", {"scale": float(scale), "offset": float(offset)}, {}


def _global_pool(inner, in_shapes, out_shape, fail):
    if getattr(inner, "keepdims", False) or inner.data_format != "channels_last":
        fail("only channels_last without keepdims is mapped")
    axes = list(range(len(in_shapes[0]) - 1))
    if isinstance(inner, (keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D)):
        return "global_max_pool", {"axes": axes}, {}
    return "global_average_pool", {"axes": axes, "count": math.prod(in_shapes[0][a] for a in axes)}, {}


def _pool(inner, in_shapes, out_shape, fail):
    if inner.data_format != "channels_last":
        fail("only channels_last is mapped")
    op = "max_pool" if isinstance(inner, (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D)) else "average_pool"
    if op == "average_pool" and not isinstance(inner, (NVMAveragePooling1D, NVMAveragePooling2D)):
        fail("a plain AveragePooling is not exact on the integer grid; quantize_model turns it into "
             "NVMAveragePooling1D/2D (re-quantize the float model with this tf_nvm)")
    pool = [int(p) for p in np.atleast_1d(inner.pool_size)]
    strides = [int(s) for s in np.atleast_1d(inner.strides)]
    return op, {"pool_size": pool, "strides": strides, "padding": inner.padding}, {}


def _concatenate(inner, in_shapes, out_shape, fail):
    return "concatenate", {"axis": _example_axis(int(inner.axis) % (len(out_shape) + 1), len(out_shape), fail)}, {}


def _zero_pad(inner, in_shapes, out_shape, fail):
    padding = inner.padding
    pads = [list(padding)] if isinstance(inner, keras.layers.ZeroPadding1D) else [list(p) for p in padding]
    return "zero_pad", {"pads": [[int(a), int(b)] for a, b in pads]}, {}


def _crop(inner, in_shapes, out_shape, fail):
    cropping = inner.cropping
    crops = [list(cropping)] if isinstance(inner, keras.layers.Cropping1D) else [list(c) for c in cropping]
    return "crop", {"crops": [[int(a), int(b)] for a, b in crops]}, {}


def _transpose(inner, in_shapes, out_shape, fail):
    return "transpose", {"perm": [int(d) - 1 for d in inner.dims]}, {}


def _fixed(op):
    return lambda inner, in_shapes, out_shape, fail: (op, {}, {})


_L = keras.layers
DIGITAL_ADAPTERS = {
    _L.BatchNormalization: _batch_norm,
    _L.ReLU: _relu,
    _L.Activation: _activation,
    _L.Softmax: _softmax,
    _L.Rescaling: _rescale,
    _L.GlobalAveragePooling1D: _global_pool,
    _L.GlobalAveragePooling2D: _global_pool,
    _L.GlobalMaxPooling1D: _global_pool,
    _L.GlobalMaxPooling2D: _global_pool,
    _L.MaxPooling1D: _pool,
    _L.MaxPooling2D: _pool,
    _L.AveragePooling1D: _pool,
    _L.AveragePooling2D: _pool,
    _L.Flatten: _fixed("flatten"),
    _L.Reshape: _fixed("reshape"),
    _L.Dropout: _fixed("identity"),
    _L.SpatialDropout1D: _fixed("identity"),
    _L.SpatialDropout2D: _fixed("identity"),
    _L.Concatenate: _concatenate,
    _L.Add: _fixed("add"),
    _L.Subtract: _fixed("subtract"),
    _L.Permute: _transpose,
    _L.Cropping1D: _crop,
    _L.Cropping2D: _crop,
    _L.ZeroPadding1D: _zero_pad,
    _L.ZeroPadding2D: _zero_pad,
}
"""Keras layer class -> digital adapter (found through the class's MRO, most specific first). A user's own class
registered with ``tf_nvm.keras.quantize_configs.register_layer(..., adapter=...)`` uses its table entry's adapter."""


