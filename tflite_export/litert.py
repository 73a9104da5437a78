"""Run an exported ``.tflite`` in LiteRT (``ai_edge_litert``), with any of its three op resolvers."""

import numpy as np

from tf_nvm.core.errors import ExportError
from tf_nvm.core.quiet import native_output_silenced
from tflite_export.flatbuffer import ModelSource, read_model_bytes
from tflite_export.tflm import require_package

__all__ = ["run_litert", "require_litert", "LITERT_RESOLVERS"]

LITERT_RESOLVERS = ("default", "builtin", "reference")
"""`run_litert`'s resolver names."""


def require_litert() -> None:
    """Raises `ExportError` with the install command when LiteRT (``ai_edge_litert``) is missing."""
    require_package("ai_edge_litert", "LiteRT (the Python package ai-edge-litert)", "compare without it")


def run_litert(content: ModelSource, x_q: np.ndarray, resolver: str = "default") -> np.ndarray:
    """Runs the model in LiteRT (``ai_edge_litert``), one example per invoke.

    Args:
        content: .tflite bytes or path.
        x_q: int8 inputs (examples first).
        resolver: ``"default"`` (XNNPACK delegate, the path deployments use),
            ``"builtin"`` (optimized builtin kernels, no delegate) or
            ``"reference"`` (reference kernels, like TFLite Micro).

    Returns:
        int8 outputs, examples first.
    """
    require_litert()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: PLC0415  (optional package, lazy)

    kinds = {"default": OpResolverType.AUTO, "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
             "reference": OpResolverType.BUILTIN_REF}
    if resolver not in kinds:
        raise ExportError(f"run_litert: resolver must be one of {list(kinds)}, got {resolver!r}. Fix: pass one of "
                          "those names.")
    with native_output_silenced():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter = Interpreter(model_content=read_model_bytes(content),
                                  experimental_op_resolver_type=kinds[resolver])
        interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    results = []
    for i in range(len(x_q)):
        interpreter.set_tensor(inp, x_q[i:i + 1])
        interpreter.invoke()
        results.append(interpreter.get_tensor(out)[0].copy())
    return np.stack(results)

