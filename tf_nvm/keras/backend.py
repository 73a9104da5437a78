"""The one place that decides which Keras tf_nvm talks to.

tfmot (tensorflow-model-optimization) works only with Keras 2, shipped as the
``tf_keras`` package. TensorFlow picks Keras 2 for ``tf.keras`` when the
environment variable ``TF_USE_LEGACY_KERAS=1`` is set *before* TensorFlow is
first imported. Importing this module sets it and checks that it took effect.
Every other module imports ``keras``, ``tf`` and ``tfmot`` from here.
"""

import contextlib
import os
import sys
from typing import Any, Iterator

from tf_nvm.core import quiet
from tf_nvm.core.errors import KerasModeError

__all__ = [
    "keras",
    "tf",
    "tfmot",
    "quantize_scope",
    "QuantizeLayer",
    "QuantizeWrapper",
    "QuantizeWrapperV2",
    "Quantizer",
    "QuantizeConfig",
    "model_transformer",
    "transforms",
    "serialize_layer",
    "unique_object_name",
    "wrapper_weight_variables",
    "wrapper_output_quantizers",
    "is_functional",
    "keras_api_symbol",
    "smart_cond",
    "QUIET_ENV",
]

import tf_nvm  # noqa: E402  (sets TF_USE_LEGACY_KERAS; records whether TensorFlow came first)

# getattr: the facade imports this module back when TensorFlow came first, and mypy cannot type that attribute.
_TF_IMPORTED_BEFORE: bool = getattr(tf_nvm, "_TF_IMPORTED_BEFORE")
"""Whether TensorFlow was imported before tf_nvm (recorded by the ``tf_nvm`` facade, for `KerasModeError`)."""
_TF_ALREADY_IMPORTED = _TF_IMPORTED_BEFORE or "tensorflow" in sys.modules
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

QUIET_ENV = quiet.QUIET_ENV
"""``1`` (the ``tf-nvm`` command's default) silences TensorFlow's start-up output, ``0`` shows it;
see `tf_nvm.core.quiet`."""


@contextlib.contextmanager
def _start_up_output_silenced(active: bool) -> Iterator[None]:
    """Sends file descriptor 2 to /dev/null while TensorFlow starts (its C++ and absl lines bypass Python)."""
    if not active:
        yield
        return
    quiet.quiet_tensorflow_log_level()  # the cuInit error comes later, at device discovery: filtered by level 3
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_QUIET = quiet.wanted()  # silenced unless TF_NVM_VERBOSE=1, tf-nvm --verbose or TF_CPP_MIN_LOG_LEVEL=0
if not _QUIET:
    quiet.restore_tensorflow_log_level()  # `import tf_nvm` set level 3 before the command asked for --verbose
with _start_up_output_silenced(_QUIET):
    try:
        import tensorflow as tf  # noqa: E402
    except ModuleNotFoundError as error:  # the light install (tf-nvm[mapping]): core, mapping and cost only
        raise KerasModeError(
            f"tf_nvm's Keras side (tf_nvm.keras, training, export, simulation) needs TensorFlow, but it is not "
            f"installed in {sys.prefix} ({error}). Allowed without it: tf_nvm.core, tf_nvm.mapping, tf_nvm.cost. "
            'Fix: pip install "tf-nvm[tensorflow]" (from a checkout: pip install -e ".[tensorflow]").') from error
    if _QUIET:
        tf.config.list_physical_devices()  # discover devices now, while silenced (CUDA messages on CPU machines)
        tf.get_logger().setLevel("ERROR")


def _check_legacy_mode() -> None:
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
# Exact float32 for every TensorFlow computation of tf_nvm (Keras NVM layers, simulator): TensorFloat-32 off
# (on by default on NVIDIA Ampere+ GPUs, no effect on CPU); `tf_nvm.keras.precision` checks it where models are built.
tf.config.experimental.enable_tensor_float_32_execution(False)

import tf_keras as keras  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402

# Every touch of a tfmot or Keras internal lives below this line (nowhere else in tf_nvm).
from tensorflow_model_optimization.python.core.keras.compat import unique_object_name  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras import utils as _tfmot_utils  # noqa: E402
# The tfmot base classes tf_nvm subclasses, imported by name (not assigned from attributes) so that type
# checkers take them as classes.
from tensorflow_model_optimization.python.core.quantization.keras.quantize_config import QuantizeConfig  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.quantize_wrapper import (  # noqa: E402
    QuantizeWrapper, QuantizeWrapperV2)
from tensorflow_model_optimization.python.core.quantization.keras.quantizers import Quantizer  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations import (  # noqa: E402
    model_transformer, transforms)
from tensorflow.python.util import tf_export as _tf_export  # noqa: E402  (the registry tf_keras resolves names in)

quantize_scope = tfmot.quantization.keras.quantize_scope
smart_cond = tf.__internal__.smart_cond.smart_cond


def serialize_layer(layer: keras.layers.Layer) -> dict[str, Any]:
    """tfmot's legacy-format layer config (what its graph transforms expect)."""
    return _tfmot_utils.serialize_layer(layer, use_legacy_format=True)


def wrapper_weight_variables(wrapper: QuantizeWrapper) -> list[tf.Variable]:
    """The float variables a tfmot QuantizeWrapper quantizes, in config order (kernel, then bias)."""
    return [weight for weight, _, _ in wrapper._weight_vars]  # pylint: disable=protected-access


def wrapper_output_quantizers(wrapper: QuantizeWrapper) -> list[Quantizer]:
    """The output quantizers of a built tfmot QuantizeWrapper (empty list when none)."""
    return list(getattr(wrapper, "_output_quantizers", None) or [])


def is_functional(model: Any) -> bool:
    """True for a tf_keras Functional (graph-network) model, Sequential included."""
    return isinstance(model, keras.Sequential) or bool(getattr(model, "_is_graph_network", False))


def keras_api_symbol(name: str) -> Any:
    """The object Keras's public API exports as ``name`` (e.g. ``"keras.layers.Dense"``), or None; imports nothing."""
    return _tf_export.get_symbol_from_name(name)
