"""Reading and writing mapping files: ``PREFIX.json`` (structure) + ``PREFIX.npz`` (arrays).

The JSON names the npz file and its SHA-256, so a mismatched or corrupt pair is
detected. `save` writes both atomically (temporary files, then ``os.replace``,
npz first); `load` parses every field with a precise message and then
validates the whole mapping (`tf_nvm.mapping.validate`), raising
`MappingError` for any defect. The npz is read with ``allow_pickle=False``.

Numpy only (mapping-format layer).
"""

import dataclasses
import hashlib
import io
import json
import math
import os
import contextlib
import secrets

import numpy as np

from tf_nvm.core import safe_io
from tf_nvm.core.atomic import write_files_atomic
from tf_nvm.core.errors import MappingError, SpecError
from tf_nvm.mapping.device import conductance_table, g_min_removal
from tf_nvm.mapping.ops import DIGITAL_OPS
from tf_nvm.mapping.types import (FORMAT, MAX_DIM, ROUNDING, SCHEMA_VERSION, CrossbarLayer, DigitalLayer,
                                  InputEncoding, Mapping, Tile)
from tf_nvm.mapping.validate import REEXPORT, short
from tf_nvm.core.spec import NVMSpec

__all__ = ["paths", "json_path_of", "save", "load", "content_hash", "MAX_JSON_BYTES", "MAX_NPZ_BYTES", "MAX_ARRAY_BYTES"]

MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest mapping JSON read, bytes (64 MiB)."""
MAX_NPZ_BYTES = 1024 ** 3
"""Largest npz file read, bytes (1 GiB, compressed)."""
MAX_ARRAY_BYTES = 2 * 1024 ** 3
"""Most bytes all arrays of one mapping may declare together (2 GiB, uncompressed); checked before decompressing."""
"""Largest mapping JSON `load` reads, bytes."""


def json_path_of(path):
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


def paths(path):
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


def content_hash(mapping):
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


def save(mapping, path):
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


# ------------------------------------------------------------------------ reading
def load(path):
    """Reads and validates a mapping.

    Args:
        path: prefix, or the ``.json`` file of the mapping.

    Returns:
        the `Mapping`.

    Raises:
        MappingError: missing or unreadable file, not JSON, wrong format, a
            newer schema version, a missing/invalid field, a wrong array
            (dtype, shape, range), an npz that does not match its SHA-256, or
            an inconsistent mapping (tiles, levels vs codes, tensor
            references, shapes vs op params). The message names the file, the
            field, the value, what is allowed and the fix.
    """
    json_path = json_path_of(path)
    for _ in range(_RELOADS):
        doc = _read_document(json_path)
        try:
            return _Reader(json_path).mapping(doc)
        except _ArraysReplaced:
            continue  # a newer export committed (and removed these arrays) while we read: read the new one
    raise MappingError(f"{json_path}: the mapping was replaced {_RELOADS} times while it was being read. Fix: load "
                       "it again when no export is writing to that prefix.")


_RELOADS = 5
"""How often `load` starts over when a concurrent export replaces the mapping while it is read."""


class _ArraysReplaced(Exception):
    """The npz a JSON named is gone and the JSON on disk now names another one (internal to `load`)."""


def _read_document(json_path):
    text = safe_io.read_bytes(json_path, max_bytes=MAX_JSON_BYTES, error=MappingError,
                              fix="Fix: pass the PREFIX or PREFIX.json written by tflite_export.export_crossbar.")
    return safe_io.loads_json(text, where=json_path, error=MappingError,
                              fix="Fix: re-export the mapping; the file is truncated or was edited by hand.")


def _finite(value):
    """Whether a JSON number is finite as a float (an integer of 400 digits is not: float() overflows)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


_FLOAT32_TINY, _FLOAT32_MAX = 1.1754944e-38, 3.4028235e38  # smallest normal and largest float32


_KINDS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}


class _Reader:
    """Parses a mapping document with precise error messages (file and field named)."""

    def __init__(self, json_path):
        self.json_path = json_path
        self.arrays = None

    def fail(self, field, message, fix=REEXPORT):
        raise MappingError(f"{self.json_path}: field {field}: {message}. Fix: {fix}.")

    def get(self, obj, key, kind, field, allow_none=False):
        if not isinstance(obj, dict):
            self.fail(field.rsplit(".", 1)[0] or field, f"expected an object, got {short(obj)}")
        if key not in obj:
            self.fail(f"{field}", "is missing")
        return self.check(obj[key], kind, field, allow_none)

    def check(self, value, kind, field, allow_none=False):
        if value is None and allow_none:
            return None
        if not _KINDS[kind](value):
            self.fail(field, f"expected {kind}{' or null' if allow_none else ''}, got {short(value)}")
        return value

    def int_list(self, obj, key, field, minimum=None):
        values = self.get(obj, key, "list", field)
        out = []
        for i, v in enumerate(values):
            v = self.check(v, "int", f"{field}[{i}]")
            if minimum is not None and v < minimum:
                self.fail(f"{field}[{i}]", f"value {v} is below the minimum {minimum}")
            if v > MAX_DIM:
                self.fail(f"{field}[{i}]", f"value {v} is above the maximum {MAX_DIM}")
            out.append(v)
        return tuple(out)

    def str_list(self, obj, key, field):
        values = self.get(obj, key, "list", field)
        return tuple(self.check(v, "str", f"{field}[{i}]") for i, v in enumerate(values))

    def mapping(self, doc):
        if not isinstance(doc, dict):
            self.fail("<root>", f"expected a JSON object, got {short(doc)}")
        fmt = doc.get("format")
        if fmt != FORMAT:
            self.fail("format", f"value {short(fmt)} is not {FORMAT!r}", "pass a crossbar mapping file")
        version = doc.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.fail("schema_version", f"value {short(version)} is not a positive integer")
        if version > SCHEMA_VERSION:
            raise MappingError(
                f"{self.json_path}: schema_version {version} is newer than this tf_nvm reads (1..{SCHEMA_VERSION}): "
                "the mapping was written by a newer tf_nvm release. Fix: upgrade tf_nvm to read it, or re-export "
                "the mapping with this release.")
        self.version = version
        spec_doc = self.get(doc, "spec", "dict", "spec")
        try:
            spec = NVMSpec.from_dict(spec_doc)
        except (SpecError, TypeError) as err:
            self.fail("spec", str(err))
        if spec.weight_scale is None:
            self.fail("spec.weight_scale", "is null; a mapping needs the resolved shared weight scale")
        self.load_arrays(self.get(doc, "arrays_file", "dict", "arrays_file"))
        inp = self.input(self.get(doc, "input", "dict", "input"))
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
        if "\x00" in name or os.path.basename(name) != name or not name.endswith(".npz"):
            self.fail("arrays_file.name", f"value {name!r} must be a file name ending in .npz, beside the JSON")
        npz_path = os.path.join(os.path.dirname(self.json_path), name)
        try:
            data = safe_io.read_bytes(npz_path, max_bytes=MAX_NPZ_BYTES, error=MappingError,
                                      fix="Fix: keep the .npz the JSON names beside it, or re-export both files "
                                          "together.")
        except MappingError:
            if not os.path.lexists(npz_path) and _referenced_npz(self.json_path) not in (None, npz_path):
                raise _ArraysReplaced(npz_path) from None
            raise
        if hashlib.sha256(data).hexdigest() != digest:
            self.fail("arrays_file.sha256", f"{npz_path} does not match the recorded SHA-256 {digest[:16]}...",
                      "the .npz was modified or belongs to another export; re-export both files together")
        self.npz_path, self.npz_data, self.budget = npz_path, data, MAX_ARRAY_BYTES
        try:
            with safe_io.open_zip(data, where=npz_path, kind=".npz", error=MappingError) as archive:
                self.arrays = {name[:-4] for name in archive.namelist() if name.endswith(".npy")}
        except MappingError as err:
            self.fail("arrays_file.name", f"{npz_path} is not a readable npz ({err})")

    def array(self, ref, field, dtype, shape=None):
        self.check(ref, "dict", field)
        key = self.get(ref, "array", "str", f"{field}.array")
        if key not in self.arrays:
            self.fail(f"{field}.array", f"array {key!r} is not in the npz file")
        # Only referenced members are decompressed, each checked against the remaining budget first.
        value = safe_io.load_npz(self.npz_data, [key], max_bytes=self.budget, kinds="iuf", error=MappingError,
                                 fix=f"Fix: {REEXPORT}.", where=self.npz_path)[key]
        self.budget -= value.nbytes
        if value.dtype != np.dtype(dtype):
            self.fail(field, f"array {key!r} has dtype {value.dtype}, expected {np.dtype(dtype)}")
        if shape is not None and tuple(value.shape) != tuple(shape):
            self.fail(field, f"array {key!r} has shape {list(value.shape)}, expected {list(shape)}")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            self.fail(field, f"array {key!r} holds NaN or infinite values")
        return value

    def input(self, doc):
        name = self.get(doc, "name", "str", "input.name")
        shape = self.int_list(doc, "shape", "input.shape", minimum=1)
        encoding = self.get(doc, "encoding", "str", "input.encoding")
        scale = self.get(doc, "scale", "number", "input.scale")
        zero_point = self.get(doc, "zero_point", "int", "input.zero_point")
        std_doc = self.get(doc, "standardisation", "dict", "input.standardisation", allow_none=True)
        mean = std = None
        if std_doc is not None:
            mean, std = (tuple(self.check(v, "number", f"input.standardisation.{key}[{i}]")
                               for i, v in enumerate(self.get(std_doc, key, "list", f"input.standardisation.{key}")))
                         for key in ("mean", "std"))
            for key, values, low in (("mean", mean, 0.0), ("std", std, _FLOAT32_TINY)):
                for i, v in enumerate(values):  # applied in float32: beyond it the inputs become 0, inf or nan
                    if not low <= abs(v) <= _FLOAT32_MAX or (key == "std" and v <= 0):
                        self.fail(f"input.standardisation.{key}[{i}]", f"value {v!r} is not allowed; allowed: "
                                  + ("a number > 0" if key == "std" else "a number")
                                  + f" within float32 ({low:g}..{_FLOAT32_MAX:g} in magnitude)")
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
            return self.digital(entry, field, name, op, inputs, output, output_shape)
        self.fail(f"{field}.kind", f"value {short(kind)} is not 'crossbar' or 'digital'")

    def digital(self, entry, field, name, op, inputs, output, output_shape):
        if op not in DIGITAL_OPS:
            self.fail(f"{field}.op", f"value {short(op)} is not a digital op; allowed: {DIGITAL_OPS.names()}")
        schema = DIGITAL_OPS.get(op).arrays
        params = self.get(entry, "params", "dict", f"{field}.params")
        requantize = self.get(entry, "requantize", "bool", f"{field}.requantize")
        arrays_doc = self.get(entry, "arrays", "dict", f"{field}.arrays")
        arrays = {}
        for key, ref in arrays_doc.items():
            if key not in schema:
                self.fail(f"{field}.arrays", f"unknown array {key!r} for op {op!r}; allowed: {sorted(schema)}")
            arrays[key] = self.array(ref, f"{field}.arrays.{key}", schema[key].dtype)
        return DigitalLayer(name, op, inputs, output, output_shape, params, arrays, requantize)

    def crossbar(self, entry, field, spec, name, op, inputs, output, output_shape):
        g = f"{field}.geometry"
        geometry = self.get(entry, "geometry", "dict", g)
        rows = self.get(geometry, "rows", "int", f"{g}.rows")
        cols = self.get(geometry, "cols", "int", f"{g}.cols")
        if rows < 1 or cols < 1 or rows * cols > 1 << 31:
            self.fail(f"{g}.rows/cols", f"values {rows} x {cols} are not a valid weight matrix size")
        pads = []
        for j, pair in enumerate(self.get(geometry, "pads", "list", f"{g}.pads")):
            self.check(pair, "list", f"{g}.pads[{j}]")
            if len(pair) != 2:
                self.fail(f"{g}.pads[{j}]", f"expected [before, after], got {short(pair)}")
            pads.append(tuple(self.check(v, "int", f"{g}.pads[{j}]") for v in pair))
        tiling = self.get(entry, "tiling", "dict", f"{field}.tiling")
        channels_per_tile = self.layout(geometry, tiling, field)
        tiles = []
        for j, tile_doc in enumerate(self.get(tiling, "tiles", "list", f"{field}.tiling.tiles")):
            t = f"{field}.tiling.tiles[{j}]"
            self.check(tile_doc, "dict", t)
            tiles.append(Tile(**{f.name: self.get(tile_doc, f.name, "number" if f.name.endswith("utilisation")
                                                  else "int", f"{t}.{f.name}") for f in dataclasses.fields(Tile)}))
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
            channels_per_tile=channels_per_tile,
        )

    def layout(self, geometry, tiling, field):
        """``channels_per_tile`` of a crossbar entry: None in a version-1 file (grid layout, position-major rows)."""
        if self.version < 2:
            return None  # version 1: geometry.row_order was informational text; every layer is a grid
        g = self.get(tiling, "channels_per_tile", "int", f"{field}.tiling.channels_per_tile", allow_none=True)
        if g is not None and not 1 <= g <= MAX_DIM:
            self.fail(f"{field}.tiling.channels_per_tile", f"value {g} is not an integer >= 1 or null")
        layout = self.get(tiling, "layout", "str", f"{field}.tiling.layout")
        row_order = self.get(geometry, "row_order", "str", f"{field}.geometry.row_order")
        want = ("grid", "position_major") if g is None else ("block_diagonal", "channel_major")
        if (layout, row_order) != want:
            self.fail(f"{field}.tiling.layout", f"layout {short(layout)} with row_order {short(row_order)} does not "
                                                f"match channels_per_tile {g!r}, which needs layout {want[0]!r} and "
                                                f"row_order {want[1]!r}")
        return g
