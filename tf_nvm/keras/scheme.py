"""tf_nvm's own tfmot `QuantizeScheme`.

tfmot's default 8-bit scheme would fight the one-range design: its layout
transforms replace custom configs (a Dense followed by a ReLU layer gets a no-op
config) and give layers feeding annotated ones their own learned 8-bit ranges.
This scheme annotates nothing itself (`quantize_model` annotates every layer
explicitly) and its layout transform only adds one input quantizer on the
shared activation range after each model input.
"""

from typing import Any

from tf_nvm.core.spec import NVMSpec
from tf_nvm.keras.backend import (QuantizeConfig, QuantizeLayer, keras, model_transformer, serialize_layer, tfmot,
                                  transforms)
from tf_nvm.core.errors import UnsupportedLayerError
from tf_nvm.keras.quantize_configs import config_for
from tf_nvm.keras.quantizers import NVMActivationQuantizer
from tf_nvm.keras.serialization import custom_objects

__all__ = ["NVMQuantizeScheme"]


class _InputQuantize(transforms.Transform):
    """InputLayer => InputLayer -> QuantizeLayer(shared activation range)."""

    def __init__(self, spec):
        self.spec = spec

    def pattern(self):
        return transforms.LayerPattern("InputLayer")

    def replacement(self, match_layer):
        layer = QuantizeLayer(NVMActivationQuantizer(self.spec))
        config = serialize_layer(layer)
        config["name"] = layer.name
        return transforms.LayerNode(config, input_layers=[match_layer])

    def custom_objects(self):
        return {"QuantizeLayer": QuantizeLayer, **custom_objects()}


class _NVMLayoutTransform(tfmot.quantization.keras.QuantizeLayoutTransform):
    def __init__(self, spec):
        self.spec = spec

    def apply(self, model, layer_quantize_map):
        return model_transformer.ModelTransformer(
            model, [_InputQuantize(self.spec)], set(layer_quantize_map), layer_quantize_map).transform()


class _NVMRegistry(tfmot.quantization.keras.QuantizeRegistry):
    def __init__(self, spec):
        self.spec = spec

    def supports(self, layer: keras.layers.Layer) -> bool:
        try:
            config_for(layer, self.spec)
        except UnsupportedLayerError:
            return False
        return True

    def get_quantize_config(self, layer: keras.layers.Layer) -> QuantizeConfig:
        return config_for(layer, self.spec)


class NVMQuantizeScheme(tfmot.quantization.keras.QuantizeScheme):
    """The scheme `quantize_model` passes to ``tfmot...quantize_apply``.

    Args:
        spec: resolved `NVMSpec`.
    """

    def __init__(self, spec: NVMSpec) -> None:
        self.spec = spec

    def get_layout_transformer(self) -> Any:
        """The layout transform adding the shared-range input quantizer after each model input."""
        return _NVMLayoutTransform(self.spec)

    def get_quantize_registry(self) -> Any:
        """The registry giving each supported layer its `tf_nvm.keras.quantize_configs.config_for` config."""
        return _NVMRegistry(self.spec)
