"""Devices: conductance levels of weight codes, the conductance table, G_min removal, ADC full scale.

Each quantity is defined once here; the mapping kind, top level, reference
level and devices per weight are the `NVMSpec` properties (``mapping_kind``,
``top_level``, ``reference_level``, ``devices_per_weight``).

Numpy only (mapping-format layer).
"""

from typing import Any

import numpy as np

from tf_nvm.core.spec import NVMSpec

__all__ = [
    "conductance_table",
    "levels_from_codes",
    "codes_from_levels",
    "reference_columns",
    "adc_full_scale",
    "g_min_removal",
    "G_MIN_REMOVAL",
]

G_MIN_REMOVAL = {
    "unipolar": "digital: subtract g_min * sum(inputs) (known input sum)",
    "differential": "analog: the pair subtracts, G_min cancels",
    "offset": "reference column at reference_level, subtracted per column",
}
"""How the G_min offset of every device is removed, per mapping kind (text written to the file)."""


def conductance_table(spec: NVMSpec) -> np.ndarray:
    """Conductance of every level of the spec's devices.

    Args:
        spec: `NVMSpec`.

    Returns:
        float64 array of ``spec.level_count`` conductances in microsiemens, from
        ``g_min_us`` (level 0) to ``g_max_us`` (top level), evenly spaced.
    """
    return np.linspace(spec.g_min_us, spec.g_max_us, spec.level_count)


def levels_from_codes(codes: Any, spec: NVMSpec) -> np.ndarray:
    """Device conductance levels of integer weight codes.

    Args:
        codes: integer array of codes in ``[spec.code_min, spec.code_max]``.
        spec: `NVMSpec`.

    Returns:
        uint8 array ``codes.shape + (devices_per_weight,)``: unipolar
        ``level = code``; differential ``(max(code,0), max(-code,0))`` for
        (G+, G-); offset ``level = code - code_min`` (reference column at
        ``spec.reference_level = -code_min``).
    """
    codes = np.asarray(codes, np.int32)
    kind = spec.mapping_kind
    if kind == "unipolar":
        levels = codes[..., None]
    elif kind == "differential":
        levels = np.stack([np.maximum(codes, 0), np.maximum(-codes, 0)], axis=-1)
    else:
        levels = (codes - spec.code_min)[..., None]
    return levels.astype(np.uint8)


def codes_from_levels(levels: Any, spec: NVMSpec) -> np.ndarray:
    """Inverse of `levels_from_codes`: the code each device group realises (int32)."""
    levels = np.asarray(levels, np.int32)
    kind = spec.mapping_kind
    if kind == "unipolar":
        return levels[..., 0]
    if kind == "differential":
        return levels[..., 0] - levels[..., 1]
    return levels[..., 0] + spec.code_min


def reference_columns(spec: NVMSpec) -> int:
    """Reference columns per tile: 1 for the offset mapping (at ``spec.reference_level``), else 0."""
    return 0 if spec.reference_level is None else 1


def adc_full_scale(rows: int, spec: NVMSpec) -> int:
    """Largest |partial sum| one tile column produces, in MAC units.

    Args:
        rows: weight rows of the layer (im2col rows); a tile holds at most ``spec.rows``.
        spec: `NVMSpec`.

    Returns:
        int: ``128 * max(1, top level) * min(rows, spec.rows)`` (|input code| <= 128).
    """
    return 128 * max(1, spec.top_level) * min(rows, spec.rows)


def g_min_removal(spec: NVMSpec) -> Any:
    """How the spec's mapping removes the G_min offset (one line of text, see `G_MIN_REMOVAL`)."""
    return G_MIN_REMOVAL[spec.mapping_kind]
