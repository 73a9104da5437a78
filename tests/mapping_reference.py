"""A plain-numpy evaluator of a crossbar mapping file (no Keras, no TFLite).

It reads only the mapping (``tf_nvm.mapping.load`` parses the JSON + npz) and
computes what the crossbars and the digital periphery compute: int8 input codes
on the DAC rows, per tile and per device column the integer column sums
``sum q * level`` (the G_min offset already removed), the pair / reference
subtraction, the digital sum of row tiles, then bias, scale, activation and
re-quantisation, and every digital step on int8 codes. Used by
tests/test_crossbar_reference.py to check the mapping reproduces the Keras
NVM model.
"""

import numpy as np

from tf_nvm.mapping import load


def _rint_clip(v):
    return np.clip(np.rint(v), -128, 127).astype(np.int64)


def _im2col(q, layer):
    """[N, *spatial, C] int codes -> ([N, *out_spatial, rows] patches)."""
    pads = [(0, 0)] + [tuple(p) for p in layer.pads] + [(0, 0)]
    x = np.pad(q, pads)
    n = x.shape[0]
    out_spatial = layer.output_shape[:-1]
    cols = []
    if len(layer.kernel_size) == 1:
        (k,), (s,), (d,) = layer.kernel_size, layer.strides, layer.dilation
        for i in range(k):
            start = i * d
            cols.append(x[:, start:start + s * (out_spatial[0] - 1) + 1:s, :])
    else:
        (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.strides, layer.dilation
        for i in range(kh):
            for j in range(kw):
                cols.append(x[:, i * dh:i * dh + sh * (out_spatial[0] - 1) + 1:sh,
                              j * dw:j * dw + sw * (out_spatial[1] - 1) + 1:sw, :])
    patches = np.concatenate(cols, axis=-1)  # kernel position major, channel fastest
    return patches.reshape((n,) + tuple(out_spatial) + (layer.rows,))


def _crossbar(q, layer, mapping):
    spec = mapping.spec
    patches = q if layer.op == "dense" else _im2col(q, layer)
    flat = patches.reshape(-1, layer.rows).astype(np.int64)
    acc = np.zeros((flat.shape[0], layer.cols), np.int64)
    rails = [flat] if layer.input_rails == 1 else [np.maximum(flat, 0), np.maximum(-flat, 0)]
    for tile in layer.tiles:
        levels = layer.levels[tile.row_start:tile.row_stop, tile.col_start:tile.col_stop].astype(np.int64)
        part = np.zeros((flat.shape[0], tile.col_stop - tile.col_start), np.int64)
        for sign, rail in zip((1, -1), rails):
            x = rail[:, tile.row_start:tile.row_stop]
            columns = [x @ levels[..., d] for d in range(levels.shape[-1])]  # one ADC result per device column
            if len(columns) == 2:  # differential pair: G+ - G-
                column_sum = columns[0] - columns[1]
            elif layer.reference_level is not None:  # offset mapping: subtract the reference column
                column_sum = columns[0] - x.sum(axis=1, keepdims=True) * layer.reference_level
            else:
                column_sum = columns[0]
            part += sign * column_sum
        acc[:, tile.col_start:tile.col_stop] += part  # digital partial-sum accumulation
    if layer.bias_int32 is not None:
        acc = acc + layer.bias_int32.astype(np.int64)
    v = acc.astype(np.float32) * np.float32(spec.weight_scale)  # one float32 product, as the runtimes
    if layer.activation == "relu":
        v = np.maximum(v, 0)
    return _rint_clip(v).reshape((q.shape[0],) + tuple(layer.output_shape))


def _max_pool(q, params):
    pool, strides = params["pool_size"], params["strides"]
    if params["padding"] == "same":
        pads = []
        for a, (p, s) in enumerate(zip(pool, strides)):
            size = q.shape[1 + a]
            out = -(-size // s)
            total = max((out - 1) * s + p - size, 0)
            pads.append((total // 2, total - total // 2))
        q = np.pad(q, [(0, 0)] + pads + [(0, 0)], constant_values=-(1 << 30))
    out_spatial = [(q.shape[1 + a] - p) // s + 1 for a, (p, s) in enumerate(zip(pool, strides))]
    result = None
    for offsets in np.ndindex(*pool):
        sl = tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offsets, strides, out_spatial))
        window = q[(slice(None),) + sl]
        result = window if result is None else np.maximum(result, window)
    return result


def _digital(inputs, layer, mapping):
    op, params = layer.op, layer.params
    q = inputs[0]
    if op == "batch_norm":
        acc = q * layer.arrays["multiplier"].astype(np.int64) + layer.arrays["offset"].astype(np.int64)
        return _rint_clip(acc.astype(np.float32) * layer.arrays["scale"])  # one float32 product
    if op == "relu":
        return np.maximum(q, 0)
    if op == "identity":
        return q
    if op == "rescale":
        step = mapping.spec.activation_step
        return _rint_clip(q * params["scale"] + params["offset"] / step)
    if op == "global_average_pool":
        axes = tuple(1 + a for a in params["axes"])
        inverse = np.float32(1.0) / np.float32(params["count"])
        return _rint_clip(q.sum(axis=axes).astype(np.float32) * inverse)  # sum * float32(1/n), as the runtime
    if op == "global_max_pool":
        return q.max(axis=tuple(1 + a for a in params["axes"]))
    if op == "max_pool":
        return _max_pool(q, params)
    if op in ("flatten", "reshape"):
        return q.reshape((q.shape[0],) + tuple(layer.output_shape))
    if op == "concatenate":
        return np.concatenate(inputs, axis=params["axis"] + 1 if params["axis"] >= 0 else params["axis"])
    if op == "add":
        return _rint_clip(sum(inputs))
    if op == "zero_pad":
        return np.pad(q, [(0, 0)] + [tuple(p) for p in params["pads"]] + [(0, 0)])
    raise NotImplementedError(op)


def evaluate(path_or_mapping, x):
    """Runs the mapping on standardised inputs ``x``.

    Args:
        path_or_mapping: mapping prefix/file, or a loaded `Mapping`.
        x: float model inputs (examples first).

    Returns:
        dict {tensor name: int64 codes} for every output tensor, and the float
        outputs as ``codes * step`` under the key ``"__float__"`` (first output).
    """
    mapping = load(path_or_mapping) if not hasattr(path_or_mapping, "layers") else path_or_mapping
    tensors = {mapping.input.name: mapping.input.quantize(x).astype(np.int64)}
    for layer in mapping.layers:
        inputs = [tensors[name] for name in layer.inputs]
        if layer.kind == "crossbar":
            tensors[layer.output] = _crossbar(inputs[0], layer, mapping)
        else:
            tensors[layer.output] = _digital(inputs, layer, mapping)
    out = {name: tensors[name] for name in mapping.outputs}
    out["__float__"] = tensors[mapping.outputs[0]] * mapping.spec.activation_step
    return out
