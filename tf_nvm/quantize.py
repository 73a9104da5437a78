"""`quantize_model`, `weight_codes`, `load_model`: the NVM model life cycle.

``quantize_model(model, spec)`` turns a float tf_keras model (Sequential or
Functional) into an NVM model: every crossbar layer's kernel sits on the one
shared device grid ``code * s``, every activation on the one shared range, and
``model.fit`` trains it with straight-through estimators. It is built with
tfmot's ``quantize_apply`` and tf_nvm's own `NVMQuantizeScheme`.
"""

import dataclasses
import math
import warnings

import numpy as np

from tf_nvm._keras import keras, quantize_scope, tfmot
from tf_nvm.digital import EXACT_LAYERS
from tf_nvm.constraints import NVMKernelConstraint
from tf_nvm.errors import InvalidWeightsError, NotAnNVMModelError, UnsupportedLayerError
from tf_nvm.presets import get as get_preset
from tf_nvm.quantize_configs import NVMCrossbarConfig, config_for, rule_for
from tf_nvm.registry import custom_objects
from tf_nvm.scheme import NVMQuantizeScheme, QuantizeLayer
from tf_nvm.spec import NVMSpec

__all__ = [
    "quantize_model",
    "weight_codes",
    "load_model",
    "model_spec",
    "nvm_layers",
    "calibrate_scale",
    "crossbar_variables",
    "LayerCodes",
    "NonInhibitingCrossbarWarning",
    "INITS",
]

INITS = ("keep", "device")
_QuantizeWrapper = tfmot.quantization.keras.QuantizeWrapper
_NONNEG_ACTIVATIONS = {"relu", "relu6", "sigmoid", "softmax", "exponential", "hard_sigmoid", "softplus"}


class NonInhibitingCrossbarWarning(UserWarning):
    """A unipolar crossbar receives only non-negative inputs and so cannot inhibit."""


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
        bias: the digital bias as the model uses it (float32), or None.
    """

    layer: str
    codes: np.ndarray
    scale: float
    code_min: int
    code_max: int
    bias: np.ndarray = None

    @property
    def kernel(self):
        """Effective kernel, ``codes * scale`` (float32)."""
        return (self.codes * np.float32(self.scale)).astype(np.float32)


# --------------------------------------------------------------------- helpers
def _as_spec(spec):
    if isinstance(spec, str):
        return get_preset(spec)
    if isinstance(spec, dict):
        return NVMSpec.from_dict(spec)
    if not isinstance(spec, NVMSpec):
        raise TypeError(f"spec must be an NVMSpec, a preset name or a dict, got {type(spec).__name__}.")
    return spec


def _layer_inputs(model):
    """[(layer, [inbound layer names])] in topological order (InputLayers skipped)."""
    config = model.get_config()
    if isinstance(model, keras.Sequential):
        out, previous = [], None
        for layer in model.layers:
            out.append((layer, [previous] if previous else []))
            previous = layer.name
        return out
    by_name = {layer.name: layer for layer in model.layers}
    out = []
    for entry in config["layers"]:
        layer = by_name[entry["name"]]
        if isinstance(layer, keras.layers.InputLayer):
            continue
        names = []
        for node in entry.get("inbound_nodes", []):
            for inbound in (node if isinstance(node, list) else node.get("args", [])):
                if isinstance(inbound, (list, tuple)) and inbound and isinstance(inbound[0], str):
                    names.append(inbound[0])
        out.append((layer, names))
    return out


def _activation_name(layer):
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    return getattr(act, "__name__", str(act))


def _output_nonnegative(layer, inputs_nonneg):
    """Sign propagation: is ``layer``'s output surely >= 0 (True) or possibly signed (False)?"""
    rule = rule_for(layer)
    if rule.role == "crossbar" or isinstance(layer, keras.layers.Activation):
        return _activation_name(layer) in _NONNEG_ACTIVATIONS
    if isinstance(layer, keras.layers.ReLU):
        return not layer.negative_slope
    if isinstance(layer, keras.layers.Softmax):
        return True
    if isinstance(layer, keras.layers.Rescaling):
        return inputs_nonneg and np.all(np.asarray(layer.scale) >= 0) and np.all(np.asarray(layer.offset) >= 0)
    if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.Subtract, keras.layers.LeakyReLU)):
        return False
    return inputs_nonneg  # pooling, reshaping, concatenation, addition, averaging


def _warn_non_inhibiting(graph, spec):
    """Warns about each unipolar crossbar whose inputs are all non-negative."""
    nonneg = {}
    for layer, inputs in graph:
        inputs_nonneg = bool(inputs) and all(nonneg.get(name, False) for name in inputs)
        if rule_for(layer).role == "crossbar" and spec.unipolar and inputs_nonneg:
            warnings.warn(
                f"layer {layer.name!r} ({type(layer).__name__}) is a unipolar crossbar (non-negative weights) "
                "whose inputs are all non-negative: its output can only grow with every input, so it cannot "
                "inhibit and the network trains badly even in float. Fix: give it signed, centred inputs, "
                "e.g. a BatchNormalization before it, or both signs of its input "
                "(Concatenate()([x, Rescaling(-1.0)(x)])), or use a bipolar spec.",
                NonInhibitingCrossbarWarning, stacklevel=3)
        nonneg[layer.name] = _output_nonnegative(layer, inputs_nonneg)


def _check_weights_finite(model):
    for layer in model.layers:
        for weight in layer.weights:
            value = weight.numpy()
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
                raise InvalidWeightsError(
                    f"layer {layer.name!r} weight {weight.name!r} holds {bad} NaN/infinite value(s) of "
                    f"{np.size(value)}; quantize_model needs finite weights. Fix: retrain or re-initialise "
                    "the float model (check the learning rate and the inputs for NaN) before quantizing.")


def calibrate_scale(model, spec):
    """The one shared weight scale calibrated from a float model's kernels.

    For each crossbar layer l, ``s_l = max|W_l| / max(|code_min|, code_max)`` maps
    that layer's largest weight onto the top code; the shared scale is the
    geometric mean of the ``s_l`` (one value for the whole model; layers with
    larger weights clip, layers with smaller ones use fewer codes).

    Args:
        model: float tf_keras model.
        spec: `NVMSpec` (its code range is used).

    Returns:
        float > 0, model units per code.
    """
    top = max(abs(spec.code_min), spec.code_max)
    logs = []
    for layer in model.layers:
        if _is_crossbar_float(layer):
            kernel = getattr(layer, rule_for(layer).kernel_attr).numpy()
            peak = float(np.max(np.abs(kernel)))
            if peak > 0:
                logs.append(math.log(peak / top))
    if not logs:
        return 1.0 / top
    return float(math.exp(sum(logs) / len(logs)))


def _is_crossbar_float(layer):
    try:
        return rule_for(layer).role == "crossbar"
    except UnsupportedLayerError:
        return False


def _to_functional(model):
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(batch_shape=model.input_shape, dtype=model.inputs[0].dtype)
        x = inputs
        for layer in model.layers:
            x = layer(x)
        return keras.Model(inputs, x, name=model.name)
    return model


# ---------------------------------------------------------------- public API
def quantize_model(model, spec, *, init="keep"):
    """Returns an NVM copy of a float tf_keras model, ready for ``compile``/``fit``.

    Every crossbar layer (Dense, Conv1D, Conv2D, DepthwiseConv2D) gets its kernel
    on the device grid ``code * s`` with ONE scale ``s`` for the whole model and
    codes in the spec's range (0..2^b-1 when unipolar); biases stay digital.
    Every activation, the model input included, is quantized on the ONE
    shared range ``[-A, A*127/128]`` (ties to even). Every BatchNormalization
    becomes an `NVMBatchNormalization` (same weights; its inference affine is
    snapped to per-channel int8/int32 constants so that TFLite computes it
    bit-exactly) and every GlobalAveragePooling1D/2D its `tf_nvm.digital`
    counterpart (``sum * float32(1/n)``, as the runtime computes it). The input
    model is not modified.

    Args:
        model: a built tf_keras Sequential or Functional model.
        spec: `NVMSpec`, a preset name (see `tf_nvm.presets.names()`) or a spec dict.
        init: ``"keep"`` snaps the float kernels onto the grid (for trained
            models); ``"device"`` rescales each crossbar kernel so that its
            largest weight reaches the top code (unipolar: magnitudes, i.e.
            codes spread from 0 to the top with mean near mid-range): a better
            start for training from scratch on a coarse grid.

    Returns:
        a new tf_keras Functional model whose NVM layers are tfmot
        ``QuantizeWrapperV2`` layers with `NVMCrossbarConfig`.

    Raises:
        UnsupportedLayerError: a layer class tf_nvm cannot map (the message
            lists the supported ones), or a crossbar layer with a softmax.
        InvalidWeightsError: NaN or infinite weights.
        SpecError: invalid spec values.
    """
    spec = _as_spec(spec)
    if init not in INITS:
        raise ValueError(f"quantize_model: init must be one of {list(INITS)}, got {init!r}.")
    if not isinstance(model, keras.Model) or not (isinstance(model, keras.Sequential)
                                                   or getattr(model, "_is_graph_network", False)):
        raise UnsupportedLayerError(
            f"quantize_model expects a tf_keras Sequential or Functional model, got {type(model).__name__}. "
            "Fix: build the model with tf_keras (import tf_nvm first) as Sequential or Functional; "
            "subclassed models cannot be quantized.")
    if not model.built:
        raise ValueError("quantize_model: the model is not built. Fix: give it an Input or call model.build(shape).")
    model = _to_functional(model)
    graph = _layer_inputs(model)
    for layer, _ in graph:
        if isinstance(layer, (_QuantizeWrapper, QuantizeLayer)):
            raise UnsupportedLayerError(
                f"layer {layer.name!r} of class {type(layer).__name__} is already quantized. Fix: pass the "
                "float model to quantize_model, not an NVM model.")
        rule_for(layer)  # raises UnsupportedLayerError with the supported list
    _check_weights_finite(model)
    if spec.weight_scale is None:
        spec = spec.with_weight_scale(calibrate_scale(model, spec))
    _warn_non_inhibiting(graph, spec)

    constraint = NVMKernelConstraint(spec)

    def annotate(layer):
        rule = rule_for(layer)
        config = layer.get_config()
        if rule.role == "crossbar":
            config[rule.constraint_arg] = constraint
        # BatchNormalization and global average pooling become their runtime-exact tf_nvm.digital
        # counterparts (same weights; the spec gives them the activation grid).
        exact = EXACT_LAYERS.get(type(layer))
        clone = exact.from_config(dict(config, spec=spec.to_dict())) if exact else type(layer).from_config(config)
        return tfmot.quantization.keras.quantize_annotate_layer(clone, config_for(layer, spec))

    with quantize_scope(custom_objects()):
        annotated = keras.models.clone_model(model, clone_function=annotate)
        annotated.set_weights(model.get_weights())
        applied = tfmot.quantization.keras.quantize_apply(annotated, scheme=NVMQuantizeScheme(spec))
        # quantize_apply's model tracks wrapped kernels twice and does not load back from .keras;
        # a model rebuilt from its config does (stack notes).
        nvm = keras.Model.from_config(applied.get_config(), custom_objects=custom_objects())
    nvm.set_weights(applied.get_weights())
    _init_kernels(nvm, spec, init)
    return nvm


def crossbar_variables(layer):
    """(kernel variable, bias variable or None) of a built NVM crossbar wrapper.

    The wrapper replaces ``layer.layer.kernel`` by its quantized tensor while it
    runs, so the variables are taken from the wrapper's quantized-weight list.
    """
    variables = [weight for weight, _, _ in layer._weight_vars]  # pylint: disable=protected-access
    return variables[0], (variables[1] if len(variables) > 1 else None)


def _init_kernels(nvm, spec, init):
    for layer in nvm_layers(nvm):
        kernel, _ = crossbar_variables(layer)
        value = kernel.numpy()
        if init == "device":
            peak = float(np.max(np.abs(value))) or 1.0
            value = value * ((spec.code_max + 0.49) * spec.weight_scale / peak)
            if spec.unipolar:
                value = np.abs(value)
        kernel.assign(NVMKernelConstraint(spec)(value))


def nvm_layers(model):
    """The crossbar layers of an NVM model, in model order (tfmot wrappers)."""
    return [layer for layer in model.layers
            if isinstance(layer, _QuantizeWrapper) and isinstance(layer.quantize_config, NVMCrossbarConfig)]


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
    specs = {json_key(layer.quantize_config.spec) for layer in layers}
    if len(specs) != 1:
        raise NotAnNVMModelError(
            f"model {model.name!r} mixes {len(specs)} different NVM specs across its crossbar layers; "
            "one model must use one spec (one weight scale, one activation range).")
    return layers[0].quantize_config.spec


def json_key(spec):
    """A hashable key of a spec's values."""
    return tuple(sorted(spec.to_dict().items()))


def weight_codes(model):
    """Integer device codes and the shared scale of every crossbar layer.

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
        bias = None
        if bias_var is not None:
            step = spec.activation_step * spec.weight_scale
            bias = (np.round(bias_var.numpy() / step) * step).astype(np.float32)
        out[layer.name] = LayerCodes(layer.name, codes, float(spec.weight_scale), spec.code_min,
                                     spec.code_max, bias)
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
    _fill_missing_specs(model)
    return model


def _fill_missing_specs(model):
    """Gives digital layers saved without a spec (models from tf_nvm < 0.1 tflm emulation) the model's one spec."""
    missing = [getattr(layer, "layer", layer) for layer in model.layers
               if getattr(getattr(layer, "layer", layer), "spec", False) is None]
    if missing and nvm_layers(model):
        spec = model_spec(model)
        for layer in missing:
            layer.spec = spec
