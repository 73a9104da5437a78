"""tfmot `QuantizeConfig`s per layer role, and the registry of supported layers.

Every supported Keras layer class has exactly one role:

* ``crossbar``: a weight layer mapped onto crossbars (Dense, Conv1D, Conv2D,
  DepthwiseConv2D). Kernel on the shared device grid, digital bias on its int32
  grid, output (post-activation) on the shared activation range.
* ``digital``: a digital step that makes new values (BatchNormalization,
  activations, average pooling, Add/Subtract, Rescaling, ...): output on the
  shared activation range (rounded half to even, like LiteRT's kernels).
  `quantize_model` turns every BatchNormalization and global average pooling
  into its `tf_nvm.digital` counterpart (exact in TFLite).
  A ReLU (or ``Activation("relu")``) whose inputs are all on the shared grid
  gets `NVMOnGridConfig` instead: its output is on the grid already, so its
  quantizer is the identity outside the converter's graph (`grid_input_layers`
  finds those layers; `quantize_model` passes the result to `config_for`).
* ``probability``: Softmax, output on TFLite's fixed [0, 1) range.
* ``passthrough``: layers whose outputs are inputs moved around (max pooling,
  Flatten, Reshape, Dropout, Concatenate, padding): no quantizer, values stay on
  the shared grid.

`LAYER_RULES` is the registry (a `tf_nvm.registry.Registry` keyed by class
name); `config_for(layer, spec)` builds a config.
"""

import dataclasses

from tf_nvm._keras import keras, tfmot
from tf_nvm.digital import (NVMAveragePooling1D, NVMAveragePooling2D, NVMBatchNormalization, NVMGlobalAveragePooling1D,
                            NVMGlobalAveragePooling2D)
from tf_nvm.errors import UnsupportedLayerError
from tf_nvm.graph import activation_name
from tf_nvm.quantizers import (NVMActivationQuantizer, NVMBiasQuantizer, NVMCrossbarOutputQuantizer,
                               NVMOnGridQuantizer, NVMWeightQuantizer, ProbabilityQuantizer)
from tf_nvm.registry import Registry
from tf_nvm.serialization import register
from tf_nvm.spec import SpecConfigured

__all__ = [
    "NVMCrossbarConfig",
    "NVMDigitalConfig",
    "NVMOnGridConfig",
    "NVMProbabilityConfig",
    "NVMPassthroughConfig",
    "LayerRule",
    "LAYER_RULES",
    "ROLES",
    "register_layer",
    "rule_for",
    "is_crossbar",
    "config_for",
    "grid_input_layers",
    "supported_layer_names",
]

_QuantizeConfig = tfmot.quantization.keras.QuantizeConfig
ROLES = ("crossbar", "digital", "probability", "passthrough")


class _SpecConfig(SpecConfigured, _QuantizeConfig):
    """Base: a QuantizeConfig holding one resolved spec."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []


@register
class NVMCrossbarConfig(_SpecConfig):
    """A crossbar layer: device-code kernel, digital int32-grid bias, shared-range output.

    Args:
        spec: resolved `NVMSpec`.
        kernel_attr: name of the layer attribute holding the kernel
            (``"kernel"``, or ``"depthwise_kernel"`` for DepthwiseConv2D).
    """

    def __init__(self, spec, kernel_attr="kernel"):
        super().__init__(spec)
        self.kernel_attr = kernel_attr

    def _attrs(self, layer):
        attrs = [self.kernel_attr]
        if getattr(layer, "use_bias", False):
            attrs.append("bias")
        return attrs

    def get_weights_and_quantizers(self, layer):
        quantizers = {self.kernel_attr: NVMWeightQuantizer(self.spec), "bias": NVMBiasQuantizer(self.spec)}
        return [(getattr(layer, a), quantizers[a]) for a in self._attrs(layer)]

    def set_quantize_weights(self, layer, quantize_weights):
        for attr, value in zip(self._attrs(layer), quantize_weights):
            setattr(layer, attr, value)

    def get_output_quantizers(self, layer):
        # Linear/ReLU outputs are requantized from the exact integer accumulator, as the runtime does
        # (bit-exact in LiteRT); other activations keep the plain grid rounding.
        if activation_name(layer) in (None, "linear", "relu"):
            # LiteRT's reference FULLY_CONNECTED rounds differently (tf_nvm.modes.emulate_runtime).
            return [NVMCrossbarOutputQuantizer(self.spec, fully_connected=isinstance(layer, keras.layers.Dense))]
        return [NVMActivationQuantizer(self.spec)]

    def get_config(self):
        return {"spec": self.spec.to_dict(), "kernel_attr": self.kernel_attr}


@register
class NVMDigitalConfig(_SpecConfig):
    """A digital step: output on the shared activation range."""

    def get_output_quantizers(self, layer):
        return [NVMActivationQuantizer(self.spec)]


@register
class NVMOnGridConfig(NVMDigitalConfig):
    """A digital step that maps on-grid inputs to on-grid outputs (ReLU): `NVMOnGridQuantizer` output."""

    def get_output_quantizers(self, layer):
        return [NVMOnGridQuantizer(self.spec)]


@register
class NVMProbabilityConfig(_SpecConfig):
    """A softmax: output on [0, 255/256] (TFLite's int8 softmax range)."""

    def get_output_quantizers(self, layer):
        return [ProbabilityQuantizer(self.spec)]


@register
class NVMPassthroughConfig(_SpecConfig):
    """A layer that only moves values: no quantizer."""


@dataclasses.dataclass(frozen=True)
class LayerRule:
    """How one Keras layer class is quantized.

    Attributes:
        layer_class: the tf_keras layer class (matched exactly, not subclasses).
        role: one of `ROLES`.
        kernel_attr: kernel attribute for crossbar layers.
        constraint_arg: constructor argument of the kernel constraint.
    """

    layer_class: type
    role: str
    kernel_attr: str = "kernel"
    constraint_arg: str = "kernel_constraint"


LAYER_RULES = Registry("layer rule", error=UnsupportedLayerError,
                       fix="register a rule with tf_nvm.quantize_configs.register_layer")
"""Keras layer class name -> `LayerRule`."""
_CONFIG_BY_ROLE = {
    "crossbar": NVMCrossbarConfig,
    "digital": NVMDigitalConfig,
    "probability": NVMProbabilityConfig,
    "passthrough": NVMPassthroughConfig,
}


def register_layer(layer_class, role, kernel_attr="kernel", constraint_arg="kernel_constraint"):
    """Adds a Keras layer class to `LAYER_RULES`.

    Args:
        layer_class: a tf_keras layer class.
        role: one of `ROLES`.
        kernel_attr: kernel attribute name, for ``role="crossbar"``.
        constraint_arg: constructor argument of its kernel constraint.

    Raises:
        UnsupportedLayerError: unknown role, or the class is registered already.
    """
    if role not in ROLES:
        raise UnsupportedLayerError(f"register_layer: role must be one of {list(ROLES)}, got {role!r}. "
                                    "Fix: pass one of them.")
    LAYER_RULES.register(layer_class.__name__, LayerRule(layer_class, role, kernel_attr, constraint_arg),
                         description=role)


_L = keras.layers
for _cls in (_L.Dense, _L.Conv1D, _L.Conv2D):
    register_layer(_cls, "crossbar")
register_layer(_L.DepthwiseConv2D, "crossbar", kernel_attr="depthwise_kernel",
               constraint_arg="depthwise_constraint")
for _cls in (_L.BatchNormalization, _L.Activation, _L.ReLU, _L.LeakyReLU, _L.AveragePooling1D,
             _L.AveragePooling2D, _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D, _L.Add,
             _L.Subtract, _L.Average, _L.Rescaling):
    register_layer(_cls, "digital")
for _cls in (NVMBatchNormalization, NVMGlobalAveragePooling1D, NVMGlobalAveragePooling2D, NVMAveragePooling1D,
             NVMAveragePooling2D):
    register_layer(_cls, "digital")  # what quantize_model puts in place of the Keras layers (tf_nvm.digital)
register_layer(_L.Softmax, "probability")
for _cls in (_L.MaxPooling1D, _L.MaxPooling2D, _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D, _L.Flatten,
             _L.Reshape, _L.Dropout, _L.SpatialDropout1D, _L.SpatialDropout2D, _L.ZeroPadding1D,
             _L.ZeroPadding2D, _L.Concatenate, _L.Permute, _L.Cropping1D, _L.Cropping2D):
    register_layer(_cls, "passthrough")


def supported_layer_names():
    """Sorted names of the supported Keras layer classes."""
    return LAYER_RULES.names()


def rule_for(layer):
    """Returns the `LayerRule` of ``layer``.

    Raises:
        UnsupportedLayerError: the class is not supported, or a crossbar layer
            ends in a softmax (its logits would have no quantizer).
    """
    name = type(layer).__name__
    rule = LAYER_RULES.get(name) if name in LAYER_RULES else None
    if rule is None or type(layer) is not rule.layer_class:
        raise UnsupportedLayerError(
            f"layer {layer.name!r} of class {type(layer).__name__} is not supported by tf_nvm.quantize_model. "
            f"Supported layer classes: {', '.join(supported_layer_names())}. Fix: replace it with a "
            "supported layer, or register a rule with tf_nvm.quantize_configs.register_layer.")
    if rule.role == "crossbar" and activation_name(layer) == "softmax":
        raise UnsupportedLayerError(
            f"layer {layer.name!r} of class {type(layer).__name__} has activation='softmax', which is not "
            "supported on a crossbar layer (its logits would leave the shared activation range unquantized). "
            "Fix: use activation=None and a loss with from_logits=True, or add a separate "
            "keras.layers.Softmax() layer after it.")
    if rule.layer_class is keras.layers.Activation and activation_name(layer) == "softmax":
        return LayerRule(rule.layer_class, "probability")
    return rule


def is_crossbar(layer):
    """True when ``layer`` is a supported crossbar layer (`rule_for` gives it the ``crossbar`` role)."""
    try:
        return rule_for(layer).role == "crossbar"
    except UnsupportedLayerError:
        return False


def config_for(layer, spec, grid_input=False):
    """Builds the QuantizeConfig for ``layer`` on the resolved ``spec``.

    Args:
        layer: a supported Keras layer.
        spec: resolved `NVMSpec`.
        grid_input: True when every input of ``layer`` surely lies on the shared grid (see
            `grid_input_layers`): a grid-preserving layer (ReLU) then gets `NVMOnGridConfig`.
    """
    rule = rule_for(layer)
    if rule.role == "crossbar":
        return NVMCrossbarConfig(spec, kernel_attr=rule.kernel_attr)
    if grid_input and _maps_grid_to_grid(layer):
        return NVMOnGridConfig(spec)
    return _CONFIG_BY_ROLE[rule.role](spec)


def _maps_grid_to_grid(layer):
    """A plain ReLU (no slope, threshold or cap) or ``Activation("relu")``: grid values in, grid values out."""
    if type(layer) is keras.layers.ReLU:
        return not layer.negative_slope and not layer.threshold and layer.max_value is None
    return type(layer) is keras.layers.Activation and activation_name(layer) == "relu"


_SCALING_PASSTHROUGH = (keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D)
"""Passthrough layers that move values off the grid while training (dropout scales by 1 / (1 - rate))."""


def grid_input_layers(nodes):
    """Names of the layers every input of which surely lies on the shared activation grid, in training too.

    On the grid: the model inputs (the scheme quantizes them), every output of a crossbar or digital
    layer (each has a grid quantizer; `NVMOnGridConfig` layers by induction), and the outputs of
    passthrough layers all of whose inputs are on it, except dropout. Off it: softmax outputs.

    Args:
        nodes: `tf_nvm.graph.layer_graph` output with ``include_inputs=True`` (of a supported float model).

    Returns:
        set of layer names.
    """
    on_grid, found = {}, set()
    for node in nodes:
        layer = node.layer
        inputs = bool(node.inputs) and all(on_grid.get(name, False) for name in node.inputs)
        if inputs:
            found.add(node.name)
        if isinstance(layer, keras.layers.InputLayer):
            on_grid[node.name] = True
            continue
        role = rule_for(layer).role
        if role == "passthrough":
            on_grid[node.name] = inputs and not isinstance(layer, _SCALING_PASSTHROUGH)
        else:
            on_grid[node.name] = role in ("crossbar", "digital")
    return found
