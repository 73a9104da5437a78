"""Named `NVMSpec` presets: the paper's four device settings and friends.

`PRESETS` is a `tf_nvm.core.registry.Registry` (defined with the paper's four presets in
`tf_nvm.core.spec`, so that `resolve_spec` reads it without importing this module); `get`, `names` and
`describe` read it.

Example:
    >>> from tf_nvm import presets
    >>> presets.get("paper-2bit-unipolar").code_max
    3
"""

from tf_nvm.core.spec import PRESETS, NVMSpec

__all__ = ["PRESETS", "get", "names", "describe", "register_preset"]

def register_preset(name: str, spec: NVMSpec, description: str) -> None:
    """Adds a named preset.

    Args:
        name: preset name (str, unique).
        spec: the `NVMSpec`.
        description: one line saying what the preset models.

    Raises:
        UnknownNameError: the name is taken.
    """
    PRESETS.register(name, spec, description=description)


def get(name: str | NVMSpec) -> NVMSpec:
    """Returns the `NVMSpec` of preset ``name`` (an `NVMSpec` is returned unchanged).

    Raises:
        UnknownNameError: unknown name (the message lists the known ones).
    """
    return PRESETS.resolve(name, NVMSpec)


def names() -> list[str]:
    """Returns the sorted list of preset names."""
    return PRESETS.names()


def describe() -> dict[str, str]:
    """Returns {name: description}."""
    return PRESETS.describe()
