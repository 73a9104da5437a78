"""A plain-numpy forward pass of small NVM models, from weight codes only.

Used to check that ``codes * scale`` (from `tf_nvm.weight_codes`) really is
what the Keras model computes. Supports the layers of the test models:
input quantizer, Dense, Conv1D ('same'/'valid', stride 1), ReLU, Flatten.
"""

import numpy as np


def fake_quant(x, spec):
    """The shared 8-bit activation grid: step A/128, codes -128..127, zero at 0."""
    step = spec.activation_step
    return np.clip(np.round(x / step), -128, 127) * step


def conv1d(x, kernel, bias, padding):
    k = kernel.shape[0]
    if padding == "same":
        left = (k - 1) // 2
        x = np.pad(x, ((0, 0), (left, k - 1 - left), (0, 0)))
    steps = x.shape[1] - k + 1
    out = np.zeros((x.shape[0], steps, kernel.shape[2]), np.float64)
    for i in range(k):
        out += x[:, i:i + steps, :] @ kernel[i]
    return out + bias


def forward(model, codes, spec, x):
    """Runs ``model``'s layer sequence in numpy using only ``codes`` for the kernels."""
    x = fake_quant(x.astype(np.float64), spec)
    for layer in model.layers[2:]:  # InputLayer, QuantizeLayer (done above)
        inner = layer.layer
        kind = type(inner).__name__
        if layer.name in codes:
            c = codes[layer.name]
            kernel = c.codes.astype(np.float64) * c.scale
            bias = c.bias if c.bias is not None else 0.0
            x = x @ kernel + bias if kind == "Dense" else conv1d(x, kernel, bias, inner.padding)
            if inner.activation.__name__ == "relu":
                x = np.maximum(x, 0)
            x = fake_quant(x, spec)
        elif kind == "ReLU":
            x = fake_quant(np.maximum(x, 0), spec)
        elif kind == "Flatten":
            x = x.reshape(x.shape[0], -1)
        else:
            raise NotImplementedError(kind)
    return x
