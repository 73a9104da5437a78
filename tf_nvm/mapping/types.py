"""The mapping's data types: tiles, the input encoding, crossbar and digital layers, the whole mapping.

Every type is a frozen dataclass. The whole network, `Mapping`, is in `tf_nvm.mapping.network`
(it validates itself on construction with `tf_nvm.mapping.validate`, which reads these types).

Numpy only (mapping-format layer).
"""

import dataclasses
from typing import Any, Optional

import numpy as np

from tf_nvm.core.grid import to_int8
from tf_nvm.core.preprocessing import Standardization

__all__ = [
    "SCHEMA_VERSION",
    "FORMAT",
    "CROSSBAR_OPS",
    "ACTIVATIONS",
    "ROUNDING",
    "ROW_ORDERS",
    "MAX_DIM",
    "Tile",
    "InputEncoding",
    "CrossbarLayer",
    "DigitalLayer",
]

SCHEMA_VERSION = 2
"""Version of the file format written; readers refuse a higher one.

1: every crossbar layer's matrix tiled as a grid, rows kernel-position major.
2: adds ``channels_per_tile`` (a depthwise layer's block-diagonal layout: channel-major rows, only the
diagonal tiles programmed); version-1 files are read as before (grid layout everywhere).
"""
ROW_ORDERS = ("position_major", "channel_major")
"""Row orders of a crossbar layer's matrix: kernel position major (channel fastest), or channel major."""
FORMAT = "tf_nvm.crossbar-mapping"
"""The JSON's ``format`` field."""
CROSSBAR_OPS = ("dense", "conv1d", "conv2d", "depthwise_conv2d")
"""Ops of crossbar layers (the digital ops are the table `tf_nvm.mapping.ops.DIGITAL_OPS`)."""
ACTIVATIONS = ("linear", "relu")
"""Activations a crossbar layer applies digitally after its bias."""
ROUNDING = "half_to_even"
"""Rounding to the activation grid."""
MAX_DIM = 2 ** 31 - 1
"""Largest dimension, size or padding a mapping may hold (int32 range)."""


@dataclasses.dataclass(frozen=True)
class Tile:
    """One physical crossbar holding a block of one layer's weight matrix.

    Attributes:
        index: tile number within the layer (grid layout: row-major over row/column tiles).
        row_tile: index of the block of weight rows (block-diagonal layout: ``index``).
        col_tile: index of the block of weight columns (outputs) (block-diagonal layout: ``index``).
        row_start: first weight row (im2col row) held, inclusive.
        row_stop: last weight row held, exclusive.
        col_start: first output column held, inclusive.
        col_stop: last output column held, exclusive.
        device_cols: physical columns used: outputs x devices per weight, plus
            one reference column for the offset mapping.
        row_utilisation: used rows / ``spec.rows`` (0..1].
        col_utilisation: ``device_cols`` / ``spec.cols`` (0..1].
    """

    index: int
    row_tile: int
    col_tile: int
    row_start: int
    row_stop: int
    col_start: int
    col_stop: int
    device_cols: int
    row_utilisation: float
    col_utilisation: float

    @property
    def rows_used(self) -> int:
        """Physical rows used (int)."""
        return self.row_stop - self.row_start

    @property
    def devices(self) -> int:
        """Devices programmed in this tile, reference column included (int)."""
        return self.rows_used * self.device_cols


@dataclasses.dataclass(frozen=True)
class InputEncoding:
    """How the model input reaches the first crossbar.

    Attributes:
        name: tensor name of the model input.
        shape: shape of one example (no batch axis).
        encoding: ``spec.input_encoding``: ``"signed-dac"`` (the DAC drives
            +-V) or ``"dual-rail"`` (max(x,0) and max(-x,0) in two read phases
            of the same rows, the two digitised results subtracted).
        scale: grid step A/128 of the int8 input codes (model units per code).
        zero_point: always 0.
        mean: per-channel mean subtracted from raw data (raw units) or None.
        std: per-channel standard deviation dividing it (raw units) or None.
    """

    name: str
    shape: tuple
    encoding: str
    scale: float
    zero_point: int = 0
    mean: Optional[tuple] = None
    std: Optional[tuple] = None

    def quantize(self, x: Any) -> np.ndarray:
        """Model input(s) ``x`` (standardised, model units) -> int8 codes, ties to even (`tf_nvm.core.grid.to_int8`).

        Args:
            x: float array (..., *shape).

        Returns:
            int8 array of the same shape.
        """
        return to_int8(x, self.scale)

    def standardize(self, raw: Any) -> np.ndarray:
        """Raw data -> model input, ``(raw - mean) / std`` in float32 (identity when unknown).

        Args:
            raw: float array, channels last (raw units).

        Returns:
            float32 array of ``raw``'s shape (model units).
        """
        if self.mean is None:
            return np.asarray(raw, np.float32)
        return Standardization(np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)).apply(raw)

    def standardise(self, raw: Any) -> np.ndarray:
        """Deprecated alias of `standardize` (kept for one release)."""
        return self.standardize(raw)


@dataclasses.dataclass(frozen=True)
class CrossbarLayer:
    """A weight layer on crossbars (im2col-unrolled for convolutions).

    Attributes:
        name: layer name in the Keras NVM model.
        op: one of `CROSSBAR_OPS`.
        inputs: input tensor names (one).
        output: output tensor name (the layer name).
        output_shape: shape of one output example.
        input_shape: shape of one input example.
        kernel_size: spatial kernel size (``()`` for dense).
        strides: spatial strides (``()`` for dense).
        dilation: spatial dilation (``()`` for dense).
        padding: ``"valid"`` or ``"same"`` (``"valid"`` for dense).
        pads: explicit zero padding ``((before, after), ...)`` per spatial axis.
        in_channels: input channels (dense: input features).
        filters: output channels (= ``cols``).
        rows: weight-matrix rows, ``prod(kernel_size) * in_channels`` (row
            order `row_order`: kernel positions in C order, channel fastest; or,
            for a block-diagonal depthwise layer, channel major).
        cols: weight-matrix columns (outputs).
        codes: int8 ``[rows, cols]`` device codes, weight = code * s (entries
            outside ``tiles`` are structural zeros that no device holds).
        levels: uint8 ``[rows, cols, devices_per_weight]`` conductance level
            index of every device (level 0 = G_min, top level = G_max).
        reference_level: level of the reference column (offset mapping) or None.
        bias: float32 ``[cols]`` digital bias (model units) or None.
        bias_int32: int32 ``[cols]`` the bias in units of ``step * s`` or None.
        activation: ``"linear"`` or ``"relu"``, applied digitally after the bias.
        tiles: the `Tile` list (`tf_nvm.mapping.tiling.layer_tiles`): the grid,
            row-major, or the diagonal tiles of the block-diagonal layout.
        input_rails: 2 when the layer reads the model input with dual-rail
            encoding (two read phases), else 1.
        adc_full_scale: largest |partial sum| one tile column can produce, in
            MAC units (`tf_nvm.mapping.device.adc_full_scale`).
        channels_per_tile: None (the grid layout: rows kernel-position major,
            the whole matrix tiled; the only layout of schema version 1), or, for
            ``depthwise_conv2d`` only, g >= 1: the block-diagonal layout (schema 2):
            rows channel major (row ``c * prod(kernel_size) + p``), tile ``t``
            holds channels ``[t*g, (t+1)*g)`` (their rows and their
            ``multiplier`` output columns each) and only those
            ``ceil(in_channels / g)`` diagonal tiles are programmed
            (`tf_nvm.mapping.tiling.plan_diagonal_tiles`).
    """

    name: str
    op: str
    inputs: tuple
    output: str
    output_shape: tuple
    input_shape: tuple
    kernel_size: tuple
    strides: tuple
    dilation: tuple
    padding: str
    pads: tuple
    in_channels: int
    filters: int
    rows: int
    cols: int
    codes: np.ndarray
    levels: np.ndarray
    reference_level: Optional[int]
    bias: Optional[np.ndarray]
    bias_int32: Optional[np.ndarray]
    activation: str
    tiles: tuple
    input_rails: int = 1
    adc_full_scale: int = 0
    channels_per_tile: Optional[int] = None

    kind = "crossbar"

    @property
    def row_order(self) -> str:
        """``"channel_major"`` in the block-diagonal layout, else ``"position_major"`` (`ROW_ORDERS`)."""
        return "position_major" if self.channels_per_tile is None else "channel_major"

    @property
    def partial_sum_tiles(self) -> int:
        """Tiles whose column sums one output adds digitally (int): the grid's row tiles, 1 block-diagonal."""
        first = self.tiles[0].col_tile if self.tiles else None
        return len({tile.row_tile for tile in self.tiles if tile.col_tile == first})

    @property
    def devices(self) -> int:
        """Devices programmed for this layer over all tiles (int)."""
        return sum(tile.devices for tile in self.tiles)

    @property
    def weights(self) -> int:
        """Weights the layer computes with (int): the size of its Keras kernel.

        ``rows * cols`` for dense and convolution layers; for ``depthwise_conv2d``
        ``prod(kernel_size) * cols`` (each output column has one weight per kernel
        position): the other entries of its block-diagonal matrix are structural zeros,
        programmed as devices only inside the tiles (all of them in the grid layout; in the
        block-diagonal layout only the off-block entries of the diagonal tiles).
        """
        if self.op == "depthwise_conv2d":
            return int(np.prod(self.kernel_size, dtype=np.int64)) * self.cols
        return self.rows * self.cols

    @property
    def device_utilization(self) -> float:
        """``weights / devices`` (0..1]: the share of programmed devices that hold a weight.

        At most ``1 / devices_per_weight`` (a differential pair or a reference column spend
        more than one device per weight); a depthwise layer holds about ``1 / in_channels``
        of that in the grid layout and about ``1 / channels_per_tile`` in the block-diagonal one.
        """
        return self.weights / self.devices

    @property
    def device_utilisation(self) -> float:
        """Deprecated alias of `device_utilization` (kept for one release)."""
        return self.device_utilization


@dataclasses.dataclass(frozen=True)
class DigitalLayer:
    """A digital step in the periphery (after the ADCs, or between crossbars).

    Attributes:
        name: layer name in the Keras NVM model.
        op: a name in the digital-op table `tf_nvm.mapping.ops.DIGITAL_OPS`
            (its entry defines the ``params``, ``arrays``, shape rule and
            computation).
        inputs: input tensor names.
        output: output tensor name (the layer name).
        output_shape: shape of one output example.
        params: JSON-ready parameters of the op.
        arrays: numpy arrays of the op (``batch_norm``: ``multiplier``,
            ``offset``, ``scale``).
        requantize: True when the result is rounded to the shared grid (ties
            to even) and clipped to -128..127; False when it only moves codes.
    """

    name: str
    op: str
    inputs: tuple
    output: str
    output_shape: tuple
    params: dict = dataclasses.field(default_factory=dict)
    arrays: dict = dataclasses.field(default_factory=dict)
    requantize: bool = False

    kind = "digital"
