"""The analog simulator: a mapping file run as one TensorFlow program per programmed chip.

`Simulator(mapping, config)` reads a `tf_nvm.mapping.Mapping` (or its files)
and a `SimulationConfig`. `program(chip)` draws one chip's devices (once);
`run(chip, x)` streams standardised inputs through it in batches: per
crossbar layer the im2col patches, the DAC, per row tile the column sums of
every device column (one batched matmul), the per-read noise, the ADC, the
pair / reference subtraction, the digital sum of row tiles, bias, the shared
weight scale, activation and re-quantisation; then every digital step with
the kernel of its op (`tf_nvm.simulator.digital`). With every source off and
``exact`` converters the outputs equal the exact evaluator
(`tf_nvm.mapping.reference`) bit for bit.

Per-read noise is Gaussian per device; its effect on a column sum is drawn
exactly in distribution as ``sqrt(sum_i x_i^2 sigma_ij^2) * N(0, 1)`` per
device column and row tile (before its ADC), from a counter-based Philox stream
indexed by the example's position in the data set, so results do not depend on
how the data are batched. With exact converters and no IR drop everything after
the column sums is linear, and the noise is drawn once per output after the pair
subtraction and the sum of row tiles (`Simulator._fused_read_noise`; once per
column tile for a reference column), as exact in distribution with far fewer draws.
"""

import dataclasses
import functools
import os
from typing import Any

import numpy as np

from tf_nvm.keras.backend import tf
from tf_nvm.core.errors import SimulatorError
from tf_nvm.mapping import Mapping, load
from tf_nvm.mapping.device import adc_full_scale
from tf_nvm.mapping.reference import grid_steps
from tf_nvm.simulator.analog import fused_sums, tile_plan, tile_sums
from tf_nvm.simulator.config import SimulationConfig
from tf_nvm.simulator.devices import ChipLayer, LayerDevices, program_chip, stream_key
from tf_nvm.simulator.digital import rint_clip, run_digital

__all__ = ["Simulator", "Chip", "SimulationOutputs", "ADCDesign"]

_AIHWKIT_WIRE_OHM = 0.35
"""aihwkit's wire resistance between neighbouring cells (ohm), behind its default ``ir_drop_g_ratio``."""


@dataclasses.dataclass(frozen=True)
class ADCDesign:
    """One ADC design: signed, ``bits`` bits over ``[-full_scale, full_scale]`` MAC units (level x input code).

    Attributes:
        bits: resolution.
        full_scale: largest |column sum| converted without saturation (MAC units), or None (ideal ADC).
    """

    bits: int
    full_scale: float | None = None

    @property
    def step(self) -> float | None:
        """MAC units per ADC code (None for an ideal ADC)."""
        return None if self.full_scale is None else 2.0 * self.full_scale / 2 ** self.bits

    def convert(self, values: Any) -> Any:
        """Quantises column sums (float32 tensor, MAC units) to the ADC grid with saturation."""
        step = self.step
        if step is None:
            return values
        return _signed_converter(values, np.float32(step), self.bits)


@dataclasses.dataclass(frozen=True)
class Chip:
    """One programmed chip.

    Attributes:
        index: chip number (its random streams derive from (seed, index)).
        layers: ``{layer name: tf_nvm.simulator.devices.ChipLayer}``.
        drift_compensation: ``{layer name: digital drift-compensation factor}`` (1.0 without drift or
            with compensation off; one per crossbar layer, as aihwkit's ``GlobalDriftCompensation`` has one per
            tile).
    """

    index: int
    layers: dict[str, ChipLayer]
    drift_compensation: dict[str, float]


@dataclasses.dataclass(frozen=True, eq=False)
class SimulationOutputs:
    """Codes of every network output of one chip, and their grid steps (like `MappingOutputs`).

    Attributes:
        codes: ``{output name: int64 codes}``, examples first.
        steps: ``{output name: grid step}`` (model units per code).
    """

    codes: dict[str, np.ndarray]
    steps: dict[str, float]

    def values(self, name: str | None = None) -> np.ndarray:
        """Float values ``codes * step`` of output ``name`` (default: the first)."""
        name = next(iter(self.codes)) if name is None else name
        if name not in self.codes:
            raise SimulatorError(f"SimulationOutputs.values: {name!r} is not an output; outputs: "
                                 f"{list(self.codes)}. Fix: pass one of those names.")
        return self.codes[name] * self.steps[name]


def standard_normals(key: Any, offset: Any, batch: Any, per_example: int) -> Any:
    """float32 ``[batch, per_example]`` N(0, 1) draws; row i depends only on (key, offset + i), not on the batch.

    Box-Muller written with TensorFlow ops over Philox uniforms (the first half of a row's uniforms
    gives the radii, the second half the angles; the cosine and sine halves make the row). The same
    transform and precision as TensorFlow's own ``StatelessRandomNormalV2`` (float32 uniforms with 23 random
    bits; the largest |draw| is sqrt(2 ln 2^23) = 5.6), but as vectorised elementwise passes it measured 2-3x
    faster than that kernel on CPU (``benchmarks/per_read_noise.py``), which was most of the time of per-read
    noise.

    Args:
        key: Philox key, uint64 ``[1]`` (`tf_nvm.simulator.devices.stream_key`).
        offset: int64 scalar, the data-set index of row 0.
        batch: rows (int or scalar tensor).
        per_example: draws per row (int).
    """
    half = -(-per_example // 8) * 4  # uniforms per half row: a multiple of Philox's 4 outputs per counter step
    counter = tf.stack([tf.cast(offset, tf.uint64) * (half // 2), tf.constant(0, tf.uint64)])
    uniforms = tf.raw_ops.StatelessRandomUniformV2(shape=tf.stack([batch, 2, half]), key=key, counter=counter, alg=1)
    radius = tf.sqrt(-2.0 * tf.math.log1p(-uniforms[:, 0]))  # 1 - u in (0, 1]: no log(0)
    angle = np.float32(2.0 * np.pi) * uniforms[:, 1]
    return tf.concat([radius * tf.cos(angle), radius * tf.sin(angle)], axis=1)[:, :per_example]


def _signed_converter(values, step, bits):
    """A signed ``bits``-bit converter of step ``step``: ``clip(round(v / step), -2^(b-1), 2^(b-1)-1) * step``."""
    top = 2 ** (bits - 1)
    return tf.clip_by_value(tf.round(values / step), -top, top - 1) * step


def _dac(q, bits):
    """Input codes through a ``bits``-bit DAC: the top bits of the int8 code (identity at 8 bits)."""
    return q if bits >= 8 else _signed_converter(q, float(2 ** (8 - bits)), bits)


class Simulator:
    """Runs a crossbar mapping on simulated chips.

    Args:
        mapping: a `tf_nvm.mapping.Mapping` or its prefix / ``.json`` path.
        config: `SimulationConfig` (default: ideal devices, exact converters).
        calibration: standardised inputs used to set the ``per-layer`` ADC ranges
            (required in that mode; e.g. 256 training examples).

    Raises:
        SimulatorError: an invalid config, or ``per-layer`` ADCs without calibration data.
        MappingError: a mapping that does not load or validate.
    """

    def __init__(self, mapping: Mapping | str | os.PathLike, config: SimulationConfig | None = None,
                 calibration: np.ndarray | None = None) -> None:
        self.mapping: Mapping = mapping if isinstance(mapping, Mapping) else load(mapping)
        self.config: SimulationConfig = SimulationConfig() if config is None else config
        if not isinstance(self.config, SimulationConfig):
            raise SimulatorError(f"Simulator: config must be a SimulationConfig, got {type(self.config).__name__}. "
                                 "Fix: pass tf_nvm.simulator.SimulationConfig(...).")
        self.spec = spec = self.mapping.spec
        self.steps = grid_steps(self.mapping)  # every tensor's grid step (refuses a mapping no chip could run)
        crossbars = self.mapping.crossbar_layers
        self.layouts = {layer.name: LayerDevices.from_layer(layer, spec, i) for i, layer in enumerate(crossbars)}
        self.plans = {layer.name: tile_plan(layer, self.layouts[layer.name].tile_rows) for layer in crossbars}
        self._digitizers: dict[str, Any] = {}
        self._fuse = True  # tests switch the fused linear path off to check the per-tile path on ideal chips
        device = self.config.device
        self.ir_drop = float(device.ir_drop)
        self.ir_drop_g_ratio = device.ir_drop_g_ratio or 1.0 / (_AIHWKIT_WIRE_OHM * spec.g_max_us * 1e-6)
        self.dac_bits = self.config.dac.bits or spec.dac_bits
        self.adc_bits = self.config.adc.bits or spec.adc_bits
        self.adc = self._adc_designs(calibration)
        self._forward: Any = None

    # ------------------------------------------------------------------ converters
    def _adc_designs(self, calibration):
        mode = self.config.adc.mode
        names = list(self.layouts)
        if mode == "exact":
            return {name: ADCDesign(self.adc_bits, None) for name in names}
        if mode == "shared":
            ranges = self.config.adc.shared_output_ranges
            if ranges is None:
                full_scale = adc_full_scale(self.spec.rows, self.spec)  # the largest sum any tile can produce
            else:
                full_scale = ranges * 128.0 / self.spec.weight_scale
            design = ADCDesign(self.adc_bits, float(full_scale))
            return {name: design for name in names}
        if calibration is None:
            raise SimulatorError("Simulator: ADCConfig(mode='per-layer') calibrates each layer's ADC range on data, "
                                 "but calibration=None. Fix: pass calibration=<standardised inputs, e.g. 256 "
                                 "training examples>.")
        ideal = Simulator(self.mapping, SimulationConfig(seed=self.config.seed, batch_size=self.config.batch_size))
        peaks = ideal.column_sum_peaks(calibration, self.config.adc.calibration_percentile)
        return {name: ADCDesign(self.adc_bits, max(peaks[name], 1.0)) for name in names}

    def adc_designs(self) -> dict[str, ADCDesign]:
        """``{layer name: ADCDesign}``; in ``shared`` mode every layer holds the same design."""
        return dict(self.adc)

    # ------------------------------------------------------------------ chips
    def program(self, chip: int = 0) -> Chip:
        """Draws the devices of chip ``chip`` (programming noise, faults, drift, compensation).

        Args:
            chip: chip index, int >= 0.

        Returns:
            `Chip`.
        """
        if isinstance(chip, bool) or not isinstance(chip, (int, np.integer)) or chip < 0:
            raise SimulatorError(f"Simulator.program: chip must be an integer >= 0, got {chip!r}.")
        layers, factors = program_chip(list(self.layouts.values()), self.spec, self.config.device,
                                       self.config.seed, int(chip))
        return Chip(int(chip), dict(zip(self.layouts, layers)), factors)

    # ------------------------------------------------------------------ forward
    def _crossbar(self, x, layer, chip_layer, offset, keys, record=None):
        layout, plan, adc = self.layouts[layer.name], self.plans[layer.name], self.adc[layer.name]
        q = _dac(x, self.dac_bits)  # elementwise, so before the patches: padding code 0 stays 0
        rails = [q] if layer.input_rails == 1 else [tf.maximum(q, 0.0), tf.maximum(-q, 0.0)]
        cols, devices = layout.cols, layout.devices
        acc = 0.0
        linear = adc.full_scale is None and not self.ir_drop
        positions = int(np.prod(layer.output_shape[:-1] if layer.op != "dense" else layer.input_shape[:-1]))
        if linear and record is None and self._fuse:
            # Exact converters, no IR drop: every step after the column sums is linear, so the pair subtraction, the
            # reference column and the digital sum of row tiles fold into one weight matrix and one matmul /
            # convolution (the same exact integers in float32 for ideal devices).
            matrix = tf.reshape(chip_layer.weights, [layout.row_tiles * layout.tile_rows, -1])[:layer.rows]
            effective = matrix[:, :cols]
            if devices == 2:
                effective = effective - matrix[:, cols:2 * cols]
            if layout.ref_columns:
                effective = effective - tf.gather(matrix[:, cols * devices:], layout.col_tile_of_output, axis=1)
            for sign, rail in zip((1.0, -1.0), rails):
                acc = acc + sign * fused_sums(rail, layer, plan, effective)
            if chip_layer.read_sigma is not None:
                acc = acc + self._fused_read_noise(q, layer, chip_layer.read_sigma, offset, keys, positions)
            rails = []
        for phase, (sign, rail) in enumerate(zip((1.0, -1.0), rails)):
            tiles = tile_sums(rail, layer, plan, chip_layer.weights, layout.row_tiles, layout.tile_rows)
            if self.ir_drop:
                tiles = self._apply_ir_drop(tiles, rail, layer, plan, layout, chip_layer.weights)
            if chip_layer.read_sigma is not None:
                spreads = tile_sums(rail * rail, layer, plan, chip_layer.read_sigma ** 2, layout.row_tiles,
                                    layout.tile_rows)
                normals = self._read_normals(keys[phase], offset, tf.shape(x)[0], positions, layout)
                tiles = [sums + tf.sqrt(spread) * normals[:, r] for r, (sums, spread) in enumerate(zip(tiles, spreads))]
            if record is not None:
                record.setdefault(layer.name, []).extend(tiles)
            acc = acc + sign * self._digitize(layer.name)(tiles)
        if layer.bias_int32 is not None:
            acc = acc + layer.bias_int32.astype(np.float32)
        value = acc * np.float32(self.spec.weight_scale)
        if layer.activation == "relu":
            value = tf.maximum(value, 0.0)
        return tf.reshape(rint_clip(value), [-1] + list(layer.output_shape))

    def _fused_read_noise(self, q, layer, read_sigma, offset, keys, positions):
        """Per-read noise of a linear layer (exact converters, no IR drop), drawn once per output.

        Every device read adds an independent N(0, sigma^2) to its conductance, so a column sum gets
        N(0, sum_i q_i^2 sigma_i^2); the pair subtraction, both input rails (an input sits on one rail: q_i^2 is
        the sum of the rails' squares) and the digital sum of row tiles add independent Gaussians, so the output
        gets N(0, sum_i q_i^2 (sigma+_i^2 + sigma-_i^2)): one matmul of q^2 with the summed variances and one
        normal per output. A reference column is shared by the outputs of its column tile, so its noise is
        drawn once per column tile and subtracted from each of them (the joint distribution is kept too).
        Exact in distribution, like the per-tile path; the draws differ from it.
        """
        layout, plan = self.layouts[layer.name], self.plans[layer.name]
        cols, devices = layout.cols, layout.devices
        variances = tf.reshape(read_sigma ** 2, [layout.row_tiles * layout.tile_rows, -1])[:layer.rows]
        squares = q * q
        batch = tf.shape(q)[0]

        def draw(matrix, key):
            spread = fused_sums(squares, layer, plan, matrix)
            width = int(matrix.shape[-1])
            normals = tf.reshape(standard_normals(key, offset, batch, positions * width), [-1, width])
            return tf.sqrt(spread) * normals

        device_variance = variances[:, :cols] if devices == 1 else variances[:, :cols] + variances[:, cols:2 * cols]
        noise = draw(device_variance, keys[0])
        if layout.ref_columns:
            noise = noise - tf.gather(draw(variances[:, cols * devices:], keys[1]), layout.col_tile_of_output, axis=1)
        return noise

    def _digitize(self, name):
        """``tiles -> sum over row tiles of (ADC(G+ column) - ADC(G- column) - reference)``: one elementwise pass.

        Compiled with XLA on its own (one fused loop over the tile sums) when the forward pass itself is not.
        """
        if name not in self._digitizers:
            layout, adc = self.layouts[name], self.adc[name]
            cols, devices = layout.cols, layout.devices

            def digitize(tiles):
                acc = 0.0
                for sums in tiles:  # per row tile: one conversion per device column, then digital accumulation
                    sums = adc.convert(sums)
                    column = sums[:, :cols]
                    if devices == 2:
                        column = column - sums[:, cols:2 * cols]
                    if layout.ref_columns:
                        column = column - tf.gather(sums[:, cols * devices:], layout.col_tile_of_output, axis=1)
                    acc = acc + column
                return acc
            # measured (benchmarks/simulator_throughput.py): XLA fuses these elementwise steps into one pass, while
            # TensorFlow's own convolutions beat XLA's; so without jit_compile only this part is compiled
            self._digitizers[name] = digitize if self.config.jit_compile else tf.function(digitize, jit_compile=True)
        return self._digitizers[name]

    _digitise = _digitize  # Deprecated alias of `_digitize` (British spelling), kept for one release.

    def _apply_ir_drop(self, tiles, rail, layer, plan, layout, weights):
        """aihwkit's first-order IR drop (``rpu_forward_backward_pass.cpp``, ``applyIrDrop``) per tile and column.

        With normalised weights ``w = g / g_max`` and inputs ``x = q / 128`` over the ``n``
        rows of a tile: ``a = n / g_ratio * sum_j |w_j| |x_j|``, ``c = a (a (0.05 a - 0.2) + 0.5)``,
        and the column output loses ``ir_drop * c * sum_j w_j x_j (1 - (1 - j/n)^2)``; in MAC
        units (level x code) that loss is ``ir_drop * c * sum_j q_j (g_j / dG) f_j``.
        """
        spec = self.spec
        n = layout.tile_rows
        dg = spec.level_step_us
        used = tf.constant(layout.used)
        g_levels = (weights + spec.g_min_us / dg) * used  # g / dG, zero on padding rows
        f = (1.0 - (1.0 - np.arange(n, dtype=np.float32) / n) ** 2).reshape(1, n, 1)
        currents = tile_sums(tf.abs(rail), layer, plan, g_levels * np.float32(dg / spec.g_max_us / 128.0),
                             layout.row_tiles, n)
        weighted = tile_sums(rail, layer, plan, g_levels * f, layout.row_tiles, n)
        out = []
        for sums, current, drop in zip(tiles, currents, weighted):
            a = np.float32(n / self.ir_drop_g_ratio) * current
            c = a * (a * (0.05 * a - 0.2) + 0.5)
            out.append(sums - np.float32(self.ir_drop) * c * drop)
        return out

    @staticmethod
    def _read_normals(key, offset, batch, positions, layout):
        """N(0, 1) per (example, position, row tile, device column), indexed by the example's global position."""
        per_example = positions * layout.row_tiles * layout.device_columns
        normals = standard_normals(key, offset, batch, per_example)
        return tf.reshape(normals, [-1, layout.row_tiles, layout.device_columns])

    def _network(self, x, weights, sigmas, keys, offset, record=None):
        spec = self.spec
        tensors = {self.mapping.input.name: rint_clip(x / np.float32(spec.activation_step))}
        for layer in self.mapping.layers:
            inputs = [tensors[name] for name in layer.inputs]
            if layer.kind == "crossbar":
                chip_layer = ChipLayer(weights[layer.name], sigmas.get(layer.name))
                tensors[layer.output] = self._crossbar(inputs[0], layer, chip_layer, offset, keys[layer.name],
                                                       record)
            else:
                tensors[layer.output] = run_digital(inputs, layer, spec)
        return [tensors[name] for name in self.mapping.outputs]

    def run(self, chip: Chip, x: np.ndarray, offset: int = 0) -> SimulationOutputs:
        """Output codes of ``chip`` on standardised inputs ``x``, in batches of ``config.batch_size``.

        Args:
            chip: a `Chip` from `program`.
            x: float inputs (model units, standardised), ``[N, *mapping.input.shape]``.
            offset: index of ``x[0]`` in the whole data set (keeps read noise independent of batching).

        Returns:
            `SimulationOutputs`.

        Raises:
            SimulatorError: inputs of the wrong shape or dtype, or NaN / infinite values.
        """
        x = self._check_inputs(x)
        weights = {name: layer.weights for name, layer in chip.layers.items()}
        sigmas = {name: layer.read_sigma for name, layer in chip.layers.items() if layer.read_sigma is not None}
        keys = {name: [stream_key(self.config.seed, chip.index, layout.index, 10 + phase) for phase in (0, 1)]
                for name, layout in self.layouts.items()}
        if self._forward is None:  # one trace per input shape and set of noisy layers, reused by every chip
            # a partial, not the bound method: TensorFlow's retracing warning counts traces per function code, so
            # every Simulator of a sweep would add to one count and warn although each traces once per shape
            self._forward = tf.function(functools.partial(Simulator._network, self),
                                        jit_compile=self.config.jit_compile, reduce_retracing=True)
        outputs: dict[str, list[np.ndarray]] = {name: [] for name in self.mapping.outputs}
        size = self.config.batch_size
        for start in range(0, len(x), size):
            results = self._forward(tf.constant(x[start:start + size]), weights, sigmas, keys,
                                    tf.constant(offset + start, tf.int64))
            for name, value in zip(self.mapping.outputs, results):
                outputs[name].append(value.numpy().astype(np.int64))
        codes = {name: np.concatenate(parts) if parts else np.zeros((0,), np.int64)
                 for name, parts in outputs.items()}
        return SimulationOutputs(codes, {name: self.steps[name] for name in self.mapping.outputs})

    def _check_inputs(self, x):
        expected = tuple(self.mapping.input.shape)
        array = np.asarray(x)
        if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
            raise SimulatorError(f"Simulator: inputs must be a float array, got dtype {array.dtype}. Fix: pass "
                                 "standardised float32 model inputs.")
        if array.ndim != len(expected) + 1 or tuple(array.shape[1:]) != expected:
            raise SimulatorError(f"Simulator: inputs have shape {list(array.shape)}; the mapping expects [N, "
                                 f"{', '.join(map(str, expected))}]. Fix: pass a batch of standardised examples "
                                 "(x_model = (x_raw - mean) / std).")
        array = np.asarray(array, np.float32)  # no copy when already float32
        if array.size and not (np.isfinite(array.min()) and np.isfinite(array.max())):  # NaN or inf reach min / max
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            raise SimulatorError(f"Simulator: inputs hold {bad} NaN or infinite value(s). Fix: clean the data "
                                 "(the DAC has no code for NaN).")
        return array

    def column_sum_peaks(self, x: np.ndarray, percentile: float = 100.0) -> dict[str, float]:
        """Per crossbar layer, the ``percentile`` of |device-column partial sums| on ``x`` (ideal chip, MAC units).

        Only the device columns a row tile programs count (a block-diagonal depthwise layer's row tile
        has no devices in the other tiles' columns: their sums are structural zeros, not ADC results).

        Runs eagerly in batches of ``config.batch_size`` examples, keeping only the magnitudes (float32).
        """
        x = self._check_inputs(x)
        chip = self.program(0)
        weights = {name: layer.weights for name, layer in chip.layers.items()}
        magnitudes: dict[str, list[np.ndarray]] = {}
        # [R, Cdev] per layer: no ADC reads a column without devices (fixed by the layout: once, not per batch)
        programmed_of = {name: layout.programmed_columns() for name, layout in self.layouts.items()}
        for start in range(0, len(x), self.config.batch_size):
            record: dict[str, list[Any]] = {}
            self._network(tf.constant(x[start:start + self.config.batch_size]), weights, {},
                          dict.fromkeys(self.layouts), start, record)
            for name, sums in record.items():
                programmed = programmed_of[name]
                magnitudes.setdefault(name, []).extend(
                    np.abs(s.numpy()[:, programmed[i % len(programmed)]]).ravel() for i, s in enumerate(sums))
        return {name: float(np.percentile(np.concatenate(parts), percentile)) for name, parts in magnitudes.items()}
