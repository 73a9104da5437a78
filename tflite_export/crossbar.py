"""`export_crossbar`: the crossbar mapping file of a trained NVM model.

Walks the Keras NVM model in execution order and builds a `tf_nvm.mapping.Mapping`:
crossbar layers (im2col-unrolled kernels as device codes, the conductance level
of every device, tiling onto ``spec.rows x spec.cols`` crossbars, digital bias
and activation) and digital steps (the BatchNorm affine as integers, ReLU,
pooling, reshaping, concatenation, rescaling, ...). Every number in the file is
taken from the model itself (`tf_nvm.weight_codes`,
`NVMBatchNormalization.digital_affine`, layer configs), so running the mapping
reproduces the Keras model's int8 outputs.
"""

import dataclasses
import datetime
import math
import os
from typing import Any

import numpy as np

import tf_nvm.mapping as nvm_mapping
from tf_nvm.core import provenance
from tf_nvm.core.atomic import check_writable
from tf_nvm.core.errors import ExportError, MappingError
from tf_nvm.core.preprocessing import Standardization
from tf_nvm.core.spec import NVMSpec, resolve_spec
from tf_nvm.keras.backend import QuantizeLayer, QuantizeWrapper, keras, wrapper_output_quantizers
from tf_nvm.keras.graph import activation_name, layer_graph
from tf_nvm.keras.nvm_model import check_finite_weights, check_fixed_input_shape, model_spec, weight_codes
from tf_nvm.keras.quantize_configs import LAYER_RULES
from tf_nvm.mapping.device import adc_full_scale
from tf_nvm.mapping.ops import DIGITAL_OPS
from tf_nvm.mapping.tiling import channel_major_rows, depthwise_layout, plan_diagonal_tiles
from tflite_export.adapters import CROSSBAR_ADAPTERS, DIGITAL_ADAPTERS, fail_unsupported, find_adapter

__all__ = ["export_crossbar", "build_mapping", "HARDWARE_FIELDS"]

HARDWARE_FIELDS = ("rows", "cols", "adc_bits", "dac_bits", "g_min_us", "g_max_us", "input_encoding")
"""Spec fields a caller may change at export (they place the trained network on other hardware).

Every other field (device bits, mapping, scales, activation range) fixes the
trained codes and must equal the model's.
"""


def _resolve_spec(trained: NVMSpec, spec: Any) -> NVMSpec:
    if spec is None:
        return trained
    spec = resolve_spec(spec, owner="export_crossbar")
    if spec.weight_scale is None:
        spec = spec.with_weight_scale(trained.weight_scale)
    fixed = [f.name for f in dataclasses.fields(trained)
             if f.name not in HARDWARE_FIELDS and f.name != "weight_scale_mode"
             and getattr(spec, f.name) != getattr(trained, f.name)]
    if fixed:
        raise ExportError(
            "export_crossbar: spec differs from the model's trained spec in "
            + ", ".join(f"{n} (given {getattr(spec, n)!r}, model {getattr(trained, n)!r})" for n in fixed)
            + f". Only the hardware fields {list(HARDWARE_FIELDS)} may differ. Fix: pass spec=None, or change "
            "only those fields with tf_nvm.model_spec(model).replace(...).")
    return spec


def _crossbar(wrapper, inputs, in_shape, out_shape, codes, spec, rails):
    inner = wrapper.layer
    name = wrapper.name
    activation = activation_name(inner) or "linear"
    if activation not in nvm_mapping.ACTIVATIONS:
        raise ExportError(f"crossbar layer {name!r} has activation {activation!r}; the mapping supports "
                          f"{list(nvm_mapping.ACTIVATIONS)}. Fix: use activation=None and a separate ReLU layer.")
    adapter = find_adapter(CROSSBAR_ADAPTERS, inner)
    if adapter is None:
        fail_unsupported(name, inner, "this crossbar layer class is not mapped")
    op, ksize, strides, dilation, padding, pads, matrix = adapter(inner, codes.codes, in_shape)
    rows, cols = matrix.shape
    channels_per_tile = None
    if op == "depthwise_conv2d":  # block-diagonal layout: channel-major rows, only the diagonal tiles programmed
        taps, channels = math.prod(ksize), int(in_shape[-1])
        channels_per_tile = depthwise_layout(taps, channels, cols // channels, spec)
        if channels_per_tile is not None:  # else (a channel exceeds one crossbar) the grid layout, as in schema 1
            matrix = matrix[channel_major_rows(taps, channels)]
    return nvm_mapping.CrossbarLayer(
        name=name, op=op, inputs=tuple(inputs), output=name, output_shape=tuple(out_shape),
        input_shape=tuple(in_shape), kernel_size=ksize, strides=strides, dilation=dilation, padding=padding,
        pads=pads, in_channels=int(in_shape[-1]), filters=int(cols), rows=int(rows), cols=int(cols),
        codes=matrix.astype(np.int8), levels=nvm_mapping.levels_from_codes(matrix, spec),
        reference_level=spec.reference_level,
        bias=None if codes.bias is None else codes.bias.astype(np.float32), bias_int32=codes.bias_int32,
        activation=activation, input_rails=rails, adc_full_scale=adc_full_scale(rows, spec),
        channels_per_tile=channels_per_tile,
        tiles=(nvm_mapping.plan_tiles(rows, cols, spec) if channels_per_tile is None else plan_diagonal_tiles(
            channels, taps, cols // channels, channels_per_tile, spec)))


def _requantize(op, wrapper):
    """The layer's ``requantize`` flag: fixed by the op's table entry, else whether the layer has an output
    quantizer."""
    rule = DIGITAL_OPS.get(op).requantize
    if rule == "either":
        return bool(wrapper_output_quantizers(wrapper))
    return rule == "always"


def _digital(layer, in_shapes, out_shape):
    """(op, params, arrays, requantize) of a non-crossbar layer (a tfmot wrapper)."""
    inner = layer.layer
    rule = LAYER_RULES.get(type(inner).__name__) if type(inner).__name__ in LAYER_RULES else None
    adapter = rule.adapter if rule is not None and rule.adapter is not None else find_adapter(DIGITAL_ADAPTERS, inner)
    if adapter is None:
        fail_unsupported(layer.name, inner, "this layer class is not mapped")
    op, params, arrays = adapter(inner, in_shapes, out_shape, lambda why: fail_unsupported(layer.name, inner, why))
    return op, params, arrays, _requantize(op, layer)


def build_mapping(model: Any, spec: Any = None, preprocessing: Any = None,
                  metadata: dict[str, Any] | None = None) -> nvm_mapping.Mapping:
    """The in-memory crossbar mapping of a trained NVM model.

    Args:
        model: trained Keras NVM model (functional, one input, from
            `tf_nvm.quantize_model` or built from tf_nvm layers).
        spec: None (the model's spec) or a spec differing only in
            `HARDWARE_FIELDS` (crossbar size, converters, conductances, input
            encoding).
        preprocessing: optional `tf_nvm.core.preprocessing.Standardization`, or its dict
            ``{"input_mean": [...], "input_std": [...]}``
            (raw units, per input channel), e.g. a run folder's
            ``preprocessing.json``.
        metadata: optional extra JSON-ready metadata.

    Returns:
        `tf_nvm.mapping.Mapping`.

    Raises:
        NotAnNVMModelError: not an NVM model.
        ExportError: several inputs, a shared layer, an unsupported layer or
            option (the message names the layer and the fix), or a spec that
            changes trained fields.
    """
    spec = _resolve_spec(model_spec(model), spec)
    _check_model(model)
    codes = weight_codes(model)
    walk = _Walk(spec, codes)
    for node in _single_call_nodes(model):
        walk.visit(node)
    inp = _input_encoding(walk, spec, preprocessing)
    outputs = tuple(walk.alias.get(n, n) for n in model.output_names)
    info = _metadata(model, spec, walk.signed)
    info.update(metadata or {})
    try:
        return nvm_mapping.Mapping(spec, inp, tuple(walk.layers), outputs, info)
    except MappingError as err:
        raise ExportError(f"export_crossbar produced an inconsistent mapping for model {model.name!r}: {err}") \
            from err


def _check_model(model: Any) -> None:
    """Refuses a model with several inputs, non-finite weights or a variable input shape."""
    if len(model.inputs) != 1:
        raise ExportError(f"model {model.name!r} has {len(model.inputs)} inputs; the mapping supports one. Fix: "
                          "concatenate the inputs inside the model.")
    check_finite_weights(model)
    check_fixed_input_shape(model, owner="export_crossbar")


def _single_call_nodes(model: Any) -> list[Any]:
    """The model's layer graph in execution order (inputs included), refusing a layer called more than once."""
    nodes = layer_graph(model, include_inputs=True)
    for node in nodes:
        if node.calls > 1:
            raise ExportError(f"layer {node.name!r} is called {node.calls} times (shared layer); a crossbar "
                              "mapping needs each layer once. Fix: use separate layers.")
    return nodes


@dataclasses.dataclass
class _Walk:
    """The mapping's layers, built by visiting the model's layers in execution order.

    Attributes:
        spec: the spec the mapping is built for.
        codes: `weight_codes` of the model: the crossbar layers.
        alias: {input quantizer: the input} (the input quantizer is part of the input encoding).
        shapes: {layer: output shape of one example}.
        from_input: {layer: True when its values come from the input through digital steps only}.
        input_name: the input layer's name.
        layers: the mapping's layers, in execution order.
        signed: the signed elements of the mapping's metadata, {kind: layer names}.
    """

    spec: NVMSpec
    codes: dict[str, Any]
    alias: dict[str, str] = dataclasses.field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    from_input: dict[str, bool] = dataclasses.field(default_factory=dict)
    input_name: Any = None  # str once the input layer is visited
    layers: list[Any] = dataclasses.field(default_factory=list)
    signed: dict[str, list[str]] = dataclasses.field(
        default_factory=lambda: {"digital_bias": [], "batch_norm": [], "negating_rescale": []})

    def visit(self, node: Any) -> None:
        """Adds ``node``'s layer: the input, an alias of it, a crossbar layer or a digital step."""
        layer = node.layer
        names = [self.alias.get(n, n) for n in node.inputs]
        if isinstance(layer, keras.layers.InputLayer):
            self.input_name = layer.name
            self.shapes[layer.name] = tuple(int(d) for d in layer.output_shape[0][1:]) if isinstance(
                layer.output_shape, list) else tuple(int(d) for d in layer.output_shape[1:])
            self.from_input[layer.name] = True
            return
        out_shape = tuple(int(d) for d in layer.output_shape[1:])
        in_shapes = [self.shapes[n] for n in names]
        digital: tuple[str, dict[str, Any], dict[str, Any], bool]
        if isinstance(layer, QuantizeLayer):
            if names == [self.input_name]:
                self.alias[layer.name] = self.input_name  # the input quantizer: part of the input encoding
                return
            digital = ("identity", {}, {}, True)  # an inner quantizer: requantizes
        elif not isinstance(layer, QuantizeWrapper):
            raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}) is not an NVM layer (no tfmot "
                              "wrapper). Fix: export the model returned by tf_nvm.quantize_model.")
        elif layer.name not in self.codes:
            digital = _digital(layer, in_shapes, out_shape)
        if layer.name in self.codes:
            entry = self._crossbar(layer, names, in_shapes[0], out_shape)
        else:
            entry = self._digital(layer, names, out_shape, *digital)
        self.layers.append(entry)
        self.shapes[layer.name] = out_shape

    def _crossbar(self, layer: Any, names: list[str], in_shape: tuple[int, ...],
                  out_shape: tuple[int, ...]) -> Any:
        rails = 2 if self.spec.input_encoding == "dual-rail" and all(self.from_input.get(n) for n in names) else 1
        entry = _crossbar(layer, names, in_shape, out_shape, self.codes[layer.name], self.spec, rails)
        if entry.bias is not None and np.any(entry.bias < 0):
            self.signed["digital_bias"].append(layer.name)
        self.from_input[layer.name] = False
        return entry

    def _digital(self, layer: Any, names: list[str], out_shape: tuple[int, ...], op: str, params: dict[str, Any],
                 arrays: dict[str, Any], requant: bool) -> Any:
        entry = nvm_mapping.DigitalLayer(layer.name, op, tuple(names), layer.name, out_shape, params, arrays,
                                         requant)
        if op == "batch_norm":
            self.signed["batch_norm"].append(layer.name)
        if op == "rescale" and params["scale"] < 0:
            self.signed["negating_rescale"].append(layer.name)
        self.from_input[layer.name] = all(self.from_input.get(n) for n in names)
        return entry


def _input_encoding(walk: _Walk, spec: NVMSpec, preprocessing: Any) -> Any:
    """The mapping's `tf_nvm.mapping.InputEncoding`, with the standardization of the raw inputs when given."""
    mean = std = None
    if preprocessing is not None:
        if not isinstance(preprocessing, Standardization):
            preprocessing = Standardization.from_dict(preprocessing, where="export_crossbar: preprocessing",
                                                      error=ExportError)
        mean = tuple(float(v) for v in preprocessing.mean)
        std = tuple(float(v) for v in preprocessing.std)
    return nvm_mapping.InputEncoding(walk.input_name, walk.shapes[walk.input_name], spec.input_encoding,
                                     float(spec.activation_step), 0, mean, std)


def _metadata(model: Any, spec: NVMSpec, signed: dict[str, list[str]]) -> dict[str, Any]:
    """The mapping's metadata: model, exporter, provenance, time and its signed elements."""
    return {
        "model": model.name,
        "exporter": "tflite_export.export_crossbar",
        **provenance.current(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "signed_elements": {
            "note": ("A crossbar whose weights are all non-negative (unipolar) and whose inputs are all "
                     "non-negative is monotone: it cannot inhibit (Wang et al., arXiv:2208.03211). What stays "
                     "signed decides what a unipolar network can learn: the digital biases, the digital "
                     "BatchNorm affines (signed gamma), negating rescales that feed both signs [x, -x] to a "
                     "crossbar, and the input encoding."),
            "weights": "non-negative (unipolar)" if spec.unipolar else f"signed ({spec.bipolar_mapping})",
            "input_encoding": spec.input_encoding,
            **signed,
        },
    }


def export_crossbar(model: Any, path: str | os.PathLike, spec: Any = None, preprocessing: Any = None,
                    metadata: dict[str, Any] | None = None) -> nvm_mapping.Mapping:
    """Writes the crossbar mapping of a trained NVM model to ``PREFIX.json`` + ``PREFIX.npz``.

    Args:
        model: trained Keras NVM model.
        path: output prefix (``.json``/``.npz`` suffixes are stripped).
        spec: None (the model's spec) or a spec changing only `HARDWARE_FIELDS`.
        preprocessing: optional `Standardization` (or ``{"input_mean", "input_std"}``) of the raw inputs.
        metadata: optional extra JSON-ready metadata.

    Returns:
        the `tf_nvm.mapping.Mapping` written (files appear atomically).

    Raises:
        NotAnNVMModelError: not an NVM model.
        ExportError: see `build_mapping`.
    """
    check_writable(nvm_mapping.io.json_path_of(path), ExportError, "mapping output file")
    result = build_mapping(model, spec, preprocessing, metadata)
    nvm_mapping.save(result, path)
    return result
