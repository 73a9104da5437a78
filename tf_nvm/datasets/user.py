"""A user's own data set: an ``.npz`` with ``x_test`` and optional ``y_test``, ``x_train``, ``y_train``.

Registered as the data set ``npz`` (`tf_nvm.datasets.DATASETS`): a recipe or experiment
with ``"dataset": "npz"`` trains on it (``--data PATH``; ``x_train`` and integer
``y_train`` needed), and ``tf-nvm simulate``/``cost``/``export`` read it with ``--data PATH``.
Read like the bundled files (`tf_nvm.core.safe_io.load_npz`): no pickle, plain numeric
arrays, bounded size, checked shapes.

Importing this module does not import TensorFlow.
"""

import dataclasses
import os
from typing import Optional

import numpy as np

from tf_nvm.core import safe_io
from tf_nvm.core.errors import CorruptDatasetError, DatasetNotFoundError

__all__ = ["RawData", "load_npz_data", "load_npz_dataset", "USER_NPZ_MAX_BYTES", "FIX_NPZ"]

USER_NPZ_MAX_BYTES = 1024 * safe_io.MIB
"""Most bytes [bytes] the arrays read from a user's ``.npz`` may declare together (1 GiB)."""

_USER_KEYS = ("x_test", "y_test", "x_train", "y_train")
FIX_NPZ = ("Fix: pass a .npz written with numpy.savez(path, x_test=..., y_test=..., x_train=...): x_test float or "
            "integer (N, *input_shape), y_test (N,) integer labels or (N, ...) float targets (optional: without it "
            "the targets are the inputs, an autoencoder), x_train optional (calibration, input standardisation).")


@dataclasses.dataclass(frozen=True, eq=False)
class RawData:
    """A data set as stored (raw units: the units a `Standardization` is fitted on).

    Attributes:
        x_test: test inputs (N, *input_shape), raw units.
        y_test: targets: (N,) integer labels, (N, ...) float targets, or None (targets = inputs).
        x_train: training inputs (M, *input_shape) or None (no calibration data, no standardisation to fit).
        y_train: training targets or None.
        dataset: the registered data-set name, or None for a user's ``.npz``.
        source: where the data came from (named in reports).
    """

    x_test: np.ndarray
    y_test: Optional[np.ndarray]
    x_train: Optional[np.ndarray]
    y_train: Optional[np.ndarray]
    dataset: Optional[str]
    source: str


def _check_user_arrays(arrays, where):
    """Shapes, dtypes and finiteness of a user's arrays; returns `RawData` fields."""
    x = arrays["x_test"]
    if x.ndim < 2 or x.shape[0] < 1 or x.dtype.kind not in "iuf":
        raise CorruptDatasetError(f"{where}: key 'x_test' is {x.dtype} {list(x.shape)}; expected a float or integer "
                                  f"array (N >= 1, *input_shape) with at least 2 dimensions. {FIX_NPZ}")
    for key in ("y_test", "x_train", "y_train"):
        a = arrays.get(key)
        if a is not None and (a.dtype.kind not in "iuf" or a.ndim < 1):
            raise CorruptDatasetError(f"{where}: key {key!r} is {a.dtype} {list(a.shape)}; expected a float or "
                                      f"integer array. {FIX_NPZ}")
    y = arrays.get("y_test")
    if y is not None and y.shape[0] != x.shape[0]:
        raise CorruptDatasetError(f"{where}: key 'y_test' has {y.shape[0]} rows and 'x_test' {x.shape[0]}; one "
                                  f"target per test example. {FIX_NPZ}")
    x_tr = arrays.get("x_train")
    if x_tr is not None and (x_tr.shape[1:] != x.shape[1:] or x_tr.shape[0] < 1):
        raise CorruptDatasetError(f"{where}: key 'x_train' is {list(x_tr.shape)} and 'x_test' {list(x.shape)}; "
                                  f"expected the same example shape {list(x.shape[1:])} and at least one example. "
                                  f"{FIX_NPZ}")
    y_tr = arrays.get("y_train")
    if y_tr is not None and (x_tr is None or y_tr.shape[0] != x_tr.shape[0]):
        raise CorruptDatasetError(f"{where}: key 'y_train' has {y_tr.shape[0]} rows but 'x_train' "
                                  f"{'is missing' if x_tr is None else f'has {x_tr.shape[0]}'}. {FIX_NPZ}")
    for key, a in arrays.items():
        if a is not None and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise CorruptDatasetError(f"{where}: key {key!r} holds {int(np.size(a) - np.isfinite(a).sum())} "
                                      f"NaN or infinite value(s); expected finite numbers. {FIX_NPZ}")


def load_npz_data(path: str | os.PathLike[str], *, max_bytes: int = USER_NPZ_MAX_BYTES) -> RawData:
    """Reads a user's data set from an ``.npz``: ``x_test`` and optional ``y_test``, ``x_train``, ``y_train``.

    The same reader as the bundled data sets (`tf_nvm.core.safe_io.load_npz`): a regular
    file, no pickle ever loaded (object arrays are refused), plain float/integer
    arrays only, at most ``max_bytes`` declared in total before anything is
    decompressed; other keys are not read. Then: ``x_test`` has at least 2
    dimensions and one example, ``y_test`` one row per test example, ``x_train``
    the same example shape, float values finite.

    Args:
        path: the ``.npz`` file.
        max_bytes: most bytes [bytes] the arrays may declare together.

    Returns:
        `RawData` with ``dataset=None``.

    Raises:
        CorruptDatasetError: not a regular readable ``.npz``, ``x_test`` missing, a pickle, a refused dtype,
            a wrong shape or a non-finite value (the message names the key).
    """
    where = str(path)
    with safe_io.open_zip(path, where=where, kind=".npz", fix=FIX_NPZ) as zf:
        names = set(zf.namelist())
    keys = ["x_test"] + [k for k in _USER_KEYS[1:] if f"{k}.npy" in names]
    arrays = safe_io.load_npz(path, keys, max_bytes=max_bytes, kinds="biuf", fix=FIX_NPZ, where=where)
    arrays = {k: (v.astype(np.uint8) if v.dtype.kind == "b" else v) for k, v in arrays.items()}
    _check_user_arrays(arrays, where)
    return RawData(arrays["x_test"], arrays.get("y_test"), arrays.get("x_train"), arrays.get("y_train"), None,
                   f"{where} (user .npz)")


def load_npz_dataset(source: str = "npz", *, path: str | os.PathLike[str] | None = None,
                     verbose: bool = True) -> RawData:
    """The registered loader of data set ``npz``: `load_npz_data` of ``path`` (which is required).

    Raises:
        DatasetNotFoundError: no ``path``.
        CorruptDatasetError: see `load_npz_data`.
    """
    if path is None:
        raise DatasetNotFoundError("data set 'npz' is a user's .npz file, and no path was given. Fix: pass --data "
                                   "PATH (a .npz with x_train, y_train, x_test, y_test), or path=... in Python.")
    data = load_npz_data(path)
    if verbose:
        print(f"tf_nvm.datasets.load_npz_dataset: using {path} ({len(data.x_test)} test examples"
              f"{'' if data.x_train is None else f', {len(data.x_train)} training examples'})")
    return data
