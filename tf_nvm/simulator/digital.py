"""The digital periphery in TensorFlow: one kernel per op of the mapping's digital-op table.

`KERNELS` maps every name of `tf_nvm.mapping.ops.DIGITAL_OPS` to a function
``(inputs, layer, spec) -> tensor`` on float32 tensors that hold integer codes
(batch axis first). Each kernel computes exactly what the op's numpy reference
computes (`tf_nvm.mapping.ops`), so an ideal simulation equals the exact
evaluator bit for bit; tests check every op against its reference.
"""

from typing import Any, Callable

import numpy as np

from tf_nvm.keras.backend import tf
from tf_nvm.core.errors import SimulatorError
from tf_nvm.core.spec import NVMSpec
from tf_nvm.mapping.ops import DIGITAL_OPS
from tf_nvm.mapping.types import DigitalLayer

__all__ = ["KERNELS", "rint_clip", "run_digital"]


def rint_clip(values: Any) -> Any:
    """Round half to even and clip to the int8 code range (float32 in, float32 integer codes out)."""
    return tf.clip_by_value(tf.round(values), -128.0, 127.0)


def _example_axis(axis):
    return axis + 1 if axis >= 0 else axis


def _batch_norm(inputs, layer, spec):
    arrays = layer.arrays
    acc = inputs[0] * arrays["multiplier"].astype(np.float32) + arrays["offset"].astype(np.float32)  # exact: < 2^24
    return rint_clip(acc * arrays["scale"].astype(np.float32))


def _relu(inputs, layer, spec):
    return tf.maximum(inputs[0], 0.0)


def _identity(inputs, layer, spec):
    return inputs[0]


def _rescale(inputs, layer, spec):
    # The reference multiplies int64 codes by a Python float: float64 arithmetic.
    value = tf.cast(inputs[0], tf.float64) * layer.params["scale"] + layer.params["offset"] / spec.activation_step
    return tf.cast(tf.clip_by_value(tf.round(value), -128.0, 127.0), tf.float32)


def _global_average_pool(inputs, layer, spec):
    axes = [1 + a for a in layer.params["axes"]]
    inverse = np.float32(1.0) / np.float32(layer.params["count"])
    return rint_clip(tf.reduce_sum(inputs[0], axis=axes) * inverse)  # exact sum (< 2^24), one float32 product


def _global_max_pool(inputs, layer, spec):
    return tf.reduce_max(inputs[0], axis=[1 + a for a in layer.params["axes"]])


def _max_pool(inputs, layer, spec):
    # tf.nn.pool has Keras's semantics ('same' windows ignore the padding), and max is exact: the native kernel
    # equals the table's windowed reference (`max_pool_windows`), which the tests check.
    params = layer.params
    return tf.nn.pool(inputs[0], window_shape=list(params["pool_size"]), pooling_type="MAX",
                      strides=list(params["strides"]), padding=params["padding"].upper())


def _average_pool(inputs, layer, spec):
    # Window sums and valid counts as depthwise convolutions with ones (exact: small integers in float32), then
    # TFLite's integer division rounding half away from zero (int32: a float division may become a product with
    # 1/n in a compiled graph and misround).
    params = layer.params
    q, pool, strides = inputs[0], list(params["pool_size"]), list(params["strides"])
    one_d = len(pool) == 1
    if one_d:
        q, pool, strides = tf.expand_dims(q, 1), [1] + pool, [1] + strides
    padding, stride4 = params["padding"].upper(), [1] + strides + [1]
    sums = tf.nn.depthwise_conv2d(q, tf.ones(pool + [int(q.shape[-1]), 1]), stride4, padding)
    counts = tf.nn.depthwise_conv2d(tf.ones([1] + list(q.shape[1:3]) + [1]), tf.ones(pool + [1, 1]), stride4, padding)
    sums, counts = tf.cast(sums, tf.int32), tf.cast(counts, tf.int32)
    out = tf.cast(tf.sign(sums) * tf.math.floordiv(tf.abs(sums) + counts // 2, counts), tf.float32)
    return out[:, 0] if one_d else out


def _reshape(inputs, layer, spec):
    return tf.reshape(inputs[0], [-1] + list(layer.output_shape))


def _concatenate(inputs, layer, spec):
    return tf.concat(inputs, axis=_example_axis(layer.params["axis"]))


def _add(inputs, layer, spec):
    return rint_clip(tf.add_n(inputs))


def _subtract(inputs, layer, spec):
    return rint_clip(inputs[0] - inputs[1])


def _transpose(inputs, layer, spec):
    return tf.transpose(inputs[0], [0] + [1 + a for a in layer.params["perm"]])


def _crop(inputs, layer, spec):
    q = inputs[0]
    return q[(slice(None),) + tuple(slice(a, q.shape[1 + i] - b) for i, (a, b) in enumerate(layer.params["crops"]))]


def _zero_pad(inputs, layer, spec):
    return tf.pad(inputs[0], [(0, 0)] + [tuple(p) for p in layer.params["pads"]] + [(0, 0)])


def _softmax(inputs, layer, spec):
    axis = _example_axis(layer.params["axis"])
    x = inputs[0] * np.float32(spec.activation_step)
    e = tf.exp(x - tf.reduce_max(x, axis=axis, keepdims=True))
    p = e / tf.reduce_sum(e, axis=axis, keepdims=True)
    return tf.clip_by_value(tf.floor(p * 256.0 + 0.5), 0.0, 255.0)


KERNELS: dict[str, Callable[[list[Any], DigitalLayer, NVMSpec], Any]] = {
    "batch_norm": _batch_norm,
    "relu": _relu,
    "identity": _identity,
    "rescale": _rescale,
    "global_average_pool": _global_average_pool,
    "global_max_pool": _global_max_pool,
    "max_pool": _max_pool,
    "average_pool": _average_pool,
    "flatten": _reshape,
    "reshape": _reshape,
    "concatenate": _concatenate,
    "add": _add,
    "zero_pad": _zero_pad,
    "subtract": _subtract,
    "transpose": _transpose,
    "crop": _crop,
    "softmax": _softmax,
}
"""Digital op name (`DIGITAL_OPS`) -> TensorFlow kernel."""


def run_digital(inputs: list[Any], layer: DigitalLayer, spec: NVMSpec) -> Any:
    """Runs one digital layer of a mapping.

    Raises:
        SimulatorError: the op has no TensorFlow kernel (a table entry added without one).
    """
    kernel = KERNELS.get(layer.op)
    if kernel is None:
        raise SimulatorError(f"digital op {layer.op!r} of layer {layer.name!r} has no simulator kernel; ops with "
                             f"kernels: {sorted(KERNELS)}; table: {DIGITAL_OPS.names()}. Fix: add a kernel to "
                             "tf_nvm.simulator.digital.KERNELS.")
    return kernel(inputs, layer, spec)
