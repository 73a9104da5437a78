"""The one validator of tf_nvm's configs and file formats: declarative `Field` specs, numpy-free.

Every config (`NVMSpec`, `SimulationConfig`, `Technology`, recipes, search configs, experiment recipes)
and the mapping file check their values with the rules here:

- types: ``"int"`` is a Python int and not a bool (``True`` is not 1); ``"number"`` is an int or float, not a
  bool, and finite; ``"str"``, ``"bool"``, ``"list"``, ``"object"`` (a dict) and ``"any"``;
- ranges (``minimum``/``maximum``, ``exclusive_minimum``), choices, null (``nullable``);
- unknown keys of an object (refused unless ``extra``), with a did-you-mean;
- nested objects (``fields``) and lists (``items``).

A failed check raises the caller's tf_nvm error class with the house message: the file or argument
(``where``), the JSON path of the field, what was received, what is allowed and ``Fix: ...``. Callers whose
messages are pinned in their own words pass ``message=`` (a function of the `Problem`). The same `Field`
definitions give a JSON Schema (`json_schema`, draft 2020-12), so a file format and its schema cannot drift.

`parse_override` is the one ``key=value`` parser of the command line (``--set``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tf_nvm.core.registry import did_you_mean
from tf_nvm.core.safe_io import loads_json

__all__ = ["Field", "Problem", "KINDS", "MISSING", "is_kind", "short", "problem_of", "find_problem", "check",
           "validate",
           "check_keys", "json_schema", "parse_override"]

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""Default of a `Field` that has none (a required field)."""

KINDS = ("int", "number", "str", "bool", "list", "object", "any")
"""The value kinds a `Field` can require."""

_JSON_TYPES = {"int": "integer", "number": "number", "str": "string", "bool": "boolean", "list": "array",
               "object": "object"}


def _finite(value: Any) -> bool:
    """Whether a number is finite as a float (an integer of 400 digits is not: float() overflows)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def is_kind(value: Any, kind: str) -> bool:
    """Whether ``value`` is of ``kind`` (one of `KINDS`): bools are never ints or numbers; numbers are finite."""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (for messages)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a config or file format.

    Attributes:
        name: the key in the JSON object (or the dataclass field name).
        kind: one of `KINDS`.
        required: the key must be present (else ``default`` is used).
        default: the value of an absent optional key.
        nullable: ``None`` (JSON null) is also allowed.
        minimum: lowest allowed number (inclusive unless ``exclusive_minimum``).
        maximum: highest allowed number (inclusive).
        exclusive_minimum: ``minimum`` itself is not allowed (``> minimum``).
        choices: the allowed values (strings or numbers).
        min_length: fewest characters of a ``"str"`` or items of a ``"list"``.
        items: the spec of every item of a ``"list"`` (its ``name`` is unused).
        fields: the specs of the keys of an ``"object"``.
        extra: an ``"object"`` may hold keys not in ``fields`` (ignored unless ``values``).
        values: the spec of the values of an ``"object"`` used as a dict of names (every key allowed).
        one_of: alternative specs of an ``"object"`` (e.g. by its ``kind``): the value must satisfy one;
            ``fields`` are then the keys common to all.
        allowed: what is allowed, in words, for messages (default: derived from the rules).
        doc: what the field means, with units (the JSON Schema's description).
    """

    name: str
    kind: str = "any"
    required: bool = True
    default: Any = MISSING
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[Any, ...] | None = None
    min_length: int | None = None
    items: Field | None = None
    fields: tuple[Field, ...] | None = None
    extra: bool = False
    values: Field | None = None
    one_of: tuple[Field, ...] | None = None
    allowed: str | None = None
    doc: str = ""

    def describe(self) -> str:
        """What the field allows, in words (``"an integer in 1..7"``, ``"one of ['a', 'b']"``)."""
        if self.allowed is not None:
            return self.allowed
        if self.choices is not None:
            text = f"one of {list(self.choices)}"
        else:
            text = {"int": "an integer", "number": "a finite number", "str": "a string", "bool": "true or false",
                    "list": "a list", "object": "an object", "any": "any value"}[self.kind]
            if self.minimum is not None and self.maximum is not None and not self.exclusive_minimum:
                text += f" in {self.minimum}..{self.maximum}"
            elif self.minimum is not None:
                text += f" {'>' if self.exclusive_minimum else '>='} {self.minimum}"
                if self.maximum is not None:
                    text += f" and <= {self.maximum}"
            elif self.maximum is not None:
                text += f" <= {self.maximum}"
        return text + (" or null" if self.nullable else "")


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why a value failed its `Field`.

    Attributes:
        path: the JSON path of the value (``"layers[2].geometry.rows"``).
        value: what was received.
        field: the `Field` it failed.
        reason: ``"type"``, ``"range"``, ``"choice"``, ``"missing"`` or ``"unknown"`` (then ``value`` is the
            sorted list of unknown keys).
        detail: the house sentence (``"expected int, got 1.5"``).
    """

    path: str
    value: Any
    field: Field
    reason: str
    detail: str


def problem_of(value: Any, field: Field, path: str) -> Problem | None:
    """The first `Problem` of ``value`` against ``field`` (not descending into nested fields), or None."""
    if value is None and field.nullable:
        return None
    if not is_kind(value, field.kind):
        kind = field.kind + (" or null" if field.nullable else "")
        return Problem(path, value, field, "type", f"expected {kind}, got {short(value)}")
    if field.min_length is not None and len(value) < field.min_length:
        return Problem(path, value, field, "range", f"value {short(value)} is shorter than {field.min_length}")
    if field.minimum is not None and (value <= field.minimum if field.exclusive_minimum else value < field.minimum):
        below = "is not above" if field.exclusive_minimum else "is below"
        return Problem(path, value, field, "range", f"value {short(value)} {below} the minimum {field.minimum}")
    if field.maximum is not None and value > field.maximum:
        return Problem(path, value, field, "range", f"value {short(value)} is above the maximum {field.maximum}")
    if field.choices is not None and value not in field.choices:
        return Problem(path, value, field, "choice",
                       f"value {short(value)} is not allowed; allowed: {field.describe()}")
    return None


def find_problem(value: Any, field: Field, path: str) -> Problem | None:
    """The first `Problem` of ``value`` against ``field``, nested fields and list items included, or None."""
    found = problem_of(value, field, path)
    if found is not None or value is None:
        return found
    if field.kind == "list" and field.items is not None:
        for i, item in enumerate(value):
            found = find_problem(item, field.items, f"{path}[{i}]")
            if found is not None:
                return found
    if field.kind == "object" and field.values is not None:
        for key, item in value.items():
            found = find_problem(item, field.values, f"{path}.{key}")
            if found is not None:
                return found
    if field.kind == "object" and field.one_of is not None:
        return _one_of_problem(value, field, path)
    if field.kind == "object" and field.fields is not None:
        names = [f.name for f in field.fields]
        unknown = [] if field.extra else sorted((key for key in value if key not in names), key=str)
        if unknown:
            return Problem(f"{path}.{unknown[0]}", unknown, field, "unknown",
                           f"unknown field(s) {unknown}; allowed: {sorted(names)}")
        for sub in field.fields:
            if sub.name not in value:
                if sub.required:
                    return Problem(f"{path}.{sub.name}", MISSING, sub, "missing", "is missing")
                continue
            found = find_problem(value[sub.name], sub, f"{path}.{sub.name}")
            if found is not None:
                return found
    return None


def _one_of_problem(value: dict, field: Field, path: str) -> Problem | None:
    """None if ``value`` satisfies one of ``field.one_of``; else the problem of the first alternative whose
    single-choice keys (its discriminator, e.g. ``kind``) match, or of the common ``fields``."""
    problems = []
    for option in field.one_of or ():
        found = find_problem(value, option, path)
        if found is None:
            return None
        keyed = [f for f in option.fields or () if f.choices is not None and len(f.choices) == 1]
        if all(value.get(f.name) == f.choices[0] for f in keyed):  # type: ignore[index]
            problems.append(found)
    if problems:
        return problems[0]
    return find_problem(value, dataclasses.replace(field, one_of=None), path)


MessageFn = Callable[[Problem], str]


def _raise(problem: Problem, where: str, error: type[Exception], fix: str, message: MessageFn | None) -> None:
    if message is not None:
        raise error(message(problem))
    raise error(f"{where}: field {problem.path}: {problem.detail}. Fix: {fix}.")


def check(value: Any, field: Field, *, where: str, error: type[Exception], fix: str, path: str | None = None,
          message: MessageFn | None = None) -> Any:
    """Returns ``value`` if it satisfies ``field`` (nested fields and items included), else raises ``error``.

    Args:
        value: what was received.
        field: its spec.
        where: the file or argument (first words of the message).
        error: the tf_nvm error class raised.
        fix: the fix sentence, without ``"Fix: "`` and the final period.
        path: the JSON path of the value (default: the field name).
        message: builds the message from the `Problem` (default: the house form
            ``"{where}: field {path}: {detail}. Fix: {fix}."``).

    Returns:
        ``value`` (an object field: a new dict with the defaults of absent optional keys).

    Raises:
        error: the first problem found.
    """
    path = field.name if path is None else path
    found = problem_of(value, field, path)
    if found is not None:
        _raise(found, where, error, fix, message)
    if value is None:
        return None
    if field.kind == "object" and (field.one_of is not None or field.values is not None):
        found = find_problem(value, field, path)
        if found is not None:
            _raise(found, where, error, fix, message)
        return value
    if field.kind == "list" and field.items is not None:
        return [check(item, field.items, where=where, error=error, fix=fix, path=f"{path}[{i}]", message=message)
                for i, item in enumerate(value)]
    if field.kind == "object" and field.fields is not None:
        return validate(value, field.fields, where=where, error=error, fix=fix, path=path, extra=field.extra,
                        message=message)
    return value


def check_keys(data: dict, known: Iterable[str], *, where: str, error: type[Exception], fix: str, path: str = "",
               message: MessageFn | None = None) -> None:
    """Raises ``error`` naming the first unknown key of ``data`` (sorted), with a did-you-mean among ``known``."""
    known = list(known)
    unknown = sorted((key for key in data if key not in known), key=str)
    if not unknown:
        return
    key = unknown[0]
    hint = did_you_mean(key, known) if isinstance(key, str) else ""
    detail = f"unknown field(s) {unknown}; allowed: {sorted(known)}.{hint}".rstrip(".")
    _raise(Problem(f"{path}.{key}" if path else str(key), unknown, Field(str(key)), "unknown", detail),
           where, error, fix, message)


def validate(data: Any, fields: Sequence[Field], *, where: str, error: type[Exception], fix: str, path: str = "",
             extra: bool = False, message: MessageFn | None = None) -> dict:
    """Checks a JSON object against ``fields``; returns a dict of every field (defaults filled in).

    Unknown keys are refused unless ``extra`` (then ignored and not returned). Keys are checked in the
    order of ``fields``.

    Raises:
        error: not an object, an unknown key, a missing required key, or a value that fails its field.
    """
    if not isinstance(data, dict):
        _raise(Problem(path or "<root>", data, Field(path, "object"), "type", f"expected an object, got {short(data)}"),
               where, error, fix, message)
    if not extra:
        check_keys(data, (f.name for f in fields), where=where, error=error, fix=fix, path=path, message=message)
    out = {}
    for field in fields:
        sub = f"{path}.{field.name}" if path else field.name
        if field.name not in data:
            if field.required:
                _raise(Problem(sub, MISSING, field, "missing", "is missing"), where, error, fix, message)
            out[field.name] = field.default
            continue
        out[field.name] = check(data[field.name], field, where=where, error=error, fix=fix, path=sub,
                                message=message)
    return out


def json_schema(field: Field) -> dict:
    """The JSON Schema (draft 2020-12 keywords) of ``field``, nested fields and items included."""
    schema: dict[str, Any] = {}
    if field.doc:
        schema["description"] = field.doc
    if field.kind != "any":
        json_type = _JSON_TYPES[field.kind]
        schema["type"] = [json_type, "null"] if field.nullable else json_type
    if field.choices is not None:
        schema["enum"] = list(field.choices) + ([None] if field.nullable else [])
    if field.minimum is not None:
        schema["exclusiveMinimum" if field.exclusive_minimum else "minimum"] = field.minimum
    if field.maximum is not None:
        schema["maximum"] = field.maximum
    if field.min_length is not None:
        schema["minLength" if field.kind == "str" else "minItems"] = field.min_length
    if field.kind == "list" and field.items is not None:
        schema["items"] = json_schema(field.items)
    if field.kind == "object" and field.one_of is not None:
        schema["oneOf"] = [json_schema(option) for option in field.one_of]
    elif field.kind == "object" and field.fields is not None:
        schema["properties"] = {f.name: json_schema(f) for f in field.fields}
        schema["required"] = [f.name for f in field.fields if f.required]
        schema["additionalProperties"] = field.extra
    if field.kind == "object" and field.values is not None:
        schema["additionalProperties"] = json_schema(field.values)
    return schema


def parse_override(text: Any, *, error: type[Exception], example: str, owner: str = "",
                   convert: Callable[[str, str], Any] | None = None) -> tuple[str, Any]:
    """The one ``key=value`` parser of the command line: ``"adc.bits=6"`` -> ``("adc.bits", 6)``.

    Args:
        text: the setting as typed.
        error: the tf_nvm error class raised.
        example: a valid setting for the ``Fix: e.g. --set ...`` sentence.
        owner: who asks, prefixed to the message (``"tf-nvm simulate: "``).
        convert: ``convert(raw value, text)`` -> value (default: JSON, a plain word kept as a string).

    Returns:
        (key stripped of spaces, converted value).

    Raises:
        error: no ``=`` in ``text`` (or whatever ``convert`` raises).
    """
    if not isinstance(text, str) or "=" not in text:
        raise error(f"{owner}setting {text!r} is not KEY=VALUE. Fix: e.g. --set {example}.")
    key, raw = text.split("=", 1)
    if convert is not None:
        return key.strip(), convert(raw, text)
    return key.strip(), loads_json(raw.strip(), where=f"setting {text[:80]!r}", error=error, text_fallback=True,
                                   fix=f"Fix: give a JSON number, list or string, e.g. --set {example}.")
