"""Reading and writing mapping files: ``PREFIX.json`` (structure) + ``PREFIX.npz`` (arrays).

The JSON names the npz file and its SHA-256, so a mismatched or corrupt pair is
detected. `save` writes both atomically (temporary files, then ``os.replace``,
npz first); reading is `tf_nvm.mapping.reader.load`, which parses every field
against `tf_nvm.mapping.schema` and then validates the whole mapping.

Numpy only (mapping-format layer).
"""

import dataclasses
import hashlib
import io
import json
import os
import contextlib
import secrets
from typing import Any

import numpy as np

from tf_nvm.core import safe_io
from tf_nvm.core.atomic import write_files_atomic
from tf_nvm.core.errors import MappingError
from tf_nvm.mapping.device import conductance_table, g_min_removal
from tf_nvm.mapping.network import Mapping
from tf_nvm.mapping.types import FORMAT, ROUNDING, SCHEMA_VERSION, CrossbarLayer

__all__ = ["paths", "json_path_of", "save", "content_hash", "MAX_JSON_BYTES", "MAX_NPZ_BYTES", "MAX_ARRAY_BYTES"]

MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest mapping JSON read, bytes (64 MiB)."""
MAX_NPZ_BYTES = 1024 ** 3
"""Largest npz file read, bytes (1 GiB, compressed)."""
MAX_ARRAY_BYTES = 2 * 1024 ** 3
"""Most bytes all arrays of one mapping may declare together (2 GiB, uncompressed); checked before decompressing."""


def json_path_of(path: Any) -> str:
    """The ``PREFIX.json`` of a mapping given its prefix or its ``.json`` file name.

    Raises:
        MappingError: ``path`` is not a str or os.PathLike, is empty, or holds a NUL character.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise MappingError(f"mapping path: value {str(path)[:80]!r} ({type(path).__name__}) is not allowed; allowed: "
                           "a str or os.PathLike naming the PREFIX or PREFIX.json. Fix: pass the prefix written by "
                           "tflite_export.export_crossbar.")
    path = os.fspath(path)
    path = os.fsdecode(path) if isinstance(path, bytes) else path
    if not path or "\x00" in path:
        raise MappingError(f"mapping path: value {path[:80]!r} is not allowed (empty, or holding a NUL character); "
                           "allowed: a file name. Fix: pass the prefix written by tflite_export.export_crossbar.")
    return path if path.endswith(".json") else path + ".json"


def paths(path: Any) -> tuple[str, str | None]:
    """(json path, npz path) of a saved mapping: the npz is the one its JSON names (None when unreadable)."""
    json_path = json_path_of(path)
    return json_path, _referenced_npz(json_path)


# ------------------------------------------------------------------------ writing
def _array_ref(arrays, key, value):
    arrays[key] = value
    return {"array": key, "dtype": str(value.dtype), "shape": list(value.shape)}


def _periphery(spec):
    return {
        "dac": {"bits": spec.dac_bits, "input_codes": [-128, 127], "range_model_units": [-spec.activation_range,
                                                                                          spec.activation_max],
                "step_model_units": spec.activation_range / 2 ** (spec.dac_bits - 1),
                "note": "inputs are int8 codes on the shared grid; a DAC with dac_bits < 8 drops the low bits"},
        "adc": {"bits": spec.adc_bits, "per": "device column",
                "exact_range": "per tile: adc_full_scale MAC units (see each layer)",
                "note": "the digital arithmetic below assumes every partial sum is digitised exactly; the "
                        "simulator applies adc_bits"},
        "activation_grid": {"range": spec.activation_range, "step": spec.activation_step, "codes": [-128, 127],
                            "rounding": ROUNDING},
    }


def _conductance(spec):
    table = conductance_table(spec)
    return {"mapping": spec.mapping_kind, "devices_per_weight": spec.devices_per_weight, "levels": spec.level_count,
            "g_min_us": spec.g_min_us, "g_max_us": spec.g_max_us,
            "level_step_us": float(table[1] - table[0]) if len(table) > 1 else 0.0,
            "code_min": spec.code_min, "code_max": spec.code_max, "reference_level": spec.reference_level,
            "g_min_removal": g_min_removal(spec)}


def _crossbar_steps(layer, spec):
    """The periphery pipeline after the ADCs, in words (informational)."""
    steps = []
    if layer.input_rails == 2:
        steps.append("dual_rail: read max(x,0) then max(-x,0) on the same rows; subtract the two conversions")
    if spec.mapping_kind == "differential":
        steps.append("pair: acc = ADC(G+ column) - ADC(G- column)")
    elif spec.mapping_kind == "offset":
        steps.append("offset: acc = ADC(column) - ADC(reference column)")
    else:
        steps.append("g_min: subtract g_min * sum(inputs) (digital, known input sum)")
    if layer.partial_sum_tiles > 1:
        steps.append("partial_sums: add the row tiles' results (int32)")
    steps.append("bias: acc += bias_int32" if layer.bias_int32 is not None else "bias: none")
    steps.append(f"scale: v = acc * weight_scale (grid units), weight_scale = {spec.weight_scale!r}")
    if layer.activation == "relu":
        steps.append("activation: v = max(v, 0)")
    steps.append("requantize: q = clip(round_half_to_even(v), -128, 127)")
    return steps


def _crossbar_entry(layer, spec, arrays):
    return {
        "input_shape": list(layer.input_shape),
        "geometry": {"unrolling": "im2col", "kernel_size": list(layer.kernel_size),
                     "strides": list(layer.strides), "dilation": list(layer.dilation),
                     "padding": layer.padding, "pads": [list(p) for p in layer.pads],
                     "in_channels": layer.in_channels, "filters": layer.filters, "rows": layer.rows,
                     "cols": layer.cols, "row_order": layer.row_order,
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
        "tiling": {"tile_rows": spec.rows, "tile_cols": spec.cols,
                   "layout": "grid" if layer.channels_per_tile is None else "block_diagonal",
                   "channels_per_tile": layer.channels_per_tile,
                   "row_tiles": 1 + max(t.row_tile for t in layer.tiles),
                   "col_tiles": 1 + max(t.col_tile for t in layer.tiles), "count": len(layer.tiles),
                   "tiles": [dataclasses.asdict(t) for t in layer.tiles]},
        "digital_steps": _crossbar_steps(layer, spec),
    }


def _to_json(mapping, npz_name, digest):
    arrays = {}
    layers = []
    spec = mapping.spec
    for layer in mapping.layers:
        entry = {"name": layer.name, "kind": layer.kind, "op": layer.op, "inputs": list(layer.inputs),
                 "output": layer.output, "output_shape": list(layer.output_shape)}
        if isinstance(layer, CrossbarLayer):
            entry.update(_crossbar_entry(layer, spec, arrays))
        else:
            entry.update({"params": layer.params, "requantize": bool(layer.requantize),
                          "arrays": {k: _array_ref(arrays, f"{layer.name}/{k}", v) for k, v in
                                     sorted(layer.arrays.items())}})
        layers.append(entry)
    inp = mapping.input
    doc = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "arrays_file": {"name": npz_name, "sha256": digest},
        "spec": spec.to_dict(),
        "scales": {"weight_scale": spec.weight_scale, "activation_range": spec.activation_range,
                   "activation_step": spec.activation_step, "units": "model units"},
        "conductance": _conductance(spec),
        "periphery": _periphery(spec),
        "input": {"name": inp.name, "shape": list(inp.shape), "encoding": inp.encoding, "scale": inp.scale,
                  "zero_point": inp.zero_point,
                  "standardisation": (None if inp.mean is None else
                                      {"mean": list(inp.mean), "std": list(inp.std),
                                       "formula": "x_model = (x_raw - mean) / std"})},
        "layers": layers,
        "outputs": list(mapping.outputs),
        "summary": mapping.summary(),
        "metadata": mapping.metadata,
    }
    return doc, arrays


def content_hash(mapping: Mapping) -> str:
    """SHA-256 (hex) of what a mapping computes: its JSON document without the file names and without
    ``metadata`` (provenance: export time, git commit, labels), and every array's name, dtype, shape and bytes.
    Equal for a mapping and its saved-and-loaded copy, and for two exports of one model (which differ in
    ``metadata["created_utc"]``); independent of where it is stored.

    Raises:
        MappingError: ``mapping`` is not a `Mapping`.
    """
    if not isinstance(mapping, Mapping):
        raise MappingError(f"content_hash expects a tf_nvm.mapping.Mapping, got {type(mapping).__name__}. Fix: pass "
                           "the Mapping returned by tflite_export.build_mapping or tf_nvm.mapping.load.")
    doc, arrays = _to_json(mapping, "", "")
    doc.pop("metadata", None)
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, allow_nan=False).encode("utf-8"))
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"\n{name}:{array.dtype.str}:{list(array.shape)}\n".encode("utf-8"))
        digest.update(array.tobytes())
    return digest.hexdigest()


def save(mapping: Mapping, path: Any) -> tuple[str, str]:
    """Writes ``mapping`` to ``PREFIX.json`` and ``PREFIX.<hash>.npz`` with one commit point.

    The arrays go to a new file named by their SHA-256 and a random token
    (``PREFIX.<sha256[:16]>-<token>.npz``), written and fsynced under a
    temporary name and renamed; then the JSON, which names that file and its
    SHA-256, is renamed over ``PREFIX.json``: that rename is the commit point.
    A reader therefore always sees a JSON whose npz exists: the previous export
    until the commit, the new one after it. A kill or failure before the commit
    leaves the previous export loadable (and at most an unreferenced npz); after
    the commit, the npz the previous JSON named is removed. Concurrent exports
    to one prefix each commit a complete pair (the last rename wins).

    Args:
        mapping: a `Mapping`.
        path: prefix, or a path ending in ``.json``.

    Returns:
        (json path, npz path) as strings.

    Raises:
        MappingError: ``mapping`` is not a `Mapping`, or the files cannot be written (the message names them).
    """
    if not isinstance(mapping, Mapping):
        raise MappingError(f"save expects a tf_nvm.mapping.Mapping, got {type(mapping).__name__}. Fix: pass the "
                           "Mapping returned by tflite_export.build_mapping or tf_nvm.mapping.load.")
    json_path = json_path_of(path)
    buffer = io.BytesIO()
    doc, arrays = _to_json(mapping, "", "")
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    prefix = json_path[:-len(".json")]
    npz_path = f"{prefix}.{digest[:16]}-{secrets.token_hex(4)}.npz"
    doc["arrays_file"] = {"name": os.path.basename(npz_path), "sha256": digest}
    text = (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode("utf-8")
    previous = _referenced_npz(json_path)
    try:
        write_files_atomic([(npz_path, data)])
        write_files_atomic([(json_path, text)], before_rename=_before_rename_hook)  # the commit point
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(npz_path)
        raise MappingError(f"cannot write the mapping {json_path}: {err}. Fix: pass a prefix in a writable "
                           "folder.") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(npz_path)
        raise
    if previous and previous != npz_path:
        with contextlib.suppress(OSError):
            os.unlink(previous)
    return json_path, npz_path


def _referenced_npz(json_path):
    """The npz file an existing mapping JSON names (None when there is no readable one)."""
    try:
        doc = safe_io.read_json(json_path, max_bytes=MAX_JSON_BYTES, what="mapping", error=MappingError)
        name = doc["arrays_file"]["name"]
    except (MappingError, KeyError, TypeError):
        return None
    if not isinstance(name, str) or os.path.basename(name) != name or not name.endswith(".npz"):
        return None
    return os.path.join(os.path.dirname(json_path), name)


def _before_rename_hook():
    """Called after both temporary files are written, before the renames (tests inject failures here)."""
