"""Float32 arithmetic for NVM models: TensorFloat-32 off, no mixed precision.

The Keras NVM model equals its TFLite export bit for bit because it computes
integer device codes, 8-bit activation codes and their sums of products in
float32, where every integer below 2^24 is exact. Two TensorFlow settings break
that silently:

* **TensorFloat-32** (TF32): on NVIDIA Ampere and later GPUs TensorFlow runs
  float32 matmuls and convolutions with 10-bit mantissas by default
  (``tf.config.experimental.enable_tensor_float_32_execution``), so a product
  above 2^11 is rounded. tf_nvm's Keras side (`tf_nvm.keras.backend`, which every
  TensorFlow-using module imports: NVM layers, simulator) turns TF32 off for the
  process when it is imported; `require_float32` finds it re-enabled, turns it
  off again and warns (`TensorFloat32Warning`). On a CPU the switch changes nothing.
* **Mixed precision**: a global policy (``keras.mixed_precision.set_global_policy(
  "mixed_float16")`` or ``"mixed_bfloat16"``) or a layer built with a non-float32
  ``dtype`` computes in 16-bit floats (11 or 8 significant bits):
  `require_float32` raises `PrecisionError`.

`require_float32` is called by `tf_nvm.quantize_model`, `tf_nvm.experiments.train.train_model`
(NVM models), `tf_nvm.load_model` and by every NVM quantizer when its layer is
built, so an NVM layer made under another policy is refused too.
"""

import warnings
from typing import Any

from tf_nvm.keras.backend import keras, tf
from tf_nvm.core.errors import PrecisionError, TensorFloat32Warning

__all__ = ["require_float32", "check_layer_float32", "TF32_SETTING"]

TF32_SETTING = "tf.config.experimental.enable_tensor_float_32_execution"
"""TensorFlow's TF32 switch, named in every message."""

def _policy_name(policy: Any) -> str:
    return getattr(policy, "name", str(policy))


def _is_float32(policy: Any) -> bool:
    return getattr(policy, "compute_dtype", "float32") == "float32" and \
        getattr(policy, "variable_dtype", "float32") == "float32"


def check_layer_float32(layer: keras.layers.Layer, owner: str) -> None:
    """Raises `PrecisionError` when ``layer`` (or the layer a quantize wrapper holds) does not compute in float32.

    Args:
        layer: a tf_keras layer.
        owner: the function named in the message.
    """
    wrapped: Any = getattr(layer, "layer", None)  # the layer a quantize wrapper holds, or None
    for inner in (layer, wrapped):
        policy = getattr(inner, "dtype_policy", None)
        if policy is not None and not _is_float32(policy):
            raise PrecisionError(
                f"{owner}: layer {inner.name!r} ({type(inner).__name__}) has dtype policy {_policy_name(policy)!r} "
                f"(compute {policy.compute_dtype}, variables {policy.variable_dtype}); an NVM layer must compute in "
                "float32 (its outputs equal the TFLite export's only because integer codes and their sums below "
                "2^24 are exact in float32). Fix: build the layer with dtype='float32' (or no dtype) under "
                "keras.mixed_precision.set_global_policy('float32').")


def require_float32(owner: str, model: keras.Model | None = None) -> None:
    """Makes sure NVM arithmetic is exact float32: no mixed-precision policy, TF32 off.

    Args:
        owner: the function named in messages (e.g. ``"quantize_model"``).
        model: optional tf_keras model whose layers (nested models included) are checked too.

    Raises:
        PrecisionError: the global Keras dtype policy, or a layer of ``model``, does not compute in float32.

    Warns:
        TensorFloat32Warning: TF32 execution was enabled (``enable_tensor_float_32_execution(True)``);
            it is turned off before returning.
    """
    policy = keras.mixed_precision.global_policy()
    if not _is_float32(policy):
        raise PrecisionError(
            f"{owner}: the Keras global dtype policy is {_policy_name(policy)!r} (compute {policy.compute_dtype}, "
            f"variables {policy.variable_dtype}); NVM models compute in float32 only (their outputs equal the "
            "TFLite export's because integer codes and their sums below 2^24 are exact in float32, not in "
            "float16/bfloat16). Fix: call keras.mixed_precision.set_global_policy('float32') (tf_keras) before "
            "building, quantizing, training or loading an NVM model.")
    if model is not None:
        todo = list(model.layers)
        while todo:
            layer = todo.pop()
            check_layer_float32(layer, owner)
            todo.extend(getattr(layer, "layers", []) if isinstance(layer, keras.Model) else [])
    if tf.config.experimental.tensor_float_32_execution_enabled():
        tf.config.experimental.enable_tensor_float_32_execution(False)
        warnings.warn(
            f"{owner}: TensorFloat-32 execution was enabled ({TF32_SETTING}(True)); tf_nvm turned it off "
            f"({TF32_SETTING}(False)) for the rest of the process: on NVIDIA Ampere and later GPUs TF32 rounds "
            "float32 matmul and convolution inputs to 10-bit mantissas, and the NVM model would no longer match "
            "its TFLite export. Fix: do not re-enable TF32 while NVM models are built, trained or evaluated.",
            TensorFloat32Warning, stacklevel=3)
