"""The Keras graph of a model: layers in execution order with their inputs, activations, signs.

One place reads a tf_keras model's structure: which layers feed which
(`layer_graph`, from the functional config's ``inbound_nodes``), the name of a
layer's activation (`activation_name`) and the sign analysis that finds
unipolar crossbars that cannot inhibit (`non_inhibiting_layers`).
"""

import dataclasses
from typing import Any, Callable

import numpy as np

from tf_nvm.keras.backend import keras

__all__ = ["LayerNode", "layer_graph", "activation_name", "NONNEGATIVE_ACTIVATIONS", "nonnegative_outputs",
           "non_inhibiting_layers"]

NONNEGATIVE_ACTIVATIONS = frozenset({"relu", "relu6", "sigmoid", "softmax", "exponential", "hard_sigmoid",
                                     "softplus"})
"""Activations whose output is never negative."""


@dataclasses.dataclass(frozen=True)
class LayerNode:
    """One layer of a model and what feeds it.

    Attributes:
        layer: the Keras layer.
        inputs: names of the layers feeding it (in call order; empty for an InputLayer).
        calls: how many times the layer is called in the model (> 1: a shared layer).
    """

    layer: Any
    inputs: tuple[str, ...]
    calls: int = 1

    @property
    def name(self) -> str:
        """The layer's name."""
        return self.layer.name


def layer_graph(model: keras.Model, include_inputs: bool = False) -> list[LayerNode]:
    """The model's layers in execution (topological) order with their inbound layer names.

    Args:
        model: a tf_keras Sequential or Functional model.
        include_inputs: also list the InputLayer(s) (with no inputs).

    Returns:
        list of `LayerNode`.
    """
    if isinstance(model, keras.Sequential):
        out, previous = [], None
        for layer in model.layers:
            out.append(LayerNode(layer, (previous,) if previous else ()))
            previous = layer.name
        return out
    by_name = {layer.name: layer for layer in model.layers}
    out = []
    for entry in model.get_config()["layers"]:
        layer = by_name[entry["name"]]
        if isinstance(layer, keras.layers.InputLayer) and not include_inputs:
            continue
        nodes = entry.get("inbound_nodes", [])
        names = []
        for node in nodes:
            for inbound in (node if isinstance(node, list) else node.get("args", [])):
                if isinstance(inbound, (list, tuple)) and inbound and isinstance(inbound[0], str):
                    names.append(inbound[0])
        out.append(LayerNode(layer, tuple(names), max(1, len(nodes))))
    return out


def activation_name(layer: Any) -> str | None:
    """The name of ``layer``'s ``activation`` (``"linear"`` for activation=None), or None if it has none.

    Args:
        layer: a Keras layer.

    Returns:
        str or None.
    """
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    return getattr(act, "__name__", str(act))


def _output_nonnegative(layer: Any, inputs_nonneg: bool, is_crossbar: Callable[[Any], bool]) -> bool:
    """Sign propagation: is ``layer``'s output surely >= 0 (True) or possibly signed (False)?"""
    L = keras.layers
    if is_crossbar(layer) or isinstance(layer, L.Activation):
        return activation_name(layer) in NONNEGATIVE_ACTIVATIONS
    if isinstance(layer, L.ReLU):
        return not layer.negative_slope
    if isinstance(layer, L.Softmax):
        return True
    if isinstance(layer, L.Rescaling):
        return inputs_nonneg and bool(np.all(np.asarray(layer.scale) >= 0) and np.all(np.asarray(layer.offset) >= 0))
    if isinstance(layer, (L.BatchNormalization, L.Subtract, L.LeakyReLU)):
        return False
    return inputs_nonneg  # pooling, reshaping, concatenation, addition, averaging


def nonnegative_outputs(nodes: list[LayerNode], is_crossbar: Callable[[Any], bool],
                        unwrap: Callable[[Any], Any] | None = None) -> dict[str, bool]:
    """Sign analysis: which layers' outputs are surely >= 0.

    Args:
        nodes: `layer_graph` output.
        is_crossbar: callable, layer -> True for crossbar layers (called with the unwrapped layer).
        unwrap: optional callable, layer -> the layer whose class and arguments decide its sign (e.g. the
            Keras layer inside a tfmot ``QuantizeWrapper``); None: the layer itself.

    Returns:
        dict layer name -> True when its output is surely >= 0 (a model input counts as signed).
    """
    nonneg: dict[str, bool] = {}
    for node in nodes:
        inputs_nonneg = bool(node.inputs) and all(nonneg.get(name, False) for name in node.inputs)
        layer = unwrap(node.layer) if unwrap else node.layer
        nonneg[node.name] = _output_nonnegative(layer, inputs_nonneg, is_crossbar)
    return nonneg


def non_inhibiting_layers(nodes: list[LayerNode], is_crossbar: Callable[[Any], bool]) -> list[Any]:
    """The crossbar layers whose inputs are all surely non-negative.

    With non-negative (unipolar) weights such a layer's output can only grow
    with each input: it cannot inhibit (Wang et al., arXiv:2208.03211).

    Args:
        nodes: `layer_graph` output.
        is_crossbar: callable, layer -> True for crossbar layers.

    Returns:
        list of layers, in model order.
    """
    nonneg = nonnegative_outputs(nodes, is_crossbar)
    return [node.layer for node in nodes
            if is_crossbar(node.layer) and node.inputs and all(nonneg.get(name, False) for name in node.inputs)]
