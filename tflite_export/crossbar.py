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

import numpy as np

import tf_nvm
from tf_nvm import mapping as nvm_mapping
from tf_nvm.errors import ExportError

__all__ = ["export_crossbar", "build_mapping", "HARDWARE_FIELDS"]

HARDWARE_FIELDS = ("rows", "cols", "adc_bits", "dac_bits", "g_min_us", "g_max_us", "input_encoding")
"""Spec fields a caller may change at export (they place the trained network on other hardware).

Every other field (device bits, mapping, scales, activation range) fixes the
trained codes and must equal the model's.
"""


def _resolve_spec(model_spec, spec):
    if spec is None:
        return model_spec
    spec = tf_nvm.resolve_spec(spec, owner="export_crossbar")
    if spec.weight_scale is None:
        spec = spec.with_weight_scale(model_spec.weight_scale)
    fixed = [f.name for f in dataclasses.fields(model_spec)
             if f.name not in HARDWARE_FIELDS and f.name != "weight_scale_mode"
             and getattr(spec, f.name) != getattr(model_spec, f.name)]
    if fixed:
        raise ExportError(
            "export_crossbar: spec differs from the model's trained spec in "
            + ", ".join(f"{n} (given {getattr(spec, n)!r}, model {getattr(model_spec, n)!r})" for n in fixed)
            + f". Only the hardware fields {list(HARDWARE_FIELDS)} may differ. Fix: pass spec=None, or change "
            "only those fields with tf_nvm.model_spec(model).replace(...).")
    return spec


def _inbound(model):
    """{layer name: [inbound layer names]} from the functional config."""
    out = {}
    for entry in model.get_config()["layers"]:
        names = []
        nodes = entry.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise ExportError(f"layer {entry['name']!r} is called {len(nodes)} times (shared layer); a crossbar "
                              "mapping needs each layer once. Fix: use separate layers.")
        for node in nodes:
            for inbound in (node if isinstance(node, list) else node.get("args", [])):
                if isinstance(inbound, (list, tuple)) and inbound and isinstance(inbound[0], str):
                    names.append(inbound[0])
        out[entry["name"]] = names
    return out


def _activation_name(layer):
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", str(act)) if act is not None else "linear"


def _same_pads(size, kernel, stride, dilation):
    span = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return (total // 2, total - total // 2)


def _crossbar(wrapper, inputs, in_shape, out_shape, codes, spec, rails):
    from tf_nvm._keras import keras  # noqa: PLC0415

    inner = wrapper.layer
    name = wrapper.name
    activation = _activation_name(inner)
    if activation not in nvm_mapping.ACTIVATIONS:
        raise ExportError(f"crossbar layer {name!r} has activation {activation!r}; the mapping supports "
                          f"{list(nvm_mapping.ACTIVATIONS)}. Fix: use activation=None and a separate ReLU layer.")
    kernel = codes.codes
    if isinstance(inner, keras.layers.Dense):
        op, ksize, strides, dilation, padding, pads = "dense", (), (), (), "valid", ()
        matrix = kernel
    else:
        if getattr(inner, "data_format", "channels_last") != "channels_last":
            raise ExportError(f"layer {name!r} uses data_format={inner.data_format!r}; the mapping needs "
                              "channels_last. Fix: build the model channels_last.")
        if getattr(inner, "groups", 1) != 1:
            raise ExportError(f"layer {name!r} has groups={inner.groups}; grouped convolutions are not mapped. "
                              "Fix: use groups=1.")
        if inner.padding not in ("valid", "same"):
            raise ExportError(f"layer {name!r} has padding={inner.padding!r}; the mapping supports 'valid' and "
                              "'same'. Fix: pad explicitly with ZeroPadding1D.")
        ksize = tuple(int(k) for k in inner.kernel_size)
        strides = tuple(int(s) for s in inner.strides)
        dilation = tuple(int(d) for d in inner.dilation_rate)
        padding = inner.padding
        pads = tuple(_same_pads(in_shape[a], ksize[a], strides[a], dilation[a]) if padding == "same" else (0, 0)
                     for a in range(len(ksize)))
        if isinstance(inner, keras.layers.DepthwiseConv2D):
            op = "depthwise_conv2d"
            kh, kw, cin, mult = kernel.shape
            matrix = np.zeros((kh * kw * cin, cin * mult), np.int32)
            for c in range(cin):
                rows = np.arange(kh * kw) * cin + c
                matrix[rows, c * mult:(c + 1) * mult] = kernel[:, :, c, :].reshape(kh * kw, mult)
        else:
            op = "conv1d" if isinstance(inner, keras.layers.Conv1D) else "conv2d"
            matrix = kernel.reshape(-1, kernel.shape[-1])
    rows, cols = matrix.shape
    bias = bias_int = None
    if codes.bias is not None:
        step = np.float64(spec.activation_step) * np.float64(spec.weight_scale)
        bias_int = np.rint(codes.bias.astype(np.float64) / step).astype(np.int32)
        bias = codes.bias.astype(np.float32)
    level_top = 2 ** spec.weight_bits - 1
    return nvm_mapping.CrossbarLayer(
        name=name, op=op, inputs=tuple(inputs), output=name, output_shape=tuple(out_shape),
        input_shape=tuple(in_shape), kernel_size=ksize, strides=strides, dilation=dilation, padding=padding,
        pads=pads, in_channels=int(in_shape[-1]), filters=int(cols), rows=int(rows), cols=int(cols),
        codes=matrix.astype(np.int8), levels=nvm_mapping.levels_from_codes(matrix, spec),
        reference_level=(-spec.code_min if (not spec.unipolar and spec.bipolar_mapping == "offset") else None),
        bias=bias, bias_int32=bias_int, activation=activation, tiles=nvm_mapping.plan_tiles(rows, cols, spec),
        input_rails=rails, adc_full_scale=128 * max(1, level_top) * min(rows, spec.rows))


def _digital(layer, inner, in_shapes, out_shape):
    """(op, params, arrays, requantize) of a non-crossbar layer."""
    from tf_nvm._keras import keras  # noqa: PLC0415
    from tf_nvm.digital import NVMBatchNormalization  # noqa: PLC0415

    L = keras.layers
    name = layer.name
    requant = bool(getattr(layer, "_output_quantizers", None))

    def unsupported(why):
        raise ExportError(f"layer {name!r} ({type(inner).__name__}): {why}. The crossbar mapping supports "
                          f"the digital ops {list(nvm_mapping.DIGITAL_OPS)}. Fix: replace the layer by a "
                          "supported one.")

    if isinstance(inner, NVMBatchNormalization):
        affine = inner.digital_affine()
        return "batch_norm", {"channels": int(in_shapes[0][-1])}, {
            "multiplier": affine["multiplier"], "offset": affine["offset"], "scale": affine["scale"]}, True
    if isinstance(inner, L.BatchNormalization):
        unsupported("a plain BatchNormalization is not exact on the integer grid; quantize_model turns it into "
                    "NVMBatchNormalization (re-quantize the float model with this tf_nvm)")
    if isinstance(inner, L.ReLU):
        if inner.max_value is not None or float(inner.negative_slope) != 0 or float(inner.threshold) != 0:
            unsupported("only a plain ReLU (no max_value, negative_slope or threshold) is mapped")
        return "relu", {}, {}, requant
    if isinstance(inner, L.Activation):
        act = _activation_name(inner)
        if act == "relu":
            return "relu", {}, {}, requant
        if act == "linear":
            return "identity", {}, {}, requant
        if act == "softmax":
            return "softmax", {"axis": -1}, {}, False
        unsupported(f"activation {act!r} is not mapped (relu, linear, softmax are)")
    if isinstance(inner, L.Softmax):
        return "softmax", {"axis": int(inner.axis) if np.ndim(inner.axis) == 0 else -1}, {}, False
    if isinstance(inner, L.Rescaling):
        scale, offset = np.asarray(inner.scale, np.float64), np.asarray(inner.offset, np.float64)
        if scale.size != 1 or offset.size != 1:
            unsupported("only scalar scale/offset are mapped")
        return "rescale", {"scale": float(scale), "offset": float(offset)}, {}, requant
    if isinstance(inner, (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D)):
        if getattr(inner, "keepdims", False) or inner.data_format != "channels_last":
            unsupported("only channels_last without keepdims is mapped")
        axes = [0] if isinstance(inner, L.GlobalAveragePooling1D) else [0, 1]
        count = int(np.prod([in_shapes[0][a] for a in axes]))
        return "global_average_pool", {"axes": axes, "count": count}, {}, requant
    if isinstance(inner, (L.GlobalMaxPooling1D, L.GlobalMaxPooling2D)):
        if getattr(inner, "keepdims", False) or inner.data_format != "channels_last":
            unsupported("only channels_last without keepdims is mapped")
        return "global_max_pool", {"axes": [0] if isinstance(inner, L.GlobalMaxPooling1D) else [0, 1]}, {}, False
    if isinstance(inner, (L.MaxPooling1D, L.MaxPooling2D)):
        if inner.data_format != "channels_last":
            unsupported("only channels_last is mapped")
        pool = [int(p) for p in np.atleast_1d(inner.pool_size)]
        strides = [int(s) for s in np.atleast_1d(inner.strides)]
        return "max_pool", {"pool_size": pool, "strides": strides, "padding": inner.padding}, {}, False
    if isinstance(inner, L.Flatten):
        return "flatten", {}, {}, False
    if isinstance(inner, L.Reshape):
        return "reshape", {}, {}, False
    if isinstance(inner, (L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D)):
        return "identity", {}, {}, False
    if isinstance(inner, L.Concatenate):
        rank = len(out_shape) + 1
        axis = int(inner.axis) % rank - 1
        if axis < 0:
            unsupported("concatenation along the batch axis is not mapped")
        return "concatenate", {"axis": axis}, {}, False
    if isinstance(inner, L.Add):
        return "add", {}, {}, requant
    if isinstance(inner, (L.ZeroPadding1D, L.ZeroPadding2D)):
        padding = inner.padding
        pads = [list(padding)] if isinstance(inner, L.ZeroPadding1D) else [list(p) for p in padding]
        return "zero_pad", {"pads": [[int(a), int(b)] for a, b in pads]}, {}, False
    unsupported("this layer class is not mapped")


def build_mapping(model, spec=None, preprocessing=None, metadata=None):
    """The in-memory crossbar mapping of a trained NVM model.

    Args:
        model: trained Keras NVM model (functional, one input, from
            `tf_nvm.quantize_model` or built from tf_nvm layers).
        spec: None (the model's spec) or a spec differing only in
            `HARDWARE_FIELDS` (crossbar size, converters, conductances, input
            encoding).
        preprocessing: optional ``{"input_mean": [...], "input_std": [...]}``
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
    import tf_nvm  # noqa: PLC0415
    from tf_nvm._keras import keras, tfmot  # noqa: PLC0415
    from tf_nvm.scheme import QuantizeLayer  # noqa: PLC0415

    model_spec = tf_nvm.model_spec(model)
    spec = _resolve_spec(model_spec, spec)
    if len(model.inputs) != 1:
        raise ExportError(f"model {model.name!r} has {len(model.inputs)} inputs; the mapping supports one. Fix: "
                          "concatenate the inputs inside the model.")
    codes = tf_nvm.weight_codes(model)
    inbound = _inbound(model)
    wrapper_cls = tfmot.quantization.keras.QuantizeWrapper

    alias = {}
    shapes = {}
    from_input = {}
    input_name = None
    layers = []
    signed = {"digital_bias": [], "batch_norm": [], "negating_rescale": []}
    for layer in model.layers:
        names = [alias.get(n, n) for n in inbound.get(layer.name, [])]
        if isinstance(layer, keras.layers.InputLayer):
            input_name = layer.name
            shapes[layer.name] = tuple(int(d) for d in layer.output_shape[0][1:]) if isinstance(
                layer.output_shape, list) else tuple(int(d) for d in layer.output_shape[1:])
            from_input[layer.name] = True
            continue
        out_shape = tuple(int(d) for d in layer.output_shape[1:])
        if isinstance(layer, QuantizeLayer):
            if names == [input_name]:
                alias[layer.name] = input_name  # the input quantizer: part of the input encoding
                continue
            op, params, arrays, requant, inner = "identity", {}, {}, True, layer
        elif isinstance(layer, wrapper_cls):
            inner = layer.layer
        else:
            raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}) is not an NVM layer (no tfmot "
                              "wrapper). Fix: export the model returned by tf_nvm.quantize_model.")
        in_shapes = [shapes[n] for n in names]
        rails = 1
        if layer.name in codes:
            rails = 2 if spec.input_encoding == "dual-rail" and all(from_input.get(n) for n in names) else 1
            entry = _crossbar(layer, names, in_shapes[0], out_shape, codes[layer.name], spec, rails)
            if entry.bias is not None and np.any(entry.bias < 0):
                signed["digital_bias"].append(layer.name)
            from_input[layer.name] = False
        else:
            if isinstance(layer, wrapper_cls):
                op, params, arrays, requant = _digital(layer, inner, in_shapes, out_shape)
            entry = nvm_mapping.DigitalLayer(layer.name, op, tuple(names), layer.name, out_shape, params, arrays,
                                             requant)
            if op == "batch_norm":
                signed["batch_norm"].append(layer.name)
            if op == "rescale" and params["scale"] < 0:
                signed["negating_rescale"].append(layer.name)
            from_input[layer.name] = all(from_input.get(n) for n in names)
        layers.append(entry)
        shapes[layer.name] = out_shape
    mean = std = None
    if preprocessing is not None:
        mean = tuple(float(v) for v in np.ravel(preprocessing["input_mean"]))
        std = tuple(float(v) for v in np.ravel(preprocessing["input_std"]))
    inp = nvm_mapping.InputEncoding(input_name, shapes[input_name], spec.input_encoding,
                                    float(spec.activation_step), 0, mean, std)
    outputs = tuple(alias.get(n, n) for n in model.output_names)
    info = {
        "model": model.name,
        "exporter": "tflite_export.export_crossbar",
        "tf_nvm_version": tf_nvm.__version__,
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
    info.update(metadata or {})
    try:
        return nvm_mapping.Mapping(spec, inp, tuple(layers), outputs, info)
    except tf_nvm.MappingError as err:
        raise ExportError(f"export_crossbar produced an inconsistent mapping for model {model.name!r}: {err}") \
            from err


def export_crossbar(model, path, spec=None, preprocessing=None, metadata=None):
    """Writes the crossbar mapping of a trained NVM model to ``PREFIX.json`` + ``PREFIX.npz``.

    Args:
        model: trained Keras NVM model.
        path: output prefix (``.json``/``.npz`` suffixes are stripped).
        spec: None (the model's spec) or a spec changing only `HARDWARE_FIELDS`.
        preprocessing: optional ``{"input_mean", "input_std"}`` of the raw inputs.
        metadata: optional extra JSON-ready metadata.

    Returns:
        the `tf_nvm.mapping.Mapping` written (files appear atomically).

    Raises:
        NotAnNVMModelError: not an NVM model.
        ExportError: see `build_mapping`.
    """
    result = build_mapping(model, spec, preprocessing, metadata)
    nvm_mapping.save(result, path)
    return result
