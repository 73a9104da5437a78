"""Keras serialisation of tf_nvm objects: one decorator, no hand-kept list.

Decorate a layer, quantizer, QuantizeConfig, constraint or initializer with
:func:`register`; it is then registered with Keras under the package name
``tf_nvm`` and listed by :func:`custom_objects`, which `load_model` and the
quantize scope use.
"""

import importlib
from typing import TypeVar

from tf_nvm.keras.backend import keras

__all__ = ["register", "add_custom_object", "custom_objects", "registered_classes", "PACKAGE"]

PACKAGE = "tf_nvm"
_C = TypeVar("_C", bound=type)
_OBJECTS: dict[str, type] = {}
_DEFINING_MODULES = ("tf_nvm.keras.quantizers", "tf_nvm.keras.quantize_configs", "tf_nvm.keras.constraints",
                     "tf_nvm.keras.digital", "tf_nvm.keras.layers")
"""The modules whose classes are registered here: imported before the registry is read, so that
`custom_objects` (and `tf_nvm.load_model`) know every class even in a process that imported none of them."""


def _import_all() -> None:
    for name in _DEFINING_MODULES:
        importlib.import_module(name)


def register(cls: _C) -> _C:
    """Class decorator: registers ``cls`` with Keras and with :func:`custom_objects`.

    Args:
        cls: a class with ``get_config``/``from_config``.

    Returns:
        ``cls`` itself.
    """
    keras.utils.register_keras_serializable(package=PACKAGE)(cls)
    _OBJECTS[cls.__name__] = cls
    _OBJECTS[f"{PACKAGE}>{cls.__name__}"] = cls
    return cls


def add_custom_object(cls: _C) -> _C:
    """Lists a user's class (e.g. one given to `tf_nvm.keras.quantize_configs.register_layer`) in `custom_objects`.

    Registered under its plain name and its Keras-registered name; not under the ``tf_nvm`` package.
    """
    _OBJECTS[cls.__name__] = cls
    _OBJECTS[keras.utils.get_registered_name(cls)] = cls
    return cls


def custom_objects() -> dict[str, type]:
    """Returns a new dict of every registered object, keyed by plain and packaged name.

    Returns:
        dict mapping names (``"NVMDense"`` and ``"tf_nvm>NVMDense"``) to classes.
    """
    _import_all()
    return dict(_OBJECTS)


def registered_classes() -> list[type]:
    """The registered classes, one entry each, sorted by name (for tests generated over them)."""
    _import_all()
    return [_OBJECTS[name] for name in sorted(_OBJECTS) if ">" not in name]
