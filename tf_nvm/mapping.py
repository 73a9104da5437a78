"""The crossbar mapping format: a trained NVM network laid out on crossbars.

A mapping is written by ``tflite_export.export_crossbar`` and read by the
simulator, the cost model and ``tf-nvm inspect``. It holds everything needed to
run the network on crossbars without the Keras model: the spec, the input
encoding, and per layer in execution order either a *crossbar* layer (im2col
geometry, device codes, conductance level of every device, tiling, bias,
activation) or a *digital* step (BatchNorm affine as integers, ReLU, pooling,
reshaping, concatenation, rescaling, ...). The schema is documented field by
field in ``docs/mapping_schema.md``.

On disk a mapping is two files sharing a prefix: ``PREFIX.json`` (structure,
human-readable) and ``PREFIX.npz`` (arrays, read with ``allow_pickle=False``).
The JSON names the npz file and its SHA-256, so a mismatched or corrupt pair is
detected. `save` writes both atomically (temporary files, then ``os.replace``);
`load` validates everything (schema version, types, shapes, code ranges, device
levels, tile coverage, tensor references) and raises `MappingError` for any
defect.

Integer conventions (all exact):

* activations are int8 codes ``q`` on the shared grid ``x = q * step``,
  ``step = A/128``, ``q`` in -128..127, rounding half to even;
* a crossbar column computes ``acc = sum_rows q * code`` (from device levels:
  ``code = level`` unipolar, ``level(G+) - level(G-)`` differential,
  ``level - reference_level`` offset); row tiles are added digitally; the layer
  output in grid units is ``round(acc * s + bias_int32 * s)`` (``s`` the shared
  weight scale) after the activation, then clipped to -128..127;
* the digital BatchNorm is ``round(float32(q * m_c + k_c) * u_c)`` per channel
  (one float32 product, then rounding half to even).
"""

import dataclasses
import hashlib
import io
import json
import math
import os
import zipfile
from typing import Optional

import numpy as np

from tf_nvm.atomic import write_files_atomic
from tf_nvm.errors import MappingError, SpecError
from tf_nvm.spec import NVMSpec

__all__ = [
    "SCHEMA_VERSION",
    "FORMAT",
    "CROSSBAR_OPS",
    "DIGITAL_OPS",
    "Tile",
    "InputEncoding",
    "CrossbarLayer",
    "DigitalLayer",
    "Mapping",
    "conductance_table",
    "levels_from_codes",
    "codes_from_levels",
    "plan_tiles",
    "outputs_per_tile",
    "save",
    "load",
    "paths",
    "layer_table",
    "format_table",
]

SCHEMA_VERSION = 1
FORMAT = "tf_nvm.crossbar-mapping"
CROSSBAR_OPS = ("dense", "conv1d", "conv2d", "depthwise_conv2d")
DIGITAL_OPS = ("batch_norm", "relu", "rescale", "global_average_pool", "max_pool", "global_max_pool", "flatten",
               "reshape", "identity", "concatenate", "add", "softmax", "zero_pad")
ACTIVATIONS = ("linear", "relu")
ROUNDING = "half_to_even"
_MAX_JSON_BYTES = 64 * 1024 * 1024
_MAX_DIM = 2 ** 31 - 1
_ARRAY_DTYPES = {"codes": np.int8, "levels": np.uint8, "bias": np.float32, "bias_int32": np.int32,
                 "multiplier": np.int32, "offset": np.int32, "scale": np.float32}


# ------------------------------------------------------------------ dataclasses
@dataclasses.dataclass(frozen=True)
class Tile:
    """One physical crossbar holding a block of one layer's weight matrix.

    Attributes:
        index: tile number within the layer (row-major over row/column tiles).
        row_tile: index of the block of weight rows.
        col_tile: index of the block of weight columns (outputs).
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
    def rows_used(self):
        """Physical rows used (int)."""
        return self.row_stop - self.row_start

    @property
    def devices(self):
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

    def quantize(self, x):
        """Model input(s) ``x`` (standardised, model units) -> int8 codes, ties to even.

        Args:
            x: float array (..., *shape).

        Returns:
            int8 array of the same shape.
        """
        return np.clip(np.rint(np.asarray(x, np.float32) / np.float32(self.scale)), -128, 127).astype(np.int8)

    def standardise(self, raw):
        """Raw data -> model input, ``(raw - mean) / std`` (identity when unknown)."""
        raw = np.asarray(raw, np.float32)
        if self.mean is None:
            return raw
        return ((raw - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)).astype(np.float32)


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
            order: kernel positions in C order, channel fastest).
        cols: weight-matrix columns (outputs).
        codes: int8 ``[rows, cols]`` device codes, weight = code * s.
        levels: uint8 ``[rows, cols, devices_per_weight]`` conductance level
            index of every device (level 0 = G_min, top level = G_max).
        reference_level: level of the reference column (offset mapping) or None.
        bias: float32 ``[cols]`` digital bias (model units) or None.
        bias_int32: int32 ``[cols]`` the bias in units of ``step * s`` or None.
        activation: ``"linear"`` or ``"relu"``, applied digitally after the bias.
        tiles: the `Tile` list, row-major.
        input_rails: 2 when the layer reads the model input with dual-rail
            encoding (two read phases), else 1.
        adc_full_scale: largest |partial sum| one tile column can produce, in
            MAC units (|q| <= 128 times the top level times rows used).
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

    kind = "crossbar"

    @property
    def devices(self):
        """Devices programmed for this layer over all tiles (int)."""
        return sum(tile.devices for tile in self.tiles)


@dataclasses.dataclass(frozen=True)
class DigitalLayer:
    """A digital step in the periphery (after the ADCs, or between crossbars).

    Attributes:
        name: layer name in the Keras NVM model.
        op: one of `DIGITAL_OPS` (see ``docs/mapping_schema.md`` for each op's
            ``params`` and ``arrays``).
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


@dataclasses.dataclass(frozen=True)
class Mapping:
    """A whole network on crossbars.

    Attributes:
        spec: the resolved `NVMSpec` (shared weight scale set).
        input: the `InputEncoding`.
        layers: `CrossbarLayer` / `DigitalLayer` objects in execution order.
        outputs: output tensor names of the network.
        metadata: free JSON-ready information (model name, exporter version).
    """

    spec: NVMSpec
    input: InputEncoding
    layers: tuple
    outputs: tuple
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        _validate(self)

    @property
    def crossbar_layers(self):
        """The `CrossbarLayer` objects, in execution order."""
        return [layer for layer in self.layers if isinstance(layer, CrossbarLayer)]

    def layer(self, name):
        """The layer called ``name``.

        Raises:
            KeyError: no such layer.
        """
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"mapping has no layer {name!r}; layers: {[layer.name for layer in self.layers]}")

    def summary(self):
        """Totals: crossbar layers, tiles, devices, ADC columns (dict of ints)."""
        tiles = [tile for layer in self.crossbar_layers for tile in layer.tiles]
        return {"crossbar_layers": len(self.crossbar_layers), "tiles": len(tiles),
                "devices": int(sum(tile.devices for tile in tiles)),
                "adc_columns": int(sum(tile.device_cols for tile in tiles)),
                "digital_steps": len(self.layers) - len(self.crossbar_layers)}


# ------------------------------------------------------------- device helpers
def conductance_table(spec):
    """Conductance of every level of the spec's devices.

    Args:
        spec: `NVMSpec`.

    Returns:
        float64 array of 2^weight_bits conductances in microsiemens, from
        ``g_min_us`` (level 0) to ``g_max_us`` (top level), evenly spaced.
    """
    return np.linspace(spec.g_min_us, spec.g_max_us, 2 ** spec.weight_bits)


def _mapping_name(spec):
    if spec.unipolar:
        return "unipolar"
    return spec.bipolar_mapping


def _reference_level(spec):
    return -spec.code_min if _mapping_name(spec) == "offset" else None


def levels_from_codes(codes, spec):
    """Device conductance levels of integer weight codes.

    Args:
        codes: integer array of codes in ``[spec.code_min, spec.code_max]``.
        spec: `NVMSpec`.

    Returns:
        uint8 array ``codes.shape + (devices_per_weight,)``: unipolar
        ``level = code``; differential ``(max(code,0), max(-code,0))`` for
        (G+, G-); offset ``level = code - code_min`` (reference column at
        ``-code_min``).
    """
    codes = np.asarray(codes, np.int32)
    kind = _mapping_name(spec)
    if kind == "unipolar":
        levels = codes[..., None]
    elif kind == "differential":
        levels = np.stack([np.maximum(codes, 0), np.maximum(-codes, 0)], axis=-1)
    else:
        levels = (codes - spec.code_min)[..., None]
    return levels.astype(np.uint8)


def codes_from_levels(levels, spec):
    """Inverse of `levels_from_codes`: the code each device group realises (int32)."""
    levels = np.asarray(levels, np.int32)
    kind = _mapping_name(spec)
    if kind == "unipolar":
        return levels[..., 0]
    if kind == "differential":
        return levels[..., 0] - levels[..., 1]
    return levels[..., 0] + spec.code_min


def outputs_per_tile(spec):
    """Weight columns (outputs) one crossbar holds: ``cols`` / devices per weight, less a reference column.

    Raises:
        MappingError: the crossbar is too narrow for even one output.
    """
    reference = 1 if _mapping_name(spec) == "offset" else 0
    count = (spec.cols - reference) // spec.devices_per_weight
    if count < 1:
        raise MappingError(
            f"spec.cols={spec.cols} is too small for one output with the {_mapping_name(spec)} mapping "
            f"({spec.devices_per_weight} device column(s) per weight + {reference} reference column). "
            "Fix: use a crossbar with more columns.")
    return count


def plan_tiles(rows, cols, spec):
    """Splits a ``rows x cols`` weight matrix onto ``spec.rows x spec.cols`` crossbars.

    Args:
        rows: weight rows (im2col rows).
        cols: weight columns (outputs).
        spec: `NVMSpec`.

    Returns:
        tuple of `Tile`, row-major: ``ceil(rows/spec.rows) * ceil(cols/outputs_per_tile)``.
    """
    per_tile = outputs_per_tile(spec)
    reference = 1 if _mapping_name(spec) == "offset" else 0
    tiles = []
    for r in range(math.ceil(rows / spec.rows)):
        for c in range(math.ceil(cols / per_tile)):
            r0, r1 = r * spec.rows, min(rows, (r + 1) * spec.rows)
            c0, c1 = c * per_tile, min(cols, (c + 1) * per_tile)
            device_cols = (c1 - c0) * spec.devices_per_weight + reference
            tiles.append(Tile(len(tiles), r, c, r0, r1, c0, c1, device_cols, (r1 - r0) / spec.rows,
                              device_cols / spec.cols))
    return tuple(tiles)


# ------------------------------------------------------------------ save / load
def paths(path):
    """(json path, npz path) of a mapping given its prefix or either file name."""
    path = os.fspath(path)
    for suffix in (".json", ".npz"):
        if path.endswith(suffix):
            path = path.removesuffix(suffix)
            break
    return path + ".json", path + ".npz"


def _array_ref(arrays, key, value):
    arrays[key] = value
    return {"array": key, "dtype": str(value.dtype), "shape": list(value.shape)}


def _tile_dict(tile):
    return dataclasses.asdict(tile)


def _periphery(spec):
    step = spec.activation_step
    return {
        "dac": {"bits": spec.dac_bits, "input_codes": [-128, 127], "range_model_units": [-spec.activation_range,
                                                                                          spec.activation_max],
                "step_model_units": spec.activation_range / 2 ** (spec.dac_bits - 1),
                "note": "inputs are int8 codes on the shared grid; a DAC with dac_bits < 8 drops the low bits"},
        "adc": {"bits": spec.adc_bits, "per": "device column",
                "exact_range": "per tile: adc_full_scale MAC units (see each layer)",
                "note": "the digital arithmetic below assumes every partial sum is digitised exactly; the "
                        "simulator applies adc_bits"},
        "activation_grid": {"range": spec.activation_range, "step": step, "codes": [-128, 127],
                            "rounding": ROUNDING},
    }


def _conductance(spec):
    table = conductance_table(spec)
    kind = _mapping_name(spec)
    return {"mapping": kind, "devices_per_weight": spec.devices_per_weight, "levels": 2 ** spec.weight_bits,
            "g_min_us": spec.g_min_us, "g_max_us": spec.g_max_us,
            "level_step_us": float(table[1] - table[0]) if len(table) > 1 else 0.0,
            "code_min": spec.code_min, "code_max": spec.code_max, "reference_level": _reference_level(spec),
            "g_min_removal": {"unipolar": "digital: subtract g_min * sum(inputs) (known input sum)",
                              "differential": "analog: the pair subtracts, G_min cancels",
                              "offset": "reference column at reference_level, subtracted per column"}[kind]}


def _to_json(mapping, npz_name, digest):
    arrays = {}
    layers = []
    for layer in mapping.layers:
        entry = {"name": layer.name, "kind": layer.kind, "op": layer.op, "inputs": list(layer.inputs),
                 "output": layer.output, "output_shape": list(layer.output_shape)}
        if isinstance(layer, CrossbarLayer):
            entry.update({
                "input_shape": list(layer.input_shape),
                "geometry": {"unrolling": "im2col", "kernel_size": list(layer.kernel_size),
                             "strides": list(layer.strides), "dilation": list(layer.dilation),
                             "padding": layer.padding, "pads": [list(p) for p in layer.pads],
                             "in_channels": layer.in_channels, "filters": layer.filters, "rows": layer.rows,
                             "cols": layer.cols, "row_order": "kernel positions (C order), channel fastest",
                             "input_rails": layer.input_rails},
                "codes": _array_ref(arrays, f"{layer.name}/codes", layer.codes.astype(np.int8)),
                "levels": _array_ref(arrays, f"{layer.name}/levels", layer.levels.astype(np.uint8)),
                "reference_level": layer.reference_level,
                "bias": (None if layer.bias is None else
                         _array_ref(arrays, f"{layer.name}/bias", layer.bias.astype(np.float32))),
                "bias_int32": (None if layer.bias_int32 is None else
                               _array_ref(arrays, f"{layer.name}/bias_int32", layer.bias_int32.astype(np.int32))),
                "activation": layer.activation,
                "adc_full_scale": int(layer.adc_full_scale),
                "tiling": {"tile_rows": mapping.spec.rows, "tile_cols": mapping.spec.cols,
                           "row_tiles": 1 + max(t.row_tile for t in layer.tiles),
                           "col_tiles": 1 + max(t.col_tile for t in layer.tiles), "count": len(layer.tiles),
                           "tiles": [_tile_dict(t) for t in layer.tiles]},
                "digital_steps": _crossbar_steps(layer, mapping.spec),
            })
        else:
            entry.update({"params": layer.params, "requantize": bool(layer.requantize),
                          "arrays": {k: _array_ref(arrays, f"{layer.name}/{k}", v) for k, v in
                                     sorted(layer.arrays.items())}})
        layers.append(entry)
    spec = mapping.spec
    doc = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "arrays_file": {"name": npz_name, "sha256": digest},
        "spec": spec.to_dict(),
        "scales": {"weight_scale": spec.weight_scale, "activation_range": spec.activation_range,
                   "activation_step": spec.activation_step, "units": "model units"},
        "conductance": _conductance(spec),
        "periphery": _periphery(spec),
        "input": {"name": mapping.input.name, "shape": list(mapping.input.shape),
                  "encoding": mapping.input.encoding, "scale": mapping.input.scale,
                  "zero_point": mapping.input.zero_point,
                  "standardisation": (None if mapping.input.mean is None else
                                      {"mean": list(mapping.input.mean), "std": list(mapping.input.std),
                                       "formula": "x_model = (x_raw - mean) / std"})},
        "layers": layers,
        "outputs": list(mapping.outputs),
        "summary": mapping.summary(),
        "metadata": mapping.metadata,
    }
    return doc, arrays


def _crossbar_steps(layer, spec):
    steps = []
    if layer.input_rails == 2:
        steps.append("dual_rail: read max(x,0) then max(-x,0) on the same rows; subtract the two conversions")
    if _mapping_name(spec) == "differential":
        steps.append("pair: acc = ADC(G+ column) - ADC(G- column)")
    elif _mapping_name(spec) == "offset":
        steps.append("offset: acc = ADC(column) - ADC(reference column)")
    else:
        steps.append("g_min: subtract g_min * sum(inputs) (digital, known input sum)")
    if len({t.row_tile for t in layer.tiles}) > 1:
        steps.append("partial_sums: add the row tiles' results (int32)")
    steps.append("bias: acc += bias_int32" if layer.bias_int32 is not None else "bias: none")
    steps.append(f"scale: v = acc * weight_scale (grid units), weight_scale = {spec.weight_scale!r}")
    if layer.activation == "relu":
        steps.append("activation: v = max(v, 0)")
    steps.append("requantize: q = clip(round_half_to_even(v), -128, 127)")
    return steps


def save(mapping, path):
    """Writes ``mapping`` to ``PREFIX.json`` and ``PREFIX.npz``, atomically.

    Both files are written (and fsynced) to temporary names in the destination
    folder, then the npz and the JSON are renamed, in that order; on any failure
    before or during the renames no file is left under either new final name
    (the npz is removed again if the JSON rename fails). The JSON is the entry
    point: it names the npz and its SHA-256, so a reader never accepts a
    half-replaced pair.

    Args:
        mapping: a `Mapping`.
        path: prefix, or a path ending in ``.json`` / ``.npz``.

    Returns:
        (json path, npz path) as strings.
    """
    if not isinstance(mapping, Mapping):
        raise MappingError(f"save expects a tf_nvm.mapping.Mapping, got {type(mapping).__name__}.")
    json_path, npz_path = paths(path)
    buffer = io.BytesIO()
    doc, arrays = _to_json(mapping, os.path.basename(npz_path), "")
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    doc["arrays_file"]["sha256"] = hashlib.sha256(data).hexdigest()
    text = (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode("utf-8")
    # npz first, JSON last: the JSON names the npz by its hash.
    write_files_atomic([(npz_path, data), (json_path, text)], before_rename=_before_rename_hook)
    return json_path, npz_path


def _before_rename_hook():
    """Called after both temporary files are written, before the renames (tests inject failures here)."""


def load(path):
    """Reads and validates a mapping.

    Args:
        path: prefix, or the ``.json`` (or ``.npz``) file of the pair.

    Returns:
        the `Mapping`.

    Raises:
        MappingError: missing or unreadable file, not JSON, wrong format, a
            newer schema version, a missing/invalid field, a wrong array
            (dtype, shape, range), an npz that does not match its SHA-256, or
            an inconsistent mapping (tiles, levels vs codes, tensor
            references). The message names the file, the field, the value, what
            is allowed and the fix.
    """
    json_path, _ = paths(path)
    try:
        size = os.path.getsize(json_path)
        if size > _MAX_JSON_BYTES:
            raise MappingError(f"{json_path}: {size} bytes is larger than the {_MAX_JSON_BYTES}-byte limit of a "
                               "mapping JSON. Fix: pass the mapping's .json file.")
        with open(json_path, "rb") as handle:
            text = handle.read()
    except OSError as err:
        raise MappingError(f"cannot read mapping file {json_path}: {err}. Fix: pass the PREFIX or PREFIX.json "
                           "written by tflite_export.export_crossbar.") from None
    try:
        doc = json.loads(text.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise MappingError(f"{json_path}: not valid JSON ({err}). Fix: re-export the mapping; the file is "
                           "truncated or was edited by hand.") from None
    reader = _Reader(json_path)
    return reader.mapping(doc)


def _reject_constant(name):
    raise ValueError(f"non-finite number {name} is not allowed")


# ------------------------------------------------------------------- validation
class _Reader:
    """Parses a mapping document with precise error messages."""

    def __init__(self, json_path):
        self.json_path = json_path
        self.arrays = None

    def fail(self, field, message, fix="re-export the mapping with tflite_export.export_crossbar"):
        raise MappingError(f"{self.json_path}: field {field}: {message}. Fix: {fix}.")

    def get(self, obj, key, kind, field, allow_none=False):
        if not isinstance(obj, dict):
            self.fail(field.rsplit(".", 1)[0] or field, f"expected an object, got {_short(obj)}")
        if key not in obj:
            self.fail(f"{field}", "is missing")
        return self.check(obj[key], kind, field, allow_none)

    def check(self, value, kind, field, allow_none=False):
        if value is None and allow_none:
            return None
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value),
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
            "list": isinstance(value, list),
            "dict": isinstance(value, dict),
        }[kind]
        if not ok:
            self.fail(field, f"expected {kind}{' or null' if allow_none else ''}, got {_short(value)}")
        return value

    def int_list(self, obj, key, field, minimum=None):
        values = self.get(obj, key, "list", field)
        out = []
        for i, v in enumerate(values):
            v = self.check(v, "int", f"{field}[{i}]")
            if minimum is not None and v < minimum:
                self.fail(f"{field}[{i}]", f"value {v} is below the minimum {minimum}")
            if v > _MAX_DIM:
                self.fail(f"{field}[{i}]", f"value {v} is above the maximum {_MAX_DIM}")
            out.append(v)
        return tuple(out)

    def str_list(self, obj, key, field):
        values = self.get(obj, key, "list", field)
        return tuple(self.check(v, "str", f"{field}[{i}]") for i, v in enumerate(values))

    # ------------------------------------------------------------------ doc
    def mapping(self, doc):
        if not isinstance(doc, dict):
            self.fail("<root>", f"expected a JSON object, got {_short(doc)}")
        fmt = doc.get("format")
        if fmt != FORMAT:
            self.fail("format", f"value {_short(fmt)} is not {FORMAT!r}", "pass a crossbar mapping file")
        version = doc.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.fail("schema_version", f"value {_short(version)} is not a positive integer")
        if version > SCHEMA_VERSION:
            raise MappingError(
                f"{self.json_path}: schema_version {version} is newer than this tf_nvm reads (1..{SCHEMA_VERSION}): "
                "the mapping was written by a newer tf_nvm release. Fix: upgrade tf_nvm to read it, or re-export "
                "the mapping with this release.")
        spec_doc = self.get(doc, "spec", "dict", "spec")
        try:
            spec = NVMSpec.from_dict(spec_doc)
        except (SpecError, TypeError) as err:
            self.fail("spec", str(err))
        if spec.weight_scale is None:
            self.fail("spec.weight_scale", "is null; a mapping needs the resolved shared weight scale")
        self.load_arrays(self.get(doc, "arrays_file", "dict", "arrays_file"))
        inp = self.input(self.get(doc, "input", "dict", "input"), spec)
        layers_doc = self.get(doc, "layers", "list", "layers")
        layers = tuple(self.layer(entry, i, spec) for i, entry in enumerate(layers_doc))
        outputs = self.str_list(doc, "outputs", "outputs")
        metadata = self.get(doc, "metadata", "dict", "metadata")
        try:
            return Mapping(spec, inp, layers, outputs, metadata)
        except MappingError as err:
            raise MappingError(f"{self.json_path}: {err}") from None

    def load_arrays(self, ref):
        name = self.get(ref, "name", "str", "arrays_file.name")
        digest = self.get(ref, "sha256", "str", "arrays_file.sha256")
        if os.path.basename(name) != name or not name.endswith(".npz"):
            self.fail("arrays_file.name", f"value {name!r} must be a file name ending in .npz, beside the JSON")
        npz_path = os.path.join(os.path.dirname(self.json_path), name)
        try:
            with open(npz_path, "rb") as handle:
                data = handle.read()
        except OSError as err:
            self.fail("arrays_file.name", f"cannot read {npz_path}: {err}", "keep PREFIX.npz beside PREFIX.json")
        if hashlib.sha256(data).hexdigest() != digest:
            self.fail("arrays_file.sha256", f"{npz_path} does not match the recorded SHA-256 {digest[:16]}...",
                      "the .npz was modified or belongs to another export; re-export both files together")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                self.arrays = {key: npz[key] for key in npz.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, TypeError) as err:
            self.fail("arrays_file.name", f"{npz_path} is not a readable npz ({err})")

    def array(self, ref, field, dtype, shape=None):
        self.check(ref, "dict", field)
        key = self.get(ref, "array", "str", f"{field}.array")
        if key not in self.arrays:
            self.fail(f"{field}.array", f"array {key!r} is not in the npz file")
        value = self.arrays[key]
        if value.dtype != np.dtype(dtype):
            self.fail(field, f"array {key!r} has dtype {value.dtype}, expected {np.dtype(dtype)}")
        if shape is not None and tuple(value.shape) != tuple(shape):
            self.fail(field, f"array {key!r} has shape {list(value.shape)}, expected {list(shape)}")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            self.fail(field, f"array {key!r} holds NaN or infinite values")
        return value

    def input(self, doc, spec):
        name = self.get(doc, "name", "str", "input.name")
        shape = self.int_list(doc, "shape", "input.shape", minimum=1)
        encoding = self.get(doc, "encoding", "str", "input.encoding")
        scale = self.get(doc, "scale", "number", "input.scale")
        zero_point = self.get(doc, "zero_point", "int", "input.zero_point")
        std_doc = self.get(doc, "standardisation", "dict", "input.standardisation", allow_none=True)
        mean = std = None
        if std_doc is not None:
            mean = tuple(self.check(v, "number", f"input.standardisation.mean[{i}]")
                         for i, v in enumerate(self.get(std_doc, "mean", "list", "input.standardisation.mean")))
            std = tuple(self.check(v, "number", f"input.standardisation.std[{i}]")
                        for i, v in enumerate(self.get(std_doc, "std", "list", "input.standardisation.std")))
        return InputEncoding(name, shape, encoding, float(scale), zero_point, mean, std)

    def layer(self, entry, i, spec):
        field = f"layers[{i}]"
        self.check(entry, "dict", field)
        name = self.get(entry, "name", "str", f"{field}.name")
        field = f"layers[{i}] ({name!r})"
        kind = self.get(entry, "kind", "str", f"{field}.kind")
        op = self.get(entry, "op", "str", f"{field}.op")
        inputs = self.str_list(entry, "inputs", f"{field}.inputs")
        output = self.get(entry, "output", "str", f"{field}.output")
        output_shape = self.int_list(entry, "output_shape", f"{field}.output_shape", minimum=1)
        if kind == "crossbar":
            return self.crossbar(entry, field, spec, name, op, inputs, output, output_shape)
        if kind == "digital":
            params = self.get(entry, "params", "dict", f"{field}.params")
            requantize = self.get(entry, "requantize", "bool", f"{field}.requantize")
            arrays_doc = self.get(entry, "arrays", "dict", f"{field}.arrays")
            arrays = {}
            for key, ref in arrays_doc.items():
                if key not in _ARRAY_DTYPES:
                    self.fail(f"{field}.arrays", f"unknown array {key!r}; allowed: {sorted(_ARRAY_DTYPES)}")
                arrays[key] = self.array(ref, f"{field}.arrays.{key}", _ARRAY_DTYPES[key])
            return DigitalLayer(name, op, inputs, output, output_shape, params, arrays, requantize)
        self.fail(f"{field}.kind", f"value {_short(kind)} is not 'crossbar' or 'digital'")

    def crossbar(self, entry, field, spec, name, op, inputs, output, output_shape):
        geometry = self.get(entry, "geometry", "dict", f"{field}.geometry")
        g = f"{field}.geometry"
        rows = self.get(geometry, "rows", "int", f"{g}.rows")
        cols = self.get(geometry, "cols", "int", f"{g}.cols")
        if rows < 1 or cols < 1 or rows * cols > 1 << 31:
            self.fail(f"{g}.rows/cols", f"values {rows} x {cols} are not a valid weight matrix size")
        pads_doc = self.get(geometry, "pads", "list", f"{g}.pads")
        pads = []
        for j, pair in enumerate(pads_doc):
            self.check(pair, "list", f"{g}.pads[{j}]")
            if len(pair) != 2:
                self.fail(f"{g}.pads[{j}]", f"expected [before, after], got {_short(pair)}")
            pads.append(tuple(self.check(v, "int", f"{g}.pads[{j}]") for v in pair))
        tiling = self.get(entry, "tiling", "dict", f"{field}.tiling")
        tiles = []
        for j, tile_doc in enumerate(self.get(tiling, "tiles", "list", f"{field}.tiling.tiles")):
            t = f"{field}.tiling.tiles[{j}]"
            self.check(tile_doc, "dict", t)
            values = {}
            for f in dataclasses.fields(Tile):
                kind = "number" if f.name.endswith("utilisation") else "int"
                values[f.name] = self.get(tile_doc, f.name, kind, f"{t}.{f.name}")
            tiles.append(Tile(**values))
        bias_ref = self.get(entry, "bias", "dict", f"{field}.bias", allow_none=True)
        bias_int_ref = self.get(entry, "bias_int32", "dict", f"{field}.bias_int32", allow_none=True)
        return CrossbarLayer(
            name=name, op=op, inputs=inputs, output=output, output_shape=output_shape,
            input_shape=self.int_list(entry, "input_shape", f"{field}.input_shape", minimum=1),
            kernel_size=self.int_list(geometry, "kernel_size", f"{g}.kernel_size", minimum=1),
            strides=self.int_list(geometry, "strides", f"{g}.strides", minimum=1),
            dilation=self.int_list(geometry, "dilation", f"{g}.dilation", minimum=1),
            padding=self.get(geometry, "padding", "str", f"{g}.padding"),
            pads=tuple(pads),
            in_channels=self.get(geometry, "in_channels", "int", f"{g}.in_channels"),
            filters=self.get(geometry, "filters", "int", f"{g}.filters"),
            rows=rows, cols=cols,
            codes=self.array(self.get(entry, "codes", "dict", f"{field}.codes"), f"{field}.codes", np.int8,
                             (rows, cols)),
            levels=self.array(self.get(entry, "levels", "dict", f"{field}.levels"), f"{field}.levels", np.uint8,
                              (rows, cols, spec.devices_per_weight)),
            reference_level=self.get(entry, "reference_level", "int", f"{field}.reference_level", allow_none=True),
            bias=None if bias_ref is None else self.array(bias_ref, f"{field}.bias", np.float32, (cols,)),
            bias_int32=(None if bias_int_ref is None else
                        self.array(bias_int_ref, f"{field}.bias_int32", np.int32, (cols,))),
            activation=self.get(entry, "activation", "str", f"{field}.activation"),
            tiles=tuple(tiles),
            input_rails=self.get(geometry, "input_rails", "int", f"{g}.input_rails"),
            adc_full_scale=self.get(entry, "adc_full_scale", "int", f"{field}.adc_full_scale"),
        )


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(where, message, fix="re-export the mapping with tflite_export.export_crossbar"):
    raise MappingError(f"{where}: {message}. Fix: {fix}.")


def _validate(mapping):
    """Consistency checks shared by `load` and the `Mapping` constructor."""
    spec = mapping.spec
    if not isinstance(spec, NVMSpec) or spec.weight_scale is None:
        _fail("spec", f"expected a resolved NVMSpec (weight_scale set), got {_short(spec)}")
    inp = mapping.input
    if not isinstance(inp, InputEncoding):
        _fail("input", f"expected an InputEncoding, got {_short(inp)}")
    if inp.encoding not in ("signed-dac", "dual-rail"):
        _fail("input.encoding", f"value {inp.encoding!r} is not one of ['signed-dac', 'dual-rail']")
    if not np.isclose(inp.scale, spec.activation_step, rtol=1e-6, atol=0):
        _fail("input.scale", f"value {inp.scale!r} is not the shared grid step A/128 = {spec.activation_step!r}")
    if inp.zero_point != 0:
        _fail("input.zero_point", f"value {inp.zero_point!r} is not 0")
    if not inp.shape or any(not isinstance(d, int) or not 1 <= d <= _MAX_DIM for d in inp.shape):
        _fail("input.shape", f"value {list(inp.shape)} is not a list of positive integers")
    if inp.mean is not None:
        channels = inp.shape[-1]
        if inp.std is None or len(inp.mean) != channels or len(inp.std) != channels:
            _fail("input.standardisation", f"mean/std must each hold {channels} values (one per input channel)")
        if any(not s > 0 for s in inp.std):
            _fail("input.standardisation.std", "every std must be > 0")
    shapes = {inp.name: tuple(inp.shape)}
    names = set()
    level_top = 2 ** spec.weight_bits - 1
    for i, layer in enumerate(mapping.layers):
        where = f"layers[{i}] ({getattr(layer, 'name', '?')!r})"
        if not isinstance(layer, (CrossbarLayer, DigitalLayer)):
            _fail(where, f"expected a CrossbarLayer or DigitalLayer, got {type(layer).__name__}")
        if layer.name in names or layer.output in shapes:
            _fail(f"{where}.name", f"duplicate layer or tensor name {layer.name!r}")
        names.add(layer.name)
        if not layer.inputs:
            _fail(f"{where}.inputs", "is empty")
        for tensor in layer.inputs:
            if tensor not in shapes:
                _fail(f"{where}.inputs", f"tensor {tensor!r} is not produced by the input or an earlier layer "
                                         f"(known: {sorted(shapes)})")
        if not layer.output_shape or any(not isinstance(d, int) or not 1 <= d <= _MAX_DIM
                                         for d in layer.output_shape):
            _fail(f"{where}.output_shape", f"value {list(layer.output_shape)} is not a list of positive integers")
        if isinstance(layer, CrossbarLayer):
            _validate_crossbar(layer, spec, where, shapes, level_top)
        else:
            _validate_digital(layer, where, shapes)
        shapes[layer.output] = tuple(layer.output_shape)
    if not mapping.outputs:
        _fail("outputs", "is empty")
    for tensor in mapping.outputs:
        if tensor not in shapes:
            _fail("outputs", f"tensor {tensor!r} is not produced by any layer")
    if not isinstance(mapping.metadata, dict):
        _fail("metadata", f"expected an object, got {_short(mapping.metadata)}")


def _validate_crossbar(layer, spec, where, shapes, level_top):
    if layer.op not in CROSSBAR_OPS:
        _fail(f"{where}.op", f"value {layer.op!r} is not a crossbar op; allowed: {list(CROSSBAR_OPS)}")
    if len(layer.inputs) != 1:
        _fail(f"{where}.inputs", f"a crossbar layer has exactly one input, got {len(layer.inputs)}")
    if tuple(layer.input_shape) != shapes[layer.inputs[0]]:
        _fail(f"{where}.input_shape", f"value {list(layer.input_shape)} differs from the shape "
                                       f"{list(shapes[layer.inputs[0]])} of tensor {layer.inputs[0]!r}")
    spatial = 0 if layer.op == "dense" else (1 if layer.op == "conv1d" else 2)
    if spatial and (len(layer.input_shape) != spatial + 1 or len(layer.output_shape) != spatial + 1):
        _fail(f"{where}.input_shape", f"op {layer.op!r} needs rank-{spatial + 1} input and output shapes, got "
                                      f"{list(layer.input_shape)} and {list(layer.output_shape)}")
    if not spatial and tuple(layer.output_shape[:-1]) != tuple(layer.input_shape[:-1]):
        _fail(f"{where}.output_shape", f"a dense layer keeps every axis but the last: input "
                                       f"{list(layer.input_shape)}, output {list(layer.output_shape)}")
    for key in ("kernel_size", "strides", "dilation"):
        value = getattr(layer, key)
        if len(value) != spatial or any(not isinstance(v, int) or v < 1 for v in value):
            _fail(f"{where}.geometry.{key}", f"value {list(value)} must hold {spatial} positive integer(s) for "
                                             f"op {layer.op!r}")
    if len(layer.pads) != spatial or any(len(p) != 2 or min(p) < 0 for p in layer.pads):
        _fail(f"{where}.geometry.pads", f"value {[list(p) for p in layer.pads]} must hold {spatial} "
                                        "[before, after] pairs of integers >= 0")
    if layer.padding not in ("valid", "same"):
        _fail(f"{where}.geometry.padding", f"value {layer.padding!r} is not 'valid' or 'same'")
    if layer.in_channels != layer.input_shape[-1]:
        _fail(f"{where}.geometry.in_channels", f"value {layer.in_channels} differs from the input's last "
                                               f"dimension {layer.input_shape[-1]}")
    kernel = int(np.prod(layer.kernel_size)) if spatial else 1
    if layer.rows != kernel * layer.in_channels:
        _fail(f"{where}.geometry.rows", f"value {layer.rows} is not prod(kernel_size) * in_channels = "
                                        f"{kernel * layer.in_channels}")
    if layer.cols != layer.filters or layer.output_shape[-1] != layer.filters:
        _fail(f"{where}.geometry.cols", f"cols {layer.cols}, filters {layer.filters} and the output's last "
                                        f"dimension {layer.output_shape[-1]} must be equal")
    if spatial:
        for axis in range(spatial):
            size = layer.input_shape[axis] + sum(layer.pads[axis])
            span = (layer.kernel_size[axis] - 1) * layer.dilation[axis] + 1
            expected = (size - span) // layer.strides[axis] + 1 if size >= span else 0
            if layer.output_shape[axis] != expected:
                _fail(f"{where}.output_shape", f"spatial size {layer.output_shape[axis]} on axis {axis} differs "
                                               f"from the geometry's {expected}")
    codes = np.asarray(layer.codes)
    if codes.shape != (layer.rows, layer.cols) or codes.dtype != np.int8:
        _fail(f"{where}.codes", f"expected int8 [{layer.rows}, {layer.cols}], got {codes.dtype} {list(codes.shape)}")
    if codes.size and (codes.min() < spec.code_min or codes.max() > spec.code_max):
        _fail(f"{where}.codes", f"values {int(codes.min())}..{int(codes.max())} leave the device code range "
                                f"{spec.code_min}..{spec.code_max} of the spec")
    levels = np.asarray(layer.levels)
    if levels.shape != (layer.rows, layer.cols, spec.devices_per_weight) or levels.dtype != np.uint8:
        _fail(f"{where}.levels", f"expected uint8 [{layer.rows}, {layer.cols}, {spec.devices_per_weight}], got "
                                 f"{levels.dtype} {list(levels.shape)}")
    if levels.size and levels.max() > level_top:
        _fail(f"{where}.levels", f"level {int(levels.max())} exceeds the top level {level_top} of a "
                                 f"{spec.weight_bits}-bit device")
    if not np.array_equal(levels, levels_from_codes(codes, spec)):
        _fail(f"{where}.levels", "device levels do not realise the codes with the spec's mapping "
                                 f"({_mapping_name(spec)})")
    if layer.reference_level != _reference_level(spec):
        _fail(f"{where}.reference_level", f"value {layer.reference_level!r} is not "
                                          f"{_reference_level(spec)!r} for the {_mapping_name(spec)} mapping")
    if layer.activation not in ACTIVATIONS:
        _fail(f"{where}.activation", f"value {layer.activation!r} is not one of {list(ACTIVATIONS)}")
    if layer.input_rails not in (1, 2):
        _fail(f"{where}.geometry.input_rails", f"value {layer.input_rails!r} is not 1 or 2")
    if (layer.bias is None) != (layer.bias_int32 is None):
        _fail(f"{where}.bias", "bias and bias_int32 must both be present or both be null")
    if layer.bias is not None:
        step = np.float64(spec.activation_step) * np.float64(spec.weight_scale)
        if np.asarray(layer.bias).shape != (layer.cols,) or np.asarray(layer.bias_int32).shape != (layer.cols,):
            _fail(f"{where}.bias", f"bias arrays must have shape [{layer.cols}]")
        if not np.allclose(np.asarray(layer.bias_int32, np.float64) * step, np.asarray(layer.bias, np.float64),
                           rtol=1e-5, atol=step * 1e-3):
            _fail(f"{where}.bias_int32", "bias_int32 * activation_step * weight_scale does not equal bias")
    expected = plan_tiles(layer.rows, layer.cols, spec)
    if len(layer.tiles) != len(expected):
        _fail(f"{where}.tiling.tiles", f"{len(layer.tiles)} tile(s) listed, the spec's {spec.rows}x{spec.cols} "
                                       f"crossbars need {len(expected)} for a {layer.rows}x{layer.cols} matrix")
    for got, want in zip(layer.tiles, expected):
        if not isinstance(got, Tile) or dataclasses.astuple(got)[:8] != dataclasses.astuple(want)[:8] or not (
                np.isclose(got.row_utilisation, want.row_utilisation)
                and np.isclose(got.col_utilisation, want.col_utilisation)):
            _fail(f"{where}.tiling.tiles[{want.index}]",
                  f"tile {_short(got)} does not match the tiling {want} of the spec (tiles must cover every "
                  "weight exactly once, row-major)")
    top = 128 * max(1, level_top) * min(layer.rows, spec.rows)
    if layer.adc_full_scale != top:
        _fail(f"{where}.adc_full_scale", f"value {layer.adc_full_scale!r} is not 128 * top level * rows per "
                                         f"tile = {top}")


_DIGITAL_PARAMS = {
    "batch_norm": {"channels": "int"},
    "rescale": {"scale": "number", "offset": "number"},
    "global_average_pool": {"axes": "axis_list", "count": "int"},
    "max_pool": {"pool_size": "int_list", "strides": "int_list", "padding": "str"},
    "global_max_pool": {"axes": "axis_list"},
    "reshape": {},
    "concatenate": {"axis": "int"},
    "softmax": {"axis": "int"},
    "zero_pad": {"pads": "pairs"},
}


def _validate_digital(layer, where, shapes):
    if layer.op not in DIGITAL_OPS:
        _fail(f"{where}.op", f"value {layer.op!r} is not a digital op; allowed: {list(DIGITAL_OPS)}")
    if not isinstance(layer.params, dict):
        _fail(f"{where}.params", f"expected an object, got {_short(layer.params)}")
    if not isinstance(layer.requantize, bool):
        _fail(f"{where}.requantize", f"expected true or false, got {_short(layer.requantize)}")
    for key, kind in _DIGITAL_PARAMS.get(layer.op, {}).items():
        value = layer.params.get(key)
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value),
              "str": isinstance(value, str),
              "int_list": isinstance(value, list) and bool(value)
              and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= _MAX_DIM for v in value),
              "axis_list": isinstance(value, list) and bool(value)
              and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 8 for v in value),
              "pairs": isinstance(value, list)
              and all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                 and 0 <= v <= _MAX_DIM for v in p)
                                                  for p in value)}[kind]
        if not ok:
            _fail(f"{where}.params.{key}", f"value {_short(value)} is not a valid {kind} for op {layer.op!r}")
    in_shapes = [shapes[t] for t in layer.inputs]
    out = tuple(layer.output_shape)
    single = layer.op not in ("concatenate", "add")
    if single and len(layer.inputs) != 1:
        _fail(f"{where}.inputs", f"op {layer.op!r} takes one input, got {len(layer.inputs)}")
    size_in = int(np.prod(in_shapes[0]))
    if layer.op in ("relu", "rescale", "identity", "softmax", "batch_norm") and out != in_shapes[0]:
        _fail(f"{where}.output_shape", f"{list(out)} differs from the input shape {list(in_shapes[0])}")
    if layer.op in ("flatten", "reshape") and int(np.prod(out)) != size_in:
        _fail(f"{where}.output_shape", f"{list(out)} does not hold the {size_in} input values")
    if layer.op == "add" and any(s != out for s in in_shapes):
        _fail(f"{where}.output_shape", f"inputs {in_shapes} and output {list(out)} must have one shape")
    if layer.op == "concatenate":
        axis = layer.params["axis"]
        rank = len(out)
        if not -rank <= axis < rank or any(len(s) != rank for s in in_shapes):
            _fail(f"{where}.params.axis", f"value {axis} is not valid for rank-{rank} tensors {in_shapes}")
        axis %= rank
        total = sum(s[axis] for s in in_shapes)
        if out[axis] != total or any(s[:axis] + s[axis + 1:] != out[:axis] + out[axis + 1:] for s in in_shapes):
            _fail(f"{where}.output_shape", f"{list(out)} is not the concatenation of {in_shapes} on axis {axis}")
    if layer.op == "global_average_pool":
        axes = layer.params["axes"]
        if any(a >= len(in_shapes[0]) for a in axes):
            _fail(f"{where}.params.axes", f"value {axes} is out of range for input {list(in_shapes[0])}")
        count = int(np.prod([in_shapes[0][a] for a in axes]))
        if layer.params["count"] != count:
            _fail(f"{where}.params.count", f"value {layer.params['count']} is not the {count} values averaged")
    if layer.op == "batch_norm":
        channels = layer.params["channels"]
        if channels != in_shapes[0][-1]:
            _fail(f"{where}.params.channels", f"value {channels} is not the input's {in_shapes[0][-1]} channels")
        if sorted(layer.arrays) != ["multiplier", "offset", "scale"]:
            _fail(f"{where}.arrays", f"a batch_norm needs the arrays multiplier, offset, scale; got "
                                     f"{sorted(layer.arrays)}")
        for key, dtype, lo, hi in (("multiplier", np.int32, -127, 127), ("offset", np.int32, -(2 ** 22), 2 ** 22),
                                   ("scale", np.float32, 2.0 ** -126, 2.0 ** 100)):
            value = np.asarray(layer.arrays[key])
            if value.shape != (channels,) or value.dtype != dtype:
                _fail(f"{where}.arrays.{key}", f"expected a {np.dtype(dtype)} array of {channels} values, got "
                                               f"{value.dtype} {list(value.shape)}")
            if not np.all(np.isfinite(value)) or value.min() < lo or value.max() > hi:
                _fail(f"{where}.arrays.{key}", f"values must lie in {lo:g}..{hi:g}")
    elif layer.arrays:
        _fail(f"{where}.arrays", f"op {layer.op!r} takes no arrays, got {sorted(layer.arrays)}")
    if layer.op == "max_pool":
        params = layer.params
        if params["padding"] not in ("valid", "same") or len(params["pool_size"]) != len(params["strides"]) or \
                len(params["pool_size"]) != len(in_shapes[0]) - 1:
            _fail(f"{where}.params", f"pool_size/strides/padding {_short(params)} do not fit input "
                                     f"{list(in_shapes[0])}")
    if layer.op == "zero_pad" and len(layer.params["pads"]) != len(in_shapes[0]) - 1:
        _fail(f"{where}.params.pads", f"needs one [before, after] pair per spatial axis of {list(in_shapes[0])}")


# ---------------------------------------------------------------------- report
def layer_table(mapping):
    """One row per layer, for ``tf-nvm inspect`` and reports.

    Args:
        mapping: a `Mapping`.

    Returns:
        list of dicts: ``name``, ``kind``, ``op``, ``shape`` (``"rows x cols"``
        for crossbars, the output shape otherwise), ``tiles``, ``devices``,
        ``row_util`` / ``col_util`` (mean over tiles, 0..1, None for digital),
        ``dacs`` (row drivers over all tiles), ``adcs`` (device columns
        digitised over all tiles), ``reads`` (crossbar reads per inference:
        output positions x input rails).
    """
    rows = []
    for layer in mapping.layers:
        if isinstance(layer, CrossbarLayer):
            positions = int(np.prod(layer.output_shape[:-1])) if len(layer.output_shape) > 1 else 1
            rows.append({"name": layer.name, "kind": "crossbar", "op": layer.op,
                         "shape": f"{layer.rows} x {layer.cols}", "tiles": len(layer.tiles),
                         "devices": layer.devices,
                         "row_util": float(np.mean([t.row_utilisation for t in layer.tiles])),
                         "col_util": float(np.mean([t.col_utilisation for t in layer.tiles])),
                         "dacs": sum(t.rows_used for t in layer.tiles),
                         "adcs": sum(t.device_cols for t in layer.tiles),
                         "reads": positions * layer.input_rails})
        else:
            rows.append({"name": layer.name, "kind": "digital", "op": layer.op,
                         "shape": "x".join(str(d) for d in layer.output_shape), "tiles": 0, "devices": 0,
                         "row_util": None, "col_util": None, "dacs": 0, "adcs": 0, "reads": 0})
    return rows


def format_table(mapping):
    """A plain-text table of `layer_table` with a header (spec) and totals."""
    spec = mapping.spec
    kind = _mapping_name(spec)
    lines = [f"mapping: {spec.weight_bits}-bit {kind} devices ({spec.devices_per_weight} per weight), "
             f"{spec.rows}x{spec.cols} crossbars, weight scale {spec.weight_scale:.6g}, activation range "
             f"{spec.activation_range:g} (step {spec.activation_step:g}), DAC {spec.dac_bits} bit, ADC "
             f"{spec.adc_bits} bit, G {spec.g_min_us:g}..{spec.g_max_us:g} uS",
             f"input: {mapping.input.name} {list(mapping.input.shape)}, {mapping.input.encoding}"
             + (", standardised (mean/std known)" if mapping.input.mean is not None else "")]
    header = f"{'layer':24s} {'op':20s} {'shape':>12s} {'tiles':>5s} {'devices':>8s} {'row util':>8s} " \
             f"{'col util':>8s} {'DACs':>6s} {'ADCs':>6s} {'reads':>6s}"
    lines += [header, "-" * len(header)]
    table = layer_table(mapping)

    def util(value):
        return "" if value is None else f"{100 * value:7.1f}%"

    for row in table:
        lines.append(f"{row['name'][:24]:24s} {row['op'][:20]:20s} {row['shape'][:12]:>12s} "
                     f"{row['tiles'] or '':>5} {row['devices'] or '':>8} {util(row['row_util']):>8s} "
                     f"{util(row['col_util']):>8s} {row['dacs'] or '':>6} {row['adcs'] or '':>6} "
                     f"{row['reads'] or '':>6}")
    total = mapping.summary()
    lines.append("-" * len(header))
    lines.append(f"total: {total['crossbar_layers']} crossbar layers on {total['tiles']} tiles, "
                 f"{total['devices']} devices, {sum(r['dacs'] for r in table)} row DACs, "
                 f"{total['adc_columns']} ADC columns, {total['digital_steps']} digital steps")
    return "\n".join(lines)

