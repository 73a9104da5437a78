"""Consistency checks of a `Mapping`, run by its constructor (and so by `load`).

Crossbar layers: geometry, codes in the device range, levels that realise the
codes, reference level, bias, tiling (the grid, or a depthwise layer's block-diagonal
layout: ``channels_per_tile`` feasible, codes off the channel blocks 0), ADC full scale. Digital layers: every
check comes from the op's entry in `tf_nvm.mapping.ops.DIGITAL_OPS` (params,
arrays, number of inputs, requantize flag, shape rule). Every defect raises
`MappingError` naming the field, the value, what is allowed and the fix.

Numpy only (mapping-format layer).
"""

import dataclasses
import math
from typing import Any, NoReturn

import numpy as np

from tf_nvm.core.errors import MappingError
from tf_nvm.mapping.device import adc_full_scale, levels_from_codes
from tf_nvm.mapping.ops import DIGITAL_OPS, OpShapeError, param_ok
from tf_nvm.mapping.tiling import (MAX_TILES, depthwise_channels_per_tile, diagonal_tile_count, layer_tiles, tile_count,
                                   window_output_size)
from tf_nvm.mapping.types import (ACTIVATIONS, CROSSBAR_OPS, MAX_DIM, CrossbarLayer, DigitalLayer, InputEncoding,
                                  Tile)
from tf_nvm.core.spec import NVMSpec
from tf_nvm.core.validate import is_kind

__all__ = ["validate_mapping", "short", "fail", "REEXPORT"]

REEXPORT = "re-export the mapping with tflite_export.export_crossbar"
"""The default fix of a defective mapping."""


def short(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (for messages)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(where: str, message: str, fix: str = REEXPORT) -> NoReturn:
    """Raises ``MappingError("{where}: {message}. Fix: {fix}.")``."""
    raise MappingError(f"{where}: {message}. Fix: {fix}.")


def _dims_ok(shape):
    return bool(shape) and all(is_kind(d, "int") and 1 <= d <= MAX_DIM for d in shape)


def validate_mapping(mapping: Any) -> None:
    """Checks a whole mapping (what `Mapping.__post_init__` runs).

    Raises:
        MappingError: the first defect found.
    """
    spec = mapping.spec
    if not isinstance(spec, NVMSpec) or spec.weight_scale is None:
        fail("spec", f"expected a resolved NVMSpec (weight_scale set), got {short(spec)}")
    inp = mapping.input
    if not isinstance(inp, InputEncoding):
        fail("input", f"expected an InputEncoding, got {short(inp)}")
    if inp.encoding not in ("signed-dac", "dual-rail"):
        fail("input.encoding", f"value {inp.encoding!r} is not one of ['signed-dac', 'dual-rail']")
    if not np.isclose(inp.scale, spec.activation_step, rtol=1e-6, atol=0):
        fail("input.scale", f"value {inp.scale!r} is not the shared grid step A/128 = {spec.activation_step!r}")
    if inp.zero_point != 0:
        fail("input.zero_point", f"value {inp.zero_point!r} is not 0")
    if not _dims_ok(inp.shape):
        fail("input.shape", f"value {list(inp.shape)} is not a list of positive integers")
    if inp.mean is not None:
        channels = inp.shape[-1]
        if inp.std is None or len(inp.mean) != channels or len(inp.std) != channels:
            fail("input.standardisation", f"mean/std must each hold {channels} values (one per input channel)")
        if any(not s > 0 for s in inp.std):
            fail("input.standardisation.std", "every std must be > 0")
    shapes = {inp.name: tuple(inp.shape)}
    names = set()
    for i, layer in enumerate(mapping.layers):
        where = f"layers[{i}] ({getattr(layer, 'name', '?')!r})"
        if not isinstance(layer, (CrossbarLayer, DigitalLayer)):
            fail(where, f"expected a CrossbarLayer or DigitalLayer, got {type(layer).__name__}")
        if layer.name in names or layer.output in shapes:
            fail(f"{where}.name", f"duplicate layer or tensor name {layer.name!r}")
        names.add(layer.name)
        if not layer.inputs:
            fail(f"{where}.inputs", "is empty")
        for tensor in layer.inputs:
            if tensor not in shapes:
                fail(f"{where}.inputs", f"tensor {tensor!r} is not produced by the input or an earlier layer "
                                        f"(known: {sorted(shapes)})")
        if not _dims_ok(layer.output_shape):
            fail(f"{where}.output_shape", f"value {list(layer.output_shape)} is not a list of positive integers")
        if isinstance(layer, CrossbarLayer):
            _validate_crossbar(layer, spec, where, shapes)
        else:
            _validate_digital(layer, where, shapes)
        shapes[layer.output] = tuple(layer.output_shape)
    if not mapping.outputs:
        fail("outputs", "is empty")
    for tensor in mapping.outputs:
        if tensor not in shapes:
            fail("outputs", f"tensor {tensor!r} is not produced by any layer")
    if not isinstance(mapping.metadata, dict):
        fail("metadata", f"expected an object, got {short(mapping.metadata)}")


def _validate_geometry(layer, where, shapes):
    if layer.op not in CROSSBAR_OPS:
        fail(f"{where}.op", f"value {layer.op!r} is not a crossbar op; allowed: {list(CROSSBAR_OPS)}")
    if len(layer.inputs) != 1:
        fail(f"{where}.inputs", f"a crossbar layer has exactly one input, got {len(layer.inputs)}")
    if tuple(layer.input_shape) != shapes[layer.inputs[0]]:
        fail(f"{where}.input_shape", f"value {list(layer.input_shape)} differs from the shape "
                                     f"{list(shapes[layer.inputs[0]])} of tensor {layer.inputs[0]!r}")
    spatial = 0 if layer.op == "dense" else (1 if layer.op == "conv1d" else 2)
    if spatial and (len(layer.input_shape) != spatial + 1 or len(layer.output_shape) != spatial + 1):
        fail(f"{where}.input_shape", f"op {layer.op!r} needs rank-{spatial + 1} input and output shapes, got "
                                     f"{list(layer.input_shape)} and {list(layer.output_shape)}")
    if not spatial and tuple(layer.output_shape[:-1]) != tuple(layer.input_shape[:-1]):
        fail(f"{where}.output_shape", f"a dense layer keeps every axis but the last: input "
                                      f"{list(layer.input_shape)}, output {list(layer.output_shape)}")
    for key in ("kernel_size", "strides", "dilation"):
        value = getattr(layer, key)
        if len(value) != spatial or any(not isinstance(v, int) or v < 1 for v in value):
            fail(f"{where}.geometry.{key}", f"value {list(value)} must hold {spatial} positive integer(s) for "
                                            f"op {layer.op!r}")
    if len(layer.pads) != spatial or any(len(p) != 2 or min(p) < 0 for p in layer.pads):
        fail(f"{where}.geometry.pads", f"value {[list(p) for p in layer.pads]} must hold {spatial} "
                                       "[before, after] pairs of integers >= 0")
    if layer.padding not in ("valid", "same"):
        fail(f"{where}.geometry.padding", f"value {layer.padding!r} is not 'valid' or 'same'")
    if layer.in_channels != layer.input_shape[-1]:
        fail(f"{where}.geometry.in_channels", f"value {layer.in_channels} differs from the input's last "
                                              f"dimension {layer.input_shape[-1]}")
    kernel = math.prod(layer.kernel_size)
    if layer.rows != kernel * layer.in_channels:
        fail(f"{where}.geometry.rows", f"value {layer.rows} is not prod(kernel_size) * in_channels = "
                                       f"{kernel * layer.in_channels}")
    if layer.cols != layer.filters or layer.output_shape[-1] != layer.filters:
        fail(f"{where}.geometry.cols", f"cols {layer.cols}, filters {layer.filters} and the output's last "
                                       f"dimension {layer.output_shape[-1]} must be equal")
    for axis in range(spatial):
        expected = window_output_size(layer.input_shape[axis] + sum(layer.pads[axis]), layer.kernel_size[axis],
                                      layer.strides[axis], layer.dilation[axis])
        if layer.output_shape[axis] != expected:
            fail(f"{where}.output_shape", f"spatial size {layer.output_shape[axis]} on axis {axis} differs "
                                          f"from the geometry's {expected}")


def _validate_crossbar(layer, spec, where, shapes):
    _validate_geometry(layer, where, shapes)
    codes = np.asarray(layer.codes)
    if codes.shape != (layer.rows, layer.cols) or codes.dtype != np.int8:
        fail(f"{where}.codes", f"expected int8 [{layer.rows}, {layer.cols}], got {codes.dtype} {list(codes.shape)}")
    if codes.size and (codes.min() < spec.code_min or codes.max() > spec.code_max):
        fail(f"{where}.codes", f"values {int(codes.min())}..{int(codes.max())} leave the device code range "
                               f"{spec.code_min}..{spec.code_max} of the spec")
    levels = np.asarray(layer.levels)
    if levels.shape != (layer.rows, layer.cols, spec.devices_per_weight) or levels.dtype != np.uint8:
        fail(f"{where}.levels", f"expected uint8 [{layer.rows}, {layer.cols}, {spec.devices_per_weight}], got "
                                f"{levels.dtype} {list(levels.shape)}")
    if levels.size and levels.max() > spec.top_level:
        fail(f"{where}.levels", f"level {int(levels.max())} exceeds the top level {spec.top_level} of a "
                                f"{spec.weight_bits}-bit device")
    if not np.array_equal(levels, levels_from_codes(codes, spec)):
        fail(f"{where}.levels", f"device levels do not realise the codes with the spec's mapping ({spec.mapping_kind})")
    if layer.reference_level != spec.reference_level:
        fail(f"{where}.reference_level", f"value {layer.reference_level!r} is not {spec.reference_level!r} for the "
                                         f"{spec.mapping_kind} mapping")
    if layer.activation not in ACTIVATIONS:
        fail(f"{where}.activation", f"value {layer.activation!r} is not one of {list(ACTIVATIONS)}")
    if layer.input_rails not in (1, 2):
        fail(f"{where}.geometry.input_rails", f"value {layer.input_rails!r} is not 1 or 2")
    if (layer.bias is None) != (layer.bias_int32 is None):
        fail(f"{where}.bias", "bias and bias_int32 must both be present or both be null")
    if layer.bias is not None:
        step = np.float64(spec.activation_step) * np.float64(spec.weight_scale)
        if np.asarray(layer.bias).shape != (layer.cols,) or np.asarray(layer.bias_int32).shape != (layer.cols,):
            fail(f"{where}.bias", f"bias arrays must have shape [{layer.cols}]")
        if not np.allclose(np.asarray(layer.bias_int32, np.float64) * step, np.asarray(layer.bias, np.float64),
                           rtol=1e-5, atol=step * 1e-3):
            fail(f"{where}.bias_int32", "bias_int32 * activation_step * weight_scale does not equal bias")
    if layer.channels_per_tile is None:
        count = tile_count(layer.rows, layer.cols, spec)
        layout = f"for a {layer.rows}x{layer.cols} matrix"
    else:
        _validate_block_diagonal(layer, spec, where)
        count = diagonal_tile_count(layer.in_channels, layer.channels_per_tile)
        layout = (f"for {layer.in_channels} depthwise channels at {layer.channels_per_tile} per crossbar "
                  "(block-diagonal layout)")
    if count > MAX_TILES or len(layer.tiles) != count:  # counted before any Tile is built
        fail(f"{where}.tiling.tiles", f"{len(layer.tiles)} tile(s) listed, the spec's {spec.rows}x{spec.cols} "
                                      f"crossbars need {count} {layout} (at most {MAX_TILES} per layer)")
    expected = layer_tiles(layer, spec)
    for got, want in zip(layer.tiles, expected):
        if not isinstance(got, Tile) or dataclasses.astuple(got)[:8] != dataclasses.astuple(want)[:8] or not (
                np.isclose(got.row_utilisation, want.row_utilisation)
                and np.isclose(got.col_utilisation, want.col_utilisation)):
            fail(f"{where}.tiling.tiles[{want.index}]",
                 f"tile {short(got)} does not match the tiling {want} of the spec (tiles must cover every "
                 "weight exactly once, in the order of the layer's layout)")
    top = adc_full_scale(layer.rows, spec)
    if layer.adc_full_scale != top:
        fail(f"{where}.adc_full_scale", f"value {layer.adc_full_scale!r} is not 128 * top level * rows per "
                                        f"tile = {top}")


def _validate_block_diagonal(layer, spec, where):
    """Checks ``channels_per_tile`` and that every code off the channel blocks is 0 (no device holds it)."""
    g = layer.channels_per_tile
    field = f"{where}.tiling.channels_per_tile"
    if layer.op != "depthwise_conv2d":
        fail(field, f"value {short(g)} is set for op {layer.op!r}; only a depthwise_conv2d layer has the "
                    "block-diagonal layout (null: the grid layout)")
    if not is_kind(g, "int") or not 1 <= g <= layer.in_channels:
        fail(field, f"value {short(g)} is not an integer in 1..in_channels = {layer.in_channels}")
    if layer.cols % layer.in_channels:
        fail(f"{where}.geometry.cols", f"a depthwise layer has in_channels x depth multiplier columns; {layer.cols} "
                                       f"is not a multiple of in_channels = {layer.in_channels}")
    kernel, multiplier = math.prod(layer.kernel_size), layer.cols // layer.in_channels
    most = depthwise_channels_per_tile(kernel, multiplier, spec)
    if g > most:
        fail(field, f"value {g}: {g} channels of {kernel} taps and {multiplier} output(s) each do not fit one "
                    f"{spec.rows}x{spec.cols} crossbar of the spec (at most {most})",
             "re-export the mapping for this spec with tflite_export.export_crossbar")
    on_block = (np.arange(layer.rows)[:, None] // kernel) == (np.arange(layer.cols)[None, :] // multiplier)
    stray = np.count_nonzero(np.asarray(layer.codes)[~on_block])
    if stray:
        fail(f"{where}.codes", f"{stray} code(s) off the channel blocks are not 0; in the block-diagonal layout "
                               "(channel-major rows) channel c holds only rows c*prod(kernel_size).. and its own "
                               "output columns, and entries outside the diagonal tiles have no device")


def _validate_digital(layer, where, shapes):
    if layer.op not in DIGITAL_OPS:
        fail(f"{where}.op", f"value {layer.op!r} is not a digital op; allowed: {DIGITAL_OPS.names()}")
    op = DIGITAL_OPS.get(layer.op)
    if not isinstance(layer.params, dict):
        fail(f"{where}.params", f"expected an object, got {short(layer.params)}")
    if not is_kind(layer.requantize, "bool"):
        fail(f"{where}.requantize", f"expected true or false, got {short(layer.requantize)}")
    if op.requantize != "either" and layer.requantize != (op.requantize == "always"):
        fail(f"{where}.requantize", f"value {str(layer.requantize).lower()} is not allowed for op {op.name!r}, "
                                    f"whose result is {'always' if op.requantize == 'always' else 'never'} requantized")
    for key, kind in op.params.items():
        value = layer.params.get(key)
        if not param_ok(kind, value):
            fail(f"{where}.params.{key}", f"value {short(value)} is not a valid {kind} for op {layer.op!r}")
    if op.inputs is not None and len(layer.inputs) != op.inputs:
        fail(f"{where}.inputs", f"op {layer.op!r} takes {op.inputs} input(s), got {len(layer.inputs)}")
    in_shapes = [shapes[t] for t in layer.inputs]
    out = tuple(layer.output_shape)
    try:
        expected = op.shape(in_shapes, layer.params, out)
    except OpShapeError as err:
        fail(f"{where}.{err.field}", err.message)
    if out != tuple(expected):
        fail(f"{where}.output_shape", f"value {list(out)} is not the shape {list(expected)} op {layer.op!r} gives "
                                      f"for input(s) {[list(s) for s in in_shapes]} and params {short(layer.params)}")
    _validate_arrays(layer, op, where)


def _validate_arrays(layer, op, where):
    if not op.arrays:
        if layer.arrays:
            fail(f"{where}.arrays", f"op {layer.op!r} takes no arrays, got {sorted(layer.arrays)}")
        return
    if sorted(layer.arrays) != sorted(op.arrays):
        fail(f"{where}.arrays", f"a {layer.op} needs the arrays {', '.join(sorted(op.arrays))}; got "
                                f"{sorted(layer.arrays)}")
    channels = layer.params["channels"]
    for key, array in sorted(op.arrays.items()):
        value = np.asarray(layer.arrays[key])
        if value.shape != (channels,) or value.dtype != np.dtype(array.dtype):
            fail(f"{where}.arrays.{key}", f"expected a {array.dtype} array of {channels} values, got "
                                          f"{value.dtype} {list(value.shape)}")
        if not np.all(np.isfinite(value)) or value.min() < array.low or value.max() > array.high:
            fail(f"{where}.arrays.{key}", f"values must lie in {array.low:g}..{array.high:g}")
