"""Reading a trained NVM model: its crossbar layers, spec, device codes; loading it from disk.

`weight_codes` is the contract between the Keras model and every artefact
made from it (TFLite export, crossbar mapping, simulator): integer device codes
on the one shared scale, and the digital bias as int32 on the grid TFLite
stores it on.
"""

import dataclasses

import numpy as np

from tf_nvm._keras import QuantizeWrapper, keras, quantize_scope, wrapper_weight_variables
from tf_nvm.errors import NotAnNVMModelError
from tf_nvm.quantize_configs import NVMCrossbarConfig
from tf_nvm.serialization import custom_objects

__all__ = ["LayerCodes", "weight_codes", "model_spec", "nvm_layers", "crossbar_variables", "load_model"]


@dataclasses.dataclass(frozen=True)
class LayerCodes:
    """Device codes of one crossbar layer.

    Attributes:
        layer: layer name in the NVM model.
        codes: integer device codes (numpy int32), the kernel's shape; the
            layer's effective kernel equals ``codes * scale``.
        scale: the shared weight scale s (model units per code), the same float
            for every layer of a model.
        code_min: lowest code the device allows.
        code_max: highest code the device allows.
        bias: the digital bias as the model uses it (float32, model units), or None.
        bias_int32: the same bias in units of ``activation_step * scale``
            (int32, as TFLite stores it), or None.
    """

    layer: str
    codes: np.ndarray
    scale: float
    code_min: int
    code_max: int
    bias: np.ndarray = None
    bias_int32: np.ndarray = None

    @property
    def kernel(self):
        """Effective kernel, ``codes * scale`` (float32)."""
        return (self.codes * np.float32(self.scale)).astype(np.float32)


def crossbar_variables(layer):
    """(kernel variable, bias variable or None) of a built NVM crossbar wrapper.

    The wrapper replaces ``layer.layer.kernel`` by its quantized tensor while it
    runs, so the variables are taken from the wrapper's quantized-weight list.
    """
    variables = wrapper_weight_variables(layer)
    return variables[0], (variables[1] if len(variables) > 1 else None)


def nvm_layers(model):
    """The crossbar layers of an NVM model, in model order (tfmot wrappers)."""
    return [layer for layer in model.layers
            if isinstance(layer, QuantizeWrapper) and isinstance(layer.quantize_config, NVMCrossbarConfig)]


def model_spec(model):
    """The resolved `NVMSpec` of an NVM model (identical in every crossbar layer).

    Raises:
        NotAnNVMModelError: no crossbar layer, or layers disagree on the spec.
    """
    layers = nvm_layers(model)
    if not layers:
        raise NotAnNVMModelError(
            f"model {getattr(model, 'name', model)!r} has no NVM crossbar layer. Fix: pass the model "
            "returned by tf_nvm.quantize_model (or one built from tf_nvm.layers).")
    specs = {layer.quantize_config.spec for layer in layers}
    if len(specs) != 1:
        raise NotAnNVMModelError(
            f"model {model.name!r} mixes {len(specs)} different NVM specs across its crossbar layers; "
            "one model must use one spec (one weight scale, one activation range).")
    return layers[0].quantize_config.spec


def weight_codes(model):
    """Integer device codes, the shared scale and the int32 bias of every crossbar layer.

    Args:
        model: an NVM model.

    Returns:
        dict {layer name: `LayerCodes`} in model order; every ``scale`` is the
        same float and ``codes * scale`` is the kernel the layer computes with.

    Raises:
        NotAnNVMModelError: the model has no NVM crossbar layer.
    """
    spec = model_spec(model)
    out = {}
    for layer in nvm_layers(model):
        kernel_var, bias_var = crossbar_variables(layer)
        kernel = kernel_var.numpy()
        codes = np.clip(np.round(kernel / spec.weight_scale), spec.code_min, spec.code_max).astype(np.int32)
        bias = bias_int32 = None
        if bias_var is not None:
            step = spec.activation_step * spec.weight_scale
            units = np.round(bias_var.numpy() / step)
            bias = (units * step).astype(np.float32)
            bias_int32 = units.astype(np.int32)
        out[layer.name] = LayerCodes(layer.name, codes, float(spec.weight_scale), spec.code_min,
                                     spec.code_max, bias, bias_int32)
    return out


def load_model(path, compile=True):
    """Loads a saved NVM model (``.keras`` or SavedModel folder) with no extra arguments.

    Args:
        path: file or folder written by ``model.save``.
        compile: restore the optimizer/loss as saved.

    Returns:
        the tf_keras model.
    """
    with quantize_scope(custom_objects()):
        model = keras.models.load_model(path, custom_objects=custom_objects(), compile=compile)
    return model
