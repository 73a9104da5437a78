"""The shared int8 activation grid, in numpy: float values <-> int8 codes.

Every activation of an NVM model lies on ``x = q * step`` with ``q`` in
-128..127 and ``step = A/128`` (the spec's activation step); rounding is half
to even, as the runtimes' kernels and the NVM quantizers round. This module is
the one place that turns floats into those codes outside TensorFlow (the
mapping's input encoding, the reference evaluator, the TFLite comparisons).

It also holds THE rounding rule of the device codes (`to_codes`, `code_multiplier`): a
weight ``w`` has code ``clip(round_half_even(float32(w) * float32(1 / float32(s))))``, one
IEEE float32 product by the reciprocal of the shared scale ``s``, never a division. The NVM
weight and bias quantizers (TensorFlow), `tf_nvm.weight_codes` (and through it the TFLite
checks and the crossbar mapping) all use this rule, so they agree on every weight, ties
included. A product and not a quotient because TensorFlow itself does not divide by a
constant the same way in every mode (measured, TF 2.21 CPU): eager ``x / s`` is the IEEE
quotient, but in a ``tf.function`` graph and under XLA it is ``x * float32(1/float32(s))``
(bit for bit, on 200 random scales). The two differ by an ulp for some ``x``; where that
straddles a half-way point (within a few float32 ulps of ``(k + 1/2) s``, for about 4 of 5
random scales) they round to different codes: a trained MobileNetV1 (208k weights) had one
such weight, which the trained model and the converter (graph mode) read one way and a numpy
division the other. A product by a given float32 constant is the same number in numpy,
eager, graph and XLA.

Numpy only (foundation layer).
"""

from typing import Any

import numpy as np

__all__ = ["INT8_MIN", "INT8_MAX", "to_int8", "rint_clip", "code_multiplier", "to_codes"]

INT8_MIN = -128
INT8_MAX = 127


def to_int8(x: Any, scale: float, zero_point: int = 0) -> np.ndarray:
    """Float values -> int8 codes: ``clip(round_half_even(float32(x) / float32(scale)) + zero_point)``.

    Args:
        x: float array (model units).
        scale: grid step (model units per code), e.g. A/128.
        zero_point: integer zero point (0 on the shared grid).

    Returns:
        int8 array of ``x``'s shape.
    """
    q = np.rint(np.asarray(x, np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)


def rint_clip(values: Any) -> np.ndarray:
    """Values in grid units -> int64 codes: ``clip(round_half_even(values), -128, 127)``.

    Args:
        values: float array in grid units (already divided by the step).

    Returns:
        int64 array.
    """
    return np.clip(np.rint(values), INT8_MIN, INT8_MAX).astype(np.int64)


def code_multiplier(scale: float) -> np.float32:
    """``float32(1 / float32(scale))``: the one factor that turns values into codes of step ``scale``.

    Args:
        scale: code step (model units per code), e.g. the shared weight scale ``s`` or the bias step
            ``(A/128) * s``.

    Returns:
        numpy float32 scalar (the IEEE float32 quotient, correctly rounded).
    """
    return np.float32(1.0) / np.float32(scale)


def to_codes(values: Any, scale: float, code_min: int | None = None, code_max: int | None = None) -> np.ndarray:
    """Float values -> integer codes of step ``scale``, THE rounding rule of device codes.

    ``code = clip(round_half_even(float32(values) * code_multiplier(scale)), code_min, code_max)``:
    one float32 product, ties (a product exactly half-way between two integers) to the even
    code. `tf_nvm.keras.quantizers.snap_to_codes` computes the same numbers in TensorFlow (the
    module docstring says why a product and not a division).

    Args:
        values: float array (model units), e.g. a latent kernel or a bias.
        scale: code step (model units per code).
        code_min: lowest code, or None for no lower clip.
        code_max: highest code, or None for no upper clip.

    Returns:
        int32 array of ``values``' shape.
    """
    codes = np.rint(np.asarray(values, np.float32) * code_multiplier(scale))
    if code_min is not None or code_max is not None:
        codes = np.clip(codes, code_min, code_max)
    return codes.astype(np.int32)
