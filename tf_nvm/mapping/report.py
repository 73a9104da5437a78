"""Human-readable views of a mapping: one row per layer (`layer_table`) and a plain-text table (`format_table`).

Numpy only (mapping-format layer).
"""

import math
from typing import Any

import numpy as np

from tf_nvm.mapping.network import Mapping
from tf_nvm.mapping.types import CrossbarLayer

__all__ = ["layer_table", "format_table"]


def layer_table(mapping: Mapping) -> list[dict[str, Any]]:
    """One row per layer, for ``tf-nvm inspect`` and reports.

    Args:
        mapping: a `Mapping`.

    Returns:
        list of dicts: ``name``, ``kind``, ``op``, ``shape`` (``"rows x cols"``
        for crossbars, the output shape otherwise), ``tiles``, ``devices``,
        ``weights`` (the Keras kernel's size, `CrossbarLayer.weights`),
        ``device_util`` (``weights / devices``, 0..1, None for digital: the share of
        programmed devices that hold a weight), ``row_util`` / ``col_util`` (mean
        over tiles of the used rows / columns, 0..1, None for digital; a used row
        may hold structural zeros, e.g. the other channels' columns in a depthwise tile),
        ``dacs`` (row drivers over all tiles), ``adcs`` (device columns
        digitised over all tiles), ``reads`` (crossbar reads per inference:
        output positions x input rails).
    """
    rows = []
    for layer in mapping.layers:
        if isinstance(layer, CrossbarLayer):
            positions = math.prod(layer.output_shape[:-1])
            rows.append({"name": layer.name, "kind": "crossbar", "op": layer.op,
                         "shape": f"{layer.rows} x {layer.cols}", "tiles": len(layer.tiles),
                         "devices": layer.devices, "weights": layer.weights,
                         "device_util": layer.device_utilization,
                         "row_util": float(np.mean([t.row_utilisation for t in layer.tiles])),
                         "col_util": float(np.mean([t.col_utilisation for t in layer.tiles])),
                         "dacs": sum(t.rows_used for t in layer.tiles),
                         "adcs": sum(t.device_cols for t in layer.tiles),
                         "reads": positions * layer.input_rails})
        else:
            rows.append({"name": layer.name, "kind": "digital", "op": layer.op,
                         "shape": "x".join(str(d) for d in layer.output_shape), "tiles": 0, "devices": 0,
                         "weights": 0, "device_util": None, "row_util": None, "col_util": None, "dacs": 0, "adcs": 0,
                         "reads": 0})
    return rows


def _util(value):
    return "" if value is None else f"{100 * value:7.1f}%"


def _held(layers):
    held, spent = sum(layer.weights for layer in layers), sum(layer.devices for layer in layers)
    return f"{held} weights on {spent} devices ({100 * held / spent:.1f}%)"


def format_table(mapping: Mapping) -> str:
    """A plain-text table of `layer_table` with a header (spec) and totals."""
    spec = mapping.spec
    lines = [f"mapping: {spec.weight_bits}-bit {spec.mapping_kind} devices ({spec.devices_per_weight} per weight), "
             f"{spec.rows}x{spec.cols} crossbars, weight scale {spec.weight_scale:.6g}, activation range "
             f"{spec.activation_range:g} (step {spec.activation_step:g}), DAC {spec.dac_bits} bit, ADC "
             f"{spec.adc_bits} bit, G {spec.g_min_us:g}..{spec.g_max_us:g} uS",
             f"input: {mapping.input.name} {list(mapping.input.shape)}, {mapping.input.encoding}"
             + (", standardised (mean/std known)" if mapping.input.mean is not None else "")]
    header = f"{'layer':24s} {'op':20s} {'shape':>12s} {'tiles':>5s} {'devices':>8s} {'weights':>8s} " \
             f"{'dev util':>8s} {'row util':>8s} " \
             f"{'col util':>8s} {'DACs':>6s} {'ADCs':>6s} {'reads':>6s}"
    lines += [header, "-" * len(header)]
    table = layer_table(mapping)
    for row in table:
        lines.append(f"{row['name'][:24]:24s} {row['op'][:20]:20s} {row['shape'][:12]:>12s} "
                     f"{row['tiles'] or '':>5} {row['devices'] or '':>8} {row['weights'] or '':>8} "
                     f"{_util(row['device_util']):>8s} {_util(row['row_util']):>8s} "
                     f"{_util(row['col_util']):>8s} {row['dacs'] or '':>6} {row['adcs'] or '':>6} "
                     f"{row['reads'] or '':>6}")
    total = mapping.summary()
    lines.append("-" * len(header))
    lines.append(f"total: {total['crossbar_layers']} crossbar layers on {total['tiles']} tiles, "
                 f"{total['devices']} devices, {sum(r['dacs'] for r in table)} row DACs, "
                 f"{total['adc_columns']} ADC columns, {total['digital_steps']} digital steps")
    lines.append(f"device utilisation: {total['weights']} weights / {total['devices']} devices = "
                 f"{100 * total['device_utilisation']:.1f}% (at most {100 / spec.devices_per_weight:.1f}% with "
                 f"{spec.devices_per_weight} device(s) per weight)")
    depthwise = [layer for layer in mapping.crossbar_layers if layer.op == "depthwise_conv2d"]
    compact = [layer for layer in depthwise if layer.channels_per_tile is not None]
    grid = [layer for layer in depthwise if layer.channels_per_tile is None]
    if compact:
        lines.append(f"depthwise layers: {len(compact)} block-diagonal (only the diagonal tiles are programmed, "
                     f"{'/'.join(sorted({str(layer.channels_per_tile) for layer in compact}, key=int))} channels per "
                     f"tile): {_held(compact)}; the zeros between a tile's channel blocks are programmed devices")
    if grid:
        lines.append(f"depthwise layers: {len(grid)} on the full block-diagonal (k*k*C) x C matrix (grid layout: a "
                     f"version-1 mapping, or a channel that does not fit one tile): {_held(grid)}; every zero of the "
                     "block diagonal is a programmed device")
    return "\n".join(lines)
