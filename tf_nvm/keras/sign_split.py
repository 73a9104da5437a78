"""Crossbars fed both signs of a non-negative tensor, ``[t, -t]``, trained with half the multiply-adds.

A unipolar crossbar subtracts by reading both signs of its input: ``Concatenate()([t,
Rescaling(-1.0)(t)])`` (the architectures' ``signs="split"``). With kernel rows ``[W+; W-]``
(all >= 0 on a unipolar device) its output is::

    conv([t, -t], [W+; W-]) = conv(t, W+) + conv(-t, W-) = conv(t, W+ - W-)

The right-hand side gives the same output, and the same gradients for ``t``, ``W+`` and ``W-``
(``W-`` receives minus the gradient of ``W+``), with half the multiply-adds in the forward pass and in
both backward convolutions, and without building ``-t`` and the ``2C``-channel tensor: the
Concatenate passes ``t`` on (the Rescaling's output is left unused). `fuse_sign_split` makes a model
compute it that way; it changes speed, not the network:

* Only where the identity is exact: the crossbar's one input is a Concatenate along the channels of
  ``t`` and ``Rescaling(scale=-1, offset=0)(t)`` with ``t`` surely >= 0 (the sign analysis of
  `tf_nvm.keras.graph`: a ReLU output, its max pooling, ...). In an NVM model ``t`` then lies on the shared
  grid inside ``[0, A*127/128]``, so ``-t`` is on the grid without clipping at ``-A``; the crossbar output
  quantizer recovers the exact integer accumulator from the float sum, so the layer outputs the same
  numbers (`tests/test_sign_split.py` pins it, LiteRT and TFLite Micro emulation). In a float model the
  two forms differ by float rounding only. A ``[t, -t]`` of a signed ``t`` (e.g. a BatchNorm output,
  which may sit at ``-A`` where ``-t`` clips) is left as it is.
* Conv1D and Conv2D layers (channels last, one group), float or wrapped by `tf_nvm.quantize_model`,
  each called once and the only consumer of its Concatenate. Dense layers are left as they are (the
  heads here are small).
* The weights, the config and every saved file are unchanged: the kernel keeps its ``2C`` input rows
  (one device per row on the crossbar). Inside `tf_nvm.core.modes.converter_graph()` the layer computes the
  plain form, so the crossbar mapping sees ``[t, -t]`` and ``2C`` rows; within `tf_nvm.core.modes.fold_sign_split()`
  as well, the converter sees ``conv(t, W+ - W-)``: the microcontroller model ``export_tflite`` writes by
  default, one kernel of code differences on the same scale (exact: ``-t`` is never clipped).

`tf_nvm.experiments.train.train_model` fuses every model it trains. Measured on 2 cores by
``benchmarks/sign_split.py``.

`feed_both_signs` builds that form from a model that lacks it (``quantize_model(..., sign_split="auto")``):
every listed crossbar gets ``[x, -x]``, with the float kernel split into ``[max(W, 0); max(-W, 0)]`` so that
the float model computes the same function. A DepthwiseConv2D cannot read a ``[x, -x]`` concatenation
(its two halves would land in different output channels, and Keras has no layer that sums the halves of an
axis), so it becomes two DepthwiseConv2D, ``name`` on ``x`` (with the bias) and ``{name}_neg`` on
``Rescaling(-1)(x)`` (no bias), and a digital ``Add`` (``{name}_sum``): per channel the same crossbar
column sum ``dw(x, W+) + dw(-x, W-)``, each half requantized on the shared range before the exact digital
sum (one rounding more than a single column).
"""

import collections
import dataclasses
from typing import Any, Callable, Iterable

import numpy as np

from tf_nvm.keras.backend import QuantizeWrapper, keras, tf
from tf_nvm.core.errors import SpecError, UnsupportedLayerError
from tf_nvm.keras.graph import LayerNode, activation_name, layer_graph, non_inhibiting_layers, nonnegative_outputs
from tf_nvm.core.modes import converter_weight_limit, folding_sign_split, in_converter_graph
from tf_nvm.keras.quantize_configs import is_crossbar

__all__ = ["SignSplit", "sign_split_layers", "fuse_sign_split", "fold_dense_sign_split", "can_feed_both_signs",
           "feed_both_signs", "both_signs_depthwise", "blind_crossbars", "SPLIT_KERNELS"]

SPLIT_KERNELS = ("split", "initializer")
"""How `feed_both_signs` sets the kernels of the crossbars it splits."""

_FUSED = "_tf_nvm_sign_split_channels"
"""Attribute set on a fused convolution: the channels ``C`` of ``t`` (its kernel has ``2C`` input rows)."""
_SPEC = "_tf_nvm_sign_split_spec"
"""Attribute set on a fused layer: the `NVMSpec` of its codes (None in a float model)."""


@dataclasses.dataclass(frozen=True)
class SignSplit:
    """A convolution reading ``[t, -t]``.

    Attributes:
        concatenate: name of the Concatenate layer that builds ``[t, -t]`` (its only consumer is the convolution).
        channels: channels ``C`` of ``t`` (the kernel has ``2C`` input rows).
    """

    concatenate: str
    channels: int


def _inner(layer):
    """The Keras layer inside a tfmot QuantizeWrapper, else the layer itself."""
    return layer.layer if isinstance(layer, QuantizeWrapper) else layer


def _is_conv(layer):
    L = keras.layers
    return (type(layer) in (L.Conv1D, L.Conv2D) and layer.groups == 1 and layer.data_format == "channels_last")


def _is_negation(layer):
    return (isinstance(layer, keras.layers.Rescaling) and float(layer.scale) == -1.0
            and float(layer.offset) == 0.0)


def _is_channel_concat(layer, rank):
    return isinstance(layer, keras.layers.Concatenate) and layer.axis in (-1, rank - 1)


def sign_split_layers(model: keras.Model, dense: bool = False) -> dict[str, SignSplit]:
    """The convolutions of ``model`` that read ``[t, -t]`` of a non-negative ``t`` (see the module doc).

    Args:
        model: a tf_keras Sequential or Functional model, float or NVM.
        dense: also such Dense layers (`fold_dense_sign_split`; training leaves them as they are).

    Returns:
        dict layer name -> `SignSplit`, in model order.
    """
    nodes = layer_graph(model)
    by_name = {node.name: node for node in nodes}
    consumers = collections.Counter(name for node in nodes for name in node.inputs)
    nonneg = nonnegative_outputs(nodes, is_crossbar, unwrap=_inner)
    found = {}
    for node in nodes:
        conv = _inner(node.layer)
        is_dense = dense and type(conv) is keras.layers.Dense
        if not (_is_conv(conv) or is_dense) or node.calls != 1 or len(node.inputs) != 1:
            continue
        concat = by_name.get(node.inputs[0])
        rank = 2 if is_dense else conv.rank + 2
        if (concat is None or concat.calls != 1 or consumers[concat.name] != 1 or len(concat.inputs) != 2
                or not _is_channel_concat(_inner(concat.layer), rank)
                or (is_dense and len(concat.layer.output_shape) != 2)):
            continue
        source, negated = concat.inputs
        negation = by_name.get(negated)
        if (negation is None or negation.calls != 1 or negation.inputs != (source,)
                or not _is_negation(_inner(negation.layer)) or not nonneg.get(source, False)):
            continue
        found[node.name] = SignSplit(concat.name, int(conv.kernel.shape[-2]) // 2)  # [t, -t]: 2C rows
    return found


def both_signs_depthwise(nodes: list[LayerNode], unwrap: Callable[[Any], Any] | None = None) -> set[str]:
    """The DepthwiseConv2D layers that read ``x`` and are summed with a twin reading ``-x`` (`feed_both_signs`).

    Such a layer reads only non-negative inputs by itself, but the ``Add`` of ``dw(x, W+)`` and
    ``dw(-x, W-)`` can inhibit: the pair is one depthwise crossbar fed both signs.

    Args:
        nodes: `tf_nvm.keras.graph.layer_graph` output.
        unwrap: optional callable, layer -> the layer whose class decides (e.g. `_inner` for NVM models).

    Returns:
        set of the names of the layers ``dw`` (reading ``x``) and their twins (reading ``-x``).
    """
    unwrap = unwrap or (lambda layer: layer)
    by_name = {node.name: node for node in nodes}
    depthwise = keras.layers.DepthwiseConv2D

    def kind(name, cls):
        node = by_name.get(name)
        return node if node is not None and type(unwrap(node.layer)) is cls and len(node.inputs) == 1 else None

    found = set()
    for node in nodes:
        if type(unwrap(node.layer)) is not keras.layers.Add or len(node.inputs) != 2:
            continue
        positive, negative = kind(node.inputs[0], depthwise), kind(node.inputs[1], depthwise)
        negation = kind(negative.inputs[0], keras.layers.Rescaling) if negative else None
        if (positive and negation and _is_negation(unwrap(negation.layer))
                and negation.inputs[0] == positive.inputs[0]):
            found |= {positive.name, negative.name}
    return found


def blind_crossbars(model: keras.Model) -> list[keras.layers.Layer]:
    """The crossbars of ``model`` whose inputs are all non-negative and that no twin gives both signs.

    `tf_nvm.keras.graph.non_inhibiting_layers` without the depthwise pairs of `both_signs_depthwise`: under a
    unipolar spec, these crossbars cannot inhibit.

    Args:
        model: a float tf_keras Sequential or Functional model.

    Returns:
        list of layers, in model order.
    """
    nodes = layer_graph(model)
    paired = both_signs_depthwise(nodes)
    return [layer for layer in non_inhibiting_layers(nodes, is_crossbar) if layer.name not in paired]


def _first_input(plain_call):
    """A Concatenate's ``call`` returning ``t`` of ``[t, -t]`` (the plain concatenation in the converter graph)."""

    def call(inputs):
        return plain_call(inputs) if in_converter_graph() and not folding_sign_split() else inputs[0]

    return call


def _fused_convolution(conv, channels):
    """``conv.convolution_op`` computing ``conv(t, W+ - W-)`` from ``t`` (its Concatenate passes ``t`` on) and
    ``[W+; W-]``; the plain ``conv([t, -t], [W+; W-])`` in the converter graph."""
    plain = type(conv).convolution_op.__get__(conv)

    def convolution_op(inputs, kernel):
        if folding_sign_split():  # the MCU model: one kernel of codes W+ - W-, on the same scale (exact)
            return plain(inputs, _folded_kernel(conv, kernel, channels))
        if in_converter_graph():
            return plain(inputs, kernel)
        return plain(inputs, kernel[..., :channels, :] - kernel[..., channels:, :])

    return convolution_op


def _folded_kernel(conv, kernel, channels):
    """``W+ - W-`` of a converter-graph kernel ``[W+; W-]`` (codes times the shared scale ``s``), in a fake-quant
    over ``[-L s, L s]`` so that the converter stores the code differences on scale ``s``, zero point 0."""
    folded = kernel[..., :channels, :] - kernel[..., channels:, :]
    spec = getattr(conv, _SPEC, None)
    if spec is None:  # a float model: no codes to keep
        return folded
    limit, s = converter_weight_limit(), spec.weight_scale
    return tf.quantization.fake_quant_with_min_max_vars(folded, min=tf.constant(-limit * s),
                                                        max=tf.constant(limit * s),
                                                        num_bits=8 if limit == 127 else 4, narrow_range=True)


def fuse_sign_split(model: keras.Model) -> dict[str, SignSplit]:
    """Makes the ``[t, -t]`` convolutions of ``model`` compute ``conv(t, W+ - W-)`` from ``t`` (module doc).

    Each such convolution's Concatenate passes ``t`` on (the ``-t`` half is never built) and the
    convolution uses the difference of its kernel's two halves. Idempotent; changes no weight and no
    config. Call it before the model's first ``fit``, ``predict`` or ``evaluate`` (Keras keeps the
    functions it traced).

    Args:
        model: a tf_keras Sequential or Functional model, float or NVM.

    Returns:
        dict layer name -> `SignSplit` of the fused convolutions (`sign_split_layers`).
    """
    fused = sign_split_layers(model)
    for name, split in fused.items():
        conv, concat = _inner(model.get_layer(name)), _inner(model.get_layer(split.concatenate))
        if getattr(conv, _FUSED, None) == split.channels:
            continue
        concat.call = _first_input(concat.call)
        conv.input_spec = None  # it now receives C channels; its kernel keeps its 2C input rows
        conv.convolution_op = _fused_convolution(conv, split.channels)
        object.__setattr__(conv, _FUSED, split.channels)
        config = getattr(model.get_layer(name), "quantize_config", None)
        object.__setattr__(conv, _SPEC, getattr(config, "spec", None))  # NVM: the scale of the folded codes
    return fused


def _first_input_when_folding(plain_call):
    """A Concatenate's ``call`` returning ``t`` of ``[t, -t]`` in the folded converter graph only."""

    def call(inputs):
        return inputs[0] if folding_sign_split() else plain_call(inputs)

    return call


def _folding_dense_call(dense, channels):
    """``dense.call`` computing ``t @ (W+ - W-)`` in the folded converter graph, else the plain ``call``."""
    plain = dense.call

    def call(inputs, *args, **kwargs):
        if not folding_sign_split():
            return plain(inputs, *args, **kwargs)
        kernel = dense.kernel  # the wrapper's quantized kernel while it calls the layer
        dense.kernel = _folded_kernel(dense, kernel, channels)
        try:
            return plain(inputs, *args, **kwargs)
        finally:
            dense.kernel = kernel

    return call


def fold_dense_sign_split(model: keras.Model) -> dict[str, SignSplit]:
    """Makes the Dense layers of ``model`` that read ``[t, -t]`` of a non-negative ``t`` fold in the converter graph.

    Inside `tf_nvm.core.modes.converter_graph()` and `tf_nvm.core.modes.fold_sign_split()` such a layer computes
    ``t @ (W+ - W-)`` (its Concatenate passes ``t`` on); everywhere else it is unchanged (training keeps the
    ``[t, -t]`` form: the heads are small). Idempotent; changes no weight and no config. Used by
    ``tflite_export.export_tflite`` with `fuse_sign_split` (which does the same for convolutions, and more).

    Args:
        model: a tf_keras Sequential or Functional model, float or NVM.

    Returns:
        dict layer name -> `SignSplit` of those Dense layers.
    """
    found = {name: split for name, split in sign_split_layers(model, dense=True).items()
             if type(_inner(model.get_layer(name))) is keras.layers.Dense}
    for name, split in found.items():
        dense, concat = _inner(model.get_layer(name)), _inner(model.get_layer(split.concatenate))
        if getattr(dense, _FUSED, None) == split.channels:
            continue
        concat.call = _first_input_when_folding(concat.call)
        dense.input_spec = None  # it receives C values when folding; its kernel keeps its 2C rows
        dense.call = _folding_dense_call(dense, split.channels)
        object.__setattr__(dense, _FUSED, split.channels)
        config = getattr(model.get_layer(name), "quantize_config", None)
        object.__setattr__(dense, _SPEC, getattr(config, "spec", None))
    return found


# ------------------------------------------------------------------ building [x, -x]
def can_feed_both_signs(layer: keras.layers.Layer) -> bool:
    """True when `feed_both_signs` can give ``layer`` both signs of its input.

    Dense, Conv1D and Conv2D (one group, channels last) read a ``[x, -x]`` concatenation with twice the kernel
    rows; DepthwiseConv2D (channels last) becomes two depthwise layers and an ``Add`` (module doc).
    """
    L = keras.layers
    if type(layer) is L.Dense:
        return True
    if type(layer) is L.DepthwiseConv2D:
        return layer.data_format == "channels_last"
    return _is_conv(layer)


def _unique(taken: set[str]) -> Callable[[str], str]:
    def fresh(name):
        candidate, i = name, 1
        while candidate in taken:
            candidate, i = f"{name}_{i}", i + 1
        taken.add(candidate)
        return candidate

    return fresh


def _input_tensor(layer):
    config = layer.get_config()
    return keras.Input(batch_shape=config["batch_input_shape"], dtype=config.get("dtype"), name=config["name"],
                       sparse=config.get("sparse", False), ragged=config.get("ragged", False))


def feed_both_signs(model: keras.Model, split: Iterable[str] = (), separate_softmax: Iterable[str] = (),
                    kernels: str = "split") -> keras.Model:
    """A float copy of ``model`` in which the crossbars ``split`` read both signs of their input.

    With ``kernels="split"`` the copy computes the same function in float (up to float rounding): a Dense or
    convolution in ``split`` reads ``Concatenate(name=f"{name}_pm")([x, Rescaling(-1.0, name=f"{name}_neg")(x)])``
    with the kernel ``[max(W, 0); max(-W, 0)]`` (twice the rows); a DepthwiseConv2D ``name`` keeps ``max(W, 0)`` and
    its bias, and gains ``{name}_neg`` (kernel ``max(-W, 0)``, no bias) on ``Rescaling(-1.0,
    name=f"{name}_neg_input")(x)`` and ``Add(name=f"{name}_sum")``, followed by its activation, if any, as an
    ``Activation`` layer ``{name}_activation`` (module doc). The names are those of the sign-split builders
    of `tf_nvm.models`. A crossbar in ``separate_softmax`` (``activation="softmax"``) becomes linear and is
    followed by ``Softmax(name=f"{name}_softmax")``. Every other layer is a copy (config and weights).

    With ``kernels="initializer"`` the layers in ``split`` keep the kernels their own ``kernel_initializer``
    draws for the doubled input (Dense/Conv: ``2C`` rows, so the fan-in of a network written with ``[x, -x]``
    by hand; DepthwiseConv2D: two independent draws), and their other weights (bias) from ``model``: the start
    of a network trained from scratch (``quantize_model(init="device")``). The exact split starts half of every
    split kernel at code 0 and trained ResNet-8 (2-bit unipolar, CIFAR-10) below the hand-written network;
    fresh kernels train like it (``docs/results/reference-networks/README.md``).

    Args:
        model: a built tf_keras Functional model (float), every layer called once.
        split: names of the crossbar layers to feed ``[x, -x]`` (each passes `can_feed_both_signs`).
        separate_softmax: names of the crossbar layers whose softmax becomes a separate layer.
        kernels: ``"split"`` (``[max(W, 0); max(-W, 0)]``: the same float function) or ``"initializer"``
            (fresh kernels for the doubled input, see above); `SPLIT_KERNELS`.

    Returns:
        a new tf_keras Functional model (``model`` itself when both sets are empty).

    Raises:
        UnsupportedLayerError: a layer of ``model`` is called more than once (a shared layer), or a layer in
            ``split`` that `can_feed_both_signs` refuses.
    """
    if kernels not in SPLIT_KERNELS:
        raise SpecError(f"feed_both_signs: kernels must be one of {list(SPLIT_KERNELS)}, got {kernels!r}. "
                         "Fix: pass 'split' (same float function) or 'initializer' (fresh kernels, training from "
                         "scratch).")
    split_names, softmax_names = set(split), set(separate_softmax)
    if not split_names and not softmax_names:
        return model
    nodes = layer_graph(model, include_inputs=True)
    _refuse_shared_layers(model, nodes)
    copy = _Copy(_unique({node.name for node in nodes}), split_names, softmax_names, kernels)
    for node in nodes:
        copy.tensors[node.name] = _copied_node(copy, node)
    outputs = [copy.tensors[tensor._keras_history.layer.name] for tensor in model.outputs]
    rebuilt = keras.Model([copy.tensors[name] for name in model.input_names], outputs, name=model.name)
    for clone, values in copy.weights:
        clone.set_weights(values)
    return rebuilt


@dataclasses.dataclass
class _Copy:
    """The state of one `feed_both_signs` copy.

    Attributes:
        fresh: name -> an unused layer name (`_unique`).
        split: names of the crossbars fed ``[x, -x]``.
        separate_softmax: names of the crossbars whose softmax becomes a layer.
        kernels: one of `SPLIT_KERNELS`.
        tensors: layer name of ``model`` -> its output tensor in the copy.
        weights: (layer of the copy, weights to set), set once the copy is built.
    """

    fresh: Callable[[str], str]
    split: set[str]
    separate_softmax: set[str]
    kernels: str
    tensors: dict[str, Any] = dataclasses.field(default_factory=dict)
    weights: list[tuple[Any, list[np.ndarray]]] = dataclasses.field(default_factory=list)


def _refuse_shared_layers(model: keras.Model, nodes: list[LayerNode]) -> None:
    """Raises `UnsupportedLayerError` naming the layers of ``model`` called more than once."""
    shared = [node.name for node in nodes if node.calls > 1]
    if shared:
        raise UnsupportedLayerError(
            f"layers {shared} of model {model.name!r} are called more than once (shared layers); tf_nvm can feed "
            "both signs to crossbars, or move a softmax out of a crossbar, only in models whose layers are each "
            "called once. Fix: give each call its own layer, or build the [x, -x] inputs yourself "
            "(Concatenate()([x, Rescaling(-1.0)(x)])) and quantize without sign_split.")


def _copied_node(copy: _Copy, node: LayerNode) -> Any:
    """The output tensor of ``node``'s layer in the copy (an input, a plain copy, or a crossbar fed both signs)."""
    layer = node.layer
    if isinstance(layer, keras.layers.InputLayer):
        return _input_tensor(layer)
    inputs = [copy.tensors[name] for name in node.inputs]
    x = inputs[0] if len(inputs) == 1 else inputs
    config = layer.get_config()
    softmax = node.name in copy.separate_softmax
    if softmax:
        config["activation"] = "linear"
    if node.name not in copy.split:
        clone = type(layer).from_config(config)
        out = clone(x)
        copy.weights.append((clone, layer.get_weights()))
    elif not can_feed_both_signs(layer):
        raise UnsupportedLayerError(
            f"layer {layer.name!r} of class {type(layer).__name__} cannot be fed both signs [x, -x] by tf_nvm "
            "(it does Dense, Conv1D/Conv2D with one group and DepthwiseConv2D, channels last). Fix: build "
            "its [x, -x] input yourself, or use a bipolar spec.")
    elif type(layer) is keras.layers.DepthwiseConv2D:
        out = _both_signs_depthwise(layer, config, x, copy.fresh, copy.weights, copy.kernels)
    else:
        out = _both_signs_rows(copy, node.name, layer, config, x)
    if softmax:
        out = keras.layers.Softmax(name=copy.fresh(f"{node.name}_softmax"))(out)
    return out


def _both_signs_rows(copy: _Copy, name: str, layer: keras.layers.Layer, config: dict[str, Any], x: Any) -> Any:
    """A Dense/Conv reading ``Concatenate([x, -x])`` with the kernel ``[max(W, 0); max(-W, 0)]`` (or fresh)."""
    negated = keras.layers.Rescaling(-1.0, name=copy.fresh(f"{name}_neg"))(x)
    both = keras.layers.Concatenate(name=copy.fresh(f"{name}_pm"))([x, negated])
    clone = type(layer).from_config(config)
    out = clone(both)
    kernel, *rest = layer.get_weights()
    both_kernel = (np.concatenate([np.maximum(kernel, 0), np.maximum(-kernel, 0)], axis=-2)
                   if copy.kernels == "split" else clone.get_weights()[0])
    copy.weights.append((clone, [both_kernel, *rest]))
    return out


def _both_signs_depthwise(layer, config, x, fresh, weights, kernels):
    """``dw(x, max(W, 0)) + dw(-x, max(-W, 0))`` (+ bias, then the activation) for a DepthwiseConv2D.

    With ``kernels="initializer"`` both halves keep their own initializer's kernels (`feed_both_signs`).
    """
    L = keras.layers
    activation = activation_name(layer)
    linear = dict(config, activation="linear")
    positive = type(layer).from_config(linear)
    negative = type(layer).from_config(dict(linear, name=fresh(f"{layer.name}_neg"), use_bias=False,
                                            bias_constraint=None, bias_regularizer=None))
    negated = L.Rescaling(-1.0, name=fresh(f"{layer.name}_neg_input"))(x)
    out = L.Add(name=fresh(f"{layer.name}_sum"))([positive(x), negative(negated)])
    kernel, *rest = layer.get_weights()
    if kernels == "split":
        weights.extend([(positive, [np.maximum(kernel, 0), *rest]), (negative, [np.maximum(-kernel, 0)])])
    else:
        weights.append((positive, [positive.get_weights()[0], *rest]))
    if activation not in ("linear", None):
        out = L.Activation(activation, name=fresh(f"{layer.name}_activation"))(out)
    return out
