"""`Mapping`: a whole network on crossbars, validated on construction (`tf_nvm.mapping.validate`), so an
in-memory mapping is as trustworthy as one read with `tf_nvm.mapping.load`.

Numpy only (mapping-format layer).
"""

import dataclasses

from tf_nvm.core.errors import MappingError
from tf_nvm.core.spec import NVMSpec
from tf_nvm.mapping.types import CrossbarLayer, DigitalLayer, InputEncoding
from tf_nvm.mapping.validate import validate_mapping

__all__ = ["Mapping"]


@dataclasses.dataclass(frozen=True)
class Mapping:
    """A whole network on crossbars.

    Attributes:
        spec: the resolved `NVMSpec` (shared weight scale set).
        input: the `InputEncoding`.
        layers: `CrossbarLayer` / `DigitalLayer` objects in execution order.
        outputs: output tensor names of the network.
        metadata: free JSON-ready information (model name, exporter version).

    Raises:
        MappingError: on construction, any inconsistency (see
            `tf_nvm.mapping.validate.validate_mapping`).
    """

    spec: NVMSpec
    input: InputEncoding
    layers: tuple
    outputs: tuple
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_mapping(self)

    @property
    def crossbar_layers(self) -> list[CrossbarLayer]:
        """The `CrossbarLayer` objects, in execution order."""
        return [layer for layer in self.layers if isinstance(layer, CrossbarLayer)]

    def layer(self, name: str) -> CrossbarLayer | DigitalLayer:
        """The layer called ``name``.

        Raises:
            MappingError: no such layer (the message lists the layers).
        """
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise MappingError(f"mapping has no layer {name!r}; layers: {[layer.name for layer in self.layers]}. "
                           "Fix: pass one of those names.")

    def summary(self) -> dict[str, int | float]:
        """Totals: crossbar layers, tiles, devices, ADC columns, weights (ints), device utilisation (float).

        ``weights`` counts the weights of the Keras kernels (`CrossbarLayer.weights`);
        ``device_utilisation`` is ``weights / devices`` (the share of programmed devices
        that hold a weight).
        """
        tiles = [tile for layer in self.crossbar_layers for tile in layer.tiles]
        devices = int(sum(tile.devices for tile in tiles))
        weights = int(sum(layer.weights for layer in self.crossbar_layers))
        return {"crossbar_layers": len(self.crossbar_layers), "tiles": len(tiles),
                "devices": devices, "weights": weights,
                "device_utilisation": weights / devices if devices else 0.0,
                "adc_columns": int(sum(tile.device_cols for tile in tiles)),
                "digital_steps": len(self.layers) - len(self.crossbar_layers)}
