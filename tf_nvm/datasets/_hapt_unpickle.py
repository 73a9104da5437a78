"""The allow-list unpickler of ``HAPT.pkl.gz`` and the rebuild of its DataFrames as plain numpy arrays.

:class:`RestrictedHAPTUnpickler` resolves exactly the globals that file uses and
maps the pandas classes to small stand-ins that only record their state (pandas
is never imported); numpy arrays are checked (dtype, shape, at most
:data:`~tf_nvm.datasets._hapt_scan.MAX_ARRAY_ELEMENTS` elements, data length)
before numpy builds them. :func:`read_hapt_pickle` reads the file (bounded),
runs :func:`~tf_nvm.datasets._hapt_scan.scan_pickle` on it, unpickles it and
rebuilds one dict of arrays per recording from the ``BlockManager`` state.
"""

import io
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from tf_nvm.core.errors import CorruptDatasetError
from tf_nvm.core.safe_npz import MAX_NPY_DIMS
from tf_nvm.core.safe_read import read_maybe_gzip
from tf_nvm.datasets._hapt_scan import HAPT_FIX, MAX_ARRAY_ELEMENTS, MAX_PICKLE_BYTES, describe, scan_pickle

__all__ = ["RestrictedHAPTUnpickler", "read_hapt_pickle"]

_COLUMNS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "sequence", "label")


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
                                  f"build arrays. {HAPT_FIX}")


class _Dtype:
    """Stand-in for ``numpy.dtype(code, align, copy)`` whose ``__setstate__`` is checked before numpy sees it."""

    def __init__(self, code, align=False, copy=False):
        if (not isinstance(code, str) or code not in _DTYPE_CODES
                or type(align) not in (bool, int) or align not in (0, 1)):
            raise CorruptDatasetError(
                f"HAPT pickle: numpy.dtype called with {describe(code)}, {describe(align)}; expected one of "
                f"{', '.join(sorted(_DTYPE_CODES))} (no structured dtypes). {HAPT_FIX}")
        self.dtype = np.dtype(code, bool(align), True)  # a fresh copy: __setstate__ must not mutate numpy's singleton

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                and state[1] in ("<", ">", "|", "=") and state[2] is None and state[3] is None and state[4] is None
                and all(type(v) is int and -1 <= v <= 64 for v in state[5:7]) and type(state[7]) is int):
            raise CorruptDatasetError(f"HAPT pickle: numpy.dtype state {describe(state)} is not the state of a "
                                      f"plain numeric dtype. {HAPT_FIX}")
        self.dtype.__setstate__(state)


class _Array:
    """Stand-in for an array from numpy's ``_reconstruct``: checks the state, then lets numpy build it."""

    array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise CorruptDatasetError(f"HAPT pickle: ndarray state {describe(state)} is not "
                                      f"(version, shape, dtype, fortran, data). {HAPT_FIX}")
        shape, dtype, fortran, raw = state[-4:]
        dtype = dtype.dtype if isinstance(dtype, _Dtype) else None
        if dtype is None or dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.itemsize > 16:
            raise CorruptDatasetError(f"HAPT pickle: ndarray of dtype {describe(state[-3])}; expected a plain "
                                      f"numeric or object dtype. {HAPT_FIX}")
        if (not isinstance(shape, tuple) or len(shape) > MAX_NPY_DIMS
                or not all(type(s) is int and 0 <= s <= MAX_ARRAY_ELEMENTS for s in shape)
                or math.prod(shape) > MAX_ARRAY_ELEMENTS):
            raise CorruptDatasetError(f"HAPT pickle: ndarray of shape {describe(shape)}; expected at most "
                                      f"{MAX_ARRAY_ELEMENTS:,} elements. {HAPT_FIX}")
        count = math.prod(shape)
        ok = (isinstance(raw, list) and len(raw) == count) if dtype.hasobject else (
            isinstance(raw, bytes) and len(raw) == count * dtype.itemsize)
        if not isinstance(fortran, bool) or not ok:
            raise CorruptDatasetError(f"HAPT pickle: ndarray of shape {shape} and dtype {dtype} comes with "
                                      f"{type(raw).__name__} data that does not fit it. {HAPT_FIX}")
        self.array = _NUMPY_RECONSTRUCT(np.ndarray, (0,), b"b")
        self.array.__setstate__(state[:-3] + (dtype,) + state[-2:])


def _array(obj):
    """The numpy array behind an ``_Array`` stand-in (other objects are returned as they are)."""
    return obj.array if isinstance(obj, _Array) and obj.array is not None else obj


def _safe_reconstructor(cls, base, state):
    """Stand-in for ``copyreg._reconstructor``: only builds the stand-in classes."""
    if cls not in _STAND_INS or base is not object or state is not None:
        raise CorruptDatasetError(
            f"HAPT pickle: copyreg._reconstructor called with {describe(cls)}, {describe(base)}; only pandas "
            f"DataFrame/BlockManager on object are allowed. {HAPT_FIX}"
        )
    return object.__new__(cls)


def _safe_reconstruct(subtype, shape, code):
    """Stand-in for numpy's ``_reconstruct(ndarray, (0,), b'b')``: returns an empty :class:`_Array`."""
    if subtype is not _NdarrayClass:
        raise CorruptDatasetError(f"HAPT pickle: numpy _reconstruct called with {describe(subtype)}; only "
                                  f"numpy.ndarray is allowed. {HAPT_FIX}")
    return _Array()


def _safe_new_index(cls, data):
    """Stand-in for ``pandas.core.indexes.base._new_Index``."""
    if cls not in (_Index, _RangeIndex) or not isinstance(data, dict):
        raise CorruptDatasetError(f"HAPT pickle: _new_Index called with {describe(cls)}; expected an Index class "
                                  f"and a dict. {HAPT_FIX}")
    return cls(data)


def _safe_encode(obj, encoding="utf-8"):
    """Stand-in for ``_codecs.encode``: only the latin-1 string->bytes form numpy pickles use."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise CorruptDatasetError(
            f"HAPT pickle: _codecs.encode called with {type(obj).__name__}, {describe(encoding)}; "
            f"only (str, 'latin1') is allowed. {HAPT_FIX}"
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

    def __init__(self, file: Any, *, source: str = "<pickle>"):
        super().__init__(file, fix_imports=False, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CorruptDatasetError(
                f"{self._source}: the pickle asks for the global {module}.{name}, which is not on the "
                "allow-list of the HAPT reader (pandas DataFrame/BlockManager/Index/RangeIndex, numpy "
                "ndarray/dtype/_reconstruct, copyreg._reconstructor, _codecs.encode, builtins object/slice); "
                f"refusing to unpickle it. {HAPT_FIX}"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise CorruptDatasetError(f"{self._source}: the pickle uses persistent ids, which the HAPT reader refuses. "
                                  f"{HAPT_FIX}")


# --------------------------------------------------------------------------- rebuild
def _index_values(index, where):
    """Returns the values of an Index / RangeIndex stand-in: a ``range`` or a numpy array."""
    if isinstance(index, _RangeIndex):
        st = index.state
        try:
            values = range(int(st["start"]), int(st["stop"]), int(st.get("step", 1) or 1))
            length = len(values)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptDatasetError(f"{where}: RangeIndex state {describe(st)} lacks start/stop. {HAPT_FIX}") from exc
        except OverflowError:
            length = MAX_ARRAY_ELEMENTS + 1
        if length > MAX_ARRAY_ELEMENTS:
            raise CorruptDatasetError(f"{where}: RangeIndex {describe(st)} is longer than {MAX_ARRAY_ELEMENTS:,} "
                                      f"rows. {HAPT_FIX}")
        return values
    if isinstance(index, _Index):
        data = _array(index.state.get("data")) if isinstance(index.state, dict) else None
        if not isinstance(data, np.ndarray):
            raise CorruptDatasetError(f"{where}: Index state has no 'data' array. {HAPT_FIX}")
        return data
    raise CorruptDatasetError(f"{where}: expected a pandas Index, got {type(index).__name__}. {HAPT_FIX}")


def _frame_columns(frame, where):
    """Rebuilds ``{column name: 1-D numpy array}`` from a DataFrame stand-in."""
    if not isinstance(frame, _DataFrame) or not isinstance(getattr(frame, "state", None), dict):
        raise CorruptDatasetError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}. {HAPT_FIX}")
    mgr = frame.state.get("_data", frame.state.get("_mgr"))
    if not isinstance(mgr, _BlockManager):
        raise CorruptDatasetError(f"{where}: DataFrame state has no BlockManager ('_data'). {HAPT_FIX}")
    st = mgr.state
    blocks = []  # (values 2-D (k, n), column positions)
    if isinstance(st, tuple) and len(st) >= 4 and isinstance(st[3], dict) and "0.14.1" in st[3]:
        new = st[3]["0.14.1"]
        axes = new.get("axes")
        for b in new.get("blocks", ()):
            blocks.append((_array(b.get("values")), _array(b.get("mgr_locs"))))
    else:  # pandas >= 0.14.1 (1.0 included) always writes that entry
        raise CorruptDatasetError(f"{where}: unknown BlockManager state layout (no '0.14.1' entry). {HAPT_FIX}")
    if not isinstance(axes, (list, tuple)) or len(axes) != 2:
        raise CorruptDatasetError(f"{where}: BlockManager must have 2 axes (columns, rows). {HAPT_FIX}")
    names = [str(c) for c in _index_values(axes[0], where)]
    nrows = len(_index_values(axes[1], where))
    cols = {}
    for values, locs in blocks:
        if (not isinstance(values, np.ndarray) or values.ndim != 2 or values.shape[1] != nrows
                or values.dtype.kind not in "biuf"):
            raise CorruptDatasetError(f"{where}: a block is not a 2-D numeric array with {nrows} rows. {HAPT_FIX}")
        if isinstance(locs, slice):
            locs = range(*locs.indices(len(names)))
        elif isinstance(locs, np.ndarray):
            locs = locs.tolist()
        locs = list(locs)
        if len(locs) != values.shape[0]:
            raise CorruptDatasetError(f"{where}: block placement {describe(locs)} does not match its "
                                      f"{values.shape[0]} rows. {HAPT_FIX}")
        for j, pos in enumerate(locs):
            cols[names[pos]] = values[j]
    return cols


def _recording(user, cols, where):
    """One recording's dict (see :func:`read_hapt_pickle`) from its columns."""
    missing = [c for c in _COLUMNS if c not in cols]
    if missing:
        raise CorruptDatasetError(f"{where}: missing columns {missing}; has {sorted(cols)}. {HAPT_FIX}")
    for c in ("sequence", "label"):
        if cols[c].dtype.kind not in "iu":
            raise CorruptDatasetError(f"{where}: column {c!r} has dtype {cols[c].dtype}; expected integers. {HAPT_FIX}")
    return {
        "user": int(user),
        "acc": np.stack([cols[c] for c in ("acc-x", "acc-y", "acc-z")], axis=1).astype(np.float64),
        "gyro": np.stack([cols[c] for c in ("gyro-x", "gyro-y", "gyro-z")], axis=1).astype(np.float64),
        "sequence": np.asarray(cols["sequence"]).astype(np.int64),
        "label": np.asarray(cols["label"]).astype(np.int64),
    }


def read_hapt_pickle(path: str | Path) -> list[dict[str, Any]]:
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
    raw = read_maybe_gzip(path, max_bytes=MAX_PICKLE_BYTES, fix=HAPT_FIX)
    scan_pickle(raw, str(path))
    try:
        obj = RestrictedHAPTUnpickler(io.BytesIO(raw), source=str(path)).load()
    except CorruptDatasetError:
        raise
    except Exception as exc:  # a damaged pickle can raise almost anything
        raise CorruptDatasetError(f"{path}: cannot read the HAPT pickle ({type(exc).__name__}: "
                                  f"{describe(str(exc))}). {HAPT_FIX}") from exc
    del raw
    if not isinstance(obj, dict) or not obj:
        raise CorruptDatasetError(f"{path}: expected a dict {{user: [DataFrame]}}, got {type(obj).__name__}. "
                                  f"{HAPT_FIX}")
    recordings = []
    for user, frames in obj.items():
        if type(user) is not int or not 0 < user < 2**31 or not isinstance(frames, list):
            raise CorruptDatasetError(f"{path}: expected {{int user 1..2**31-1: list of DataFrames}}, got key "
                                      f"{describe(user)}. {HAPT_FIX}")
        for k, frame in enumerate(frames):
            where = f"{path} (user {user}, recording {k})"
            try:
                recordings.append(_recording(user, _frame_columns(frame, where), where))
            except CorruptDatasetError:
                raise
            except Exception as exc:  # hostile structure: wrong types, bad indices, huge ints, ...
                raise CorruptDatasetError(
                    f"{where}: unexpected DataFrame structure ({type(exc).__name__}: {describe(str(exc))}). {HAPT_FIX}"
                ) from exc
    return recordings
