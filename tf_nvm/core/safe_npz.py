"""Bounded reading of ``.npz`` archives that may be hostile: declared sizes checked first, never a pickle.

Part of :mod:`tf_nvm.core.safe_io` (which re-exports every public name here and
documents the limits). Nothing here imports TensorFlow.
"""

import math
import os
from typing import Sequence

import numpy as np

from tf_nvm.core.errors import CorruptDatasetError
from tf_nvm.core.safe_read import MIB, READ_CHUNK_BYTES, READ_ERRORS, open_zip, size_text

__all__ = ["MAX_NPZ_BYTES", "MAX_NPY_HEADER_BYTES", "MAX_NPY_DIMS", "load_npz"]

MAX_NPZ_BYTES = 256 * MIB
MAX_NPY_HEADER_BYTES = 10_000
MAX_NPY_DIMS = 32


def _npy_header(f, where, key, error, fix):
    """Reads a ``.npy`` header; returns ``(shape, fortran_order, dtype)``."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER_BYTES)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER_BYTES)
    raise error(f"{where}: key {key!r} is a .npy of format version {version[0]}.{version[1]}; "
                f"expected 1.0 or 2.0. {fix}")


def _read_member_array(zf, info, key, budget, where, error, fix, kinds):
    """Checks one ``.npy`` member's declared size, shape and dtype, then reads it. Returns (array, nbytes)."""
    if info.file_size > budget + MAX_NPY_HEADER_BYTES + 16:
        raise error(f"{where}: key {key!r} declares {size_text(info.file_size)} uncompressed; at most "
                    f"{size_text(budget)} may still be read. {fix}")
    with zf.open(info) as f:
        shape, fortran, dtype = _npy_header(f, where, key, error, fix)
        start = f.tell()
        if dtype.hasobject:
            raise error(f"{where}: key {key!r} holds an object array (a pickle); tf_nvm never loads pickles "
                        f"from .npz files. Expected plain numeric arrays. {fix}")
        if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds:
            raise error(f"{where}: key {key!r} has dtype {dtype}; expected a plain array of kind "
                        f"{', '.join(kinds)} (no structured or sub-array dtypes). {fix}")
        if len(shape) > MAX_NPY_DIMS or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise error(f"{where}: key {key!r} declares shape {shape}; expected at most {MAX_NPY_DIMS} "
                        f"non-negative dimensions. {fix}")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > budget:
            raise error(f"{where}: key {key!r} declares shape {shape} of {dtype} ({size_text(nbytes)}); at most "
                        f"{size_text(budget)} may still be read. {fix}")
        if info.file_size != start + nbytes:
            raise error(f"{where}: key {key!r} declares shape {shape} of {dtype} ({nbytes:,} bytes of data) but "
                        f"its entry holds {info.file_size - start:,} bytes after the header. {fix}")
        array = np.empty(count, dtype=dtype)
        view = memoryview(array.view(np.uint8)) if nbytes else memoryview(b"")
        done = 0
        while done < nbytes:
            n = f.readinto(view[done:done + READ_CHUNK_BYTES])
            if not n:
                raise error(f"{where}: key {key!r} ends after {done:,} of {nbytes:,} bytes of data. {fix}")
            done += n
        f.read(1)  # at the end: makes zipfile check the CRC
    if fortran:
        return array.reshape(shape[::-1]).transpose(), nbytes
    return array.reshape(shape), nbytes


def load_npz(path: str | os.PathLike[str] | bytes, keys: Sequence[str], *, max_bytes: int = MAX_NPZ_BYTES,
             kinds: str = "biufcSU", error: type[Exception] = CorruptDatasetError,
             fix: str = "Fix: delete it and load again, or pass another path.",
             where: str | None = None) -> dict[str, np.ndarray]:
    """Reads the named arrays of an ``.npz`` archive, never unpickling and with a bounded size.

    Only the members ``<key>.npy`` for ``keys`` are opened. For each, before any
    data is decompressed, the zip entry's declared uncompressed size, the
    ``.npy`` header's dtype (no object, structured or sub-array dtypes; kind in
    ``kinds``) and shape are checked, and the declared size (elements x itemsize)
    is added to a running total that may not exceed ``max_bytes``. The data are
    then read in chunks into one preallocated array, exactly as ``np.load`` would
    return it (same dtype, byte order, memory order and values).

    Args:
        path: the ``.npz`` file (must be a regular file), or its bytes already read.
        keys: the array names to read, in order.
        max_bytes: most bytes [bytes] all the arrays read may declare together.
        kinds: allowed ``dtype.kind`` letters.
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.
        where: the name used in messages (default: the path).

    Returns:
        A dict ``{key: numpy array}`` with every key of ``keys``.

    Raises:
        error: not a regular file, not a readable zip archive, a key missing, a
            member too large, of a refused dtype, inconsistent or damaged.
    """
    where = where or str(path)
    out = {}
    with open_zip(path, where=where, kind=".npz", error=error, fix=fix) as zf:
        names = zf.namelist()
        found = sorted(n[:-4] for n in names if n.endswith(".npy"))
        missing = [k for k in keys if f"{k}.npy" not in names]
        if missing:
            raise error(f"{where}: key {missing[0]!r} is missing; expected keys {', '.join(keys)} "
                        f"(found: {', '.join(found) or 'none'}). {fix}")
        budget = max_bytes
        for key in keys:
            try:
                out[key], nbytes = _read_member_array(zf, zf.getinfo(f"{key}.npy"), key, budget, where, error,
                                                      fix, kinds)
            except READ_ERRORS as exc:
                if isinstance(exc, error):
                    raise
                raise error(f"{where}: key {key!r} cannot be read, the file looks truncated or damaged "
                            f"({type(exc).__name__}: {exc}). {fix}") from exc
            budget -= nbytes
    return out
