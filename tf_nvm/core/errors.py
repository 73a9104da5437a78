"""Exception and warning types of tf_nvm.

Every error subclasses :class:`TfNvmError` and the builtin exception that fits
it, so callers may catch either. Messages name the argument (or layer, or
file), the value received, what is allowed, and the fix. Every raise in the
product is one of these classes; warnings are defined here too.

This module imports nothing (foundation layer).
"""

__all__ = [
    "TfNvmError",
    "KerasModeError",
    "SpecError",
    "UnknownNameError",
    "UnsupportedLayerError",
    "InvalidWeightsError",
    "NotAnNVMModelError",
    "ModelFileError",
    "ModeError",
    "DatasetNotFoundError",
    "CorruptDatasetError",
    "RecipeError",
    "RunFolderError",
    "MappingError",
    "ExportError",
    "ArenaTooSmallError",
    "SimulatorError",
    "ShardMergeError",
    "CostModelError",
    "SearchError",
    "PipelineError",
    "PrecisionError",
    "OutputFolderError",
    "TfNvmWarning",
    "NonInhibitingCrossbarWarning",
    "ZeroCodesWarning",
    "InputRangeWarning",
    "TensorFloat32Warning",
]


class TfNvmError(Exception):
    """Base class of every error raised by tf_nvm."""


class KerasModeError(TfNvmError, ImportError):
    """TensorFlow was imported in Keras 3 mode before tf_nvm (tfmot needs tf_keras)."""


class SpecError(TfNvmError, ValueError):
    """An `NVMSpec` field (or a serialised spec) holds a value that is not allowed."""


class UnknownNameError(TfNvmError, KeyError, ValueError):
    """A name looked up in a registry (preset, architecture, layer rule, digital op, data set, ...) is unknown.

    The message lists the known names. Subclasses `KeyError` (a failed lookup)
    and `ValueError` (a bad argument value); ``str()`` is the plain message.
    """

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class UnsupportedLayerError(TfNvmError, TypeError):
    """A model handed to `quantize_model` holds a layer tf_nvm cannot map to a crossbar."""


class InvalidWeightsError(TfNvmError, ValueError):
    """A model's weights cannot be quantized (NaN or infinite values)."""


class NotAnNVMModelError(TfNvmError, ValueError):
    """A function that needs an NVM model (from `quantize_model`) got another model."""


class ModelFileError(TfNvmError, ValueError):
    """A model file is not a ``.keras`` zip, is damaged or too large, or would run code while it loads."""


class ModeError(TfNvmError, ValueError):
    """A mode context (`emulate_runtime`, `converter_graph`, ...) got a value it does not know."""


class DatasetNotFoundError(TfNvmError, FileNotFoundError):
    """No source of a data set could be found or fetched; the message lists what was tried."""


class CorruptDatasetError(TfNvmError, ValueError):
    """A data-set source exists but its contents are not what the loader expects."""


class RecipeError(TfNvmError, ValueError):
    """A training recipe (JSON configuration) is missing or has invalid fields."""


class RunFolderError(TfNvmError, ValueError):
    """A run folder (written by `tf-nvm train`) is missing, incomplete, inconsistent or from a newer format."""


class MappingError(TfNvmError, ValueError):
    """A crossbar mapping file (or in-memory mapping) is malformed, inconsistent or from a newer schema."""


class ExportError(TfNvmError, ValueError):
    """A model cannot be exported to TFLite or to a crossbar mapping as asked (the message says why and the fix)."""


class ArenaTooSmallError(ExportError):
    """A TFLite Micro arena is smaller than the model needs (the message gives both sizes, in bytes)."""


class SimulatorError(TfNvmError, ValueError):
    """The analog simulator got an invalid configuration, noise model or input data."""


class ShardMergeError(SimulatorError):
    """Monte Carlo shards that do not form one run: other settings or mapping, a gap or an overlap of chips."""


class CostModelError(TfNvmError, ValueError):
    """The hardware cost model got an invalid technology description, mapping or TFLite file."""


class SearchError(TfNvmError, ValueError):
    """An architecture search got an invalid configuration, hypermodel or budget."""


class PipelineError(TfNvmError, ValueError):
    """An end-to-end experiment (``tf-nvm run``) got an invalid recipe or output folder."""


class PrecisionError(TfNvmError, ValueError):
    """An NVM model would compute in another precision than float32 (a mixed-precision or non-float32 dtype policy)."""


class OutputFolderError(TfNvmError, ValueError):
    """An output folder (``--out``) is a file, cannot be written, or holds files its command may not replace."""


class TfNvmWarning(UserWarning):
    """Base class of tf_nvm's warnings."""


class NonInhibitingCrossbarWarning(TfNvmWarning):
    """A unipolar crossbar receives only non-negative inputs and so cannot inhibit."""


class ZeroCodesWarning(TfNvmWarning):
    """Every device code of a crossbar layer is 0 under the shared weight scale (the layer outputs only its bias)."""


class InputRangeWarning(TfNvmWarning):
    """Model inputs lie outside the one shared activation range (they are clipped to it)."""


class TensorFloat32Warning(TfNvmWarning):
    """TensorFloat-32 execution was found enabled and tf_nvm turned it off (NVM arithmetic must be float32)."""
