"""Exception types of tf_nvm.

Every error subclasses :class:`TfNvmError` and the builtin exception that fits
it, so callers may catch either. Messages name the argument (or layer, or
file), the value received, what is allowed, and the fix.
"""

__all__ = [
    "TfNvmError",
    "KerasModeError",
    "SpecError",
    "UnsupportedLayerError",
    "InvalidWeightsError",
    "NotAnNVMModelError",
    "DatasetNotFoundError",
    "CorruptDatasetError",
    "RecipeError",
    "MappingError",
    "ExportError",
]


class TfNvmError(Exception):
    """Base class of every error raised by tf_nvm."""


class KerasModeError(TfNvmError, ImportError):
    """TensorFlow was imported in Keras 3 mode before tf_nvm (tfmot needs tf_keras)."""


class SpecError(TfNvmError, ValueError):
    """An `NVMSpec` field (or a serialised spec) holds a value that is not allowed."""


class UnsupportedLayerError(TfNvmError, TypeError):
    """A model handed to `quantize_model` holds a layer tf_nvm cannot map to a crossbar."""


class InvalidWeightsError(TfNvmError, ValueError):
    """A model's weights cannot be quantized (NaN or infinite values)."""


class NotAnNVMModelError(TfNvmError, ValueError):
    """A function that needs an NVM model (from `quantize_model`) got another model."""


class DatasetNotFoundError(TfNvmError, FileNotFoundError):
    """No source of a data set could be found or fetched; the message lists what was tried."""


class CorruptDatasetError(TfNvmError, ValueError):
    """A data-set source exists but its contents are not what the loader expects."""


class RecipeError(TfNvmError, ValueError):
    """A training recipe (JSON configuration) is missing or has invalid fields."""


class MappingError(TfNvmError, ValueError):
    """A crossbar mapping file (or in-memory mapping) is malformed, inconsistent or from a newer schema."""


class ExportError(TfNvmError, ValueError):
    """A model cannot be exported to TFLite or to a crossbar mapping as asked (the message says why and the fix)."""
