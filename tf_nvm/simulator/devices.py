"""A crossbar layer's devices as arrays, and programming them into one chip.

`LayerDevices` lays a `CrossbarLayer` out for the simulator: per row tile
``r`` a block of ``T`` rows (``T = spec.rows``; the last block zero-padded)
and ``Cdev`` device columns: for each device of a weight (1 unipolar/offset,
2 differential: G+ then G-) one column per output, then (offset mapping) one
reference column per column tile, all of whose devices sit at the reference
level. Tiles are only the unit of the ADC and the reference columns here;
row tiles are digitised separately and added digitally, as on the chip.

`program_chip` turns target levels into one chip's conductances
(programming noise, stuck-at faults, drift to ``t_inference``, read noise,
global drift compensation per layer) and returns them in *level units*:
``alpha (g - g_min) / dG`` with
``dG = (g_max - g_min) / top_level``, i.e. what a column sum ``sum q * L``
computes after the G_min offset is removed from the raw column current
(digitally, from the known input sum, as the mapping states), together with
the per-read noise sigma in the same units. They are computed as
``level + (alpha (g - g_min) - (g_target - g_min)) / dG`` so that ideal devices
give the target levels exactly.
"""

import dataclasses
import math
from typing import Any

import numpy as np

from tf_nvm.keras.backend import tf
from tf_nvm.core.errors import MappingError
from tf_nvm.core.spec import NVMSpec
from tf_nvm.mapping.types import CrossbarLayer
from tf_nvm.noise.compensation import global_factor
from tf_nvm.simulator.config import DeviceConfig

__all__ = ["LayerDevices", "ChipLayer", "program_chip", "effective_weights", "stream_seed", "stream_key"]


def stream_seed(*parts: int) -> Any:
    """A stateless seed (int32 [2]) derived from integers (seed, chip, layer, purpose)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return tf.constant((state & 0x7FFFFFFF).astype(np.int32))


def stream_key(*parts: int) -> Any:
    """A Philox key (uint64 [1]) derived from integers, for counter-based noise."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)
    return tf.constant(state, tf.uint64)


@dataclasses.dataclass(frozen=True)
class LayerDevices:
    """Static device layout of one crossbar layer.

    Attributes:
        name: layer name.
        index: position among the mapping's crossbar layers.
        row_tiles: R, blocks of rows digitised separately.
        tile_rows: T, rows per block (padded).
        cols: outputs of the layer.
        devices: device columns per output (1 or 2).
        ref_columns: reference columns (offset mapping: one per column tile; else 0).
        col_tile_of_output: int array [cols], the column tile of each output.
        levels: float32 [R, T, Cdev] target levels (0 where there is no device: padding rows, and
            the entries outside a block-diagonal layer's tiles).
        used: float32 [R, T, Cdev] 1 for a programmed device, 0 elsewhere.
    """

    name: str
    index: int
    row_tiles: int
    tile_rows: int
    cols: int
    devices: int
    ref_columns: int
    col_tile_of_output: np.ndarray
    levels: np.ndarray
    used: np.ndarray

    @property
    def device_columns(self) -> int:
        """Cdev: device columns per row tile (int)."""
        return self.cols * self.devices + self.ref_columns

    @classmethod
    def from_layer(cls, layer: CrossbarLayer, spec: NVMSpec, index: int) -> "LayerDevices":
        """Lays out a `tf_nvm.mapping.CrossbarLayer`: exactly the devices of its tiles.

        Row tile ``r`` holds rows ``[r*T, (r+1)*T)`` with ``T`` the most rows a tile uses (the
        grid: ``min(spec.rows, rows)``; the block-diagonal layout of a depthwise layer: its
        ``channels_per_tile * prod(kernel_size)`` rows). A tile's rows x its device columns (and
        its reference column) are programmed (``used`` 1, the target levels); every other entry
        (a block-diagonal layer's off-diagonal area) has no device: level 0, ``used`` 0, so no
        noise, fault or drift reaches it and its column sums stay exactly 0.
        """
        rows, cols, devices = layer.levels.shape
        row_tiles = 1 + max(t.row_tile for t in layer.tiles)
        col_tiles = 1 + max(t.col_tile for t in layer.tiles)
        tile_rows = max(t.rows_used for t in layer.tiles)
        ref = col_tiles if spec.reference_level is not None else 0
        levels = np.zeros((row_tiles * tile_rows, cols * devices + ref), np.float32)
        used = np.zeros_like(levels)
        col_tile_of_output = np.zeros(cols, np.int32)
        for tile in layer.tiles:
            if tile.row_start != tile.row_tile * tile_rows:  # the planners' invariant (validated mappings hold it)
                raise MappingError(f"layer {layer.name!r}: tile {tile.index} starts at row {tile.row_start}, not at "
                                   f"row_tile x {tile_rows}. Fix: re-export the mapping.")
            r0, r1, c0, c1 = tile.row_start, tile.row_stop, tile.col_start, tile.col_stop
            for d in range(devices):
                levels[r0:r1, d * cols + c0:d * cols + c1] = layer.levels[r0:r1, c0:c1, d]
                used[r0:r1, d * cols + c0:d * cols + c1] = 1.0
            col_tile_of_output[c0:c1] = tile.col_tile
            if ref:
                levels[r0:r1, cols * devices + tile.col_tile] = spec.reference_level
                used[r0:r1, cols * devices + tile.col_tile] = 1.0
        shape = (row_tiles, tile_rows, levels.shape[1])
        return cls(layer.name, index, row_tiles, tile_rows, cols, devices, ref, col_tile_of_output,
                   levels.reshape(shape), used.reshape(shape))

    def programmed_columns(self) -> np.ndarray:
        """bool [R, Cdev]: the device columns each row tile programs (their column sums are ADC results)."""
        return self.used.max(axis=1) > 0


@dataclasses.dataclass(frozen=True)
class ChipLayer:
    """One layer of one programmed chip (tensors in level units).

    Attributes:
        weights: float32 [R, T, Cdev] effective levels ``(g - g_min) / dG``.
        read_sigma: float32 [R, T, Cdev] per-read noise sigma in level units, or None (no per-read noise).
    """

    weights: Any
    read_sigma: Any


def effective_weights(layout: LayerDevices, g: Any, spec: NVMSpec) -> Any:
    """The weight matrix ``[R, T, cols]`` (level units) a one-hot read of every row returns.

    ``L = (g - g_min) / dG`` per device (padding rows 0), then the pair subtraction
    (differential: G+ - G-) or the reference column of the column tile (offset mapping):
    what the periphery computes digitally, and what `tf_nvm.noise.compensation` reads.

    Args:
        layout: the layer's `LayerDevices`.
        g: float32 ``[R, T, Cdev]`` conductances, µS.
        spec: the mapping's `NVMSpec`.
    """
    levels = (g - float(spec.g_min_us)) / spec.level_step_us * tf.constant(layout.used)
    cols = layout.cols
    out = levels[..., :cols]
    if layout.devices == 2:
        out = out - levels[..., cols:2 * cols]
    if layout.ref_columns:
        out = out - tf.gather(levels[..., cols * layout.devices:], layout.col_tile_of_output, axis=-1)
    return out


def program_chip(layouts: list[LayerDevices], spec: NVMSpec, device_config: DeviceConfig, seed: int,
                 chip: int) -> tuple[list[ChipLayer], dict[str, float]]:
    """Programs every crossbar layer of one chip.

    Per layer: programming noise, stuck-at faults, drift to ``t_inference``; the read noise
    (`NoiseModel.read_sigma` of the programmed and drifted conductances), frozen into the
    conductances with the clamp at 0 µS in ``per-chip`` mode; and the global drift compensation
    (`tf_nvm.noise.compensation.global_factor`, one digital factor per layer, as aihwkit has one
    per tile) from a one-hot reference read right after programming (no read noise) and one at
    ``t_inference`` (with one draw of the read noise, the frozen one in ``per-chip`` mode).

    Args:
        layouts: list of `LayerDevices`.
        spec: the mapping's `NVMSpec` (conductance window, levels).
        device_config: `tf_nvm.simulator.config.DeviceConfig`.
        seed: base seed of the run.
        chip: chip index (int >= 0).

    Returns:
        (list of `ChipLayer`, ``{layer name: drift-compensation factor}`` as Python floats).
    """
    model = device_config.noise_model
    out, factors = [], {}
    for layout in layouts:
        layer, alpha = _program_layer(model, layout, spec, device_config, (seed, chip, layout.index))
        out.append(layer)
        factors[layout.name] = alpha
    return out, factors


def _program_layer(model, layout, spec, device_config, keys):
    """One layer of one chip (`program_chip`); ``keys``: (seed, chip, layer index) of its streams.

    Returns:
        (`ChipLayer`, drift-compensation factor).
    """
    g_min, step = float(spec.g_min_us), spec.level_step_us
    t = float(device_config.t_inference)
    target = g_min + tf.constant(layout.levels) * step
    g_prog, g_t = model.realize(target, t, [stream_seed(*keys, purpose) for purpose in (1, 2, 3)])
    g_prog, g_t = _stuck_at(g_prog, g_t, target, spec, device_config, keys)
    used = tf.constant(layout.used)
    sigma_g = None
    if device_config.read_noise != "off":
        sigma_g = model.read_sigma(g_prog, g_t, t) * used
        sigma_g = sigma_g if float(tf.reduce_max(sigma_g)) > 0 else None
    g_read = g_t
    if sigma_g is not None and device_config.read_noise == "per-chip":
        # aihwkit's convention: the read noise accumulated up to t_inference, drawn once, clamped at 0, frozen.
        g_read = model.read(g_prog, g_t, t, stream_seed(*keys, 5))
    alpha = _drift_factor(model, layout, spec, device_config, keys, (g_prog, g_t, g_read), sigma_g is not None)
    # levels + deviation / dG: exactly the target levels when every device is ideal (alpha is then exactly 1).
    deviation = alpha * (g_read - g_min) - (target - g_min)
    weights = tf.constant(layout.levels) + deviation * used / step
    sigma = None
    if sigma_g is not None and device_config.read_noise == "per-read":
        sigma = sigma_g * alpha / step
    return ChipLayer(weights, sigma), alpha


def _stuck_at(g_prog, g_t, target, spec, device_config, keys):
    """Stuck-at-G_min / G_max faults (stream purpose 4) applied to the programmed and drifted conductances."""
    low, high = device_config.stuck_at_gmin_rate, device_config.stuck_at_gmax_rate
    if not (low or high):
        return g_prog, g_t
    g_min, g_max = float(spec.g_min_us), float(spec.g_max_us)
    u = tf.random.stateless_uniform(target.shape, stream_seed(*keys, 4), alg="philox")
    stuck_low, stuck_high = u < low, (u >= low) & (u < low + high)
    return (tf.where(stuck_low, g_min, tf.where(stuck_high, g_max, g_prog)),
            tf.where(stuck_low, g_min, tf.where(stuck_high, g_max, g_t)))


def _drift_factor(model, layout, spec, device_config, keys, conductances, noisy_reads):
    """The layer's global drift-compensation factor (1.0 with compensation off, or when it is not finite).

    ``conductances``: (programmed, drifted, as read); with per-read noise the calibration read draws its own
    noise (stream purpose 6).
    """
    if not device_config.drift_compensation:
        return 1.0
    g_prog, g_t, reference = conductances
    if noisy_reads and device_config.read_noise == "per-read":  # the calibration read's own noise
        reference = model.read(g_prog, g_t, float(device_config.t_inference), stream_seed(*keys, 6))
    alpha = float(global_factor(effective_weights(layout, g_prog, spec), effective_weights(layout, reference, spec)))
    return alpha if math.isfinite(alpha) else 1.0
