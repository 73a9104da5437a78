"""The one JSON reader of tf_nvm: bounded size, depth and numbers, every failure a named tf_nvm error.

Part of :mod:`tf_nvm.core.safe_io` (which re-exports every public name here and
documents the limits). Every JSON file and JSON text the product reads goes
through :func:`read_json` / :func:`loads_json` (a test greps the sources for any
other ``json.load``). Nothing here imports TensorFlow.
"""

import json
import math
import os
from typing import Any, Callable

from tf_nvm.core.errors import CorruptDatasetError
from tf_nvm.core.safe_read import DEFAULT_FIX, MIB, read_bytes

__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_JSON_INT", "MAX_JSON_FLOAT", "loads_json", "read_json",
           "json_plain"]

MAX_JSON_BYTES = 64 * MIB
MAX_JSON_DEPTH = 64
MAX_JSON_INT = 2 ** 63 - 1
MAX_JSON_FLOAT = 1e300


class _JsonRefused(Exception):
    """A number or constant a parse hook refused (internal: turned into the caller's error)."""


def _parse_int(text):
    # Python refuses more than 4,300 digits itself (ValueError); 20 digits already exceed int64.
    if len(text.lstrip("-")) > 19 or abs(int(text)) > MAX_JSON_INT:
        raise _JsonRefused(f"the integer {text[:30]}{'...' if len(text) > 30 else ''} ({len(text)} characters) is "
                           f"beyond +-{MAX_JSON_INT} (2**63 - 1), the largest integer allowed")
    return int(text)


def _parse_float(text):
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_JSON_FLOAT:
        raise _JsonRefused(f"the number {text[:30]}{'...' if len(text) > 30 else ''} is beyond +-{MAX_JSON_FLOAT:g}, "
                           "the largest magnitude allowed")
    return value


def _parse_constant(name):
    raise ValueError(f"{name} is not a JSON number; NaN and Infinity are not allowed")  # reported as invalid JSON


def _json_place(link):
    """``$.a[0].b`` from the (parent, key) chain `_check_tree` keeps (built only for a message)."""
    parts = []
    while link is not None:
        link, key = link
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}"[:60])
    place = "$" + "".join(reversed(parts))
    return place if len(place) <= 160 else place[:150] + "..."


def _check_tree(value, max_depth):
    """Walks a parsed document without recursion; returns a reason string when it is refused, else None."""
    stack = [(value, 0, None)]  # (node, depth of its container nesting, (parent link, key) or None)
    while stack:
        node, depth, link = stack.pop()
        if isinstance(node, str):
            if not node.isascii():
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError:
                    return (f"the string {node[:40]!r} at {_json_place(link)} holds a lone UTF-16 surrogate "
                            "(\\ud800-\\udfff); strings must be valid Unicode text")
            continue
        if isinstance(node, (dict, list)):
            if depth >= max_depth:
                return (f"arrays and objects nest deeper than {max_depth} levels at {_json_place(link)}; at most "
                        f"{max_depth} are allowed")
            if isinstance(node, dict):
                stack.extend((key, depth, link) for key in node)
                stack.extend((item, depth + 1, (link, key)) for key, item in node.items())
            else:
                stack.extend((item, depth + 1, (link, i)) for i, item in enumerate(node))
    return None


def loads_json(text: str | bytes | bytearray | memoryview, *, where: str = "JSON text",
               max_depth: int = MAX_JSON_DEPTH, error: type[Exception] = CorruptDatasetError, fix: str = DEFAULT_FIX,
               object_only: bool = False, text_fallback: bool = False) -> Any:
    """Parses JSON text that may be hostile, into plain Python values, with bounded time and depth.

    Refused, each with a named ``error`` (never ``RecursionError``, ``OverflowError``
    or ``UnicodeDecodeError``): bytes that are not UTF-8; text that is not JSON;
    ``NaN``/``Infinity`` (Python's json module would accept them); integers beyond
    +-(2**63 - 1) (:data:`MAX_JSON_INT`, e.g. 400 digits) and real numbers beyond
    +-1e300 (:data:`MAX_JSON_FLOAT`; ``1e400`` would become infinity); arrays and
    objects nested deeper than ``max_depth`` (checked without recursion after the
    parse, and a parse that hits Python's recursion limit, about 1,000 levels,
    stops there in well under a second); strings holding lone surrogates (they
    cannot be written back as UTF-8 or used as file names).

    Args:
        text: the JSON document (str, or bytes decoded as UTF-8).
        where: what the text is, for messages (e.g. ``"search config 'cfg.json'"``).
        max_depth: deepest allowed nesting of arrays and objects (a scalar document is depth 0).
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.
        object_only: also require the document to be a JSON object.
        text_fallback: return ``text`` itself when it is not JSON at all (a command-line
            value such as ``--set name=fast``); valid JSON that is refused (too deep,
            a number out of range) still raises.

    Returns:
        The parsed value (dict, list, str, int, float, bool or None).

    Raises:
        error: any of the cases above.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(f"{where} is not UTF-8 text (byte {err.start}: {err.reason}); JSON files are UTF-8. "
                        f"{fix}") from None
    if not isinstance(text, str):
        raise error(f"{where}: expected JSON text, got a {type(text).__name__}. {fix}")
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except RecursionError:
        raise error(f"{where} nests arrays and objects deeper than Python's JSON parser allows (about 1,000 "
                    f"levels); at most {max_depth} are allowed. {fix}") from None
    except _JsonRefused as err:
        raise error(f"{where} is refused: {err}. {fix}") from None
    except (ValueError, OverflowError) as err:
        if text_fallback and not str(err).startswith(("NaN ", "Infinity ", "-Infinity ")):
            return text
        raise error(f"{where} is not valid JSON ({str(err)[:200]}). {fix}") from None
    reason = _check_tree(value, max_depth)
    if reason is not None:
        raise error(f"{where} is refused: {reason}. {fix}")
    if object_only and not isinstance(value, dict):
        raise error(f"{where} holds a JSON {type(value).__name__}; expected a JSON object ({{...}}). {fix}")
    return value


def read_json(path: str | os.PathLike[str], *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH,
              what: str = "JSON file", error: type[Exception] = CorruptDatasetError, fix: str = DEFAULT_FIX,
              object_only: bool = False) -> Any:
    """Reads a JSON file that may be hostile: a bounded read (:func:`read_bytes`), then :func:`loads_json`.

    Args:
        path: the file (a regular file: FIFOs, devices and directories are refused unopened).
        max_bytes: largest file read [bytes] (default :data:`MAX_JSON_BYTES`, 64 MiB).
        max_depth: deepest nesting of arrays and objects allowed.
        what: what the file is, for messages (``"technology file"``, ``"search config"`` ...).
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.
        object_only: also require the document to be a JSON object.

    Returns:
        The parsed value.

    Raises:
        error: missing or not a regular file, larger than ``max_bytes``, unreadable,
            or refused by :func:`loads_json` (the message names ``what`` and the path).
    """
    where = f"{what} {os.fspath(path)}"
    try:
        data = read_bytes(path, max_bytes=max_bytes, error=error, fix=fix)
    except error as err:
        # read_bytes names the path alone; say what the file is too.
        raise error(f"{what} {err}") from None
    return loads_json(data, where=where, max_depth=max_depth, error=error, fix=fix, object_only=object_only)


def json_plain(value: Any, *, default: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as a JSON round trip gives it back (tuples become lists, keys strings), for the product's own data.

    Not a reader of outside input (use :func:`loads_json`): it copies values the
    product built itself, so that what is compared or stored equals what a JSON
    file later returns.

    Args:
        value: JSON-serialisable value.
        default: ``json.dumps``'s hook for other objects (e.g. numpy scalars).

    Returns:
        The copied value.
    """
    return json.loads(json.dumps(value, default=default))
