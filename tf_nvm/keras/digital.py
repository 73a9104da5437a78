"""Digital-periphery layers whose inference is bit-exact in TFLite.

`tf_nvm.quantize_model` swaps BatchNormalization for `NVMBatchNormalization`,
GlobalAveragePooling1D/2D for `NVMGlobalAveragePooling1D`/`2D` and
AveragePooling1D/2D for `NVMAveragePooling1D`/`2D` (`average_pool_codes`), the
``replace_with`` of each class's entry in `tf_nvm.keras.quantize_configs.LAYER_RULES`: same
arguments, same weights, same training behaviour; at inference they compute
what LiteRT's default (XNNPACK) int8 kernels compute, so that the exported
``.tflite`` reproduces the Keras model exactly.

Global average pooling: the runtime sums the int8 codes exactly and multiplies
the sum by ``float32(1/n)`` (one float32 product), then rounds half to even;
``reduce_mean`` divides instead, which rounds differently when ``sum/n`` is
exactly halfway between two levels (n = 14, 26, 30, ...: up to 2 % of the
outputs). The NVM layers compute ``reduce_sum(x) * float32(1/n)``. In
`tf_nvm.core.modes.emulate_runtime` ``("tflm")`` they compute TFLite Micro's int8
MEAN instead (``reference_ops::QuantizedMeanOrSum``; input and output scale
equal, zero points 0)::

    M0, shift = QuantizeMultiplier(1.0)           # (2^30, 1)
    extra     = min(floor(log2(n)), 32, 31 + shift)
    mean_code = MultiplyByQuantizedMultiplier(sum(q), (M0 * 2^extra) // n, shift - extra)

which needs the grid step (``spec``, set by `tf_nvm.quantize_model`). Measured
exact against TFLite Micro for GlobalAveragePooling1D (MEAN over one axis,
``keepdims=False``); TFLite Micro takes another integer path for a 4-D mean over
axes 1 and 2 with ``keepdims=True``, which is not emulated.

BatchNormalization:

A BatchNormalization kept as a digital step after the ADC computes, at
inference, one affine per channel ``y = inv_c * x + off_c`` with
``inv_c = gamma_c / sqrt(var_c + eps)`` and ``off_c = beta_c - mean_c * inv_c``.
Converted as it is, TFLite turns it into MUL + ADD with int8 per-tensor constants
and an intermediate tensor with its own calibrated scale: two roundings that the
Keras model does not make (stack notes: 91.4 % vs 91.8 %).

This layer instead computes, at inference, exactly what an int8 runtime computes
for a 1x1 depthwise convolution with per-channel int8 weights::

    u_c = |inv_c| / 127 rounded up to 17 significant bits, lowest bit set
          (larger if needed so that |k_c| <= 2^22)          # per-channel scale
    m_c = round(inv_c / u_c)          # int8 weight, |m_c| <= 127
    k_c = round(off_c / (u_c * step)) # int32 bias, |k_c| <= 2^22   (step = A/128)
    acc = q * m_c + k_c               # exact integer, q the int8 input code
    v   = float32(acc) * u_c          # one float32 rounding, in grid units
    y   = v * step                    # then rounded to the grid, ties to even

For TFLite (inside `tf_nvm.core.modes.converter_graph`) the layer emits that
depthwise convolution: weights ``m_c * u_c`` in a per-channel fake-quant over
``[-127 u_c, 127 u_c]`` (stored: int8 ``m_c``, scale ``u_c``, zero point 0; both
exact because ``127 u_c`` fits a float32 mantissa) and bias ``k_c u_c step``
(stored: int32 ``k_c``). LiteRT's default (XNNPACK) kernels compute
``float32(acc) * u_c`` and round to nearest even: the same numbers. Because
``u_c`` has an odd 17-bit mantissa, ``acc * u_c`` never lies exactly halfway
between two grid levels (for |acc| < 2^21), so the rounding mode of ties does
not matter and TFLite Micro's fixed-point requantization differs only by its
double rounding (at most 1 LSB, unbiased).

In `tf_nvm.core.modes.emulate_runtime` ``("tflm")`` the layer computes what
TFLite Micro's reference DEPTHWISE_CONV_2D computes instead: the per-channel
factor is ``input_scale * u_c / output_scale = u_c`` exactly, whose
``QuantizeMultiplier`` needs no rounding (``u_c`` is a normal float32:
``M0_c = (2^23 + mantissa_c) * 2^7``, ``shift_c = exponent_c - 126``), and::

    y_code = clip(MultiplyByQuantizedMultiplier(acc, M0_c, shift_c), -128, 127)

(`tf_nvm.keras.fixed_point`: a rounding doubling high multiply, ties up, then a
rounding right shift, ties away from zero).

Usually ``m_c = +-127`` and ``m_c u_c`` equals ``inv_c`` within a relative
2^-15 (a coarser ``u_c`` only when a huge offset forces it); ``off_c`` is
rounded to ``u_c * step``. Training (batch statistics) is the plain Keras
BatchNormalization.
"""

from typing import Any

import numpy as np

from tf_nvm.keras.backend import keras, smart_cond, tf
from tf_nvm.core.errors import UnsupportedLayerError
from tf_nvm.keras.fixed_point import (
    float32_multiplier_parts,
    mean_multiplier,
    multiply_by_quantized_multiplier,
)
from tf_nvm.core.modes import in_converter_graph, runtime_for
from tf_nvm.keras.serialization import register
from tf_nvm.core.spec import NVMSpec, resolve_spec

__all__ = ["NVMBatchNormalization", "NVMGlobalAveragePooling1D", "NVMGlobalAveragePooling2D", "NVMAveragePooling1D",
           "NVMAveragePooling2D", "average_pool_codes", "MULTIPLIER_MAX",
           "OFFSET_MAX", "SCALE_BITS"]

MULTIPLIER_MAX = 127
"""Largest |m_c|: the per-channel multiplier is an int8 weight with zero point 0."""

OFFSET_MAX = 2 ** 22
"""Largest |k_c|: keeps ``q * m_c + k_c`` exact in float32 (24-bit mantissa) and the bias exact in TFLite."""

SCALE_BITS = 17
"""Significant bits of the per-channel scale u_c (so that 127 u_c is exact in float32)."""

_DROP = 24 - SCALE_BITS  # low mantissa bits of a float32 cleared in u_c


def _snap_scale(magnitude: tf.Tensor) -> tf.Tensor:
    """The smallest float32 >= magnitude with a 17-bit mantissa whose lowest bit is set (exact bit operations)."""
    bits = tf.bitcast(tf.cast(magnitude, tf.float32), tf.int32)
    step = 1 << _DROP
    bits = tf.bitwise.left_shift(tf.bitwise.right_shift(bits + (step - 1), _DROP), _DROP)  # round up
    bits = tf.bitwise.bitwise_or(bits, step)  # odd 17-bit mantissa: acc * u is never a tie
    return tf.bitcast(bits, tf.float32)


@register
class NVMBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose inference affine is exact in TFLite.

    Same arguments as `keras.layers.BatchNormalization` plus ``spec``. Training
    (``training=True``) is unchanged; inference applies the snapped affine of the
    module docstring. `tf_nvm.quantize_model` swaps every BatchNormalization for
    this layer.

    Args:
        *args: BatchNormalization arguments.
        spec: `NVMSpec` (or its dict); its activation range gives the grid step of
            the offset.
        **kwargs: BatchNormalization keyword arguments (``axis`` must be the
            last axis).
    """

    def __init__(self, *args: Any, spec: NVMSpec | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if spec is None:
            raise UnsupportedLayerError(
                f"NVMBatchNormalization {self.name!r} needs spec=NVMSpec(...) (its activation range sets the "
                "offset grid). Fix: let tf_nvm.quantize_model create it, or pass spec=.")
        self.spec = resolve_spec(spec, owner=f"NVMBatchNormalization {self.name!r}")

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        rank = len(input_shape)
        if list(self.axis) != [rank - 1]:
            raise UnsupportedLayerError(
                f"BatchNormalization {self.name!r} normalises axis {list(self.axis)} of a rank-{rank} input; "
                "tf_nvm maps a digital BatchNorm only over the last (channel) axis. Fix: use axis=-1.")

    def get_config(self):
        config = super().get_config()
        config["spec"] = self.spec.to_dict()
        return config

    # ------------------------------------------------------------- inference
    def _float_affine(self):
        inv = tf.math.rsqrt(self.moving_variance + self.epsilon)
        if self.scale:
            inv = inv * self.gamma
        off = -self.moving_mean * inv
        if self.center:
            off = off + self.beta
        return tf.cast(inv, tf.float32), tf.cast(off, tf.float32)

    def _snapped(self):
        """(m, u, k, inv, off) tensors of the inference affine (see module docstring)."""
        inv, off = self._float_affine()
        step = tf.constant(self.spec.activation_step, tf.float32)
        magnitude = tf.maximum(tf.maximum(tf.abs(inv) / MULTIPLIER_MAX, tf.abs(off) / (step * OFFSET_MAX)),
                               tf.constant(2.0 ** -100, tf.float32))
        unit = _snap_scale(magnitude)
        m = tf.clip_by_value(tf.round(inv / unit), -MULTIPLIER_MAX, MULTIPLIER_MAX)
        k = tf.clip_by_value(tf.round(off / (unit * step)), -OFFSET_MAX, OFFSET_MAX)
        return m, unit, k, inv, off

    def digital_affine(self) -> dict[str, np.ndarray]:
        """The inference affine as integers and one float32 scale per channel, evaluated now.

        Returns:
            dict of numpy arrays, one value per channel: ``multiplier`` (int32
            m_c, |m_c| <= 127), ``offset`` (int32 k_c, |k_c| <= 2^22),
            ``scale`` (float32 u_c > 0), with, for an input code q,
            ``y_code = round_half_even(float32(q * m_c + k_c) * u_c)``; and
            ``float_scale`` / ``float_offset`` (float32 inv_c, off_c before
            snapping, model units).
        """
        with tf.init_scope():
            m, u, k, inv, off = self._snapped()
            return {"multiplier": m.numpy().astype(np.int32), "offset": k.numpy().astype(np.int32),
                    "scale": u.numpy().astype(np.float32), "float_scale": inv.numpy(),
                    "float_offset": off.numpy()}

    def _inference(self, inputs):
        inputs = tf.cast(inputs, tf.float32)
        if in_converter_graph():
            return self._depthwise(inputs)
        m, unit, k, inv, off = self._snapped()
        step = tf.constant(self.spec.activation_step, tf.float32)
        acc = tf.stop_gradient(tf.round(inputs / step)) * m + k  # exact integers in float32
        if runtime_for(self.spec) != "litert":
            fixed, shift = float32_multiplier_parts(unit)
            codes = tf.clip_by_value(multiply_by_quantized_multiplier(acc, fixed, shift), -128, 127)
            exact = tf.cast(codes, tf.float32) * step
        else:
            exact = acc * unit * step
        linear = inputs * inv + off
        return exact + (linear - tf.stop_gradient(linear))  # forward value: exactly `exact`

    def _depthwise(self, inputs):
        """The converter's graph: a 1x1 depthwise conv with per-channel int8 weights."""
        affine = self.digital_affine()
        channels = affine["multiplier"].shape[0]
        unit = affine["scale"]
        weights = tf.constant((affine["multiplier"] * unit).astype(np.float32).reshape(1, 1, 1, channels))
        weights = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            weights, min=tf.constant((-MULTIPLIER_MAX * unit).astype(np.float32)),
            max=tf.constant((MULTIPLIER_MAX * unit).astype(np.float32)), num_bits=8, narrow_range=True)
        weights = tf.reshape(weights, (1, 1, channels, 1))
        bias = tf.constant((affine["offset"].astype(np.float32) * unit * np.float32(self.spec.activation_step))
                           .astype(np.float32))
        inner = list(inputs.shape[1:-1])
        length = int(np.prod(inner)) if inner else 1
        x = tf.reshape(inputs, (-1, 1, length, channels))
        y = tf.nn.bias_add(tf.nn.depthwise_conv2d(x, weights, (1, 1, 1, 1), "VALID"), bias)
        return tf.reshape(y, [-1] + inner + [channels])

    def call(self, inputs: tf.Tensor, training: Any = None, mask: Any = None) -> tf.Tensor:
        training = self._get_training_value(training)
        train = super().call  # bound here: zero-argument super() does not work inside the lambdas

        return smart_cond(
            training, lambda: train(inputs, training=True, mask=mask), lambda: self._inference(inputs))


class _ExactMean:
    """Mixin: global average pooling as ``sum * float32(1/n)``, the runtime's arithmetic.

    Args:
        *args: the Keras pooling layer's arguments.
        spec: `NVMSpec` (or its dict), or None; needed only by `emulate_runtime("tflm")`.
        **kwargs: the Keras pooling layer's keyword arguments.
    """

    def __init__(self, *args, spec=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = None if spec is None else resolve_spec(spec, owner=type(self).__name__)

    def get_config(self):
        config = super().get_config()
        if self.spec is not None:
            config["spec"] = self.spec.to_dict()
        return config

    def call(self, inputs, mask=None):
        if in_converter_graph() or mask is not None:
            return super().call(inputs, mask=mask) if mask is not None else super().call(inputs)
        rank = len(inputs.shape)
        spatial = list(range(1, rank - 1)) if self.data_format == "channels_last" else list(range(2, rank))
        count = int(np.prod([inputs.shape[a] for a in spatial]))
        total = tf.reduce_sum(tf.cast(inputs, tf.float32), axis=spatial, keepdims=self.keepdims)
        if runtime_for(self.spec) != "litert":
            if self.spec is None:
                raise UnsupportedLayerError(
                    f"{type(self).__name__} {self.name!r} has no spec, so emulate_runtime('tflm') cannot put its "
                    "inputs on the integer grid. Fix: quantize the float model again with this tf_nvm "
                    "(quantize_model passes spec=) and copy the weights.")
            step = np.float32(self.spec.activation_step)
            fixed, shift = mean_multiplier(count)
            # The inputs lie on the grid (outputs of a quantizer): the sum of codes is an exact integer.
            codes = multiply_by_quantized_multiplier(tf.round(tf.stop_gradient(total) / step), fixed, shift)
            mean = total * (np.float32(1.0) / np.float32(count))
            exact = tf.cast(tf.clip_by_value(codes, -128, 127), tf.float32) * step
            return exact + (mean - tf.stop_gradient(mean))  # forward value `exact`, gradient of the mean
        inverse = np.float32(1.0) / np.float32(count)
        return total * inverse


@register
class NVMGlobalAveragePooling1D(_ExactMean, keras.layers.GlobalAveragePooling1D):
    """`keras.layers.GlobalAveragePooling1D` computed as ``sum * float32(1/n)`` (bit-exact in TFLite)."""


@register
class NVMGlobalAveragePooling2D(_ExactMean, keras.layers.GlobalAveragePooling2D):
    """`keras.layers.GlobalAveragePooling2D` computed as ``sum * float32(1/n)`` (bit-exact in TFLite)."""


def average_pool_codes(codes: tf.Tensor, pool_size: tuple[int, ...], strides: tuple[int, ...],
                       padding: str) -> tf.Tensor:
    """TFLite's int8 AVERAGE_POOL_2D on integer codes: window sum, then divide rounding half away from zero.

    LiteRT's builtin kernel and TFLite Micro's reference kernel (input and output
    on one scale, zero point 0) compute, per output position::

        acc  = sum of the codes in the window (only the valid ones with 'same' padding)
        n    = number of those codes
        code = (acc + (n // 2 if acc > 0 else -(n // 2))) / n     # C division: truncates toward 0

    i.e. ``sign(acc) * floor((|acc| + n // 2) / n)``: the mean rounded half away
    from zero. With 'same' padding the padded positions count neither in the sum nor
    in ``n`` (Keras's semantics too).

    Args:
        codes: float32 tensor of integer codes ``[N, *spatial, C]`` (1 or 2 spatial axes).
        pool_size: window size per spatial axis (tuple of ints).
        strides: stride per spatial axis.
        padding: ``"valid"`` or ``"same"``.

    Returns:
        float32 tensor of integer codes ``[N, *out_spatial, C]``.
    """
    one_d = len(pool_size) == 1
    if one_d:
        codes, pool_size, strides = tf.expand_dims(codes, 1), (1,) + tuple(pool_size), (1,) + tuple(strides)
    channels = int(codes.shape[-1])
    window = tf.ones(tuple(pool_size) + (channels, 1), tf.float32)
    stride4 = (1,) + tuple(strides) + (1,)
    # Sums of at most a few thousand int8 codes: exact in float32.
    total = tf.nn.depthwise_conv2d(codes, window, stride4, padding.upper())
    ones = tf.ones((1,) + tuple(codes.shape[1:3]) + (1,), tf.float32)
    count = tf.nn.depthwise_conv2d(ones, tf.ones(tuple(pool_size) + (1, 1), tf.float32), stride4, padding.upper())
    # Integer division: a float32 division may be compiled into a product with 1/n (grappler), which misrounds.
    total, count = tf.cast(total, tf.int32), tf.cast(count, tf.int32)
    result = tf.cast(tf.sign(total) * tf.math.floordiv(tf.abs(total) + count // 2, count), tf.float32)
    return result[:, 0] if one_d else result


class _ExactAveragePool:
    """Mixin: average pooling as TFLite's int8 AVERAGE_POOL_2D computes it (`average_pool_codes`).

    The forward value is the runtime's (LiteRT and TFLite Micro agree: both round the
    window mean half away from zero), the gradient that of the plain average. Needs
    the grid step (``spec``, set by `tf_nvm.quantize_model`).

    Args:
        *args: the Keras pooling layer's arguments.
        spec: `NVMSpec` (or its dict).
        **kwargs: the Keras pooling layer's keyword arguments.
    """

    def __init__(self, *args, spec=None, **kwargs):
        super().__init__(*args, **kwargs)
        if spec is None:
            raise UnsupportedLayerError(
                f"{type(self).__name__} {self.name!r} needs spec=NVMSpec(...) (its activation range gives the "
                "integer grid). Fix: let tf_nvm.quantize_model create it, or pass spec=.")
        self.spec = resolve_spec(spec, owner=type(self).__name__)
        if self.data_format != "channels_last":
            raise UnsupportedLayerError(
                f"{type(self).__name__} {self.name!r} has data_format={self.data_format!r}; tf_nvm maps average "
                "pooling only channels_last. Fix: build the model with data_format='channels_last'.")

    def get_config(self):
        config = super().get_config()
        config["spec"] = self.spec.to_dict()
        return config

    def call(self, inputs):
        mean = super().call(inputs)
        if in_converter_graph():
            return mean
        step = np.float32(self.spec.activation_step)
        codes = tf.round(tf.stop_gradient(tf.cast(inputs, tf.float32)) / step)  # the inputs lie on the grid
        pool = tuple(int(p) for p in np.atleast_1d(self.pool_size))
        strides = tuple(int(s) for s in np.atleast_1d(self.strides))
        exact = average_pool_codes(codes, pool, strides, self.padding) * step
        return exact + (mean - tf.stop_gradient(mean))  # forward value `exact`, gradient of the mean


@register
class NVMAveragePooling1D(_ExactAveragePool, keras.layers.AveragePooling1D):
    """`keras.layers.AveragePooling1D` with TFLite's int8 rounding (bit-exact in LiteRT and TFLite Micro)."""


@register
class NVMAveragePooling2D(_ExactAveragePool, keras.layers.AveragePooling2D):
    """`keras.layers.AveragePooling2D` with TFLite's int8 rounding (bit-exact in LiteRT and TFLite Micro)."""
