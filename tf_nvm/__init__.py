"""tf_nvm: train Keras networks for analog NVM crossbars.

Importing tf_nvm is cheap: it does not import TensorFlow. It sets
``TF_USE_LEGACY_KERAS=1`` (tfmot needs tf_keras, Keras 2), so import it before
tensorflow. The Keras-side names (`quantize_model`, `weight_codes`,
`load_model`, `layers`, `models`, ...) load TensorFlow on first use. The
numpy-only parts (`NVMSpec`, `presets`, `mapping`, `datasets`, errors) never
do. See README.md.
"""

import importlib
import os
import sys

_TF_IMPORTED_BEFORE = "tensorflow" in sys.modules
"""Whether TensorFlow was already imported when tf_nvm was (for `KerasModeError`'s message)."""
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tf_nvm import _moved  # noqa: E402

_moved.install()  # the module paths of 0.3 (tf_nvm.spec, tf_nvm.layers, ...) still import

from tf_nvm.core import quiet as _quiet  # noqa: E402

if _quiet.wanted():  # before TensorFlow loads, whoever imports it: its C++ log lines (cuInit error, XLA) filtered
    _quiet.quiet_tensorflow_log_level()

from tf_nvm.core import errors, preprocessing, presets  # noqa: E402
from tf_nvm.core.errors import (  # noqa: E402,F401  (every error and warning, as tf_nvm.<Name>)
    CorruptDatasetError, CostModelError, DatasetNotFoundError, ExportError, InputRangeWarning, InvalidWeightsError,
    KerasModeError,
    MappingError, ModeError, ModelFileError, NonInhibitingCrossbarWarning, NotAnNVMModelError, PipelineError,
    RecipeError, RunFolderError, SearchError, SimulatorError, SpecError, TfNvmError, TfNvmWarning, UnknownNameError,
    UnsupportedLayerError, ZeroCodesWarning)
from tf_nvm.core.errors import ArenaTooSmallError  # noqa: E402,F401
from tf_nvm.core.errors import PrecisionError, TensorFloat32Warning  # noqa: E402,F401
from tf_nvm.core.errors import ShardMergeError  # noqa: E402,F401
from tf_nvm.core.spec import NVMSpec, resolve_spec  # noqa: E402

if _TF_IMPORTED_BEFORE:
    from tf_nvm.keras import backend as _keras  # noqa: E402,F401  (TensorFlow is loaded already: check its Keras mode now)

from tf_nvm.core.version import __version__  # noqa: E402,F401  (tf_nvm.__version__)

_LAZY = {
    # name: (module, attribute or None for the module itself)
    "datasets": ("tf_nvm.datasets", None),
    "mapping": ("tf_nvm.mapping", None),
    "noise": ("tf_nvm.noise", None),
    "simulator": ("tf_nvm.simulator", None),
    "layers": ("tf_nvm.keras.layers", None),
    "models": ("tf_nvm.experiments.models", None),
    "quantize_model": ("tf_nvm.keras.quantize", "quantize_model"),
    "calibrate_scale": ("tf_nvm.keras.quantize", "calibrate_scale"),
    "weight_codes": ("tf_nvm.keras.nvm_model", "weight_codes"),
    "load_model": ("tf_nvm.keras.nvm_model", "load_model"),
    "model_spec": ("tf_nvm.keras.nvm_model", "model_spec"),
    "nvm_layers": ("tf_nvm.keras.nvm_model", "nvm_layers"),
    "LayerCodes": ("tf_nvm.keras.nvm_model", "LayerCodes"),
    "custom_objects": ("tf_nvm.keras.serialization", "custom_objects"),
    "emulate_runtime": ("tf_nvm.core.modes", "emulate_runtime"),
}


def __getattr__(name):
    """Loads the Keras-side names (and heavy submodules) on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'tf_nvm' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "NVMSpec",
    "resolve_spec",
    "presets",
    "preprocessing",
    "errors",
    *_LAZY,
    *errors.__all__,
]
