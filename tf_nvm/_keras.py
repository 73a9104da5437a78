"""The one place that decides which Keras tf_nvm talks to.

tfmot (tensorflow-model-optimization) works only with Keras 2, shipped as the
``tf_keras`` package. TensorFlow picks Keras 2 for ``tf.keras`` when the
environment variable ``TF_USE_LEGACY_KERAS=1`` is set *before* TensorFlow is
first imported. Importing this module sets it and checks that it took effect.
Every other module imports ``keras``, ``tf`` and ``tfmot`` from here.
"""

import os
import sys

from tf_nvm.errors import KerasModeError

__all__ = ["keras", "tf", "tfmot", "quantize_scope"]

import tf_nvm  # noqa: E402  (sets TF_USE_LEGACY_KERAS; records whether TensorFlow came first)

_TF_ALREADY_IMPORTED = tf_nvm._TF_IMPORTED_BEFORE or "tensorflow" in sys.modules  # pylint: disable=protected-access
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402


def _check_legacy_mode():
    version = getattr(tf.keras, "__version__", None) or getattr(tf.keras, "version", lambda: "")()
    if str(version).startswith("3."):
        raise KerasModeError(
            "tf_nvm needs TensorFlow in legacy-Keras (tf_keras, Keras 2) mode, but TensorFlow was "
            f"already imported with tf.keras = Keras {version} (environment variable "
            f"TF_USE_LEGACY_KERAS={os.environ.get('TF_USE_LEGACY_KERAS')!r}, tensorflow imported "
            f"before tf_nvm: {_TF_ALREADY_IMPORTED}). Fix: `import tf_nvm` before tensorflow, or set "
            "TF_USE_LEGACY_KERAS=1 in the environment before starting Python."
        )


_check_legacy_mode()

import tf_keras as keras  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402

quantize_scope = tfmot.quantization.keras.quantize_scope
