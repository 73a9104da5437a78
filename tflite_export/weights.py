"""Check how every NVM layer's kernel is stored in an exported ``.tflite``: the device codes on the one scale."""

import dataclasses
from typing import Any

import numpy as np

from tf_nvm.core.errors import ExportError
from tf_nvm.keras.nvm_model import model_spec, weight_codes
from tflite_export.flatbuffer import ModelSource, read_model_bytes, read_tflite

__all__ = ["WeightCheck", "check_nvm_weights"]


@dataclasses.dataclass(frozen=True)
class WeightCheck:
    """How one NVM layer's weight tensor is stored in the flatbuffer.

    Attributes:
        layer: Keras layer name.
        tensor: flatbuffer tensor name.
        dtype: ``"INT8"`` or ``"INT4"``.
        scales: stored scale(s).
        zero_points: stored zero point(s).
        codes: sorted distinct stored values.
        allowed: True when every value lies in the spec's code range.
        matches_keras: True when the stored values equal `tf_nvm.weight_codes`
            (in TFLite's layout).
    """

    layer: str
    tensor: str
    dtype: str
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    codes: tuple[int, ...]
    allowed: bool
    matches_keras: bool


def _tflite_layout(codes: np.ndarray, op: str) -> np.ndarray:
    """Keras kernel codes -> the layout TFLite stores for ``op``."""
    if op == "FULLY_CONNECTED":
        return codes.reshape(-1, codes.shape[-1]).T
    if codes.ndim == 3:  # Conv1D [k, cin, f] -> CONV_2D [f, 1, k, cin]
        return codes.transpose(2, 0, 1)[:, None]
    if op == "DEPTHWISE_CONV_2D":  # [kh, kw, cin, m] -> [1, kh, kw, cin*m]
        return codes.reshape(1, codes.shape[0], codes.shape[1], -1)
    return codes.transpose(3, 0, 1, 2)  # Conv2D [kh, kw, cin, f] -> [f, kh, kw, cin]


def check_nvm_weights(model: Any, content: ModelSource,
                      folded: dict[str, int] | None = None) -> list[WeightCheck]:
    """How every NVM layer's kernel is stored in the flatbuffer.

    Args:
        model: the exported Keras NVM model.
        content: .tflite bytes or path.
        folded: {layer name: C} of the ``[t, -t]`` convolutions exported folded (``export_tflite``'s
            ``fold_sign_split``): their tensor must hold the codes ``W+ - W-`` of the kernel's first ``C``
            minus its last ``C`` input rows, in ``-code_max..code_max``.

    Returns:
        list of `WeightCheck`, one per NVM crossbar layer.

    Raises:
        ExportError: an NVM layer has no (or more than one) weight tensor.
    """
    graph = read_tflite(read_model_bytes(content))
    spec = model_spec(model)
    checks = []
    for name, layer_codes in weight_codes(model).items():
        found = graph.layer_weights(name)
        if len(found) != 1:
            raise ExportError(f"NVM layer {name!r}: expected one weight tensor named '*/{name}/*' in the .tflite, "
                              f"found {len(found)}: {[t.name for _, t in found]}. Fix: pass the .tflite exported "
                              "from this model with tflite_export.export_tflite.")
        op, tensor = found[0]
        values = tensor.values
        codes, low = layer_codes.codes, spec.code_min
        channels = (folded or {}).get(name)
        if channels:
            codes, low = codes[..., :channels, :] - codes[..., channels:, :], -spec.code_max
        expected = _tflite_layout(codes, op.op)
        matches = values is not None and values.shape == expected.shape and np.array_equal(values, expected)
        distinct = tuple(int(v) for v in np.unique(values)) if values is not None else ()
        allowed = bool(distinct) and min(distinct) >= low and max(distinct) <= spec.code_max
        checks.append(WeightCheck(name, tensor.name, tensor.dtype, tensor.scales, tensor.zero_points, distinct,
                                  allowed, bool(matches)))
    return checks
