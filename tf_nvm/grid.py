"""The shared int8 activation grid, in numpy: float values <-> int8 codes.

Every activation of an NVM model lies on ``x = q * step`` with ``q`` in
-128..127 and ``step = A/128`` (the spec's activation step); rounding is half
to even, as the runtimes' kernels and the NVM quantizers round. This module is
the one place that turns floats into those codes outside TensorFlow (the
mapping's input encoding, the reference evaluator, the TFLite comparisons).

Numpy only (foundation layer).
"""

import numpy as np

__all__ = ["INT8_MIN", "INT8_MAX", "to_int8", "rint_clip"]

INT8_MIN = -128
INT8_MAX = 127


def to_int8(x, scale, zero_point=0):
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


def rint_clip(values):
    """Values in grid units -> int64 codes: ``clip(round_half_even(values), -128, 127)``.

    Args:
        values: float array in grid units (already divided by the step).

    Returns:
        int64 array.
    """
    return np.clip(np.rint(values), INT8_MIN, INT8_MAX).astype(np.int64)
