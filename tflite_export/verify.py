"""Run an exported ``.tflite`` in LiteRT and TFLite Micro and compare it with the Keras NVM model.

The names of this module live in one module per concept; they are re-exported
here, where earlier releases defined them (``from tflite_export.verify import
compare`` keeps working):

* `tflite_export.comparison`: `compare`, `runtime_report`, `RuntimeComparison`,
  `RuntimeReport`, the int8 grid of the inputs and outputs (`quantize_input`,
  `io_quantization`, `keras_int8_outputs`) and which Keras arithmetic each
  runtime is compared with (`KERAS_EMULATION`).
* `tflite_export.litert`: `run_litert`, `require_litert`.
* `tflite_export.tflm`: `run_tflm`, `require_tflm` and the TFLite Micro arena
  measured in child processes (`measure_arena`, `check_arena`, `ARENA_STEP`).
* `tflite_export.weights`: `check_nvm_weights`, `WeightCheck`.
"""

from tflite_export.comparison import (KERAS_EMULATION, RUNTIME_NAMES, RuntimeComparison, RuntimeReport, compare,
                                   io_quantization, keras_int8_outputs, quantize_input, runtime_report)
from tflite_export.litert import LITERT_RESOLVERS, require_litert, run_litert
from tflite_export.tflm import ARENA_STEP, check_arena, measure_arena, require_tflm, run_tflm
from tflite_export.weights import WeightCheck, check_nvm_weights

__all__ = [
    "RuntimeComparison",
    "RuntimeReport",
    "runtime_report",
    "RUNTIME_NAMES",
    "WeightCheck",
    "quantize_input",
    "keras_int8_outputs",
    "run_litert",
    "run_tflm",
    "measure_arena",
    "check_arena",
    "ARENA_STEP",
    "compare",
    "check_nvm_weights",
    "io_quantization",
    "KERAS_EMULATION",
    "require_tflm",
    "require_litert",
    "LITERT_RESOLVERS",
]
