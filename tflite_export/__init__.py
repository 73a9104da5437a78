"""tflite_export: deploy a trained tf_nvm model to a microcontroller and to crossbars.

Two artefacts from one trained NVM model:

* `export_tflite`: a full-integer ``.tflite`` (int8 activations, int8 in/out)
  whose NVM weight tensors hold exactly the device codes on the one shared
  scale (zero point 0); bit-exact with the Keras model in LiteRT's default
  kernels (INT8 container). Checked with `compare` (LiteRT and TFLite Micro)
  and `check_nvm_weights`; the TFLite Micro arena is measured with
  `measure_arena` in a child process.
* `export_crossbar`: the versioned crossbar mapping file
  (``PREFIX.json`` + ``PREFIX.npz``, format in ``docs/mapping_schema.md``,
  read back with `tf_nvm.mapping.load`).

Modules: `tflite` (`export_tflite`), `flatbuffer` (`read_tflite`), `comparison`
(`compare`, `runtime_report`), `litert` (`run_litert`), `tflm` (`run_tflm` and the
arena: `measure_arena`, `check_arena`), `weights` (`check_nvm_weights`),
`crossbar` (`export_crossbar`, `build_mapping`), `adapters` (Keras class ->
mapping op); `verify` re-exports the names it held before it was split.

Importing this package imports tf_nvm (and TensorFlow, in legacy-Keras mode).
"""

import tf_nvm  # noqa: F401  (legacy-Keras mode before TensorFlow loads)
from tflite_export.crossbar import HARDWARE_FIELDS, build_mapping, export_crossbar
from tflite_export.flatbuffer import TFLiteGraph, read_tflite
from tflite_export.tflite import CONTAINERS, TFLiteExport, export_tflite
from tflite_export.comparison import RuntimeComparison, RuntimeReport, compare, quantize_input, runtime_report
from tflite_export.litert import run_litert
from tflite_export.tflm import check_arena, measure_arena, run_tflm
from tflite_export.weights import WeightCheck, check_nvm_weights
from tflite_export import verify  # noqa: F401  (the module before the split: tflite_export.verify.X)

__all__ = [
    "export_tflite",
    "TFLiteExport",
    "CONTAINERS",
    "export_crossbar",
    "build_mapping",
    "HARDWARE_FIELDS",
    "compare",
    "RuntimeComparison",
    "runtime_report",
    "RuntimeReport",
    "check_arena",
    "check_nvm_weights",
    "WeightCheck",
    "measure_arena",
    "run_litert",
    "run_tflm",
    "quantize_input",
    "read_tflite",
    "TFLiteGraph",
]
