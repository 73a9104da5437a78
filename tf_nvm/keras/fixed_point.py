"""TFLite Micro's fixed-point requantization, in Python and as int64 TensorFlow ops.

TFLite Micro (and LiteRT's reference kernels, bit-identical to it) rescale an
int32 accumulator ``acc`` by a real factor ``M`` (for a crossbar layer
``M = input_scale * weight_scale / output_scale``) in gemmlowp style, with TWO
roundings. `quantize_multiplier` turns the float64 factor into a 31-bit
fixed-point multiplier ``M0`` and a power-of-two exponent ``shift``::

    frac, shift = frexp(M)                     # M = frac * 2^shift, frac in [0.5, 1)
    M0 = round_half_away(frac * 2^31)          # 2^30 <= M0 <= 2^31
    if M0 == 2^31: M0 = 2^30; shift += 1
    if shift < -31: M0 = 0; shift = 0          # M too small: everything becomes 0
    if shift > 30:  M0 = 2^31 - 1; shift = 30

`multiply_by_quantized_multiplier` then computes (integer maths, C++ semantics)::

    left  = max(shift, 0);  right = max(-shift, 0)
    a     = acc * 2^left
    # SaturatingRoundingDoublingHighMul(a, M0): rounding 1 (ties up: 2.5 -> 3, -2.5 -> -2)
    p     = a * M0                                            # exact in int64
    nudge = 2^30 if p >= 0 else 1 - 2^30
    h     = trunc((p + nudge) / 2^31)                         # C++ '/' truncates toward 0
    # RoundingDivideByPOT(h, right): rounding 2 (ties away from zero: -1.5 -> -2)
    mask  = 2^right - 1
    rem   = h & mask
    thr   = (mask >> 1) + (1 if h < 0 else 0)
    out   = (h >> right) + (1 if rem > thr else 0)            # '>>' arithmetic

LiteRT's default (XNNPACK) kernels round ``float32(acc) * M`` once, ties to
even, instead; the two agree except within about one part in 2^31 of a
half-way point, which the two roundings can move by one level.

LiteRT's reference resolver computes FULLY_CONNECTED differently (measured:
TFLite Micro and the reference CONV_2D / DEPTHWISE_CONV_2D / MEAN agree with
the two roundings above, the reference FULLY_CONNECTED does not): one rounding
of the 64-bit product, ties up (`multiply_by_quantized_multiplier_single_rounding`)::

    total = 31 - shift
    out   = (acc * M0 + 2^(total - 1)) >> total                  # '>>' arithmetic (floor)

`mean_multiplier` is the multiplier the int8 MEAN kernel (TFLite's
``reference_ops::QuantizedMeanOrSum``, used by TFLite Micro) folds ``1/n`` into::

    M0, shift = quantize_multiplier(input_scale / output_scale)
    extra     = min(floor(log2(n)), 32, 31 + shift)
    M0_n      = (M0 * 2^extra) // n                # integer division (both positive)
    mean      = MultiplyByQuantizedMultiplier(sum(q) - n * zp_in, M0_n, shift - extra) + zp_out
"""

import math

import numpy as np

from tf_nvm.keras.backend import tf
from tf_nvm.core.errors import SpecError

__all__ = ["quantize_multiplier", "mean_multiplier", "multiply_by_quantized_multiplier",
           "multiply_by_quantized_multiplier_single_rounding",
           "float32_multiplier_parts", "INT32_MAX"]

INT32_MAX = 2 ** 31 - 1


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: a float64 factor as (31-bit multiplier, shift).

    Args:
        real_multiplier: float (float64), >= 0.

    Returns:
        ``(M0, shift)`` Python ints with ``real_multiplier ~= M0 * 2^(shift - 31)``.
    """
    real_multiplier = float(real_multiplier)
    if real_multiplier < 0:
        raise SpecError(f"quantize_multiplier: real_multiplier must be >= 0, got {real_multiplier!r}. Fix: pass a "
                        "non-negative scale ratio.")
    if real_multiplier == 0.0:
        return 0, 0
    frac, shift = math.frexp(real_multiplier)
    fixed = math.floor(frac * 2.0 ** 31 + 0.5)  # std::round (frac > 0; frac * 2^31 + 0.5 is exact in float64)
    if fixed == 2 ** 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return int(fixed), int(shift)


def mean_multiplier(count: int, scale_ratio: float = 1.0) -> tuple[int, int]:
    """(M0, shift) with which the int8 MEAN kernel rescales a sum of ``count`` codes.

    Args:
        count: number of elements averaged (n > 0).
        scale_ratio: input_scale / output_scale (float64); 1 on the shared grid.

    Returns:
        ``(M0_n, shift_n)``: ``mean = multiply_by_quantized_multiplier(sum, M0_n, shift_n)``.
    """
    fixed, shift = quantize_multiplier(scale_ratio)
    extra = min(int(count).bit_length() - 1, 32, 31 + shift)
    return (fixed << extra) // int(count), shift - extra


def float32_multiplier_parts(scale: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`quantize_multiplier` of positive normal float32 values, as int64 tensors (exact, per element).

    For a float32 ``u = (1 + m / 2^23) * 2^(E - 127)`` the fraction ``frac = (2^23 + m) / 2^24``
    times 2^31 is the integer ``(2^23 + m) * 2^7``: no rounding, so ``M0 = (2^23 + m) << 7`` and
    ``shift = E - 126`` (the clamps of `quantize_multiplier` applied).

    Args:
        scale: float32 tensor of positive normal numbers (any shape).

    Returns:
        ``(M0, shift)`` int64 tensors of the same shape.
    """
    bits = tf.cast(tf.bitcast(tf.cast(scale, tf.float32), tf.int32), tf.int64)
    mantissa = tf.bitwise.bitwise_and(bits, 0x7FFFFF) + (1 << 23)
    fixed = tf.bitwise.left_shift(mantissa, tf.constant(7, tf.int64))
    shift = tf.bitwise.right_shift(bits, tf.constant(23, tf.int64)) - 126
    small = shift < -31
    big = shift > 30
    fixed = tf.where(small, tf.zeros_like(fixed), tf.where(big, tf.ones_like(fixed) * INT32_MAX, fixed))
    shift = tf.where(small, tf.zeros_like(shift), tf.where(big, tf.ones_like(shift) * 30, shift))
    return fixed, shift


def multiply_by_quantized_multiplier(acc: tf.Tensor, multiplier: int | tf.Tensor, shift: int | tf.Tensor) -> tf.Tensor:
    """TFLite's ``MultiplyByQuantizedMultiplier`` (two roundings) as int64 TensorFlow ops.

    Args:
        acc: integer tensor (the int32 accumulator; any integer or integer-valued dtype castable
            to int64).
        multiplier: M0 (Python int or int64 tensor broadcasting against ``acc``, e.g. one per channel).
        shift: exponent (Python int or int64 tensor, same broadcasting).

    Returns:
        int64 tensor, see the module docstring.
    """
    acc = tf.cast(acc, tf.int64)
    multiplier = tf.cast(multiplier, tf.int64)
    shift = tf.cast(shift, tf.int64)
    zero = tf.constant(0, tf.int64)
    one = tf.constant(1, tf.int64)
    left = tf.maximum(shift, zero)
    right = tf.maximum(-shift, zero)
    a = acc * tf.bitwise.left_shift(one, left)
    product = a * multiplier
    nudge = tf.where(product >= 0, tf.constant(1 << 30, tf.int64), tf.constant(1 - (1 << 30), tf.int64))
    high = tf.truncatediv(product + nudge, tf.constant(1 << 31, tf.int64))
    mask = tf.bitwise.left_shift(one, right) - one
    remainder = tf.bitwise.bitwise_and(high, mask)
    threshold = tf.bitwise.right_shift(mask, one) + tf.cast(high < 0, tf.int64)
    return tf.bitwise.right_shift(high, right) + tf.cast(remainder > threshold, tf.int64)


def multiply_by_quantized_multiplier_single_rounding(acc: tf.Tensor, multiplier: int, shift: int) -> tf.Tensor:
    """``(acc * M0 + 2^(30 - shift)) >> (31 - shift)``: one rounding, ties up (LiteRT's reference FULLY_CONNECTED).

    Args:
        acc: integer tensor (the int32 accumulator).
        multiplier: M0 (Python int, from `quantize_multiplier`).
        shift: exponent (Python int, ``shift <= 30``).

    Returns:
        int64 tensor.
    """
    total = 31 - int(shift)
    product = tf.cast(acc, tf.int64) * tf.constant(int(multiplier), tf.int64)
    return tf.bitwise.right_shift(product + tf.constant(1 << (total - 1), tf.int64), tf.constant(total, tf.int64))


def _numpy_reference(acc: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """Plain-Python version of `multiply_by_quantized_multiplier` (tests)."""
    out = []
    for x in np.asarray(acc, np.int64).ravel().tolist():
        left, right = max(shift, 0), max(-shift, 0)
        p = x * (1 << left) * multiplier
        n = p + ((1 << 30) if p >= 0 else 1 - (1 << 30))
        h = abs(n) // (1 << 31) * (1 if n >= 0 else -1)
        mask = (1 << right) - 1
        out.append((h >> right) + (1 if (h & mask) > (mask >> 1) + (1 if h < 0 else 0) else 0))
    return np.asarray(out, np.int64).reshape(np.shape(acc))
