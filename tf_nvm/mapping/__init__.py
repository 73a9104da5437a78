"""The crossbar mapping format: a trained NVM network laid out on crossbars.

A mapping is written by ``tflite_export.export_crossbar`` and read by the
simulator, the cost model and ``tf-nvm inspect``. It holds everything needed to
run the network on crossbars without the Keras model: the spec, the input
encoding, and per layer in execution order either a *crossbar* layer (im2col
geometry, device codes, conductance level of every device, tiling, bias,
activation) or a *digital* step (one entry of the op table `DIGITAL_OPS`:
BatchNorm affine as integers, ReLU, pooling, reshaping, concatenation,
rescaling, ...). The schema is documented field by field in
``docs/mapping_schema.md``.

On disk a mapping is two files sharing a prefix: ``PREFIX.json`` (structure,
human-readable) and ``PREFIX.npz`` (arrays, read with ``allow_pickle=False``).
The JSON names the npz file and its SHA-256, so a mismatched or corrupt pair is
detected. `save` writes both atomically; `load` validates everything and
raises `MappingError` for any defect.

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

Modules: `types` (layer dataclasses), `network` (`Mapping`), `device` (levels, conductances, G_min
removal, ADC full scale), `tiling`, `ops` (the digital-op table), `validate`,
`io` (paths, writing), `schema` (the file's fields and its JSON Schema, `json_schema`), `reader`
(reading), `report` (tables), `reference` (the exact numpy evaluator,
``tf_nvm.mapping.reference.evaluate``). Numpy only: importing this package
never imports TensorFlow.
"""

from tf_nvm.mapping.device import codes_from_levels, conductance_table, levels_from_codes
from tf_nvm.mapping.io import content_hash, paths, save
from tf_nvm.mapping.reader import load
from tf_nvm.mapping.ops import DIGITAL_OPS, DigitalOp
from tf_nvm.mapping.report import format_table, layer_table
from tf_nvm.mapping.schema import json_schema
from tf_nvm.mapping.tiling import layer_tiles, outputs_per_tile, plan_diagonal_tiles, plan_tiles
from tf_nvm.mapping.network import Mapping
from tf_nvm.mapping.types import (ACTIVATIONS, CROSSBAR_OPS, FORMAT, SCHEMA_VERSION, CrossbarLayer, DigitalLayer,
                                  InputEncoding, Tile)

__all__ = [
    "SCHEMA_VERSION",
    "FORMAT",
    "CROSSBAR_OPS",
    "DIGITAL_OPS",
    "ACTIVATIONS",
    "DigitalOp",
    "Tile",
    "InputEncoding",
    "CrossbarLayer",
    "DigitalLayer",
    "Mapping",
    "conductance_table",
    "levels_from_codes",
    "codes_from_levels",
    "plan_tiles",
    "plan_diagonal_tiles",
    "layer_tiles",
    "outputs_per_tile",
    "save",
    "content_hash",
    "load",
    "paths",
    "layer_table",
    "format_table",
    "json_schema",
]
