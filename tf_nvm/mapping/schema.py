"""The mapping file's fields, declared once: the reader (`tf_nvm.mapping.reader`) checks with them and
`json_schema` turns them into the JSON Schema shipped as ``tf_nvm/mapping/mapping.schema.json``.

Objects allow keys not declared here (the reader ignores them); the sections the reader does not read
(``scales``, ``conductance``, ``periphery``, ``summary``, ``digital_steps``, an array's ``dtype`` and
``shape``) are declared as optional and informational. What JSON Schema cannot state (the npz arrays, tile
geometry, tensor references, op parameters) is checked by the reader and `tf_nvm.mapping.validate`.

Numpy-free (mapping-format layer).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tf_nvm.core.spec import SPEC_FIELDS
from tf_nvm.core.validate import Field
from tf_nvm.core.validate import json_schema as _field_schema
from tf_nvm.mapping.types import ACTIVATIONS, CROSSBAR_OPS, FORMAT, MAX_DIM, SCHEMA_VERSION, Tile

__all__ = ["DIM", "DIMS", "ARRAY_REF", "ARRAYS_FILE", "INPUT", "STANDARDIZATION", "GEOMETRY", "GEOMETRY_PAD",
           "TILE", "TILING", "CROSSBAR_LAYER", "DIGITAL_LAYER", "LAYER", "DOCUMENT", "SCHEMA_ID", "json_schema"]

SCHEMA_ID = "https://tf-nvm.invalid/schemas/mapping.schema.json"
"""The ``$id`` of the schema (a name, not a download address)."""

DIM = Field("dim", "int", minimum=1, maximum=MAX_DIM, doc="a size >= 1 (int32 range)")
"""A dimension of a shape, kernel, stride or dilation."""
DIMS = Field("dims", "list", items=DIM)
"""A shape: a list of dimensions."""
_INFO = "informational (written by the exporter, not read)"


def _dims(name: str, doc: str, required: bool = True) -> Field:
    return dataclasses.replace(DIMS, name=name, doc=doc, required=required)


ARRAY_REF = Field("array_ref", "object", extra=True, doc="an array stored in the npz file", fields=(
    Field("array", "str", doc="name of the array in the npz file (numpy .npy member without its suffix)"),
    Field("dtype", "str", required=False, doc=f"numpy dtype, {_INFO}; the reader checks the array itself"),
    Field("shape", "list", required=False, items=Field("d", "int"), doc=f"array shape, {_INFO}"),
))
"""A reference to an npz array: ``{"array": name, "dtype": ..., "shape": [...]}``."""

ARRAYS_FILE = Field("arrays_file", "object", extra=True, doc="the npz file holding every array", fields=(
    Field("name", "str", doc="file name of the npz, beside the JSON (no folder), ending in .npz"),
    Field("sha256", "str", doc="SHA-256 (hex) of the npz file's bytes"),
))

STANDARDIZATION = Field("standardisation", "object", nullable=True, extra=True,
                        doc="per-channel standardisation applied to raw inputs before quantization, or null", fields=(
                            Field("mean", "list", items=Field("m", "number"), doc="per-channel mean (raw units)"),
                            Field("std", "list", items=Field("s", "number"), doc="per-channel std (raw units), > 0"),
                            Field("formula", "str", required=False, doc=_INFO),
                        ))

INPUT = Field("input", "object", extra=True, doc="the input tensor and its int8 encoding", fields=(
    Field("name", "str", doc="tensor name"),
    _dims("shape", "shape without the batch dimension"),
    Field("encoding", "str", doc="how inputs are applied ('signed-dac' or 'dual-rail')"),
    Field("scale", "number", doc="quantization scale of the input (model units per code)"),
    Field("zero_point", "int", doc="quantization zero point of the input"),
    STANDARDIZATION,
))

GEOMETRY_PAD = Field("pad", "list", items=Field("p", "int"), doc="[before, after] padding of one axis")
"""One axis' padding (the reader also requires exactly two items)."""

GEOMETRY = Field("geometry", "object", extra=True, doc="im2col geometry of the layer", fields=(
    _dims("kernel_size", "kernel size per spatial axis (dense: empty)"),
    _dims("strides", "strides per spatial axis"),
    _dims("dilation", "dilation per spatial axis"),
    Field("padding", "str", doc="'valid' or 'same'"),
    Field("pads", "list", doc="[before, after] padding per spatial axis", items=GEOMETRY_PAD),
    Field("in_channels", "int", doc="input channels"),
    Field("filters", "int", doc="output channels"),
    Field("rows", "int", minimum=1, doc="weight rows (im2col inputs)"),
    Field("cols", "int", minimum=1, doc="weight columns (outputs)"),
    Field("row_order", "str", doc="'position_major' or 'channel_major' (version 1: informational text)"),
    Field("input_rails", "int", doc="1, or 2 for dual-rail inputs"),
    Field("unrolling", "str", required=False, doc=_INFO),
))

TILE = Field("tile", "object", extra=True, doc="one crossbar tile", fields=tuple(
    Field(f.name, "number" if f.name.endswith("utilisation") else "int") for f in dataclasses.fields(Tile)))

TILING = Field("tiling", "object", extra=True, doc="how the matrix is cut into crossbars", fields=(
    Field("tiles", "list", items=TILE, doc="every tile of the layer"),
    Field("channels_per_tile", "int", required=False, nullable=True, minimum=1, maximum=MAX_DIM,
          doc="version 2: channels per block-diagonal tile (depthwise layers), null for a grid"),
    Field("layout", "str", required=False, choices=("grid", "block_diagonal"), doc="version 2: the tile layout"),
    Field("tile_rows", "int", required=False, doc=_INFO),
    Field("tile_cols", "int", required=False, doc=_INFO),
    Field("row_tiles", "int", required=False, doc=_INFO),
    Field("col_tiles", "int", required=False, doc=_INFO),
    Field("count", "int", required=False, doc=_INFO),
))

_COMMON = (
    Field("name", "str", doc="layer name"),
    Field("kind", "str", choices=("crossbar", "digital"), doc="'crossbar' (on the NVM arrays) or 'digital'"),
    Field("op", "str", doc="the op (crossbar: one of CROSSBAR_OPS; digital: one of DIGITAL_OPS)"),
    Field("inputs", "list", items=Field("tensor", "str"), doc="names of the tensors read"),
    Field("output", "str", doc="name of the tensor written"),
    _dims("output_shape", "output shape without the batch dimension"),
)



def _variant(kind: str, op: Field, fields: tuple[Field, ...]) -> tuple[Field, ...]:
    """The common fields with ``kind`` fixed to one value and ``op`` replaced, then ``fields``."""
    replaced = {"kind": Field("kind", "str", choices=(kind,), doc=f"{kind!r}"), "op": op}
    return tuple(replaced.get(f.name, f) for f in _COMMON) + fields


CROSSBAR_LAYER = Field("crossbar_layer", "object", extra=True, doc="a layer computed on crossbars", fields=_variant(
    "crossbar", Field("op", "str", choices=CROSSBAR_OPS, doc="the crossbar op"), (
    _dims("input_shape", "input shape without the batch dimension"),
    GEOMETRY,
    dataclasses.replace(ARRAY_REF, name="codes", doc="int8 device codes, [rows, cols]"),
    dataclasses.replace(ARRAY_REF, name="levels", doc="uint8 device levels, [rows, cols, devices per weight]"),
    Field("reference_level", "int", nullable=True, doc="level of the offset mapping's reference column, or null"),
    dataclasses.replace(ARRAY_REF, name="bias", nullable=True, doc="float32 bias [cols], or null"),
    dataclasses.replace(ARRAY_REF, name="bias_int32", nullable=True, doc="int32 bias in MAC units [cols], or null"),
    Field("activation", "str", doc=f"digital activation after the bias, one of {list(ACTIVATIONS)}"),
    Field("adc_full_scale", "int", doc="per tile: largest partial sum magnitude, MAC units"),
    TILING,
    Field("digital_steps", "list", required=False, items=Field("step", "str"), doc=_INFO),
)))
"""A crossbar layer (ops: ``CROSSBAR_OPS``)."""

DIGITAL_LAYER = Field("digital_layer", "object", extra=True, doc="a step of the digital periphery", fields=_variant(
    "digital", Field("op", "str", doc="the digital op, one of tf_nvm.mapping.ops.DIGITAL_OPS"), (
    Field("params", "object", extra=True, doc="the op's parameters (see DIGITAL_OPS)"),
    Field("requantize", "bool", doc="the result is rounded back to the int8 grid"),
    Field("arrays", "object", extra=True, values=ARRAY_REF, doc="the op's arrays by name"),
)))
"""A digital layer (ops: `tf_nvm.mapping.ops.DIGITAL_OPS`)."""

LAYER = Field("layer", "object", extra=True, one_of=(CROSSBAR_LAYER, DIGITAL_LAYER), fields=_COMMON,
              doc="one layer, in execution order")

DOCUMENT = Field("mapping", "object", extra=True, doc="a crossbar mapping (tf_nvm), PREFIX.json", fields=(
    Field("format", "str", choices=(FORMAT,), doc="the format name"),
    Field("schema_version", "int", minimum=1, maximum=SCHEMA_VERSION, doc="version of the format"),
    ARRAYS_FILE,
    Field("spec", "object", fields=tuple(dataclasses.replace(f, nullable=False) if f.name == "weight_scale" else f
                                         for f in SPEC_FIELDS), doc="the NVMSpec (weight_scale resolved, not null)"),
    INPUT,
    Field("layers", "list", items=LAYER, doc="the layers in execution order"),
    Field("outputs", "list", items=Field("tensor", "str"), doc="names of the output tensors"),
    Field("metadata", "object", extra=True, doc="provenance: export time, tf_nvm version, labels"),
    Field("scales", "object", required=False, extra=True, doc=_INFO),
    Field("conductance", "object", required=False, extra=True, doc=_INFO),
    Field("periphery", "object", required=False, extra=True, doc=_INFO),
    Field("summary", "object", required=False, extra=True, doc=_INFO),
))
"""The whole ``PREFIX.json`` document."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a mapping's ``PREFIX.json``, generated from `DOCUMENT`.

    Equal to the file shipped as ``tf_nvm/mapping/mapping.schema.json`` (a test checks it).
    """
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
              "title": "tf_nvm crossbar mapping"}
    schema.update(_field_schema(DOCUMENT))
    return schema
