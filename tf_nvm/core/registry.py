"""One generic registry: named entries with a description, looked up with a clear error.

Presets, architectures, layer rules, digital ops, data sets (and, later, noise
presets, technology descriptions and hypermodels) are each one `Registry`.
A new entry is one `register` call (or decorator); tests are generated over
``names()``.

Example:
    >>> ARCHITECTURES = Registry("architecture")
    >>> @ARCHITECTURES.register
    ... def tiny(): ...
    >>> ARCHITECTURES.names()
    ['tiny']

This module imports nothing from TensorFlow (foundation layer).
"""

import difflib
from typing import Any, Iterable, Iterator

from tf_nvm.core.errors import UnknownNameError

__all__ = ["Registry", "closest_name", "did_you_mean"]


def closest_name(name: Any, known: Iterable[Any]) -> str | None:
    """The known name closest to ``name`` (`difflib.get_close_matches`, similarity >= 0.6), or None.

    Args:
        name: the name received (anything; a non-string has no close name).
        known: the known names (iterable of str).
    """
    if not isinstance(name, str):
        return None
    matches = difflib.get_close_matches(name, [str(k) for k in known], n=1)
    return matches[0] if matches else None


def did_you_mean(name: Any, known: Iterable[Any]) -> str:
    """`` Did you mean 'x'?`` naming the closest known name (with its leading space), or ``""`` when none is close.

    Messages insert it after the sentence that names the unknown value:
    ``f"unknown recipe {name!r}.{did_you_mean(name, known)} Known: ..."``.
    """
    best = closest_name(name, known)
    return f" Did you mean {best!r}?" if best is not None else ""


class Registry:
    """Named entries of one kind, in registration order.

    Args:
        kind: what an entry is, for messages (``"preset"``, ``"architecture"``, ...).
        error: the `TfNvmError` subclass raised for an unknown name (default
            `UnknownNameError`); it must accept one message argument.
        fix: what the message of an unknown name suggests (default: "use one
            of the known names").
    """

    def __init__(self, kind: str, error: type[Exception] = UnknownNameError, fix: str | None = None):
        self.kind = kind
        self.error = error
        self.fix = fix
        self._entries: dict[str, Any] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, name_or_value: Any = None, value: Any = None, *, description: str | None = None,
                 replace: bool = False) -> Any:
        """Adds an entry; also usable as a decorator (``@reg.register`` or ``@reg.register("name")``).

        Args:
            name_or_value: the entry's name (str), or, used as a bare decorator,
                the value itself (registered under its ``__name__``).
            value: the entry (when ``name_or_value`` is a name).
            description: one line (default: the first line of the value's docstring).
            replace: allow replacing an existing entry of that name.

        Returns:
            the value (so the decorator leaves it unchanged).

        Raises:
            the registry's error: the name is taken (and ``replace`` is False) or not a string.
        """
        if name_or_value is not None and not isinstance(name_or_value, str):
            return self.register(name_or_value.__name__, name_or_value, description=description, replace=replace)
        name = name_or_value
        if value is None:
            def decorator(obj):
                return self.register(name or obj.__name__, obj, description=description, replace=replace)
            return decorator
        if not isinstance(name, str) or not name:
            raise self.error(f"{self.kind} name must be a non-empty string, got {name!r}.")
        if name in self._entries and not replace:
            raise self.error(f"{self.kind} {name!r} is already registered. Fix: choose another name, or pass "
                             "replace=True to replace it.")
        self._entries[name] = value
        doc = (getattr(value, "__doc__", None) or "").strip().splitlines()
        self._descriptions[name] = description if description is not None else (doc[0] if doc else "")
        return value

    def get(self, name: Any) -> Any:
        """The entry called ``name``.

        Raises:
            the registry's error (`UnknownNameError` by default): unknown name;
                the message lists the known names.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            fix = self.fix or f"use one of the known {self.kind} names"
            raise self.error(f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or '(none)'}."
                             f"{did_you_mean(name, self.names())} Fix: {fix}.") from None

    def resolve(self, value: Any, kind: type | tuple[type, ...]) -> Any:
        """``value`` itself when it is an instance of ``kind``, else the entry called ``value``.

        Raises:
            the registry's error: ``value`` is neither a ``kind`` nor a known name.
        """
        return value if isinstance(value, kind) else self.get(value)

    def names(self) -> list[str]:
        """Entry names, sorted (list of str)."""
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """{name: one-line description}, sorted by name."""
        return {name: self._descriptions[name] for name in self.names()}

    def items(self) -> list[tuple[str, Any]]:
        """(name, entry) pairs, sorted by name."""
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
