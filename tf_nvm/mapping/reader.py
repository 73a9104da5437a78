"""Reading a mapping file: ``PREFIX.json`` checked field by field against `tf_nvm.mapping.schema` (the same
definitions as the shipped JSON Schema), its arrays read from ``PREFIX.<hash>.npz`` (``allow_pickle=False``,
SHA-256 checked), then the whole mapping validated (`tf_nvm.mapping.validate`).

Every defect raises `MappingError` naming the file, the field, the value, what is allowed and the fix.

Numpy only (mapping-format layer).
"""

import dataclasses
import hashlib
import os
from typing import Any

import numpy as np

from tf_nvm.core import safe_io
from tf_nvm.core.errors import MappingError, SpecError
from tf_nvm.core.spec import NVMSpec
from tf_nvm.core.validate import Field, find_problem, is_kind, problem_of
from tf_nvm.mapping.schema import (ARRAY_REF, ARRAYS_FILE, CROSSBAR_LAYER, DIGITAL_LAYER, DOCUMENT, GEOMETRY,
                                   GEOMETRY_PAD, INPUT, LAYER, STANDARDIZATION, TILE, TILING)
from tf_nvm.mapping.io import MAX_ARRAY_BYTES, MAX_JSON_BYTES, MAX_NPZ_BYTES, _referenced_npz, json_path_of
from tf_nvm.mapping.ops import DIGITAL_OPS
from tf_nvm.mapping.network import Mapping
from tf_nvm.mapping.types import FORMAT, MAX_DIM, SCHEMA_VERSION, CrossbarLayer, DigitalLayer, InputEncoding, Tile
from tf_nvm.mapping.validate import REEXPORT, short

__all__ = ["load"]

_RELOADS = 5
"""How often `load` starts over when a concurrent export replaces the mapping while it is read."""
_FLOAT32_TINY, _FLOAT32_MAX = 1.1754944e-38, 3.4028235e38  # smallest normal and largest float32


def load(path: Any) -> Mapping:
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


class _ArraysReplaced(Exception):
    """The npz a JSON named is gone and the JSON on disk now names another one (internal to `load`)."""


def _read_document(json_path):
    text = safe_io.read_bytes(json_path, max_bytes=MAX_JSON_BYTES, error=MappingError,
                              fix="Fix: pass the PREFIX or PREFIX.json written by tflite_export.export_crossbar.")
    return safe_io.loads_json(text, where=json_path, error=MappingError,
                              fix="Fix: re-export the mapping; the file is truncated or was edited by hand.")


def _field(parent: Field, name: str) -> Field:
    """The `Field` ``name`` of the object spec ``parent`` (the reader reads only declared fields)."""
    return next(f for f in parent.fields or () if f.name == name)


class _Reader:
    """Parses a mapping document with precise error messages (file and field named)."""

    def __init__(self, json_path):
        self.json_path = json_path
        self.arrays = None

    def fail(self, field, message, fix=REEXPORT):
        raise MappingError(f"{self.json_path}: field {field}: {message}. Fix: {fix}.")

    def get(self, obj, parent, key, path, type_only=False):
        """``obj[key]`` checked against field ``key`` of the object spec ``parent`` (``path``: its JSON path)."""
        if not isinstance(obj, dict):
            self.fail(path.rsplit(".", 1)[0] or path, f"expected an object, got {short(obj)}")
        if key not in obj:
            self.fail(f"{path}", "is missing")
        return self.check(obj[key], _field(parent, key), path, type_only)

    def check(self, value, field, path, type_only=False):
        """``value`` if it satisfies ``field`` (a list of scalars: every item too; ``type_only``: no range)."""
        if type_only:
            field = dataclasses.replace(field, minimum=None, maximum=None, choices=None)
        scalars = field.kind == "list" and field.items is not None and field.items.kind not in ("list", "object")
        found = find_problem(value, field, path) if scalars else problem_of(value, field, path)
        if found is not None:
            self.fail(found.path, found.detail)
        return value

    def mapping(self, doc):
        if not isinstance(doc, dict):
            self.fail("<root>", f"expected a JSON object, got {short(doc)}")
        fmt = doc.get("format")
        if fmt != FORMAT:
            self.fail("format", f"value {short(fmt)} is not {FORMAT!r}", "pass a crossbar mapping file")
        version = doc.get("schema_version")
        if not is_kind(version, "int") or version < 1:
            self.fail("schema_version", f"value {short(version)} is not a positive integer")
        if version > SCHEMA_VERSION:
            raise MappingError(
                f"{self.json_path}: schema_version {version} is newer than this tf_nvm reads (1..{SCHEMA_VERSION}): "
                "the mapping was written by a newer tf_nvm release. Fix: upgrade tf_nvm to read it, or re-export "
                "the mapping with this release.")
        self.version = version
        spec = self.spec(self.get(doc, DOCUMENT, "spec", "spec", type_only=True))
        self.load_arrays(self.get(doc, DOCUMENT, "arrays_file", "arrays_file"))
        inp = self.input(self.get(doc, DOCUMENT, "input", "input"))
        layers_doc = self.get(doc, DOCUMENT, "layers", "layers")
        layers = tuple(self.layer(entry, i, spec) for i, entry in enumerate(layers_doc))
        outputs = tuple(self.get(doc, DOCUMENT, "outputs", "outputs"))
        metadata = self.get(doc, DOCUMENT, "metadata", "metadata")
        try:
            return Mapping(spec, inp, layers, outputs, metadata)
        except MappingError as err:
            raise MappingError(f"{self.json_path}: {err}") from None

    def spec(self, spec_doc):
        """The `NVMSpec` (its own checks: `tf_nvm.core.spec.SPEC_FIELDS`), with its weight scale resolved."""
        try:
            spec = NVMSpec.from_dict(spec_doc)
        except (SpecError, TypeError) as err:
            self.fail("spec", str(err))
        if spec.weight_scale is None:
            self.fail("spec.weight_scale", "is null; a mapping needs the resolved shared weight scale")
        return spec

    def load_arrays(self, ref):
        name = self.get(ref, ARRAYS_FILE, "name", "arrays_file.name")
        digest = self.get(ref, ARRAYS_FILE, "sha256", "arrays_file.sha256")
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
        self.check(ref, ARRAY_REF, field)
        key = self.get(ref, ARRAY_REF, "array", f"{field}.array")
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
        name = self.get(doc, INPUT, "name", "input.name")
        shape = tuple(self.get(doc, INPUT, "shape", "input.shape"))
        encoding = self.get(doc, INPUT, "encoding", "input.encoding")
        scale = self.get(doc, INPUT, "scale", "input.scale")
        zero_point = self.get(doc, INPUT, "zero_point", "input.zero_point")
        std_doc = self.get(doc, INPUT, "standardisation", "input.standardisation")
        mean, std = (None, None) if std_doc is None else self.standardization(std_doc)
        return InputEncoding(name, shape, encoding, float(scale), zero_point, mean, std)

    def standardization(self, std_doc):
        """(mean, std) of ``input.standardisation``: numbers applied in float32 (beyond it inputs become 0/inf/nan)."""
        mean, std = (tuple(self.get(std_doc, STANDARDIZATION, key, f"input.standardisation.{key}"))
                     for key in ("mean", "std"))
        for key, values, low in (("mean", mean, 0.0), ("std", std, _FLOAT32_TINY)):
            for i, v in enumerate(values):
                if not low <= abs(v) <= _FLOAT32_MAX or (key == "std" and v <= 0):
                    self.fail(f"input.standardisation.{key}[{i}]", f"value {v!r} is not allowed; allowed: "
                              + ("a number > 0" if key == "std" else "a number")
                              + f" within float32 ({low:g}..{_FLOAT32_MAX:g} in magnitude)")
        return mean, std

    def layer(self, entry, i, spec):
        field = f"layers[{i}]"
        self.check(entry, LAYER, field)
        name = self.get(entry, LAYER, "name", f"{field}.name")
        field = f"layers[{i}] ({name!r})"
        kind = self.get(entry, LAYER, "kind", f"{field}.kind", type_only=True)
        common = {key: self.get(entry, LAYER, key, f"{field}.{key}") for key in ("op", "inputs", "output",
                                                                                   "output_shape")}
        common.update(name=name, inputs=tuple(common["inputs"]), output_shape=tuple(common["output_shape"]))
        if kind == "crossbar":
            return self.crossbar(entry, field, spec, common)
        if kind == "digital":
            return self.digital(entry, field, common)
        self.fail(f"{field}.kind", f"value {short(kind)} is not 'crossbar' or 'digital'")

    def digital(self, entry, field, common):
        op = common["op"]
        if op not in DIGITAL_OPS:
            self.fail(f"{field}.op", f"value {short(op)} is not a digital op; allowed: {DIGITAL_OPS.names()}")
        schema = DIGITAL_OPS.get(op).arrays
        params = self.get(entry, DIGITAL_LAYER, "params", f"{field}.params")
        requantize = self.get(entry, DIGITAL_LAYER, "requantize", f"{field}.requantize")
        arrays_doc = self.get(entry, DIGITAL_LAYER, "arrays", f"{field}.arrays")
        arrays = {}
        for key, ref in arrays_doc.items():
            if key not in schema:
                self.fail(f"{field}.arrays", f"unknown array {key!r} for op {op!r}; allowed: {sorted(schema)}")
            arrays[key] = self.array(ref, f"{field}.arrays.{key}", schema[key].dtype)
        return DigitalLayer(common["name"], op, common["inputs"], common["output"], common["output_shape"], params,
                            arrays, requantize)

    def pads(self, geometry, g):
        pads = []
        for j, pair in enumerate(self.get(geometry, GEOMETRY, "pads", f"{g}.pads")):
            pad = GEOMETRY_PAD
            self.check(pair, dataclasses.replace(pad, items=None), f"{g}.pads[{j}]")
            if len(pair) != 2:
                self.fail(f"{g}.pads[{j}]", f"expected [before, after], got {short(pair)}")
            pads.append(tuple(self.check(v, pad.items, f"{g}.pads[{j}]") for v in pair))
        return tuple(pads)

    def tiles(self, tiling, field):
        tiles = []
        for j, tile_doc in enumerate(self.get(tiling, TILING, "tiles", f"{field}.tiling.tiles")):
            t = f"{field}.tiling.tiles[{j}]"
            self.check(tile_doc, TILE, t)
            tiles.append(Tile(**{f.name: self.get(tile_doc, TILE, f.name, f"{t}.{f.name}")
                                 for f in dataclasses.fields(Tile)}))
        return tuple(tiles)

    def crossbar(self, entry, field, spec, common):
        g = f"{field}.geometry"
        geometry = self.get(entry, CROSSBAR_LAYER, "geometry", g)
        rows = self.get(geometry, GEOMETRY, "rows", f"{g}.rows", type_only=True)
        cols = self.get(geometry, GEOMETRY, "cols", f"{g}.cols", type_only=True)
        if rows < 1 or cols < 1 or rows * cols > 1 << 31:
            self.fail(f"{g}.rows/cols", f"values {rows} x {cols} are not a valid weight matrix size")
        pads = self.pads(geometry, g)
        tiling = self.get(entry, CROSSBAR_LAYER, "tiling", f"{field}.tiling")
        channels_per_tile = self.layout(geometry, tiling, field)
        tiles = self.tiles(tiling, field)
        bias_ref = self.get(entry, CROSSBAR_LAYER, "bias", f"{field}.bias")
        bias_int_ref = self.get(entry, CROSSBAR_LAYER, "bias_int32", f"{field}.bias_int32")
        return CrossbarLayer(
            **common,
            input_shape=tuple(self.get(entry, CROSSBAR_LAYER, "input_shape", f"{field}.input_shape")),
            **{key: tuple(self.get(geometry, GEOMETRY, key, f"{g}.{key}"))
               for key in ("kernel_size", "strides", "dilation")},
            padding=self.get(geometry, GEOMETRY, "padding", f"{g}.padding"),
            pads=pads,
            in_channels=self.get(geometry, GEOMETRY, "in_channels", f"{g}.in_channels"),
            filters=self.get(geometry, GEOMETRY, "filters", f"{g}.filters"),
            rows=rows, cols=cols,
            codes=self.array(self.get(entry, CROSSBAR_LAYER, "codes", f"{field}.codes"), f"{field}.codes",
                             np.int8, (rows, cols)),
            levels=self.array(self.get(entry, CROSSBAR_LAYER, "levels", f"{field}.levels"), f"{field}.levels",
                              np.uint8, (rows, cols, spec.devices_per_weight)),
            reference_level=self.get(entry, CROSSBAR_LAYER, "reference_level", f"{field}.reference_level"),
            bias=None if bias_ref is None else self.array(bias_ref, f"{field}.bias", np.float32, (cols,)),
            bias_int32=(None if bias_int_ref is None else
                        self.array(bias_int_ref, f"{field}.bias_int32", np.int32, (cols,))),
            activation=self.get(entry, CROSSBAR_LAYER, "activation", f"{field}.activation"),
            tiles=tiles,
            input_rails=self.get(geometry, GEOMETRY, "input_rails", f"{g}.input_rails"),
            adc_full_scale=self.get(entry, CROSSBAR_LAYER, "adc_full_scale", f"{field}.adc_full_scale"),
            channels_per_tile=channels_per_tile,
        )

    def layout(self, geometry, tiling, field):
        """``channels_per_tile`` of a crossbar entry: None in a version-1 file (grid layout, position-major rows)."""
        if self.version < 2:
            return None  # version 1: geometry.row_order was informational text; every layer is a grid
        g = self.get(tiling, TILING, "channels_per_tile", f"{field}.tiling.channels_per_tile", type_only=True)
        if g is not None and not 1 <= g <= MAX_DIM:
            self.fail(f"{field}.tiling.channels_per_tile", f"value {g} is not an integer >= 1 or null")
        layout = self.get(tiling, TILING, "layout", f"{field}.tiling.layout", type_only=True)
        row_order = self.get(geometry, GEOMETRY, "row_order", f"{field}.geometry.row_order")
        want = ("grid", "position_major") if g is None else ("block_diagonal", "channel_major")
        if (layout, row_order) != want:
            self.fail(f"{field}.tiling.layout", f"layout {short(layout)} with row_order {short(row_order)} does not "
                                                f"match channels_per_tile {g!r}, which needs layout {want[0]!r} and "
                                                f"row_order {want[1]!r}")
        return g
