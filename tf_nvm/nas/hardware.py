"""Hardware counts of an NVM model (tiles, devices, ADC columns) and hardware budgets, without exporting.

The counts are those of the crossbar mapping (`tf_nvm.mapping`): every crossbar
layer's kernel is the im2col weight matrix ``rows x cols`` (Dense: ``in x out``;
Conv: ``kernel elements x in channels`` rows, ``filters`` columns; Depthwise:
block-diagonal ``kh*kw*cin x cin*multiplier``), split onto ``spec.rows x spec.cols``
crossbars by `tf_nvm.mapping.tiling.plan_tiles` (a depthwise layer: only its diagonal tiles,
`tf_nvm.mapping.tiling.plan_diagonal_tiles`, as the exporter maps it). A test checks them against
``tflite_export.build_mapping(model).summary()``.
"""

import dataclasses
import math
from typing import Any, Optional

from tf_nvm.core.errors import MappingError, SearchError
from tf_nvm.keras.backend import keras
from tf_nvm.keras.nvm_model import model_spec, nvm_layers
from tf_nvm.mapping.tiling import depthwise_layout, plan_diagonal_tiles, plan_tiles, tile_count

__all__ = ["HardwareCounts", "Budget", "hardware_counts", "COUNTS"]

COUNTS = ("tiles", "devices", "weights", "adc_columns", "crossbar_layers")
"""The hardware counts a trial reports (each to be minimised)."""


@dataclasses.dataclass(frozen=True)
class HardwareCounts:
    """What an NVM model occupies on crossbars.

    Attributes:
        crossbar_layers: layers mapped to crossbars.
        weights: kernel weights (im2col matrix entries, block-diagonal zeros of depthwise layers included).
        tiles: ``spec.rows x spec.cols`` crossbars.
        devices: programmed devices (pairs count twice, reference columns included).
        adc_columns: device columns read by ADCs (per inference of one im2col position).
    """

    crossbar_layers: int
    weights: int
    tiles: int
    devices: int
    adc_columns: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


def _matrix_shape(wrapper):
    """(rows, cols, depthwise (taps, channels) or None) of a crossbar wrapper's im2col weight matrix."""
    inner = wrapper.layer
    if isinstance(inner, keras.layers.DepthwiseConv2D):  # its kernel is `depthwise_kernel` (no `kernel`)
        kh, kw, cin, mult = [int(d) for d in inner.depthwise_kernel.shape]
        return kh * kw * cin, cin * mult, (kh * kw, cin)
    shape = [int(d) for d in inner.kernel.shape]
    return math.prod(shape[:-1]), shape[-1], None


def _planned(rows, cols, depthwise, spec):
    """The layer's tiles as the exporter plans them (a depthwise layer block-diagonal when a channel fits a tile)."""
    if depthwise is not None:
        taps, channels = depthwise
        channels_per_tile = depthwise_layout(taps, channels, cols // channels, spec)
        if channels_per_tile is not None:
            return plan_diagonal_tiles(channels, taps, cols // channels, channels_per_tile, spec)
    return plan_tiles(rows, cols, spec)


def hardware_counts(model: keras.Model) -> HardwareCounts:
    """The `HardwareCounts` of an NVM model (from `tf_nvm.quantize_model`).

    Args:
        model: NVM tf_keras model (built).

    Returns:
        `HardwareCounts`; a layer that would need more than
        `tf_nvm.mapping.tiling.MAX_TILES` crossbars is counted without planning its tiles.

    Raises:
        NotAnNVMModelError: not an NVM model.
    """
    spec = model_spec(model)
    weights = tiles = devices = adc = 0
    layers = nvm_layers(model)
    for layer in layers:
        rows, cols, depthwise = _matrix_shape(layer)
        weights += rows * cols
        try:
            planned = _planned(rows, cols, depthwise, spec)
        except MappingError:  # too many tiles to plan: count them (the budget refuses such a model anyway)
            count = tile_count(rows, cols, spec)
            tiles += count
            devices += rows * cols * spec.devices_per_weight
            adc += count * spec.cols
            continue
        tiles += len(planned)
        devices += sum(tile.devices for tile in planned)
        adc += sum(tile.device_cols for tile in planned)
    return HardwareCounts(len(layers), weights, tiles, devices, adc)


@dataclasses.dataclass(frozen=True)
class Budget:
    """Hardware limits of a search: a candidate over any limit is a failed trial (never trained).

    Attributes:
        max_tiles: most crossbars (None: no limit).
        max_devices: most programmed devices (None: no limit).
        max_weights: most kernel weights (None: no limit).
    """

    max_tiles: Optional[int] = None
    max_devices: Optional[int] = None
    max_weights: Optional[int] = None

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise SearchError(f"budget.{field.name} must be an integer >= 1 or null (no limit), got {value!r}. "
                                  f"Fix: give a positive whole number, e.g. \"{field.name}\": 8.")

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "budget") -> "Budget":
        """A `Budget` from ``{"max_tiles": 8, ...}``.

        Raises:
            SearchError: unknown keys or invalid values.
        """
        if data is None:
            return cls()
        allowed = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(data, dict) or set(data) - set(allowed):
            bad = sorted(set(data) - set(allowed)) if isinstance(data, dict) else data
            raise SearchError(f"{where}: unknown limit(s) {bad!r}; allowed: {allowed}. Fix: use only those keys.")
        return cls(**data)

    def violation(self, counts: HardwareCounts) -> str | None:
        """Why ``counts`` break the budget (str), or None when they fit."""
        over = [f"{name[4:]} {getattr(counts, name[4:])} > {name} {limit}"
                for name, limit in dataclasses.asdict(self).items()
                if limit is not None and getattr(counts, name[4:]) > limit]
        return "; ".join(over) or None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)
