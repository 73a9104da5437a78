"""The analog products of a crossbar layer as TensorFlow ops: per row tile, or fused when linear.

A crossbar layer computes, per row tile ``r`` and device column ``c``, the
column sum ``sum_i q_i L_ic`` over the rows of that tile. Two ways to get it,
both exact on integers (every sum here stays below 2^24 in float32):

* `tile_sums`: every row tile separately, R tensors ``[M, Cdev]`` (M =
  examples x output positions), as the ADC needs them: one matmul per tile
  for dense layers; for convolutions, native convolutions with the kernel
  cropped to the tile's bounding box of kernel positions (or, where that box
  would hold over 1.5x the tile's rows, one per run of rows whose kernel
  positions differ only along the last spatial axis), so no im2col patches
  are materialised and few multiply-adds are spent outside the tile.
* `fused_sums`: the whole layer in one matmul or convolution of a weight
  matrix ``[rows, K]`` (used when everything after the column sums is linear:
  exact converters and no per-read noise; the pair subtraction and the
  reference columns are then folded into the matrix first).

Convolutions whose strides and dilations are both above 1 (which
TensorFlow's convolution does not run) fall back to im2col patches.
"""

import dataclasses
from typing import Any

import numpy as np

from tf_nvm.keras.backend import tf
from tf_nvm.mapping.reference import im2col
from tf_nvm.mapping.types import CrossbarLayer

__all__ = ["TilePlan", "tile_plan", "tile_sums", "fused_sums"]

BBOX_WASTE = 1.5


@dataclasses.dataclass(frozen=True)
class _Segment:
    """Rows of one row tile that one cropped convolution computes.

    Attributes:
        start: per spatial axis, the first kernel index of the crop.
        index: int [*crop, channels] -> row of the layer's weight matrix, or ``rows`` (a zero row)
            for kernel entries of the crop that are not in this segment.
        channels: (first, stop) input channels of the crop.
    """

    start: tuple
    index: np.ndarray
    channels: tuple


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """How `tile_sums` computes one crossbar layer (static, from the mapping).

    Attributes:
        native: True when the layer runs as native convolutions (else dense or im2col).
        segments: per row tile, its `_Segment` list (native convolutions only).
    """

    native: bool
    segments: tuple[tuple[_Segment, ...], ...]


def tile_plan(layer: CrossbarLayer, tile_rows: int) -> TilePlan:
    """The `TilePlan` of a `tf_nvm.mapping.CrossbarLayer` with row tiles of ``tile_rows`` rows."""
    native = layer.op != "dense" and not (max(layer.strides) > 1 and max(layer.dilation) > 1)
    if not native:
        return TilePlan(False, ())
    cin, kernel = layer.in_channels, tuple(layer.kernel_size)
    taps = int(np.prod(kernel))
    channel_major = layer.channels_per_tile is not None
    row_tiles = -(-layer.rows // tile_rows)
    tiles = []
    for r in range(row_tiles):
        rows = np.arange(r * tile_rows, min((r + 1) * tile_rows, layer.rows))
        tap, channel = (rows % taps, rows // taps) if channel_major else (rows // cin, rows % cin)
        position = np.array(np.unravel_index(tap, kernel)).T  # [rows, spatial]
        whole = _segment(rows, position, channel, cin, layer.rows, crop=channel_major)
        # One convolution over the tile's bounding box of kernel positions, unless that box holds more than 1.5x
        # the tile's rows: then one per run of rows with equal kernel indices on every axis but the last.
        if whole.index.size <= BBOX_WASTE * len(rows):
            tiles.append((whole,))
            continue
        lead = [tuple(p[:-1]) for p in position]
        tiles.append(tuple(_segment(rows[[k == key for k in lead]], position[[k == key for k in lead]],
                                    channel[[k == key for k in lead]], cin, layer.rows, crop=channel_major)
                           for key in dict.fromkeys(lead)))
    return TilePlan(True, tuple(tiles))


def _segment(rows, position, channel, cin, zero_row, crop=False):
    """The `_Segment` computing ``rows`` (kernel positions ``position``, input channels ``channel``) in one convolution.

    The input channels are cropped to the rows' range when they share one kernel position, or always with
    ``crop`` (a block-diagonal depthwise tile: its channels at every kernel position); else all ``cin`` are read.
    """
    low, high = position.min(axis=0), position.max(axis=0)
    one_position = len(np.unique(position, axis=0)) == 1
    c_lo, c_hi = (int(channel.min()), int(channel.max()) + 1) if one_position or crop else (0, cin)
    index = np.full(tuple(int(v) for v in high - low + 1) + (c_hi - c_lo,), zero_row, np.int32)
    for row, p, c in zip(rows, position, channel):
        index[tuple(p - low) + (c - c_lo,)] = row
    return _Segment(tuple(int(v) for v in low), index, (c_lo, c_hi))


def _padded(x, layer):
    return tf.pad(x, [(0, 0)] + [tuple(p) for p in layer.pads] + [(0, 0)])


def _conv(x_padded, layer, kernel, start, channels):
    """VALID convolution of the padded input with a kernel cropped at ``start`` (kernel indices) and ``channels``."""
    out = layer.output_shape[:-1]
    slices = [slice(None)]
    for lo, k, d, s, n in zip(start, kernel.shape[:-2], layer.dilation, layer.strides, out):
        first = lo * d
        slices.append(slice(first, first + (n - 1) * s + (k - 1) * d + 1))
    slices.append(slice(*channels))
    return tf.nn.convolution(x_padded[tuple(slices)], kernel, strides=list(layer.strides), padding="VALID",
                             dilations=list(layer.dilation))


def tile_sums(x: Any, layer: CrossbarLayer, plan: TilePlan, matrix: Any, row_tiles: int, tile_rows: int) -> list[Any]:
    """Column sums of every row tile: a list of R float32 ``[M, K]`` tensors (one per row tile).

    Args:
        x: float32 input codes ``[N, *input_shape]`` (after the DAC, one rail).
        layer: the `CrossbarLayer`.
        plan: its `TilePlan`.
        matrix: float32 ``[R, T, K]`` per-tile weights (padding rows zero).
        row_tiles: R.
        tile_rows: T.
    """
    k = matrix.shape[-1]
    if plan.native:
        rows = tf.concat([tf.reshape(matrix, [row_tiles * tile_rows, k])[:layer.rows], tf.zeros([1, k])], 0)
        padded = _padded(x, layer)
        out = []
        for segments in plan.segments:
            total = 0.0
            for seg in segments:
                total = total + _conv(padded, layer, tf.gather(rows, seg.index), seg.start, seg.channels)
            out.append(tf.reshape(total, [-1, k]))
        return out
    flat = tf.reshape(x if layer.op == "dense" else _im2col(x, layer), [-1, layer.rows])
    return [tf.matmul(flat[:, r * tile_rows:min((r + 1) * tile_rows, layer.rows)],
                      matrix[r, :min(tile_rows, layer.rows - r * tile_rows)]) for r in range(row_tiles)]


def fused_sums(x: Any, layer: CrossbarLayer, plan: TilePlan, matrix: Any) -> Any:
    """The whole layer at once: float32 ``[M, K]`` = patches ``[M, rows]`` @ ``matrix [rows, K]``."""
    if plan.native:
        if layer.channels_per_tile is None:  # rows kernel-position major, channel fastest
            kernel = tf.reshape(matrix, list(layer.kernel_size) + [layer.in_channels, -1])
        else:  # channel-major rows: [C, *kernel, K] -> [*kernel, C, K]
            spatial = len(layer.kernel_size)
            kernel = tf.transpose(tf.reshape(matrix, [layer.in_channels] + list(layer.kernel_size) + [-1]),
                                  list(range(1, spatial + 1)) + [0, spatial + 1])
        out = _conv(_padded(x, layer), layer, kernel, (0,) * len(layer.kernel_size), (0, layer.in_channels))
        return tf.reshape(out, [-1, matrix.shape[-1]])
    flat = x if layer.op == "dense" else _im2col(x, layer)
    return tf.matmul(tf.reshape(flat, [-1, layer.rows]), matrix)


def _im2col(x, layer):
    """`tf_nvm.mapping.reference.im2col` with TensorFlow ops (rows in the layer's row order)."""
    return im2col(x, layer, pad=tf.pad, concat=tf.concat, take=lambda t, index: tf.gather(t, index, axis=-1))
