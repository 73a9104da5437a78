"""tf_nvm: train Keras networks for analog NVM crossbars.

Importing tf_nvm puts TensorFlow in legacy-Keras (tf_keras) mode; import it
before tensorflow. See README.md.
"""

from tf_nvm import _keras  # noqa: F401  (must run before anything imports tensorflow)
from tf_nvm import datasets, errors, layers, models, presets
from tf_nvm.errors import (CorruptDatasetError, DatasetNotFoundError, ExportError, InvalidWeightsError,  # noqa: F401
                           KerasModeError, MappingError, NotAnNVMModelError, RecipeError, SpecError, TfNvmError,
                           UnsupportedLayerError)
from tf_nvm.quantizers import emulate_runtime
from tf_nvm.quantize import (LayerCodes, NonInhibitingCrossbarWarning, calibrate_scale, load_model,
                             model_spec, nvm_layers, quantize_model, weight_codes)
from tf_nvm.registry import custom_objects
from tf_nvm.spec import NVMSpec

__version__ = "0.1.0"

__all__ = [
    "NVMSpec",
    "presets",
    "layers",
    "datasets",
    "models",
    "quantize_model",
    "weight_codes",
    "load_model",
    "model_spec",
    "nvm_layers",
    "calibrate_scale",
    "custom_objects",
    "LayerCodes",
    "NonInhibitingCrossbarWarning",
    "emulate_runtime",
    *errors.__all__,
]
