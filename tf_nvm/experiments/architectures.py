"""The architecture registry (`ARCHITECTURES`) and the layer helpers its builders share.

`tf_nvm.experiments.models` (the module users import, also as ``tf_nvm.models``) re-exports the
registry with every builder registered; `tf_nvm.experiments.reference_models` holds the MLPerf Tiny
reference networks. Importing this module does not import TensorFlow (`lazy_keras` does, when a model
is built), so recipes can check architecture names without it.
"""

from collections.abc import Callable
from typing import Any

from tf_nvm.core.registry import Registry

__all__ = ["ARCHITECTURES", "register_architecture", "build", "lazy_keras", "both_signs", "crossbar_input"]

ARCHITECTURES = Registry("architecture", fix="use a registered architecture or register a builder with "
                                             "tf_nvm.experiments.models.register_architecture")
"""Architecture name -> builder (keyword arguments -> float tf_keras model)."""


def register_architecture(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: registers a model builder under its function name."""
    return ARCHITECTURES.register(fn)


def build(name: str, **kwargs: Any) -> Any:
    """Builds architecture ``name`` with keyword arguments ``kwargs`` (a float tf_keras model).

    Raises:
        UnknownNameError: unknown name (the message lists the known ones).
    """
    return ARCHITECTURES.get(name)(**kwargs)


def lazy_keras() -> Any:
    """The tf_keras module (`tf_nvm.keras.backend.keras`), imported when the first model is built."""
    from tf_nvm.keras.backend import keras  # noqa: PLC0415  (TensorFlow only when a model is built)

    return keras


def both_signs(x: Any, name: str) -> Any:
    """[x, -x] along channels: a unipolar crossbar fed both signs can subtract."""
    L = lazy_keras().layers
    return L.Concatenate(name=f"{name}_pm")([x, L.Rescaling(-1.0, name=f"{name}_neg")(x)])


def crossbar_input(x: Any, sign_split: bool, name: str) -> Any:
    """The input of a crossbar that reads a non-negative tensor (a ReLU output or its pooling): ``[x, -x]``
    when ``sign_split`` (a unipolar crossbar can then subtract), else ``x``."""
    return both_signs(x, name) if sign_split else x
