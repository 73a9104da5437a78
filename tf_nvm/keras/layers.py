"""NVM layers a user can build with directly.

`NVMDense`, `NVMConv1D`, `NVMConv2D` and `NVMDepthwiseConv2D` take the same
arguments as their Keras counterparts plus ``spec`` (a resolved `NVMSpec`: its
``weight_scale`` must be set, since the scale is one value for the whole
model). Each is a tfmot ``QuantizeWrapperV2`` around the Keras layer with an
`NVMCrossbarConfig`, i.e. exactly what `quantize_model` produces, so
`weight_codes`, saving and export treat both alike. `NVMQuantize` puts a tensor
(e.g. the model input) on the shared activation range.

Example:
    >>> spec = tf_nvm.core.presets.get("paper-2bit-unipolar").replace(
    ...     weight_scale_mode="fixed", weight_scale=0.05)
    >>> model = keras.Sequential([keras.Input((16,)), NVMQuantize(spec),
    ...                           NVMDense(4, spec=spec)])
"""

import inspect
from typing import Any

from tf_nvm.keras.backend import QuantizeLayer, QuantizeWrapperV2, keras, unique_object_name
from tf_nvm.keras.constraints import NVMKernelConstraint
from tf_nvm.keras.quantize_configs import LAYER_RULES, NVMCrossbarConfig
from tf_nvm.keras.quantizers import NVMActivationQuantizer
from tf_nvm.keras.serialization import register
from tf_nvm.core.spec import NVMSpec, resolve_spec

__all__ = ["NVMDense", "NVMConv1D", "NVMConv2D", "NVMDepthwiseConv2D", "NVMQuantize"]

_WRAPPER_KEYS = ("name", "trainable", "dtype")


class _NVMCrossbarLayer(QuantizeWrapperV2):
    """Base of the NVM weight layers: wraps ``keras_class`` with an `NVMCrossbarConfig`."""

    keras_class: Any = None
    """The wrapped Keras layer class (set by `_make` on each NVM layer class)."""

    def __init__(self, *args: Any, spec: NVMSpec | str | dict[str, Any] | None = None, **kwargs: Any) -> None:
        resolved: NVMSpec = resolve_spec(spec, owner=type(self).__name__, need_scale=True)
        wrapper_kwargs = {k: kwargs.pop(k) for k in _WRAPPER_KEYS if k in kwargs}
        rule = LAYER_RULES.get(self.keras_class.__name__)
        kwargs.setdefault(rule.constraint_arg, NVMKernelConstraint(resolved))
        name = wrapper_kwargs.get("name") or unique_object_name(
            "nvm_" + self.keras_class.__name__.lower(), zero_based=True)
        wrapper_kwargs["name"] = name
        layer = self.keras_class(*args, name=f"{name}_float", **kwargs)
        super().__init__(layer, NVMCrossbarConfig(resolved, rule.kernel_attr), **wrapper_kwargs)
        self.spec = resolved

    def get_config(self) -> dict[str, Any]:
        config = self.layer.get_config()
        config.update(name=self.name, trainable=self.trainable, dtype=self.dtype, spec=self.spec.to_dict())
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "_NVMCrossbarLayer":
        return cls(**config)


def _signature(keras_class: type[keras.layers.Layer]) -> inspect.Signature:
    params = [p for p in inspect.signature(keras_class.__init__).parameters.values()
              if p.kind is not inspect.Parameter.VAR_KEYWORD]
    spec = inspect.Parameter("spec", inspect.Parameter.KEYWORD_ONLY, default=None)
    kwargs = inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)
    return inspect.Signature(params + [spec, kwargs])


def _make(keras_class: type[keras.layers.Layer]) -> type[_NVMCrossbarLayer]:
    cls = type(f"NVM{keras_class.__name__}", (_NVMCrossbarLayer,), {
        "keras_class": keras_class,
        "__doc__": (f"`keras.layers.{keras_class.__name__}` on an NVM crossbar: same arguments plus ``spec``.\n\n"
                    "The kernel is snapped to device codes times the spec's shared weight scale (STE), the bias is\n"
                    "digital, and the output is fake-quantized on the shared activation range."),
        "__module__": __name__,
    })
    setattr(cls, "__signature__", _signature(keras_class))  # inspect.signature(NVMDense) lists Dense's arguments
    return register(cls)


NVMDense = _make(keras.layers.Dense)
NVMConv1D = _make(keras.layers.Conv1D)
NVMConv2D = _make(keras.layers.Conv2D)
NVMDepthwiseConv2D = _make(keras.layers.DepthwiseConv2D)


@register
class NVMQuantize(QuantizeLayer):
    """Fake-quantizes its input on the spec's shared activation range (a DAC).

    Args:
        spec: `NVMSpec` (or its dict).
        **kwargs: Keras layer arguments (name, ...).
    """

    def __init__(self, spec: NVMSpec | str | dict[str, Any], **kwargs: Any) -> None:
        kwargs.pop("quantizer", None)
        self.spec = resolve_spec(spec, owner=type(self).__name__)
        super().__init__(NVMActivationQuantizer(self.spec), **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("quantizer", None)
        config["spec"] = self.spec.to_dict()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "NVMQuantize":
        return cls(**config)
