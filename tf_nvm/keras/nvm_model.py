"""Reading a trained NVM model: its crossbar layers, spec, device codes.

`weight_codes` is the contract between the Keras model and every artefact
made from it (TFLite export, crossbar mapping, simulator): integer device codes
on the one shared scale, and the digital bias as int32 on the grid TFLite
stores it on. Both are read with the codes' one rounding rule, `tf_nvm.core.grid.to_codes`,
the rule the NVM quantizers train with. Loading a saved model from disk (`load_model`) is
`tf_nvm.keras.model_file`, re-exported here.
"""

import dataclasses

import numpy as np

from tf_nvm.core.errors import ExportError, InvalidWeightsError, NotAnNVMModelError
from tf_nvm.core.grid import to_codes
from tf_nvm.core.spec import NVMSpec
from tf_nvm.keras.backend import QuantizeWrapper, keras, tf, wrapper_weight_variables
from tf_nvm.keras.model_file import (MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, MAX_MODEL_BYTES, check_keras_config,
                                     check_keras_file, load_model)
from tf_nvm.keras.quantize_configs import NVMCrossbarConfig

__all__ = ["LayerCodes", "weight_codes", "model_spec", "nvm_layers", "crossbar_variables", "load_model",
           "check_keras_file", "nonfinite_weights", "check_finite_weights", "check_fixed_input_shape",
           "check_keras_config", "MAX_CONFIG_BYTES", "MAX_MODEL_BYTES", "MAX_CONFIG_DEPTH"]


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
    bias: np.ndarray | None = None
    bias_int32: np.ndarray | None = None

    @property
    def kernel(self) -> np.ndarray:
        """Effective kernel, ``codes * scale`` (float32)."""
        return (self.codes * np.float32(self.scale)).astype(np.float32)


def crossbar_variables(layer: keras.layers.Layer) -> tuple[tf.Variable, tf.Variable | None]:
    """(kernel variable, bias variable or None) of a built NVM crossbar wrapper.

    The wrapper replaces ``layer.layer.kernel`` by its quantized tensor while it
    runs, so the variables are taken from the wrapper's quantized-weight list.
    """
    variables = wrapper_weight_variables(layer)
    return variables[0], (variables[1] if len(variables) > 1 else None)


def nvm_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The crossbar layers of an NVM model, in model order (tfmot wrappers)."""
    return [layer for layer in model.layers
            if isinstance(layer, QuantizeWrapper) and isinstance(layer.quantize_config, NVMCrossbarConfig)]


def model_spec(model: keras.Model) -> NVMSpec:
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


def nonfinite_weights(model: keras.Model) -> list[tuple[str, str, int, int]]:
    """The weights of ``model`` that hold NaN or infinite values, in layer order.

    Returns:
        list of ``(layer name, weight name, non-finite count, size)``.
    """
    found = []
    for layer in model.layers:
        for weight in layer.weights:
            value = weight.numpy()
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                found.append((layer.name, weight.name, int(value.size - np.count_nonzero(np.isfinite(value))),
                              int(value.size)))
    return found


def check_finite_weights(model: keras.Model) -> None:
    """Raises `InvalidWeightsError` naming the first weight that holds NaN or infinite values.

    An export of such a model would store NaN scales and biases that every
    runtime computes garbage with (and comparisons would agree with garbage).
    """
    for _, weight, bad, size in nonfinite_weights(model)[:1]:
        raise InvalidWeightsError(
            f"model {model.name!r}: weight {weight!r} holds {bad} NaN/infinite value(s) of {size}; nothing was "
            "exported. Fix: retrain with a lower learning rate (the training diverged), or check the inputs for NaN.")


def check_fixed_input_shape(model: keras.Model, error: type[Exception] = ExportError, owner: str = "export",
                            action: str = "exported") -> None:
    """Raises ``error`` when an input of ``model`` has an unknown (None) size besides the batch axis.

    Args:
        model: a tf_keras model.
        error: the tf_nvm error class raised.
        owner: who asks (the message starts with it).
        action: what cannot be done (``"exported"``, ``"quantized"``).
    """
    for tensor in model.inputs:
        if any(dim is None for dim in tuple(tensor.shape)[1:]):
            raise error(
                f"{owner}: model {model.name!r} input {tensor.name!r} has shape {tuple(tensor.shape)}: an unknown "
                f"(None) axis besides the batch axis cannot be {action} (crossbar tiles, the mapping and the int8 "
                "model need every size). Fix: build the model with a fixed input shape, e.g. keras.Input((128, 9)) "
                "(a trained model: rebuild it so and copy the weights).")


def weight_codes(model: keras.Model) -> dict[str, LayerCodes]:
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
    assert spec.weight_scale is not None  # an NVM model's spec holds its scale (resolved with need_scale)
    out = {}
    for layer in nvm_layers(model):
        kernel_var, bias_var = crossbar_variables(layer)
        kernel = kernel_var.numpy()
        codes = to_codes(kernel, spec.weight_scale, spec.code_min, spec.code_max)
        bias = bias_int32 = None
        if bias_var is not None:
            step = spec.activation_step * spec.weight_scale
            bias_int32 = to_codes(bias_var.numpy(), step)
            bias = (bias_int32 * step).astype(np.float32)
        out[layer.name] = LayerCodes(layer.name, codes, float(spec.weight_scale), spec.code_min,
                                     spec.code_max, bias, bias_int32)
    return out


