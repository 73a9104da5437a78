"""Tiling: a layer's weight matrix split onto ``spec.rows x spec.cols`` crossbars; convolution geometry.

Two layouts. The *grid* (`plan_tiles`, the only layout of schema version 1): the whole
``rows x cols`` matrix cut into blocks of ``spec.rows`` rows and `outputs_per_tile` columns, every
block a crossbar. The *block-diagonal* layout of a depthwise layer (`plan_diagonal_tiles`, schema 2):
rows ordered channel-major (`channel_major_rows`), ``g`` channels per crossbar
(`depthwise_channels_per_tile`), and only the ``ceil(C / g)`` tiles on the diagonal exist; every
entry of the matrix outside them is a structural zero that no device holds.

Integer arithmetic on Python ints (mapping-format layer; numpy only for the row permutation).
"""

import math
from typing import Any

import numpy as np

from tf_nvm.core.errors import MappingError
from tf_nvm.core.spec import NVMSpec
from tf_nvm.mapping.device import reference_columns
from tf_nvm.mapping.types import Tile

__all__ = ["outputs_per_tile", "plan_tiles", "tile_count", "MAX_TILES", "same_pads", "window_output_size",
           "depthwise_channels_per_tile", "depthwise_layout", "plan_diagonal_tiles", "diagonal_tile_count",
           "layer_tiles", "channel_major_rows"]


def outputs_per_tile(spec: NVMSpec) -> int:
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


def tile_count(rows: int, cols: int, spec: NVMSpec) -> int:
    """Crossbars a ``rows x cols`` weight matrix needs: ``ceil(rows / spec.rows) * ceil(cols / outputs per tile)``."""
    return -(-rows // spec.rows) * -(-cols // outputs_per_tile(spec))


def plan_tiles(rows: int, cols: int, spec: NVMSpec) -> tuple[Tile, ...]:
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
    tiles: list[Tile] = []
    for r in range(math.ceil(rows / spec.rows)):
        for c in range(math.ceil(cols / per_tile)):
            r0, r1 = r * spec.rows, min(rows, (r + 1) * spec.rows)
            c0, c1 = c * per_tile, min(cols, (c + 1) * per_tile)
            device_cols = (c1 - c0) * spec.devices_per_weight + reference
            tiles.append(Tile(len(tiles), r, c, r0, r1, c0, c1, device_cols, (r1 - r0) / spec.rows,
                              device_cols / spec.cols))
    return tuple(tiles)


def depthwise_channels_per_tile(kernel_positions: int, multiplier: int, spec: NVMSpec) -> int:
    """Channels of a depthwise layer one crossbar holds in the block-diagonal layout (0: not even one fits).

    A channel needs ``kernel_positions`` rows (its taps) and ``multiplier`` outputs, so a
    ``spec.rows x spec.cols`` crossbar holds ``g = min(spec.rows // kernel_positions,
    outputs_per_tile(spec) // multiplier)`` channels (e.g. 3x3 taps, 128 rows: 14).

    Args:
        kernel_positions: ``prod(kernel_size)`` (k*k).
        multiplier: depth multiplier (outputs per input channel).
        spec: `NVMSpec`.

    Returns:
        int g >= 0; 0 when one channel's taps exceed ``spec.rows`` or its outputs a crossbar's columns.

    Raises:
        MappingError: the crossbar is too narrow for even one output (`outputs_per_tile`).
    """
    return min(spec.rows // kernel_positions, outputs_per_tile(spec) // multiplier)


def depthwise_layout(kernel_positions: int, channels: int, multiplier: int, spec: NVMSpec) -> Any:
    """Channels per crossbar of a depthwise layer as the exporter maps it, or None for the grid layout.

    `depthwise_channels_per_tile` capped at the layer's ``channels``; None when not even one channel fits a
    crossbar (its taps exceed ``spec.rows`` or its outputs a crossbar's columns): the layer then keeps the
    grid layout of mapping schema 1. The exporter, the cost model's re-planning and the search's hardware
    counts all decide with this one function.

    Args:
        kernel_positions: ``prod(kernel_size)`` (k*k).
        channels: input channels ``C`` of the layer.
        multiplier: depth multiplier (outputs per input channel).
        spec: `NVMSpec`.
    """
    fit = depthwise_channels_per_tile(kernel_positions, multiplier, spec)
    return min(fit, channels) if fit else None


def diagonal_tile_count(channels: int, channels_per_tile: int) -> int:
    """Crossbars of the block-diagonal layout: ``ceil(channels / channels_per_tile)``."""
    return -(-channels // channels_per_tile)


def plan_diagonal_tiles(channels: int, kernel_positions: int, multiplier: int, channels_per_tile: int,
                        spec: NVMSpec) -> tuple[Tile, ...]:
    """The diagonal tiles of a depthwise layer whose rows are channel-major (`channel_major_rows`).

    Tile ``t`` holds channels ``[t*g, min(C, (t+1)*g))``: their ``g * kernel_positions`` rows
    (all taps of a channel contiguous) and ``g * multiplier`` output columns, block-diagonal inside
    the tile. Its devices are ``rows_used * device_cols`` (the same convention as a partially
    filled grid tile: the used rows times the used device columns, reference column included).
    Example: 64 channels, 3x3, 128 x 128 crossbars, differential pairs: g = 14, four tiles of
    126 rows x 28 columns and one of 72 x 16: 15,264 devices (the grid layout: 73,728).

    Args:
        channels: input channels C.
        kernel_positions: ``prod(kernel_size)``.
        multiplier: depth multiplier.
        channels_per_tile: g, 1 <= g with ``g * kernel_positions <= spec.rows`` and ``g * multiplier <=
            outputs_per_tile(spec)`` (`depthwise_channels_per_tile` gives the largest).
        spec: `NVMSpec`.

    Returns:
        tuple of `Tile`; tile ``t`` has ``row_tile = col_tile = t``.

    Raises:
        MappingError: more than `MAX_TILES` crossbars.
    """
    count = diagonal_tile_count(channels, channels_per_tile)
    if count > MAX_TILES:
        raise MappingError(f"a depthwise layer of {channels} channels at {channels_per_tile} per crossbar needs "
                           f"{count} crossbars, more than the {MAX_TILES} a layer may use. Fix: use larger "
                           "crossbars (spec.rows/cols).")
    reference = reference_columns(spec)
    tiles = []
    for t in range(count):
        c0, c1 = t * channels_per_tile, min(channels, (t + 1) * channels_per_tile)
        r0, r1 = c0 * kernel_positions, c1 * kernel_positions
        o0, o1 = c0 * multiplier, c1 * multiplier
        device_cols = (o1 - o0) * spec.devices_per_weight + reference
        tiles.append(Tile(t, t, t, r0, r1, o0, o1, device_cols, (r1 - r0) / spec.rows, device_cols / spec.cols))
    return tuple(tiles)


def layer_tiles(layer: Any, spec: NVMSpec) -> tuple[Tile, ...]:
    """The tiles a `CrossbarLayer` must have on ``spec``'s crossbars: its layout's plan.

    ``layer.channels_per_tile`` None: the grid (`plan_tiles`); an int g: the block-diagonal tiles
    (`plan_diagonal_tiles`).
    """
    g = getattr(layer, "channels_per_tile", None)
    if g is None:
        return plan_tiles(layer.rows, layer.cols, spec)
    return plan_diagonal_tiles(layer.in_channels, math.prod(layer.kernel_size), layer.cols // layer.in_channels,
                               g, spec)


def channel_major_rows(kernel_positions: int, channels: int) -> np.ndarray:
    """The row permutation from kernel-position-major to channel-major order.

    ``matrix[perm]`` (and ``patches[..., perm]``) turns rows ``p * C + c`` (kernel position
    major, channel fastest: the im2col order) into rows ``c * K + p`` (channel major, all
    ``K = kernel_positions`` taps of a channel contiguous).

    Returns:
        int64 numpy array of ``K * C`` row indices.
    """
    perm = np.arange(kernel_positions * channels, dtype=np.int64).reshape(kernel_positions, channels)
    return perm.T.reshape(-1)


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
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


def window_output_size(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Positions of a sliding window on an (already padded) axis of ``size``: 0 when the window does not fit."""
    span = (kernel - 1) * dilation + 1
    return (size - span) // stride + 1 if size >= span else 0
