"""The module paths of tf_nvm 0.3 that moved in 0.4, still importable for one release.

tf_nvm 0.4 put its flat modules into sub-packages that show the layers:
``tf_nvm.core`` (foundations, no TensorFlow), ``tf_nvm.keras`` (the quantization side)
and ``tf_nvm.experiments`` (recipes, runs, training, data). An old path such as
``tf_nvm.spec`` is the same module object as its new home ``tf_nvm.core.spec``
(one import finder, no copies). The old paths of modules that are attributes of
``tf_nvm`` itself (``tf_nvm.layers``, ``tf_nvm.models``, ``tf_nvm.presets``,
``tf_nvm.preprocessing``, ``tf_nvm.errors``) stay without warning; every other old path
warns with a `DeprecationWarning` naming the new one. They go in 0.5.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__all__ = ["MOVED", "PUBLIC", "install"]

MOVED = {
    "tf_nvm._keras": "tf_nvm.keras.backend",
    "tf_nvm.atomic": "tf_nvm.core.atomic",
    "tf_nvm.bundled": "tf_nvm.core.bundled",
    "tf_nvm.constraints": "tf_nvm.keras.constraints",
    "tf_nvm.data": "tf_nvm.experiments.data",
    "tf_nvm.digital": "tf_nvm.keras.digital",
    "tf_nvm.errors": "tf_nvm.core.errors",
    "tf_nvm.fixed_point": "tf_nvm.keras.fixed_point",
    "tf_nvm.graph": "tf_nvm.keras.graph",
    "tf_nvm.grid": "tf_nvm.core.grid",
    "tf_nvm.layers": "tf_nvm.keras.layers",
    "tf_nvm.metrics": "tf_nvm.core.metrics",
    "tf_nvm.models": "tf_nvm.experiments.models",
    "tf_nvm.modes": "tf_nvm.core.modes",
    "tf_nvm.noise_presets": "tf_nvm.core.noise_presets",
    "tf_nvm.nvm_model": "tf_nvm.keras.nvm_model",
    "tf_nvm.outputs": "tf_nvm.core.outputs",
    "tf_nvm.plots": "tf_nvm.core.plots",
    "tf_nvm.precision": "tf_nvm.keras.precision",
    "tf_nvm.preprocessing": "tf_nvm.core.preprocessing",
    "tf_nvm.presets": "tf_nvm.core.presets",
    "tf_nvm.progress": "tf_nvm.experiments.progress",
    "tf_nvm.provenance": "tf_nvm.core.provenance",
    "tf_nvm.quantize": "tf_nvm.keras.quantize",
    "tf_nvm.quantize_configs": "tf_nvm.keras.quantize_configs",
    "tf_nvm.quantizers": "tf_nvm.keras.quantizers",
    "tf_nvm.quiet": "tf_nvm.core.quiet",
    "tf_nvm.recipes": "tf_nvm.experiments.recipes",
    "tf_nvm.registry": "tf_nvm.core.registry",
    "tf_nvm.runs": "tf_nvm.experiments.runs",
    "tf_nvm.safe_io": "tf_nvm.core.safe_io",
    "tf_nvm.scheme": "tf_nvm.keras.scheme",
    "tf_nvm.serialization": "tf_nvm.keras.serialization",
    "tf_nvm.sign_split": "tf_nvm.keras.sign_split",
    "tf_nvm.spec": "tf_nvm.core.spec",
    "tf_nvm.tables": "tf_nvm.core.tables",
    "tf_nvm.train": "tf_nvm.experiments.train",
}
"""Old dotted module path -> new dotted module path."""

PUBLIC = frozenset({"tf_nvm.layers", "tf_nvm.models", "tf_nvm.presets", "tf_nvm.preprocessing", "tf_nvm.errors"})
"""Old paths that are also attributes of ``tf_nvm`` (documented public names): no warning."""


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and loads it as its new home (the same module object)."""

    def __init__(self):
        self._specs = {}

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102  (importlib's protocol)
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):  # noqa: D102
        new = MOVED[spec.name]
        if spec.name not in PUBLIC:
            warnings.warn(f"{spec.name} moved to {new} in tf_nvm 0.4; the old path goes in 0.5. "
                          f"Fix: import {new}.", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._specs[new] = module.__spec__  # importlib sets the alias's spec on the module: put back in exec_module
        return module

    def exec_module(self, module):  # noqa: D102  (the new module ran when it was imported)
        module.__spec__ = self._specs.pop(module.__name__, module.__spec__)


def install():
    """Puts the alias finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
