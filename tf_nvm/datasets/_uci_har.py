"""Parser of the official UCI HAR release ("Human Activity Recognition Using Smartphones").

The release is a zip (``human+activity+recognition+using+smartphones.zip``)
that holds an inner ``UCI HAR Dataset.zip``, which holds the folder
``UCI HAR Dataset/``; older copies hold that folder directly. Only the raw
windows are read::

    UCI HAR Dataset/{train,test}/Inertial Signals/{total_acc,body_acc,body_gyro}_{x,y,z}_{split}.txt
    UCI HAR Dataset/{train,test}/y_{split}.txt        labels 1..6
    UCI HAR Dataset/{train,test}/subject_{split}.txt  volunteer ids 1..30

Each signal file has one window of 128 whitespace-separated numbers per line
(acceleration in g, angular velocity in rad/s). Nothing here imports TensorFlow.

Files are treated as hostile: only regular files are read, each text member or
file is at most :data:`HAR_MAX_TEXT_BYTES` (checked on the size the zip declares,
before decompressing), an inner zip at most :data:`HAR_MAX_INNER_ZIP_BYTES`, and
values are range-checked before every cast.
"""

import os
import zipfile
from pathlib import Path

import numpy as np

from tf_nvm.core import safe_io
from tf_nvm.core.errors import CorruptDatasetError

__all__ = ["UCI_HAR_URL", "UCI_SIGNALS", "HAR_MAX_TEXT_BYTES", "HAR_MAX_INNER_ZIP_BYTES", "read_uci_har",
           "find_uci_root_in_zip"]

UCI_HAR_URL = "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"

# Channel order of the returned windows: total_acc_xyz, body_acc_xyz, gyro_xyz.
UCI_SIGNALS = tuple(f"{kind}_{axis}" for kind in ("total_acc", "body_acc", "body_gyro") for axis in "xyz")
_WINDOW = 128
_PROBE = "train/Inertial Signals/total_acc_x_train.txt"
HAR_MAX_TEXT_BYTES = 64 * safe_io.MIB
"""Largest text file or zip member [bytes] read (the release's largest is about 15 MB: 7352 lines x 128 values)."""
HAR_MAX_INNER_ZIP_BYTES = 256 * safe_io.MIB
"""Largest inner ``UCI HAR Dataset.zip`` [bytes] read into memory (the release's is about 59 MB)."""
_FIX = "Fix: download the official UCI HAR zip again, or pass another path."
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INT32_MAX = int(np.iinfo(np.int32).max)


def _expected_members(split):
    files = [f"{split}/Inertial Signals/{sig}_{split}.txt" for sig in UCI_SIGNALS]
    return files + [f"{split}/y_{split}.txt", f"{split}/subject_{split}.txt"]


def find_uci_root_in_zip(zf: zipfile.ZipFile) -> str | None:
    """Returns the member prefix (e.g. ``"UCI HAR Dataset/"``) under which the release lies.

    Args:
        zf: an open :class:`zipfile.ZipFile`.

    Returns:
        The prefix (possibly ``""``), or None when no ``train/Inertial Signals`` is found.
    """
    for name in zf.namelist():
        if name.endswith(_PROBE) and "__MACOSX" not in name:
            return name[: -len(_PROBE)]
    return None


def _parse_matrix(text, where, ncols):
    """Parses a whitespace-separated numeric table with ``ncols`` finite float32-range values per line."""
    if not text.strip():
        raise CorruptDatasetError(f"{where}: the file is empty; expected lines of {ncols} numbers. {_FIX}")
    try:
        arr = np.loadtxt(text.split("\n"), dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise CorruptDatasetError(f"{where}: not a table of {ncols} numbers per line ({exc}). {_FIX}") from exc
    if arr.shape[1] != ncols:
        raise CorruptDatasetError(f"{where}: lines have {arr.shape[1]} values; expected {ncols}. {_FIX}")
    if not np.isfinite(arr).all() or np.abs(arr).max() > _FLOAT32_MAX:
        raise CorruptDatasetError(f"{where}: holds NaN, infinite or values beyond the float32 range "
                                  f"(|x| <= {_FLOAT32_MAX:.3g}); expected finite numbers. {_FIX}")
    return arr


def _read_split(read, split, where):
    """Reads one split through ``read(relative member name) -> text``."""
    signals = []
    for sig in UCI_SIGNALS:
        name = f"{split}/Inertial Signals/{sig}_{split}.txt"
        signals.append(_parse_matrix(read(name), f"{where}: {name}", ncols=_WINDOW))
    n = signals[0].shape[0]
    for sig, arr in zip(UCI_SIGNALS, signals, strict=True):
        if arr.shape[0] != n:
            raise CorruptDatasetError(
                f"{where}: {split}/Inertial Signals/{sig}_{split}.txt has {arr.shape[0]} windows; "
                f"expected {n} like total_acc_x_{split}.txt. {_FIX}"
            )
    x = np.stack(signals, axis=-1).astype(np.float32)  # (n, 128, 9)
    cols = {}
    for key in ("y", "subject"):
        name = f"{split}/{key}_{split}.txt"
        arr = _parse_matrix(read(name), f"{where}: {name}", ncols=1)[:, 0]
        if arr.shape[0] != n:
            raise CorruptDatasetError(
                f"{where}: {name} has {arr.shape[0]} lines; expected {n} (one per window). {_FIX}")
        if not np.all(arr == np.round(arr)):
            raise CorruptDatasetError(f"{where}: {name} holds non-integer values; expected integers. {_FIX}")
        cols[key] = arr
    y, subject = cols["y"], cols["subject"]
    if n and (y.min() < 1 or y.max() > 6):  # checked on float64, before the cast
        raise CorruptDatasetError(
            f"{where}: {split}/y_{split}.txt holds labels {int(y.min())}..{int(y.max())}; expected 1..6. {_FIX}"
        )
    if n and (subject.min() < 0 or subject.max() > _INT32_MAX):
        raise CorruptDatasetError(
            f"{where}: {split}/subject_{split}.txt holds volunteer ids {int(subject.min())}..{int(subject.max())}; "
            f"expected 0..{_INT32_MAX}. {_FIX}"
        )
    return x, (y.astype(np.int32) - 1).astype(np.int32), subject.astype(np.int32)


def _read_from_zip(zf, where, depth=0):
    root = find_uci_root_in_zip(zf)
    if root is None:
        inner = [n for n in zf.namelist() if n.lower().endswith(".zip") and "__MACOSX" not in n]
        if inner and depth == 0:
            data = safe_io.read_zip_member(zf, inner[0], max_bytes=HAR_MAX_INNER_ZIP_BYTES, where=where, fix=_FIX)
            name = f"{where} -> {inner[0]}"
            with safe_io.open_zip(data, where=name, fix=_FIX) as zin:
                return _read_from_zip(zin, name, depth + 1)
        raise CorruptDatasetError(
            f"{where}: not the UCI HAR release: no member '.../{_PROBE}' "
            f"(nor an inner 'UCI HAR Dataset.zip' holding one). {_FIX}"
        )
    names = set(zf.namelist())
    for split in ("train", "test"):
        missing = [m for m in _expected_members(split) if root + m not in names]
        if missing:
            raise CorruptDatasetError(
                f"{where}: missing member {root + missing[0]!r} of the UCI HAR layout. {_FIX}")

    def read(name):
        data = safe_io.read_zip_member(zf, root + name, max_bytes=HAR_MAX_TEXT_BYTES, where=where, fix=_FIX)
        return data.decode("ascii", errors="replace")

    return {split: _read_split(read, split, where) for split in ("train", "test")}


def _read_from_folder(folder):
    folder = Path(folder)
    candidates = [folder, folder / "UCI HAR Dataset"]
    root = next((c for c in candidates if (c / _PROBE).is_file()), None)
    if root is None:
        inner = folder / "UCI HAR Dataset.zip"
        if inner.is_file():
            return _read_from_zip_path(inner)
        raise CorruptDatasetError(
            f"{folder}: not the extracted UCI HAR release: no '{_PROBE}' in it or in its "
            f"'UCI HAR Dataset' subfolder. {_FIX}"
        )
    for split in ("train", "test"):
        missing = [m for m in _expected_members(split) if not (root / m).exists()]
        if missing:
            raise CorruptDatasetError(f"{root}: missing file {missing[0]!r} of the UCI HAR layout. {_FIX}")

    def read(name):  # a FIFO or device in the folder is refused, not read
        data = safe_io.read_bytes(root / name, max_bytes=HAR_MAX_TEXT_BYTES, fix=_FIX)
        return data.decode("ascii", errors="replace")

    return {split: _read_split(read, split, str(root)) for split in ("train", "test")}


def _read_from_zip_path(path):
    with safe_io.open_zip(path, fix=_FIX) as zf:
        return _read_from_zip(zf, str(path))


def read_uci_har(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads the raw windows of the official UCI HAR release.

    Args:
        path: the downloaded zip (either nesting), the inner ``UCI HAR Dataset.zip``,
            the extracted ``UCI HAR Dataset`` folder, or a folder holding it.

    Returns:
        A dict with ``x_train``/``x_test`` float32 (N, 128, 9) (total_acc_xyz [g],
        body_acc_xyz [g], body_gyro_xyz [rad/s]), ``y_train``/``y_test`` int32 0..5
        and ``subject_train``/``subject_test`` int32 (1..30). The official split
        has 7352 / 2947 windows.

    Raises:
        CorruptDatasetError: the file or folder is not in the UCI HAR layout, is not
            a regular file, or a member is larger than :data:`HAR_MAX_TEXT_BYTES`.
    """
    path = Path(path)
    parts = _read_from_folder(path) if path.is_dir() else _read_from_zip_path(path)
    out = {}
    for split, (x, y, subject) in parts.items():
        out[f"x_{split}"], out[f"y_{split}"], out[f"subject_{split}"] = x, y, subject
    return out
