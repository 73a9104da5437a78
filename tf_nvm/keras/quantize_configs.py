"""tfmot `QuantizeConfig`s per layer role, and the registry of supported layers.

Every supported Keras layer class has exactly one role:

* ``crossbar``: a weight layer mapped onto crossbars (Dense, Conv1D, Conv2D,
  DepthwiseConv2D). Kernel on the shared device grid, digital bias on its int32
  grid, output (post-activation) on the shared activation range.
* ``digital``: a digital step that makes new values (BatchNormalization,
  activations, average pooling, Add/Subtract, Rescaling, ...): output on the
  shared activation range (rounded half to even, like LiteRT's kernels).
  `quantize_model` turns every BatchNormalization and global average pooling
  into its `tf_nvm.keras.digital` counterpart (exact in TFLite).
  A ReLU (or ``Activation("relu")``) whose inputs are all on the shared grid
  gets `NVMOnGridConfig` instead: its output is on the grid already, so its
  quantizer is the identity outside the converter's graph (`grid_input_layers`
  finds those layers; `quantize_model` passes the result to `config_for`).
* ``probability``: Softmax, output on TFLite's fixed [0, 1) range.
* ``passthrough``: layers whose outputs are inputs moved around (max pooling,
  Flatten, Reshape, Dropout, Concatenate, padding): no quantizer, values stay on
  the shared grid.

`LAYER_RULES` is the registry (a `tf_nvm.core.registry.Registry` keyed by class
name); `config_for(layer, spec)` builds a config.
"""

import dataclasses
from typing import Any, Callable

import numpy as np

from tf_nvm.keras.backend import QuantizeConfig, Quantizer, keras
from tf_nvm.keras.digital import (NVMAveragePooling1D, NVMAveragePooling2D, NVMBatchNormalization,
                                  NVMGlobalAveragePooling1D, NVMGlobalAveragePooling2D)
from tf_nvm.core.errors import UnsupportedLayerError
from tf_nvm.keras.graph import LayerNode, activation_name
from tf_nvm.mapping.ops import DIGITAL_OPS
from tf_nvm.mapping.types import ACTIVATIONS, CROSSBAR_OPS
from tf_nvm.keras.quantizers import (NVMActivationQuantizer, NVMBiasQuantizer, NVMCrossbarOutputQuantizer,
                               NVMOnGridQuantizer, NVMWeightQuantizer, ProbabilityQuantizer)
from tf_nvm.core.registry import Registry
from tf_nvm.keras.serialization import add_custom_object, register
from tf_nvm.core.spec import NVMSpec, SpecConfigured

__all__ = [
    "NVMCrossbarConfig",
    "NVMDigitalConfig",
    "NVMOnGridConfig",
    "NVMProbabilityConfig",
    "NVMPassthroughConfig",
    "LayerRule",
    "LAYER_RULES",
    "REFUSED_LAYERS",
    "ROLES",
    "register_layer",
    "rule_for",
    "is_crossbar",
    "config_for",
    "grid_input_layers",
    "supported_layer_names",
]

ROLES = ("crossbar", "digital", "probability", "passthrough")


class _SpecConfig(SpecConfigured, QuantizeConfig):
    """Base: a QuantizeConfig holding one resolved spec."""

    def get_weights_and_quantizers(self, layer: keras.layers.Layer) -> list[tuple[Any, Quantizer]]:
        return []

    def get_activations_and_quantizers(self, layer: keras.layers.Layer) -> list[tuple[Any, Quantizer]]:
        return []

    def set_quantize_weights(self, layer: keras.layers.Layer, quantize_weights: list[Any]) -> None:
        pass

    def set_quantize_activations(self, layer: keras.layers.Layer, quantize_activations: list[Any]) -> None:
        pass

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list[Quantizer]:
        return []


@register
class NVMCrossbarConfig(_SpecConfig):
    """A crossbar layer: device-code kernel, digital int32-grid bias, shared-range output.

    Args:
        spec: resolved `NVMSpec`.
        kernel_attr: name of the layer attribute holding the kernel
            (``"kernel"``, or ``"depthwise_kernel"`` for DepthwiseConv2D).
    """

    def __init__(self, spec: NVMSpec | dict[str, Any], kernel_attr: str = "kernel") -> None:
        super().__init__(spec)
        self.kernel_attr = kernel_attr

    def _attrs(self, layer: keras.layers.Layer) -> list[str]:
        attrs = [self.kernel_attr]
        if getattr(layer, "use_bias", False):
            attrs.append("bias")
        return attrs

    def get_weights_and_quantizers(self, layer: keras.layers.Layer) -> list[tuple[Any, Quantizer]]:
        quantizers = {self.kernel_attr: NVMWeightQuantizer(self.spec), "bias": NVMBiasQuantizer(self.spec)}
        return [(getattr(layer, a), quantizers[a]) for a in self._attrs(layer)]

    def set_quantize_weights(self, layer: keras.layers.Layer, quantize_weights: list[Any]) -> None:
        for attr, value in zip(self._attrs(layer), quantize_weights):
            setattr(layer, attr, value)

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list[Quantizer]:
        # Linear/ReLU outputs are requantized from the exact integer accumulator, as the runtime does
        # (bit-exact in LiteRT); other activations keep the plain grid rounding.
        if activation_name(layer) in (None, "linear", "relu"):
            # LiteRT's reference FULLY_CONNECTED rounds differently (tf_nvm.core.modes.emulate_runtime).
            return [NVMCrossbarOutputQuantizer(self.spec, fully_connected=isinstance(layer, keras.layers.Dense))]
        return [NVMActivationQuantizer(self.spec)]

    def get_config(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "kernel_attr": self.kernel_attr}


@register
class NVMDigitalConfig(_SpecConfig):
    """A digital step: output on the shared activation range."""

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list[Quantizer]:
        return [NVMActivationQuantizer(self.spec)]


@register
class NVMOnGridConfig(NVMDigitalConfig):
    """A digital step that maps on-grid inputs to on-grid outputs (ReLU): `NVMOnGridQuantizer` output."""

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list[Quantizer]:
        return [NVMOnGridQuantizer(self.spec)]


@register
class NVMProbabilityConfig(_SpecConfig):
    """A softmax: output on [0, 255/256] (TFLite's int8 softmax range)."""

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list[Quantizer]:
        return [ProbabilityQuantizer(self.spec)]


@register
class NVMPassthroughConfig(_SpecConfig):
    """A layer that only moves values: no quantizer."""


@dataclasses.dataclass(frozen=True)
class LayerRule:
    """Everything tf_nvm knows about one Keras layer class: one entry of `LAYER_RULES`.

    A class in the table is supported end to end: `quantize_model` quantizes it,
    `tflite_export.export_tflite` converts it exactly, `tflite_export.export_crossbar`
    maps it onto the ops in ``ops`` (each of which has a numpy reference, a simulator
    kernel and a cost entry: tests generated from this table check it), and
    ``check`` refuses, at quantize time, every option the exporter cannot map.

    Attributes:
        layer_class: the tf_keras layer class (matched exactly, not subclasses).
        role: one of `ROLES`.
        kernel_attr: kernel attribute for crossbar layers.
        constraint_arg: constructor argument of the kernel constraint.
        ops: names of the mapping ops the exporter makes of this class
            (`tf_nvm.mapping.ops.DIGITAL_OPS` or `tf_nvm.mapping.CROSSBAR_OPS`).
        replace_with: the runtime-exact `tf_nvm.keras.digital` class `quantize_model` puts in
            its place (same config and weights, plus ``spec``), or None.
        check: ``layer -> None | str``: why this layer's options cannot be mapped
            (None: they can), or None for no restriction.
        adapter: exporter adapter for a class `tflite_export.crossbar` does not know
            (a user's own digital class): ``(layer, input shapes, output shape, fail) ->
            (op, params, arrays)`` with shapes of one example, ``fail(why)`` raising the
            export error; None for built-in classes.
    """

    layer_class: type
    role: str
    kernel_attr: str = "kernel"
    constraint_arg: str = "kernel_constraint"
    ops: tuple[str, ...] = ()
    replace_with: type | None = None
    check: Callable[[Any], str | None] | None = None
    adapter: Callable[..., tuple[str, dict[str, Any], dict[str, Any]]] | None = None


LAYER_RULES = Registry("layer rule", error=UnsupportedLayerError,
                       fix="register a rule with tf_nvm.keras.quantize_configs.register_layer")
"""Keras layer class name -> `LayerRule`: the one table of supported layer classes."""
REFUSED_LAYERS = Registry("refused layer", error=UnsupportedLayerError, fix="see the message")
"""Keras layer class name -> what supporting it would need (classes `quantize_model` refuses with that reason)."""
_CONFIG_BY_ROLE = {
    "crossbar": NVMCrossbarConfig,
    "digital": NVMDigitalConfig,
    "probability": NVMProbabilityConfig,
    "passthrough": NVMPassthroughConfig,
}


def register_layer(layer_class: type, role: str, kernel_attr: str = "kernel",
                   constraint_arg: str = "kernel_constraint", *, ops: tuple[str, ...] = (),
                   replace_with: type | None = None, check: Callable[[Any], str | None] | None = None,
                   adapter: Callable[..., tuple[str, dict[str, Any], dict[str, Any]]] | None = None) -> LayerRule:
    """Adds a Keras layer class to `LAYER_RULES` (the contract: docs/layers.md).

    Args:
        layer_class: a tf_keras layer class.
        role: one of `ROLES`.
        kernel_attr: kernel attribute name, for ``role="crossbar"``.
        constraint_arg: constructor argument of its kernel constraint.
        ops: the mapping op names it becomes (non-empty; each a `DIGITAL_OPS` or `CROSSBAR_OPS` name).
        replace_with: runtime-exact substitute class, see `LayerRule`.
        check: ``layer -> None | str`` option check, see `LayerRule`.
        adapter: exporter adapter for a digital class the exporter does not know, see `LayerRule`.

    Returns:
        the `LayerRule` registered.

    Raises:
        UnsupportedLayerError: unknown role, no or unknown ops, or the class is registered already.

    Example::

        class Swish2(keras.layers.Layer):      # a user's digital layer: y = relu(x) on the grid
            def call(self, x):
                return tf.nn.relu(x)

        register_layer(Swish2, "digital", ops=("relu",),
                       adapter=lambda layer, in_shapes, out_shape, fail: ("relu", {}, {}))
    """
    if role not in ROLES:
        raise UnsupportedLayerError(f"register_layer: role must be one of {list(ROLES)}, got {role!r}. "
                                    "Fix: pass one of them.")
    known = DIGITAL_OPS.names() + list(CROSSBAR_OPS)
    unknown = [op for op in ops if op not in known]
    if not ops or unknown or isinstance(ops, str):
        raise UnsupportedLayerError(
            f"register_layer({layer_class.__name__}): ops must name the mapping ops the layer becomes, got "
            f"{ops!r}; allowed: {known}. Fix: pass e.g. ops=('relu',), or add a DigitalOp to "
            "tf_nvm.mapping.ops.DIGITAL_OPS (with a simulator kernel and a cost entry) first.")
    rule = LayerRule(layer_class, role, kernel_attr, constraint_arg, tuple(ops), replace_with, check, adapter)
    LAYER_RULES.register(layer_class.__name__, rule, description=role)
    if not layer_class.__module__.startswith(("tf_keras", "tf_nvm.")):
        add_custom_object(layer_class)  # a user's class: quantize_model clones it, load_model reads it back
    return rule


# ------------------------------------------------ option checks (what the exporter maps)
def _channels_last(layer: Any) -> str | None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return f"data_format={layer.data_format!r} (only 'channels_last' is mapped)"
    return None


def _conv_options(layer: Any) -> str | None:
    if activation_name(layer) not in (None, "softmax") + ACTIVATIONS:  # softmax: quantize_model splits it off
        return (f"activation={activation_name(layer)!r} on a crossbar layer (only {list(ACTIVATIONS)} are mapped, "
                "and softmax as a separate layer; put other activations in a separate layer)")
    if getattr(layer, "groups", 1) != 1:
        return f"groups={layer.groups} (grouped convolutions are not mapped)"
    if getattr(layer, "padding", "valid") not in ("valid", "same"):
        return f"padding={layer.padding!r} (only 'valid' and 'same' are mapped; pad with ZeroPadding1D)"
    return _channels_last(layer)


def _relu_options(layer: Any) -> str | None:
    if layer.max_value is not None or float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
        return "max_value, negative_slope or threshold (only a plain ReLU is mapped)"
    return None


def _activation_options(layer: Any) -> str | None:
    if activation_name(layer) not in ("relu", "linear", "softmax"):
        return f"activation {activation_name(layer)!r} (relu, linear and softmax are mapped)"
    return None


def _axis_options(layer: Any) -> str | None:
    axes = np.atleast_1d(layer.axis)
    if axes.size != 1 or int(axes[0]) == 0:
        return f"axis={layer.axis!r} (one axis, not the batch axis, is mapped)"
    return None


def _rescaling_options(layer: Any) -> str | None:
    if np.size(layer.scale) != 1 or np.size(layer.offset) != 1:
        return "a non-scalar scale or offset (scalars are mapped)"
    scale, offset = float(np.ravel(layer.scale)[0]), float(np.ravel(layer.offset)[0])
    # Measured against LiteRT and TFLite Micro: a fractional scale rounds differently there (0.5: ties; -0.75:
    # TFLite Micro's fixed point), and a scale with an offset goes through an intermediate tensor of its own.
    if scale != round(scale) or scale == 0 or (offset != 0 and scale != 1):
        return (f"scale={scale:g}, offset={offset:g} (exact in TFLite only with a non-zero integer scale and no "
                "offset, or scale 1 with any offset; put other factors into the next crossbar's weights)")
    return None


def _global_pool_options(layer: Any) -> str | None:
    if getattr(layer, "keepdims", False):
        return "keepdims=True (only keepdims=False is mapped)"
    return _channels_last(layer)


_L = keras.layers
for _cls, _op in ((_L.Dense, "dense"), (_L.Conv1D, "conv1d"), (_L.Conv2D, "conv2d")):
    register_layer(_cls, "crossbar", ops=(_op,), check=_conv_options)
register_layer(_L.DepthwiseConv2D, "crossbar", kernel_attr="depthwise_kernel", constraint_arg="depthwise_constraint",
               ops=("depthwise_conv2d",), check=_conv_options)
register_layer(_L.BatchNormalization, "digital", ops=("batch_norm",), replace_with=NVMBatchNormalization)
register_layer(_L.Activation, "digital", ops=("relu", "identity", "softmax"), check=_activation_options)
register_layer(_L.ReLU, "digital", ops=("relu",), check=_relu_options)
register_layer(_L.AveragePooling1D, "digital", ops=("average_pool",), replace_with=NVMAveragePooling1D,
               check=_channels_last)
register_layer(_L.AveragePooling2D, "digital", ops=("average_pool",), replace_with=NVMAveragePooling2D,
               check=_channels_last)
register_layer(_L.GlobalAveragePooling1D, "digital", ops=("global_average_pool",),
               replace_with=NVMGlobalAveragePooling1D, check=_global_pool_options)
register_layer(_L.GlobalAveragePooling2D, "digital", ops=("global_average_pool",),
               replace_with=NVMGlobalAveragePooling2D, check=_global_pool_options)
register_layer(_L.Add, "digital", ops=("add",))
register_layer(_L.Subtract, "digital", ops=("subtract",))
register_layer(_L.Rescaling, "digital", ops=("rescale",), check=_rescaling_options)
# What quantize_model puts in place of the Keras layers above (tf_nvm.keras.digital); exported like them.
register_layer(NVMBatchNormalization, "digital", ops=("batch_norm",))
for _cls in (NVMAveragePooling1D, NVMAveragePooling2D):
    register_layer(_cls, "digital", ops=("average_pool",), check=_channels_last)
for _cls in (NVMGlobalAveragePooling1D, NVMGlobalAveragePooling2D):
    register_layer(_cls, "digital", ops=("global_average_pool",), check=_global_pool_options)
register_layer(_L.Softmax, "probability", ops=("softmax",), check=_axis_options)
for _cls, _op, _check in (
        (_L.MaxPooling1D, "max_pool", _channels_last), (_L.MaxPooling2D, "max_pool", _channels_last),
        (_L.GlobalMaxPooling1D, "global_max_pool", _global_pool_options),
        (_L.GlobalMaxPooling2D, "global_max_pool", _global_pool_options),
        (_L.Flatten, "flatten", _channels_last), (_L.Reshape, "reshape", None), (_L.Dropout, "identity", None),
        (_L.SpatialDropout1D, "identity", None), (_L.SpatialDropout2D, "identity", None),
        (_L.ZeroPadding1D, "zero_pad", None), (_L.ZeroPadding2D, "zero_pad", _channels_last),
        (_L.Concatenate, "concatenate", _axis_options), (_L.Permute, "transpose", None),
        (_L.Cropping1D, "crop", None), (_L.Cropping2D, "crop", _channels_last)):
    register_layer(_cls, "passthrough", ops=(_op,), check=_check)

for _cls, _needs in (
        (_L.LeakyReLU, "an exact LeakyReLU: TFLite's int8 LEAKY_RELU rounds alpha * x with its own fixed-point "
                       "multiplier, which the Keras model does not reproduce yet. Fix: use ReLU (or a "
                       "Concatenate of ReLU(x) and ReLU(-x) feeding the next crossbar)"),
        (_L.Average, "an exact Average: TFLite converts it to ADD then MUL, with an intermediate tensor on its "
                     "own calibrated scale (not the shared grid). Fix: use Add (a sum on the shared range) and let "
                     "the next crossbar's weights absorb the factor 1/n")):
    REFUSED_LAYERS.register(_cls.__name__, _needs)


def supported_layer_names() -> list[str]:
    """Sorted names of the supported Keras layer classes."""
    return LAYER_RULES.names()


def rule_for(layer: keras.layers.Layer) -> LayerRule:
    """Returns the `LayerRule` of ``layer``.

    A crossbar layer with ``activation="softmax"`` is a crossbar: `tf_nvm.quantize_model` makes it a
    linear crossbar followed by a separate Softmax layer.

    Raises:
        UnsupportedLayerError: the class is not supported.
    """
    name = type(layer).__name__
    rule = LAYER_RULES.get(name) if name in LAYER_RULES else None
    if rule is None and name in REFUSED_LAYERS and type(layer).__module__.startswith("tf_keras"):
        raise UnsupportedLayerError(
            f"layer {layer.name!r} of class {name} is not supported by tf_nvm.quantize_model: it would need "
            f"{REFUSED_LAYERS.get(name)}.")
    if rule is None or type(layer) is not rule.layer_class:
        raise UnsupportedLayerError(
            f"layer {layer.name!r} of class {type(layer).__name__} is not supported by tf_nvm.quantize_model. "
            f"Supported layer classes: {', '.join(supported_layer_names())}. Fix: replace it with a "
            "supported layer, or register a rule with tf_nvm.keras.quantize_configs.register_layer.")
    why = rule.check(layer) if rule.check is not None else None
    if why is not None:
        raise UnsupportedLayerError(
            f"layer {layer.name!r} of class {name} has {why}: its crossbar mapping and TFLite export would "
            f"not be exact. Fix: change that option, or replace the layer by a supported one.")
    if rule.layer_class is keras.layers.Activation and activation_name(layer) == "softmax":
        return dataclasses.replace(rule, role="probability", ops=("softmax",))
    return rule


def is_crossbar(layer: keras.layers.Layer) -> bool:
    """True when ``layer`` is a supported crossbar layer (`rule_for` gives it the ``crossbar`` role)."""
    try:
        return rule_for(layer).role == "crossbar"
    except UnsupportedLayerError:
        return False


def config_for(layer: keras.layers.Layer, spec: NVMSpec, grid_input: bool = False) -> QuantizeConfig:
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


def _maps_grid_to_grid(layer: keras.layers.Layer) -> bool:
    """A plain ReLU (no slope, threshold or cap) or ``Activation("relu")``: grid values in, grid values out."""
    if type(layer) is keras.layers.ReLU:
        return not layer.negative_slope and not layer.threshold and layer.max_value is None
    return type(layer) is keras.layers.Activation and activation_name(layer) == "relu"


_SCALING_PASSTHROUGH = (keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D)
"""Passthrough layers that move values off the grid while training (dropout scales by 1 / (1 - rate))."""


def grid_input_layers(nodes: list[LayerNode]) -> set[str]:
    """Names of the layers every input of which surely lies on the shared activation grid, in training too.

    On the grid: the model inputs (the scheme quantizes them), every output of a crossbar or digital
    layer (each has a grid quantizer; `NVMOnGridConfig` layers by induction), and the outputs of
    passthrough layers all of whose inputs are on it, except dropout. Off it: softmax outputs.

    Args:
        nodes: `tf_nvm.keras.graph.layer_graph` output with ``include_inputs=True`` (of a supported float model).

    Returns:
        set of layer names.
    """
    on_grid: dict[str, bool] = {}
    found: set[str] = set()
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
