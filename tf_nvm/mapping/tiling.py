"""Tiling: a layer's weight matrix split onto ``spec.rows x spec.cols`` crossbars; convolution geometry.

Numpy-free integer arithmetic on Python ints (mapping-format layer).
"""

import math

from tf_nvm.errors import MappingError
from tf_nvm.mapping.device import reference_columns
from tf_nvm.mapping.types import Tile

__all__ = ["outputs_per_tile", "plan_tiles", "tile_count", "MAX_TILES", "same_pads", "window_output_size"]


def outputs_per_tile(spec):
    """Weight columns (outputs) one crossbar holds: ``cols`` / devices per weight, less a reference column.

    Raises:
        MappingError: the crossbar is too narrow for even one output.
    """
    reference = reference_columns(spec)
    count = (spec.cols - reference) // spec.devices_per_weight
    if count < 1:
        raise MappingError(
            f"spec.cols={spec.cols} is too small for one output with the {spec.mapping_kind} mapping "
            f"({spec.devices_per_weight} device column(s) per weight + {reference} reference column). "
            "Fix: use a crossbar with more columns.")
    return count


MAX_TILES = 1 << 16
"""Most crossbars one layer may use (65,536): bounds what a small mapping file can make a reader build."""


def tile_count(rows, cols, spec):
    """Crossbars a ``rows x cols`` weight matrix needs: ``ceil(rows / spec.rows) * ceil(cols / outputs per tile)``."""
    return -(-rows // spec.rows) * -(-cols // outputs_per_tile(spec))


def plan_tiles(rows, cols, spec):
    """Splits a ``rows x cols`` weight matrix onto ``spec.rows x spec.cols`` crossbars.

    Args:
        rows: weight rows (im2col rows).
        cols: weight columns (outputs).
        spec: `NVMSpec`.

    Returns:
        tuple of `Tile`, row-major: ``ceil(rows/spec.rows) * ceil(cols/outputs_per_tile)``.

    Raises:
        MappingError: more than `MAX_TILES` crossbars.
    """
    count = tile_count(rows, cols, spec)
    if count > MAX_TILES:
        raise MappingError(f"a {rows} x {cols} weight matrix needs {count} crossbars of {spec.rows} x {spec.cols}, "
                           f"more than the {MAX_TILES} a layer may use. Fix: use larger crossbars (spec.rows/cols).")
    per_tile = outputs_per_tile(spec)
    reference = reference_columns(spec)
    tiles = []
    for r in range(math.ceil(rows / spec.rows)):
        for c in range(math.ceil(cols / per_tile)):
            r0, r1 = r * spec.rows, min(rows, (r + 1) * spec.rows)
            c0, c1 = c * per_tile, min(cols, (c + 1) * per_tile)
            device_cols = (c1 - c0) * spec.devices_per_weight + reference
            tiles.append(Tile(len(tiles), r, c, r0, r1, c0, c1, device_cols, (r1 - r0) / spec.rows,
                              device_cols / spec.cols))
    return tuple(tiles)


def same_pads(size, kernel, stride, dilation=1):
    """``(before, after)`` zero padding of Keras ``padding="same"`` on one spatial axis.

    Args:
        size: input size on the axis.
        kernel: kernel (or pool window) size.
        stride: stride.
        dilation: dilation (1 for pooling).

    Returns:
        (int, int): the output has ``ceil(size / stride)`` positions.
    """
    span = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return (total // 2, total - total // 2)


def window_output_size(size, kernel, stride, dilation=1):
    """Positions of a sliding window on an (already padded) axis of ``size``: 0 when the window does not fit."""
    span = (kernel - 1) * dilation + 1
    return (size - span) // stride + 1 if size >= span else 0
