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
"""

import io
import zipfile
from pathlib import Path

import numpy as np

from tf_nvm.errors import CorruptDatasetError

__all__ = ["UCI_HAR_URL", "UCI_SIGNALS", "read_uci_har", "find_uci_root_in_zip"]

UCI_HAR_URL = "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"

# Channel order of the returned windows: total_acc_xyz, body_acc_xyz, gyro_xyz.
UCI_SIGNALS = tuple(f"{kind}_{axis}" for kind in ("total_acc", "body_acc", "body_gyro") for axis in "xyz")
_WINDOW = 128
_PROBE = "train/Inertial Signals/total_acc_x_train.txt"


def _expected_members(split):
    files = [f"{split}/Inertial Signals/{sig}_{split}.txt" for sig in UCI_SIGNALS]
    return files + [f"{split}/y_{split}.txt", f"{split}/subject_{split}.txt"]


def find_uci_root_in_zip(zf):
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
    """Parses a whitespace-separated numeric table with ``ncols`` values per line."""
    if not text.strip():
        raise CorruptDatasetError(f"{where}: the file is empty; expected lines of {ncols} numbers")
    try:
        arr = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise CorruptDatasetError(f"{where}: not a table of {ncols} numbers per line ({exc})") from exc
    if arr.shape[1] != ncols:
        raise CorruptDatasetError(f"{where}: lines have {arr.shape[1]} values; expected {ncols}")
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
                f"expected {n} like total_acc_x_{split}.txt"
            )
    x = np.stack(signals, axis=-1).astype(np.float32)  # (n, 128, 9)
    cols = {}
    for key in ("y", "subject"):
        name = f"{split}/{key}_{split}.txt"
        arr = _parse_matrix(read(name), f"{where}: {name}", ncols=1)[:, 0]
        if arr.shape[0] != n:
            raise CorruptDatasetError(f"{where}: {name} has {arr.shape[0]} lines; expected {n} (one per window)")
        if not np.all(arr == np.round(arr)):
            raise CorruptDatasetError(f"{where}: {name} holds non-integer values")
        cols[key] = arr.astype(np.int32)
    y = cols["y"]
    if n and (y.min() < 1 or y.max() > 6):
        raise CorruptDatasetError(
            f"{where}: {split}/y_{split}.txt holds labels {int(y.min())}..{int(y.max())}; expected 1..6"
        )
    return x, (y - 1).astype(np.int32), cols["subject"]


def _read_from_zip(zf, where, depth=0):
    root = find_uci_root_in_zip(zf)
    if root is None:
        inner = [n for n in zf.namelist() if n.lower().endswith(".zip") and "__MACOSX" not in n]
        if inner and depth == 0:
            with zf.open(inner[0]) as f:
                data = f.read()
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zin:
                    return _read_from_zip(zin, f"{where} -> {inner[0]}", depth + 1)
            except zipfile.BadZipFile as exc:
                raise CorruptDatasetError(f"{where}: inner zip {inner[0]!r} is damaged ({exc})") from exc
        raise CorruptDatasetError(
            f"{where}: not the UCI HAR release: no member '.../{_PROBE}' "
            f"(nor an inner 'UCI HAR Dataset.zip' holding one)"
        )
    names = set(zf.namelist())
    for split in ("train", "test"):
        missing = [m for m in _expected_members(split) if root + m not in names]
        if missing:
            raise CorruptDatasetError(f"{where}: missing member {root + missing[0]!r} of the UCI HAR layout")

    def read(name):
        return zf.read(root + name).decode("ascii", errors="replace")

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
            "'UCI HAR Dataset' subfolder"
        )
    for split in ("train", "test"):
        missing = [m for m in _expected_members(split) if not (root / m).is_file()]
        if missing:
            raise CorruptDatasetError(f"{root}: missing file {missing[0]!r} of the UCI HAR layout")

    def read(name):
        return (root / name).read_text(encoding="ascii", errors="replace")

    return {split: _read_split(read, split, str(root)) for split in ("train", "test")}


def _read_from_zip_path(path):
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_from_zip(zf, str(path))
    except zipfile.BadZipFile as exc:
        raise CorruptDatasetError(f"{path}: not a readable zip file ({exc})") from exc


def read_uci_har(path):
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
        CorruptDatasetError: the file or folder is not in the UCI HAR layout.
    """
    path = Path(path)
    parts = _read_from_folder(path) if path.is_dir() else _read_from_zip_path(path)
    out = {}
    for split, (x, y, subject) in parts.items():
        out[f"x_{split}"], out[f"y_{split}"], out[f"subject_{split}"] = x, y, subject
    return out
